/*
 * chan_harness.h — the harness shared by test_chan.c, test_select.c and
 * test_gochan.c: CHECK() records failures from coroutines and threads,
 * finish() asserts on the test thread; bounded waits and a watchdog.
 * Define _GNU_SOURCE before including it. Not every file uses every
 * helper, hence the pragma.
 */
#ifndef LEASH_TESTS_CHAN_HARNESS_H
#define LEASH_TESTS_CHAN_HARNESS_H

#pragma GCC diagnostic ignored "-Wunused-function"
#include <unistd.h>

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leash.h"
#include "internal.h" /* struct leash_chan: waiter count (white-box) */

/* ------------------------------------------------------------ harness */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SAN 1
#endif
#endif
#ifndef SAN
#define SAN 0
#endif
#define TMO(s) ((double)(s) * (SAN ? 6 : 1)) /* Criterion .timeout */
#define MS (1000000LL)
#define SEC (1000000000LL)

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

static void run_main(int (*fn)(void *), void *arg) {
#include "chan_waits.h"

#endif /* LEASH_TESTS_CHAN_HARNESS_H */
