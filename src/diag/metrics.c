/* SPDX-License-Identifier: MIT */
/*
 * metrics.c — figures and reports for the live-process tools, computed
 * from one snapshot: Prometheus text (/metrics), the agent's vitals,
 * ps-info, top groups and leak reports.
 *
 * Everything here runs on a thread with a big stack (diag_on_thread):
 * a snapshot is taken, classified (proven leaks, the core's suspects),
 * then the per-site suspects are added:
 *   crowd      >= LEASH_SUSPECT_CROWD (default 100) coroutines waiting
 *              with the same spawn site and wait reason (LeakProf's
 *              signal: a site where blocked coroutines pile up), *and*
 *              either the site's count keeps growing (sites.c) or most
 *              of them (half or more) have waited LEASH_SUSPECT_WAIT_MS.
 *              A count alone means nothing: a healthy server parks a
 *              reader and a writer per client, thousands of them, each
 *              for a few milliseconds at a time;
 *   long_wait  parked >= LEASH_SUSPECT_WAIT_MS (default 60000) on a
 *              channel, a select or a sync primitive.
 * Coroutines of the tools themselves (g->system) are never
 * suspects.
 */
#define _GNU_SOURCE 1
#include "debug.h"

#include <dirent.h>
#include <inttypes.h>
#include <unistd.h>

/* ------------------------------------------------------ process facts */

int dbg_os_threads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int64_t dbg_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return -1;
    long long size = 0, rss = 0;
    int n = fscanf(f, "%lld %lld", &size, &rss);
    fclose(f);
    return n == 2 ? (int64_t)rss * sysconf(_SC_PAGESIZE) : -1;
}

double dbg_uptime_s(void) {
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the name may hold spaces and parens */
    if (!p)
        return -1;
    unsigned long long start = 0;
    /* After ")": state is field 3, starttime field 22. */
    int field = 2;
    char *save = NULL; /* strtok's hidden state is shared by all threads */
    for (char *tok = strtok_r(p + 1, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save))
        if (++field == 22) {
            start = strtoull(tok, NULL, 10);
            break;
        }
    double up = -1;
    f = fopen("/proc/uptime", "re");
    if (!f)
        return -1;
    if (fscanf(f, "%lf", &up) != 1)
        up = -1;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (up < 0 || hz <= 0 || field != 22)
        return -1;
    double r = up - (double)start / (double)hz;
    return r < 0 ? 0 : r;
}

/* The executable's file name, whole: /proc/self/comm, which ps(1) shows,
 * is cut to 15 characters. comm is the fallback (a deleted or unreadable
 * executable); control characters would break the line protocols. */
void dbg_proc_name(char *buf, size_t n) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    buf[0] = 0;
    if (len > 0) {
        exe[len] = 0;
        char *del = strstr(exe, " (deleted)");
        if (del && !del[10])
            *del = 0;
        const char *slash = strrchr(exe, '/');
        snprintf(buf, n, "%s", slash ? slash + 1 : exe);
    }
    FILE *f = buf[0] ? NULL : fopen("/proc/self/comm", "re");
    if (f) {
        if (fgets(buf, (int)n, f))
            buf[strcspn(buf, "\n")] = 0;
        fclose(f);
    }
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
    if (!buf[0])
        snprintf(buf, n, "?");
}

/* By the runtime's own mark, never by name: a user coroutine named
 * "leash/x" must not hide from the leak checks. */
bool dbg_internal_g(const dgor *d) { return d->system; }

/* ------------------------------------------------------------ suspects */

const char *dbg_suspect_key(int k) {
    switch (k) {
    case DBG_SUS_HOG: return "hog";
    case DBG_SUS_IO_NO_DEADLINE: return "io_no_deadline";
    case DBG_SUS_CANCELED: return "canceled_blocked";
    case DBG_SUS_CROWD: return "crowd";
    case DBG_SUS_LONG_WAIT: return "long_wait";
    case DBG_SUS_OTHER: return "other";
    default: return "none";
    }
}

const char *dbg_suspect_text(int k) {
    switch (k) {
    case DBG_SUS_HOG: return "running without yielding (an endless loop?)";
    case DBG_SUS_IO_NO_DEADLINE: return "waiting for I/O with no deadline";
    case DBG_SUS_CANCELED:
        return "its context is canceled but it still waits on something else";
    case DBG_SUS_CROWD: return "many coroutines parked at the same site";
    case DBG_SUS_LONG_WAIT: return "parked for a long time";
    case DBG_SUS_OTHER: return "suspect";
    default: return "";
    }
}

/* ------------------------------------------------------------ grouping */

/* Coroutines grouped by spawn site (and state): records sorted by key,
 * runs of equal keys are groups. */
typedef struct {
    int first;          /* a record of the group */
    int64_t count, leaked, suspects, max_wait;
} dgroup;

typedef struct {
    const dsnap *s;
    bool by_state;
} gctx;

static int key_state(const dgor *d) {
    return d->state == G_WAITING ? 100 + d->reason : d->state;
}

static int cmp_rec(const void *a, const void *b, void *arg) {
    const gctx *G = arg;
    const dgor *x = &G->s->g[*(const int *)a], *y = &G->s->g[*(const int *)b];
    if (x->spawn_file != y->spawn_file) {
        if (!x->spawn_file || !y->spawn_file)
            return x->spawn_file ? 1 : -1;
        int c = strcmp(x->spawn_file, y->spawn_file);
        if (c)
            return c;
    }
    if (x->spawn_line != y->spawn_line)
        return x->spawn_line < y->spawn_line ? -1 : 1;
    if (!x->spawn_file && x->spawn_pc != y->spawn_pc)
        return x->spawn_pc < y->spawn_pc ? -1 : 1;
    if (G->by_state && key_state(x) != key_state(y))
        return key_state(x) < key_state(y) ? -1 : 1;
    return 0;
}

/* Groups the records with filter[i] (NULL: all); *groups is malloc'd and
 * gmember[i] (if given) gets record i's group (-1 if filtered out).
 * Returns the number of groups or LEASH_ENOMEM. */
static int group_records(const dsnap *s, bool by_state, const bool *filter,
                         const int *kind, dgroup **groups, int *gmember) {
    int *ord = malloc(sizeof *ord * (size_t)(s->n ? s->n : 1));
    dgroup *gs = malloc(sizeof *gs * (size_t)(s->n ? s->n : 1));
    if (!ord || !gs) {
        free(ord);
        free(gs);
        return LEASH_ENOMEM;
    }
    int m = 0;
    for (int i = 0; i < s->n; i++) {
        if (gmember)
            gmember[i] = -1;
        if (!filter || filter[i])
            ord[m++] = i;
    }
    gctx G = {s, by_state};
    qsort_r(ord, (size_t)m, sizeof *ord, cmp_rec, &G);
    int ng = 0;
    for (int k = 0; k < m; k++) {
        const dgor *d = &s->g[ord[k]];
        if (k == 0 || cmp_rec(&ord[k - 1], &ord[k], &G) != 0)
            gs[ng++] = (dgroup){.first = ord[k]};
        dgroup *g = &gs[ng - 1];
        g->count++;
        g->leaked += d->leak != LEAK_NONE;
        g->suspects += kind && kind[ord[k]] != DBG_SUS_NONE;
        if (d->wait_ns > g->max_wait)
            g->max_wait = d->wait_ns;
        if (gmember)
            gmember[ord[k]] = ng - 1;
    }
    free(ord);
    *groups = gs;
    return ng;
}

static int cmp_count_desc(const void *a, const void *b) {
    const dgroup *x = a, *y = b;
    return x->count == y->count ? 0 : x->count > y->count ? -1 : 1;
}

static void site_of(const dgor *d, char *buf, size_t n, const char **func) {
    dsym sy;
    sym_lookup(d->spawn_pc, true, &sy);
    const char *file = d->spawn_file ? d->spawn_file : sy.file;
    int line = d->spawn_file ? d->spawn_line : sy.line;
    snprintf(buf, n, "%s:%d", file ? file : "?", line);
    *func = d->spawn_pc ? sy.func : "?";
}

static const char *state_name(const dgor *d) {
    switch (d->state) {
    case G_RUNNING: return "running";
    case G_RUNNABLE: return "runnable";
    case G_WAITING: return wait_reason_str(d->reason);
    default: return "idle";
    }
}

void dbg_suspects(const dsnap *s, int *kind) {
    int64_t crowd = (int64_t)env_u64("LEASH_SUSPECT_CROWD", 100, 2, INT32_MAX);
    int64_t long_ns =
        (int64_t)env_u64("LEASH_SUSPECT_WAIT_MS", 60000, 1, INT32_MAX) * 1000000;
    bool *waiting = calloc((size_t)(s->n ? s->n : 1), sizeof *waiting);
    int *member = malloc(sizeof *member * (size_t)(s->n ? s->n : 1));
    for (int i = 0; i < s->n; i++) {
        const dgor *d = &s->g[i];
        kind[i] = DBG_SUS_NONE;
        if (d->leak != LEAK_NONE || dbg_internal_g(d) || d->self)
            continue;
        switch (d->suspect) {
        case SUSPECT_NONE: break;
        case SUSPECT_HOG: kind[i] = DBG_SUS_HOG; continue;
        case SUSPECT_IO_NO_DEADLINE: kind[i] = DBG_SUS_IO_NO_DEADLINE; continue;
        case SUSPECT_CANCELED_BLOCKED: kind[i] = DBG_SUS_CANCELED; continue;
        default: kind[i] = DBG_SUS_OTHER; continue;
        }
        if (d->state != G_WAITING)
            continue;
        switch (d->reason) {
        case WR_SLEEP: case WR_IO_WAIT: case WR_SYSCALL: case WR_JOIN:
        case WR_PREEMPTED: case WR_NONE:
            continue;
        default:
            break;
        }
        /* Waiting for a signal (leash_signal_notify) is what such a
         * coroutine is for, however long it takes. */
        if (d->has_chan && d->chan.signals)
            continue;
        if (waiting)
            waiting[i] = true;
        if (d->wait_ns >= long_ns)
            kind[i] = DBG_SUS_LONG_WAIT;
    }
    dgroup *gs = NULL;
    int ng = waiting && member
                 ? group_records(s, true, waiting, NULL, &gs, member)
                 : -1;
    /* Per group: its members that waited long, and whether it is a
     * crowd (see the top of the file). */
    int64_t *old = ng > 0 ? calloc((size_t)ng, sizeof *old) : NULL;
    for (int i = 0; old && i < s->n; i++)
        if (member[i] >= 0 && s->g[i].wait_ns >= long_ns)
            old[member[i]]++;
    for (int k = 0; old && k < ng; k++) {
        const dgor *d = &s->g[gs[k].first];
        bool crowded = gs[k].count >= crowd &&
                       (2 * old[k] >= gs[k].count ||
                        diag_site_growing(d->spawn_file, d->spawn_line));
        old[k] = crowded; /* reused: the verdict */
    }
    for (int i = 0; old && i < s->n; i++)
        if (member[i] >= 0 && old[member[i]])
            kind[i] = DBG_SUS_CROWD;
    free(old);
    free(gs);
    free(member);
    free(waiting);
}

/* ------------------------------------------------------------ vitals */

static void vitals_from(const dsnap *s, const int *kind, dbg_vitals *v) {
    memset(v, 0, sizeof *v);
    v->coroutines = s->n;
    for (int i = 0; i < s->n; i++) {
        const dgor *d = &s->g[i];
        if (d->state == G_RUNNING)
            v->running++;
        else if (d->state == G_RUNNABLE)
            v->runnable++;
        else if (d->state == G_WAITING) {
            v->waiting++;
            if (d->reason >= 0 && d->reason < WR__COUNT)
                v->by_reason[d->reason]++;
            if (d->wait_ns > v->max_wait_ns && !dbg_internal_g(d))
                v->max_wait_ns = d->wait_ns;
        }
        v->leaked += d->leak != LEAK_NONE;
        if (kind[i] > DBG_SUS_NONE && kind[i] < DBG_SUS__COUNT) {
            v->suspects++;
            v->suspect_kind[kind[i]]++;
        }
    }
    for (int t = 1; t < OBJ__COUNT; t++)
        v->objects[t] = (int64_t)obj_count(t);
    v->orphans_total = atomic_load(&orphans_total);
    v->workers = leash_num_workers();
    v->sched_latency_ns = atomic_load(&S.sched_lat_max);
    v->slices_forced = atomic_load(&S.slices_forced);
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    v->cpus = c > 0 ? (int)c : 1;
    v->threads = dbg_os_threads();
    v->uptime_s = dbg_uptime_s();
    v->rss_bytes = dbg_rss_bytes();
}

static const char *obj_type_name(int t) {
    switch (t) {
    case OBJ_CHAN: return "channel";
    case OBJ_CTX: return "context";
    case OBJ_TICKER: return "ticker";
    case OBJ_GROUP: return "group";
    case OBJ_CONN: return "connection";
    default: return "object";
    }
}

/* "chan send" -> "chan_send"; "sync.Mutex.Lock" stays. */
static void keyify(char *dst, size_t n, const char *src) {
    size_t o = 0;
    for (; *src && o + 1 < n; src++) {
        char c = *src;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_';
        if (ok)
            dst[o++] = c;
        else if (o && dst[o - 1] != '_')
            dst[o++] = '_';
    }
    while (o && dst[o - 1] == '_')
        o--;
    dst[o] = 0;
}

static void write_vitals(FILE *out, const dbg_vitals *v, bool ps_only) {
    char name[256];
    dbg_proc_name(name, sizeof name);
    fprintf(out, "pid %d\nppid %d\nname %s\n", (int)getpid(), (int)getppid(),
            name);
    fprintf(out, "coroutines %" PRId64 "\nleaked %" PRId64 "\n", v->coroutines,
            v->leaked);
    fprintf(out, "version %d.%d.%d\n", LEASH_VERSION_MAJOR,
            LEASH_VERSION_MINOR, LEASH_VERSION_PATCH);
    if (ps_only)
        return;
    fprintf(out, "suspects %" PRId64 "\nos_threads %d\nworkers %d\ncpus %d\n",
            v->suspects, v->threads, v->workers, v->cpus);
    fprintf(out, "running %" PRId64 "\nrunnable %" PRId64 "\nwaiting %" PRId64
                 "\n",
            v->running, v->runnable, v->waiting);
    fprintf(out, "max_wait_ms %" PRId64 "\n", v->max_wait_ns / 1000000);
    fprintf(out, "sched_latency_us %" PRId64 "\nslices_forced %" PRIu64 "\n",
            v->sched_latency_ns / 1000, v->slices_forced);
    fprintf(out, "uptime_s %.3f\nrss_bytes %" PRId64 "\norphans_total %" PRId64
                 "\n",
            v->uptime_s, v->rss_bytes, v->orphans_total);
    for (int t = 1; t < OBJ__COUNT; t++)
        fprintf(out, "objects.%s %" PRId64 "\n", obj_type_name(t),
                v->objects[t]);
    for (int r = 1; r < WR__COUNT; r++) {
        if (!v->by_reason[r])
            continue;
        char k[64];
        keyify(k, sizeof k, wait_reason_str(r));
        fprintf(out, "wait.%s %" PRId64 "\n", k, v->by_reason[r]);
    }
    for (int k = 1; k < DBG_SUS__COUNT; k++)
        if (v->suspect_kind[k])
            fprintf(out, "suspect.%s %" PRId64 "\n", dbg_suspect_key(k),
                    v->suspect_kind[k]);
}

/* ------------------------------------------------------------ Prometheus */

static void prom_head(FILE *out, const char *name, const char *type,
                      const char *help) {
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_label(FILE *out, const char *v) {
    fputc('"', out);
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(out, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
    fputc('"', out);
}

static void write_prom(FILE *out, const dsnap *s, const int *kind,
                       const dbg_vitals *v) {
    prom_head(out, "leash_build_info", "gauge", "The leash runtime's version.");
    fprintf(out, "leash_build_info{version=\"%d.%d.%d\"} 1\n",
            LEASH_VERSION_MAJOR, LEASH_VERSION_MINOR, LEASH_VERSION_PATCH);
    prom_head(out, "leash_coroutines", "gauge",
              "Live coroutines (like Go's NumGoroutine).");
    fprintf(out, "leash_coroutines %" PRId64 "\n", v->coroutines);
    prom_head(out, "leash_coroutines_state", "gauge",
              "Live coroutines by scheduling state.");
    fprintf(out, "leash_coroutines_state{state=\"running\"} %" PRId64 "\n"
                 "leash_coroutines_state{state=\"runnable\"} %" PRId64 "\n"
                 "leash_coroutines_state{state=\"waiting\"} %" PRId64 "\n",
            v->running, v->runnable, v->waiting);
    prom_head(out, "leash_coroutines_waiting", "gauge",
              "Waiting coroutines by wait reason (Go's names).");
    for (int r = 1; r < WR__COUNT; r++) {
        if (r == WR_PREEMPTED)
            continue;
        fputs("leash_coroutines_waiting{reason=", out);
        prom_label(out, wait_reason_str(r));
        fprintf(out, "} %" PRId64 "\n", v->by_reason[r]);
    }
    prom_head(out, "leash_coroutines_spawn_site", "gauge",
              "Live coroutines by spawn site (the sites with the most).");
    dgroup *gs = NULL;
    int ng = group_records(s, false, NULL, kind, &gs, NULL);
    if (ng > 0) {
        qsort(gs, (size_t)ng, sizeof *gs, cmp_count_desc);
        int top = (int)env_u64("LEASH_METRICS_SITES", 10, 1, 1000);
        for (int i = 0; i < ng && i < top; i++) {
            char site[512];
            const char *func;
            site_of(&s->g[gs[i].first], site, sizeof site, &func);
            fputs("leash_coroutines_spawn_site{site=", out);
            prom_label(out, site);
            fputs(",func=", out);
            prom_label(out, func);
            fprintf(out, "} %" PRId64 "\n", gs[i].count);
        }
    }
    free(gs);
    prom_head(out, "leash_coroutines_leaked", "gauge",
              "Coroutines proven leaked: blocked forever (nil channel, "
              "orphaned channel, deadlock).");
    fprintf(out, "leash_coroutines_leaked %" PRId64 "\n", v->leaked);
    prom_head(out, "leash_coroutines_suspect", "gauge",
              "Coroutines suspected of leaking (not proven), by kind.");
    for (int k = 1; k < DBG_SUS__COUNT; k++)
        fprintf(out, "leash_coroutines_suspect{kind=\"%s\"} %" PRId64 "\n",
                dbg_suspect_key(k), v->suspect_kind[k]);
    prom_head(out, "leash_coroutine_max_wait_seconds", "gauge",
              "The longest current wait of a parked coroutine.");
    fprintf(out, "leash_coroutine_max_wait_seconds %.3f\n",
            (double)v->max_wait_ns / 1e9);
    prom_head(out, "leash_sched_latency_max_seconds", "gauge",
              "The longest a coroutine waited runnable for a worker over the "
              "last 10 s (scheduler latency).");
    fprintf(out, "leash_sched_latency_max_seconds %.6f\n",
            (double)v->sched_latency_ns / 1e9);
    prom_head(out, "leash_sched_slices_forced_total", "counter",
              "Run-queue slices the monitor ended because coroutines waited "
              "behind them for 10 ms.");
    fprintf(out, "leash_sched_slices_forced_total %" PRIu64 "\n",
            v->slices_forced);
    prom_head(out, "leash_objects", "gauge",
              "Live leash objects by type (internal ones included).");
    for (int t = 1; t < OBJ__COUNT; t++)
        fprintf(out, "leash_objects{type=\"%s\"} %" PRId64 "\n",
                obj_type_name(t), v->objects[t]);
    prom_head(out, "leash_orphans_total", "counter",
              "Channels proven orphaned since the process started.");
    fprintf(out, "leash_orphans_total %" PRId64 "\n", v->orphans_total);
    prom_head(out, "leash_workers", "gauge", "Worker threads (LEASH_PROCS).");
    fprintf(out, "leash_workers %d\n", v->workers);
    prom_head(out, "leash_cpus", "gauge", "Online CPUs.");
    fprintf(out, "leash_cpus %d\n", v->cpus);
    prom_head(out, "leash_os_threads", "gauge", "OS threads of the process.");
    fprintf(out, "leash_os_threads %d\n", v->threads);
    prom_head(out, "leash_uptime_seconds", "gauge", "Seconds since the process started.");
    fprintf(out, "leash_uptime_seconds %.3f\n", v->uptime_s);
    dbg_write_process_metrics(out); /* process_* (procmetrics.c) */
}

/* ------------------------------------------------------------ top */

static void tsv_field(FILE *out, const char *s, bool last) {
    for (; s && *s; s++)
        fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, out);
    fputc(last ? '\n' : '\t', out);
}

static void write_top(FILE *out, const dsnap *s, const int *kind) {
    fputs("site\tfunc\tstate\tcount\tleaked\tsuspects\tmax_wait_ms\n", out);
    dgroup *gs = NULL;
    int ng = group_records(s, true, NULL, kind, &gs, NULL);
    for (int i = 0; i < ng; i++) {
        const dgor *d = &s->g[gs[i].first];
        char site[512];
        const char *func;
        site_of(d, site, sizeof site, &func);
        if (d->name[0] && dbg_internal_g(d))
            func = d->name;
        tsv_field(out, site, false);
        tsv_field(out, func, false);
        tsv_field(out, state_name(d), false);
        fprintf(out, "%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\n",
                gs[i].count, gs[i].leaked, gs[i].suspects,
                gs[i].max_wait > 0 ? gs[i].max_wait / 1000000 : 0);
    }
    free(gs);
}

/* ------------------------------------------------------------ leaks */

static void write_leaks(FILE *out, const dsnap *s, const int *kind,
                        bool json, const dbg_vitals *v) {
    bool *sel = calloc((size_t)(s->n ? s->n : 1), sizeof *sel);
    if (!sel)
        return;
    for (int i = 0; i < s->n; i++)
        sel[i] = s->g[i].leak != LEAK_NONE;
    if (json) {
        fprintf(out, "{\"format\":\"leash-leaks/1\",\"pid\":%d,\"leaked\":%" PRId64
                     ",\"suspects\":%" PRId64 ",\"suspect_kinds\":{",
                (int)getpid(), v->leaked, v->suspects);
        bool first = true;
        for (int k = 1; k < DBG_SUS__COUNT; k++)
            if (v->suspect_kind[k]) {
                fprintf(out, "%s\"%s\":%" PRId64, first ? "" : ",",
                        dbg_suspect_key(k), v->suspect_kind[k]);
                first = false;
            }
        fputs("},\"suspect_of\":{", out);
        first = true;
        for (int i = 0; i < s->n; i++)
            if (kind[i]) {
                fprintf(out, "%s\"%" PRId64 "\":\"%s\"", first ? "" : ",",
                        s->g[i].id, dbg_suspect_key(kind[i]));
                first = false;
            }
        fputs("},\n\"leaked_dump\":", out);
        diag_format(out, LEASH_DUMP_JSON, s, sel, "goroutineleak");
        for (int i = 0; i < s->n; i++)
            sel[i] = kind[i] != DBG_SUS_NONE;
        fputs(",\"suspect_dump\":", out);
        diag_format(out, LEASH_DUMP_JSON, s, sel, "goroutine");
        fputs("}\n", out);
        free(sel);
        return;
    }
    fprintf(out, "leash: %" PRId64 " coroutine(s) proven leaked (blocked "
                 "forever)\n\n",
            v->leaked);
    if (v->leaked)
        diag_print_leash(out, s, sel);
    fprintf(out, "leash: %" PRId64 " suspect(s) (not proven)\n\n", v->suspects);
    for (int k = 1; k < DBG_SUS__COUNT; k++) {
        if (!v->suspect_kind[k])
            continue;
        fprintf(out, "-- %" PRId64 " %s (%s):\n\n", v->suspect_kind[k],
                dbg_suspect_text(k), dbg_suspect_key(k));
        for (int i = 0; i < s->n; i++)
            sel[i] = kind[i] == k;
        diag_print_leash(out, s, sel);
    }
    free(sel);
}

/* ------------------------------------------------------------ jobs */

enum { J_VITALS, J_PS, J_PROM, J_TOP, J_LEAKS, J_LEAKS_JSON, J_GET };

typedef struct {
    int what;
    FILE *out;
    dbg_vitals *v;
    coroutine *self;
} job;

static intptr_t run_job(void *p) {
    job *j = p;
    dsnap s;
    int *kind;
    int rc = diag_capture_classified(&s, j->self, sizeof *kind, (void **)&kind);
    if (rc < 0)
        return rc;
    dbg_suspects(&s, kind);
    dbg_vitals v;
    vitals_from(&s, kind, &v);
    switch (j->what) {
    case J_VITALS: write_vitals(j->out, &v, false); break;
    case J_PS: write_vitals(j->out, &v, true); break;
    case J_PROM: write_prom(j->out, &s, kind, &v); break;
    case J_TOP: write_top(j->out, &s, kind); break;
    case J_LEAKS: write_leaks(j->out, &s, kind, false, &v); break;
    case J_LEAKS_JSON: write_leaks(j->out, &s, kind, true, &v); break;
    case J_GET: *j->v = v; break;
    }
    lfree(kind);
    snapshot_free(&s);
    if (j->out && fflush(j->out) != 0)
        return LEASH_ENOMEM;
    return 0;
}

static int run(int what, FILE *out, dbg_vitals *v) {
    if ((what != J_GET && !out) || (what == J_GET && !v))
        return LEASH_EINVAL;
    if (sched_ensure_started() < 0)
        return LEASH_ENOMEM;
    job j = {what, out, v, sched_getg()};
    return (int)diag_on_thread(run_job, &j);
}

int dbg_write_vitals(FILE *out, bool ps_only) {
    return run(ps_only ? J_PS : J_VITALS, out, NULL);
}
int dbg_write_metrics(FILE *out) { return run(J_PROM, out, NULL); }
int dbg_write_top(FILE *out) { return run(J_TOP, out, NULL); }
int dbg_write_leaks(FILE *out, bool json) {
    return run(json ? J_LEAKS_JSON : J_LEAKS, out, NULL);
}
int dbg_vitals_get(dbg_vitals *v) { return run(J_GET, NULL, v); }
