/* SPDX-License-Identifier: MIT */
/*
 * core_util.h — helpers for the runtime-core tests (test_runtime.c,
 * test_alloc_fail.c, test_timer.c, test_stack.c, stress_sched.c).
 *
 * Criterion's assertions must only run on the test's own thread (a failed
 * cr_assert longjmps out of the test), never on a coroutine or a worker
 * thread. Code running on coroutines records failures with CU_CHECK*; the
 * test thread turns them into a Criterion failure with CU_ASSERT_CLEAN().
 */
#ifndef LEASH_TESTS_CORE_UTIL_H
#define LEASH_TESTS_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <criterion/criterion.h>

#include "leash.h"

#define CU_MS 1000000LL /* nanoseconds in a millisecond */

/* Thread-safe failure recording (the first message is kept). */
void cu_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
long cu_failures(void);
const char *cu_first_failure(void);

#define CU_CHECK(cond) \
    ((cond) ? (void)0 : cu_fail(__FILE__, __LINE__, "check failed: %s", #cond))
#define CU_CHECK_EQ(a, b)                                                    \
    do {                                                                     \
        long long cu_a_ = (long long)(a), cu_b_ = (long long)(b);            \
        if (cu_a_ != cu_b_)                                                  \
            cu_fail(__FILE__, __LINE__, "check failed: %s == %s (%lld vs %lld)", \
                    #a, #b, cu_a_, cu_b_);                                   \
    } while (0)
#define CU_ASSERT_CLEAN() \
    cr_assert(cu_failures() == 0, "%ld failure(s); first: %s", cu_failures(), \
              cu_first_failure())

/* Polls `expr` every millisecond (leash_sleep: works on a coroutine and on
 * a plain thread) until it holds or timeout_ms passed; evaluates to the
 * last value of `expr`. Only a bound against hangs, never a speed check. */
#define CU_WAIT_UNTIL(expr, timeout_ms)                                      \
    ({                                                                       \
        int64_t cu_deadline_ = leash_now() + (int64_t)(timeout_ms) * CU_MS;  \
        bool cu_ok_;                                                         \
        while (!(cu_ok_ = (expr)) && leash_now() < cu_deadline_)             \
            leash_sleep(CU_MS);                                              \
        cu_ok_;                                                              \
    })

/* leash_run(fn, arg) from the test thread, then CU_ASSERT_CLEAN():
 * fn's result. */
static inline int cu_run(int (*fn)(void *), void *arg) {
    int rc = leash_run(fn, arg);
    CU_ASSERT_CLEAN();
    return rc;
}

/* Resident set size of this process in bytes (/proc/self/statm). */
size_t cu_rss_bytes(void);

/* Milliseconds between two leash_now() values. */
static inline double cu_ms(int64_t from, int64_t to) {
    return (double)(to - from) / 1e6;
}

/* Runs LEASH_TEST_BINDIR/testprog_<name> with argv[1..] = args (NULL-
 * terminated, may be NULL) and the environment variables env ("K=V"
 * strings, NULL-terminated, may be NULL) added to ours, with stdout and
 * stderr captured together into *out (malloc'd, NUL-terminated). Kills it
 * after timeout_s seconds. Returns the waitpid status, or -1 if it could
 * not be run; *timed_out tells whether it was killed for time. */
int cu_run_prog_in(const char *bindir, const char *name,
                   const char *const *args, const char *const *env, char **out,
                   int timeout_s, bool *timed_out);
#ifdef LEASH_TEST_BINDIR
#define cu_run_prog(...) cu_run_prog_in(LEASH_TEST_BINDIR, __VA_ARGS__)
#endif

/* True for a build with ASan or TSan (scale stress loads down). */
bool cu_sanitized(void);

#endif
