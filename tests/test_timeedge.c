/* SPDX-License-Identifier: MIT */
/*
 * test_timeedge.c — every entry point that takes a duration or a deadline,
 * at the edges of int64_t: INT64_MAX, INT64_MIN, 0 and -1 (and -2 where
 * -1 means "none"). A duration too long to add to the clock is "never",
 * not a wrapped deadline that fires at once and for ever; a negative
 * duration is "now"; a negative I/O deadline other than -1 is an error.
 */
#define _GNU_SOURCE 1
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "core_util.h"

static int64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Nothing ready on c within ms milliseconds. */
static bool stays_empty(leash_chan *c, int ms) {
    int64_t v;
    for (int i = 0; i < ms; i++) {
        if (leash_try_recv(c, &v) != LEASH_EAGAIN)
            return false;
        leash_sleep(CU_MS);
    }
    return true;
}

/* ------------------------------------------------------------- tickers */

Test(timeedge, ticker_with_the_longest_period_never_fires, .timeout = 20) {
    leash_ticker *tk = leash_ticker_start(INT64_MAX);
    cr_assert_not_null(tk);
    int64_t cpu0 = cpu_ns();
    cr_assert(stays_empty(leash_ticker_chan(tk), 200));
    /* A wrapped deadline fired continuously: two CPU-seconds a second. */
    cr_assert_lt(cpu_ns() - cpu0, 100 * CU_MS, "ticker spun: %.1f ms CPU",
                 (cpu_ns() - cpu0) / 1e6);
    leash_ticker_stop(tk);
}

Test(timeedge, ticker_periods_that_are_not_positive_are_refused) {
    cr_assert_null(leash_ticker_start(0));
    cr_assert_null(leash_ticker_start(-1));
    cr_assert_null(leash_ticker_start(INT64_MIN));
}

Test(timeedge, ticker_rearm_saturates, .timeout = 20) {
    /* First tick soon, the next one past the end of the clock: re-arming
     * adds the period to the tick time and must saturate too. */
    leash_ticker *tk = leash_ticker_start(INT64_MAX - leash_now() - 1);
    cr_assert_not_null(tk);
    int64_t cpu0 = cpu_ns();
    cr_assert(stays_empty(leash_ticker_chan(tk), 100));
    cr_assert_lt(cpu_ns() - cpu0, 100 * CU_MS);
    leash_ticker_stop(tk);
}

/* --------------------------------------------------------------- after */

Test(timeedge, after_edges, .timeout = 20) {
    leash_chan *never = leash_after(INT64_MAX);
    cr_assert_not_null(never);
    int64_t when;
    const int64_t nows[] = {0, -1, INT64_MIN};
    for (int i = 0; i < 3; i++) {
        leash_chan *c = leash_after(nows[i]);
        cr_assert_not_null(c);
        cr_assert_eq(leash_recv(c, &when), 0, "after(%ld) never fired",
                     (long)nows[i]);
        leash_release(c);
    }
    cr_assert(stays_empty(never, 50));
    leash_release(never);
}

/* --------------------------------------------------------------- sleep */

static atomic_int slept;

static void sleep_forever(void *p) {
    (void)p;
    leash_sleep(INT64_MAX);
    atomic_store(&slept, 1);
}

Test(timeedge, sleep_edges, .timeout = 20) {
    int64_t t0 = leash_now();
    leash_sleep(0);
    leash_sleep(-1);
    leash_sleep(INT64_MIN);
    cr_assert_lt(leash_now() - t0, 500 * CU_MS);
    cr_assert_gt(leash_go(sleep_forever, NULL), 0);
    leash_sleep(50 * CU_MS);
    cr_assert_eq(atomic_load(&slept), 0, "sleep(INT64_MAX) returned");
}

/* ------------------------------------------------------------ contexts */

Test(timeedge, context_timeouts, .timeout = 20) {
    leash_ctx *bg = leash_ctx_background();
    leash_ctx *never = leash_ctx_with_timeout(bg, INT64_MAX);
    cr_assert_not_null(never);
    const int64_t nows[] = {0, -1, INT64_MIN};
    for (int i = 0; i < 3; i++) {
        leash_ctx *c = leash_ctx_with_timeout(bg, nows[i]);
        cr_assert_not_null(c);
        cr_assert_eq(leash_ctx_err(c), LEASH_ETIMEDOUT,
                     "timeout %ld not expired", (long)nows[i]);
        leash_release(c);
    }
    leash_sleep(20 * CU_MS);
    cr_assert_eq(leash_ctx_err(never), 0);
    leash_release(never);
}

Test(timeedge, context_deadlines, .timeout = 20) {
    leash_ctx *bg = leash_ctx_background();
    leash_ctx *never = leash_ctx_with_deadline(bg, INT64_MAX);
    cr_assert_not_null(never);
    const int64_t past[] = {0, -1, INT64_MIN};
    for (int i = 0; i < 3; i++) {
        leash_ctx *c = leash_ctx_with_deadline(bg, past[i]);
        cr_assert_not_null(c);
        cr_assert_eq(leash_ctx_err(c), LEASH_ETIMEDOUT);
        leash_release(c);
    }
    leash_sleep(20 * CU_MS);
    cr_assert_eq(leash_ctx_err(never), 0);
    leash_release(never);
}

/* ----------------------------------------------------------------- I/O */

static int pfd[2];

static void late_writer(void *p) {
    (void)p;
    leash_sleep(20 * CU_MS);
    (void)!write(pfd[1], "x", 1);
}

static int io_main(void *arg) {
    (void)arg;
    char b;
    const int64_t none[] = {-1, INT64_MAX};
    for (int i = 0; i < 2; i++) {
        CU_CHECK(leash_go(late_writer, NULL) > 0);
        CU_CHECK_EQ(leash_read(pfd[0], &b, 1, none[i]), 1);
    }
    CU_CHECK_EQ(leash_read(pfd[0], &b, 1, 0), LEASH_ETIMEDOUT);
    CU_CHECK_EQ(leash_read(pfd[0], &b, 1, -2), LEASH_EINVAL);
    CU_CHECK_EQ(leash_read(pfd[0], &b, 1, INT64_MIN), LEASH_EINVAL);
    CU_CHECK_EQ(leash_fd_wait(pfd[0], LEASH_POLLIN, INT64_MIN), LEASH_EINVAL);
    CU_CHECK_EQ(leash_write(pfd[1], "y", 1, -2), LEASH_EINVAL);
    CU_CHECK_EQ(leash_accept(pfd[0], NULL, NULL, INT64_MIN), LEASH_EINVAL);
    return 0;
}

Test(timeedge, io_deadlines_on_a_coroutine, .timeout = 20) {
    cr_assert_eq(pipe(pfd), 0);
    cr_assert_eq(leash_run(io_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

Test(timeedge, io_deadlines_on_a_plain_thread, .timeout = 20) {
    cr_assert_eq(pipe(pfd), 0);
    char b;
    cr_assert_gt(leash_go(late_writer, NULL), 0);
    cr_assert_eq(leash_read(pfd[0], &b, 1, INT64_MAX), 1);
    cr_assert_eq(leash_read(pfd[0], &b, 1, 0), LEASH_ETIMEDOUT);
    cr_assert_eq(leash_read(pfd[0], &b, 1, -2), LEASH_EINVAL);
    int64_t t0 = leash_now();
    cr_assert_eq(leash_fd_wait(pfd[0], LEASH_POLLIN, leash_now() + 30 * CU_MS),
                 LEASH_ETIMEDOUT);
    cr_assert_geq(leash_now() - t0, 30 * CU_MS, "timed out early");
}
