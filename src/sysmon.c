/* SPDX-License-Identifier: MIT */
/*
 * sysmon.c — the watchdog thread (Go's sysmon).
 *
 * While any worker is busy it wakes every SYSMON_TICK_NS and:
 *   - refreshes S.coarse_now, the clock that park times are taken from.
 *     Reading the TSC or clock_gettime on every park costs 10-16 ns, a
 *     tenth of a channel round trip; a shared word refreshed every
 *     millisecond costs one load, and park times stay exact to the
 *     millisecond, which is what dumps print;
 *   - ends a worker's slice (sched.c, "Fairness") when the same chain of
 *     runnext hand-offs has kept it for SLICE_NS while coroutines wait in
 *     its queue, and collects each worker's longest scheduling latency
 *     into S.sched_lat_max (the maximum over SCHED_LAT_WINDOW seconds);
 *   - wakes an idle worker when a busy one has had runnable coroutines
 *     queued for a whole tick (the scheduler does not wake workers for a
 *     lone `runnext`, so a coroutine that computes for long would
 *     otherwise keep its readied peer waiting);
 *   - flags a coroutine that runs without yielding for LEASH_HOG_MS
 *     (default 1000) as a suspect (an endless loop) and samples its stack;
 *   - polls the network when coroutines wait for I/O and no worker has
 *     polled for 10 ms (all of them busy);
 *   - wakes an idle worker when a timer is overdue by a tick (Go's sysmon
 *     starts an M for that too): a safety net under the scheduler's own
 *     checks, for a timer left on the heap of a worker asleep without a
 *     deadline while the others are busy;
 * When every worker is idle it sleeps until one wakes up, so an idle
 * process uses no CPU.
 */
#include "internal.h"
#include "snapshot.h"

#include <errno.h>

#define SYSMON_TICK_NS 1000000

static bool runq_nonempty(worker *w) {
    return atomic_load(&w->runq_tail) != atomic_load(&w->runq_head);
}

/* One slice (a chain of runnext hand-offs) has lasted SLICE_NS with
 * coroutines queued behind it: make the worker take its queue's head at
 * its next scheduling decision. O(1) per worker, no lock. */
static void slice_watch(worker *w, uint32_t *seen, int64_t *since,
                        int64_t now) {
    uint32_t n = atomic_load_explicit(&w->nslices, memory_order_relaxed);
    if (n != *seen || !runq_nonempty(w)) {
        *seen = n;
        *since = now;
        return;
    }
    if (now - *since >= SLICE_NS) {
        atomic_store_explicit(&w->next_chain, RUNNEXT_CHAIN_MAX,
                              memory_order_relaxed);
        atomic_fetch_add_explicit(&S.slices_forced, 1, memory_order_relaxed);
        *since = now;
    }
}

/* Once a second: the workers' latency maxima into a ring of
 * SCHED_LAT_WINDOW seconds, whose maximum is the published gauge. */
static void latency_collect(int64_t now) {
    static int64_t ring[SCHED_LAT_WINDOW], last;
    static int pos;
    int64_t m = 0;
    for (int i = 0; i < S.nprocs; i++) {
        int64_t v = atomic_exchange_explicit(&S.workers[i].lat_max, 0,
                                             memory_order_relaxed);
        if (v > m)
            m = v;
    }
    if (now - last >= 1000000000) {
        last = now;
        pos = (pos + 1) % SCHED_LAT_WINDOW;
        ring[pos] = 0;
    }
    if (m > ring[pos])
        ring[pos] = m;
    int64_t w = 0;
    for (int i = 0; i < SCHED_LAT_WINDOW; i++)
        if (ring[i] > w)
            w = ring[i];
    atomic_store_explicit(&S.sched_lat_max, w, memory_order_relaxed);
}

/* LEASH_HOG_MS, read by sysmon_start: at the runtime's start, so that a
 * bad value is reported then, not whenever sysmon's thread gets a CPU
 * (a short program could end first). */
static int64_t hog_ns;

static void *sysmon_main(void *arg) {
    (void)arg;
    uint32_t seen_tick[1024], seen_slice[1024];
    int64_t seen_since[1024], slice_since[1024];
    coroutine *hog[1024];
    int n = S.nprocs < 1024 ? S.nprocs : 1024;
    int64_t recheck = 50000000; /* deadlock re-check delay, grows */
    for (int i = 0; i < n; i++) {
        seen_tick[i] = atomic_load(&S.workers[i].schedtick);
        seen_since[i] = slice_since[i] = leash_now();
        seen_slice[i] = 0;
        hog[i] = NULL;
    }
    while (!atomic_load(&S.shutting_down)) {
        orphan_process();
        int64_t now = leash_now();
        snapshot_trim(now);
        atomic_store_explicit(&S.coarse_now, now, memory_order_relaxed);
        /* Every round, idle or not (SIGQUIT dumps; site growth, sampled
         * at most once a second: a loop that spawns a coroutine which
         * parks at once leaves every worker idle nearly all the time, and
         * it is exactly what growth detection is for). */
        observer_impl.tick(now);
        latency_collect(now);
        if (atomic_load(&S.nidle) == S.nprocs &&
            atomic_load(&S.gq_len) == 0 && !atomic_load(&S.orphans_queued)) {
            /* Everything idle: unless that is a deadlock (which ends the
             * process), sleep until a worker wakes us. */
            bool again = observer_impl.all_idle();
            atomic_store(&S.sysmon_sleeping, 1);
            /* Re-checked after announcing the sleep: an orphan queued
             * (or a worker woken) between the checks above and the store
             * kicked a sysmon that was not asleep yet. */
            if (atomic_load(&S.nidle) == S.nprocs &&
                !atomic_load(&S.orphans_queued) &&
                !atomic_load(&S.shutting_down))
                futex_wait(&S.sysmon_sleeping, 1,
                           again ? leash_now() + recheck : T_INF);
            atomic_store(&S.sysmon_sleeping, 0);
            recheck = again && recheck < 5000000000 ? recheck * 2 : 50000000;
            continue;
        }
        for (int i = 0; i < n; i++) {
            worker *w = &S.workers[i];
            slice_watch(w, &seen_slice[i], &slice_since[i], now);
            uint32_t t = atomic_load_explicit(&w->schedtick,
                                              memory_order_relaxed);
            if (t != seen_tick[i]) {
                seen_tick[i] = t;
                seen_since[i] = now;
                if (hog[i]) { /* it yielded at last */
                    atomic_store(&hog[i]->hog_since, 0);
                    hog[i] = NULL;
                }
                continue;
            }
            coroutine *cur = __atomic_load_n(&w->cur, __ATOMIC_RELAXED);
            if (cur && !hog[i] && now - seen_since[i] >= hog_ns) {
                /* Running without a scheduling decision for that long:
                 * an endless loop, as likely as not. Keep its stack. */
                cur->hog_n = sampler_sample(w, cur, cur->hog_pcs, 16);
                atomic_store(&cur->hog_since, seen_since[i]);
                hog[i] = cur;
            }
            /* No scheduling decision on w for a whole tick: if it has
             * queued work and somebody idles, let that one take it. The
             * queued work has waited that long at least: scheduling
             * latency the workers cannot note themselves (a coroutine
             * that computes keeps its readied peer waiting). */
            int64_t stalled = now - seen_since[i];
            if (stalled >= SYSMON_TICK_NS &&
                (atomic_load(&w->runnext) || runq_nonempty(w))) {
                if (stalled > atomic_load_explicit(&w->lat_max,
                                                   memory_order_relaxed))
                    atomic_store_explicit(&w->lat_max, stalled,
                                          memory_order_relaxed);
                sched_wake_idle();
            }
        }
        /* A timer overdue by a tick: every worker is busy elsewhere or
         * asleep without a deadline (the one that slept until it was
         * woken early for other work). Wake an idle one to run it. */
        if (timer_next_all() < now - SYSMON_TICK_NS &&
            atomic_load(&S.nidle) > 0)
            sched_wake_idle();
        /* Busy workers do not poll: don't let I/O waiters starve. */
        if (atomic_load(&S.io_waiters) > 0 && !atomic_load(&S.poller) &&
            now - netpoll_last() > 10 * SYSMON_TICK_NS &&
            llock_try(&S.poll_lock)) {
            netpoll(0);
            llock_release(&S.poll_lock);
        }
        /* Until the next tick, or at once for a queued orphan: the
         * waiters of a proven channel are woken (LEASH_ORPHANS=wake)
         * within microseconds of the proof, not at the next tick
         * (docs/DESIGN-NOTES.md, "Proof latency"). */
        int64_t deadline = now + SYSMON_TICK_NS;
        for (;;) {
            uint32_t kicks = atomic_load(&S.sysmon_kicks);
            if (leash_now() >= deadline || atomic_load(&S.shutting_down) ||
                atomic_load(&S.orphans_queued))
                break;
            futex_wait(&S.sysmon_kicks, kicks, deadline);
        }
    }
    return NULL;
}

int sysmon_start(void) {
    hog_ns = (int64_t)env_u64("LEASH_HOG_MS", 1000, 1, 86400000) * 1000000;
    atomic_store(&S.coarse_now, leash_now());
    atomic_store(&S.sysmon_stop, 0);
    return pthread_create(&S.sysmon_thread, NULL, sysmon_main, NULL) == 0
               ? 0
               : LEASH_ENOMEM;
}

void sysmon_stop(void) {
    atomic_store(&S.sysmon_stop, 1);
    sysmon_kick();
    pthread_join(S.sysmon_thread, NULL);
}

/* Wakes sysmon for work (queued orphan reports, a dump signal), asleep
 * while idle (sysmon_sleeping) or between ticks (sysmon_kicks: a count,
 * so a kick between its checks and its futex_wait is not lost). A futex
 * wake and atomics only: async-signal-safe. */
void sysmon_kick(void) {
    atomic_fetch_add(&S.sysmon_kicks, 1);
    futex_wake(&S.sysmon_kicks, 1);
    atomic_store(&S.sysmon_sleeping, 0);
    futex_wake(&S.sysmon_sleeping, 1);
}

/* A worker leaving idle: refresh the clock and wake sysmon if it sleeps. */
void sysmon_worker_awake(void) {
    atomic_store_explicit(&S.coarse_now, leash_now(), memory_order_relaxed);
    if (atomic_load_explicit(&S.sysmon_sleeping, memory_order_relaxed)) {
        atomic_store(&S.sysmon_sleeping, 0);
        futex_wake(&S.sysmon_sleeping, 1);
    }
}
