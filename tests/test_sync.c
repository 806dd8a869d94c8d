/* SPDX-License-Identifier: MIT */
/*
 * test_sync.c — leash_waitgroup and leash_mutex: plain values that park
 * coroutines (and block plain threads on an OS wait).
 *
 * Assertions on coroutines and other threads go through CU_CHECK*; the
 * test thread turns them into a verdict with CU_ASSERT_CLEAN().
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>

#include "core_util.h"

/* ============================================================ wait group */

static leash_waitgroup static_wg = LEASH_WAITGROUP_INIT;
static leash_mutex static_mu = LEASH_MUTEX_INIT;
struct holder {
    int tag;
    leash_waitgroup wg;
    leash_mutex mu;
};
static struct holder static_holder = {7, LEASH_WAITGROUP_INIT, LEASH_MUTEX_INIT};

static int wg_zero_main(void *arg) {
    (void)arg;
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    int64_t t0 = leash_now();
    CU_CHECK_EQ(leash_waitgroup_wait(&wg), 0);
    CU_CHECK_EQ(leash_waitgroup_wait(&static_wg), 0);
    CU_CHECK_EQ(leash_waitgroup_wait(&static_holder.wg), 0);
    /* Up and back down to zero without a waiter, then wait. */
    CU_CHECK_EQ(leash_waitgroup_add(&wg, 3), 0);
    CU_CHECK_EQ(leash_waitgroup_add(&wg, -2), 0);
    CU_CHECK_EQ(leash_waitgroup_done(&wg), 0);
    CU_CHECK_EQ(leash_waitgroup_wait(&wg), 0);
    CU_CHECK_EQ(leash_waitgroup_add(&wg, 0), 0);
    CU_CHECK_EQ(leash_waitgroup_wait(&wg), 0);
    CU_CHECK(leash_now() - t0 < 2000 * CU_MS);
    return 0;
}

Test(waitgroup, wait_at_zero_returns_at_once, .timeout = 30) {
    cr_assert_eq(cu_run(wg_zero_main, NULL), 0);
    /* And from the plain test thread. */
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    cr_assert_eq(leash_waitgroup_wait(&wg), 0);
    cr_assert_eq(leash_waitgroup_wait(&static_wg), 0);
}

static int wg_errors_main(void *arg) {
    (void)arg;
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    /* Negative counter: Go panics, leash says EINVAL and changes nothing. */
    CU_CHECK_EQ(leash_waitgroup_add(&wg, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_waitgroup_done(&wg), LEASH_EINVAL);
    CU_CHECK_EQ(leash_waitgroup_wait(&wg), 0); /* still zero */
    CU_CHECK_EQ(leash_waitgroup_add(&wg, 3), 0);
    CU_CHECK_EQ(leash_waitgroup_add(&wg, -4), LEASH_EINVAL);
    CU_CHECK_EQ(wg.count_, 3);
    CU_CHECK_EQ(leash_waitgroup_add(&wg, INT64_MIN), LEASH_EINVAL);
    CU_CHECK_EQ(wg.count_, 3);
    /* Overflow is refused, not wrapped into a negative count. */
    CU_CHECK_EQ(leash_waitgroup_add(&wg, INT64_MAX), LEASH_EINVAL);
    CU_CHECK_EQ(wg.count_, 3);
    CU_CHECK_EQ(leash_waitgroup_add(&wg, -3), 0);
    CU_CHECK_EQ(leash_waitgroup_wait(&wg), 0);
    /* NULL. */
    CU_CHECK_EQ(leash_waitgroup_add(NULL, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_waitgroup_done(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_waitgroup_wait(NULL), LEASH_EINVAL);
    return 0;
}

Test(waitgroup, negative_and_null_are_einval, .timeout = 30) {
    cr_assert_eq(cu_run(wg_errors_main, NULL), 0);
}

/* Many coroutines add/done, several coroutines wait. */
#define WG_WORKERS 200
#define WG_WAITERS 8
static atomic_int wg_ran, wg_waiters_woke, wg_bad_wake;

static void wg_worker(void *p) {
    leash_waitgroup *wg = p;
    for (int i = 0; i < 3; i++)
        leash_yield();
    atomic_fetch_add(&wg_ran, 1);
    CU_CHECK_EQ(leash_waitgroup_done(wg), 0);
}

typedef struct {
    leash_waitgroup *wg, *finished;
} wg_pair;

static void wg_waiter(void *p) {
    wg_pair *pp = p;
    CU_CHECK_EQ(leash_waitgroup_wait(pp->wg), 0);
    if (atomic_load(&wg_ran) != WG_WORKERS)
        atomic_fetch_add(&wg_bad_wake, 1);
    atomic_fetch_add(&wg_waiters_woke, 1);
    leash_waitgroup_done(pp->finished);
}

static void wg_spawner(void *p) {
    leash_waitgroup *wg = p;
    /* Adds from another coroutine, before it spawns (Go's rule). */
    for (int i = 0; i < WG_WORKERS / 2; i++) {
        CU_CHECK_EQ(leash_waitgroup_add(wg, 1), 0);
        CU_CHECK(leash_go(wg_worker, wg) > 0);
    }
    leash_waitgroup_done(wg); /* the spawner's own count */
}

static int wg_many_main(void *arg) {
    (void)arg;
    leash_waitgroup wg = LEASH_WAITGROUP_INIT, finished = LEASH_WAITGROUP_INIT;
    wg_pair pp = {&wg, &finished};
    CU_CHECK_EQ(leash_waitgroup_add(&wg, WG_WORKERS / 2 + 1), 0);
    for (int i = 0; i < WG_WORKERS / 2; i++)
        CU_CHECK(leash_go(wg_worker, &wg) > 0);
    CU_CHECK(leash_go(wg_spawner, &wg) > 0);
    leash_waitgroup_add(&finished, WG_WAITERS);
    for (int i = 0; i < WG_WAITERS; i++)
        CU_CHECK(leash_go(wg_waiter, &pp) > 0);
    CU_CHECK_EQ(leash_waitgroup_wait(&wg), 0);
    CU_CHECK_EQ(atomic_load(&wg_ran), WG_WORKERS);
    CU_CHECK_EQ(leash_waitgroup_wait(&finished), 0);
    CU_CHECK_EQ(atomic_load(&wg_waiters_woke), WG_WAITERS);
    CU_CHECK_EQ(atomic_load(&wg_bad_wake), 0);
    /* Reusable once back at zero. */
    atomic_store(&wg_ran, 0);
    CU_CHECK_EQ(leash_waitgroup_add(&wg, WG_WORKERS), 0);
    for (int i = 0; i < WG_WORKERS; i++)
        CU_CHECK(leash_go(wg_worker, &wg) > 0);
    CU_CHECK_EQ(leash_waitgroup_wait(&wg), 0);
    CU_CHECK_EQ(atomic_load(&wg_ran), WG_WORKERS);
    return 0;
}

Test(waitgroup, many_adders_workers_waiters, .timeout = 30) {
    cr_assert_eq(cu_run(wg_many_main, NULL), 0);
}

/* The classic: the wait group lives on the waiter's stack; the workers'
 * last done races with the waiter returning and reusing that stack. The
 * frame is overwritten right after wait (and, in a second variant, the
 * wait group is heap memory freed right after wait, which ASan checks). */
static void wg_stack_worker(void *p) {
    leash_waitgroup *wg = p;
    if ((uintptr_t)p & 64)
        leash_yield();
    leash_waitgroup_done(wg);
}

static __attribute__((noinline)) void wg_stack_round(int n) {
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&wg, n);
    for (int i = 0; i < n; i++)
        CU_CHECK(leash_go(wg_stack_worker, &wg) > 0);
    CU_CHECK_EQ(leash_waitgroup_wait(&wg), 0);
}

static __attribute__((noinline)) void scribble(unsigned char v) {
    volatile unsigned char buf[512];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = v;
    leash_yield(); /* late writers get a chance to run here */
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != v) {
            CU_CHECK(buf[i] == v); /* something wrote into a dead frame */
            break;
        }
}

static int wg_on_stack_main(void *arg) {
    (void)arg;
    int rounds = cu_sanitized() ? 500 : 3000;
    for (int r = 0; r < rounds; r++) {
        wg_stack_round(1 + r % 8);
        scribble((unsigned char)(r | 1));
    }
    for (int r = 0; r < rounds; r++) {
        leash_waitgroup *wg = malloc(sizeof *wg);
        *wg = (leash_waitgroup)LEASH_WAITGROUP_INIT;
        int n = 1 + r % 4;
        leash_waitgroup_add(wg, n);
        for (int i = 0; i < n; i++)
            CU_CHECK(leash_go(wg_stack_worker, wg) > 0);
        CU_CHECK_EQ(leash_waitgroup_wait(wg), 0);
        memset(wg, 0xee, sizeof *wg);
        free(wg);
    }
    return 0;
}

Test(waitgroup, on_waiters_stack, .timeout = 60) {
    cr_assert_eq(cu_run(wg_on_stack_main, NULL), 0);
}

/* A plain pthread waits (on its own stack) for coroutines. */
typedef struct {
    leash_waitgroup wg;
    atomic_int ran;
} thread_round;

static void thread_wg_worker(void *p) {
    thread_round *r = p;
    leash_sleep(2 * CU_MS);
    atomic_fetch_add(&r->ran, 1);
    leash_waitgroup_done(&r->wg);
}

static void *thread_wg_waiter(void *p) {
    (void)p;
    for (int round = 0; round < 50; round++) {
        thread_round r = {LEASH_WAITGROUP_INIT, 0};
        CU_CHECK_EQ(leash_waitgroup_add(&r.wg, 10), 0);
        for (int i = 0; i < 10; i++)
            CU_CHECK(leash_go(thread_wg_worker, &r) > 0);
        CU_CHECK_EQ(leash_waitgroup_wait(&r.wg), 0);
        CU_CHECK_EQ(atomic_load(&r.ran), 10);
    }
    return NULL;
}

Test(waitgroup, wait_from_plain_thread, .timeout = 30) {
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, thread_wg_waiter, NULL), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT_CLEAN();
}

/* Plain threads call done while a coroutine waits. */
static void *thread_done(void *p) {
    usleep(2000);
    leash_waitgroup_done(p);
    return NULL;
}

static int wg_thread_done_main(void *arg) {
    (void)arg;
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    pthread_t th[4];
    leash_waitgroup_add(&wg, 4);
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, thread_done, &wg);
    CU_CHECK_EQ(leash_waitgroup_wait(&wg), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    return 0;
}

Test(waitgroup, done_from_plain_threads, .timeout = 30) {
    cr_assert_eq(cu_run(wg_thread_done_main, NULL), 0);
}

/* ================================================================ mutex */

static int mutex_basic_main(void *arg) {
    (void)arg;
    leash_mutex mu = LEASH_MUTEX_INIT;
    CU_CHECK_EQ(leash_mutex_unlock(&mu), LEASH_EINVAL); /* not locked */
    CU_CHECK_EQ(leash_mutex_lock(&mu), 0);
    CU_CHECK_EQ(leash_mutex_trylock(&mu), LEASH_EAGAIN);
    CU_CHECK_EQ(leash_mutex_unlock(&mu), 0);
    CU_CHECK_EQ(leash_mutex_unlock(&mu), LEASH_EINVAL); /* twice */
    CU_CHECK_EQ(leash_mutex_trylock(&mu), 0);
    CU_CHECK_EQ(leash_mutex_trylock(&mu), LEASH_EAGAIN);
    CU_CHECK_EQ(leash_mutex_unlock(&mu), 0);
    CU_CHECK_EQ(leash_mutex_lock(&mu), 0);
    CU_CHECK_EQ(leash_mutex_unlock(&mu), 0);
    /* The static initialisers. */
    CU_CHECK_EQ(leash_mutex_trylock(&static_mu), 0);
    CU_CHECK_EQ(leash_mutex_trylock(&static_mu), LEASH_EAGAIN);
    CU_CHECK_EQ(leash_mutex_unlock(&static_mu), 0);
    CU_CHECK_EQ(leash_mutex_lock(&static_holder.mu), 0);
    CU_CHECK_EQ(leash_mutex_unlock(&static_holder.mu), 0);
    CU_CHECK_EQ(static_holder.tag, 7);
    /* NULL. */
    CU_CHECK_EQ(leash_mutex_lock(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_mutex_trylock(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_mutex_unlock(NULL), LEASH_EINVAL);
    return 0;
}

Test(mutex, lock_unlock_trylock, .timeout = 30) {
    cr_assert_eq(cu_run(mutex_basic_main, NULL), 0);
    /* From the plain test thread too. */
    leash_mutex mu = LEASH_MUTEX_INIT;
    cr_assert_eq(leash_mutex_lock(&mu), 0);
    cr_assert_eq(leash_mutex_trylock(&mu), LEASH_EAGAIN);
    cr_assert_eq(leash_mutex_unlock(&mu), 0);
    cr_assert_eq(leash_mutex_unlock(&mu), LEASH_EINVAL);
}

/* A coroutine holds the mutex; another's trylock fails, its lock parks
 * until the holder unlocks. Unlock by another coroutine than the locker is
 * allowed (as in Go). */
static leash_mutex hand_mu = LEASH_MUTEX_INIT;
static atomic_int hand_state;

static void hand_locker(void *p) {
    (void)p;
    CU_CHECK_EQ(leash_mutex_trylock(&hand_mu), LEASH_EAGAIN);
    atomic_store(&hand_state, 1);
    CU_CHECK_EQ(leash_mutex_lock(&hand_mu), 0);
    atomic_store(&hand_state, 2);
    CU_CHECK_EQ(leash_mutex_unlock(&hand_mu), 0);
}

static int mutex_block_main(void *arg) {
    (void)arg;
    CU_CHECK_EQ(leash_mutex_lock(&hand_mu), 0);
    CU_CHECK(leash_go(hand_locker, NULL) > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&hand_state) == 1, 5000));
    leash_sleep(10 * CU_MS);
    CU_CHECK_EQ(atomic_load(&hand_state), 1); /* still blocked */
    CU_CHECK_EQ(leash_mutex_unlock(&hand_mu), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&hand_state) == 2, 5000));
    CU_CHECK(CU_WAIT_UNTIL(leash_mutex_trylock(&hand_mu) == 0, 5000));
    CU_CHECK_EQ(leash_mutex_unlock(&hand_mu), 0);
    return 0;
}

Test(mutex, lock_blocks_until_unlock, .timeout = 30) {
    cr_assert_eq(cu_run(mutex_block_main, NULL), 0);
}

/* Mutual exclusion: 16 coroutines increment a plain counter 100,000 times
 * in all, yielding inside the critical section. */
#define MX_CO 16
#define MX_TOTAL 100000
static leash_mutex mx_mu = LEASH_MUTEX_INIT;
static long mx_counter;
static atomic_int mx_inside, mx_overlap;

static void mx_worker(void *p) {
    leash_waitgroup *wg = p;
    for (int i = 0; i < MX_TOTAL / MX_CO; i++) {
        CU_CHECK_EQ(leash_mutex_lock(&mx_mu), 0);
        if (atomic_fetch_add(&mx_inside, 1) != 0)
            atomic_fetch_add(&mx_overlap, 1);
        long v = mx_counter;
        leash_yield();
        mx_counter = v + 1;
        atomic_fetch_sub(&mx_inside, 1);
        CU_CHECK_EQ(leash_mutex_unlock(&mx_mu), 0);
        if (i % 7 == 0)
            leash_yield();
    }
    leash_waitgroup_done(wg);
}

static int mx_main(void *arg) {
    (void)arg;
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&wg, MX_CO);
    for (int i = 0; i < MX_CO; i++)
        CU_CHECK(leash_go(mx_worker, &wg) > 0);
    leash_waitgroup_wait(&wg);
    CU_CHECK_EQ(mx_counter, MX_TOTAL);
    CU_CHECK_EQ(atomic_load(&mx_overlap), 0);
    CU_CHECK_EQ(leash_mutex_trylock(&mx_mu), 0);
    CU_CHECK_EQ(leash_mutex_unlock(&mx_mu), 0);
    return 0;
}

Test(mutex, mutual_exclusion_under_contention, .timeout = 60) {
    cr_assert_eq(cu_run(mx_main, NULL), 0);
}

/* FIFO hand-off: waiters queued in a known order get the mutex in that
 * order, ahead of the holder that unlocks and immediately relocks. */
#define FIFO_N 5
static leash_mutex fifo_mu = LEASH_MUTEX_INIT;
static int fifo_log[FIFO_N + 2];
static int fifo_len;

static void fifo_waiter(void *p) {
    int id = (int)(intptr_t)p;
    CU_CHECK_EQ(leash_mutex_lock(&fifo_mu), 0);
    fifo_log[fifo_len++] = id;
    CU_CHECK_EQ(leash_mutex_unlock(&fifo_mu), 0);
}

/* Reads an internal field of a sync value under the value's own spinlock
 * (`lock_`, taken as sync.c takes it), so the read is ordered with the
 * runtime's writes. Used to learn that a waiter is queued. */
static void *peek_locked(unsigned *lock, void *const *field) {
    for (;;) {
        unsigned z = 0;
        if (__atomic_compare_exchange_n(lock, &z, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            break;
        sched_yield();
    }
    void *v = *field;
    __atomic_store_n(lock, 0, __ATOMIC_RELEASE);
    return v;
}

/* The waiter list's tail names the newest queued waiter: wait until it
 * changes, so the order is known. */
static bool wait_queued(leash_mutex *mu, void *old_tail) {
    int64_t end = leash_now() + 5000 * CU_MS;
    while (peek_locked(&mu->lock_, &mu->tail_) == old_tail) {
        if (leash_now() > end)
            return false;
        leash_sleep(CU_MS / 2);
    }
    return true;
}

static int fifo_main(void *arg) {
    (void)arg;
    CU_CHECK_EQ(leash_mutex_lock(&fifo_mu), 0);
    for (int i = 1; i <= FIFO_N; i++) {
        void *tail = peek_locked(&fifo_mu.lock_, &fifo_mu.tail_);
        CU_CHECK(leash_go(fifo_waiter, (void *)(intptr_t)i) > 0);
        CU_CHECK(wait_queued(&fifo_mu, tail));
    }
    /* Unlock and relock at once: every queued waiter goes first. */
    CU_CHECK_EQ(leash_mutex_unlock(&fifo_mu), 0);
    CU_CHECK_EQ(leash_mutex_lock(&fifo_mu), 0);
    fifo_log[fifo_len++] = 0;
    CU_CHECK_EQ(leash_mutex_unlock(&fifo_mu), 0);
    CU_CHECK_EQ(fifo_len, FIFO_N + 1);
    for (int i = 0; i < FIFO_N; i++)
        CU_CHECK_EQ(fifo_log[i], i + 1);
    CU_CHECK_EQ(fifo_log[FIFO_N], 0);
    return 0;
}

Test(mutex, fifo_handoff_to_queued_waiters, .timeout = 30) {
    cr_assert_eq(cu_run(fifo_main, NULL), 0);
}

/* No starvation: two hogs relock in a loop (with and without yields)
 * until the victim is done; the victim needs 100 acquisitions. With FIFO
 * hand-off it gets each after at most a couple of hog turns; the hogs give
 * up after 20 s, which only a starving victim would see. */
static leash_mutex hog_mu = LEASH_MUTEX_INIT;
static atomic_int hog_victim_done, hog_timed_out;
static atomic_long hog_rounds;

static void hog(void *p) {
    leash_waitgroup *wg = p;
    int64_t end = leash_now() + 20000 * CU_MS;
    for (long i = 0; !atomic_load(&hog_victim_done); i++) {
        leash_mutex_lock(&hog_mu);
        if (i % 2)
            leash_yield();
        leash_mutex_unlock(&hog_mu);
        atomic_fetch_add(&hog_rounds, 1);
        if (i % 64 == 0 && leash_now() > end) {
            atomic_store(&hog_timed_out, 1);
            break;
        }
    }
    leash_waitgroup_done(wg);
}

static void hog_victim(void *p) {
    leash_waitgroup *wg = p;
    while (atomic_load(&hog_rounds) < 1000) /* the hogs are under way */
        leash_yield();
    for (int k = 0; k < 100; k++) {
        leash_mutex_lock(&hog_mu);
        leash_mutex_unlock(&hog_mu);
    }
    atomic_store(&hog_victim_done, 1);
    leash_waitgroup_done(wg);
}

static int hog_main(void *arg) {
    (void)arg;
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&wg, 3);
    CU_CHECK(leash_go(hog, &wg) > 0);
    CU_CHECK(leash_go(hog, &wg) > 0);
    CU_CHECK(leash_go(hog_victim, &wg) > 0);
    leash_waitgroup_wait(&wg);
    CU_CHECK_EQ(atomic_load(&hog_victim_done), 1);
    CU_CHECK_EQ(atomic_load(&hog_timed_out), 0);
    return 0;
}

Test(mutex, no_starvation_against_relocking_hogs, .timeout = 60) {
    cr_assert_eq(cu_run(hog_main, NULL), 0);
}

/* Plain threads and coroutines share one mutex. */
#define MIX_THREADS 3
#define MIX_CO 8
#define MIX_ITERS 20000
static leash_mutex mix_mu = LEASH_MUTEX_INIT;
static long mix_counter;
static atomic_int mix_inside, mix_overlap;

static void mix_crit(int yield) {
    CU_CHECK_EQ(leash_mutex_lock(&mix_mu), 0);
    if (atomic_fetch_add(&mix_inside, 1) != 0)
        atomic_fetch_add(&mix_overlap, 1);
    long v = mix_counter;
    if (yield)
        leash_yield();
    mix_counter = v + 1;
    atomic_fetch_sub(&mix_inside, 1);
    CU_CHECK_EQ(leash_mutex_unlock(&mix_mu), 0);
}

static void *mix_thread(void *p) {
    (void)p;
    for (int i = 0; i < MIX_ITERS; i++) {
        if (i % 100 == 0) {
            /* Sometimes trylock. */
            if (leash_mutex_trylock(&mix_mu) == 0) {
                mix_counter++;
                leash_mutex_unlock(&mix_mu);
                continue;
            }
        }
        mix_crit(0);
    }
    return NULL;
}

static void mix_co(void *p) {
    for (int i = 0; i < MIX_ITERS; i++)
        mix_crit(i % 3 == 0);
    leash_waitgroup_done(p);
}

static int mix_main(void *arg) {
    (void)arg;
    pthread_t th[MIX_THREADS];
    for (int i = 0; i < MIX_THREADS; i++)
        CU_CHECK_EQ(pthread_create(&th[i], NULL, mix_thread, NULL), 0);
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&wg, MIX_CO);
    for (int i = 0; i < MIX_CO; i++)
        CU_CHECK(leash_go(mix_co, &wg) > 0);
    leash_waitgroup_wait(&wg);
    for (int i = 0; i < MIX_THREADS; i++)
        pthread_join(th[i], NULL);
    CU_CHECK_EQ(mix_counter, (long)(MIX_THREADS + MIX_CO) * MIX_ITERS);
    CU_CHECK_EQ(atomic_load(&mix_overlap), 0);
    return 0;
}

Test(mutex, plain_threads_and_coroutines, .timeout = 60) {
    cr_assert_eq(cu_run(mix_main, NULL), 0);
}

/* A coroutine blocked on a mutex does not block its worker: with one
 * worker, other coroutines keep running while it waits. */
static leash_mutex one_mu = LEASH_MUTEX_INIT;
static atomic_int one_ticks, one_got;

static void one_blocked(void *p) {
    (void)p;
    leash_mutex_lock(&one_mu);
    atomic_store(&one_got, 1);
    leash_mutex_unlock(&one_mu);
}

static void one_ticker(void *p) {
    (void)p;
    for (int i = 0; i < 20; i++) {
        atomic_fetch_add(&one_ticks, 1);
        leash_yield();
    }
}

static int one_worker_main(void *arg) {
    (void)arg;
    CU_CHECK_EQ(leash_num_workers(), 1);
    leash_mutex_lock(&one_mu);
    CU_CHECK(leash_go(one_blocked, NULL) > 0);
    leash_yield();
    CU_CHECK(leash_go(one_ticker, NULL) > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&one_ticks) == 20, 5000));
    CU_CHECK_EQ(atomic_load(&one_got), 0);
    leash_mutex_unlock(&one_mu);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&one_got) == 1, 5000));
    return 0;
}

Test(mutex, parks_coroutine_not_worker, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    cr_assert_eq(cu_run(one_worker_main, NULL), 0);
}

/* ============================================================== rwmutex */
/* Compiled only where leash.h has these types (the macros come with them). */
#ifdef LEASH_RWMUTEX_INIT

static leash_rwmutex static_rw = LEASH_RWMUTEX_INIT;

static int rw_basic_main(void *arg) {
    (void)arg;
    leash_rwmutex rw = LEASH_RWMUTEX_INIT;
    CU_CHECK_EQ(leash_rwmutex_runlock(&rw), LEASH_EINVAL); /* not rlocked */
    CU_CHECK_EQ(leash_rwmutex_unlock(&rw), LEASH_EINVAL);  /* not locked */
    /* Several read locks at once, from one coroutine even. */
    CU_CHECK_EQ(leash_rwmutex_rlock(&rw), 0);
    CU_CHECK_EQ(leash_rwmutex_rlock(&rw), 0);
    CU_CHECK_EQ(leash_rwmutex_unlock(&rw), LEASH_EINVAL); /* readers only */
    CU_CHECK_EQ(leash_rwmutex_runlock(&rw), 0);
    CU_CHECK_EQ(leash_rwmutex_runlock(&rw), 0);
    CU_CHECK_EQ(leash_rwmutex_runlock(&rw), LEASH_EINVAL);
    CU_CHECK_EQ(leash_rwmutex_lock(&rw), 0);
    CU_CHECK_EQ(leash_rwmutex_runlock(&rw), LEASH_EINVAL); /* a writer inside */
    CU_CHECK_EQ(leash_rwmutex_unlock(&rw), 0);
    CU_CHECK_EQ(leash_rwmutex_unlock(&rw), LEASH_EINVAL);
    CU_CHECK_EQ(leash_rwmutex_lock(&static_rw), 0);
    CU_CHECK_EQ(leash_rwmutex_unlock(&static_rw), 0);
    CU_CHECK_EQ(leash_rwmutex_rlock(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_rwmutex_runlock(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_rwmutex_lock(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_rwmutex_unlock(NULL), LEASH_EINVAL);
    return 0;
}

Test(rwmutex, basic_semantics, .timeout = 30) {
    cr_assert_eq(cu_run(rw_basic_main, NULL), 0);
}

/* Readers share, writers exclude: readers check that a pair written by
 * writers is always consistent, and several readers are inside at once. */
#define RW_READERS 12
#define RW_WRITERS 4
static leash_rwmutex rw_mu = LEASH_RWMUTEX_INIT;
static long rw_a, rw_b;
static atomic_int rw_readers_in, rw_max_readers, rw_writers_in, rw_bad;

static void rw_reader(void *p) {
    for (int i = 0; i < 3000; i++) {
        CU_CHECK_EQ(leash_rwmutex_rlock(&rw_mu), 0);
        int in = atomic_fetch_add(&rw_readers_in, 1) + 1;
        int m = atomic_load(&rw_max_readers);
        while (in > m && !atomic_compare_exchange_weak(&rw_max_readers, &m, in))
            ;
        if (atomic_load(&rw_writers_in) != 0)
            atomic_fetch_add(&rw_bad, 1);
        long a = rw_a;
        if (i % 3 == 0)
            leash_yield();
        if (rw_b != a)
            atomic_fetch_add(&rw_bad, 1);
        atomic_fetch_sub(&rw_readers_in, 1);
        CU_CHECK_EQ(leash_rwmutex_runlock(&rw_mu), 0);
    }
    leash_waitgroup_done(p);
}

static void rw_writer(void *p) {
    for (int i = 0; i < 1500; i++) {
        CU_CHECK_EQ(leash_rwmutex_lock(&rw_mu), 0);
        if (atomic_fetch_add(&rw_writers_in, 1) != 0 ||
            atomic_load(&rw_readers_in) != 0)
            atomic_fetch_add(&rw_bad, 1);
        rw_a++;
        if (i % 2)
            leash_yield();
        rw_b++;
        atomic_fetch_sub(&rw_writers_in, 1);
        CU_CHECK_EQ(leash_rwmutex_unlock(&rw_mu), 0);
        if (i % 4 == 0)
            leash_yield();
    }
    leash_waitgroup_done(p);
}

static int rw_share_main(void *arg) {
    (void)arg;
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&wg, RW_READERS + RW_WRITERS);
    for (int i = 0; i < RW_READERS; i++) {
        CU_CHECK(leash_go(rw_reader, &wg) > 0);
        if (i < RW_WRITERS)
            CU_CHECK(leash_go(rw_writer, &wg) > 0);
    }
    leash_waitgroup_wait(&wg);
    CU_CHECK_EQ(atomic_load(&rw_bad), 0);
    CU_CHECK_EQ(rw_a, RW_WRITERS * 1500);
    CU_CHECK_EQ(rw_b, RW_WRITERS * 1500);
    CU_CHECK(atomic_load(&rw_max_readers) >= 2);
    return 0;
}

Test(rwmutex, readers_share_writers_exclude, .timeout = 60) {
    cr_assert_eq(cu_run(rw_share_main, NULL), 0);
}

/* A waiting writer keeps new readers out (writers do not starve): R1 is
 * inside, W waits, R2 arrives after W and must get in after W. */
static leash_rwmutex order_rw = LEASH_RWMUTEX_INIT;
static char order_log[8];
static atomic_int order_len;

static void order_writer(void *p) {
    (void)p;
    leash_rwmutex_lock(&order_rw);
    order_log[atomic_fetch_add(&order_len, 1)] = 'W';
    leash_sleep(2 * CU_MS);
    leash_rwmutex_unlock(&order_rw);
}

static void order_reader(void *p) {
    (void)p;
    leash_rwmutex_rlock(&order_rw);
    order_log[atomic_fetch_add(&order_len, 1)] = 'R';
    leash_rwmutex_runlock(&order_rw);
}

static int rw_order_main(void *arg) {
    (void)arg;
    CU_CHECK_EQ(leash_rwmutex_rlock(&order_rw), 0); /* R1 */
    CU_CHECK(leash_go(order_writer, NULL) > 0);
    /* wdrain_ (internal) names the writer waiting for R1 to leave. */
    CU_CHECK(CU_WAIT_UNTIL(peek_locked(&order_rw.lock_, &order_rw.wdrain_) != NULL,
                           5000));
    CU_CHECK(leash_go(order_reader, NULL) > 0);
    CU_CHECK(CU_WAIT_UNTIL(peek_locked(&order_rw.lock_, &order_rw.rhead_) != NULL,
                           5000));
    leash_sleep(2 * CU_MS);
    CU_CHECK_EQ(atomic_load(&order_len), 0); /* both wait */
    CU_CHECK_EQ(leash_rwmutex_runlock(&order_rw), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&order_len) == 2, 5000));
    CU_CHECK(order_log[0] == 'W' && order_log[1] == 'R');
    return 0;
}

Test(rwmutex, waiting_writer_keeps_new_readers_out, .timeout = 30) {
    cr_assert_eq(cu_run(rw_order_main, NULL), 0);
}

/* Plain threads and coroutines on one rwmutex. */
static leash_rwmutex mixrw = LEASH_RWMUTEX_INIT;
static long mixrw_count;

static void *mixrw_thread(void *p) {
    (void)p;
    for (int i = 0; i < 5000; i++) {
        if (i % 4) {
            leash_rwmutex_rlock(&mixrw);
            leash_rwmutex_runlock(&mixrw);
        } else {
            leash_rwmutex_lock(&mixrw);
            mixrw_count++;
            leash_rwmutex_unlock(&mixrw);
        }
    }
    return NULL;
}

static void mixrw_co(void *p) {
    mixrw_thread(NULL);
    leash_waitgroup_done(p);
}

Test(rwmutex, plain_threads_and_coroutines, .timeout = 60) {
    pthread_t th[2];
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&wg, 4);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, mixrw_thread, NULL), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_gt(leash_go(mixrw_co, &wg), 0);
    leash_waitgroup_wait(&wg);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(mixrw_count, 6 * 1250);
    CU_ASSERT_CLEAN();
}

#endif /* LEASH_RWMUTEX_INIT */

/* ================================================================= cond */
#ifdef LEASH_COND_INIT

static leash_mutex cmu = LEASH_MUTEX_INIT;
static leash_cond cv = LEASH_COND_INIT;
static int cv_ready, cv_waiting;
static atomic_int cv_woken;

static void cv_waiter(void *p) {
    (void)p;
    leash_mutex_lock(&cmu);
    cv_waiting++; /* under cmu, which cond_wait releases once queued */
    int seen = cv_ready;
    while (cv_ready == seen)
        CU_CHECK_EQ(leash_cond_wait(&cv, &cmu), 0);
    atomic_fetch_add(&cv_woken, 1);
    leash_mutex_unlock(&cmu);
}

static int cond_main(void *arg) {
    (void)arg;
    leash_cond c = LEASH_COND_INIT;
    leash_mutex m = LEASH_MUTEX_INIT;
    /* Nobody waits: signal and broadcast are no-ops. */
    CU_CHECK_EQ(leash_cond_signal(&c), 0);
    CU_CHECK_EQ(leash_cond_broadcast(&c), 0);
    CU_CHECK_EQ(leash_cond_signal(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_cond_broadcast(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_cond_wait(NULL, &m), LEASH_EINVAL);
    CU_CHECK_EQ(leash_cond_wait(&c, NULL), LEASH_EINVAL);
    /* Waiting with the mutex not held is an error, not a hang. */
    CU_CHECK(leash_cond_wait(&c, &m) < 0);

    /* Eight waiters; one signal wakes one, broadcast the rest. */
    for (int i = 0; i < 8; i++)
        CU_CHECK(leash_go(cv_waiter, NULL) > 0);
    CU_CHECK(CU_WAIT_UNTIL(({
        leash_mutex_lock(&cmu);
        int n = cv_waiting;
        leash_mutex_unlock(&cmu);
        n == 8;
    }), 5000));
    leash_mutex_lock(&cmu);
    cv_ready++;
    CU_CHECK_EQ(leash_cond_signal(&cv), 0);
    leash_mutex_unlock(&cmu);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&cv_woken) == 1, 5000));
    leash_sleep(5 * CU_MS);
    CU_CHECK_EQ(atomic_load(&cv_woken), 1);
    leash_mutex_lock(&cmu);
    CU_CHECK_EQ(leash_cond_broadcast(&cv), 0);
    leash_mutex_unlock(&cmu);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&cv_woken) == 8, 5000));
    return 0;
}

Test(cond, signal_one_broadcast_all, .timeout = 30) {
    cr_assert_eq(cu_run(cond_main, NULL), 0);
}

/* A bounded queue built on a mutex and two conds: producers and consumers
 * (coroutines and a plain thread) move every item exactly once. */
#define Q_CAP 8
#define Q_ITEMS 4000
static leash_mutex q_mu = LEASH_MUTEX_INIT;
static leash_cond q_notfull = LEASH_COND_INIT, q_notempty = LEASH_COND_INIT;
static int q_buf[Q_CAP], q_head, q_len, q_closed;
static long q_sum;
static atomic_int q_taken;

static void q_put(int v) {
    leash_mutex_lock(&q_mu);
    while (q_len == Q_CAP)
        leash_cond_wait(&q_notfull, &q_mu);
    q_buf[(q_head + q_len++) % Q_CAP] = v;
    leash_cond_signal(&q_notempty);
    leash_mutex_unlock(&q_mu);
}

static bool q_get(int *v) {
    leash_mutex_lock(&q_mu);
    while (q_len == 0 && !q_closed)
        leash_cond_wait(&q_notempty, &q_mu);
    if (q_len == 0) {
        leash_mutex_unlock(&q_mu);
        return false;
    }
    *v = q_buf[q_head];
    q_head = (q_head + 1) % Q_CAP;
    q_len--;
    q_sum += *v;
    leash_cond_signal(&q_notfull);
    leash_mutex_unlock(&q_mu);
    return true;
}

static void q_producer(void *p) {
    int base = (int)(intptr_t)p;
    for (int i = 0; i < Q_ITEMS; i++)
        q_put(base + i);
}

static void q_consumer(void *p) {
    int v;
    while (q_get(&v))
        atomic_fetch_add(&q_taken, 1);
    leash_waitgroup_done(p);
}

static void *q_thread_consumer(void *p) {
    q_consumer(p);
    return NULL;
}

static int queue_main(void *arg) {
    (void)arg;
    leash_waitgroup consumers = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&consumers, 4);
    pthread_t th;
    CU_CHECK_EQ(pthread_create(&th, NULL, q_thread_consumer, &consumers), 0);
    for (int i = 0; i < 3; i++)
        CU_CHECK(leash_go(q_consumer, &consumers) > 0);
    for (int i = 0; i < 4; i++)
        CU_CHECK(leash_go(q_producer, (void *)(intptr_t)(i * Q_ITEMS)) > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&q_taken) == 4 * Q_ITEMS, 30000));
    leash_mutex_lock(&q_mu);
    q_closed = 1;
    leash_cond_broadcast(&q_notempty);
    leash_mutex_unlock(&q_mu);
    leash_waitgroup_wait(&consumers);
    pthread_join(th, NULL);
    long n = 4L * Q_ITEMS;
    CU_CHECK_EQ(q_sum, n * (n - 1) / 2);
    return 0;
}

Test(cond, bounded_queue_producers_consumers, .timeout = 60) {
    cr_assert_eq(cu_run(queue_main, NULL), 0);
}

#endif /* LEASH_COND_INIT */

/* ================================================================= once */
#ifdef LEASH_ONCE_INIT

static leash_once once = LEASH_ONCE_INIT;
static atomic_int once_calls, once_finished, once_early;

static void once_fn(void *p) {
    CU_CHECK(p == &once);
    atomic_fetch_add(&once_calls, 1);
    leash_sleep(10 * CU_MS); /* the others must wait for this */
    atomic_store(&once_finished, 1);
}

static void once_caller(void *p) {
    CU_CHECK_EQ(leash_once_do(&once, once_fn, &once), 0);
    if (!atomic_load(&once_finished))
        atomic_fetch_add(&once_early, 1);
    leash_waitgroup_done(p);
}

static void *once_thread(void *p) {
    once_caller(p);
    return NULL;
}

static int once_main(void *arg) {
    (void)arg;
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&wg, 52);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CU_CHECK_EQ(pthread_create(&th[i], NULL, once_thread, &wg), 0);
    for (int i = 0; i < 50; i++)
        CU_CHECK(leash_go(once_caller, &wg) > 0);
    leash_waitgroup_wait(&wg);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CU_CHECK_EQ(atomic_load(&once_calls), 1);
    CU_CHECK_EQ(atomic_load(&once_early), 0);
    /* Later calls do nothing. */
    CU_CHECK_EQ(leash_once_do(&once, once_fn, &once), 0);
    CU_CHECK_EQ(atomic_load(&once_calls), 1);
    CU_CHECK_EQ(leash_once_do(NULL, once_fn, NULL), LEASH_EINVAL);
    leash_once o2 = LEASH_ONCE_INIT;
    CU_CHECK_EQ(leash_once_do(&o2, NULL, NULL), LEASH_EINVAL);
    return 0;
}

Test(once, runs_exactly_once_others_wait, .timeout = 30) {
    cr_assert_eq(cu_run(once_main, NULL), 0);
}

#endif /* LEASH_ONCE_INIT */
