/* SPDX-License-Identifier: MIT */
/*
 * test_timer.c — leash_now, leash_sleep, leash_after and tickers.
 *
 * Timing checks only have lower bounds that the contract guarantees (a
 * sleep or a timer never ends early) and generous upper bounds that catch
 * a hang or a lost wake-up, never a speed requirement.
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_util.h"

#define SLACK (500 * CU_MS) /* upper bound for "promptly" */

/* ------------------------------------------------------------ leash_now */

Test(timer, now_monotonic, .timeout = 20) {
    int64_t prev = leash_now();
    cr_assert_gt(prev, 0);
    for (int i = 0; i < 200000; i++) {
        int64_t t = leash_now();
        cr_assert_geq(t, prev, "leash_now went back at %d", i);
        prev = t;
    }
    int64_t a = leash_now();
    leash_sleep(2 * CU_MS);
    cr_assert_geq(leash_now() - a, 2 * CU_MS);
}

/* --------------------------------------------------------- leash_sleep */

static int sleep_zero_main(void *arg) {
    (void)arg;
    int64_t t0 = leash_now();
    for (int i = 0; i < 1000; i++) {
        leash_sleep(0);
        leash_sleep(-1);
        leash_sleep(INT64_MIN);
    }
    CU_CHECK(leash_now() - t0 < SLACK);
    return 0;
}

Test(timer, sleep_zero_and_negative_return_promptly, .timeout = 20) {
    int64_t t0 = leash_now();
    leash_sleep(0); /* plain thread, runtime not started */
    leash_sleep(-5 * CU_MS);
    leash_sleep(INT64_MIN);
    cr_assert_lt(leash_now() - t0, SLACK);
    cr_assert_eq(leash_run(sleep_zero_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

static int sleep_accuracy_main(void *arg) {
    (void)arg;
    for (int i = 0; i < 5; i++) {
        int64_t t0 = leash_now();
        leash_sleep(20 * CU_MS);
        int64_t d = leash_now() - t0;
        CU_CHECK(d >= 20 * CU_MS);
        CU_CHECK(d < SLACK);
    }
    return 0;
}

Test(timer, sleep_accuracy_coroutine, .timeout = 20) {
    cr_assert_eq(leash_run(sleep_accuracy_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

Test(timer, sleep_plain_thread, .timeout = 20) {
    for (int round = 0; round < 2; round++) { /* before and after start */
        int64_t t0 = leash_now();
        leash_sleep(20 * CU_MS);
        int64_t d = leash_now() - t0;
        cr_assert_geq(d, 20 * CU_MS, "round %d: %.2f ms", round, cu_ms(0, d));
        cr_assert_lt(d, SLACK);
        leash_chan *c = leash_chan_make(1, 1);
        leash_release(c);
    }
}

/* A coroutine sleeps while the thread that started it sleeps too. */
static void nap(void *p) {
    leash_chan *done = p;
    leash_sleep(10 * CU_MS);
    int64_t t = leash_now();
    CU_CHECK_EQ(leash_send(done, &t), 0);
}

Test(timer, sleep_mixed_thread_and_coroutines, .timeout = 20) {
    leash_chan *done = leash_chan_make(sizeof(int64_t), 8);
    int64_t t0 = leash_now();
    for (int i = 0; i < 8; i++)
        cr_assert_gt(leash_go(nap, done), 0);
    leash_sleep(15 * CU_MS);
    for (int i = 0; i < 8; i++) {
        int64_t t = 0;
        cr_assert_eq(leash_recv(done, &t), 0);
        cr_assert_geq(t - t0, 10 * CU_MS);
    }
    leash_release(done);
    CU_ASSERT_CLEAN();
}

/* --------------------------------------------------------- timer order */

enum { NORDER = 8 };
static atomic_int log_pos;
static int order_log[NORDER];

static void ordered_sleeper(void *p) {
    int i = (int)(intptr_t)p;
    leash_sleep((int64_t)(i + 1) * 20 * CU_MS);
    order_log[atomic_fetch_add(&log_pos, 1)] = i;
}

static int order_main(void *arg) {
    (void)arg;
    /* Spawn in a scrambled order so that spawn order != wake order. */
    const int perm[NORDER] = {5, 2, 7, 0, 3, 6, 1, 4};
    for (int k = 0; k < NORDER; k++)
        CU_CHECK(leash_go(ordered_sleeper, (void *)(intptr_t)perm[k]) > 0);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 10000));
    return 0;
}

/* One worker: with two, a worker the OS preempts for longer than the
 * 20 ms between deadlines runs its woken sleeper after the next one,
 * woken in order on the other worker (a loaded machine did). */
Test(timer, timers_fire_in_order, .timeout = 20) {
    setenv("LEASH_PROCS", "1", 1);
    cr_assert_eq(leash_run(order_main, NULL), 0);
    CU_ASSERT_CLEAN();
    cr_assert_eq(atomic_load(&log_pos), NORDER);
    for (int i = 0; i < NORDER; i++)
        cr_assert_eq(order_log[i], i, "position %d: sleeper %d", i,
                     order_log[i]);
}

/* The same from a plain thread: timers land on worker 0's heap. */
Test(timer, timers_fire_in_order_plain_thread, .timeout = 20) {
    const int perm[NORDER] = {3, 7, 1, 0, 6, 2, 5, 4};
    for (int k = 0; k < NORDER; k++)
        cr_assert_gt(leash_go(ordered_sleeper, (void *)(intptr_t)perm[k]), 0);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    for (int i = 0; i < NORDER; i++)
        cr_assert_eq(order_log[i], i, "position %d: sleeper %d", i,
                     order_log[i]);
}

/* --------------------------------------------------------- leash_after */

static void check_after(int64_t ns) {
    int64_t t0 = leash_now();
    leash_chan *c = leash_after(ns);
    CU_CHECK(c != NULL);
    if (!c)
        return;
    CU_CHECK_EQ(leash_chan_cap(c), 1);
    int64_t v = 0;
    CU_CHECK_EQ(leash_recv(c, &v), 0);
    int64_t t1 = leash_now();
    CU_CHECK(v >= t0 + (ns > 0 ? ns : 0)); /* never early */
    CU_CHECK(v <= t1);                     /* the time it was sent */
    CU_CHECK(t1 - t0 < (ns > 0 ? ns : 0) + SLACK);
    /* Exactly one value. */
    CU_CHECK_EQ(leash_try_recv(c, &v), LEASH_EAGAIN);
    leash_sleep(3 * (ns > CU_MS ? ns : CU_MS));
    CU_CHECK_EQ(leash_try_recv(c, &v), LEASH_EAGAIN);
    CU_CHECK_EQ(leash_chan_len(c), 0);
    leash_release(c);
    CU_CHECK_EQ(leash_chan_cap(c), LEASH_EINVAL);
}

static int after_main(void *arg) {
    (void)arg;
    check_after(20 * CU_MS);
    check_after(CU_MS);
    check_after(0);
    check_after(-CU_MS);
    return 0;
}

Test(timer, after_delivers_once, .timeout = 20) {
    cr_assert_eq(leash_run(after_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

Test(timer, after_plain_thread, .timeout = 20) {
    check_after(20 * CU_MS);
    check_after(0);
    CU_ASSERT_CLEAN();
}

/* Not read: the value waits in the buffer; releasing an unread or pending
 * after channel is fine. */
Test(timer, after_unread_and_released_early, .timeout = 20) {
    leash_chan *a = leash_after(5 * CU_MS);
    cr_assert_not_null(a);
    leash_sleep(20 * CU_MS);
    cr_assert_eq(leash_chan_len(a), 1);
    leash_release(a);
    /* Released before it fires: the timer still holds the channel; the
     * value goes nowhere and nothing crashes. */
    leash_chan *b = leash_after(10 * CU_MS);
    cr_assert_not_null(b);
    leash_release(b);
    leash_sleep(30 * CU_MS);
    cr_assert_eq(leash_chan_cap(b), LEASH_EINVAL, "dead once it fired");
}

/* Many pending timers at once, fired in any order but all delivered. */
static void many_after(void *p) {
    leash_chan *done = p;
    int64_t ns = (int64_t)(leash_self() % 10) * CU_MS;
    int64_t t0 = leash_now(), v = 0;
    leash_chan *a = leash_after(ns);
    CU_CHECK(a != NULL);
    CU_CHECK_EQ(leash_recv(a, &v), 0);
    CU_CHECK(v >= t0 + ns);
    leash_release(a);
    CU_CHECK_EQ(leash_send(done, &v), 0);
}

Test(timer, after_many_concurrent, .timeout = 30) {
    enum { N = 2000 };
    leash_chan *done = leash_chan_make(sizeof(int64_t), N);
    for (int i = 0; i < N; i++)
        cr_assert_gt(leash_go(many_after, done), 0);
    for (int i = 0; i < N; i++) {
        int64_t v;
        cr_assert_eq(leash_recv(done, &v), 0);
    }
    leash_release(done);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    CU_ASSERT_CLEAN();
}

/* -------------------------------------------------------------- tickers */

#define PERIOD (10 * CU_MS)

static int ticker_main(void *arg) {
    (void)arg;
    int64_t t0 = leash_now();
    leash_ticker *tk = leash_ticker_start(PERIOD);
    CU_CHECK(tk != NULL);
    leash_chan *c = leash_ticker_chan(tk);
    CU_CHECK(c != NULL);
    CU_CHECK(leash_ticker_chan(tk) == c); /* the same channel each time */
    CU_CHECK_EQ(leash_chan_cap(c), 1);
    int64_t prev = t0;
    for (int i = 1; i <= 5; i++) {
        int64_t v = 0;
        CU_CHECK_EQ(leash_recv(c, &v), 0);
        /* Tick i is due at t0 + i * period at the earliest (a late reader
         * may see a later one: missed ticks are dropped). */
        CU_CHECK(v >= t0 + i * PERIOD);
        CU_CHECK(v > prev);
        CU_CHECK(v <= leash_now());
        prev = v;
    }
    int64_t el = leash_now() - t0;
    CU_CHECK(el >= 5 * PERIOD);
    CU_CHECK(el < 5 * PERIOD + SLACK);
    leash_ticker_stop(tk);
    return 0;
}

Test(timer, ticker_ticks_at_period, .timeout = 20) {
    cr_assert_eq(leash_run(ticker_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* Cap 1: ticks that find the channel full are dropped, not queued. */
static int ticker_drop_main(void *arg) {
    (void)arg;
    leash_ticker *tk = leash_ticker_start(2 * CU_MS);
    leash_chan *c = leash_ticker_chan(tk);
    leash_sleep(30 * CU_MS); /* ~15 periods unread */
    CU_CHECK_EQ(leash_chan_len(c), 1);
    int64_t v1 = 0, v2 = 0;
    CU_CHECK_EQ(leash_try_recv(c, &v1), 0);
    CU_CHECK_EQ(leash_try_recv(c, &v2), LEASH_EAGAIN);
    /* Ticking resumes after a read, at the period. */
    int64_t t0 = leash_now();
    CU_CHECK_EQ(leash_recv(c, &v2), 0);
    CU_CHECK(v2 > v1);
    CU_CHECK(leash_now() - t0 < SLACK);
    leash_ticker_stop(tk);
    return 0;
}

Test(timer, ticker_cap_one_drops_ticks, .timeout = 20) {
    cr_assert_eq(leash_run(ticker_drop_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

static int ticker_stop_main(void *arg) {
    (void)arg;
    leash_ticker *tk = leash_ticker_start(2 * CU_MS);
    leash_chan *c = leash_ticker_chan(tk);
    /* Keep the channel alive past the stop to watch it. */
    CU_CHECK(leash_retain(c) == c);
    int64_t v;
    CU_CHECK_EQ(leash_recv(c, &v), 0);
    leash_ticker_stop(tk);
    (void)leash_try_recv(c, &v); /* one may have landed before the stop */
    leash_sleep(20 * CU_MS);     /* 10 periods */
    CU_CHECK_EQ(leash_try_recv(c, &v), LEASH_EAGAIN);
    CU_CHECK_EQ(leash_chan_len(c), 0);
    /* The ticker is gone; stopping again and asking for it are harmless. */
    CU_CHECK(leash_ticker_chan(tk) == NULL);
    leash_ticker_stop(tk);
    leash_release(c);
    CU_CHECK_EQ(leash_chan_cap(c), LEASH_EINVAL);
    return 0;
}

Test(timer, ticker_stop_stops, .timeout = 20) {
    cr_assert_eq(leash_run(ticker_stop_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

Test(timer, ticker_plain_thread, .timeout = 20) {
    int64_t t0 = leash_now();
    leash_ticker *tk = leash_ticker_start(5 * CU_MS);
    cr_assert_not_null(tk);
    int64_t v = 0;
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(leash_recv(leash_ticker_chan(tk), &v), 0);
        cr_assert_geq(v, t0 + i * 5 * CU_MS);
    }
    leash_ticker_stop(tk);
    cr_assert_null(leash_ticker_chan(tk));
}

Test(timer, ticker_bad_arguments, .timeout = 20) {
    int64_t local[8] = {0};
    char *heap = malloc(256);
    memset(heap, 0x33, 256);
    cr_assert_null(leash_ticker_chan(NULL));
    cr_assert_null(leash_ticker_chan((leash_ticker *)local));
    cr_assert_null(leash_ticker_chan((leash_ticker *)heap));
    leash_ticker_stop(NULL);
    leash_ticker_stop((leash_ticker *)local);
    leash_ticker_stop((leash_ticker *)heap);
    /* A channel is a leash object, but not a ticker. */
    leash_chan *c = leash_chan_make(sizeof(int64_t), 1);
    cr_assert_null(leash_ticker_chan((leash_ticker *)c));
    leash_ticker_stop((leash_ticker *)c);
    cr_assert_eq(leash_chan_cap(c), 1, "stop on a channel released it");
    leash_release(c);
    cr_assert_null(leash_ticker_start(0));
    cr_assert_null(leash_ticker_start(-1));
    cr_assert_null(leash_ticker_start(INT64_MIN));
    for (int i = 0; i < 256; i++)
        cr_assert_eq((unsigned char)heap[i], 0x33);
    free(heap);
}

/* A ticker handed to children with leash_go: each reads a tick through
 * its own reference, released when it returns; the parent's stays. */
static void tick_reader(void *p) {
    leash_ticker *tk = p;
    int64_t v;
    CU_CHECK_EQ(leash_recv(leash_ticker_chan(tk), &v), 0);
}

Test(timer, ticker_handed_to_child, .timeout = 20) {
    leash_ticker *tk = leash_ticker_start(2 * CU_MS);
    cr_assert_not_null(tk);
    for (int i = 0; i < 4; i++)
        cr_assert_gt(leash_go(tick_reader, tk, tk), 0);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_assert_not_null(leash_ticker_chan(tk), "the parent's reference");
    leash_ticker_stop(tk);
    cr_assert_null(leash_ticker_chan(tk));
    CU_ASSERT_CLEAN();
}

/* ---------------------------------------------------- many sleepers */

static atomic_long sleepers_done;
static long nsleepers;

static void sleeper(void *p) {
    leash_chan *done = p;
    leash_sleep(CU_MS);
    if (atomic_fetch_add(&sleepers_done, 1) + 1 == nsleepers)
        leash_close(done);
}

static int sleepers_main(void *arg) {
    (void)arg;
    leash_chan *done = leash_chan_make(0, 0);
    int64_t t0 = leash_now();
    for (long i = 0; i < nsleepers; i++)
        if (leash_go(sleeper, done) <= 0) {
            CU_CHECK(!"leash_go failed");
            break;
        }
    CU_CHECK_EQ(leash_recv_n(done, NULL, 0), LEASH_ECLOSED);
    int64_t el = leash_now() - t0;
    fprintf(stderr, "timer: %ld sleepers of 1 ms: %.1f ms\n", nsleepers,
            cu_ms(0, el));
    CU_CHECK(el < 10000 * CU_MS);
    leash_release(done);
    return 0;
}

Test(timer, hundred_thousand_sleepers, .timeout = 60) {
    nsleepers = 100000;
    cr_assert_eq(leash_run(sleepers_main, NULL), 0);
    CU_ASSERT_CLEAN();
    cr_assert_eq(atomic_load(&sleepers_done), nsleepers);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
}

/* ------------------------------------------- timers across leash_shutdown */

/* leash_shutdown waits for no coroutine, but timers are not coroutines:
 * either it refuses (LEASH_EAGAIN) while timers are pending, or they
 * survive the restart. Losing them, or keeping pointers into the freed
 * workers, is a bug. */

/* Receives from c with a bound; 1 if a value came, 0 on time-out. */
static int recv_within(leash_chan *c, int64_t ns) {
    leash_chan *to = leash_after(ns);
    int64_t v = 0, w = 0;
    leash_case cs[2] = {LEASH_RECV_CASE(c, &v), LEASH_RECV_CASE(to, &w)};
    int rc = leash_select(cs, 2);
    leash_release(to);
    return rc == 0 && cs[0].ok;
}

Test(timer, shutdown_with_pending_after, .timeout = 20) {
    leash_chan *a = leash_after(20 * CU_MS);
    cr_assert_not_null(a);
    int rc = leash_shutdown();
    cr_assert(rc == 0 || rc == LEASH_EAGAIN, "rc=%d", rc);
    cr_assert(recv_within(a, 2000 * CU_MS),
              "leash_shutdown returned %d and the pending leash_after value "
              "never came",
              rc);
    leash_release(a);
}

Test(timer, shutdown_with_live_ticker, .timeout = 10) {
    leash_ticker *tk = leash_ticker_start(2 * CU_MS);
    cr_assert_not_null(tk);
    int64_t v;
    cr_assert_eq(leash_recv(leash_ticker_chan(tk), &v), 0);
    int rc = leash_shutdown();
    cr_assert(rc == 0 || rc == LEASH_EAGAIN, "rc=%d", rc);
    /* Restart with other timers on the (new) heaps. */
    leash_chan *a = leash_after(CU_MS);
    leash_ticker *t2 = leash_ticker_start(3 * CU_MS);
    cr_assert_eq(leash_recv(a, &v), 0);
    cr_assert_eq(leash_recv(leash_ticker_chan(t2), &v), 0);
    int ticked = recv_within(leash_ticker_chan(tk), 2000 * CU_MS);
    leash_ticker_stop(tk); /* must not touch freed scheduler memory */
    /* The other ticker still works after that stop. */
    cr_assert_eq(leash_recv(leash_ticker_chan(t2), &v), 0);
    cr_assert_eq(leash_recv(leash_ticker_chan(t2), &v), 0);
    leash_ticker_stop(t2);
    leash_release(a);
    cr_assert(ticked, "leash_shutdown returned %d and the live ticker stopped "
                      "ticking after the restart",
              rc);
}
