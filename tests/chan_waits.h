/* SPDX-License-Identifier: MIT */
/*
 * chan_waits.h — bounded waits, waiter counts (white-box) and threads for
 * the channel tests; included by chan_harness.h and stress_chan.c after
 * their CHECK(), MS and SEC. Not every file uses every helper.
 */
#ifndef LEASH_TESTS_CHAN_WAITS_H
#define LEASH_TESTS_CHAN_WAITS_H

#pragma GCC diagnostic ignored "-Wunused-function"

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

#endif /* LEASH_TESTS_CHAN_WAITS_H */
