/* SPDX-License-Identifier: MIT */
/*
 * stress_sched.c — the scheduler under load: a million coroutines in
 * waves (memory must not creep), many workers yielding with a checksum of
 * the work done, foreign threads spawning and talking to coroutines, and
 * deep recursion within the default stack.
 *
 * Also run under ASan+UBSan and TSan (make test-asan / test-tsan), where
 * the loads are scaled down (see scale()): sanitizer bookkeeping per
 * coroutine (TSan keeps a fiber per coroutine) makes the full sizes too
 * slow or too big there, and the point under the sanitizers is the
 * interleavings, not the counts.
 *
 * LEASH_TEST_TIMEOUT 180
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core_util.h"

static long scale(long full, long asan, long tsan) {
#if defined(__SANITIZE_THREAD__)
    (void)full, (void)asan;
    return tsan;
#elif defined(__SANITIZE_ADDRESS__)
    (void)full, (void)tsan;
    return asan;
#else
    (void)asan, (void)tsan;
    return full;
#endif
}

/* ------------------------------------------------------- waves, RSS */

static atomic_long wave_exited;

static void parked(void *p) {
    leash_chan *gate = p;
    (void)leash_recv_n(gate, NULL, 0); /* until the gate closes */
    atomic_fetch_add(&wave_exited, 1);
}

enum { NWAVES = 10 };
static long wave_size;
static size_t rss_after[NWAVES], rss_peak[NWAVES];

static int waves_main(void *arg) {
    (void)arg;
    long total = 0;
    for (int w = 0; w < NWAVES; w++) {
        leash_chan *gate = leash_chan_make(0, 0);
        CU_CHECK(gate != NULL);
        for (long i = 0; i < wave_size; i++) {
            int64_t id = leash_go(parked, gate);
            if (id <= 0) {
                cu_fail(__FILE__, __LINE__, "wave %d: leash_go #%ld: %s", w, i,
                        leash_strerror((int)id));
                return 1;
            }
        }
        CU_CHECK_EQ(leash_num_coroutines(), wave_size + 1);
        /* Let every one of them park before releasing them. */
        leash_sleep(5 * CU_MS);
        rss_peak[w] = cu_rss_bytes();
        CU_CHECK_EQ(leash_close(gate), 0);
        CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 60000));
        total += wave_size;
        CU_CHECK_EQ(atomic_load(&wave_exited), total);
        leash_release(gate);
        rss_after[w] = cu_rss_bytes();
        fprintf(stderr, "wave %d: %ld coroutines, RSS parked %.1f MiB, after %.1f MiB\n",
                w, wave_size, rss_peak[w] / 1048576.0, rss_after[w] / 1048576.0);
    }
    return 0;
}

Test(sched, million_coroutines_in_waves_rss_stable, .timeout = 900) {
    /* TSan: each coroutine is a fiber of fresh memory; 10 waves of 1,000
     * took 50 s. The RSS check is for the other builds; TSan looks for
     * races in the reuse, which 400 a wave show as well. */
    wave_size = scale(100000, 100000, 400);
    cr_assert_eq(leash_run(waves_main, NULL), 0);
    CU_ASSERT_CLEAN();
    /* From the third wave on, the stacks are reused: the parked peak and
     * the idle level must stay within a small tolerance of wave 2's. */
    for (int w = 2; w < NWAVES; w++) {
        size_t tol_peak = rss_peak[1] / 20 + (16u << 20);
        size_t tol_after = rss_after[1] / 20 + (16u << 20);
        cr_assert_leq(rss_peak[w], rss_peak[1] + tol_peak,
                      "wave %d parked RSS %zu > wave 1's %zu + %zu", w,
                      rss_peak[w], rss_peak[1], tol_peak);
        cr_assert_leq(rss_after[w], rss_after[1] + tol_after,
                      "wave %d idle RSS %zu > wave 1's %zu + %zu", w,
                      rss_after[w], rss_after[1], tol_after);
    }
}

/* --------------------------------------------- many workers, checksum */

static atomic_ullong checksum;
static atomic_long work_done;

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static uint64_t work(long idx, long iters) {
    uint64_t h = (uint64_t)idx * 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < iters; i++)
        h = mix(h + (uint64_t)i);
    return h;
}

typedef struct {
    long idx, iters;
    leash_chan *done;
} job_t;

static void worker_co(void *p) {
    job_t *j = p;
    uint64_t h = (uint64_t)j->idx * 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < j->iters; i++) {
        h = mix(h + (uint64_t)i);
        if (i % 16 == 0)
            leash_yield();
    }
    atomic_fetch_add(&checksum, h);
    atomic_fetch_add(&work_done, j->iters);
    CU_CHECK_EQ(leash_send(j->done, &j->idx), 0);
}

static int checksum_main(void *arg) {
    (void)arg;
    long n = scale(1024, 512, 64), iters = scale(20000, 5000, 500);
    job_t *jobs = calloc((size_t)n, sizeof *jobs);
    leash_chan *done = leash_chan_make(sizeof(long), 16);
    for (long i = 0; i < n; i++) {
        jobs[i] = (job_t){.idx = i, .iters = iters, .done = done};
        CU_CHECK(leash_go(worker_co, &jobs[i], done) > 0);
    }
    char *seen = calloc((size_t)n, 1);
    for (long i = 0; i < n; i++) {
        long idx = -1;
        CU_CHECK_EQ(leash_recv(done, &idx), 0);
        CU_CHECK(idx >= 0 && idx < n && !seen[idx]);
        if (idx >= 0 && idx < n)
            seen[idx] = 1;
    }
    uint64_t want = 0;
    for (long i = 0; i < n; i++)
        want += work(i, iters);
    CU_CHECK(atomic_load(&checksum) == want);
    CU_CHECK_EQ(atomic_load(&work_done), n * iters);
    leash_release(done);
    free(seen);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 10000));
    free(jobs);
    return 0;
}

Test(sched, many_workers_yield_checksum, .timeout = 300) {
    setenv("LEASH_PROCS", "8", 1); /* more workers than CPUs */
    cr_assert_eq(leash_run(checksum_main, NULL), 0);
    cr_assert_eq(leash_num_workers(), 8);
    CU_ASSERT_CLEAN();
}

Test(sched, default_workers_yield_checksum, .timeout = 300) {
    cr_assert_eq(leash_run(checksum_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* Timers while the other workers are busy. The idle worker that sleeps
 * until the earliest timer (the timed sleeper) may be woken early to run
 * a coroutine that then keeps it busy, yielding; the timer on another
 * idle worker's heap must still fire. It did not: busy workers looked
 * only at their own heap, and the idle ones slept without a deadline
 * (found under qemu, where stress_chan's main slept forever). Each round
 * main sleeps while a plain thread starts yielding spinners at a varying
 * moment; a lost timer hangs the round (the watchdog names it). */
static atomic_int ts_stop, ts_round;
static leash_waitgroup ts_wg = LEASH_WAITGROUP_INIT;

static void ts_spin(void *a) {
    (void)a;
    while (!atomic_load(&ts_stop))
        leash_yield();
    leash_waitgroup_done(&ts_wg);
}

static void *ts_spawner(void *a) {
    int round = (int)(intptr_t)a;
    struct timespec d = {0, (round % 4) * 400000L};
    nanosleep(&d, NULL);
    int n = 1 + round % 3;
    leash_waitgroup_add(&ts_wg, n);
    for (int i = 0; i < n; i++)
        CU_CHECK(leash_go(ts_spin, NULL) > 0);
    return NULL;
}

static void *ts_watchdog(void *a) {
    (void)a;
    int last = -1;
    for (;;) {
        sleep(20);
        int r = atomic_load(&ts_round);
        if (r < 0)
            return NULL;
        if (r == last) {
            fprintf(stderr, "stress_sched: round %d: main's 2 ms sleep has "
                            "not returned for 20 s: a lost timer\n", r);
            abort();
        }
        last = r;
    }
}

static int ts_main(void *a) {
    (void)a;
    for (int round = 0; round < 300; round++) {
        atomic_store(&ts_round, round);
        atomic_store(&ts_stop, 0);
        pthread_t t;
        CU_CHECK_EQ(pthread_create(&t, NULL, ts_spawner, (void *)(intptr_t)round), 0);
        leash_sleep(2 * CU_MS); /* must return while they spin */
        atomic_store(&ts_stop, 1);
        pthread_join(t, NULL);
        leash_waitgroup_wait(&ts_wg);
    }
    return 0;
}

Test(sched, timers_fire_while_other_workers_spin, .timeout = 300) {
    setenv("LEASH_PROCS", "4", 1);
    pthread_t wd;
    cr_assert_eq(pthread_create(&wd, NULL, ts_watchdog, NULL), 0);
    cr_assert_eq(leash_run(ts_main, NULL), 0);
    atomic_store(&ts_round, -1);
    pthread_detach(wd);
    CU_ASSERT_CLEAN();
}

/* ------------------------------------------------------ foreign threads */

enum { NTHREADS = 4 };
static long rounds_per_thread, msgs_per_round;

typedef struct {
    leash_chan *in, *out, *done;
} pipe_t;

/* Answers v with 3v+1 until `in` closes, then reports on `done`. */
static void echo3(void *p) {
    pipe_t *pp = p;
    leash_chan *done = pp->done; /* pp is not touched after the last send */
    long v, n = 0;
    while (leash_recv(pp->in, &v) == 0) {
        CU_CHECK_EQ(leash_send(pp->out, &(long){3 * v + 1}), 0);
        n++;
    }
    CU_CHECK_EQ(leash_send(done, &n), 0);
}

/* Sends its id to a shared channel read by all threads. */
static void producer(void *p) {
    leash_chan *shared = p;
    long id = (long)leash_self();
    CU_CHECK_EQ(leash_send(shared, &id), 0);
}

static leash_chan *shared_ch;
static atomic_long shared_received;

static void *thread_main(void *arg) {
    long t = (long)(intptr_t)arg;
    long sum = 0;
    for (long r = 0; r < rounds_per_thread; r++) {
        pipe_t pp = {leash_chan_make(sizeof(long), (size_t)(r % 2)),
                     leash_chan_make(sizeof(long), 0),
                     leash_chan_make(sizeof(long), 0)};
        int64_t id = leash_go(echo3, &pp, pp.in, pp.out, pp.done);
        CU_CHECK(id > 0);
        for (long i = 0; i < msgs_per_round; i++) {
            long v = t * 1000000 + r * 1000 + i, got = 0;
            CU_CHECK_EQ(leash_send(pp.in, &v), 0);
            CU_CHECK_EQ(leash_recv(pp.out, &got), 0);
            CU_CHECK_EQ(got, 3 * v + 1);
            sum += got;
        }
        CU_CHECK_EQ(leash_close(pp.in), 0);
        long n = -1;
        CU_CHECK_EQ(leash_recv(pp.done, &n), 0);
        CU_CHECK_EQ(n, msgs_per_round);
        leash_release(pp.in);
        leash_release(pp.out);
        leash_release(pp.done);
        /* Producers whose values any of the threads may receive. */
        for (int k = 0; k < 4; k++)
            CU_CHECK(leash_go(producer, shared_ch, shared_ch) > 0);
        for (int k = 0; k < 4; k++) {
            long x = 0;
            CU_CHECK_EQ(leash_recv(shared_ch, &x), 0);
            CU_CHECK(x > 0);
            atomic_fetch_add(&shared_received, 1);
        }
    }
    return (void *)(intptr_t)(sum % 1000000007);
}

Test(sched, foreign_threads_spawn_and_exchange, .timeout = 300) {
    rounds_per_thread = scale(200, 60, 20);
    msgs_per_round = scale(100, 50, 20);
    shared_ch = leash_chan_make(sizeof(long), 0);
    pthread_t th[NTHREADS];
    for (long t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, thread_main, (void *)(intptr_t)t);
    for (long t = 0; t < NTHREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        long want = 0;
        for (long rr = 0; rr < rounds_per_thread; rr++)
            for (long i = 0; i < msgs_per_round; i++)
                want += 3 * (t * 1000000 + rr * 1000 + i) + 1;
        cr_assert_eq((long)(intptr_t)r, want % 1000000007, "thread %ld", t);
    }
    cr_assert_eq(atomic_load(&shared_received),
                 NTHREADS * rounds_per_thread * 4);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    leash_release(shared_ch);
    CU_ASSERT_CLEAN();
}

/* Threads and coroutines blocking on each other in both directions over
 * one unbuffered channel: plain threads park on an OS wait. */
static void ping_threads(void *p) {
    leash_chan *c = p;
    for (long i = 0; i < 2000; i++)
        CU_CHECK_EQ(leash_send(c, &i), 0);
}

static void *drain_thread(void *p) {
    leash_chan *c = p;
    long v, n = 0;
    while (leash_recv(c, &v) == 0)
        n++;
    return (void *)(intptr_t)n;
}

Test(sched, foreign_threads_block_on_coroutines, .timeout = 300) {
    leash_chan *c = leash_chan_make(sizeof(long), 0);
    long nco = scale(16, 8, 4);
    for (long i = 0; i < nco; i++)
        cr_assert_gt(leash_go(ping_threads, c, c), 0);
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, drain_thread, c);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 120000));
    leash_close(c);
    long total = 0;
    for (int t = 0; t < NTHREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        total += (long)(intptr_t)r;
    }
    cr_assert_eq(total, nco * 2000);
    leash_release(c);
    CU_ASSERT_CLEAN();
}

/* ---------------------------------------------------- deep recursion */

#define FRAME 256

static __attribute__((noinline)) uintptr_t recurse(int depth, uintptr_t *low) {
    volatile char buf[FRAME];
    for (int i = 0; i < FRAME; i += 64)
        buf[i] = (char)depth;
    if ((uintptr_t)buf < *low)
        *low = (uintptr_t)buf;
    uintptr_t r = depth > 0 ? recurse(depth - 1, low) : 0;
    return r + (uintptr_t)buf[depth % FRAME]; /* no tail call */
}

static void deep(void *p) {
    leash_chan *done = p;
    uintptr_t top = (uintptr_t)__builtin_frame_address(0), low = top;
    (void)recurse(32 * 1024 / FRAME, &low); /* at least 32 KiB of frames */
    long used = (long)(top - low);
    leash_yield(); /* switch with a deep high-water mark: canary intact */
    CU_CHECK_EQ(leash_send(done, &used), 0);
}

static int deep_main(void *arg) {
    (void)arg;
    enum { N = 200 };
    leash_chan *done = leash_chan_make(sizeof(long), N);
    for (int i = 0; i < N; i++)
        CU_CHECK(leash_go(deep, done, done) > 0);
    for (int i = 0; i < N; i++) {
        long used = 0;
        CU_CHECK_EQ(leash_recv(done, &used), 0);
        CU_CHECK(used >= 32 * 1024);
    }
    /* And on main (coroutine 1) too. */
    uintptr_t top = (uintptr_t)__builtin_frame_address(0), low = top;
    (void)recurse(32 * 1024 / FRAME, &low);
    CU_CHECK(top - low >= 32 * 1024);
    leash_release(done);
    return 0;
}

Test(sched, deep_recursion_default_stack, .timeout = 120) {
    cr_assert_eq(leash_run(deep_main, NULL), 0);
    CU_ASSERT_CLEAN();
}
