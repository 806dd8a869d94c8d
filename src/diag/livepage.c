/* SPDX-License-Identifier: MIT */
/*
 * livepage.c — /debug/leash/: one self-contained HTML page (no script,
 * style sheet or font from elsewhere: it works offline) that shows the
 * process's coroutines over the last minutes, its proven leaks, and
 * links to every profile.
 *
 * The history is a bounded ring in the process: sysmon's per-second walk
 * of the coroutines (sites.c) hands each sample to live_sample, which
 * keeps one every LIVE_PERIOD_NS (LIVE_RING of them: 10 minutes) — the
 * counts by state and the LIVE_SITES busiest spawn sites. Site names are
 * the __FILE__ literals of the leash_go calls (never freed), interned in
 * a table of LIVE_NAMES; a site past that is left out. Nothing is
 * allocated on sysmon's side. While every worker is idle sysmon sleeps,
 * so the ring has gaps then; the charts draw against time.
 *
 * The page is built per request: two SVG line charts drawn here (so a
 * browser needs no script, and the figures are in the DOM), the samples
 * as JSON in a <script type="application/json"> block, the current
 * figures (one snapshot), and the goroutineleak profile's text (counted
 * stacks of the proven leaks, capped at LIVE_LEAK_TEXT bytes). It
 * reloads itself every 5 s, so leaks show as they are proven.
 */
#define _GNU_SOURCE 1
#include "debug.h"

#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#define LIVE_PERIOD_NS (2 * INT64_C(1000000000))
#define LIVE_RING 300 /* 10 minutes */
#define LIVE_NAMES 64
#define LIVE_LEAK_TEXT (64 * 1024)

typedef struct {
    int64_t unix_ms;
    int32_t state[3];             /* running, runnable, waiting */
    int16_t site[LIVE_SITES];     /* index in L.names, -1: none */
    int32_t site_n[LIVE_SITES];
} sample;

static struct {
    llock lock;
    sample ring[LIVE_RING];
    int head, count; /* next slot; samples kept */
    int64_t next_ns;
    struct { const char *file; int line; } names[LIVE_NAMES];
    int nnames;
} L = {.lock = LLOCK_INIT(LR_LIVE)};

/* L.lock held. */
static int name_index(const char *file, int line) {
    for (int i = 0; i < L.nnames; i++)
        if (L.names[i].file == file && L.names[i].line == line)
            return i;
    if (L.nnames == LIVE_NAMES)
        return -1;
    L.names[L.nnames].file = file;
    L.names[L.nnames].line = line;
    return L.nnames++;
}

void live_sample(int64_t now, const int64_t states[3], const dsite *top,
                 int n) {
    if (now < L.next_ns)
        return;
    L.next_ns = now + LIVE_PERIOD_NS;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    llock_acquire(&L.lock);
    sample *s = &L.ring[L.head];
    s->unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    for (int i = 0; i < 3; i++)
        s->state[i] = (int32_t)states[i];
    for (int i = 0; i < LIVE_SITES; i++) {
        s->site[i] = (int16_t)(i < n ? name_index(top[i].file, top[i].line) : -1);
        s->site_n[i] = i < n ? (int32_t)top[i].live : 0;
    }
    L.head = (L.head + 1) % LIVE_RING;
    if (L.count < LIVE_RING)
        L.count++;
    llock_release(&L.lock);
}

/* ------------------------------------------------------------ the page */

typedef struct {
    sample s[LIVE_RING];
    int n;
    struct { const char *file; int line; } names[LIVE_NAMES];
    int nnames;
} history;

static void copy_history(history *h) {
    llock_acquire(&L.lock);
    h->n = L.count;
    for (int i = 0; i < L.count; i++)
        h->s[i] = L.ring[(L.head - L.count + i + LIVE_RING) % LIVE_RING];
    h->nnames = L.nnames;
    memcpy(h->names, L.names, sizeof L.names);
    llock_release(&L.lock);
}

static void html(FILE *f, const char *s) {
    for (; s && *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
                fputc('?', f);
            else
                fputc(*s, f);
        }
}

/* A JSON string inside a <script> block: "</" never appears. */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == '<' || c == '>' || c == '&')
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static const char *base(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* The count of site index `k` in sample s (0 if it was not among the
 * busiest then). */
static int64_t site_count(const sample *s, int k) {
    for (int i = 0; i < LIVE_SITES; i++)
        if (s->site[i] == k)
            return s->site_n[i];
    return 0;
}

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c",
                                     "#ff7f0e", "#9467bd", "#8c564b",
                                     "#e377c2", "#17becf"};

#define CW 720
#define CH 200
#define PAD 40

/* One SVG chart: nseries lines, value(h, series, i) for sample i. */
static void chart(FILE *f, const char *id, const history *h, int nseries,
                  const char *const *labels, int64_t (*value)(const history *,
                                                              int, int, const void *),
                  const void *arg) {
    int64_t maxv = 1;
    for (int k = 0; k < nseries; k++)
        for (int i = 0; i < h->n; i++) {
            int64_t v = value(h, k, i, arg);
            if (v > maxv)
                maxv = v;
        }
    int64_t t0 = h->n ? h->s[0].unix_ms : 0, t1 = h->n ? h->s[h->n - 1].unix_ms : 0;
    if (t1 <= t0)
        t1 = t0 + 1;
    fprintf(f, "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
               "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            id, CW, CH + 30, CW, CH + 30);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>"
               "<line x1=\"%d\" y1=\"10\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>\n",
            PAD, CH, CW - 10, CH, PAD, PAD, CH);
    fprintf(f, "<text x=\"2\" y=\"16\" font-size=\"11\">%" PRId64 "</text>"
               "<text x=\"2\" y=\"%d\" font-size=\"11\">0</text>\n", maxv, CH);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\">%.0f s ago</text>"
               "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">now</text>\n",
            PAD, CH + 14, (double)(t1 - t0) / 1000, CW - 10, CH + 14);
    for (int k = 0; k < nseries; k++) {
        fprintf(f, "<polyline class=\"series\" data-label=\"");
        html(f, labels[k]);
        fprintf(f, "\" fill=\"none\" stroke-width=\"2\" stroke=\"%s\" points=\"",
                colors[k % 8]);
        for (int i = 0; i < h->n; i++) {
            double x = PAD + (double)(h->s[i].unix_ms - t0) * (CW - 10 - PAD) /
                                 (double)(t1 - t0);
            double y = CH - (double)value(h, k, i, arg) * (CH - 10) / (double)maxv;
            fprintf(f, "%s%.1f,%.1f", i ? " " : "", h->n == 1 ? CW - 10.0 : x, y);
        }
        fprintf(f, "\"><title>");
        html(f, labels[k]);
        fprintf(f, "</title></polyline>\n");
    }
    fputs("</svg>\n<ul class=\"legend\">", f);
    for (int k = 0; k < nseries; k++) {
        fprintf(f, "<li><span style=\"color:%s\">&#9632;</span> ", colors[k % 8]);
        html(f, labels[k]);
        fprintf(f, ": <b>%" PRId64 "</b> now</li>",
                h->n ? value(h, k, h->n - 1, arg) : 0);
    }
    fputs("</ul>\n", f);
}

static int64_t state_value(const history *h, int k, int i, const void *arg) {
    (void)arg;
    return h->s[i].state[k];
}

static int64_t site_value(const history *h, int k, int i, const void *arg) {
    const int *idx = arg;
    return site_count(&h->s[i], idx[k]);
}

/* The sites to chart: those of the latest sample, busiest first, then
 * the ones busiest at their peak; LIVE_SITES at most. */
static int pick_sites(const history *h, int *idx) {
    int n = 0;
    if (!h->n)
        return 0;
    const sample *last = &h->s[h->n - 1];
    for (int i = 0; i < LIVE_SITES && n < LIVE_SITES; i++)
        if (last->site[i] >= 0)
            idx[n++] = last->site[i];
    for (int j = h->n - 1; j >= 0 && n < LIVE_SITES; j--)
        for (int i = 0; i < LIVE_SITES && n < LIVE_SITES; i++) {
            int k = h->s[j].site[i];
            bool seen = k < 0;
            for (int m = 0; m < n && !seen; m++)
                seen = idx[m] == k;
            if (!seen)
                idx[n++] = k;
        }
    return n;
}

static const struct { const char *href, *text; } links[] = {
    {"/debug/pprof/", "pprof index"},
    {"/debug/pprof/goroutine", "goroutine (pprof, for go tool pprof)"},
    {"/debug/pprof/goroutine?debug=1", "goroutine, counted stacks"},
    {"/debug/pprof/goroutine?debug=2", "goroutine, every stack"},
    {"/debug/pprof/goroutineleak", "goroutineleak (pprof)"},
    {"/debug/pprof/goroutineleak?debug=1", "goroutineleak, counted stacks"},
    {"/debug/pprof/goroutineleak?debug=2", "goroutineleak, every stack"},
    {"/debug/pprof/block?debug=1", "block (waits; off until a rate is set)"},
    {"/debug/pprof/mutex?debug=1", "mutex (contention; off until a fraction is set)"},
    {"/debug/pprof/profile?seconds=10", "CPU profile, 10 s (pprof)"},
    {"/debug/leash?format=text", "leash dump (waits, wait objects, spawn sites)"},
    {"/debug/leash?format=json", "leash dump, JSON"},
    {"/metrics", "metrics (Prometheus)"},
};

static int build_page(char **buf, size_t *len) {
    history *h = malloc(sizeof *h);
    char *leaks = NULL;
    size_t nleaks = 0;
    FILE *lf = open_memstream(&leaks, &nleaks);
    if (!h || !lf) {
        free(h);
        if (lf)
            fclose(lf);
        free(leaks);
        return LEASH_ENOMEM;
    }
    int nleaked = leash_leak_dump(lf, LEASH_DUMP_COUNTS);
    fclose(lf);
    dbg_vitals v;
    if (dbg_vitals_get(&v) < 0)
        memset(&v, 0, sizeof v);
    copy_history(h);
    char name[256];
    dbg_proc_name(name, sizeof name);

    *buf = NULL;
    *len = 0;
    FILE *f = open_memstream(buf, len);
    if (!f) {
        free(h);
        free(leaks);
        return LEASH_ENOMEM;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"refresh\" content=\"5\">\n<title>leash: ", f);
    html(f, name);
    fprintf(f, " (%d)</title>\n<style>\n"
               "body{font:14px sans-serif;margin:1em 2em;color:#222}"
               "h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}"
               "table.figures td{padding:0 1.2em 0 0}"
               ".legend{list-style:none;padding:0}.legend li{display:inline-block;"
               "margin-right:1.5em}pre{background:#f6f6f6;padding:.6em;"
               "overflow:auto;max-height:30em}.leaked{color:#c00;font-weight:bold}"
               "\n</style>\n</head>\n<body>\n",
            (int)getpid());
    fputs("<h1>leash: ", f);
    html(f, name);
    fprintf(f, " (pid %d)</h1>\n<table class=\"figures\"><tr>"
               "<td>coroutines <b id=\"coroutines\">%" PRId64 "</b></td>"
               "<td>running %" PRId64 "</td><td>runnable %" PRId64 "</td>"
               "<td>waiting %" PRId64 "</td>"
               "<td>proven leaked <b id=\"leaked\" class=\"%s\">%d</b></td>"
               "<td>suspects %" PRId64 "</td>"
               "<td>orphaned channels %" PRId64 "</td>"
               "<td>workers %d</td><td>up %.0f s</td></tr></table>\n",
            (int)getpid(), v.coroutines, v.running, v.runnable, v.waiting,
            nleaked > 0 ? "leaked" : "", nleaked > 0 ? nleaked : 0, v.suspects,
            v.orphans_total, v.workers, v.uptime_s);

    fprintf(f, "<h2>Coroutines by state</h2>\n<p>%d sample(s), one every "
               "%d s, the last %d min at most.</p>\n",
            h->n, (int)(LIVE_PERIOD_NS / 1000000000),
            (int)(LIVE_RING * LIVE_PERIOD_NS / 60000000000));
    static const char *const state_labels[] = {"running", "runnable", "waiting"};
    chart(f, "chart-states", h, 3, state_labels, state_value, NULL);

    int idx[LIVE_SITES];
    int nsites = pick_sites(h, idx);
    char labels_buf[LIVE_SITES][300];
    const char *labels[LIVE_SITES];
    for (int k = 0; k < nsites; k++) {
        const char *fn = sym_func_at_line(h->names[idx[k]].file, h->names[idx[k]].line);
        snprintf(labels_buf[k], sizeof labels_buf[k], "%s:%d%s%s%s",
                 base(h->names[idx[k]].file), h->names[idx[k]].line,
                 fn ? " (" : "", fn ? fn : "", fn ? ")" : "");
        labels[k] = labels_buf[k];
    }
    fputs("<h2>Coroutines by spawn site</h2>\n", f);
    if (nsites)
        chart(f, "chart-sites", h, nsites, labels, site_value, idx);
    else
        fputs("<p>No samples yet.</p>\n", f);

    fprintf(f, "<h2>Proven leaks: <span class=\"%s\">%d</span></h2>\n",
            nleaked > 0 ? "leaked" : "", nleaked > 0 ? nleaked : 0);
    if (nleaked > 0) {
        fputs("<p>Blocked forever (a nil channel, an orphaned channel, a "
              "deadlock): their stacks, counted. Waits, wait objects and "
              "spawn sites: <a href=\"/debug/pprof/goroutineleak?debug=2\">every "
              "stack</a>, <a href=\"/debug/leash?format=text\">leash dump</a>."
              "</p>\n<pre id=\"leaks\">", f);
        if (nleaks > LIVE_LEAK_TEXT) {
            leaks[LIVE_LEAK_TEXT] = 0;
            html(f, leaks);
            fputs("\n... (cut: see the full profile)", f);
        } else {
            html(f, leaks);
        }
        fputs("</pre>\n", f);
    } else {
        fputs("<p id=\"leaks\">None.</p>\n", f);
    }

    fputs("<h2>Profiles</h2>\n<ul id=\"profiles\">\n", f);
    for (size_t i = 0; i < sizeof links / sizeof *links; i++)
        fprintf(f, "<li><a href=\"%s\">%s</a></li>\n", links[i].href,
                links[i].text);
    fputs("</ul>\n", f);

    /* The samples, for scripts and tests. */
    fprintf(f, "<script type=\"application/json\" id=\"leash-samples\">"
               "{\"period_s\":%d,\"sites\":[",
            (int)(LIVE_PERIOD_NS / 1000000000));
    for (int k = 0; k < h->nnames; k++) {
        char site[300];
        snprintf(site, sizeof site, "%s:%d", h->names[k].file, h->names[k].line);
        fputs(k ? "," : "", f);
        json_str(f, site);
    }
    fputs("],\"samples\":[", f);
    for (int i = 0; i < h->n; i++) {
        const sample *s = &h->s[i];
        fprintf(f, "%s\n{\"t\":%" PRId64 ",\"running\":%d,\"runnable\":%d,"
                   "\"waiting\":%d,\"sites\":{",
                i ? "," : "", s->unix_ms, s->state[0], s->state[1], s->state[2]);
        bool first = true;
        for (int j = 0; j < LIVE_SITES; j++)
            if (s->site[j] >= 0) {
                fprintf(f, "%s\"%d\":%d", first ? "" : ",", s->site[j], s->site_n[j]);
                first = false;
            }
        fputs("}}", f);
    }
    fputs("]}</script>\n</body>\n</html>\n", f);
    free(h);
    free(leaks);
    if (fclose(f) != 0) {
        free(*buf);
        *buf = NULL;
        return LEASH_ENOMEM;
    }
    return 0;
}

typedef struct {
    char **buf;
    size_t *len;
} page_job;

static intptr_t page_on_thread(void *p) {
    page_job *j = p;
    return build_page(j->buf, j->len);
}

/* Symbolising and formatting want more stack than a coroutine has. */
int live_page(char **buf, size_t *len) {
    if (sched_ensure_started() < 0)
        return LEASH_ENOMEM;
    page_job j = {buf, len};
    return (int)diag_on_thread(page_on_thread, &j);
}
