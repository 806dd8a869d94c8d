/* SPDX-License-Identifier: MIT */
/*
 * stress_liveness.c — every runnable coroutine runs, whatever the others
 * do: ping-pong pairs on every worker (which hand the worker back and
 * forth through `runnext`), spinning yielders, timers firing on saturated
 * workers, time arithmetic at the edges of int64_t, and fork() from a
 * busy program.
 *
 * Each scenario is bounded by its own clock: the busy coroutines stop by
 * themselves after a few seconds, so a starved coroutine shows as a wait
 * far over the bound rather than as a hang. The bounds are generous (CI
 * machines are loaded; the sanitizers slow everything): the documented
 * fairness bound (docs/DESIGN-NOTES.md, "Fairness") is ~10 ms.
 *
 * Also run under ASan+UBSan and TSan.
 *
 * LEASH_TEST_TIMEOUT 240
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_util.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#endif

/* How long a readied coroutine may wait before a test calls it starved.
 * The runtime's own bound is ~10 ms plus the run time of what was queued
 * first; this allows for a loaded machine. Under TSan a switch and an
 * exit cost ten times as much: 1,000 timers at 1 proc came to 1,004 ms
 * once in CI, beside stress_observer. A starved coroutine waits until
 * BUSY_LIMIT_MS, above either. */
#if defined(__SANITIZE_THREAD__)
#define STARVED_MS 3000
#else
#define STARVED_MS 1000
#endif

/* The busy coroutines give up after this long whatever happens, so a
 * starved main still resumes and the test fails instead of hanging. */
#define BUSY_LIMIT_MS 8000

static atomic_bool stop_busy;
static atomic_long busy_rounds;

/* ------------------------------------------------------ ping-pong pairs */

typedef struct {
    leash_chan *ping, *pong;
    bool buffered;
} pair;

static bool busy_expired(int64_t start) {
    return atomic_load_explicit(&stop_busy, memory_order_relaxed) ||
           leash_now() - start > BUSY_LIMIT_MS * CU_MS;
}

static void pinger(void *p) {
    pair *pr = p;
    int64_t start = leash_now();
    long v = 0;
    while (!busy_expired(start)) {
        CU_CHECK_EQ(leash_send(pr->ping, &v), 0);
        CU_CHECK_EQ(leash_recv(pr->pong, &v), 0);
        v++;
        atomic_fetch_add_explicit(&busy_rounds, 1, memory_order_relaxed);
    }
    v = -1;
    leash_send(pr->ping, &v);
}

static void ponger(void *p) {
    pair *pr = p;
    long v;
    for (;;) {
        CU_CHECK_EQ(leash_recv(pr->ping, &v), 0);
        if (v < 0)
            break;
        v++;
        CU_CHECK_EQ(leash_send(pr->pong, &v), 0);
    }
}

/* Starts n ping-pong pairs (channels of capacity cap) that run until
 * stop_busy or BUSY_LIMIT_MS. The pair state is static: the pairs outlive
 * the main that starts them. */
static pair pairs[8];

static void pairs_start(int n, size_t cap) {
    atomic_store(&stop_busy, false);
    atomic_store(&busy_rounds, 0);
    for (int i = 0; i < n; i++) {
        pairs[i].ping = leash_chan_make(sizeof(long), cap);
        pairs[i].pong = leash_chan_make(sizeof(long), cap);
        CU_CHECK(pairs[i].ping && pairs[i].pong);
        CU_CHECK(leash_go(pinger, &pairs[i], pairs[i].ping, pairs[i].pong) > 0);
        CU_CHECK(leash_go(ponger, &pairs[i], pairs[i].ping, pairs[i].pong) > 0);
    }
}

static void pairs_stop(int n) {
    atomic_store(&stop_busy, true);
    for (int i = 0; i < n; i++) {
        leash_release(pairs[i].ping);
        leash_release(pairs[i].pong);
    }
}

enum wait_kind { W_SLEEP, W_YIELD, W_AFTER };

typedef struct {
    int npairs;
    bool buffered;
    enum wait_kind wait;
} starve_cfg;

/* Longest time main waited for one of its 20 short waits, beyond the
 * wait itself. */
static int64_t worst_extra_ns;

static int starve_main(void *arg) {
    const starve_cfg *cfg = arg;
    pairs_start(cfg->npairs, cfg->buffered ? 1 : 0);
    /* Every wait counts, from the first: the pairs start at once. */
    worst_extra_ns = 0;
    for (int i = 0; i < 20; i++) {
        int64_t t0 = leash_now(), want = 0;
        switch (cfg->wait) {
        case W_SLEEP:
            want = 2 * CU_MS;
            leash_sleep(want);
            break;
        case W_YIELD:
            leash_yield();
            break;
        case W_AFTER: {
            want = 2 * CU_MS;
            leash_chan *t = leash_after(want);
            int64_t at;
            CU_CHECK_EQ(leash_recv(t, &at), 0);
            leash_release(t);
            break;
        }
        }
        int64_t extra = leash_now() - t0 - want;
        if (extra > worst_extra_ns)
            worst_extra_ns = extra;
    }
    CU_CHECK(atomic_load(&busy_rounds) > 0); /* the pairs did run */
    pairs_stop(cfg->npairs);
    return 0;
}

static void run_starve(const char *procs, int npairs, bool buffered,
                       enum wait_kind wait) {
    setenv("LEASH_PROCS", procs, 1);
    starve_cfg cfg = {npairs, buffered, wait};
    cr_assert_eq(leash_run(starve_main, &cfg), 0);
    CU_ASSERT_CLEAN();
    if (!CU_WAIT_UNTIL(leash_num_coroutines() == 0, 20000)) {
        leash_dump(stderr, LEASH_DUMP_STACKS);
        cr_assert_fail("the pairs did not end");
    }
    fprintf(stderr, "%s procs, %d pair(s): worst extra wait %.2f ms\n", procs,
            npairs, worst_extra_ns / 1e6);
    cr_expect(worst_extra_ns < STARVED_MS * CU_MS,
              "main waited %.1f ms too long behind %d ping-pong pair(s)",
              worst_extra_ns / 1e6, npairs);
}

Test(starvation, one_pair_one_worker_sleeper) {
    run_starve("1", 1, false, W_SLEEP);
}
Test(starvation, one_pair_one_worker_yielder) {
    run_starve("1", 1, false, W_YIELD);
}
Test(starvation, buffered_pair_one_worker_after) {
    run_starve("1", 1, true, W_AFTER);
}
Test(starvation, two_pairs_two_workers_sleeper) {
    run_starve("2", 2, false, W_SLEEP);
}
Test(starvation, four_pairs_four_workers_sleeper) {
    run_starve("4", 4, false, W_SLEEP);
}
Test(starvation, four_pairs_four_workers_buffered_yielder) {
    run_starve("4", 4, true, W_YIELD);
}

/* ------------------------------------------- a spinning yielder producer */

static void spin_yielder(void *p) {
    (void)p;
    int64_t start = leash_now();
    while (!busy_expired(start)) {
        atomic_fetch_add_explicit(&busy_rounds, 1, memory_order_relaxed);
        leash_yield();
    }
}

static int yielders_main(void *arg) {
    int n = *(int *)arg;
    atomic_store(&stop_busy, false);
    atomic_store(&busy_rounds, 0);
    for (int i = 0; i < n; i++)
        CU_CHECK(leash_go(spin_yielder, NULL) > 0);
    worst_extra_ns = 0;
    for (int i = 0; i < 20; i++) {
        int64_t t0 = leash_now();
        leash_sleep(2 * CU_MS);
        int64_t extra = leash_now() - t0 - 2 * CU_MS;
        if (extra > worst_extra_ns)
            worst_extra_ns = extra;
    }
    atomic_store(&stop_busy, true);
    return 0;
}

Test(starvation, spinning_yielders_do_not_starve_a_sleeper) {
    setenv("LEASH_PROCS", "2", 1);
    int n = 8;
    cr_assert_eq(leash_run(yielders_main, &n), 0);
    CU_ASSERT_CLEAN();
    fprintf(stderr, "yielders: worst extra wait %.2f ms\n", worst_extra_ns / 1e6);
    cr_expect(worst_extra_ns < STARVED_MS * CU_MS,
              "main waited %.1f ms too long behind spinning yielders",
              worst_extra_ns / 1e6);
}

/* -------------------------------------------- a spawn loop at one worker */

/* A loop that only spawns never blocks; on one worker, before leash_go
 * gave way at the end of a slice, none of what it started ran until it
 * ended: 100,000 sleepers of 1 ms were all alive at once (411 MB of
 * stacks where Go, preempting the loop, kept 47). Now they run, sleep
 * and exit while the loop goes on, and their stacks are reused. */
static atomic_long loop_exited;

static void short_sleeper(void *p) {
    (void)p;
    leash_sleep(CU_MS);
    atomic_fetch_add(&loop_exited, 1);
}

static int spawn_loop_main(void *arg) {
    (void)arg;
    atomic_store(&loop_exited, 0);
    long spawned = 0;
    int64_t start = leash_now();
    /* Spawns until one of them has exited: within a few slices with the
     * yield (on a slow build too, where a spawn takes milliseconds);
     * never without it, so the loop ends at its bounds (10 s, 200,000
     * stacks) and the check fails. */
    while (atomic_load(&loop_exited) == 0 &&
           leash_now() - start < 10000 * CU_MS && spawned < 200000) {
        CU_CHECK(leash_go(short_sleeper, NULL) > 0);
        spawned++;
    }
    long exited_meanwhile = atomic_load(&loop_exited);
    fprintf(stderr, "spawn loop: %ld spawned in %.0f ms, %ld exited "
            "meanwhile\n", spawned, (leash_now() - start) / 1e6,
            exited_meanwhile);
    CU_CHECK(exited_meanwhile > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&loop_exited) == spawned, 60000));
    return 0;
}

Test(starvation, spawn_loop_gives_way_at_one_worker, .timeout = 120) {
    setenv("LEASH_PROCS", "1", 1);
    cr_assert_eq(leash_run(spawn_loop_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* ----------------------------------- 1,000 timers under saturated workers */

/* 300 under TSan, where each coroutine is a fiber of fresh memory. */
#if defined(__SANITIZE_THREAD__)
enum { NTIMERS = 300 };
#else
enum { NTIMERS = 1000 };
#endif
static _Atomic int64_t worst_late_ns;
static atomic_int timers_fired;

static void late_sleeper(void *p) {
    int64_t d = (int64_t)(intptr_t)p * CU_MS;
    int64_t t0 = leash_now();
    leash_sleep(d);
    int64_t late = leash_now() - t0 - d;
    int64_t cur = atomic_load(&worst_late_ns);
    while (late > cur && !atomic_compare_exchange_weak(&worst_late_ns, &cur, late))
        ;
    atomic_fetch_add(&timers_fired, 1);
}

static int timers_main(void *arg) {
    int nw = leash_num_workers();
    (void)arg;
    pairs_start(nw, 0);
    atomic_store(&worst_late_ns, 0);
    atomic_store(&timers_fired, 0);
    for (int i = 0; i < NTIMERS; i++)
        CU_CHECK(leash_go(late_sleeper, (void *)(intptr_t)(1 + i % 50)) > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&timers_fired) == NTIMERS, 20000));
    pairs_stop(nw);
    return 0;
}

static void run_timers(const char *procs) {
    setenv("LEASH_PROCS", procs, 1);
    cr_assert_eq(leash_run(timers_main, NULL), 0);
    CU_ASSERT_CLEAN();
    fprintf(stderr, "%s procs: latest timer %.2f ms late\n", procs,
            atomic_load(&worst_late_ns) / 1e6);
    cr_expect(atomic_load(&worst_late_ns) < STARVED_MS * CU_MS,
              "a timer fired %.1f ms late under saturated workers",
              atomic_load(&worst_late_ns) / 1e6);
}

Test(starvation, timers_fire_on_saturated_workers_1) { run_timers("1"); }
Test(starvation, timers_fire_on_saturated_workers_2) { run_timers("2"); }
Test(starvation, timers_fire_on_saturated_workers_4) { run_timers("4"); }

/* ---------------------------------------------------------------- fork */

/* What a child forked from a busy program may and may not do: plain code
 * works, leash refuses at once (never a hang), exit() is silent. Exit
 * status: 0, or the number of the first check that failed. */
static leash_chan *fork_chan;

static void noop(void *p) { (void)p; }

static _Noreturn void child_checks(void) {
    int code = 0;
    long v = 1;
    FILE *null = fopen("/dev/null", "w");
    if (leash_send(fork_chan, &v) != LEASH_EINVAL)
        code = code ? code : 11;
    if (leash_try_recv(fork_chan, &v) != LEASH_EINVAL)
        code = code ? code : 12;
    if (leash_go(noop, NULL) != LEASH_EINVAL)
        code = code ? code : 13;
    if (leash_chan_make(sizeof(long), 1) != NULL)
        code = code ? code : 14;
    if (leash_num_coroutines() != 0)
        code = code ? code : 15;
    int64_t t0 = leash_now();
    leash_sleep(CU_MS);
    if (leash_now() - t0 < CU_MS)
        code = code ? code : 16;
    if (null && leash_dump(null, 1) >= 0)
        code = code ? code : 17;
    if (leash_run(NULL, NULL) != LEASH_EINVAL)
        code = code ? code : 18;
    exit(code); /* atexit handlers (the leak check) must not hang */
}

/* Waits for pid at most 10 s (never a hang in the parent either): its
 * exit status, or -1 if it had to be killed. */
static int reap(pid_t pid) {
    int st;
    for (int i = 0; i < 10000; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        leash_sleep(CU_MS);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* Forks 20 times (5 under TSan, where a fork of a program with its
 * shadow memory takes a second); each child runs child_checks. From a
 * coroutine or, through pthread_create, from a plain thread. */
#if defined(__SANITIZE_THREAD__)
#define NFORKS 5
#else
#define NFORKS 20
#endif
static void *fork_twenty(void *p) {
    (void)p;
    for (int i = 0; i < NFORKS; i++) {
        pid_t pid = fork();
        CU_CHECK(pid >= 0);
        if (pid == 0)
            child_checks();
        int st = reap(pid);
        if (st != 0)
            cu_fail(__FILE__, __LINE__, "fork #%d: child %s %d", i,
                    st < 0 ? "hung" : "exited with", st);
    }
    return NULL;
}

/* Two ping-pong pairs keep both workers busy while main forks, itself
 * (arg NULL) or from a plain thread. */
static int fork_main(void *from_thread) {
    fork_chan = leash_chan_make(sizeof(long), 0);
    pairs_start(2, 0);
    if (from_thread) {
        pthread_t t;
        CU_CHECK_EQ(pthread_create(&t, NULL, fork_twenty, NULL), 0);
        pthread_join(t, NULL);
    } else {
        fork_twenty(NULL);
    }
    pairs_stop(2);
    leash_release(fork_chan);
    return 0;
}

Test(fork, from_a_busy_coroutine_twenty_times, .timeout = 120) {
    setenv("LEASH_PROCS", "2", 1);
    setenv("LEASH_LEAKCHECK", "1", 1);
    cr_assert_eq(leash_run(fork_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

Test(fork, from_a_plain_thread_while_busy, .timeout = 120) {
    setenv("LEASH_PROCS", "2", 1);
    cr_assert_eq(leash_run(fork_main, "thread"), 0);
    CU_ASSERT_CLEAN();
}

/* The forking coroutine returns in the child: the child's last thread
 * ends, and so does the child, with status 0. */
static void fork_and_return(void *p) {
    atomic_int *out = p;
    atomic_store(out, fork());
}

static int return_main(void *arg) {
    (void)arg;
    atomic_int pid = -1;
    CU_CHECK(leash_go(fork_and_return, &pid) > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&pid) != -1, 5000));
    if (atomic_load(&pid) > 0)
        CU_CHECK_EQ(reap(atomic_load(&pid)), 0);
    return 0;
}

Test(fork, child_whose_coroutine_returns_exits, .timeout = 60) {
    setenv("LEASH_PROCS", "2", 1);
    cr_assert_eq(leash_run(return_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* Forked before the runtime started: the child may start its own. */
static int child_run_main(void *arg) {
    (void)arg;
    leash_chan *c = leash_chan_make(sizeof(long), 1);
    long v = 7;
    return c && leash_send(c, &v) == 0 && leash_recv(c, &v) == 0 && v == 7
               ? (leash_release(c), 0) : 1;
}

Test(fork, before_the_runtime_starts_the_child_may_run_it, .timeout = 60) {
#if defined(__SANITIZE_THREAD__)
    /* TSan's own thread makes every process multi-threaded, and TSan
     * refuses threads started in the child of such a fork. */
    cr_skip_test("TSan cannot start threads after a fork");
#endif
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(leash_run(child_run_main, NULL));
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
}

/* -------------------------------------------- the scheduling latency gauge */

#include "internal.h" /* S.sched_lat_max: what /metrics and leash stats show */

static void waits_for_the_hog(void *p) { (void)p; }

static int hog_main(void *arg) {
    (void)arg;
    CU_CHECK(leash_go(waits_for_the_hog, NULL) > 0); /* runnable, not run */
    int64_t t0 = leash_now();
    /* Computes without yielding. 200 ms, where the gauge must show 40:
     * the wait is measured on the coarse clock that sysmon and the
     * scheduler refresh, which lagged by 44 ms once on a loaded machine
     * (an 80 ms hog read as 36 ms under ASan, two tests at once). */
    while (leash_now() - t0 < 200 * CU_MS)
        ;
    leash_yield();
    return 0;
}

Test(latency, gauge_shows_a_coroutine_kept_waiting, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    cr_assert_eq(leash_run(hog_main, NULL), 0);
    CU_ASSERT_CLEAN();
    /* sysmon publishes within a tick or two. */
    cr_assert(CU_WAIT_UNTIL(atomic_load(&S.sched_lat_max) >= 40 * CU_MS, 2000),
              "latency gauge %.1f ms after a 200 ms wait",
              atomic_load(&S.sched_lat_max) / 1e6);
}

/* ---------------------------------------------------- when memory ends */

#include <sys/resource.h>

#if !defined(SANITIZED)
static void sleep_long(void *p) {
    (void)p;
    leash_sleep(3600 * 1000 * CU_MS);
}

static int until_enomem_main(void *arg) {
    long *n = arg;
    for (;; (*n)++) {
        int64_t id = leash_go(sleep_long, NULL);
        if (id < 0)
            return (int)id;
    }
}
#endif

/* Spawning past the memory there is: LEASH_ENOMEM, not a crash. The
 * address space is what ends here (RLIMIT_AS); past the RAM, stack.c
 * refuses new stack chunks the same way. Not under the sanitizers, whose
 * shadow memory needs more address space than the limit leaves. */
Test(memory, spawning_until_memory_ends_gives_enomem, .timeout = 120) {
#if defined(SANITIZED)
    cr_skip_test("RLIMIT_AS and sanitizer shadow memory do not mix");
#else
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct rlimit rl = {3ull << 30, 3ull << 30};
        setrlimit(RLIMIT_AS, &rl);
        setenv("LEASH_PROCS", "2", 1);
        long n = 0;
        int rc = leash_run(until_enomem_main, &n);
        fprintf(stderr, "%ld coroutines, then %s\n", n, leash_strerror(rc));
        _exit(rc == LEASH_ENOMEM && n > 1000 ? 0 : 1);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "child status %d (a signal: %d)", st, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
#endif
}

/* ------------------------------------------- a crowd of parked sleepers */

#if defined(__SANITIZE_THREAD__)
/* TSan keeps a fiber each (8,128 at most), and a fiber is a few hundred
 * KiB of fresh memory to zero: 4,000 took 35-40 s on a VM whose fresh
 * pages cost 15 us. The stall this guards against is O(n) per sysmon
 * tick, which the plain (200k) and ASan (20k) builds show; TSan is here
 * for the races. */
enum { NSLEEPERS = 1000 };
#elif defined(__SANITIZE_ADDRESS__)
enum { NSLEEPERS = 20000 };
#else
enum { NSLEEPERS = 200000 };
#endif

static void sleep_a_minute(void *p) {
    (void)p;
    leash_sleep(60000 * CU_MS);
}

/* The shape that stalled for minutes: many sleepers spawned while main
 * polls the count with 1 ms sleeps (sysmon's spawn-site walks held the
 * registry; stacks faulted in huge pages). It must finish promptly; the
 * bound is only against a stall (speed is in make bench). */
static int sleepers_main(void *arg) {
    int64_t *took = arg;
    int64_t t0 = leash_now();
    for (int i = 0; i < NSLEEPERS; i++)
        if (leash_go(sleep_a_minute, NULL) <= 0) {
            cu_fail(__FILE__, __LINE__, "leash_go #%d failed", i);
            return 1;
        }
    while (leash_num_coroutines() < NSLEEPERS + 1 &&
           leash_now() - t0 < 60000 * CU_MS)
        leash_sleep(CU_MS);
    *took = leash_now() - t0;
    return 0;
}

static void run_sleepers(const char *procs) {
    setenv("LEASH_PROCS", procs, 1);
    int64_t took = 0;
    cr_assert_eq(leash_run(sleepers_main, &took), 0);
    CU_ASSERT_CLEAN();
    fprintf(stderr, "%s procs: %d sleepers parked in %.2f s\n", procs,
            NSLEEPERS, took / 1e9);
    cr_expect(took < 30000 * CU_MS, "%d sleepers took %.1f s", NSLEEPERS,
              took / 1e9);
}

Test(crowd, sleepers_while_main_polls_1, .timeout = 90) { run_sleepers("1"); }
Test(crowd, sleepers_while_main_polls_2, .timeout = 90) { run_sleepers("2"); }
