/* SPDX-License-Identifier: MIT */
/*
 * chan_checks.h — failure recording for the channel tests: CHECK() and
 * CHECK_EQ() work on coroutines and plain threads (Criterion's assertions
 * may only run on the test thread), finish() asserts on the test thread.
 */
#ifndef LEASH_TESTS_CHAN_CHECKS_H
#define LEASH_TESTS_CHAN_CHECKS_H

#pragma GCC diagnostic ignored "-Wunused-function"

static _Atomic int g_nfail;
static char g_failmsg[512];

static void note_fail(const char *file, int line, const char *what,
                      long long a, long long b) {
    int n = atomic_fetch_add(&g_nfail, 1);
    if (n == 0)
        snprintf(g_failmsg, sizeof g_failmsg, "%s:%d: %s (got %lld, %lld)",
                 file, line, what, a, b);
    if (n < 10)
        fprintf(stderr, "FAIL %s:%d: %s (got %lld, %lld)\n", file, line, what,
                a, b);
}

/* Usable anywhere (coroutines, threads); an expression: true if it held. */
#define CHECK(c) \
    ((c) ? true : (note_fail(__FILE__, __LINE__, #c, 0, 0), false))
#define CHECK_EQ(a, b)                                                     \
    ({                                                                     \
        long long _a = (long long)(a), _b = (long long)(b);                \
        _a == _b ? true                                                    \
                 : (note_fail(__FILE__, __LINE__, #a " == " #b, _a, _b),   \
                    false);                                                \
    })

/* On the test thread only. */
static void finish(void) {
    int n = atomic_load(&g_nfail);
    cr_assert(n == 0, "%d check(s) failed; first: %s", n, g_failmsg);
}

#endif /* LEASH_TESTS_CHAN_CHECKS_H */
