/* SPDX-License-Identifier: MIT */
/*
 * test_runtime.c — the runtime core: leash_run, coroutine ids and counts,
 * leash_go argument checking and handed references, retain/release,
 * LEASH_AUTO, strerror, yield fairness, LEASH_PROCS and leash_shutdown.
 *
 * Every Criterion test runs in a fresh forked process, so each one starts
 * with the runtime stopped (environment variables set at the top of a test
 * are seen by the runtime's lazy start).
 */
#define _GNU_SOURCE 1
#include <fenv.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_util.h"

/* ------------------------------------------------------------ leash_run */

static int ret_plus_one(void *arg) { return *(int *)arg + 1; }

Test(runtime, run_returns_result, .timeout = 20) {
    int x = 41;
    cr_assert_eq(leash_run(ret_plus_one, &x), 42);
    x = -8;
    cr_assert_eq(leash_run(ret_plus_one, &x), -7, "second leash_run");
}

Test(runtime, run_null_is_einval, .timeout = 20) {
    cr_assert_eq(leash_run(NULL, NULL), LEASH_EINVAL);
    /* Also once the runtime is up. */
    int x = 0;
    cr_assert_eq(leash_run(ret_plus_one, &x), 1);
    cr_assert_eq(leash_run(NULL, &x), LEASH_EINVAL);
}

static int nested_main(void *arg) {
    (void)arg;
    int x = 99;
    int64_t self = leash_self();
    /* leash_run on a coroutine just calls main_fn there. */
    CU_CHECK_EQ(leash_run(ret_plus_one, &x), 100);
    CU_CHECK_EQ(leash_self(), self);
    return 5;
}

Test(runtime, run_nested_in_coroutine, .timeout = 20) {
    cr_assert_eq(leash_run(nested_main, NULL), 5);
    CU_ASSERT_CLEAN();
}

/* ------------------------------------------------------------ leash_self */

static leash_chan *self_reply;

static void report_self(void *arg) {
    (void)arg;
    int64_t id = leash_self();
    CU_CHECK_EQ(leash_send(self_reply, &id), 0);
}

static int self_main(void *arg) {
    (void)arg;
    CU_CHECK_EQ(leash_self(), 1); /* main is coroutine 1 on first use */
    self_reply = leash_chan_make(sizeof(int64_t), 0);
    int64_t ids[8];
    for (int i = 0; i < 8; i++) {
        int64_t id = leash_go(report_self, NULL);
        CU_CHECK(id > 1);
        int64_t got = -1;
        CU_CHECK_EQ(leash_recv(self_reply, &got), 0);
        CU_CHECK_EQ(got, id); /* leash_go returns the child's own id */
        for (int j = 0; j < i; j++)
            CU_CHECK(ids[j] != id);
        ids[i] = id;
    }
    CU_CHECK_EQ(leash_self(), 1);
    leash_release(self_reply);
    return 0;
}

static void *thread_self(void *arg) {
    (void)arg;
    return (void *)(intptr_t)leash_self();
}

Test(runtime, self_ids, .timeout = 20) {
    cr_assert_eq(leash_self(), 0, "a plain thread is not a coroutine");
    cr_assert_eq(leash_run(self_main, NULL), 0);
    CU_ASSERT_CLEAN();
    cr_assert_eq(leash_self(), 0, "still 0 on the plain thread after run");
    pthread_t t;
    void *r;
    pthread_create(&t, NULL, thread_self, NULL);
    pthread_join(t, &r);
    cr_assert_eq((intptr_t)r, 0, "another plain thread");
}

/* ------------------------------------------------------ leash_go: errors */

static void noop(void *arg) { (void)arg; }

Test(runtime, go_null_fn_is_einval, .timeout = 20) {
    cr_assert_eq(leash_go(NULL, NULL), LEASH_EINVAL);
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    cr_assert_not_null(c);
    cr_assert_eq(leash_go(NULL, NULL, c), LEASH_EINVAL);
    cr_assert_eq(leash_num_coroutines(), 0);
    /* The channel was not retained for anybody. */
    leash_release(c);
    cr_assert_eq(leash_chan_cap(c), LEASH_EINVAL);
}

Test(runtime, go_non_object_is_einval, .timeout = 20) {
    int64_t local[8] = {0};   /* 8-byte aligned, readable, not an object */
    char *heap = malloc(256); /* garbage bytes */
    memset(heap, 0xa5, 256);
    cr_assert_eq(leash_go(noop, NULL, local), LEASH_EINVAL);
    cr_assert_eq(leash_go(noop, NULL, (void *)heap), LEASH_EINVAL);
    cr_assert_eq(leash_go(noop, NULL, (char *)local + 1), LEASH_EINVAL,
                 "misaligned pointer");
    cr_assert_eq(leash_num_coroutines(), 0, "nothing was started");

    /* A valid object followed by garbage: nothing may be retained. */
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    cr_assert_not_null(c);
    cr_assert_eq(leash_go(noop, NULL, c, local), LEASH_EINVAL);
    cr_assert_eq(leash_go(noop, NULL, c, (void *)heap, NULL), LEASH_EINVAL);
    cr_assert_eq(leash_num_coroutines(), 0);
    leash_release(c);
    cr_assert_eq(leash_chan_cap(c), LEASH_EINVAL,
                 "a failed leash_go retained the channel");

    /* A dead object is not a live one either. */
    cr_assert_eq(leash_go(noop, NULL, c), LEASH_EINVAL);
    free(heap);
}

/* --------------------------------------------- leash_go: handed objects */

typedef struct {
    leash_chan *ch;
    atomic_int stage; /* 0 parent holds its ref, 1 released, 2 child done */
} hand_t;

static void hand_child(void *p) {
    hand_t *h = p;
    while (atomic_load(&h->stage) == 0)
        leash_sleep(CU_MS / 2);
    /* The parent's reference is gone; ours keeps the channel alive. */
    int v = 7, r = 0;
    CU_CHECK_EQ(leash_chan_cap(h->ch), 1);
    CU_CHECK_EQ(leash_send(h->ch, &v), 0);
    CU_CHECK_EQ(leash_recv(h->ch, &r), 0);
    CU_CHECK_EQ(r, 7);
    atomic_store(&h->stage, 2);
}

/* Hands h->ch to a child with or without a NULL terminator, drops the
 * parent's reference and checks the child's one dies with the child. */
static void check_handing(bool null_terminated) {
    hand_t h = {.ch = leash_chan_make(sizeof(int), 1)};
    CU_CHECK(h.ch != NULL);
    int64_t id = null_terminated ? leash_go(hand_child, &h, h.ch, NULL)
                                 : leash_go(hand_child, &h, h.ch);
    CU_CHECK(id > 0);
    leash_release(h.ch);
    CU_CHECK_EQ(leash_chan_cap(h.ch), 1); /* the child's reference */
    atomic_store(&h.stage, 1);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&h.stage) == 2, 10000));
    /* Memory is type-stable: a dead channel reads as not live. */
    CU_CHECK(CU_WAIT_UNTIL(leash_chan_cap(h.ch) == LEASH_EINVAL, 10000));
}

static int hand_main(void *arg) {
    check_handing(*(bool *)arg);
    return 0;
}

Test(runtime, go_hands_channel_no_terminator, .timeout = 30) {
    bool nt = false;
    cr_assert_eq(leash_run(hand_main, &nt), 0);
    CU_ASSERT_CLEAN();
}

Test(runtime, go_hands_channel_null_terminated, .timeout = 30) {
    bool nt = true;
    cr_assert_eq(leash_run(hand_main, &nt), 0);
    CU_ASSERT_CLEAN();
}

Test(runtime, go_hands_channel_from_plain_thread, .timeout = 30) {
    check_handing(false);
    check_handing(true);
    CU_ASSERT_CLEAN();
}

/* Several objects handed at once; the parent keeps nothing. */
typedef struct {
    leash_chan *in, *out;
} pair_t;

static void echo_child(void *p) {
    pair_t *pr = p;
    int v;
    while (leash_recv(pr->in, &v) == 0)
        CU_CHECK_EQ(leash_send(pr->out, &v), 0);
}

Test(runtime, go_hands_two_channels, .timeout = 30) {
    pair_t pr = {leash_chan_make(sizeof(int), 0),
                 leash_chan_make(sizeof(int), 0)};
    cr_assert(pr.in && pr.out);
    cr_assert_gt(leash_go(echo_child, &pr, pr.in, pr.out), 0);
    for (int i = 0; i < 100; i++) {
        int r = -1;
        cr_assert_eq(leash_send(pr.in, &i), 0);
        cr_assert_eq(leash_recv(pr.out, &r), 0);
        cr_assert_eq(r, i);
    }
    cr_assert_eq(leash_close(pr.in), 0);
    leash_release(pr.in);
    leash_release(pr.out);
    cr_assert(CU_WAIT_UNTIL(leash_chan_cap(pr.in) == LEASH_EINVAL &&
                                leash_chan_cap(pr.out) == LEASH_EINVAL,
                            10000),
              "handed references not released when the child returned");
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    CU_ASSERT_CLEAN();
}

static void sink16(void *p) {
    leash_chan **cs = p;
    for (int i = 0; i < 16; i++)
        CU_CHECK_EQ(leash_chan_cap(cs[i]), 1);
}

Test(runtime, go_hands_sixteen_channels, .timeout = 30) {
    leash_chan *c[16];
    for (int i = 0; i < 16; i++)
        cr_assert_not_null(c[i] = leash_chan_make(1, 1));
    int64_t id = leash_go(sink16, c, c[0], c[1], c[2], c[3], c[4], c[5], c[6],
                          c[7], c[8], c[9], c[10], c[11], c[12], c[13], c[14],
                          c[15]);
    cr_assert_gt(id, 0);
    for (int i = 0; i < 16; i++)
        leash_release(c[i]);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    for (int i = 0; i < 16; i++)
        cr_assert_eq(leash_chan_cap(c[i]), LEASH_EINVAL, "channel %d", i);
    CU_ASSERT_CLEAN();
}

Test(runtime, go_from_plain_thread, .timeout = 30) {
    leash_chan *done = leash_chan_make(sizeof(int64_t), 0);
    self_reply = done;
    for (int i = 0; i < 50; i++) {
        int64_t id = leash_go(report_self, NULL);
        cr_assert_gt(id, 0);
        int64_t got = 0;
        cr_assert_eq(leash_recv(done, &got), 0);
        cr_assert_eq(got, id);
    }
    leash_release(done);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    CU_ASSERT_CLEAN();
}

/* -------------------------------------------------- retain and release */

Test(runtime, retain_release_bad_pointers, .timeout = 20) {
    int64_t local[8] = {0};
    char *heap = malloc(512);
    memset(heap, 0x5a, 512);
    void *bad[] = {local, heap, heap + 64, (char *)local + 4, (char *)heap + 1};
    cr_assert_null(leash_retain(NULL));
    leash_release(NULL);
    cr_assert_eq(leash_release_checked(NULL), LEASH_EINVAL);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_null(leash_retain(bad[i]), "retain bad[%zu]", i);
        leash_release(bad[i]);
        cr_assert_eq(leash_release_checked(bad[i]), LEASH_EINVAL,
                     "release_checked bad[%zu]", i);
    }
    /* Nothing was written into the garbage. */
    for (int i = 0; i < 512; i++)
        cr_assert_eq((unsigned char)heap[i], 0x5a);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(local[i], 0);
    free(heap);
}

Test(runtime, retain_release_counts, .timeout = 20) {
    leash_chan *c = leash_chan_make(sizeof(int), 3);
    cr_assert_not_null(c);
    cr_assert_eq(leash_retain(c), c);
    cr_assert_eq(leash_retain(c), c);
    cr_assert_eq(leash_release_checked(c), 0);
    cr_assert_eq(leash_release_checked(c), 0);
    cr_assert_eq(leash_chan_cap(c), 3, "one reference left");
    cr_assert_eq(leash_release_checked(c), 0);
    cr_assert_eq(leash_chan_cap(c), LEASH_EINVAL, "dead after the last one");
    cr_assert_eq(leash_release_checked(c), LEASH_EINVAL, "over-release");
    leash_release(c); /* no-op */
    cr_assert_null(leash_retain(c), "retain of a dead object");
}

/* A coroutine's own references are released when it returns. */
static void retain_and_return(void *p) {
    CU_CHECK(leash_retain(p) == p);
    CU_CHECK(leash_retain(p) == p);
}

/* A coroutine started by a plain thread acts for it: with no reference
 * of its own, it releases the thread's (tests/test_objects.c: a coroutine
 * started by a coroutine may not). */
static void release_transferred(void *p) {
    leash_chan *from = p;
    leash_chan *c = NULL;
    CU_CHECK_EQ(leash_recv(from, &c), 0);
    CU_CHECK_EQ(leash_release_checked(c), 0);
}

Test(runtime, references_of_a_coroutine, .timeout = 30) {
    leash_chan *c = leash_chan_make(sizeof(int), 2);
    cr_assert_gt(leash_go(retain_and_return, c), 0);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_assert_eq(leash_chan_cap(c), 2, "the creator's reference is intact");
    leash_release(c);
    cr_assert_eq(leash_chan_cap(c), LEASH_EINVAL,
                 "the coroutine's references outlived it");

    leash_chan *box = leash_chan_make(sizeof(leash_chan *), 1);
    c = leash_chan_make(sizeof(int), 2);
    cr_assert_eq(leash_send(box, &c), 0);
    cr_assert_gt(leash_go(release_transferred, box), 0);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_assert_eq(leash_chan_cap(c), LEASH_EINVAL, "released for the thread");
    leash_release(box);
    CU_ASSERT_CLEAN();
}

/* --------------------------------------------------------- LEASH_AUTO */

static leash_chan *auto_saved;

static int auto_early_return(int x) {
    LEASH_AUTO leash_chan *c = leash_chan_make(sizeof(int), 4);
    auto_saved = c;
    if (x > 0)
        return leash_chan_cap(c);
    return -1;
}

static void auto_in_coroutine(void *p) {
    (void)p;
    CU_CHECK_EQ(auto_early_return(1), 4);
    CU_CHECK_EQ(leash_chan_cap(auto_saved), LEASH_EINVAL);
}

Test(runtime, auto_releases_at_scope_exit, .timeout = 20) {
    leash_chan *saved;
    {
        LEASH_AUTO leash_chan *c = leash_chan_make(sizeof(int), 1);
        cr_assert_not_null(c);
        saved = c;
        cr_assert_eq(leash_chan_cap(saved), 1);
    }
    cr_assert_eq(leash_chan_cap(saved), LEASH_EINVAL);
    {
        LEASH_AUTO leash_chan *none = NULL; /* NULL is fine */
        (void)none;
    }
    cr_assert_eq(auto_early_return(1), 4);
    cr_assert_eq(leash_chan_cap(auto_saved), LEASH_EINVAL);
    cr_assert_gt(leash_go(auto_in_coroutine, NULL), 0);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    CU_ASSERT_CLEAN();
}

/* ----------------------------------------------------- num_coroutines */

static void wait_on(void *p) {
    int v;
    (void)leash_recv((leash_chan *)p, &v);
}

static int count_main(void *arg) {
    (void)arg;
    enum { N = 10 };
    CU_CHECK_EQ(leash_num_coroutines(), 1);
    leash_chan *gates[N];
    for (int i = 0; i < N; i++) {
        gates[i] = leash_chan_make(sizeof(int), 0);
        CU_CHECK(leash_go(wait_on, gates[i]) > 0);
        CU_CHECK_EQ(leash_num_coroutines(), 2 + i);
    }
    /* Still counted while parked. */
    leash_sleep(5 * CU_MS);
    CU_CHECK_EQ(leash_num_coroutines(), 1 + N);
    for (int i = 0; i < N; i++) {
        leash_close(gates[i]);
        CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == (size_t)(N - i), 10000));
        leash_release(gates[i]);
    }
    CU_CHECK_EQ(leash_num_coroutines(), 1);
    return 0;
}

Test(runtime, num_coroutines_counts, .timeout = 30) {
    cr_assert_eq(leash_num_coroutines(), 0, "before first use");
    cr_assert_eq(leash_run(count_main, NULL), 0);
    CU_ASSERT_CLEAN();
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    /* A plain thread blocked in the runtime is not a coroutine. */
    leash_chan *c = leash_chan_make(sizeof(int), 0);
    cr_assert_gt(leash_go(wait_on, c), 0);
    cr_assert_eq(leash_num_coroutines(), 1);
    leash_close(c);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    leash_release(c);
}

/* Right after leash_run returns, main (coroutine 1) has returned too: a
 * program may check NumGoroutine or shut down at once. */
static int trivial_main(void *arg) {
    (void)arg;
    return 3;
}

Test(runtime, num_coroutines_zero_after_run, .timeout = 60) {
    int late = 0;
    for (int i = 0; i < 2000; i++) {
        cr_assert_eq(leash_run(trivial_main, NULL), 3);
        if (leash_num_coroutines() != 0)
            late++;
        cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    }
    cr_assert_eq(late, 0,
                 "%d of 2000 leash_run calls returned while coroutine 1 was "
                 "still registered",
                 late);
}

/* ----------------------------------------------------- misc functions */

static void named(void *p) {
    (void)p;
    leash_set_name(NULL);
    leash_set_name("worker");
    leash_set_name("a name much longer than the thirty-one bytes kept by the "
                   "runtime, which must be truncated and not overflow");
    leash_set_name("");
    leash_set_name(NULL);
}

Test(runtime, set_name_null_no_crash, .timeout = 20) {
    leash_set_name(NULL); /* plain thread, runtime not started */
    leash_set_name("main thread");
    leash_set_name(NULL);
    cr_assert_gt(leash_go(named, NULL), 0);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
}

Test(runtime, strerror_every_code, .timeout = 20) {
    const int codes[] = {LEASH_EAGAIN,  LEASH_ECLOSED, LEASH_ECANCELED,
                         LEASH_ETIMEDOUT, LEASH_EINVAL, LEASH_ENOMEM,
                         LEASH_EORPHANED};
    const int n = sizeof codes / sizeof *codes;
    const char *unknown = leash_strerror(-987654);
    cr_assert_not_null(unknown);
    cr_assert_gt(strlen(unknown), 0);
    for (int i = 0; i < n; i++) {
        cr_assert_lt(codes[i], 0, "codes are negative");
        const char *s = leash_strerror(codes[i]);
        cr_assert_not_null(s);
        cr_assert_gt(strlen(s), 0);
        cr_assert_str_neq(s, unknown, "code %d has no text", codes[i]);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(s, leash_strerror(codes[j]), "codes %d and %d",
                              codes[i], codes[j]);
    }
    /* -1 is -EPERM now: leash_strerror names negated errnos too. */
    const int odd[] = {1, 12345, INT_MIN, INT_MAX, -1000, -1003, -5000};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        const char *s = leash_strerror(odd[i]);
        cr_assert_not_null(s, "code %d", odd[i]);
        cr_assert_str_eq(s, unknown, "code %d", odd[i]);
    }
    cr_assert_not_null(leash_strerror(0));
}

/* ------------------------------------------------------------- yield */

static void *yield_thread(void *p) {
    (void)p;
    for (int i = 0; i < 100; i++)
        leash_yield();
    return NULL;
}

Test(runtime, yield_from_plain_thread, .timeout = 20) {
    leash_yield(); /* before the runtime started */
    for (int i = 0; i < 100; i++)
        leash_yield();
    leash_chan *c = leash_chan_make(1, 1); /* now it runs */
    leash_yield();
    pthread_t t;
    pthread_create(&t, NULL, yield_thread, NULL);
    pthread_join(t, NULL);
    leash_release(c);
    cr_assert_eq(leash_num_coroutines(), 0);
}

enum { NYIELDERS = 64, YIELDS = 1000, TARGET = 20000 };
static atomic_long y_counter;
static atomic_int y_stop;

/* Yields at least YIELDS times, then until the counter reached its target:
 * if the scheduler starved the counter, this never ends (test timeout). */
static void yielder(void *p) {
    leash_chan *done = p;
    long n = 0;
    while (n < YIELDS || !atomic_load(&y_stop)) {
        leash_yield();
        n++;
    }
    CU_CHECK_EQ(leash_send(done, &n), 0);
}

static void counter_co(void *p) {
    leash_chan *done = p;
    while (atomic_load(&y_counter) < TARGET) {
        atomic_fetch_add(&y_counter, 1);
        leash_yield();
    }
    atomic_store(&y_stop, 1);
    long n = -1;
    CU_CHECK_EQ(leash_send(done, &n), 0);
}

static int yield_main(void *arg) {
    (void)arg;
    leash_chan *done = leash_chan_make(sizeof(long), NYIELDERS + 1);
    for (int i = 0; i < NYIELDERS; i++)
        CU_CHECK(leash_go(yielder, done) > 0);
    CU_CHECK(leash_go(counter_co, done) > 0);
    int counters = 0;
    for (int i = 0; i < NYIELDERS + 1; i++) {
        long n = 0;
        CU_CHECK_EQ(leash_recv(done, &n), 0);
        if (n == -1)
            counters++;
        else
            CU_CHECK(n >= YIELDS);
    }
    CU_CHECK_EQ(counters, 1);
    CU_CHECK_EQ(atomic_load(&y_counter), TARGET);
    leash_release(done);
    return 0;
}

Test(runtime, yield_no_starvation, .timeout = 60) {
    int64_t t0 = leash_now();
    cr_assert_eq(leash_run(yield_main, NULL), 0);
    CU_ASSERT_CLEAN();
    cr_log_info("64 yielders + counter to %d: %.1f ms on %d workers", TARGET,
                cu_ms(t0, leash_now()), leash_num_workers());
}

Test(runtime, yield_no_starvation_one_worker, .timeout = 60) {
    setenv("LEASH_PROCS", "1", 1);
    cr_assert_eq(leash_run(yield_main, NULL), 0);
    cr_assert_eq(leash_num_workers(), 1);
    CU_ASSERT_CLEAN();
}

/* -------------------------------------------------------- LEASH_PROCS */

static int workers_main(void *arg) {
    (void)arg;
    return leash_num_workers();
}

Test(runtime, procs_env_honoured, .timeout = 20) {
    setenv("LEASH_PROCS", "3", 1);
    cr_assert_eq(leash_num_workers(), 0, "runtime not started yet");
    cr_assert_eq(leash_run(workers_main, NULL), 3);
    cr_assert_eq(leash_num_workers(), 3);
}

Test(runtime, procs_env_large, .timeout = 20) {
    setenv("LEASH_PROCS", "7", 1);
    cr_assert_eq(leash_run(yield_main, NULL), 0);
    cr_assert_eq(leash_num_workers(), 7);
    CU_ASSERT_CLEAN();
}

Test(runtime, procs_env_invalid_uses_default, .timeout = 20) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    setenv("LEASH_PROCS", "0", 1);
    cr_assert_eq(leash_run(workers_main, NULL), (int)ncpu, "LEASH_PROCS=0");
    cr_assert_eq(leash_shutdown(), 0);
    setenv("LEASH_PROCS", "lots", 1);
    cr_assert_eq(leash_run(workers_main, NULL), (int)ncpu, "LEASH_PROCS=lots");
    cr_assert_eq(leash_shutdown(), 0);
    unsetenv("LEASH_PROCS");
    cr_assert_eq(leash_run(workers_main, NULL), (int)ncpu, "unset");
}

/* ------------------------------------------------------ leash_shutdown */

Test(runtime, shutdown_never_started, .timeout = 20) {
    cr_assert_eq(leash_shutdown(), 0);
    cr_assert_eq(leash_num_workers(), 0);
    int x = 1;
    cr_assert_eq(leash_run(ret_plus_one, &x), 2);
}

static int shutdown_in_co(void *arg) {
    (void)arg;
    return leash_shutdown();
}

static void shutdown_in_child(void *p) {
    leash_chan *c = p;
    int rc = leash_shutdown();
    CU_CHECK_EQ(leash_send(c, &rc), 0);
}

Test(runtime, shutdown_from_coroutine_is_eagain, .timeout = 20) {
    cr_assert_eq(leash_run(shutdown_in_co, NULL), LEASH_EAGAIN);
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    cr_assert_gt(leash_go(shutdown_in_child, c), 0);
    int rc = 0;
    cr_assert_eq(leash_recv(c, &rc), 0);
    cr_assert_eq(rc, LEASH_EAGAIN);
    leash_release(c);
    cr_assert_gt(leash_num_workers(), 0, "still running");
    CU_ASSERT_CLEAN();
}

Test(runtime, shutdown_with_live_coroutine_is_eagain, .timeout = 20) {
    leash_chan *gate = leash_chan_make(sizeof(int), 0);
    cr_assert_gt(leash_go(wait_on, gate), 0);
    cr_assert_eq(leash_shutdown(), LEASH_EAGAIN);
    cr_assert_gt(leash_num_workers(), 0);
    leash_close(gate);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_assert_eq(leash_shutdown(), 0);
    cr_assert_eq(leash_num_workers(), 0);
    leash_release(gate);
}

static int spawn_some_main(void *arg) {
    int n = *(int *)arg;
    leash_chan *done = leash_chan_make(sizeof(int), 0);
    for (int i = 0; i < n; i++)
        CU_CHECK(leash_go(wait_on, done) > 0);
    leash_close(done);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 10000));
    leash_release(done);
    return leash_num_workers();
}

Test(runtime, shutdown_then_restart, .timeout = 60) {
    setenv("LEASH_PROCS", "2", 1);
    /* A channel made on this thread survives a restart. */
    leash_chan *keep = leash_chan_make(sizeof(int), 4);
    cr_assert_not_null(keep);
    for (int round = 0; round < 5; round++) {
        int n = 100 * (round + 1);
        cr_assert_eq(leash_run(spawn_some_main, &n), 2, "round %d", round);
        cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
        cr_assert_eq(leash_shutdown(), 0, "round %d", round);
        cr_assert_eq(leash_num_workers(), 0, "round %d: workers stopped", round);
        cr_assert_eq(leash_shutdown(), 0, "shutdown twice");
        int v = round, r = -1;
        cr_assert_eq(leash_send(keep, &v), 0);
        cr_assert_eq(leash_recv(keep, &r), 0);
        cr_assert_eq(r, round);
    }
    /* Restarts on any first use, not only leash_run. */
    cr_assert_eq(leash_shutdown(), 0);
    cr_assert_gt(leash_go(noop, NULL), 0);
    cr_assert_eq(leash_num_workers(), 2);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    leash_release(keep);
    CU_ASSERT_CLEAN();
}

/* The natural end of a program: leash_run, then leash_shutdown. */
Test(runtime, shutdown_right_after_run, .timeout = 60) {
    int eagain = 0;
    for (int i = 0; i < 3000; i++) {
        cr_assert_eq(leash_run(trivial_main, NULL), 3);
        int rc = leash_shutdown();
        if (rc == LEASH_EAGAIN) {
            eagain++;
            cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
            rc = leash_shutdown();
        }
        cr_assert_eq(rc, 0);
    }
    cr_assert_eq(eagain, 0,
                 "leash_shutdown right after leash_run returned EAGAIN %d of "
                 "3000 times (coroutine 1 still registered)",
                 eagain);
}

/* ------------------------------------------------- floating-point state */

/* Each coroutine keeps its own floating-point environment (MXCSR and the
 * x87 control word on x86-64, FPCR on aarch64) across switches, and a new
 * coroutine starts with the default one (round to nearest). Two
 * coroutines with opposite rounding modes take turns on one worker: the
 * switch skips the restore when the environments are equal, so a wrong
 * comparison shows here. SSE arithmetic and fegetround (x87 control word
 * on x86-64) are both checked. */
static volatile double fp_three = 3.0;
static _Atomic int fp_bad, fp_new_mode;
static leash_waitgroup fp_wg = LEASH_WAITGROUP_INIT;

static void fp_fresh(void *a) {
    (void)a;
    atomic_store(&fp_new_mode, fegetround());
    leash_waitgroup_done(&fp_wg);
}

static void fp_turns(void *a) {
    int mode = (int)(intptr_t)a;
    fesetround(mode);
    for (int i = 0; i < 2000; i++) {
        leash_yield();
        double third = 1.0 / fp_three; /* SSE: rounds by MXCSR */
        bool up = third * fp_three > 1.0 || third > 0.3333333333333333;
        if (fegetround() != mode || up != (mode == FE_UPWARD))
            atomic_fetch_add(&fp_bad, 1);
    }
    fesetround(FE_TONEAREST);
    leash_waitgroup_done(&fp_wg);
}

static int fp_main(void *a) {
    (void)a;
    leash_waitgroup_add(&fp_wg, 3);
    CU_CHECK(leash_go(fp_turns, (void *)(intptr_t)FE_UPWARD) > 0);
    CU_CHECK(leash_go(fp_turns, (void *)(intptr_t)FE_DOWNWARD) > 0);
    fesetround(FE_TOWARDZERO); /* the spawner's mode is not inherited */
    atomic_store(&fp_new_mode, -1);
    CU_CHECK(leash_go(fp_fresh, NULL) > 0);
    leash_waitgroup_wait(&fp_wg);
    CU_CHECK_EQ(fegetround(), FE_TOWARDZERO);
    fesetround(FE_TONEAREST);
    return 0;
}

Test(runtime, floating_point_environment_per_coroutine, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    cr_assert_eq(leash_run(fp_main, NULL), 0);
    CU_ASSERT_CLEAN();
    cr_expect_eq(atomic_load(&fp_bad), 0, "%d checks saw the other "
                 "coroutine's rounding mode", atomic_load(&fp_bad));
    cr_expect_eq(atomic_load(&fp_new_mode), FE_TONEAREST,
                 "a new coroutine starts in mode %d",
                 atomic_load(&fp_new_mode));
}

/* ------------------------------------------------------------- labels */

/* A key beyond LEASH_MAX_LABELS is a bad argument, not out of memory. */
Test(runtime, ninth_label_is_einval, .timeout = 20) {
    char key[16];
    for (int i = 0; i < LEASH_MAX_LABELS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_eq(leash_label_set(key, "v"), 0, "%s", key);
    }
    cr_expect_eq(leash_label_set("one-more", "v"), LEASH_EINVAL);
    cr_expect_eq(leash_label_set("k0", "changed"), 0, "replacing is fine");
    cr_expect_eq(leash_label_set("k1", NULL), 0);
    cr_expect_eq(leash_label_set("one-more", "v"), 0, "room again");
}
