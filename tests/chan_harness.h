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
    int rc = leash_run(fn, arg);
    cr_expect_eq(rc, 0, "leash_run returned %d", rc);
    finish();
}

/* Polls expr (sleeping 1 ms: parks a coroutine, sleeps a thread) until it
 * holds or secs pass; its value is whether it held. */
#define WAIT_UNTIL(expr, secs)                                             \
    ({                                                                     \
        int64_t _dl = leash_now() + (int64_t)((secs) * (double)SEC);       \
        bool _ok;                                                          \
        while (!(_ok = (expr)) && leash_now() < _dl)                       \
            leash_sleep(MS);                                               \
        _ok;                                                               \
    })

/* Sudogs queued on ch (senders + receivers, select cases included),
 * read under the channel's lock, whichever lock type it uses. */
#define CHAN_LOCK_(c) \
    _Generic(&(c)->lock, slock *: slock_acquire, llock *: llock_acquire)(&(c)->lock)
#define CHAN_UNLOCK_(c) \
    _Generic(&(c)->lock, slock *: slock_release, llock *: llock_release)(&(c)->lock)
static int chan_waiters(leash_chan *ch) {
    CHAN_LOCK_(ch);
    int n = ch->nwaiters;
    CHAN_UNLOCK_(ch);
    return n;
}

#define WAIT_WAITERS(ch, n) \
    CHECK(WAIT_UNTIL(chan_waiters(ch) == (n), 10))

/* Plain OS threads running a coroutine-style function. */
typedef struct {
    void (*fn)(void *);
    void *arg;
} thr_start;

static void *thr_tramp(void *p) {
    thr_start s = *(thr_start *)p;
    free(p);
    s.fn(s.arg);
    return NULL;
}

static pthread_t thread_go(void (*fn)(void *), void *arg) {
    thr_start *s = malloc(sizeof *s);
    cr_assert_not_null(s);
    s->fn = fn;
    s->arg = arg;
    pthread_t t;
    int rc = pthread_create(&t, NULL, thr_tramp, s);
    if (rc != 0) {
        CHECK_EQ(rc, 0);
        free(s);
    }
    return t;
}

static void go_ok(int64_t id) { CHECK(id > 0); }

#endif /* LEASH_TESTS_CHAN_HARNESS_H */
