/* SPDX-License-Identifier: MIT */
/*
 * leakcheck.c — goleak-style checks for tests, leak scopes, and the
 * LEASH_LEAKCHECK exit-time report.
 *
 * Scopes. leash_snapshot_take gives the caller a fresh scope whose parent
 * is the scope it had; coroutines inherit their creator's scope at spawn.
 * A check against a snapshot considers the coroutines whose scope chain
 * reaches the snapshot's scope: what that test started, directly or not,
 * and nothing a parallel test started. Scope parents live in a grow-only
 * table (ids are never reused).
 *
 * A check retries with backoff (1 ms doubling to 100 ms) until its
 * timeout, like goleak, but stops at once when every coroutine left is
 * provably stuck (diag_classify): waiting longer cannot change that.
 */
#include "diag.h"

#include <inttypes.h>
#include <time.h>
#include <unistd.h>

struct leash_snapshot {
    int64_t scope;
    int64_t prev_scope;   /* the caller's scope before, restored by free */
    coroutine *owner;
};

static struct {
    llock lock;
    int64_t *parent;      /* parent[scope] */
    int64_t n, cap;
} SC = {.lock = LLOCK_INIT(LR_LEAKCHECK), .n = 1};

static int64_t scope_new(int64_t parent) {
    llock_acquire(&SC.lock);
    if (SC.n >= SC.cap) {
        int64_t cap = SC.cap ? SC.cap * 2 : 64;
        int64_t *v = lrealloc(SC.parent, sizeof *v * (size_t)cap);
        if (!v) {
            llock_release(&SC.lock);
            return -1;
        }
        SC.parent = v;
        SC.cap = cap;
    }
    int64_t id = SC.n++;
    SC.parent[id] = parent;
    llock_release(&SC.lock);
    return id;
}

static bool scope_within(int64_t s, int64_t ancestor) {
    llock_acquire(&SC.lock);
    while (s > 0 && s != ancestor)
        s = s < SC.n ? SC.parent[s] : 0;
    llock_release(&SC.lock);
    return s == ancestor;
}

leash_snapshot *leash_snapshot_take(void) {
    if (sched_ensure_started() < 0)
        return NULL;
    coroutine *g = sched_getg_or_foreign();
    if (!g)
        return NULL;
    leash_snapshot *s = lmalloc(sizeof *s);
    if (!s)
        return NULL;
    int64_t id = scope_new(g->scope);
    if (id < 0) {
        lfree(s);
        return NULL;
    }
    *s = (leash_snapshot){.scope = id, .prev_scope = g->scope, .owner = g};
    __atomic_store_n(&g->scope, id, __ATOMIC_RELAXED); /* dumps read it */
    return s;
}

void leash_snapshot_free(leash_snapshot *s) {
    if (!s)
        return;
    coroutine *g = sched_getg_or_foreign();
    if (g == s->owner && g->scope == s->scope)
        __atomic_store_n(&g->scope, s->prev_scope, __ATOMIC_RELAXED);
    lfree(s);
}

static bool listed(const char *f, const char *const *list) {
    for (; list && *list; list++)
        if (!strcmp(f, *list))
            return true;
    return false;
}

static void nap(int64_t ns) {
    coroutine *g = sched_getg();
    if (g && !g->foreign) {
        leash_sleep(ns);
    } else {
        struct timespec ts = {ns / 1000000000, ns % 1000000000};
        nanosleep(&ts, NULL);
    }
}

/* Selects the coroutines a check is about; returns how many, and whether
 * all of them are provably stuck. */
static int select_suspects(const dsnap *s, bool *sel, const leash_snapshot *b,
                           const leash_leak_opts *o, bool *all_stuck) {
    int n = 0;
    *all_stuck = true;
    for (int i = 0; i < s->n; i++) {
        const dgor *d = &s->g[i];
        sel[i] = false;
        if (d->self || d->system)
            continue; /* the runtime's own (debug endpoint) */
        if (b && !scope_within(d->scope, b->scope))
            continue;
        if (o && (listed(diag_top_func(d, true), o->ignore_top) ||
                  listed(diag_top_func(d, false), o->ignore_top) ||
                  listed(diag_creator_func(d), o->ignore_creator)))
            continue;
        sel[i] = true;
        n++;
        if (!d->leak)
            *all_stuck = false;
    }
    return n;
}

typedef struct {
    const leash_snapshot *baseline;
    const leash_leak_opts *opts;
    coroutine *self;
    bool *stuck;
    bool report;
} check_job;

/* One pass of a check (on a thread with a big stack): how many suspects. */
static intptr_t check_once(void *p) {
    check_job *j = p;
    dsnap s;
    bool *sel;
    int rc = diag_capture_classified(&s, j->self, sizeof *sel, (void **)&sel);
    if (rc < 0)
        return rc;
    int n = select_suspects(&s, sel, j->baseline, j->opts, j->stuck);
    if (j->report && n > 0 && !(j->opts && j->opts->quiet)) {
        FILE *out = j->opts && j->opts->out ? j->opts->out : stderr;
        fprintf(out, "leash: found %d unexpected goroutine(s)%s:\n\n", n,
                *j->stuck ? ", all provably stuck" : "");
        diag_print_leash(out, &s, sel);
        fflush(out);
    }
    lfree(sel);
    snapshot_free(&s);
    return n;
}

API_FRAME int leash_leak_verify(const leash_snapshot *baseline,
                      const leash_leak_opts *opts) {
    if (sched_ensure_started() < 0)
        return LEASH_ENOMEM;
    int64_t timeout = opts && opts->timeout_ns > 0 ? opts->timeout_ns
                                                   : 2000000000;
    int64_t deadline = time_add(leash_now(), timeout);
    int64_t backoff = 1000000;
    bool stuck = false;
    check_job j = {baseline, opts, sched_getg(), &stuck, false};
    for (;;) {
        int n = (int)diag_on_thread(check_once, &j);
        if (n <= 0)
            return n;
        if (stuck || leash_now() >= deadline) {
            j.report = true; /* once more, to report what is left */
            return (int)diag_on_thread(check_once, &j);
        }
        nap(backoff);
        if (backoff < 100000000)
            backoff *= 2;
    }
}

/* ------------------------------------------------------ LEASH_LEAKCHECK */

static const char *type_name(int t) {
    switch (t) {
    case OBJ_CHAN: return "channel";
    case OBJ_CTX: return "context";
    case OBJ_TICKER: return "ticker";
    case OBJ_GROUP: return "group";
    case OBJ_CONN: return "connection";
    default: return "object";
    }
}

typedef struct {
    int type;
    int64_t id;
    const char *file;
    int line;
    int64_t by, refs;
    uint32_t detached;     /* detached references never released */
    int64_t detached_by;
    const char *detach_file;
    int detach_line;
} objsite;

typedef struct {
    FILE *out;
    int n;
    objsite sites[256];
    int nsites;
    int64_t more;
} objreport;

/* " in FUNC" for the function whose code holds file:line, or "". */
static void site_func(char *buf, size_t n, const char *file, int line) {
    const char *f = sym_func_at_line(file, line);
    snprintf(buf, n, "%s%s", f ? " in " : "", f ? f : "");
}

/* "file:line in func" of a spawn site: the recorded one, or the call
 * leash_run (or a spawn without a site) was made from. */
static void spawn_site(char *buf, size_t n, const char *file, int line,
                       void *pc) {
    char fn[200];
    if (file) {
        site_func(fn, sizeof fn, file, line);
        snprintf(buf, n, "%s:%d%s", file, line, fn);
        return;
    }
    if (pc) {
        dsym s;
        sym_lookup((uintptr_t)pc, true, &s);
        if (s.file) {
            snprintf(buf, n, "%s:%d in %s", s.file, s.line, dsym_outer_func(&s));
            return;
        }
        if (strcmp(s.func, "?")) {
            snprintf(buf, n, "%s", s.func);
            return;
        }
    }
    snprintf(buf, n, "?:0");
}

static void report_obj(lobj *o, void *arg) {
    objreport *r = arg;
    if (o->immortal || o->internal)
        return;
    r->n++;
    /* Names only: obj_foreach holds R.lock, and the lookup below may
     * take a while (libdw); the sites are resolved after the walk. */
    if (r->nsites == (int)(sizeof r->sites / sizeof r->sites[0])) {
        r->more++;
        return;
    }
    objsite *x = &r->sites[r->nsites++];
    *x = (objsite){o->type, o->id, o->file, o->line, o->created_by,
                   (int64_t)atomic_load(&o->refs), 0, 0, NULL, 0};
    const lref *d = obj_detached_locked(o); /* R.lock held: obj_foreach */
    if (d) {
        x->detached = d->count;
        x->detached_by = d->detached_by;
        x->detach_file = d->detach_file;
        x->detach_line = d->detach_line;
    }
}

static _Atomic int leakcheck_done;

/* The LEASH_LEAKCHECK=1 report: every live coroutine, every object never
 * released, and every object dropped only because its owner returned.
 * Returns the number of findings (0: clean). */
int leakcheck_report(FILE *out) {
    leash_leak_opts o = {
        .timeout_ns = (int64_t)env_u64("LEASH_LEAKCHECK_TIMEOUT_MS", 1000, 0,
                                       3600000) * 1000000,
        .out = out};
    int findings = leash_leak_verify(NULL, &o);
    if (findings < 0)
        findings = 0;
    static objreport r; /* 256 sites: not on a coroutine's stack */
    r = (objreport){.out = out};
    obj_foreach(report_obj, &r);
    if (r.n)
        fprintf(out, "leash: objects never released:\n");
    for (int i = 0; i < r.nsites; i++) {
        objsite *x = &r.sites[i];
        char fn[200];
        site_func(fn, sizeof fn, x->file, x->line);
        fprintf(out, "  %s#%" PRId64 " created at %s:%d%s by goroutine %" PRId64
                     " (%" PRId64 " reference(s) left)\n",
                type_name(x->type), x->id, x->file ? x->file : "?", x->line, fn,
                x->by, x->refs);
        if (x->detached)
            fprintf(out, "    %u detached reference(s) never released: "
                         "detached by goroutine %" PRId64 " at %s:%d "
                         "(leash_release_detached or leash_ref_adopt it)\n",
                    x->detached, x->detached_by,
                    x->detach_file ? x->detach_file : "?", x->detach_line);
    }
    if (r.more)
        fprintf(out, "  ... and %" PRId64 " more\n", r.more);
    findings += r.n;
    dropped_obj d[64];
    int64_t total;
    int nd = obj_dropped(d, 64, &total);
    if (total) {
        fprintf(out, "leash: objects dropped only because their owner "
                     "returned (release them, cancel contexts, stop "
                     "tickers):\n");
        for (int i = 0; i < nd; i++) {
            char fn[200], sp[600];
            site_func(fn, sizeof fn, d[i].file, d[i].line);
            spawn_site(sp, sizeof sp, d[i].owner_file, d[i].owner_line,
                       d[i].owner_pc);
            fprintf(out, "  %s#%" PRId64 " created at %s:%d%s, owned by "
                         "goroutine %" PRId64 " (spawned at %s)\n",
                    type_name(d[i].type), d[i].id, d[i].file ? d[i].file : "?",
                    d[i].line, fn, d[i].owner, sp);
        }
        if (total > nd)
            fprintf(out, "  ... and %" PRId64 " more\n", total - nd);
        findings += (int)total;
    }
    if (findings)
        fprintf(out, "leash: LEASH_LEAKCHECK: %d leak(s) found\n", findings);
    fflush(out);
    return findings;
}

static bool leakcheck_enabled(void) {
    return env_bool("LEASH_LEAKCHECK", false);
}

/* After leash_run's main returned. */
void leakcheck_after_run(void) {
    if (!leakcheck_enabled() || atomic_exchange(&leakcheck_done, 1))
        return;
    if (leakcheck_report(stderr))
        exit(23); /* like LeakSanitizer */
}

/* At process exit, for programs that never called leash_run. */
static void leakcheck_atexit(void) {
    if (atomic_load(&S.state) != 2 || atomic_exchange(&leakcheck_done, 1))
        return;
    if (leakcheck_report(stderr)) {
        fflush(NULL);
        _exit(23);
    }
}

void leakcheck_install(void) {
    static _Atomic int installed;
    if (leakcheck_enabled() && !atomic_exchange(&installed, 1))
        atexit(leakcheck_atexit);
}
