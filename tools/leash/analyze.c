/* SPDX-License-Identifier: MIT */
/*
 * analyze.c — `leash analyze FILE|-`: summarise a goroutine dump.
 *
 * Reads, in one pass over the lines:
 *   - Go's runtime.Stack(all) / pprof debug=2 text, also inside a panic or
 *     SIGQUIT traceback: "goroutine N [state, M minutes]:", function lines
 *     (arguments stripped), "\tfile:line +0x..", "created by F [in
 *     goroutine N]";
 *   - leash's debug=2 (the same) and debug=3 text: `goroutine N "name"
 *     [state, 1m2.345s]: LEAKED (...)`, 4-space info lines ("waiting for
 *     I/O with no deadline", "spawned at LOC in F by goroutine N"), frames
 *     as "  func" + "\tfile:line";
 *   - Go's (and leash's) debug=1 profile text: "N @ 0x..", "#\t0x..\tf+0x..\tloc".
 * Goroutines with the same state and stack form a group. Flags:
 *   leak     nil-channel waits, select with no cases, leash's LEAKED;
 *   suspect  IO wait (unless leash says it has a deadline), leash's
 *            SUSPECT, groups of --crowd or more parked at one site,
 *            waits of --long minutes or more.
 */
#define _GNU_SOURCE 1
#include "analyze.h"
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    int first;              /* a record */
    long long count;
    double max_minutes;
    bool leak, suspect;
    char why[160];
} group;

static void *grow(void *p, int *cap, int need, size_t sz) {
    if (need <= *cap)
        return p;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *v = realloc(p, sz * (size_t)nc);
    if (!v) {
        cli_err("analyze: out of memory");
        exit(EXIT_PROTO);
    }
    *cap = nc;
    return v;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

/* "main.(*T).m(0x1, ...)" -> "main.(*T).m": drops the last (...) group. */
static char *strip_args(char *s) {
    s = trim(s);
    size_t n = strlen(s);
    if (n && s[n - 1] == ')') {
        int depth = 0;
        for (size_t i = n; i-- > 0;) {
            if (s[i] == ')')
                depth++;
            else if (s[i] == '(' && --depth == 0) {
                if (i > 0)
                    s[i] = 0;
                break;
            }
        }
    }
    return s;
}

/* "\t/path/f.go:12 +0x2a fp=.." -> "/path/f.go:12"; NULL if not a location. */
static char *location(char *s) {
    s = trim(s);
    s[strcspn(s, " ")] = 0;
    char *colon = strrchr(s, ':');
    if (!colon || !colon[1])
        return NULL;
    for (char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return NULL;
    return s;
}

/* "3.626s", "1m2.345s", "2h0m1.000s" -> minutes; -1 if not a duration. */
static double parse_duration(const char *s) {
    double total = 0;
    bool any = false;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s)
            return -1;
        if (*end == 'h')
            total += v * 60;
        else if (*end == 'm')
            total += v;
        else if (*end == 's')
            total += v / 60;
        else
            return -1;
        any = true;
        s = end + 1;
    }
    return any ? total : -1;
}

/* Parses "[state, 5 minutes, locked to thread]" contents into r. */
static void parse_state(char *in, grec *r, dump *d) {
    r->state = in;
    r->minutes = -1;
    char *save = NULL;
    bool first = true;
    for (char *p = strtok_r(in, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        p = trim(p);
        if (first) {
            r->state = p;
            first = false;
            continue;
        }
        double m;
        int used = 0;
        if (sscanf(p, "%lf minute%n", &m, &used) == 1 && used > 0)
            r->minutes = m;
        else if ((m = parse_duration(p)) >= 0) {
            r->minutes = m;
            d->leash3 = true;
        }
    }
}

static grec *new_rec(dump *d) {
    d->r = grow(d->r, &d->cap, d->n + 1, sizeof *d->r);
    grec *r = &d->r[d->n++];
    memset(r, 0, sizeof *r);
    r->count = 1;
    r->state = "unknown";
    r->minutes = -1;
    r->io_deadline = -1;
    r->first_frame = d->nf;
    return r;
}

static void add_frame(dump *d, grec *r, const char *func, const char *loc) {
    d->f = grow(d->f, &d->capf, d->nf + 1, sizeof *d->f);
    d->f[d->nf++] = (frame){func, loc};
    r->nframes++;
}

/* Past a Go-quoted string at p (leash writes names with %q): what
 * follows its closing quote, or p if it does not start one. A name may
 * hold brackets: they must not be taken for the state's. */
static char *skip_quoted(char *p) {
    if (*p != '"')
        return p;
    for (char *q = p + 1; *q; q++) {
        if (*q == '\\' && q[1])
            q++;
        else if (*q == '"')
            return q + 1;
    }
    return p;
}

/* "goroutine 18 [chan send]:" (optionally `"name"`, gp=/m= fields, and a
 * leash "LEAKED (...)"/"SUSPECT (...)" tail). */
static bool parse_header(char *l, dump *d) {
    if (strncmp(l, "goroutine ", 10) || l[10] < '0' || l[10] > '9')
        return false;
    char *name = l + 10;
    while (*name >= '0' && *name <= '9')
        name++;
    while (*name == ' ')
        name++;
    char *lb = strchr(skip_quoted(name), '['), *rb = lb ? strstr(lb, "]:") : NULL;
    if (!lb || !rb)
        return false;
    grec *r = new_rec(d);
    r->id = strtoll(l + 10, NULL, 10);
    *rb = 0;
    char *tail = trim(rb + 2);
    parse_state(lb + 1, r, d);
    char *p;
    if ((p = strstr(tail, "LEAKED"))) {
        r->leak_note = p;
        d->leash3 = true;
    } else if ((p = strstr(tail, "SUSPECT"))) {
        r->sus_note = p;
        d->leash3 = true;
    }
    return true;
}

int analyze_parse(char *buf, dump *d) {
    grec *cur = NULL;
    const char *pending = NULL;   /* a function waiting for its location */
    bool creator_next = false;
    char *save = NULL;
    for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        size_t n = strlen(l);
        if (n && l[n - 1] == '\r')
            l[--n] = 0;
        if (!strncmp(l, "goroutine profile: total", 24) ||
            !strncmp(l, "goroutineleak profile: total", 28)) {
            d->debug1 = true;
            cur = NULL;
            continue;
        }
        if (parse_header(l, d)) {
            cur = &d->r[d->n - 1];
            pending = NULL;
            creator_next = false;
            continue;
        }
        if (d->debug1 && l[0] >= '0' && l[0] <= '9' && strstr(l, " @ ")) {
            cur = new_rec(d);
            cur->count = strtoll(l, NULL, 10);
            continue;
        }
        if (!cur)
            continue;
        if (d->debug1 && !strncmp(l, "#\t", 2)) {
            /* "#\t0xADDR\tfunc+0xOFF\tfile:line" */
            char *f[4] = {0};
            int k = 0;
            for (char *p = l; k < 4 && p; k++) {
                f[k] = p;
                p = strchr(p, '\t');
                if (p)
                    *p++ = 0;
            }
            if (k == 4 && f[2] && f[3]) {
                char *plus = strstr(f[2], "+0x");
                if (plus)
                    *plus = 0;
                add_frame(d, cur, f[2], location(f[3]) ? f[3] : "?");
            }
            continue;
        }
        if (l[0] == '\t') {
            char *loc = location(l);
            if (!loc)
                continue;
            if (creator_next) {
                cur->creator_loc = loc;
                creator_next = false;
            } else if (pending) {
                add_frame(d, cur, pending, loc);
                pending = NULL;
            }
            continue;
        }
        if (!strncmp(l, "created by ", 11)) {
            char *f = l + 11, *in = strstr(f, " in goroutine ");
            if (in)
                *in = 0;
            cur->creator = trim(f);
            creator_next = true;
            pending = NULL;
            continue;
        }
        if (!strncmp(l, "    ", 4)) { /* leash debug=3 detail */
            char *t = trim(l);
            d->leash3 = true;
            if (strstr(t, "waiting for I/O with no deadline"))
                cur->io_deadline = 0;
            else if (strstr(t, "waiting for I/O with a deadline"))
                cur->io_deadline = 1;
            else if (!strncmp(t, "spawned at ", 11)) {
                char *loc = t + 11, *in = strstr(loc, " in "),
                     *by = in ? strstr(in + 4, " by goroutine") : NULL;
                if (in && by) {
                    *in = 0;
                    *by = 0;
                    cur->creator_loc = loc;
                    cur->creator = in + 4;
                }
            }
            continue;
        }
        if (!l[0] || !strncmp(l, "...", 3) || strchr(l, '=') ||
            !strncmp(l, "panic:", 6) || !strncmp(l, "fatal error:", 12))
            continue;
        pending = strip_args(l);
        creator_next = false;
    }
    return d->n;
}

/* ------------------------------------------------------------ grouping */

static int cmp_key(const void *a, const void *b, void *keys) {
    const char *const *k = keys;
    return strcmp(k[*(const int *)a], k[*(const int *)b]);
}

bool analyze_blocking_state(const char *s) {
    return strcmp(s, "running") && strcmp(s, "runnable") &&
           strcmp(s, "syscall") && strcmp(s, "unknown") && strcmp(s, "idle");
}

static int cmp_group(const void *a, const void *b) {
    const group *x = a, *y = b;
    if (x->leak != y->leak)
        return x->leak ? -1 : 1;
    return (y->count > x->count) - (y->count < x->count);
}

static void flag(group *g, bool leak, const char *fmt, const char *arg) {
    if (leak)
        g->leak = true;
    else
        g->suspect = true;
    if (!g->why[0])
        snprintf(g->why, sizeof g->why, fmt, arg);
}

/* Groups the records; returns the groups (malloc'd), most first. */
static group *make_groups(dump *d, int *ng, long crowd, double long_min) {
    const char **keys = malloc(sizeof *keys * (size_t)d->n);
    int *ord = malloc(sizeof *ord * (size_t)d->n);
    group *gs = malloc(sizeof *gs * (size_t)d->n);
    if (!keys || !ord || !gs) {
        cli_err("analyze: out of memory");
        exit(EXIT_PROTO);
    }
    for (int i = 0; i < d->n; i++) {
        grec *r = &d->r[i];
        size_t len = strlen(r->state) + 2;
        for (int k = 0; k < r->nframes; k++)
            len += strlen(d->f[r->first_frame + k].func) +
                   strlen(d->f[r->first_frame + k].loc) + 2;
        char *key = malloc(len), *p = key;
        if (!key)
            exit(EXIT_PROTO);
        p += sprintf(p, "%s|", r->state);
        for (int k = 0; k < r->nframes; k++)
            p += sprintf(p, "%s@%s|", d->f[r->first_frame + k].func,
                         d->f[r->first_frame + k].loc);
        r->key = key;
        keys[i] = key;
        ord[i] = i;
    }
    qsort_r(ord, (size_t)d->n, sizeof *ord, cmp_key, keys);
    int n = 0;
    for (int k = 0; k < d->n; k++) {
        grec *r = &d->r[ord[k]];
        if (k == 0 || strcmp(keys[ord[k - 1]], keys[ord[k]]))
            gs[n++] = (group){.first = ord[k], .max_minutes = -1};
        group *g = &gs[n - 1];
        g->count += r->count;
        if (r->minutes > g->max_minutes)
            g->max_minutes = r->minutes;
        if (r->leak_note)
            flag(g, true, "%s", r->leak_note);
        else if (strstr(r->state, "(nil chan)") ||
                 !strcmp(r->state, "select (no cases)"))
            flag(g, true, "blocked forever: %s", r->state);
        else if (r->sus_note)
            flag(g, false, "%s", r->sus_note);
        else if (!strncmp(r->state, "IO wait", 7) && r->io_deadline != 1)
            flag(g, false, "%s", r->io_deadline == 0
                                     ? "I/O wait with no deadline"
                                     : "I/O wait: is there a deadline?");
    }
    for (int i = 0; i < n; i++) {
        group *g = &gs[i];
        const grec *r = &d->r[g->first];
        char buf[64];
        if (!g->leak && g->count >= crowd && analyze_blocking_state(r->state)) {
            snprintf(buf, sizeof buf, "%lld", g->count);
            g->why[0] = 0;
            flag(g, false, "%s parked at one site", buf);
        } else if (!g->leak && g->max_minutes >= long_min &&
                   analyze_blocking_state(r->state)) {
            snprintf(buf, sizeof buf, "%.0f", g->max_minutes);
            flag(g, false, "parked for %s minute(s) or more", buf);
        }
    }
    qsort(gs, (size_t)n, sizeof *gs, cmp_group);
    free(keys);
    free(ord);
    *ng = n;
    return gs;
}

/* ------------------------------------------------------------ counting */

typedef struct {
    const char *a, *b;
    long long n;
} tally;

static int tally_add(tally **t, int *n, int *cap, const char *a, const char *b,
                     long long c) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*t)[i].a, a) && !strcmp((*t)[i].b, b)) {
            (*t)[i].n += c;
            return 0;
        }
    *t = grow(*t, cap, *n + 1, sizeof **t);
    (*t)[(*n)++] = (tally){a, b, c};
    return 0;
}

static int cmp_tally(const void *x, const void *y) {
    const tally *a = x, *b = y;
    return (b->n > a->n) - (b->n < a->n);
}

/* ------------------------------------------------------------ output */

static void print_text(const char *src, dump *d, group *gs, int ng,
                       tally *st, int nst, tally *cr, int ncr, long long total,
                       int leaks, int suspects, long top) {
    printf("leash analyze: %s: %s, %lld goroutine(s), %d group(s)\n\n", src,
           d->debug1 ? "goroutine profile (debug=1)"
           : d->leash3 ? "leash dump (debug=3)"
                       : "goroutine stacks (debug=2)",
           total, ng);
    printf("By state:\n");
    for (int i = 0; i < nst; i++)
        printf("  %8lld  %s\n", st[i].n, cli_cell(st[i].a));
    printf("\nBy creator:\n");
    for (int i = 0; i < ncr; i++)
        printf("  %8lld  %s  %s\n", cr[i].n, cli_cell(cr[i].a),
               cli_cell(cr[i].b));
    printf("\nFlags: %d leak(s), %d suspect(s)\n", leaks, suspects);
    for (int i = 0; i < ng; i++) {
        group *g = &gs[i];
        if (!g->leak && !g->suspect)
            continue;
        const grec *r = &d->r[g->first];
        const char *top_f = r->nframes ? d->f[r->first_frame].func : "?";
        const char *top_l = r->nframes ? d->f[r->first_frame].loc : "?";
        printf("  %-8s %lld x [%s] in %s (%s): %s\n",
               g->leak ? "LEAK" : "SUSPECT", g->count, cli_cell(r->state),
               cli_cell(top_f), cli_cell(top_l), cli_cell(g->why));
    }
    printf("\nGroups (identical state and stack, most first):\n");
    for (int i = 0; i < ng && (top == 0 || i < top); i++) {
        group *g = &gs[i];
        const grec *r = &d->r[g->first];
        printf("\n%lld goroutine(s) [%s", g->count, cli_cell(r->state));
        if (g->max_minutes >= 0)
            printf(", up to %.1f minutes", g->max_minutes);
        printf("]%s%s\n", g->leak ? "  LEAK: " : g->suspect ? "  SUSPECT: " : "",
               g->why[0] ? cli_cell(g->why) : "");
        for (int k = 0; k < r->nframes; k++)
            printf("    %s\n        %s\n", cli_cell(d->f[r->first_frame + k].func),
                   cli_cell(d->f[r->first_frame + k].loc));
        if (r->creator)
            printf("    created by %s\n        %s\n", cli_cell(r->creator),
                   cli_cell(r->creator_loc));
    }
    if (top && ng > top)
        printf("\n... %d more group(s) (--top 0 shows all)\n", ng - (int)top);
}

static void print_json(const char *src, dump *d, group *gs, int ng, tally *st,
                       int nst, tally *cr, int ncr, long long total, int leaks,
                       int suspects) {
    printf("{\"format\":\"leash-analyze/1\",\"source\":");
    cli_json_str(stdout, src);
    printf(",\"kind\":\"%s\",\"goroutines\":%lld,\"leaks\":%d,\"suspects\":%d,"
           "\"by_state\":{",
           d->debug1 ? "debug1" : d->leash3 ? "leash3" : "debug2", total,
           leaks, suspects);
    for (int i = 0; i < nst; i++) {
        printf("%s", i ? "," : "");
        cli_json_str(stdout, st[i].a);
        printf(":%lld", st[i].n);
    }
    printf("},\"by_creator\":[");
    for (int i = 0; i < ncr; i++) {
        printf("%s{\"func\":", i ? "," : "");
        cli_json_str(stdout, cr[i].a);
        printf(",\"location\":");
        cli_json_str(stdout, cr[i].b);
        printf(",\"count\":%lld}", cr[i].n);
    }
    printf("],\"groups\":[");
    for (int i = 0; i < ng; i++) {
        group *g = &gs[i];
        const grec *r = &d->r[g->first];
        printf("%s\n{\"count\":%lld,\"state\":", i ? "," : "", g->count);
        cli_json_str(stdout, r->state);
        if (g->max_minutes >= 0)
            printf(",\"max_minutes\":%.3f", g->max_minutes);
        printf(",\"flag\":%s", g->leak ? "\"leak\"" : g->suspect ? "\"suspect\"" : "null");
        printf(",\"why\":");
        cli_json_str(stdout, g->why);
        printf(",\"frames\":[");
        for (int k = 0; k < r->nframes; k++) {
            printf("%s{\"func\":", k ? "," : "");
            cli_json_str(stdout, d->f[r->first_frame + k].func);
            printf(",\"location\":");
            cli_json_str(stdout, d->f[r->first_frame + k].loc);
            printf("}");
        }
        printf("],\"created_by\":");
        if (r->creator) {
            printf("{\"func\":");
            cli_json_str(stdout, r->creator);
            printf(",\"location\":");
            cli_json_str(stdout, r->creator_loc ? r->creator_loc : "?");
            printf("}");
        } else {
            printf("null");
        }
        printf("}");
    }
    printf("\n]}\n");
}

/* ------------------------------------------------------------ command */

char *analyze_read(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            if (cap >= ((size_t)1 << 31))
                break; /* 2 GiB: enough */
            char *v = realloc(buf, cap * 2 + 1);
            if (!v) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = v;
            cap *= 2;
        }
    }
    int err = ferror(f) ? errno : 0;
    if (f != stdin)
        fclose(f);
    if (err || !buf) {
        free(buf);
        errno = err ? err : ENOMEM;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static bool is_dir(const char *p) {
    struct stat st;
    return strcmp(p, "-") && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int cmd_analyze(int argc, char **argv) {
    static const char *const known[] = {"--json", "--crowd=", "--long=",
                                        "--top=", "--timeout=", NULL};
    cli_opts o;
    /* Sources (paths, "-", directories, http:// URLs): not PIDs, so
     * collect them first. */
    const char **src = calloc((size_t)argc + 1, sizeof *src);
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!src || !rest) {
        cli_err("analyze: out of memory");
        return EXIT_PROTO;
    }
    int nsrc = 0, nrest = 0;
    for (int i = 0; i < argc; i++) {
        bool is_val = i > 0 && (!strcmp(argv[i - 1], "--crowd") ||
                                !strcmp(argv[i - 1], "--long") ||
                                !strcmp(argv[i - 1], "--top") ||
                                !strcmp(argv[i - 1], "--timeout"));
        if (i > 0 && !is_val && (argv[i][0] != '-' || !strcmp(argv[i], "-")))
            src[nsrc++] = argv[i];
        else
            rest[nrest++] = argv[i];
    }
    int rc = cli_parse(nrest, rest, known, false, &o);
    free(rest);
    if (rc) {
        free(src);
        return rc;
    }
    if (!nsrc) {
        cli_err("analyze: missing FILE (\"-\" reads standard input; "
                "several files, directories or http:// URLs: the fleet view)");
        free(src);
        return EXIT_USAGE;
    }
    char *end;
    long crowd = 10, top = 20, timeout_ms = 10000;
    double long_min = 1;
    if (o.set[1] && ((crowd = strtol(o.val[1], &end, 10)) < 2 || *end)) {
        cli_err("analyze: --crowd must be a count of 2 or more");
        free(src);
        return EXIT_USAGE;
    }
    if (o.set[2] && ((long_min = strtod(o.val[2], &end)) < 0 || *end || end == o.val[2])) {
        cli_err("analyze: --long must be a number of minutes");
        free(src);
        return EXIT_USAGE;
    }
    if (o.set[3] && ((top = strtol(o.val[3], &end, 10)) < 0 || *end)) {
        cli_err("analyze: --top must be a count (0: all)");
        free(src);
        return EXIT_USAGE;
    }
    if (o.set[4] && ((timeout_ms = strtol(o.val[4], &end, 10)) < 1 ||
                     timeout_ms > 3600000 || *end)) {
        cli_err("analyze: --timeout must be milliseconds (1 to 3600000)");
        free(src);
        return EXIT_USAGE;
    }
    int stdin_uses = 0;
    for (int i = 0; i < nsrc; i++)
        stdin_uses += !strcmp(src[i], "-");
    if (stdin_uses > 1) {
        cli_err("analyze: \"-\" (standard input) given more than once");
        free(src);
        return EXIT_USAGE;
    }
    if (nsrc > 1 || is_dir(src[0])) {
        rc = fleet_analyze(src, nsrc, o.set[0], crowd, (int)timeout_ms);
        free(src);
        return rc;
    }
    const char *file = src[0];
    free(src);
    size_t len;
    char *buf;
    if (!strncmp(file, "http://", 7) || !strncmp(file, "https://", 8)) {
        char why[256];
        rc = fleet_fetch(file, (int)timeout_ms, &buf, &len, why, sizeof why);
        if (rc) {
            cli_err("analyze: %s: %s", file, why);
            return rc;
        }
    } else if (!(buf = analyze_read(file, &len))) {
        cli_err("analyze: cannot read %s: %s", file, strerror(errno));
        return EXIT_NOPROC;
    }
    if (len >= 2 && (unsigned char)buf[0] == 0x1f && (unsigned char)buf[1] == 0x8b) {
        cli_err("analyze: %s is a gzipped (pprof) profile: read it with "
                "`go tool pprof`, or fetch debug=2 text", file);
        free(buf);
        return EXIT_PROTO;
    }
    if (memchr(buf, 0, len)) {
        cli_err("analyze: %s is binary, not a goroutine dump", file);
        free(buf);
        return EXIT_PROTO;
    }
    dump d = {0};
    if (analyze_parse(buf, &d) == 0) {
        cli_err("analyze: %s is not a goroutine dump (want Go's "
                "runtime.Stack/pprof debug=1 or 2 text, or a leash dump)",
                file);
        free(buf);
        return EXIT_PROTO;
    }
    int ng;
    group *gs = make_groups(&d, &ng, crowd, long_min);
    tally *st = NULL, *cr = NULL;
    int nst = 0, cst = 0, ncr = 0, ccr = 0, leaks = 0, suspects = 0;
    long long total = 0;
    for (int i = 0; i < d.n; i++) {
        grec *r = &d.r[i];
        total += r->count;
        tally_add(&st, &nst, &cst, r->state, "", r->count);
        if (r->creator)
            tally_add(&cr, &ncr, &ccr, r->creator,
                      r->creator_loc ? r->creator_loc : "?", r->count);
    }
    for (int i = 0; i < ng; i++) {
        leaks += gs[i].leak ? (int)gs[i].count : 0;
        suspects += !gs[i].leak && gs[i].suspect ? (int)gs[i].count : 0;
    }
    if (nst)
        qsort(st, (size_t)nst, sizeof *st, cmp_tally);
    if (ncr)
        qsort(cr, (size_t)ncr, sizeof *cr, cmp_tally);
    const char *name = strcmp(file, "-") ? file : "(stdin)";
    if (o.set[0])
        print_json(name, &d, gs, ng, st, nst, cr, ncr, total, leaks, suspects);
    else
        print_text(name, &d, gs, ng, st, nst, cr, ncr, total, leaks, suspects,
                   top);
    for (int i = 0; i < d.n; i++)
        free(d.r[i].key);
    free(d.r);
    free(d.f);
    free(gs);
    free(st);
    free(cr);
    free(buf);
    return leaks ? EXIT_LEAKS : EXIT_OK;
}
