/* SPDX-License-Identifier: MIT */
/*
 * sched.c — the M:N work-stealing scheduler.
 *
 * Workers (Go's P and M in one) each own a bounded lock-free run queue of
 * RUNQ_SIZE coroutines plus a `runnext` slot. The owner pushes at the
 * tail; the owner and thieves take from the head with a CAS. A readied
 * coroutine goes to `runnext`, so a message hand-off keeps both sides on
 * one worker and in cache. Overflow spills half a queue to the global
 * queue (S.lock). An idle worker steals half of a random victim's queue,
 * then sleeps on its own futex.
 *
 * Wake-ups. Waking a sleeping worker costs tens of microseconds on these
 * VMs, so a worker is woken only when there is parallel work: a readied
 * coroutine that lands in `runnext` alone does not wake anybody (the
 * current worker will run it as soon as the current coroutine blocks).
 * At most one worker spins looking for work at a time from a wake-up
 * (Go's wakep), and it wakes the next one when it finds work.
 *
 * Lost wake-ups are prevented Dekker-style: a worker going to sleep first
 * publishes itself on the idle list (and stops counting as spinning), then
 * re-checks every queue; a producer first publishes the work, then looks
 * at nidle/nspinning. Both sides use seq_cst, so one sees the other.
 *
 * Timers. Each worker has a timer heap (timer.c). One idle worker at most
 * sleeps with a timeout — the earliest deadline over all heaps — and runs
 * whatever expired on any heap; a new earlier timer kicks it.
 *
 * Fairness. A coroutine readied by the running one goes to `runnext` and
 * runs next in the same "slice" (Go's inheritTime): a ping-pong pair
 * hands the worker back and forth through runnext and would keep it for
 * ever. So a slice ends, and the head of the local queue runs, after
 * RUNNEXT_CHAIN_MAX coroutines in a row from runnext, or as soon as
 * sysmon sees a slice last over SLICE_NS (it sets next_chain to the
 * maximum), and the runnext coroutine goes to the back of the queue:
 * whatever is queued runs before the chain resumes. So a readied
 * coroutine waits at most one slice (about RUNNEXT_CHAIN_MAX switches,
 * never much over SLICE_NS) plus the run time of those queued before it,
 * unless one coroutine computes without parking (a hog, which sysmon
 * reports). Every 61st scheduling
 * decision goes through the worker's scheduler context, which checks the
 * global queue and timers first. docs/DESIGN-NOTES.md states the bound.
 *
 * The park protocol is described in internal.h: `after` holds the action
 * (unlock, requeue a yielder, free an exited coroutine) that whoever runs
 * next on the worker performs right after the switch.
 */
#define _GNU_SOURCE 1
#include "internal.h"
#include "sched_tls.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(LEASH_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(LEASH_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

INTERNAL sched_t S = {.lock = LLOCK_INIT(LR_SCHED),
                          .poll_lock = LLOCK_INIT(LR_POLL)};

/* Read inline elsewhere through sched_tls.h (see its rule). */
INTERNAL __thread worker *sched_tls_w __attribute__((tls_model("initial-exec")));
INTERNAL __thread coroutine *sched_tls_foreign
    __attribute__((tls_model("initial-exec")));

static pthread_mutex_t foreign_mu = PTHREAD_MUTEX_INITIALIZER;
static coroutine *foreign_pool; /* foreign g's of exited threads */
static pthread_key_t foreign_key;
static pthread_once_t foreign_key_once = PTHREAD_ONCE_INIT;

/* Never inlined: a coroutine may call this before and after it migrates,
 * and each call must read the current thread's value. */
__attribute__((noinline)) worker *sched_worker(void) { return sched_tls_w; }

__attribute__((noinline)) coroutine *sched_getg(void) {
    worker *w = sched_tls_w;
    return w ? w->cur : sched_tls_foreign;
}

void sched_forget_thread(void) {
    sched_tls_w = NULL;
    sched_tls_foreign = NULL;
}

/* ------------------------------------------------------- foreign threads */

static void foreign_release(void *p) {
    coroutine *g = p;
    rmutex_lock(&foreign_mu, LR_FOREIGN);
    g->qnext = foreign_pool;
    foreign_pool = g;
    rmutex_unlock(&foreign_mu);
}

static void foreign_key_init(void) {
    pthread_key_create(&foreign_key, foreign_release);
}

/* Foreign g's are never freed (a waker may still touch the futex word of a
 * thread that has just returned); exited threads' ones are reused. */
coroutine *sched_getg_or_foreign(void) {
    worker *w = sched_tls_w;
    if (w)
        return w->cur; /* NULL on g0: the scheduler context never blocks */
    coroutine *g = sched_tls_foreign;
    if (likely(g))
        return g;
    pthread_once(&foreign_key_once, foreign_key_init);
    rmutex_lock(&foreign_mu, LR_FOREIGN);
    g = foreign_pool;
    if (g)
        foreign_pool = g->qnext;
    rmutex_unlock(&foreign_mu);
    if (!g) {
        g = lcalloc(1, sizeof *g);
        if (!g)
            return NULL;
        g->foreign = true;
        g->id = 0;
        snprintf(g->name, sizeof g->name, "thread");
    }
    g->qnext = NULL;
    atomic_store(&g->state, G_RUNNING);
    sched_tls_foreign = g;
    pthread_setspecific(foreign_key, g);
    return g;
}

coroutine *sched_prepare_park(void) {
    coroutine *g = sched_getg_or_foreign();
    if (g && g->foreign)
        atomic_store_explicit(&g->parked, 0, memory_order_relaxed);
    return g;
}

/* ------------------------------------------------------------ run queues */

static uint32_t runq_len(worker *w) {
    uint32_t h = atomic_load_explicit(&w->runq_head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&w->runq_tail, memory_order_acquire);
    return t - h;
}

/* Appends v[0..n) to the global queue (S.lock held). */
static void gq_push_locked(coroutine *const *v, uint32_t n) {
    if (!S.gq_ovf_head && S.gq_nring + n > S.gq_cap) {
        uint32_t cap = S.gq_cap ? S.gq_cap : 1024;
        while (cap < S.gq_nring + n)
            cap *= 2;
        coroutine **r = lmalloc(sizeof *r * cap);
        if (r) {
            for (uint32_t i = 0; i < S.gq_nring; i++)
                r[i] = S.gq_ring[(S.gq_head + i) % S.gq_cap];
            lfree(S.gq_ring);
            S.gq_ring = r;
            S.gq_cap = cap;
            S.gq_head = 0;
        }
    }
    uint32_t i = 0;
    if (!S.gq_ovf_head)
        for (; i < n && S.gq_nring < S.gq_cap; i++)
            S.gq_ring[(S.gq_head + S.gq_nring++) % S.gq_cap] = v[i];
    for (; i < n; i++) { /* out of memory: fall back to the list */
        v[i]->qnext = NULL;
        if (S.gq_ovf_tail)
            S.gq_ovf_tail->qnext = v[i];
        else
            S.gq_ovf_head = v[i];
        S.gq_ovf_tail = v[i];
    }
    atomic_fetch_add(&S.gq_len, (int)n);
}

/* Takes up to n from the global queue into out (S.lock held). */
static uint32_t gq_pop_locked(coroutine **out, uint32_t n) {
    uint32_t k = 0;
    for (; k < n && S.gq_nring; k++) {
        out[k] = S.gq_ring[S.gq_head];
        S.gq_head = (S.gq_head + 1) % S.gq_cap;
        S.gq_nring--;
    }
    for (; k < n && S.gq_ovf_head; k++) {
        out[k] = S.gq_ovf_head;
        S.gq_ovf_head = out[k]->qnext;
        if (!S.gq_ovf_head)
            S.gq_ovf_tail = NULL;
    }
    atomic_fetch_sub(&S.gq_len, (int)k);
    return k;
}

static void gq_put(coroutine *const *v, uint32_t n) {
    llock_acquire(&S.lock);
    gq_push_locked(v, n);
    llock_release(&S.lock);
}

/* Moves half the local queue plus g to the global queue; false if the
 * queue changed under us (a thief took some), so the caller retries. */
static bool runq_spill(worker *w, coroutine *g, uint32_t h, uint32_t t) {
    uint32_t n = (t - h) / 2;
    coroutine *batch[RUNQ_SIZE / 2 + 1];
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&w->runq[(h + i) % RUNQ_SIZE],
                                        memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&w->runq_head, &h, h + n,
                                                 memory_order_release,
                                                 memory_order_relaxed))
        return false;
    batch[n] = g;
    gq_put(batch, n + 1);
    return true;
}

/* runq_put's full queue: spills half of it, retrying until that works
 * or a thief has made room. */
static __attribute__((noinline)) void runq_put_full(worker *w, coroutine *g) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&w->runq_tail, memory_order_relaxed);
        if (t - h < RUNQ_SIZE) {
            atomic_store_explicit(&w->runq[t % RUNQ_SIZE], g,
                                  memory_order_relaxed);
            atomic_store_explicit(&w->runq_tail, t + 1, memory_order_release);
            return;
        }
        if (runq_spill(w, g, h, t))
            return;
    }
}

/* Inline: the common case (room at the tail, or an empty runnext) is a
 * few loads and stores, the spill stays out of line. */
static inline void runq_put(worker *w, coroutine *g, bool next) {
    if (next) {
        coroutine *old = atomic_exchange_explicit(&w->runnext, g,
                                                memory_order_acq_rel);
        if (!old)
            return;
        g = old; /* the previous runnext goes to the tail */
    }
    uint32_t h = atomic_load_explicit(&w->runq_head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&w->runq_tail, memory_order_relaxed);
    if (likely(t - h < RUNQ_SIZE)) {
        atomic_store_explicit(&w->runq[t % RUNQ_SIZE], g, memory_order_relaxed);
        atomic_store_explicit(&w->runq_tail, t + 1, memory_order_release);
        return;
    }
    runq_put_full(w, g);
}

/* Called by w's owner only. Only the owner puts a coroutine into
 * runnext and thieves only take it (runq_grab, a CAS to NULL), so an
 * exchange with NULL does what a load and a CAS would. */
static inline bool runnext_take(worker *w, coroutine **g) {
    *g = atomic_exchange_explicit(&w->runnext, NULL, memory_order_acquire);
    return *g != NULL;
}

/* g is about to run on w: how long it waited runnable (to the coarse
 * clock's millisecond) feeds the scheduling latency gauge. Taken for the
 * queue's head and in the scheduler context, not for runnext hand-offs
 * (they wait only for the coroutine that readied them to park). */
static inline void note_latency(worker *w, coroutine *g) {
    int64_t lat = coarse_now() - g->ready_at;
    if (unlikely(lat > atomic_load_explicit(&w->lat_max, memory_order_relaxed)))
        atomic_store_explicit(&w->lat_max, lat, memory_order_relaxed);
}

/* g, taken from the queue proper (or from runnext with nobody queued
 * behind it), starts a new slice. */
static inline coroutine *slice_begin(worker *w, coroutine *g) {
    atomic_store_explicit(&w->next_chain, 0, memory_order_relaxed);
    atomic_store_explicit(&w->nslices,
                          atomic_load_explicit(&w->nslices,
                                               memory_order_relaxed) + 1,
                          memory_order_relaxed);
    note_latency(w, g);
    return g;
}

/* The queue's head, else runnext whatever the slice. A slice that ended
 * with coroutines queued sends the runnext one to the back of the queue
 * (as Go's preemption does): everything queued runs before the chain
 * resumes, so a coroutine waits one slice, not one slice per coroutine
 * ahead of it. */
static inline __attribute__((always_inline)) coroutine *
runq_get_queue(worker *w) {
    coroutine *g;
    if (atomic_load_explicit(&w->next_chain, memory_order_relaxed) >=
            RUNNEXT_CHAIN_MAX &&
        runq_len(w) > 0 && runnext_take(w, &g))
        runq_put(w, g, false);
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&w->runq_tail, memory_order_relaxed);
        if (t == h)
            break;
        g = atomic_load_explicit(&w->runq[h % RUNQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&w->runq_head, &h, h + 1,
                                                  memory_order_release,
                                                  memory_order_relaxed))
            return slice_begin(w, g);
    }
    return runnext_take(w, &g) ? slice_begin(w, g) : NULL;
}

/* Out of line for park, whose hand-offs mostly find runnext; a yield,
 * which mostly finds the queue's head, inlines runq_get_queue. */
static __attribute__((noinline)) coroutine *runq_get_slow(worker *w) {
    return runq_get_queue(w);
}

/* runnext first while the slice lasts (see "Fairness" above): the
 * hand-off path, inlined into park and yield. */
static inline coroutine *runq_get(worker *w) {
    coroutine *g;
    uint32_t chain = atomic_load_explicit(&w->next_chain, memory_order_relaxed);
    if (likely(chain < RUNNEXT_CHAIN_MAX) && runnext_take(w, &g)) {
        atomic_store_explicit(&w->next_chain, chain + 1, memory_order_relaxed);
        return g;
    }
    return runq_get_slow(w);
}

/* Copies half of v's queue into w's queue starting at w's tail; returns
 * how many. May take v's runnext when the queue is empty. */
static uint32_t runq_grab(worker *v, worker *w, uint32_t wt, bool take_next) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&v->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&v->runq_tail, memory_order_acquire);
        uint32_t n = t - h;
        n -= n / 2;
        if (n == 0) {
            if (!take_next)
                return 0;
            coroutine *g = atomic_load_explicit(&v->runnext, memory_order_relaxed);
            if (g && atomic_compare_exchange_strong_explicit(
                         &v->runnext, &g, NULL, memory_order_acquire,
                         memory_order_relaxed)) {
                atomic_store_explicit(&w->runq[wt % RUNQ_SIZE], g,
                                      memory_order_relaxed);
                return 1;
            }
            return 0;
        }
        if (n > RUNQ_SIZE / 2)
            continue; /* inconsistent h/t pair */
        for (uint32_t i = 0; i < n; i++) {
            coroutine *g = atomic_load_explicit(&v->runq[(h + i) % RUNQ_SIZE],
                                              memory_order_relaxed);
            atomic_store_explicit(&w->runq[(wt + i) % RUNQ_SIZE], g,
                                  memory_order_relaxed);
        }
        if (atomic_compare_exchange_strong_explicit(&v->runq_head, &h, h + n,
                                                    memory_order_release,
                                                    memory_order_relaxed))
            return n;
    }
}

static coroutine *runq_steal(worker *w, worker *v, bool take_next) {
    uint32_t t = atomic_load_explicit(&w->runq_tail, memory_order_relaxed);
    uint32_t n = runq_grab(v, w, t, take_next);
    if (n == 0)
        return NULL;
    n--;
    coroutine *g = atomic_load_explicit(&w->runq[(t + n) % RUNQ_SIZE],
                                      memory_order_relaxed);
    if (n)
        atomic_store_explicit(&w->runq_tail, t + n, memory_order_release);
    return g;
}

/* Takes a fair share of the global queue: one to run, some to the local
 * queue. */
static coroutine *gq_get(worker *w) {
    if (atomic_load_explicit(&S.gq_len, memory_order_relaxed) == 0)
        return NULL;
    coroutine *batch[RUNQ_SIZE / 2];
    llock_acquire(&S.lock);
    uint32_t len = (uint32_t)atomic_load_explicit(&S.gq_len,
                                                  memory_order_relaxed);
    uint32_t n = len / (uint32_t)S.nprocs + 1;
    if (n > RUNQ_SIZE / 2)
        n = RUNQ_SIZE / 2;
    n = gq_pop_locked(batch, n);
    llock_release(&S.lock);
    /* Queue the rest locally without S.lock: runq_put may spill into it. */
    for (uint32_t i = 1; i < n; i++)
        runq_put(w, batch[i], false);
    return n ? batch[0] : NULL;
}

/* -------------------------------------------------------- idle / wakeups */

static void idle_push(worker *w) { /* S.lock held */
    w->idle = true;
    w->idle_next = S.idle;
    S.idle = w;
    atomic_fetch_add(&S.nidle, 1);
}

static bool idle_remove(worker *w) { /* S.lock held */
    if (!w->idle)
        return false;
    for (worker **p = &S.idle; *p; p = &(*p)->idle_next) {
        if (*p == w) {
            *p = w->idle_next;
            break;
        }
    }
    w->idle = false;
    atomic_fetch_sub(&S.nidle, 1);
    return true;
}

static void wakep(void);

void sched_worker_wake(worker *w) { /* w already taken off the idle list */
    atomic_store(&w->wakeup, 1);
    if (atomic_load(&S.poller) == w)
        netpoll_break(); /* it sleeps in epoll, not on its futex */
    else
        futex_wake(&w->wakeup, 1);
}

/* A coroutine started waiting for I/O: make sure somebody will poll. */
void sched_netpoll_waiter_added(void) {
    if (!atomic_load(&S.poller) && atomic_load(&S.nidle) > 0)
        wakep();
}

/* Polls without blocking, unless another worker is at it; the readied
 * coroutines land on this worker's queue. */
static coroutine *poll_ready(worker *w) {
    if (atomic_load_explicit(&S.io_waiters, memory_order_relaxed) == 0 ||
        !llock_try(&S.poll_lock))
        return NULL;
    int n = netpoll(0);
    llock_release(&S.poll_lock);
    return n > 0 ? runq_get(w) : NULL;
}

void sched_wake_idle(void) { wakep(); }

/* Wakes one idle worker to spin for work, unless one already spins. */
static void wakep(void) {
    if (atomic_load(&S.nidle) == 0 || atomic_load(&S.nspinning) != 0)
        return;
    int z = 0;
    if (!atomic_compare_exchange_strong(&S.nspinning, &z, 1))
        return;
    llock_acquire(&S.lock);
    worker *w = S.idle;
    if (w) {
        idle_remove(w);
        /* Under S.lock: w may be waking by a timeout right now, and it
         * takes S.lock before it looks at its flag again. */
        w->spinning = true;
    }
    llock_release(&S.lock);
    if (!w) {
        atomic_fetch_sub(&S.nspinning, 1);
        return;
    }
    sched_worker_wake(w);
}

void timer_kick(int64_t when) {
    if (when >= atomic_load(&S.sleep_until) || atomic_load(&S.nidle) == 0)
        return;
    llock_acquire(&S.lock);
    worker *w = S.timed_sleeper;
    if (!w || !w->idle)
        w = S.idle;
    if (w && idle_remove(w)) {
        llock_release(&S.lock);
        sched_worker_wake(w);
        return;
    }
    llock_release(&S.lock);
}

static void stop_spinning(worker *w) {
    if (!w->spinning)
        return;
    w->spinning = false;
    /* The last spinner to find work makes sure another one looks. */
    if (atomic_fetch_sub(&S.nspinning, 1) == 1)
        wakep();
}

static __attribute__((noinline)) void ready_foreign(coroutine *g) {
    /* Not parked any more as far as the deadlock detector goes, even
     * before the thread runs again. */
    if (atomic_exchange(&g->in_park, 0))
        atomic_fetch_sub(&S.foreign_parked, 1);
    atomic_store_explicit(&g->parked, 1, memory_order_release);
    futex_wake(&g->parked, 1);
}

/* sched_ready's general case (traced, off a worker, or to the tail). */
static __attribute__((noinline)) void ready_slow(worker *w, coroutine *g,
                                                 bool next) {
    TRACE(w, TR_UNPARK, g);
    if (w) {
        runq_put(w, g, next);
        if (runq_len(w) > 0)
            wakep();
        return;
    }
    gq_put(&g, 1);
    wakep();
    if (atomic_load(&S.nspinning) == 0 && atomic_load(&S.nidle) == S.nprocs)
        wakep(); /* lost the race with a worker going idle: retry */
}

/* g went to runnext and pushed `old` out: old to the tail, as runq_put. */
static __attribute__((noinline)) void ready_pushed_out(worker *w,
                                                       coroutine *old) {
    runq_put(w, old, false);
    wakep(); /* the queue holds old */
}

/* The usual case, a hand-off into an empty runnext with nothing queued
 * (nobody to wake), makes no call that returns: no frame to save. */
void sched_ready(coroutine *g, bool next) {
    if (unlikely(g->foreign)) {
        ready_foreign(g);
        return;
    }
    atomic_store_explicit(&g->state, G_RUNNABLE, memory_order_relaxed);
    g->ready_at = coarse_now();
    worker *w = sched_tls_w;
    if (unlikely(atomic_load_explicit(&trace_on, memory_order_relaxed)) ||
        unlikely(!w || !next)) {
        ready_slow(w, g, next);
        return;
    }
    /* runq_put(w, g, true), inline */
    coroutine *old =
        atomic_exchange_explicit(&w->runnext, g, memory_order_acq_rel);
    if (unlikely(old)) {
        ready_pushed_out(w, old);
        return;
    }
    if (unlikely(runq_len(w) > 0))
        wakep();
}

void sched_start_g(coroutine *g) {
    TRACE(sched_tls_w, TR_SPAWN, g);
    sched_ready(g, true);
}

static bool any_work(void) {
    if (atomic_load(&S.gq_len) > 0)
        return true;
    for (int i = 0; i < S.nprocs; i++) {
        worker *v = &S.workers[i];
        if (runq_len(v) > 0 || atomic_load(&v->runnext))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------- switching */

static inline worker *ctx_switch(worker *w, void **save, void **fake_save,
                                 coroutine *to) {
#if defined(LEASH_ASAN)
    if (to)
        __sanitizer_start_switch_fiber(fake_save, to->stack->lo,
                                       (size_t)((char *)to - to->stack->lo));
    else
        __sanitizer_start_switch_fiber(fake_save, w->g0_stack_lo,
                                       w->g0_stack_size);
#else
    (void)fake_save;
#endif
#if defined(LEASH_TSAN)
    __tsan_switch_to_fiber(to ? to->tsan_fiber : w->tsan_fiber, 0);
#endif
    worker *nw = mctx_switch(save, to ? to->sp : w->g0_sp, w);
#if defined(LEASH_ASAN)
    __sanitizer_finish_switch_fiber(fake_save ? *fake_save : NULL, NULL, NULL);
#endif
    return nw;
}

static void g_free_dead(worker *w, coroutine *g) {
#if defined(LEASH_TSAN)
    __tsan_destroy_fiber(g->tsan_fiber);
#endif
    stack_put(w, g->stack);
}

void sched_discard_g(worker *w, coroutine *g) { g_free_dead(w, g); }

/* Runs the action the previous coroutine on this worker left behind. */
static inline void do_after(worker *w) {
    enum after_kind k = w->after;
    if (likely(k == AFTER_UNLOCK)) { /* a park: the most common */
        w->after = AFTER_NONE;
        if (w->after_fn)
            w->after_fn(w->after_arg);
        return;
    }
    if (k == AFTER_NONE) /* rare: a switch from the scheduler context */
        return;
    w->after = AFTER_NONE;
    coroutine *ag = w->after_g;
    switch (k) {
    case AFTER_YIELD:
        atomic_store_explicit(&ag->state, G_RUNNABLE, memory_order_relaxed);
        ag->ready_at = coarse_now();
        runq_put(w, ag, false);
        break;
    case AFTER_EXIT:
        g_free_dead(w, ag);
        break;
    default:
        break;
    }
}

/* A worker that has stopped: runs what its last switch left to do. */
void sched_worker_finish(worker *w) { do_after(w); }

static inline void check_stack(coroutine *g) {
    /* A guarded stack has no canary to check: no call for it. */
    if (unlikely(!g->stack->guarded) && unlikely(!stack_canary_ok(g->stack))) {
        stack_overflow_report(g, "canary overwritten");
        rt_fatal("leash: coroutine stack corrupted");
    }
}

/* Switches from the running coroutine g to `to` (NULL: the scheduler
 * context) and returns the worker g resumes on. */
static inline __attribute__((always_inline)) worker *
switch_from(worker *w, coroutine *g, coroutine *to, bool exiting) {
    check_stack(g);
    /* One trace check per switch: g's park, yield or exit (its state
     * says which) and to's run. */
    if (unlikely(atomic_load_explicit(&trace_on, memory_order_relaxed)))
        observer_impl.trace_switch(w, g, to);
    if (to) {
        __atomic_store_n(&w->cur, to, __ATOMIC_RELAXED);
        __atomic_store_n(&to->w, w, __ATOMIC_RELAXED); /* dumps read it */
        atomic_store_explicit(&to->state, G_RUNNING, memory_order_relaxed);
    } else {
        __atomic_store_n(&w->cur, NULL, __ATOMIC_RELAXED);
    }
#if defined(LEASH_ASAN)
    void **fake = exiting ? NULL : &g->asan_fake;
#else
    void **fake = NULL;
    (void)exiting;
#endif
    w = ctx_switch(w, &g->sp, fake, to);
    atomic_store_explicit(&g->nresume,
                          atomic_load_explicit(&g->nresume,
                                               memory_order_relaxed) + 1,
                          memory_order_release);
    do_after(w);
    return w;
}

/* The next coroutine to run directly, or NULL to go through the scheduler
 * context (nothing local, or it is time for the fairness checks). */
static inline uint32_t tick(worker *w) {
    uint32_t t = atomic_load_explicit(&w->schedtick, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->schedtick, t, memory_order_relaxed);
    return t;
}

static inline coroutine *next_local(worker *w) {
    if (unlikely(tick(w) % 61 == 0))
        return NULL;
    return runq_get(w);
}

void sched_park(void (*unlockf)(void *), void *arg) {
    worker *w = sched_tls_w;
    coroutine *g = w ? w->cur : NULL;
    if (!g) {
        g = sched_tls_foreign;
        if (!g)
            rt_fatal("leash: park outside a coroutine or known thread");
        if (in_forked_child()) /* nobody is left to wake it */
            fork_refuse_fatal("blocking on a leash object");
        atomic_store(&g->in_park, 1);
        atomic_fetch_add(&S.foreign_parked, 1);
        if (unlockf)
            unlockf(arg);
        sysmon_kick(); /* let it look for a deadlock */
        while (atomic_load_explicit(&g->parked, memory_order_acquire) == 0)
            futex_wait(&g->parked, 0, T_INF);
        if (atomic_exchange(&g->in_park, 0)) /* unless the waker did */
            atomic_fetch_sub(&S.foreign_parked, 1);
        return;
    }
    atomic_store_explicit(&g->state, G_WAITING, memory_order_relaxed);
    w->after = AFTER_UNLOCK;
    w->after_fn = unlockf;
    w->after_arg = arg;
    switch_from(w, g, next_local(w), false);
}

API_FRAME void leash_yield(void) {
    worker *w = sched_tls_w;
    coroutine *g = w ? w->cur : NULL;
    if (!g) {
        sched_yield();
        return;
    }
    /* next_local, with the queue's head (a yield's usual next) inline. */
    coroutine *next = NULL;
    if (likely(tick(w) % 61 != 0)) {
        uint32_t chain =
            atomic_load_explicit(&w->next_chain, memory_order_relaxed);
        if (likely(chain < RUNNEXT_CHAIN_MAX) && runnext_take(w, &next))
            atomic_store_explicit(&w->next_chain, chain + 1,
                                  memory_order_relaxed);
        else
            next = runq_get_queue(w);
    }
    if (!next && atomic_load_explicit(&w->schedtick, memory_order_relaxed) % 61 != 0 &&
        atomic_load_explicit(&S.gq_len, memory_order_relaxed) == 0)
        return; /* nothing else to run here */
    w->after = AFTER_YIELD;
    w->after_g = g;
    atomic_store_explicit(&g->state, G_RUNNABLE, memory_order_relaxed);
    switch_from(w, g, next, false);
}

_Noreturn void sched_exit_current(worker *w) {
    coroutine *g = w->cur;
    atomic_store_explicit(&g->state, G_DEAD, memory_order_relaxed);
    w->after = AFTER_EXIT;
    w->after_g = g;
    switch_from(w, g, next_local(w), true);
    __builtin_unreachable();
}

/* --------------------------------------------------------- find runnable */

static coroutine *try_steal(worker *w) {
    int n = S.nprocs;
    /* Timers due on any heap first: they may ready coroutines here. */
    if (timer_next_all() != T_INF && timers_run_due(leash_now()) > 0) {
        coroutine *g = runq_get(w);
        if (g)
            return g;
    }
    for (int round = 0; round < 4; round++) {
        uint32_t start = sched_rand() % (uint32_t)n;
        for (int i = 0; i < n; i++) {
            worker *v = &S.workers[(start + (uint32_t)i) % (uint32_t)n];
            if (v == w)
                continue;
            coroutine *g = runq_steal(w, v, round == 3);
            if (g)
                return g;
        }
    }
    return NULL;
}

/* Before the poller blocks in epoll while another worker runs: that
 * worker's coroutine often makes an fd ready within microseconds (the
 * reply on a connection), and a worker blocked in the kernel takes a
 * wake-up (an IPI to a halted vCPU: 10-20 us on a VM) to see it. So
 * the poller polls without blocking for up to POLL_SPIN_NS first;
 * whether it found events. */
#define POLL_SPIN_NS 20000
static bool poll_spin(worker *w, int64_t deadline) {
    if (atomic_load(&S.nidle) >= S.nprocs)
        return false; /* nobody runs: nothing will come from inside */
    int64_t until = time_add(leash_now(), POLL_SPIN_NS);
    if (deadline < until)
        return false;
    do {
        if (netpoll(0) > 0)
            return true;
        for (int i = 0; i < 64; i++)
            cpu_relax();
    } while (atomic_load(&w->wakeup) == 0 && leash_now() < until);
    return atomic_load(&w->wakeup) != 0;
}

static void sleep_idle(worker *w) {
    stack_trim(64); /* idle time is the time for housekeeping */
    int64_t deadline = T_INF;
    int64_t next = timer_next_all();
    llock_acquire(&S.lock);
    if (next != T_INF && w->idle &&
        (next < atomic_load(&S.sleep_until) || !S.timed_sleeper)) {
        atomic_store(&S.sleep_until, next);
        S.timed_sleeper = w;
        deadline = next;
    }
    llock_release(&S.lock);
    /* With coroutines waiting for I/O, one idle worker sleeps in epoll
     * instead of on its futex (worker_wake knows to break it out). */
    worker *none = NULL;
    if (atomic_load(&S.io_waiters) > 0 &&
        atomic_compare_exchange_strong(&S.poller, &none, w)) {
        /* Not under poll_lock: a busy worker that runs out of work must
         * still be able to poll without blocking meanwhile, and run what
         * is ready at once rather than wait for this sleeper's wake-up
         * (a request and its reply on one connection stay on one worker,
         * as in Go's findrunnable). epoll hands each one-shot event to
         * one caller. */
        if (atomic_load(&w->wakeup) == 0 && !atomic_load(&S.shutting_down) &&
            !poll_spin(w, deadline)) {
            TRACE(w, TR_POLL_BEGIN, NULL);
            netpoll(deadline);
            TRACE(w, TR_POLL_END, NULL);
        }
        atomic_store(&S.poller, NULL);
    } else {
        while (atomic_load_explicit(&w->wakeup, memory_order_acquire) == 0 &&
               !atomic_load(&S.shutting_down)) {
            if (futex_wait(&w->wakeup, 0, deadline) == -ETIMEDOUT)
                break;
        }
    }
    llock_acquire(&S.lock);
    if (S.timed_sleeper == w) {
        S.timed_sleeper = NULL;
        atomic_store(&S.sleep_until, T_INF);
    }
    idle_remove(w);
    llock_release(&S.lock);
    atomic_store_explicit(&w->wakeup, 0, memory_order_relaxed);
    sysmon_worker_awake();
}

static coroutine *find_runnable(worker *w) {
    coroutine *g;
top:
    if (atomic_load_explicit(&S.shutting_down, memory_order_relaxed))
        return NULL;
    if (atomic_load_explicit(&w->schedtick, memory_order_relaxed) % 61 == 0) {
        /* Keep the park clock fresh even while sysmon is busy (a dump). */
        int64_t now = leash_now();
        atomic_store_explicit(&S.coarse_now, now, memory_order_relaxed);
        /* Every heap's timers, not only ours: the idle worker that was to
         * sleep until them may have been woken early and be busy now,
         * and the others sleep without a deadline. */
        if (timer_next_all() <= now)
            timers_run_due(now);
        if ((g = gq_get(w)))
            return g;
    }
    int64_t nw = atomic_load_explicit(&w->timers.next_when,
                                      memory_order_relaxed);
    if (nw != T_INF) {
        int64_t now = leash_now();
        if (nw <= now)
            timers_run_due(now);
    }
    if ((g = runq_get(w)) || (g = gq_get(w)))
        return g;
    if ((g = poll_ready(w)))
        return g;
    if (S.nprocs > 1 &&
        (w->spinning || 2 * atomic_load(&S.nspinning) <
                            S.nprocs - atomic_load(&S.nidle))) {
        if (!w->spinning) {
            w->spinning = true;
            atomic_fetch_add(&S.nspinning, 1);
        }
        if ((g = try_steal(w))) {
            stop_spinning(w);
            return g;
        }
    }
    /* Nothing found: publish ourselves idle, then look once more. */
    llock_acquire(&S.lock);
    if (atomic_load(&S.gq_len) > 0) {
        llock_release(&S.lock);
        goto top;
    }
    /* Read and cleared before publishing: once on the idle list, a waker
     * may set it (wakep, under S.lock), and a store after the release
     * would overwrite that (a data race TSan reports, and a spinner the
     * count keeps but no worker knows it is). */
    bool was_spinning = w->spinning;
    w->spinning = false;
    idle_push(w);
    llock_release(&S.lock);
    if (was_spinning)
        atomic_fetch_sub(&S.nspinning, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (any_work() || timer_next_all() <= leash_now()) {
        llock_acquire(&S.lock);
        bool mine = idle_remove(w);
        llock_release(&S.lock);
        if (mine) {
            if (was_spinning) {
                w->spinning = true;
                atomic_fetch_add(&S.nspinning, 1);
            }
            goto top;
        }
        /* Somebody took us off the list and is waking us: wait for it. */
    }
    sleep_idle(w);
    timers_run_due(leash_now()); /* expired anywhere: run them here */
    goto top;
}

static void run_g(worker *w, coroutine *g) {
    tick(w); /* sysmon tells a hog by a tick count that does not move */
    note_latency(w, g);
    __atomic_store_n(&w->cur, g, __ATOMIC_RELAXED);
    __atomic_store_n(&g->w, w, __ATOMIC_RELAXED);
    atomic_store_explicit(&g->state, G_RUNNING, memory_order_relaxed);
    TRACE(w, TR_RUN, g);
#if defined(LEASH_ASAN)
    void **fake = &w->asan_fake;
#else
    void **fake = NULL;
#endif
    w = ctx_switch(w, &w->g0_sp, fake, g);
    __atomic_store_n(&w->cur, NULL, __ATOMIC_RELAXED);
    do_after(w);
}

void *sched_worker_main(void *p) {
    worker *w = p;
    sched_tls_w = w;
    atomic_store(&w->tid, (int)syscall(SYS_gettid));
    stack_t ss = {.ss_sp = w->altstack, .ss_size = 64 << 10, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t sz;
        pthread_attr_getstack(&attr, &lo, &sz);
        w->g0_stack_lo = lo;
        w->g0_stack_size = sz;
        pthread_attr_destroy(&attr);
    }
#if defined(LEASH_TSAN)
    w->tsan_fiber = __tsan_get_current_fiber();
#endif
    coroutine *g;
    while ((g = find_runnable(w))) {
        stop_spinning(w); /* found work: let another worker spin */
        run_g(w, g);
    }
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    return NULL;
}

/* ---------------------------------------------------------------- random */

uint32_t sched_rand(void) {
    static _Atomic uint64_t shared_seed = 0x9e3779b97f4a7c15ull;
    worker *w = sched_tls_w;
    uint64_t x;
    if (w) {
        x = w->rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w->rng = x;
    } else {
        x = atomic_fetch_add(&shared_seed, 0x9e3779b97f4a7c15ull);
        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 29;
    }
    return (uint32_t)(x >> 32);
}

/* ------------------------------------------------------- new coroutines */

INTERNAL void coro_body(coroutine *g); /* coro.c: runs fn, then cleans up */

/* First code a new coroutine runs (via mctx_trampoline). */
ENTRY_FRAME static void g_entry(void *wv, void *gv) {
    worker *w = wv;
    coroutine *g = gv;
#if defined(LEASH_ASAN)
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    do_after(w);
    coro_body(g);
    sched_exit_current(g->w);
}

/* Prepares g's first switch; called by leash_go before sched_start_g. */
void sched_init_g(coroutine *g) {
    g->sp = ctx_init(g, g_entry, g); /* the stack ends where g starts */
#if defined(LEASH_TSAN)
    g->tsan_fiber = __tsan_create_fiber(0);
#endif
#if defined(LEASH_ASAN)
    g->asan_fake = NULL;
#endif
}
