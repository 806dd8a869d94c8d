/* SPDX-License-Identifier: MIT */
/*
 * contention.c — the block and mutex profiles (Go's runtime.SetBlock-
 * ProfileRate / SetMutexProfileFraction, /debug/pprof/block and /mutex).
 *
 * Every wait already passes g_wait_begin and g_wait_end (tracking.h).
 * While either profile is on, g_wait_begin also stamps g->prof_t0 with
 * the precise clock; g_wait_end then calls contention_wait_end, which
 * turns the wait into a block event. A contended unlock that hands a
 * mutex (or an RWMutex) to a parked waiter calls contention_unlock, which
 * turns the waiter's wait so far into a mutex event on the *unlocker's*
 * stack (Go >= 1.8). Off, that costs one relaxed load and a branch.
 *
 * Sampling and weighting are Go's (runtime/mprof.go), with nanoseconds
 * as the "cycles" (cycles/second = 1e9):
 *   block, rate r: an event of delay d >= r is recorded as (count 1,
 *     delay d); a shorter one with probability d/r, as (count r/d,
 *     delay r), which removes the sampling bias;
 *   mutex, fraction f: one event in f, recorded as (count f, delay f*d).
 *
 * Events go to a bounded hash table per profile, keyed by stack (at most
 * CP_DEPTH return addresses, deduplicated), with count and delay
 * accumulators: CP_BUCKETS buckets allocated when the profile is first
 * turned on, under one short llock; no allocation on the event path.
 * Events for new stacks once the table is 3/4 full are counted as
 * dropped (the text profile says how many). Profiles are cumulative for
 * the life of the process, as Go's.
 *
 * Output (contention_write, on a helper thread: symbolising needs a big
 * stack): debug=0 a gzipped pprof profile with Go's sample types
 * contentions/count and delay/nanoseconds, period type contentions/count,
 * period 1; debug=1 Go's text ("--- contention:" / "--- mutex:",
 * cycles/second, "sampling period" for the mutex profile, "<cycles>
 * <count> @ <pcs>" and "#\t<pc>\t<func>+<off>\t<file>:<line>" lines laid
 * out as Go's text/tabwriter does), records by delay, largest first.
 */
#define _GNU_SOURCE 1
#include "diag.h"

#include <execinfo.h>
#include <inttypes.h>
#include <time.h>

#define CP_DEPTH 32
#define CP_BUCKETS 4096 /* a power of two */
#define CP_CYCLES_PER_SEC INT64_C(1000000000)

/* prof_wait_on, prof_mutex_rate: the core's (src/observer.c). */
static _Atomic int64_t block_rate; /* ns; 0 off */

typedef struct {
    uint64_t hash; /* 0: empty */
    int n;
    uintptr_t pcs[CP_DEPTH];
    double count;
    int64_t cycles;
} cbucket;

typedef struct {
    llock lock;
    cbucket *b;     /* CP_BUCKETS, once on */
    int used;
    int64_t dropped;
} cprof;

static cprof P[2] = {{.lock = LLOCK_INIT(LR_PROFILE)},
                     {.lock = LLOCK_INIT(LR_PROFILE)}}; /* CP_BLOCK, CP_MUTEX */
enum { CP_BLOCK, CP_MUTEX };
static pthread_mutex_t alloc_mu = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------ rates */

static void update_on(void) {
    atomic_store_explicit(&prof_wait_on,
                          atomic_load(&block_rate) > 0 ||
                              atomic_load(&prof_mutex_rate) > 0,
                          memory_order_relaxed);
}

/* The table of profile k, allocated the first time it is turned on
 * (without it, events are dropped). */
static void ensure_table(int k) {
    rmutex_lock(&alloc_mu, LR_PROFALLOC);
    if (!__atomic_load_n(&P[k].b, __ATOMIC_ACQUIRE)) {
        cbucket *b = lcalloc(CP_BUCKETS, sizeof *b);
        llock_acquire(&P[k].lock);
        P[k].b = b;
        llock_release(&P[k].lock);
    }
    rmutex_unlock(&alloc_mu);
}

void leash_set_block_profile_rate(int rate_ns) {
    int64_t r = rate_ns <= 0 ? 0 : rate_ns;
    if (r)
        ensure_table(CP_BLOCK);
    atomic_store(&block_rate, r);
    update_on();
}

int leash_set_mutex_profile_fraction(int rate) {
    if (rate < 0)
        return (int)atomic_load(&prof_mutex_rate);
    if (rate)
        ensure_table(CP_MUTEX);
    int old = (int)atomic_exchange(&prof_mutex_rate, (int64_t)rate);
    update_on();
    return old;
}

void contention_env_init(void) {
    static _Atomic int done;
    if (atomic_exchange(&done, 1))
        return;
    if (env_str("LEASH_BLOCKPROFILERATE"))
        leash_set_block_profile_rate(
            (int)env_u64("LEASH_BLOCKPROFILERATE", 0, 0, INT32_MAX));
    if (env_str("LEASH_MUTEXPROFILEFRACTION"))
        leash_set_mutex_profile_fraction(
            (int)env_u64("LEASH_MUTEXPROFILEFRACTION", 0, 0, INT32_MAX));
}

/* ------------------------------------------------------------ events */

/* The caller's caller's stack, leaf first: walked by frame pointer
 * inside a coroutine's stack, by the unwinder on a plain thread (whose
 * stack bounds are not known, and whose libc frames may lack frame
 * pointers). */
__attribute__((noinline)) static int self_stack(coroutine *g, uintptr_t *pcs,
                                                int max) {
    int n = 0;
    if (g && !g->foreign && g->stack) {
        uintptr_t lo = (uintptr_t)g->stack->lo, hi = (uintptr_t)g;
        uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
        int skip = 1; /* into the hook that called self_stack */
        while (n < max && fp >= lo && fp <= hi - 16 && !(fp & 7)) {
            uintptr_t next = ((uintptr_t *)fp)[0];
            uintptr_t ret = ((uintptr_t *)fp)[1];
            if (!ret)
                break;
            if (skip)
                skip--;
            else
                pcs[n++] = ret;
            if (next <= fp)
                break;
            fp = next;
        }
        return n;
    }
    void *buf[CP_DEPTH + 2];
    int m = backtrace(buf, CP_DEPTH + 2);
    for (int i = 2; i < m && n < max; i++) /* in self_stack, in the hook */
        pcs[n++] = (uintptr_t)buf[i];
    return n;
}

static uint64_t hash_stack(const uintptr_t *pcs, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) {
        h ^= pcs[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h | 1;
}

static void record(int k, const uintptr_t *pcs, int n, double count,
                   int64_t cycles) {
    cprof *p = &P[k];
    uint64_t h = hash_stack(pcs, n);
    llock_acquire(&p->lock);
    cbucket *b = NULL;
    if (p->b) {
        for (size_t i = h & (CP_BUCKETS - 1), probe = 0; probe < CP_BUCKETS;
             probe++, i = (i + 1) & (CP_BUCKETS - 1)) {
            cbucket *c = &p->b[i];
            if (!c->hash) {
                if (p->used >= CP_BUCKETS / 4 * 3)
                    break;
                c->hash = h;
                c->n = n;
                memcpy(c->pcs, pcs, sizeof *pcs * (size_t)n);
                p->used++;
                b = c;
                break;
            }
            if (c->hash == h && c->n == n &&
                !memcmp(c->pcs, pcs, sizeof *pcs * (size_t)n)) {
                b = c;
                break;
            }
        }
    }
    if (b) {
        b->count += count;
        b->cycles += cycles;
    } else {
        p->dropped++;
    }
    llock_release(&p->lock);
}

static bool reason_profiled(int wr) {
    switch (wr) {
    case WR_CHAN_SEND: case WR_CHAN_RECV: case WR_SELECT: case WR_IO_WAIT:
    case WR_MUTEX: case WR_RWMUTEX_R: case WR_RWMUTEX_W: case WR_COND:
    case WR_WAITGROUP: case WR_ONCE: case WR_GROUP_WAIT: case WR_JOIN:
        return true;
    default:
        return false; /* sleeps, blocking calls: not contention */
    }
}

static uint64_t rand64(void) {
    return (uint64_t)sched_rand() << 32 | sched_rand();
}

__attribute__((noinline)) void contention_wait_end(coroutine *g) {
    int64_t t0 = g->prof_t0;
    g->prof_t0 = 0;
    int64_t rate = atomic_load_explicit(&block_rate, memory_order_relaxed);
    int wr = atomic_load_explicit(&g->wait_reason, memory_order_relaxed);
    if (rate <= 0 || !reason_profiled(wr))
        return;
    int64_t d = leash_now() - t0;
    if (d <= 0)
        d = 1;
    /* Go's blocksampled: always when d >= rate, else with chance d/rate. */
    if (rate > d && (int64_t)(rand64() % (uint64_t)rate) > d)
        return;
    uintptr_t pcs[CP_DEPTH];
    int n = self_stack(g, pcs, CP_DEPTH);
    if (d < rate)
        record(CP_BLOCK, pcs, n, (double)rate / (double)d, rate);
    else
        record(CP_BLOCK, pcs, n, 1, d);
}

__attribute__((noinline)) void contention_unlock(coroutine *waiter) {
    int64_t rate = atomic_load_explicit(&prof_mutex_rate,
                                        memory_order_relaxed);
    int64_t t0 = waiter->prof_t0;
    if (rate <= 0 || !t0)
        return;
    if (rate > 1 && rand64() % (uint64_t)rate != 0)
        return;
    int64_t d = leash_now() - t0;
    if (d <= 0)
        d = 1;
    uintptr_t pcs[CP_DEPTH];
    int n = self_stack(sched_getg(), pcs, CP_DEPTH);
    record(CP_MUTEX, pcs, n, (double)rate, rate * d);
}

/* ------------------------------------------------------------ output */

typedef struct {
    uintptr_t pcs[CP_DEPTH];
    int first, n;        /* the frames shown: [first, first + n) */
    int64_t count, cycles;
} crec;

/* Trims a stack as the dumps do (diag_trim_frames): it starts at the
 * public call that waited or unlocked (frames above it are the runtime's)
 * and ends before the coroutine's entry. */
static void trim(crec *r, int n) {
    r->n = diag_trim_frames(r->pcs, n, false, &r->first);
}

static int cmp_cycles(const void *a, const void *b) {
    const crec *x = a, *y = b;
    return x->cycles < y->cycles ? 1 : x->cycles > y->cycles ? -1 : 0;
}

/* A copy of profile k's records, sorted by delay: how many, or < 0. */
static int snapshot(int k, crec **out, int64_t *dropped) {
    cprof *p = &P[k];
    crec *r = lcalloc(CP_BUCKETS, sizeof *r);
    if (!r)
        return LEASH_ENOMEM;
    int n = 0;
    llock_acquire(&p->lock);
    for (int i = 0; p->b && i < CP_BUCKETS; i++) {
        const cbucket *b = &p->b[i];
        if (!b->hash)
            continue;
        memcpy(r[n].pcs, b->pcs, sizeof b->pcs);
        r[n].n = b->n;
        r[n].count = (int64_t)b->count;
        r[n].cycles = b->cycles;
        n++;
    }
    *dropped = p->dropped;
    llock_release(&p->lock);
    for (int i = 0; i < n; i++)
        trim(&r[i], r[i].n);
    qsort(r, (size_t)n, sizeof *r, cmp_cycles);
    *out = r;
    return n;
}

/* Go's text/tabwriter (minwidth 1, tabwidth 8, padding 1, padchar '\t')
 * over one record's "#" lines: every line is up to TW_CELLS cells, the
 * last one not tab-terminated; a column is aligned over each run of
 * consecutive lines that have a tab-terminated cell in it, by tabs. */
#define TW_CELLS 4
typedef struct {
    const char *cell[TW_CELLS];
    int ncells; /* the last one ends the line */
} twline;

static void tw_lines(FILE *out, const twline *l, int from, int to,
                     const int *widths, int nw) {
    for (int i = from; i < to; i++) {
        for (int j = 0; j < l[i].ncells; j++) {
            const char *c = l[i].cell[j];
            fputs(c, out);
            if (j < nw && j < l[i].ncells - 1) {
                int tw = (int)strlen(c);
                int cw = (widths[j] + 7) / 8 * 8;
                for (int t = (cw - tw + 7) / 8; t > 0; t--)
                    fputc('\t', out);
            }
        }
        fputc('\n', out);
    }
}

static void tw_format(FILE *out, const twline *l, int line0, int line1,
                      int *widths, int nw) {
    int column = nw;
    if (column >= TW_CELLS - 1) { /* no cell of this column has one after */
        tw_lines(out, l, line0, line1, widths, nw);
        return;
    }
    for (int this = line0; this < line1; this++) {
        if (column >= l[this].ncells - 1)
            continue;
        tw_lines(out, l, line0, this, widths, nw);
        line0 = this;
        int width = 1;
        for (; this < line1 && column < l[this].ncells - 1; this++) {
            int w = (int)strlen(l[this].cell[column]) + 1;
            if (w > width)
                width = w;
        }
        widths[nw] = width;
        tw_format(out, l, line0, this, widths, nw + 1);
        line0 = this; /* the line that ended the block is not one to
                       * start a block at this column: skipped, as Go does */
    }
    tw_lines(out, l, line0, line1, widths, nw);
}

/* Go's printStackRecord(allFrames=true): a line per frame (and per
 * inlined level), "#\t<pc>" alone for an unknown function. */
enum { MAXL = CP_DEPTH * (1 + DSYM_MAX_INLINE) };
typedef struct {
    twline l[MAXL];
    char txt[MAXL][3][160];
} twbuf;

static void print_stack_record(FILE *out, const crec *r, twbuf *tb) {
    twline *l = tb->l;
    char(*txt)[3][160] = tb->txt;
    int nl = 0;
    for (int k = r->first; k < r->first + r->n; k++) {
        uintptr_t pc = r->pcs[k];
        dsym sy;
        diag_frame_sym(pc, &sy);
        for (int v = 0; v < dsym_levels(&sy) && nl < MAXL; v++, nl++) {
            dpos p = dsym_level(&sy, v);
            snprintf(txt[nl][0], sizeof txt[nl][0], "%#" PRIxPTR, pc - 1);
            l[nl].cell[0] = "#";
            l[nl].cell[1] = txt[nl][0];
            if (!strcmp(p.func, "?")) {
                l[nl].ncells = 2;
                continue;
            }
            snprintf(txt[nl][1], sizeof txt[nl][1], "%s+%#" PRIxPTR, p.func,
                     sy.offset);
            snprintf(txt[nl][2], sizeof txt[nl][2], "%s:%d",
                     p.file ? p.file : "?", p.line);
            l[nl].cell[2] = txt[nl][1];
            l[nl].cell[3] = txt[nl][2];
            l[nl].ncells = 4;
        }
    }
    int widths[TW_CELLS];
    tw_format(out, l, 0, nl, widths, 0);
    fputc('\n', out);
}

typedef struct {
    FILE *out;
    int which, debug;
} cjob;

static intptr_t write_job(void *arg) {
    cjob *j = arg;
    crec *r;
    int64_t dropped;
    int n = snapshot(j->which, &r, &dropped);
    if (n < 0)
        return n;
    int rc = 0;
    if (j->debug >= 1) {
        twbuf *tb = lmalloc(sizeof *tb);
        if (!tb) {
            lfree(r);
            return LEASH_ENOMEM;
        }
        fprintf(j->out, "--- %s:\ncycles/second=%" PRId64 "\n",
                j->which == CP_MUTEX ? "mutex" : "contention",
                CP_CYCLES_PER_SEC);
        if (j->which == CP_MUTEX)
            fprintf(j->out, "sampling period=%d\n",
                    leash_set_mutex_profile_fraction(-1));
        if (dropped) /* pprof's legacy parser skips '#' lines */
            fprintf(j->out, "# leash: %" PRId64 " events dropped (table "
                            "full)\n", dropped);
        for (int i = 0; i < n; i++) {
            fprintf(j->out, "%" PRId64 " %" PRId64 " @", r[i].cycles,
                    r[i].count);
            for (int k = r[i].first; k < r[i].first + r[i].n; k++)
                fprintf(j->out, " %#" PRIxPTR, r[i].pcs[k]);
            fputc('\n', j->out);
            print_stack_record(j->out, &r[i], tb);
        }
        lfree(tb);
        if (fflush(j->out) != 0)
            rc = LEASH_ENOMEM;
    } else {
        dsample *s = lcalloc((size_t)(n ? n : 1), sizeof *s);
        if (!s) {
            lfree(r);
            return LEASH_ENOMEM;
        }
        for (int i = 0; i < n; i++)
            s[i] = (dsample){.pcs = r[i].pcs + r[i].first, .npcs = r[i].n,
                             .count = r[i].count,
                             .value = r[i].cycles}; /* ns: 1 GHz */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        pprof_spec sp = {
            .sample_type = {"contentions", "delay"},
            .sample_unit = {"count", "nanoseconds"},
            .nvalues = 2, .period_type = "contentions",
            .period_unit = "count", .period = 1,
            .time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec};
        rc = pprof_write(j->out, &sp, s, n);
        lfree(s);
    }
    lfree(r);
    return rc < 0 ? rc : n;
}

API_FRAME int leash_profile_write(FILE *out, const char *name, int debug) {
    if (!out || !name || debug < 0 || debug > 1)
        return LEASH_EINVAL;
    int which;
    if (!strcmp(name, "block"))
        which = CP_BLOCK;
    else if (!strcmp(name, "mutex"))
        which = CP_MUTEX;
    else
        return LEASH_EINVAL;
    if (fork_refuse("leash_profile_write"))
        return LEASH_EINVAL;
    cjob j = {out, which, debug};
    return (int)diag_on_thread(write_job, &j);
}
