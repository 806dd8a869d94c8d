/* SPDX-License-Identifier: MIT */
/*
 * cpuprof.c — the CPU profile (leash_cpu_profile, /debug/pprof/profile).
 *
 * Sampling. Every worker thread gets a POSIX timer on its own CPU clock
 * (pthread_getcpuclockid, timer_create with SIGEV_THREAD_ID, as Go does
 * since 1.18): SIGPROF after each CPU_PERIOD_NS of CPU that thread
 * used, delivered to that thread. The handler (on the worker's signal
 * stack) neither allocates nor locks: it walks the interrupted stack by
 * frame pointer and appends the sample to its worker's ring, a
 * preallocated single-producer single-consumer queue (the handler
 * produces, the profiling coroutine consumes). A full ring counts the
 * sample as lost.
 *
 * The walk trusts no frame pointer: each must lie inside the stack the
 * interrupted code runs on -- the current coroutine's [stack->lo, g) when
 * sp is inside it, else the worker's own (g0) stack -- be 8-aligned and
 * move up, so a bad one ends the walk and never faults; code outside
 * either stack gives a one-frame sample. The sample carries the running
 * coroutine's labels (interned strings, valid for good), which pprof
 * shows like those of Go's pprof.Do.
 *
 * One profile at a time (a second caller gets -EBUSY, "cpu profiling
 * already in use" over HTTP, 409). The SIGPROF handler is installed at
 * the first profile and stays: a timer deleted at the end may still have
 * a signal pending, and SIGPROF's default action ends the process; the
 * handler ignores it while no profile runs. The rings are allocated
 * once (per worker) and never freed, for the same reason.
 *
 * Under ThreadSanitizer signals are delivered late, at TSan's own safe
 * points, with the interrupted context gone: samples would be wrong, so
 * the profile is refused there (-ENOTSUP). A forked child refuses it, as
 * every leash call (its timers are not inherited anyway).
 */
#define _GNU_SOURCE 1
#include "diag.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <ucontext.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define CPU_HZ 100
#define CPU_PERIOD_NS (INT64_C(1000000000) / CPU_HZ)
#define CPU_DEPTH 64
#define RING 256 /* samples per worker between drains: a power of two */
#define DRAIN_NS (INT64_C(100) * 1000000)
#define CPU_MAX_NS (INT64_C(3600) * 1000000000)

typedef struct {
    int n, nlabels;
    const char *lk[LEASH_MAX_LABELS], *lv[LEASH_MAX_LABELS];
    uintptr_t pcs[CPU_DEPTH];
} csample;

typedef struct {
    _Alignas(CACHELINE) _Atomic uint32_t head; /* the handler's */
    _Atomic uint32_t tail;                      /* the consumer's */
    _Atomic uint64_t lost;
    timer_t timer;
    bool armed;
    csample s[RING];
} cring;

static struct {
    _Atomic int busy; /* a profile runs (its coroutine may move threads) */
    cring *_Atomic rings;
    int nrings;
    _Atomic int on;
    bool handler;
} C;

/* ------------------------------------------------------------ handler */

static void take_sample(cring *r, worker *w, const ucontext_t *uc) {
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h - t >= RING) {
        atomic_fetch_add_explicit(&r->lost, 1, memory_order_relaxed);
        return;
    }
    csample *s = &r->s[h & (RING - 1)];
    uintptr_t pc, fp, sp;
    uc_regs(uc, &pc, &fp, &sp);
    /* The leaf is where it was interrupted: pc + 1, so that it reads as
     * a return address like the others (the writers look up pc - 1). */
    s->pcs[0] = pc + 1;
    s->n = 1;
    s->nlabels = 0;
    coroutine *g = __atomic_load_n(&w->cur, __ATOMIC_RELAXED);
    uintptr_t glo = g && g->stack ? (uintptr_t)g->stack->lo : 0;
    uintptr_t g0lo = (uintptr_t)w->g0_stack_lo;
    if (glo && sp >= glo && sp < (uintptr_t)g) {
        s->n = fp_walk(fp, glo, (uintptr_t)g, s->pcs, 1, CPU_DEPTH);
        int nl = g->nlabels;
        if (nl > LEASH_MAX_LABELS)
            nl = LEASH_MAX_LABELS;
        for (int i = 0; i < nl; i++) {
            const char *k = g->label_key[i], *v = g->label_val[i];
            if (k && v) {
                s->lk[s->nlabels] = k;
                s->lv[s->nlabels++] = v;
            }
        }
    } else if (g0lo && sp >= g0lo && sp < g0lo + w->g0_stack_size) {
        s->n = fp_walk(fp, g0lo, g0lo + w->g0_stack_size, s->pcs, 1, CPU_DEPTH);
    }
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

static void on_sigprof(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    int saved = errno;
    if (atomic_load_explicit(&C.on, memory_order_acquire)) {
        worker *w = sched_worker();
        cring *rings = atomic_load_explicit(&C.rings, memory_order_acquire);
        if (w && rings && w->idx < C.nrings)
            take_sample(&rings[w->idx], w, ucv);
    }
    errno = saved;
}

/* ------------------------------------------------------------ aggregate */

typedef struct {
    uint64_t hash; /* 0: empty */
    const csample *key; /* into `keys` */
    int64_t count;
} aslot;

typedef struct {
    aslot *slots;
    size_t cap, len;
    csample *keys;
    size_t nkeys, capkeys;
    bool oom;
} agg;

static uint64_t sample_hash(const csample *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < s->n; i++)
        h = (h ^ s->pcs[i]) * 0x100000001b3ull;
    for (int i = 0; i < s->nlabels; i++) {
        h = (h ^ (uintptr_t)s->lk[i]) * 0x100000001b3ull;
        h = (h ^ (uintptr_t)s->lv[i]) * 0x100000001b3ull;
    }
    return (h ^ h >> 31) | 1;
}

static bool same(const csample *a, const csample *b) {
    return a->n == b->n && a->nlabels == b->nlabels &&
           !memcmp(a->pcs, b->pcs, sizeof *a->pcs * (size_t)a->n) &&
           !memcmp(a->lk, b->lk, sizeof *a->lk * (size_t)a->nlabels) &&
           !memcmp(a->lv, b->lv, sizeof *a->lv * (size_t)a->nlabels);
}

static bool agg_grow(agg *a) {
    size_t ncap = a->cap ? a->cap * 2 : 256;
    aslot *ns = lcalloc(ncap, sizeof *ns);
    if (!ns)
        return false;
    for (size_t i = 0; i < a->cap; i++) {
        if (!a->slots[i].hash)
            continue;
        size_t j = a->slots[i].hash & (ncap - 1);
        while (ns[j].hash)
            j = (j + 1) & (ncap - 1);
        ns[j] = a->slots[i];
    }
    lfree(a->slots);
    a->slots = ns;
    a->cap = ncap;
    return true;
}

/* Keys are indexes while the key array may move: stored as offsets. */
static void agg_add(agg *a, const csample *s) {
    if (a->oom)
        return;
    if ((a->len + 1) * 2 > a->cap && !agg_grow(a)) {
        a->oom = true;
        return;
    }
    uint64_t h = sample_hash(s);
    size_t i = h & (a->cap - 1);
    for (; a->slots[i].hash; i = (i + 1) & (a->cap - 1)) {
        const csample *k = &a->keys[(uintptr_t)a->slots[i].key];
        if (a->slots[i].hash == h && same(k, s)) {
            a->slots[i].count++;
            return;
        }
    }
    if (a->nkeys == a->capkeys) {
        size_t nc = a->capkeys ? a->capkeys * 2 : 64;
        csample *nk = lrealloc(a->keys, nc * sizeof *nk);
        if (!nk) {
            a->oom = true;
            return;
        }
        a->keys = nk;
        a->capkeys = nc;
    }
    a->keys[a->nkeys] = *s;
    a->slots[i] = (aslot){h, (const csample *)(uintptr_t)a->nkeys, 1};
    a->nkeys++;
    a->len++;
}

static void drain(agg *a) {
    cring *rings = atomic_load(&C.rings);
    for (int w = 0; w < C.nrings; w++) {
        cring *r = &rings[w];
        uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
        for (; t != h; t++)
            agg_add(a, &r->s[t & (RING - 1)]);
        atomic_store_explicit(&r->tail, t, memory_order_release);
    }
}

/* ------------------------------------------------------------ timers */

static void stop_timers(void) {
    cring *rings = atomic_load(&C.rings);
    for (int i = 0; i < C.nrings; i++) {
        if (!rings[i].armed)
            continue;
        timer_delete(rings[i].timer);
        rings[i].armed = false;
    }
    atomic_store(&C.on, 0);
}

static int start_timers(void) {
    if (!C.handler) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigprof;
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGPROF, &sa, NULL) < 0)
            return -errno;
        C.handler = true;
    }
    if (!atomic_load(&C.rings)) {
        cring *r = lcalloc((size_t)S.nprocs, sizeof *r);
        if (!r)
            return LEASH_ENOMEM;
        C.nrings = S.nprocs;
        atomic_store(&C.rings, r);
    }
    cring *rings = atomic_load(&C.rings);
    for (int i = 0; i < C.nrings; i++) /* what an earlier profile left */
        atomic_store(&rings[i].tail, atomic_load(&rings[i].head));
    atomic_store(&C.on, 1);
    int armed = 0;
    for (int i = 0; i < C.nrings && i < S.nprocs; i++) {
        worker *w = &S.workers[i];
        int tid = atomic_load(&w->tid);
        clockid_t clk;
        if (!tid || pthread_getcpuclockid(w->thread, &clk) != 0)
            continue;
        struct sigevent sev;
        memset(&sev, 0, sizeof sev);
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = SIGPROF;
        sev.sigev_notify_thread_id = tid;
        if (timer_create(clk, &sev, &rings[i].timer) < 0)
            continue;
        rings[i].armed = true;
        struct itimerspec its = {
            .it_interval = {0, CPU_PERIOD_NS},
            /* Staggered, so that the workers' signals do not line up. */
            .it_value = {0, CPU_PERIOD_NS / 2 +
                                (long)(sched_rand() % (CPU_PERIOD_NS / 2))},
        };
        if (timer_settime(rings[i].timer, 0, &its, NULL) == 0)
            armed++;
    }
    if (!armed) {
        stop_timers();
        return -EAGAIN;
    }
    return 0;
}

/* ------------------------------------------------------------ output */

typedef struct {
    FILE *out;
    agg *a;
    int64_t start_wall, duration;
} wjob;

static intptr_t write_profile(void *arg) {
    wjob *j = arg;
    agg *a = j->a;
    dsample *s = lcalloc(a->nkeys ? a->nkeys : 1, sizeof *s);
    if (!s)
        return LEASH_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < a->cap; i++) {
        if (!a->slots[i].hash)
            continue;
        const csample *k = &a->keys[(uintptr_t)a->slots[i].key];
        s[n++] = (dsample){.pcs = k->pcs, .npcs = k->n,
                           .count = a->slots[i].count,
                           .value = a->slots[i].count * CPU_PERIOD_NS,
                           .label_keys = k->lk, .label_vals = k->lv,
                           .nlabels = k->nlabels};
    }
    pprof_spec sp = {.sample_type = {"samples", "cpu"},
                     .sample_unit = {"count", "nanoseconds"},
                     .nvalues = 2, .period_type = "cpu",
                     .period_unit = "nanoseconds", .period = CPU_PERIOD_NS,
                     .time_ns = j->start_wall, .duration_ns = j->duration};
    int rc = pprof_write(j->out, &sp, s, (int)n);
    lfree(s);
    return rc < 0 ? rc : (intptr_t)n;
}

static int64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

API_FRAME int leash_cpu_profile(FILE *out, int64_t duration_ns) {
    if (!out || duration_ns <= 0 || duration_ns > CPU_MAX_NS)
        return LEASH_EINVAL;
    if (fork_refuse("leash_cpu_profile"))
        return LEASH_EINVAL;
#if defined(LEASH_TSAN)
    if (duration_ns > 0) /* always: the rest stays compiled */
        return -ENOTSUP;
#endif
    int rc = sched_ensure_started();
    if (rc < 0)
        return rc;
    if (atomic_exchange(&C.busy, 1))
        return -EBUSY;
    agg a = {0};
    int64_t t0 = leash_now(), wall = wall_ns();
    rc = start_timers();
    if (rc == 0) {
        for (int64_t now = t0; now - t0 < duration_ns; now = leash_now()) {
            int64_t left = duration_ns - (now - t0);
            leash_sleep(left < DRAIN_NS ? left : DRAIN_NS);
            drain(&a);
        }
        stop_timers();
        drain(&a);
        if (a.oom) {
            rc = LEASH_ENOMEM;
        } else {
            wjob j = {out, &a, wall, leash_now() - t0};
            rc = (int)diag_on_thread(write_profile, &j);
        }
    }
    lfree(a.slots);
    lfree(a.keys);
    atomic_store(&C.busy, 0);
    return rc;
}
