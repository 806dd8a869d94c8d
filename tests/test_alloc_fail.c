/* SPDX-License-Identifier: MIT */
/*
 * test_alloc_fail.c — fault injection at the runtime's allocation sites.
 *
 * alloc_test_fail(n) makes the nth runtime allocation from now fail
 * (stack mappings and pooled reuses count too; 0 turns it off). For each
 * operation we fail its 1st, 2nd, ... allocation until it succeeds, and
 * check that every failed call reported the failure (ENOMEM / NULL) and
 * left nothing behind: no coroutine, no object, no reference. Afterwards a
 * normal workload must run. Most tests use one worker (LEASH_PROCS=1) so
 * that which allocation comes when is deterministic.
 *
 * The test includes internal.h to read object counts and reference counts
 * (tests link the static library, so internal functions are reachable).
 */
#define _GNU_SOURCE 1
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core_util.h"
#include "internal.h"

void alloc_test_fail(long nth);

#define MAX_SITES 32

static int64_t refs_of(void *obj) {
    return atomic_load(&((lobj *)obj)->refs);
}

/* ------------------------------------------------------------ workload */

static void pinger(void *p) {
    leash_chan **c = p; /* c[0] in, c[1] out */
    int v;
    while (leash_recv(c[0], &v) == 0)
        CU_CHECK_EQ(leash_send(c[1], &(int){v + 1}), 0);
}

/* Everything still works: coroutines, channels, select over many cases,
 * after, tickers; and nothing is left behind. */
static void workload(void) {
    size_t base_g = leash_num_coroutines();
    size_t base_ch = obj_count(OBJ_CHAN), base_tk = obj_count(OBJ_TICKER);
    enum { N = 50 };
    leash_chan *c[N][2];
    for (int i = 0; i < N; i++) {
        c[i][0] = leash_chan_make(sizeof(int), 0);
        c[i][1] = leash_chan_make(sizeof(int), 1);
        CU_CHECK(c[i][0] && c[i][1]);
        CU_CHECK(leash_go(pinger, c[i], c[i][0], c[i][1]) > 0);
    }
    for (int i = 0; i < N; i++) {
        int r = 0;
        CU_CHECK_EQ(leash_send(c[i][0], &i), 0);
        CU_CHECK_EQ(leash_recv(c[i][1], &r), 0);
        CU_CHECK_EQ(r, i + 1);
    }
    /* select over 12 cases, one ready */
    leash_case cs[12];
    int vals[12];
    for (int i = 0; i < 12; i++)
        cs[i] = LEASH_RECV_CASE(c[i][1], &vals[i]);
    CU_CHECK_EQ(leash_send(c[7][0], &(int){100}), 0);
    CU_CHECK(CU_WAIT_UNTIL(leash_chan_len(c[7][1]) == 1, 10000));
    CU_CHECK_EQ(leash_select(cs, 12), 7);
    CU_CHECK_EQ(vals[7], 101);
    for (int i = 0; i < N; i++) {
        leash_close(c[i][0]);
        leash_release(c[i][0]);
        leash_release(c[i][1]);
    }
    leash_chan *a = leash_after(CU_MS);
    CU_CHECK(a != NULL);
    int64_t t = 0;
    CU_CHECK_EQ(leash_recv(a, &t), 0);
    CU_CHECK(t > 0);
    leash_release(a);
    leash_ticker *tk = leash_ticker_start(CU_MS);
    CU_CHECK(tk != NULL);
    CU_CHECK_EQ(leash_recv(leash_ticker_chan(tk), &t), 0);
    leash_ticker_stop(tk);
    leash_sleep(CU_MS);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == base_g, 10000));
    CU_CHECK_EQ(obj_count(OBJ_CHAN), base_ch);
    CU_CHECK_EQ(obj_count(OBJ_TICKER), base_tk);
}

static int workload_main(void *arg) {
    (void)arg;
    workload();
    return 0;
}

static void noop(void *arg) { (void)arg; }

/* ------------------------------------------------------- runtime start */

Test(alloc_fail, runtime_start_via_go, .timeout = 30) {
    setenv("LEASH_PROCS", "2", 1);
    int failed = 0;
    int64_t id = 0;
    for (long n = 1; n <= MAX_SITES; n++) {
        alloc_test_fail(n);
        id = leash_go(noop, NULL);
        alloc_test_fail(0);
        if (id > 0)
            break;
        cr_assert_eq(id, LEASH_ENOMEM, "n=%ld", n);
        cr_assert_eq(leash_num_coroutines(), 0, "n=%ld", n);
        failed++;
    }
    cr_assert_gt(id, 0, "leash_go never succeeded");
    /* The workers array and two alt stacks at least, then the stack. */
    cr_assert_geq(failed, 4, "only %d allocation sites were failed", failed);
    cr_log_info("leash_go as first use: %d failing allocation sites", failed);
    cr_assert_eq(leash_num_workers(), 2);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_assert_eq(leash_run(workload_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

static int answer(void *arg) {
    (void)arg;
    return 42;
}

Test(alloc_fail, runtime_start_via_run, .timeout = 30) {
    int failed = 0, rc = 0;
    for (long n = 1; n <= MAX_SITES; n++) {
        alloc_test_fail(n);
        rc = leash_run(answer, NULL);
        alloc_test_fail(0);
        if (rc == 42)
            break;
        cr_assert_eq(rc, LEASH_ENOMEM, "n=%ld", n);
        failed++;
    }
    cr_assert_eq(rc, 42);
    cr_assert_geq(failed, 3, "only %d allocation sites were failed", failed);
    cr_assert_eq(leash_run(workload_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

Test(alloc_fail, runtime_start_via_chan_make, .timeout = 30) {
    setenv("LEASH_PROCS", "2", 1);
    int failed = 0;
    leash_chan *c = NULL;
    for (long n = 1; n <= MAX_SITES; n++) {
        alloc_test_fail(n);
        c = leash_chan_make(sizeof(int), 4);
        alloc_test_fail(0);
        if (c)
            break;
        failed++;
    }
    cr_assert_not_null(c);
    /* The workers array, two alt stacks (2 CPUs or LEASH_PROCS=2) and this
     * thread's record; the runtime stays started after a later failure, so
     * the loop reaches the channel's own sites only in chan_make_each_site. */
    cr_assert_geq(failed, 4, "only %d allocation sites were failed", failed);
    cr_assert_eq(obj_count(OBJ_CHAN), 1);
    cr_assert_eq(leash_send(c, &(int){5}), 0);
    leash_release(c);
    cr_assert_eq(obj_count(OBJ_CHAN), 0);
    cr_assert_eq(leash_run(workload_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* -------------------------------------------------------------- leash_go */

typedef struct {
    leash_chan *a, *b;
    atomic_int ran;
} go_arg;

static void go_child(void *p) {
    go_arg *g = p;
    CU_CHECK_EQ(leash_chan_cap(g->a), 1);
    CU_CHECK_EQ(leash_chan_cap(g->b), 2);
    atomic_fetch_add(&g->ran, 1);
}

/* Fails each allocation of leash_go(child, a, b) in turn; returns how many
 * failed before it succeeded. */
static int go_sites(go_arg *ga) {
    size_t g0 = leash_num_coroutines();
    int64_t ra = refs_of(ga->a), rb = refs_of(ga->b);
    int failed = 0;
    int64_t id = 0;
    for (long n = 1; n <= MAX_SITES; n++) {
        alloc_test_fail(n);
        id = leash_go(go_child, ga, ga->a, ga->b);
        alloc_test_fail(0);
        if (id > 0)
            break;
        CU_CHECK_EQ(id, LEASH_ENOMEM);
        CU_CHECK_EQ(leash_num_coroutines(), g0);
        CU_CHECK_EQ(refs_of(ga->a), ra); /* no reference left behind */
        CU_CHECK_EQ(refs_of(ga->b), rb);
        failed++;
    }
    CU_CHECK(id > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&ga->ran) == 1 &&
                               leash_num_coroutines() == g0,
                           10000));
    CU_CHECK_EQ(refs_of(ga->a), ra);
    CU_CHECK_EQ(refs_of(ga->b), rb);
    atomic_store(&ga->ran, 0);
    return failed;
}

static int go_main(void *arg) {
    int *failed = arg;
    go_arg ga = {.a = leash_chan_make(sizeof(int), 1),
                 .b = leash_chan_make(sizeof(int), 2)};
    /* 1: a cold worker (no cached stack): the stack is carved from a
     *    chunk, or a chunk is mapped. */
    failed[0] = go_sites(&ga);
    /* 2: warm: the stack comes from the worker's cache, and released
     *    references are on the free list. */
    for (int i = 0; i < 4; i++) {
        CU_CHECK(leash_go(go_child, &ga, ga.a, ga.b) > 0);
        CU_CHECK(CU_WAIT_UNTIL(atomic_load(&ga.ran) == 1, 10000));
        atomic_store(&ga.ran, 0);
    }
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 10000));
    failed[1] = go_sites(&ga);
    leash_release(ga.a);
    leash_release(ga.b);
    workload();
    return 0;
}

Test(alloc_fail, go_each_site, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    int failed[2] = {0, 0};
    cr_assert_eq(leash_run(go_main, failed), 0);
    CU_ASSERT_CLEAN();
    cr_log_info("leash_go with 2 handed channels: %d failing sites cold, %d warm",
                failed[0], failed[1]);
    /* A warm spawn has at least 3 sites: the stack and one reference
     * record per handed channel. */
    cr_assert_geq(failed[1], 3,
                  "warm leash_go(f, a, ch1, ch2): only %d of its allocations "
                  "(stack, 2 references) could be failed",
                  failed[1]);
    cr_assert_geq(failed[0], 1, "cold leash_go: no failing site");
}

/* From a plain thread with a fresh runtime: the first stack needs a new
 * chunk (a bookkeeping record and a mapping). */
Test(alloc_fail, go_new_stack_chunk, .timeout = 30) {
    leash_chan *c = leash_chan_make(1, 1); /* starts the runtime */
    cr_assert_not_null(c);
    leash_release(c);
    for (long n = 1; n <= 2; n++) {
        alloc_test_fail(n);
        int64_t id = leash_go(noop, NULL);
        alloc_test_fail(0);
        cr_assert_eq(id, LEASH_ENOMEM, "n=%ld", n);
        cr_assert_eq(leash_num_coroutines(), 0);
    }
    cr_assert_gt(leash_go(noop, NULL), 0);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_assert_eq(leash_run(workload_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* --------------------------------------------------------- chan_make */

static int chan_sites(size_t esize, size_t cap) {
    size_t base = obj_count(OBJ_CHAN);
    int failed = 0;
    leash_chan *c = NULL;
    for (long n = 1; n <= MAX_SITES; n++) {
        alloc_test_fail(n);
        c = leash_chan_make(esize, cap);
        alloc_test_fail(0);
        if (c)
            break;
        CU_CHECK_EQ(obj_count(OBJ_CHAN), base);
        failed++;
    }
    CU_CHECK(c != NULL);
    CU_CHECK_EQ(obj_count(OBJ_CHAN), base + 1);
    CU_CHECK_EQ(leash_chan_cap(c), cap);
    if (esize == sizeof(int) && cap > 0) {
        int v = 0;
        CU_CHECK_EQ(leash_send(c, &(int){9}), 0);
        CU_CHECK_EQ(leash_recv(c, &v), 0);
        CU_CHECK_EQ(v, 9);
    }
    leash_release(c);
    CU_CHECK_EQ(obj_count(OBJ_CHAN), base);
    return failed;
}

static int chan_main(void *arg) {
    int *f = arg;
    f[0] = chan_sites(sizeof(int), 8); /* cold: nothing on free lists */
    f[1] = chan_sites(sizeof(int), 8); /* warm: reused memory */
    f[2] = chan_sites(sizeof(int), 0); /* no buffer */
    f[3] = chan_sites(0, 16);          /* signal channel: no buffer */
    workload();
    return 0;
}

Test(alloc_fail, chan_make_each_site, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    int f[4] = {0};
    cr_assert_eq(leash_run(chan_main, f), 0);
    CU_ASSERT_CLEAN();
    cr_log_info("chan_make sites: cold %d, warm %d, unbuffered %d, signal %d",
                f[0], f[1], f[2], f[3]);
    /* object, buffer, the creator's reference */
    cr_assert_geq(f[0], 3, "cold buffered chan_make: %d sites", f[0]);
    cr_assert_geq(f[1], 3, "warm buffered chan_make: %d sites", f[1]);
    cr_assert_geq(f[2], 2, "unbuffered chan_make: %d sites", f[2]);
    cr_assert_geq(f[3], 2, "signal chan_make: %d sites", f[3]);
}

/* ------------------------------------------------------------- retain */

static void retainer(void *p) {
    leash_chan *c = p;
    int64_t r0 = refs_of(c);
    alloc_test_fail(1);
    void *got = leash_retain(c); /* first reference of this holder */
    alloc_test_fail(0);
    CU_CHECK(got == NULL);
    CU_CHECK_EQ(refs_of(c), r0);
    got = leash_retain(c);
    CU_CHECK(got == c);
    CU_CHECK_EQ(refs_of(c), r0 + 1);
    /* A second reference of the same holder allocates nothing. */
    alloc_test_fail(1);
    got = leash_retain(c);
    alloc_test_fail(0);
    CU_CHECK(got == c);
    leash_release(c);
    leash_release(c);
    CU_CHECK_EQ(refs_of(c), r0);
}

Test(alloc_fail, retain_new_holder_cold, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    cr_assert_gt(leash_go(retainer, c), 0);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_assert_eq(refs_of(c), 1);
    leash_release(c);
    CU_ASSERT_CLEAN();
    cr_assert_eq(leash_run(workload_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* The same once released reference records are waiting for reuse (the
 * usual state of a running program). */
Test(alloc_fail, retain_new_holder_warm, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    leash_chan *t[4]; /* put reference records on the free list */
    for (int i = 0; i < 4; i++)
        t[i] = leash_chan_make(sizeof(int), 1);
    for (int i = 0; i < 4; i++)
        leash_release(t[i]);
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    cr_assert_gt(leash_go(retainer, c), 0);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_assert_eq(refs_of(c), 1);
    leash_release(c);
    CU_ASSERT_CLEAN();
}

/* -------------------------------------------------------------- after */

static int after_main(void *arg) {
    int *failed = arg;
    size_t base = obj_count(OBJ_CHAN);
    leash_chan *a = NULL;
    int64_t t0 = 0;
    for (long n = 1; n <= MAX_SITES; n++) {
        t0 = leash_now();
        alloc_test_fail(n);
        a = leash_after(2 * CU_MS);
        alloc_test_fail(0);
        if (a)
            break;
        CU_CHECK_EQ(obj_count(OBJ_CHAN), base);
        (*failed)++;
    }
    CU_CHECK(a != NULL);
    int64_t v = 0;
    CU_CHECK_EQ(leash_recv(a, &v), 0);
    CU_CHECK(v >= t0 + 2 * CU_MS);
    leash_release(a);
    /* Nothing a failed call armed may fire into a reused channel. */
    leash_sleep(5 * CU_MS);
    CU_CHECK(CU_WAIT_UNTIL(obj_count(OBJ_CHAN) == base, 10000));
    workload();
    return 0;
}

/* Runs fn on one worker; fn counts into its int argument the allocation
 * sites it made fail, and there must be at least min of them. */
static void expect_failing_sites(int (*fn)(void *), const char *what, int min) {
    setenv("LEASH_PROCS", "1", 1);
    int failed = 0;
    cr_assert_eq(leash_run(fn, &failed), 0);
    CU_ASSERT_CLEAN();
    cr_log_info("%s: %d failing sites", what, failed);
    cr_assert_geq(failed, min, "%s: only %d sites", what, failed);
}

Test(alloc_fail, after_each_site, .timeout = 30) {
    /* channel object, buffer, creator's ref, timer record, runtime's ref,
     * the (empty) timer heap's array */
    expect_failing_sites(after_main, "leash_after", 6);
}

/* ------------------------------------------------------------- ticker */

static int ticker_main(void *arg) {
    int *failed = arg;
    size_t base_ch = obj_count(OBJ_CHAN), base_tk = obj_count(OBJ_TICKER);
    leash_ticker *tk = NULL;
    for (long n = 1; n <= MAX_SITES; n++) {
        alloc_test_fail(n);
        tk = leash_ticker_start(2 * CU_MS);
        alloc_test_fail(0);
        if (tk)
            break;
        CU_CHECK_EQ(obj_count(OBJ_CHAN), base_ch);
        CU_CHECK_EQ(obj_count(OBJ_TICKER), base_tk);
        (*failed)++;
    }
    CU_CHECK(tk != NULL);
    int64_t v = 0, prev = 0;
    for (int i = 0; i < 3; i++) {
        CU_CHECK_EQ(leash_recv(leash_ticker_chan(tk), &v), 0);
        CU_CHECK(v > prev);
        prev = v;
    }
    leash_ticker_stop(tk);
    CU_CHECK_EQ(obj_count(OBJ_TICKER), base_tk);
    CU_CHECK_EQ(obj_count(OBJ_CHAN), base_ch);
    workload();
    return 0;
}

Test(alloc_fail, ticker_start_each_site, .timeout = 30) {
    /* ticker object, channel object, buffer, creator's ref on the channel,
     * the ticker's ref on it, the owner's ref on the ticker, timer heap */
    expect_failing_sites(ticker_main, "leash_ticker_start", 6);
}

/* ------------------------------------------------------------- select */

enum { NCASES = 11, READY = 6 };

static int select_main(void *arg) {
    int *failed = arg; /* [0] select, [1] try_select, [2] blocking none ready */
    leash_chan *c[NCASES];
    int vals[NCASES];
    leash_case cs[NCASES];
    for (int i = 0; i < NCASES; i++) {
        c[i] = leash_chan_make(sizeof(int), 1);
        cs[i] = LEASH_RECV_CASE(c[i], &vals[i]);
    }
    for (int pass = 0; pass < 2; pass++) {
        CU_CHECK_EQ(leash_send(c[READY], &(int){77}), 0);
        int rc = 0;
        for (long n = 1; n <= MAX_SITES; n++) {
            alloc_test_fail(n);
            rc = pass ? leash_try_select(cs, NCASES) : leash_select(cs, NCASES);
            alloc_test_fail(0);
            if (rc >= 0)
                break;
            CU_CHECK_EQ(rc, LEASH_ENOMEM);
            CU_CHECK_EQ(leash_chan_len(c[READY]), 1); /* nothing consumed */
            failed[pass]++;
        }
        CU_CHECK_EQ(rc, READY);
        CU_CHECK_EQ(vals[READY], 77);
        CU_CHECK_EQ(cs[READY].ok, 1);
        CU_CHECK_EQ(leash_chan_len(c[READY]), 0);
    }
    /* Blocking select with nothing ready: each failure returns at once
     * instead of blocking; once it succeeds, a sender completes it. */
    int rc = 0;
    for (long n = 1; n <= MAX_SITES; n++) {
        alloc_test_fail(n);
        rc = leash_try_select(cs, NCASES); /* nothing ready: EAGAIN */
        alloc_test_fail(0);
        if (rc == LEASH_EAGAIN)
            break;
        CU_CHECK_EQ(rc, LEASH_ENOMEM);
    }
    CU_CHECK_EQ(rc, LEASH_EAGAIN);
    for (int i = 0; i < NCASES; i++)
        leash_release(c[i]);
    workload();
    return 0;
}

Test(alloc_fail, select_many_cases_each_site, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    int failed[3] = {0};
    cr_assert_eq(leash_run(select_main, failed), 0);
    CU_ASSERT_CLEAN();
    cr_log_info("select > 8 cases: %d failing sites, try_select %d", failed[0],
                failed[1]);
    /* poll order, lock order, and (blocking only) the waiter records */
    cr_assert_geq(failed[0], 3, "select: only %d sites", failed[0]);
    cr_assert_geq(failed[1], 2, "try_select: only %d sites", failed[1]);
}

static void late_sender(void *p) {
    leash_chan *c = p;
    leash_sleep(5 * CU_MS);
    CU_CHECK_EQ(leash_send(c, &(int){5}), 0);
}

/* A blocking select of > 8 cases whose waiter array cannot be allocated
 * fails instead of blocking, then blocks and completes normally. */
static int select_block_main(void *arg) {
    (void)arg;
    leash_chan *c[NCASES];
    int vals[NCASES];
    leash_case cs[NCASES];
    for (int i = 0; i < NCASES; i++) {
        c[i] = leash_chan_make(sizeof(int), 0);
        cs[i] = LEASH_RECV_CASE(c[i], &vals[i]);
    }
    for (long n = 1; n <= 3; n++) {
        alloc_test_fail(n);
        int rc = leash_select(cs, NCASES);
        alloc_test_fail(0);
        CU_CHECK_EQ(rc, LEASH_ENOMEM);
    }
    CU_CHECK(leash_go(late_sender, c[2]) > 0);
    CU_CHECK_EQ(leash_select(cs, NCASES), 2);
    CU_CHECK_EQ(vals[2], 5);
    for (int i = 0; i < NCASES; i++)
        leash_release(c[i]);
    workload();
    return 0;
}

Test(alloc_fail, select_blocking_many_cases, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    cr_assert_eq(leash_run(select_block_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* --------------------------------------------------------------- sleep */

/* The first timer on a worker grows its heap; if that fails, leash_sleep
 * still sleeps (it cannot report an error). */
static int sleep_main(void *arg) {
    (void)arg;
    int64_t t0 = leash_now();
    alloc_test_fail(1);
    leash_sleep(10 * CU_MS);
    alloc_test_fail(0);
    CU_CHECK(leash_now() - t0 >= 10 * CU_MS);
    t0 = leash_now();
    leash_sleep(5 * CU_MS);
    CU_CHECK(leash_now() - t0 >= 5 * CU_MS);
    workload();
    return 0;
}

Test(alloc_fail, sleep_timer_heap, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    cr_assert_eq(leash_run(sleep_main, NULL), 0);
    CU_ASSERT_CLEAN();
}
