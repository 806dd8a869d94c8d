/* SPDX-License-Identifier: MIT */
/*
 * test_select.c — leash_select / leash_try_select with Go's semantics
 * (the select section of include/leash.h): readiness rules (Go's test/chan/select3), uniform
 * choice among ready cases, NULL channels, closed channels, several cases
 * on one channel, waking by send / receive / close, more cases than the
 * on-stack fast path, timeouts with leash_after.
 *
 * Same harness as test_chan.c: CHECK() records failures from coroutines
 * and threads, finish() asserts on the test thread; blocking is detected
 * through the channel's waiter count (white-box, internal.h).
 */
#define _GNU_SOURCE 1
#include "chan_harness.h"

/* "Does fn(arg) block?" — runs it on a coroutine; true if it has not
 * returned after `ms` (it is then left blocked: the caller must unblock it
 * or accept a parked coroutine). "Never blocks" waits up to 10 s. */
typedef struct {
    void (*fn)(void *);
    void *arg;
    _Atomic int done;
} probe;

static void probe_body(void *p) {
    probe *pr = p;
    pr->fn(pr->arg);
    atomic_store(&pr->done, 1);
}

static bool blocks(probe *pr, int ms) {
    atomic_store(&pr->done, 0);
    go_ok(leash_go(probe_body, pr));
    leash_sleep(ms * MS);
    return !atomic_load(&pr->done);
}

static bool never_blocks(probe *pr) {
    atomic_store(&pr->done, 0);
    go_ok(leash_go(probe_body, pr));
    return WAIT_UNTIL(atomic_load(&pr->done), 10);
}

/* ------------------------------------------------------ readiness rules */

typedef struct {
    leash_chan *c;  /* may be NULL */
    int dir;
    int want;       /* expected result of the select */
} sel1;

static void select_one(void *arg) {
    sel1 *s = arg;
    int v = 1;
    leash_case k = {.ch = s->c, .dir = s->dir, .elem = &v, .size = sizeof v};
    int rc = leash_select(&k, 1);
    CHECK_EQ(rc, s->want);
}

static void select_two_one_nil(void *arg) {
    sel1 *s = arg;
    int v = 1, w = 2;
    leash_case k[2] = {LEASH_RECV_CASE((leash_chan *)NULL, &w),
                       {.ch = s->c, .dir = s->dir, .elem = &v,
                        .size = sizeof v}};
    int rc = leash_select(k, 2);
    CHECK_EQ(rc, s->want);
}

static void select_empty(void *arg) {
    (void)arg;
    leash_select(NULL, 0);
    note_fail(__FILE__, __LINE__, "leash_select(NULL, 0) returned", 0, 0);
}

static int select3_main(void *arg) {
    (void)arg;
    leash_chan *unbuf = leash_chan_make(sizeof(int), 0);
    leash_chan *buf = leash_chan_make(sizeof(int), 1);
    leash_chan *closed = leash_chan_make(sizeof(int), 0);
    leash_close(closed);

    /* NULL channels: never ready, whatever the direction. */
    probe p = {.fn = select_one, .arg = &(sel1){NULL, LEASH_RECV, -1}};
    CHECK(blocks(&p, 20));
    p.arg = &(sel1){NULL, LEASH_SEND, -1};
    CHECK(blocks(&p, 20));
    /* Empty select: blocks forever. */
    p = (probe){.fn = select_empty, .arg = NULL};
    CHECK(blocks(&p, 20));

    /* Unbuffered, nobody on the other side: blocks (we unblock it). */
    p = (probe){.fn = select_one, .arg = &(sel1){unbuf, LEASH_RECV, 0}};
    CHECK(blocks(&p, 20));
    int v = 5;
    CHECK_EQ(leash_send(unbuf, &v), 0);
    CHECK(WAIT_UNTIL(atomic_load(&p.done), 10));
    p = (probe){.fn = select_one, .arg = &(sel1){unbuf, LEASH_SEND, 0}};
    CHECK(blocks(&p, 20));
    CHECK_EQ(leash_recv(unbuf, &v), 0);
    CHECK(WAIT_UNTIL(atomic_load(&p.done), 10));

    /* Buffered with room: a send never blocks; then full: it blocks. */
    p = (probe){.fn = select_one, .arg = &(sel1){buf, LEASH_SEND, 0}};
    CHECK(never_blocks(&p));
    p = (probe){.fn = select_two_one_nil, .arg = &(sel1){buf, LEASH_SEND, 1}};
    CHECK(blocks(&p, 20));
    CHECK_EQ(leash_recv(buf, &v), 0); /* makes room: the select proceeds */
    CHECK(WAIT_UNTIL(atomic_load(&p.done), 10));
    /* Buffered with a value: a receive never blocks. */
    p = (probe){.fn = select_two_one_nil, .arg = &(sel1){buf, LEASH_RECV, 1}};
    CHECK(never_blocks(&p));

    /* Closed: a receive never blocks; a send fails (Go panics). */
    p = (probe){.fn = select_one, .arg = &(sel1){closed, LEASH_RECV, 0}};
    CHECK(never_blocks(&p));
    p = (probe){.fn = select_two_one_nil, .arg = &(sel1){closed, LEASH_RECV, 1}};
    CHECK(never_blocks(&p));
    p = (probe){.fn = select_one, .arg = &(sel1){closed, LEASH_SEND, LEASH_ECLOSED}};
    CHECK(never_blocks(&p));
    p = (probe){.fn = select_two_one_nil, .arg = &(sel1){closed, LEASH_SEND, LEASH_ECLOSED}};
    CHECK(never_blocks(&p));

    leash_release(unbuf);
    leash_release(buf);
    leash_release(closed);
    return 0;
}

Test(select, readiness_rules_select3, .timeout = TMO(20)) {
    run_main(select3_main, NULL);
}

Test(select, try_select_null_and_unready, .timeout = TMO(10)) {
    int v = 1, w = 2;
    leash_case nils[3] = {LEASH_RECV_CASE((leash_chan *)NULL, &v),
                          LEASH_SEND_CASE((leash_chan *)NULL, &w),
                          {.ch = NULL, .dir = LEASH_RECV, .elem = NULL}};
    cr_expect_eq(leash_try_select(nils, 3), LEASH_EAGAIN);
    cr_expect_eq(leash_try_select(NULL, 0), LEASH_EAGAIN);
    cr_expect_eq(leash_try_select(nils, 0), LEASH_EAGAIN);

    leash_chan *u = leash_chan_make(sizeof(int), 0);
    leash_chan *b = leash_chan_make(sizeof(int), 1);
    cr_assert(u && b);
    leash_case cs[4] = {LEASH_RECV_CASE(u, &v), LEASH_SEND_CASE(u, &w),
                        LEASH_RECV_CASE(b, &v),
                        LEASH_RECV_CASE((leash_chan *)NULL, &v)};
    v = 11;
    cr_expect_eq(leash_try_select(cs, 4), LEASH_EAGAIN,
                 "unbuffered both ways (never matches itself), empty buffer");
    cr_expect_eq(v, 11, "not-ready receive cases leave elem alone");
    cr_expect_eq(leash_chan_len(b), 0);

    /* Full buffer: its send case is not ready either. */
    cr_expect_eq(leash_send(b, &w), 0);
    cs[2] = LEASH_SEND_CASE(b, &w);
    cr_expect_eq(leash_try_select(cs, 4), LEASH_EAGAIN);
    cr_expect_eq(leash_chan_len(b), 1);
    cr_expect_eq(chan_waiters(u), 0, "try_select queues nothing");
    cr_expect_eq(chan_waiters(b), 0);

    /* The ready case is taken, whatever its position, beside NULLs. */
    for (int i = 0; i < 200; i++) {
        leash_case k[5] = {LEASH_RECV_CASE((leash_chan *)NULL, &v),
                           LEASH_SEND_CASE(u, &w),
                           LEASH_SEND_CASE((leash_chan *)NULL, &w),
                           LEASH_RECV_CASE(b, &v),
                           LEASH_RECV_CASE(u, &v)};
        v = 0;
        cr_assert_eq(leash_try_select(k, 5), 3);
        cr_assert_eq(k[3].ok, 1);
        cr_assert_eq(v, i == 0 ? 2 : i - 1);
        v = i;
        cr_assert_eq(leash_send(b, &v), 0);
        k[3] = LEASH_SEND_CASE(b, &v);
        cr_assert_eq(leash_try_select(k, 5), LEASH_EAGAIN);
    }
    leash_release(u);
    leash_release(b);
}

Test(select, try_select_ready_case, .timeout = TMO(10)) {
    leash_chan *b = leash_chan_make(sizeof(long), 2);
    cr_assert_not_null(b);
    long x = 77, y = 0;
    leash_case s = LEASH_SEND_CASE(b, &x);
    cr_expect_eq(leash_try_select(&s, 1), 0);
    cr_expect_eq(leash_chan_len(b), 1);
    x = 78; /* the value was copied at select time */
    leash_case r = LEASH_RECV_CASE(b, &y);
    r.ok = 42;
    cr_expect_eq(leash_try_select(&r, 1), 0);
    cr_expect_eq(r.ok, 1);
    cr_expect_eq(y, 77);
    cr_expect_eq(leash_try_select(&r, 1), LEASH_EAGAIN);
    cr_expect_eq(r.ok, 0);
    /* Blocking select on a ready case does not block. */
    cr_expect_eq(leash_select(&s, 1), 0);
    cr_expect_eq(leash_select(&r, 1), 0);
    cr_expect_eq(y, 78);
    /* Receive case with elem NULL discards. */
    cr_expect_eq(leash_select(&s, 1), 0);
    leash_case d = {.ch = b, .dir = LEASH_RECV, .elem = NULL, .size = 0};
    cr_expect_eq(leash_try_select(&d, 1), 0);
    cr_expect_eq(d.ok, 1);
    cr_expect_eq(leash_chan_len(b), 0);
    leash_release(b);
}

/* ------------------------------------------------------- uniform choice */

typedef struct {
    int ncases;
    int iters;
    bool blocking;
    int counts[128];
} uni_args;

/* Every case always ready: closed receives, roomy sends, full receives. */
static void uniform_run(void *arg) {
    uni_args *u = arg;
    leash_chan *ch[128];
    leash_case cs[128];
    int vals[128];
    memset(u->counts, 0, sizeof u->counts);
    for (int i = 0; i < u->ncases; i++) {
        switch (i % 3) {
        case 0: /* closed */
            ch[i] = leash_chan_make(sizeof(int), 0);
            leash_close(ch[i]);
            cs[i] = LEASH_RECV_CASE(ch[i], &vals[i]);
            break;
        case 1: /* room for every iteration */
            ch[i] = leash_chan_make(sizeof(int), (size_t)u->iters);
            cs[i] = LEASH_SEND_CASE(ch[i], &vals[i]);
            break;
        default: /* a value for every iteration */
            ch[i] = leash_chan_make(sizeof(int), (size_t)u->iters);
            for (int k = 0; k < u->iters; k++)
                leash_send(ch[i], &k);
            cs[i] = LEASH_RECV_CASE(ch[i], &vals[i]);
            break;
        }
    }
    for (int it = 0; it < u->iters; it++) {
        int rc = u->blocking ? leash_select(cs, (size_t)u->ncases)
                             : leash_try_select(cs, (size_t)u->ncases);
        if (!CHECK(rc >= 0 && rc < u->ncases))
            break;
        u->counts[rc]++;
    }
    for (int i = 0; i < u->ncases; i++)
        leash_release(ch[i]);
}

static void check_uniform(uni_args *u, double lo, double hi) {
    for (int i = 0; i < u->ncases; i++) {
        double f = (double)u->counts[i] / u->iters;
        cr_expect(f >= lo && f <= hi,
                  "case %d of %d chosen %d/%d times (%.3f, want %.2f..%.2f)",
                  i, u->ncases, u->counts[i], u->iters, f, lo, hi);
    }
}

static void uniform_coroutine(uni_args *u) {
    leash_chan *done = leash_chan_make(0, 1);
    cr_assert_not_null(done);
    go_ok(leash_go(uniform_run, u));
    cr_assert(WAIT_UNTIL(leash_num_coroutines() == 0, 60));
    leash_release(done);
    finish();
}

Test(select, uniform_two_cases, .timeout = TMO(30)) {
    /* On a thread (try and blocking) and on a coroutine. */
    uni_args u = {.ncases = 2, .iters = 10000};
    uniform_run(&u);
    check_uniform(&u, 0.35, 0.65);
    u.blocking = true;
    uniform_run(&u);
    check_uniform(&u, 0.35, 0.65);
    uniform_coroutine(&u);
    check_uniform(&u, 0.35, 0.65);
    u.blocking = false;
    uniform_coroutine(&u);
    check_uniform(&u, 0.35, 0.65);
}

Test(select, uniform_four_cases, .timeout = TMO(30)) {
    uni_args u = {.ncases = 4, .iters = 10000};
    uniform_run(&u);
    check_uniform(&u, 0.15, 0.35);
    u.blocking = true;
    uniform_coroutine(&u);
    check_uniform(&u, 0.15, 0.35);
}

Test(select, uniform_hundred_cases, .timeout = TMO(60)) {
    /* 20000 picks among 100: expected 200 each, sd 14. */
    uni_args u = {.ncases = 100, .iters = 20000, .blocking = true};
    uniform_coroutine(&u);
    check_uniform(&u, 0.006, 0.014);
}

/* --------------------------------------------- one channel, several cases */

Test(select, same_channel_several_recv_cases, .timeout = TMO(20)) {
    leash_chan *b = leash_chan_make(sizeof(int), 10000);
    cr_assert_not_null(b);
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(leash_send(b, &i), 0);
    int a = -1, c = -1, n[2] = {0, 0};
    for (int i = 0; i < 10000; i++) {
        leash_case cs[2] = {LEASH_RECV_CASE(b, &a), LEASH_RECV_CASE(b, &c)};
        a = c = -1;
        int rc = leash_select(cs, 2);
        cr_assert(rc == 0 || rc == 1, "rc %d", rc);
        n[rc]++;
        cr_assert_eq(rc == 0 ? a : c, i, "values in order, one per select");
        cr_assert_eq(rc == 0 ? c : a, -1, "the other case is untouched");
        cr_assert_eq(cs[rc].ok, 1);
        cr_assert_eq(cs[1 - rc].ok, 0);
    }
    cr_expect_eq(leash_chan_len(b), 0);
    cr_expect(n[0] > 3500 && n[1] > 3500, "counts %d %d", n[0], n[1]);
    leash_release(b);
}

typedef struct {
    leash_chan *c;
    int rounds;
    _Atomic int progress;
} dup_args;

/* Blocks on three receive cases of one unbuffered channel per round. */
static void dup_receiver(void *arg) {
    dup_args *d = arg;
    for (int r = 0; r < d->rounds; r++) {
        int v[3] = {-1, -1, -1};
        leash_case cs[3] = {LEASH_RECV_CASE(d->c, &v[0]),
                            LEASH_RECV_CASE(d->c, &v[1]),
                            LEASH_RECV_CASE(d->c, &v[2])};
        int rc = leash_select(cs, 3);
        if (!CHECK(rc >= 0 && rc < 3))
            return;
        CHECK_EQ(v[rc], r);
        CHECK_EQ(cs[rc].ok, 1);
        for (int i = 0; i < 3; i++)
            if (i != rc)
                CHECK_EQ(v[i], -1);
        atomic_store(&d->progress, r + 1);
    }
}

static int dup_block_main(void *arg) {
    (void)arg;
    dup_args d = {leash_chan_make(sizeof(int), 0), 300, 0};
    go_ok(leash_go(dup_receiver, &d, d.c));
    for (int r = 0; r < d.rounds; r++) {
        /* Wait for the select to be parked with its 3 sudogs. */
        if (!CHECK(WAIT_UNTIL(chan_waiters(d.c) == 3, 10)))
            break;
        CHECK_EQ(leash_send(d.c, &r), 0);
        if (!CHECK(WAIT_UNTIL(atomic_load(&d.progress) == r + 1, 10)))
            break;
        /* Between rounds: no stale sudog may look like a receiver. */
        if (r + 1 < d.rounds && chan_waiters(d.c) != 3) {
            int x = 0;
            CHECK_EQ(leash_try_send(d.c, &x), LEASH_EAGAIN);
        }
    }
    CHECK(WAIT_UNTIL(leash_num_coroutines() == 1, 10));
    CHECK_EQ(chan_waiters(d.c), 0);
    int x = 0;
    CHECK_EQ(leash_try_send(d.c, &x), LEASH_EAGAIN);
    leash_release(d.c);
    return 0;
}

Test(select, same_channel_several_cases_blocking, .timeout = TMO(30)) {
    run_main(dup_block_main, NULL);
}

/* Two send cases on one channel: the receiver gets the chosen one's value. */
static void dup_sender(void *arg) {
    dup_args *d = arg;
    for (int r = 0; r < d->rounds; r++) {
        int a = 2 * r, b = 2 * r + 1;
        leash_case cs[2] = {LEASH_SEND_CASE(d->c, &a),
                            LEASH_SEND_CASE(d->c, &b)};
        int rc = leash_select(cs, 2);
        if (!CHECK(rc == 0 || rc == 1))
            return;
        atomic_store(&d->progress, 2 * r + rc); /* the value sent */
    }
}

static int dup_send_main(void *arg) {
    (void)arg;
    dup_args d = {leash_chan_make(sizeof(int), 0), 500, -1};
    go_ok(leash_go(dup_sender, &d, d.c));
    int n[2] = {0, 0};
    for (int r = 0; r < d.rounds; r++) {
        int v = -1;
        CHECK_EQ(leash_recv(d.c, &v), 0);
        CHECK(v == 2 * r || v == 2 * r + 1);
        n[v & 1]++;
        CHECK(WAIT_UNTIL(atomic_load(&d.progress) == v, 10));
    }
    CHECK(n[0] > 0 && n[1] > 0);
    leash_release(d.c);
    return 0;
}

Test(select, same_channel_two_send_cases, .timeout = TMO(30)) {
    run_main(dup_send_main, NULL);
}

/* ------------------------------------ send and receive on one channel */

typedef struct {
    leash_chan *c;
    int id;
    int n;
    int sent, received;
    long long sum_received;
} sr_args;

static void send_recv_loop(void *arg) {
    sr_args *a = arg;
    for (int i = 0; i < a->n; i++) {
        int out = a->id, in = -1;
        leash_case cs[2] = {LEASH_SEND_CASE(a->c, &out),
                            LEASH_RECV_CASE(a->c, &in)};
        int rc = leash_select(cs, 2);
        if (rc == 0) {
            a->sent++;
        } else if (CHECK_EQ(rc, 1)) {
            CHECK_EQ(cs[1].ok, 1);
            CHECK(in != a->id); /* never matched with itself */
            a->received++;
            a->sum_received += in;
        } else {
            return;
        }
    }
}

static int send_recv_same_main(void *arg) {
    (void)arg;
    leash_chan *c = leash_chan_make(sizeof(int), 0);

    /* Alone, a select both ways on one unbuffered channel blocks. */
    int x = 1, y = 0;
    leash_case cs[2] = {LEASH_SEND_CASE(c, &x), LEASH_RECV_CASE(c, &y)};
    CHECK_EQ(leash_try_select(cs, 2), LEASH_EAGAIN);

    /* A partner receiving completes the send case, a partner sending the
     * receive case. */
    sr_args a = {c, 1, 1, 0, 0, 0};
    go_ok(leash_go(send_recv_loop, &a, c));
    CHECK(WAIT_UNTIL(chan_waiters(c) == 2, 10));
    int v = 0;
    CHECK_EQ(leash_recv(c, &v), 0);
    CHECK_EQ(v, 1);
    CHECK(WAIT_UNTIL(leash_num_coroutines() == 1, 10));
    CHECK_EQ(a.sent, 1);
    a = (sr_args){c, 1, 1, 0, 0, 0};
    go_ok(leash_go(send_recv_loop, &a, c));
    CHECK(WAIT_UNTIL(chan_waiters(c) == 2, 10));
    v = 5;
    CHECK_EQ(leash_send(c, &v), 0);
    CHECK(WAIT_UNTIL(leash_num_coroutines() == 1, 10));
    CHECK_EQ(a.received, 1);
    CHECK_EQ(a.sum_received, 5);
    CHECK_EQ(chan_waiters(c), 0);

    /* Two such selects pair up with each other every time. */
    enum { N = 3000 };
    sr_args p = {c, 100, N, 0, 0, 0}, q = {c, 200, N, 0, 0, 0};
    go_ok(leash_go(send_recv_loop, &p, c));
    go_ok(leash_go(send_recv_loop, &q, c));
    CHECK(WAIT_UNTIL(leash_num_coroutines() == 1, 30));
    CHECK_EQ(p.sent + p.received, N);
    CHECK_EQ(q.sent + q.received, N);
    CHECK_EQ(p.sent, q.received);
    CHECK_EQ(q.sent, p.received);
    CHECK_EQ(p.sum_received, 200LL * p.received);
    CHECK_EQ(q.sum_received, 100LL * q.received);
    CHECK_EQ(chan_waiters(c), 0);

    /* Buffered cap 1: empty -> only the send case is ready; full -> only
     * the receive case. */
    leash_chan *b = leash_chan_make(sizeof(int), 1);
    for (int i = 0; i < 100; i++) {
        x = i;
        y = -1;
        leash_case k[2] = {LEASH_SEND_CASE(b, &x), LEASH_RECV_CASE(b, &y)};
        CHECK_EQ(leash_select(k, 2), 0);
        CHECK_EQ(leash_select(k, 2), 1);
        CHECK_EQ(y, i);
    }
    leash_release(b);
    leash_release(c);
    return 0;
}

Test(select, send_and_recv_cases_on_one_channel, .timeout = TMO(30)) {
    run_main(send_recv_same_main, NULL);
}

/* --------------------------------------------------------------- closed */

Test(select, closed_recv_case, .timeout = TMO(10)) {
    leash_chan *u = leash_chan_make(sizeof(long), 0);
    leash_chan *b = leash_chan_make(sizeof(long), 2);
    leash_chan *idle = leash_chan_make(sizeof(long), 0);
    cr_assert(u && b && idle);
    long v = 9;
    cr_assert_eq(leash_send(b, &v), 0);
    leash_close(u);
    leash_close(b);

    long got = -1, other = -1;
    leash_case cs[2] = {LEASH_RECV_CASE(idle, &other),
                        LEASH_RECV_CASE(u, &got)};
    cs[1].ok = 1;
    cr_expect_eq(leash_select(cs, 2), 1);
    cr_expect_eq(cs[1].ok, 0);
    cr_expect_eq(got, 0, "zero value");
    cr_expect_eq(other, -1);
    got = -1;
    cr_expect_eq(leash_try_select(cs, 2), 1);
    cr_expect_eq(cs[1].ok, 0);
    cr_expect_eq(got, 0);

    /* Buffered: the value sent before close first (ok 1), then ok 0. */
    cs[1] = LEASH_RECV_CASE(b, &got);
    got = -1;
    cr_expect_eq(leash_select(cs, 2), 1);
    cr_expect_eq(cs[1].ok, 1);
    cr_expect_eq(got, 9);
    got = -1;
    cr_expect_eq(leash_select(cs, 2), 1);
    cr_expect_eq(cs[1].ok, 0);
    cr_expect_eq(got, 0);

    /* Discarding receive on a closed channel. */
    cs[1] = (leash_case){.ch = u, .dir = LEASH_RECV, .elem = NULL, .size = 0};
    cr_expect_eq(leash_select(cs, 2), 1);
    cr_expect_eq(cs[1].ok, 0);
    leash_release(u);
    leash_release(b);
    leash_release(idle);
}

Test(select, send_case_on_closed_channel, .timeout = TMO(10)) {
    leash_chan *u = leash_chan_make(sizeof(int), 0);
    leash_chan *b = leash_chan_make(sizeof(int), 3);
    leash_chan *idle = leash_chan_make(sizeof(int), 0);
    cr_assert(u && b && idle);
    leash_close(u);
    leash_close(b);
    int x = 1, y = 0;
    leash_case cs[2] = {LEASH_RECV_CASE(idle, &y), LEASH_SEND_CASE(u, &x)};
    cr_expect_eq(leash_select(cs, 2), LEASH_ECLOSED);
    cr_expect_eq(leash_try_select(cs, 2), LEASH_ECLOSED);
    cs[1] = LEASH_SEND_CASE(b, &x);
    cr_expect_eq(leash_select(cs, 2), LEASH_ECLOSED, "room, but closed");
    cr_expect_eq(leash_try_select(cs, 2), LEASH_ECLOSED);
    cr_expect_eq(leash_chan_len(b), 0);
    cr_expect_eq(chan_waiters(idle), 0);
    leash_release(u);
    leash_release(b);
    leash_release(idle);
}

/* ------------------------------------------------------- blocking wakes */

typedef struct {
    leash_chan *r1, *r2, *s3;
    int rc;
    int v1, v2, out3;
    int ok1, ok2;
    _Atomic int done;
} wake_args;

static void wake_selector(void *arg) {
    wake_args *w = arg;
    w->v1 = w->v2 = -1;
    leash_case cs[3];
    cs[0] = LEASH_RECV_CASE(w->r1, &w->v1);
    cs[1] = LEASH_RECV_CASE(w->r2, &w->v2);
    cs[2] = LEASH_SEND_CASE(w->s3, &w->out3);
    w->rc = leash_select(cs, 3);
    w->ok1 = cs[0].ok;
    w->ok2 = cs[1].ok;
    atomic_store(&w->done, 1);
}

enum { BY_SEND, BY_RECV, BY_CLOSE_RECV, BY_CLOSE_SEND };

static void wake_once(int how, bool thread) {
    wake_args w = {.r1 = leash_chan_make(sizeof(int), 0),
                   .r2 = leash_chan_make(sizeof(int), 0),
                   .s3 = leash_chan_make(sizeof(int), 0)};
    cr_assert(w.r1 && w.r2 && w.s3);
    w.out3 = 4242;
    pthread_t t = 0; /* set when `thread`; gcc -fsanitize=address cannot tell */
    if (thread)
        t = thread_go(wake_selector, &w);
    else
        go_ok(leash_go(wake_selector, &w));
    cr_assert(WAIT_UNTIL(chan_waiters(w.r1) == 1 && chan_waiters(w.r2) == 1 &&
                             chan_waiters(w.s3) == 1,
                         10),
              "select never parked");
    leash_sleep(5 * MS);
    cr_expect_eq(atomic_load(&w.done), 0);
    int v = 0;
    switch (how) {
    case BY_SEND:
        v = 17;
        cr_expect_eq(leash_send(w.r2, &v), 0);
        break;
    case BY_RECV:
        cr_expect_eq(leash_recv(w.s3, &v), 0);
        cr_expect_eq(v, 4242);
        break;
    case BY_CLOSE_RECV:
        cr_expect_eq(leash_close(w.r1), 0);
        break;
    case BY_CLOSE_SEND:
        cr_expect_eq(leash_close(w.s3), 0);
        break;
    }
    cr_assert(WAIT_UNTIL(atomic_load(&w.done), 10), "select not woken");
    if (thread)
        pthread_join(t, NULL);
    switch (how) {
    case BY_SEND:
        cr_expect_eq(w.rc, 1);
        cr_expect_eq(w.v2, 17);
        cr_expect_eq(w.ok2, 1);
        cr_expect_eq(w.v1, -1);
        break;
    case BY_RECV:
        cr_expect_eq(w.rc, 2);
        cr_expect(w.v1 == -1 && w.v2 == -1);
        break;
    case BY_CLOSE_RECV:
        cr_expect_eq(w.rc, 0);
        cr_expect_eq(w.ok1, 0);
        cr_expect_eq(w.v1, 0, "zero value on close");
        cr_expect_eq(w.v2, -1);
        break;
    case BY_CLOSE_SEND:
        cr_expect_eq(w.rc, LEASH_ECLOSED);
        break;
    }
    /* Every other sudog was unhooked. */
    cr_expect_eq(chan_waiters(w.r1), 0);
    cr_expect_eq(chan_waiters(w.r2), 0);
    cr_expect_eq(chan_waiters(w.s3), 0);
    int x = 1;
    if (how != BY_CLOSE_RECV)
        cr_expect_eq(leash_try_send(w.r1, &x), LEASH_EAGAIN);
    cr_expect_eq(leash_try_send(w.r2, &x), LEASH_EAGAIN);
    if (how != BY_CLOSE_SEND)
        cr_expect_eq(leash_try_recv(w.s3, &x), LEASH_EAGAIN);
    leash_release(w.r1);
    leash_release(w.r2);
    leash_release(w.s3);
    finish();
}

Test(select, woken_by_send, .timeout = TMO(20)) {
    wake_once(BY_SEND, false);
    wake_once(BY_SEND, true);
}
Test(select, woken_by_recv, .timeout = TMO(20)) {
    wake_once(BY_RECV, false);
    wake_once(BY_RECV, true);
}
Test(select, woken_by_close_of_recv_case, .timeout = TMO(20)) {
    wake_once(BY_CLOSE_RECV, false);
    wake_once(BY_CLOSE_RECV, true);
}
Test(select, woken_by_close_of_send_case, .timeout = TMO(20)) {
    wake_once(BY_CLOSE_SEND, false);
    wake_once(BY_CLOSE_SEND, true);
}

/* ------------------------------------------------------------ two cases */

/* Two cases on channels, neither nil, is the common select, which
 * select.c prepares on its own (order_two: one random bit orders them,
 * one compare orders their locks). Both cases always ready, in four
 * shapes: two receives with values; a send with room and a receive; two
 * receives on one channel; a closed receive and a receive with values.
 * Each case must be chosen about half the time, and each choice
 * independently of the one before. */
enum { TWO_RECV, TWO_MIX, TWO_SAME, TWO_CLOSED, TWO_SHAPES };

typedef struct {
    int shape;
    bool blocking;
    int iters;
    leash_chan *a, *b; /* made by two_setup (a == b for TWO_SAME) */
    int counts[2];
    int pairs[2][2]; /* [previous choice][this choice] */
    _Atomic int done; /* set last, for the test thread to read the rest */
} two_args;

static void two_setup(two_args *t) {
    size_t n = (size_t)t->iters;
    t->a = leash_chan_make(sizeof(int), t->shape == TWO_CLOSED ? 0 : n);
    t->b = t->shape == TWO_SAME ? t->a : leash_chan_make(sizeof(int), n);
    CHECK(t->a && t->b);
    for (int i = 0; i < t->iters; i++) {
        if (t->shape == TWO_RECV)
            CHECK_EQ(leash_send(t->a, &i), 0);
        CHECK_EQ(leash_send(t->b, &i), 0);
    }
    if (t->shape == TWO_CLOSED)
        CHECK_EQ(leash_close(t->a), 0);
}

static void two_teardown(two_args *t) {
    if (t->shape == TWO_MIX)
        CHECK_EQ(leash_chan_len(t->a), t->counts[0]);
    leash_release(t->a);
    if (t->b != t->a)
        leash_release(t->b);
}

static void two_loop(two_args *t) {
    int va, vb, out = 7, next_a = 0, next_b = 0, prev = -1;
    memset(t->counts, 0, sizeof t->counts);
    memset(t->pairs, 0, sizeof t->pairs);
    for (int i = 0; i < t->iters; i++) {
        leash_case cs[2] = {LEASH_RECV_CASE(t->a, &va),
                            LEASH_RECV_CASE(t->b, &vb)};
        if (t->shape == TWO_MIX)
            cs[0] = LEASH_SEND_CASE(t->a, &out);
        va = vb = -1;
        int rc = t->blocking ? leash_select(cs, 2) : leash_try_select(cs, 2);
        if (!CHECK(rc == 0 || rc == 1))
            break;
        t->counts[rc]++;
        if (prev >= 0)
            t->pairs[prev][rc]++;
        prev = rc;
        CHECK_EQ(cs[1 - rc].ok, 0);
        CHECK_EQ(rc == 0 ? vb : va, -1); /* the other case is untouched */
        if (rc == 1) {
            CHECK_EQ(vb, t->shape == TWO_SAME ? next_a++ : next_b++);
            CHECK_EQ(cs[1].ok, 1);
        } else if (t->shape == TWO_CLOSED) {
            CHECK_EQ(va, 0);
            CHECK_EQ(cs[0].ok, 0);
        } else if (t->shape != TWO_MIX) {
            CHECK_EQ(va, next_a++);
            CHECK_EQ(cs[0].ok, 1);
        }
    }
}

static void two_run(void *arg) {
    two_args *t = arg;
    bool own = !t->a; /* else borrowed: the caller made them */
    if (own)
        two_setup(t);
    two_loop(t);
    if (own)
        two_teardown(t);
    atomic_store(&t->done, 1);
}

static void two_check(const two_args *t, const char *where) {
    for (int i = 0; i < 2; i++) {
        double f = (double)t->counts[i] / t->iters;
        cr_expect(f >= 0.4 && f <= 0.6,
                  "%s, shape %d, blocking %d: case %d chosen %d/%d times",
                  where, t->shape, t->blocking, i, t->counts[i], t->iters);
        for (int j = 0; j < 2; j++) {
            double g = (double)t->pairs[i][j] / (t->iters - 1);
            cr_expect(g >= 0.15 && g <= 0.35,
                      "%s, shape %d, blocking %d: case %d after case %d "
                      "%d/%d times",
                      where, t->shape, t->blocking, j, i, t->pairs[i][j],
                      t->iters - 1);
        }
    }
}

/* 4000 picks: each case expected 2000 (sd 32), each ordered pair 1000
 * (sd 27); the bounds are more than ten sd away. On a thread, on a
 * coroutine holding the channels (the fast pass) and on one borrowing
 * them (every channel locked). */
Test(select, two_cases_uniform_and_independent, .timeout = TMO(60)) {
    for (int shape = 0; shape < TWO_SHAPES; shape++) {
        for (int blocking = 0; blocking < 2; blocking++) {
            two_args t = {.shape = shape, .blocking = blocking,
                          .iters = 4000};
            two_run(&t);
            finish();
            two_check(&t, "thread");

            t = (two_args){.shape = shape, .blocking = blocking,
                           .iters = 4000};
            go_ok(leash_go(two_run, &t));
            cr_assert(WAIT_UNTIL(atomic_load(&t.done), 60));
            finish();
            two_check(&t, "coroutine");

            t = (two_args){.shape = shape, .blocking = blocking,
                           .iters = 4000};
            two_setup(&t);
            go_ok(leash_go(two_run, &t));
            cr_assert(WAIT_UNTIL(atomic_load(&t.done), 60));
            two_teardown(&t);
            finish();
            two_check(&t, "borrowing coroutine");
        }
    }
}

/* A nil channel's case is never ready, in either position. */
Test(select, two_cases_with_a_nil_channel, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    leash_chan *idle = leash_chan_make(sizeof(int), 0);
    cr_assert(c && idle);
    leash_chan *nil = NULL;
    int v = 5, got = -1;
    for (int i = 0; i < 100; i++) {
        int pos = i & 1;
        leash_case cs[2];
        cs[1 - pos] = LEASH_RECV_CASE(nil, &got);
        cs[pos] = LEASH_SEND_CASE(c, &v); /* room */
        cr_assert_eq(leash_select(cs, 2), pos);
        cs[1 - pos] = LEASH_SEND_CASE(nil, &v);
        cs[pos] = LEASH_SEND_CASE(c, &v); /* full */
        cr_assert_eq(leash_try_select(cs, 2), LEASH_EAGAIN);
        cs[pos] = LEASH_RECV_CASE(c, &got);
        got = -1;
        cr_assert_eq(leash_try_select(cs, 2), pos);
        cr_assert_eq(got, 5);
        cr_assert_eq(cs[pos].ok, 1);
        cs[pos] = LEASH_RECV_CASE(idle, &got);
        cr_assert_eq(leash_try_select(cs, 2), LEASH_EAGAIN);
        cs[pos] = LEASH_RECV_CASE(nil, &got);
        cr_assert_eq(leash_try_select(cs, 2), LEASH_EAGAIN);
    }
    cr_expect_eq(chan_waiters(c), 0);
    cr_expect_eq(chan_waiters(idle), 0);
    leash_release(c);
    leash_release(idle);
}

/* A send case on a closed channel fails the select (Go panics) when it
 * is polled first: always when the other case is not ready, about half
 * the time when it is. */
Test(select, two_cases_send_on_closed_channel, .timeout = TMO(10)) {
    enum { N = 1000 };
    leash_chan *closed = leash_chan_make(sizeof(int), 0);
    leash_chan *full = leash_chan_make(sizeof(int), 2 * N);
    leash_chan *idle = leash_chan_make(sizeof(int), 0);
    cr_assert(closed && full && idle);
    cr_assert_eq(leash_close(closed), 0);
    for (int i = 0; i < 2 * N; i++)
        cr_assert_eq(leash_send(full, &i), 0);
    int x = 1, got = -1, next = 0;
    for (int pos = 0; pos < 2; pos++) {
        leash_case cs[2];
        cs[pos] = LEASH_SEND_CASE(closed, &x);
        cs[1 - pos] = LEASH_RECV_CASE(idle, &got);
        for (int i = 0; i < 100; i++) {
            cr_assert_eq(leash_select(cs, 2), LEASH_ECLOSED);
            cr_assert_eq(leash_try_select(cs, 2), LEASH_ECLOSED);
        }
        cs[1 - pos] = LEASH_RECV_CASE(full, &got);
        int nclosed = 0;
        for (int i = 0; i < N; i++) {
            got = -1;
            int rc = i & 1 ? leash_select(cs, 2) : leash_try_select(cs, 2);
            if (rc == LEASH_ECLOSED) {
                nclosed++;
                cr_assert_eq(got, -1);
                continue;
            }
            cr_assert_eq(rc, 1 - pos);
            cr_assert_eq(got, next++);
        }
        cr_expect(nclosed >= 300 && nclosed <= 700,
                  "send on closed chosen %d/%d times", nclosed, N);
    }
    cr_expect_eq(leash_chan_len(full), 2 * N - next);
    cr_expect_eq(chan_waiters(idle), 0);
    leash_release(closed);
    leash_release(full);
    leash_release(idle);
}

/* A two-case select that waits, woken through either case, with the
 * channels' addresses in either order against the cases' (the lock
 * order), on a coroutine holding them, one borrowing them, a thread. */
typedef struct {
    leash_case cs[2];
    int v0, out1;
    int rc;
    _Atomic int done;
} two_wait;

static void two_waiter(void *arg) {
    two_wait *w = arg;
    w->rc = leash_select(w->cs, 2);
    atomic_store(&w->done, 1);
}

static void two_wake(int how, bool swap, int where) {
    leash_chan *x = leash_chan_make(sizeof(int), 0);
    leash_chan *y = leash_chan_make(sizeof(int), 0);
    cr_assert(x && y);
    leash_chan *c0 = swap ? y : x, *c1 = swap ? x : y;
    two_wait w = {.v0 = -1, .out1 = 4242};
    w.cs[0] = LEASH_RECV_CASE(c0, &w.v0);
    w.cs[1] = LEASH_SEND_CASE(c1, &w.out1);
    pthread_t t = 0;
    if (where == 0)
        go_ok(leash_go(two_waiter, &w, c0, c1));
    else if (where == 1)
        go_ok(leash_go(two_waiter, &w));
    else
        t = thread_go(two_waiter, &w);
    cr_assert(WAIT_UNTIL(chan_waiters(c0) == 1 && chan_waiters(c1) == 1, 10),
              "select never parked");
    int v = 0;
    switch (how) {
    case BY_SEND:
        v = 17;
        cr_expect_eq(leash_send(c0, &v), 0);
        break;
    case BY_RECV:
        cr_expect_eq(leash_recv(c1, &v), 0);
        cr_expect_eq(v, 4242);
        break;
    case BY_CLOSE_RECV:
        cr_expect_eq(leash_close(c0), 0);
        break;
    case BY_CLOSE_SEND:
        cr_expect_eq(leash_close(c1), 0);
        break;
    }
    cr_assert(WAIT_UNTIL(atomic_load(&w.done), 10), "select not woken");
    if (where == 2)
        pthread_join(t, NULL);
    int want[] = {[BY_SEND] = 0, [BY_RECV] = 1, [BY_CLOSE_RECV] = 0,
                  [BY_CLOSE_SEND] = LEASH_ECLOSED};
    cr_expect_eq(w.rc, want[how], "how %d swap %d where %d", how, swap,
                 where);
    cr_expect_eq(w.v0, how == BY_SEND ? 17 : how == BY_CLOSE_RECV ? 0 : -1);
    cr_expect_eq(w.cs[0].ok, how == BY_SEND);
    cr_expect_eq(chan_waiters(c0), 0);
    cr_expect_eq(chan_waiters(c1), 0);
    cr_assert(WAIT_UNTIL(leash_num_coroutines() == 0, 10));
    leash_release(x);
    leash_release(y);
    finish();
}

Test(select, two_cases_woken_through_either, .timeout = TMO(30)) {
    for (int how = BY_SEND; how <= BY_CLOSE_SEND; how++)
        for (int swap = 0; swap < 2; swap++)
            for (int where = 0; where < 3; where++)
                two_wake(how, swap, where);
}

/* ------------------------------------------------------ macros, EINVAL */

Test(select, case_macros_assignable, .timeout = TMO(10)) {
    leash_chan *a = leash_chan_make(sizeof(double), 1);
    leash_chan *b = leash_chan_make(sizeof(short), 1);
    cr_assert(a && b);
    double d = 1.5;
    const short s = 7;
    short s2 = 0;
    leash_case cs[3];
    cs[0] = LEASH_SEND_CASE(a, &d);
    cs[1] = LEASH_SEND_CASE(b, &s); /* a pointer to const is fine */
    cs[2] = LEASH_RECV_CASE(b, &s2);
    cr_expect_eq(cs[0].ch, a);
    cr_expect_eq(cs[0].dir, LEASH_SEND);
    cr_expect_eq(cs[0].elem, &d);
    cr_expect_eq(cs[0].size, sizeof(double));
    cr_expect_eq(cs[0].ok, 0);
    cr_expect_eq(cs[1].size, sizeof(short));
    cr_expect_eq(cs[2].dir, LEASH_RECV);
    cr_expect_eq(cs[2].elem, &s2);
    cr_expect_eq(cs[2].size, sizeof(short));
    /* Either send may go first; then b is full and its receive is ready. */
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        int rc = leash_select(cs, 3);
        cr_assert(rc >= 0 && rc < 3, "rc %d", rc);
        seen |= 1 << rc;
        cs[rc].ch = NULL; /* disable it, Go's nil-channel idiom */
    }
    cr_expect_eq(seen, 7);
    cr_expect_eq(s2, 7);
    cr_expect_eq(leash_chan_len(a), 1);
    leash_release(a);
    leash_release(b);
}

Test(select, invalid_cases, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(sizeof(int), 4);
    leash_chan *dead = leash_chan_make(sizeof(int), 0);
    cr_assert(c && dead);
    leash_release(dead);
    int v = 3;
    long l = 0;
    cr_assert_eq(leash_send(c, &v), 0);
    static uint64_t junk[64];
    memset(junk, 0x33, sizeof junk);
    leash_ticker *tk = leash_ticker_start(SEC);
    cr_assert_not_null(tk);

    leash_case bad[] = {
        {.ch = c, .dir = 0, .elem = &v, .size = sizeof v},
        {.ch = c, .dir = 3, .elem = &v, .size = sizeof v},
        {.ch = c, .dir = -1, .elem = &v, .size = sizeof v},
        {.ch = NULL, .dir = 7, .elem = &v, .size = sizeof v},
        LEASH_SEND_CASE(c, &l),        /* wrong size */
        LEASH_RECV_CASE(c, &l),        /* wrong size */
        {.ch = c, .dir = LEASH_SEND, .elem = NULL, .size = sizeof v},
        {.ch = c, .dir = LEASH_SEND, .elem = NULL, .size = 0},
        LEASH_RECV_CASE((leash_chan *)junk, &v),
        LEASH_RECV_CASE((leash_chan *)((char *)junk + 4), &v),
        LEASH_SEND_CASE((leash_chan *)junk, &v),
        LEASH_RECV_CASE((leash_chan *)tk, &v),
        LEASH_RECV_CASE(dead, &v),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* A ready case first: the bad one must still be rejected, and
         * nothing consumed ... */
        leash_case cs[2] = {LEASH_RECV_CASE(c, &v), bad[i]};
        cr_expect_eq(leash_try_select(cs, 2), LEASH_EINVAL, "case %zu", i);
        cr_expect_eq(leash_select(cs, 2), LEASH_EINVAL, "case %zu", i);
        cr_expect_eq(leash_select(&cs[1], 1), LEASH_EINVAL, "case %zu", i);
        /* ... and after it (both orders of a two-case select). */
        leash_case rev[2] = {bad[i], LEASH_RECV_CASE(c, &v)};
        cr_expect_eq(leash_try_select(rev, 2), LEASH_EINVAL, "case %zu", i);
        cr_expect_eq(leash_select(rev, 2), LEASH_EINVAL, "case %zu", i);
        cr_expect_eq(leash_chan_len(c), 1, "case %zu consumed a value", i);
    }
    cr_expect_eq(leash_select(NULL, 1), LEASH_EINVAL);
    cr_expect_eq(leash_try_select(NULL, 3), LEASH_EINVAL);
    /* A receive case with elem NULL takes any size. */
    leash_case d = {.ch = c, .dir = LEASH_RECV, .elem = NULL, .size = 999};
    cr_expect_eq(leash_try_select(&d, 1), 0);
    cr_expect_eq(leash_chan_len(c), 0);
    leash_ticker_stop(tk);
    leash_release(c);
}

/* ------------------------------------------------------- blocks forever */

static _Atomic int forever_returned;

static void empty_select_forever(void *arg) {
    (void)arg;
    leash_select(NULL, 0);
    atomic_fetch_add(&forever_returned, 1);
}

static void nil_select_forever(void *arg) {
    (void)arg;
    int v;
    leash_case cs[2] = {LEASH_RECV_CASE((leash_chan *)NULL, &v),
                        LEASH_SEND_CASE((leash_chan *)NULL, &v)};
    leash_select(cs, 2);
    atomic_fetch_add(&forever_returned, 1);
}

static void nil_select_many_forever(void *arg) { /* > 8 cases path */
    (void)arg;
    int v;
    leash_case cs[20];
    for (int i = 0; i < 20; i++)
        cs[i] = LEASH_RECV_CASE((leash_chan *)NULL, &v);
    leash_select(cs, 20);
    atomic_fetch_add(&forever_returned, 1);
}

static int forever_main(void *arg) {
    (void)arg;
    size_t base = leash_num_coroutines();
    go_ok(leash_go(empty_select_forever, NULL));
    go_ok(leash_go(nil_select_forever, NULL));
    go_ok(leash_go(nil_select_many_forever, NULL));
    pthread_t t = thread_go(empty_select_forever, NULL);
    pthread_detach(t);
    for (int i = 0; i < 10; i++) {
        leash_sleep(10 * MS);
        leash_yield();
    }
    CHECK_EQ(leash_num_coroutines(), base + 3);
    CHECK_EQ(atomic_load(&forever_returned), 0);
    /* The rest of the runtime keeps working. */
    leash_chan *c = leash_after(5 * MS);
    int64_t when = 0;
    CHECK_EQ(leash_recv(c, &when), 0);
    CHECK(when > 0);
    leash_release(c);
    leash_sleep(30 * MS);
    CHECK_EQ(leash_num_coroutines(), base + 3);
    CHECK_EQ(atomic_load(&forever_returned), 0);
    return 0;
}

Test(select, zero_cases_blocks_forever, .timeout = TMO(20)) {
    run_main(forever_main, NULL);
}

/* ------------------------------------------------------------ many cases */

typedef struct {
    leash_chan **chs;
    int n;
    int rounds;
    int *order; /* which channel the partner sends on, per round */
} many_args;

static void many_sender(void *arg) {
    many_args *m = arg;
    for (int r = 0; r < m->rounds; r++) {
        int v = r * 1000 + m->order[r];
        CHECK_EQ(leash_send(m->chs[m->order[r]], &v), 0);
    }
}

static int many_main(void *arg) {
    (void)arg;
    enum { N = 100, R = 300 };
    leash_chan *chs[N];
    int order[R];
    for (int i = 0; i < N; i++)
        chs[i] = leash_chan_make(sizeof(int), 0);
    uint32_t x = 12345;
    for (int r = 0; r < R; r++) {
        x = x * 1103515245u + 12345u;
        order[r] = (int)((x >> 16) % N);
    }
    many_args m = {chs, N, R, order};
    go_ok(leash_go(many_sender, &m));
    int vals[N];
    leash_case cs[N];
    for (int r = 0; r < R; r++) {
        for (int i = 0; i < N; i++) {
            vals[i] = -1;
            cs[i] = LEASH_RECV_CASE(chs[i], &vals[i]);
        }
        int rc = leash_select(cs, N);
        if (!CHECK_EQ(rc, order[r]))
            break;
        CHECK_EQ(vals[rc], r * 1000 + rc);
        CHECK_EQ(cs[rc].ok, 1);
    }
    CHECK(WAIT_UNTIL(leash_num_coroutines() == 1, 10));
    for (int i = 0; i < N; i++)
        CHECK_EQ(chan_waiters(chs[i]), 0);

    /* try_select with 100 cases, exactly one ready (a closed one). */
    for (int k = 0; k < N; k += 7) {
        leash_chan *cl = leash_chan_make(sizeof(int), 0);
        leash_close(cl);
        leash_chan *keep = chs[k];
        cs[k] = LEASH_RECV_CASE(cl, &vals[k]);
        CHECK_EQ(leash_try_select(cs, N), k);
        CHECK_EQ(cs[k].ok, 0);
        cs[k] = LEASH_RECV_CASE(keep, &vals[k]);
        CHECK_EQ(leash_try_select(cs, N), LEASH_EAGAIN);
        leash_release(cl);
    }
    /* 100 cases over 10 channels (duplicates), send cases, buffered. */
    leash_chan *few[10];
    for (int i = 0; i < 10; i++)
        few[i] = leash_chan_make(sizeof(int), 1);
    int sv[N];
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < N; i++) {
            sv[i] = i;
            cs[i] = LEASH_SEND_CASE(few[i % 10], &sv[i]);
        }
        int rc = leash_select(cs, N);
        if (!CHECK(rc >= 0 && rc < N))
            break;
        int got = -1;
        CHECK_EQ(leash_try_recv(few[rc % 10], &got), 0);
        CHECK_EQ(got, rc);
        for (int i = 0; i < 10; i++)
            CHECK_EQ(leash_chan_len(few[i]), 0);
    }
    for (int i = 0; i < 10; i++)
        leash_release(few[i]);
    for (int i = 0; i < N; i++)
        leash_release(chs[i]);
    return 0;
}

Test(select, more_than_eight_cases, .timeout = TMO(30)) {
    run_main(many_main, NULL);
}

/* ------------------------------------------------------------- timeouts */

static void late_sender(void *arg) {
    leash_sleep(20 * MS);
    int v = 99;
    CHECK_EQ(leash_send((leash_chan *)arg, &v), 0);
}

static int timeout_main(void *arg) {
    (void)arg;
    leash_chan *never = leash_chan_make(sizeof(int), 0);
    int v = -1;
    int64_t t0 = leash_now(), fired = 0;
    leash_chan *to = leash_after(30 * MS);
    leash_case cs[2] = {LEASH_RECV_CASE(never, &v),
                        LEASH_RECV_CASE(to, &fired)};
    CHECK_EQ(leash_select(cs, 2), 1);
    int64_t t1 = leash_now();
    CHECK_EQ(cs[1].ok, 1);
    CHECK(t1 - t0 >= 30 * MS);
    CHECK(fired >= t0 + 30 * MS && fired <= t1);
    CHECK_EQ(v, -1);
    CHECK_EQ(chan_waiters(never), 0);
    leash_release(to);

    /* A value that arrives before the timeout wins. */
    go_ok(leash_go(late_sender, never, never));
    to = leash_after(10 * SEC);
    cs[1] = LEASH_RECV_CASE(to, &fired);
    t0 = leash_now();
    CHECK_EQ(leash_select(cs, 2), 0);
    CHECK(leash_now() - t0 < 5 * SEC);
    CHECK_EQ(v, 99);
    CHECK_EQ(chan_waiters(to), 0);
    leash_release(to);

    /* A receive loop bounded by a deadline (Go's for/select/time.After). */
    leash_chan *ticks = leash_chan_make(sizeof(int), 0);
    to = leash_after(50 * MS);
    int got = 0;
    for (bool stop = false; !stop;) {
        leash_case k[2] = {LEASH_RECV_CASE(ticks, &v),
                           LEASH_RECV_CASE(to, &fired)};
        int rc = leash_select(k, 2);
        if (rc == 1)
            stop = true;
        else
            got++;
    }
    CHECK_EQ(got, 0);
    leash_release(to);
    leash_release(ticks);
    leash_release(never);
    return 0;
}

Test(select, with_after_timeout, .timeout = TMO(20)) {
    run_main(timeout_main, NULL);
}

/* From a plain thread too. */
Test(select, timeout_on_thread, .timeout = TMO(20)) {
    leash_chan *never = leash_chan_make(sizeof(int), 0);
    cr_assert_not_null(never);
    int v = -1;
    int64_t fired = 0, t0 = leash_now();
    leash_chan *to = leash_after(20 * MS);
    leash_case cs[2] = {LEASH_RECV_CASE(never, &v),
                        LEASH_RECV_CASE(to, &fired)};
    cr_expect_eq(leash_select(cs, 2), 1);
    cr_expect(leash_now() - t0 >= 20 * MS);
    cr_expect(fired >= t0 + 20 * MS);
    cr_expect_eq(chan_waiters(never), 0);
    leash_release(to);
    leash_release(never);
}

/* ------------------------------------------- borrowed channels, zombies */

/* A coroutine may borrow a channel (no reference of its own) while a
 * lender holds one. Once the lender's send or close has completed the
 * borrower's select, the lender may drop its reference at once: the
 * borrower's select must finish without touching freed channel memory
 * (memory is recycled through per-worker and global free lists, whose
 * link overlays the channel's lock). */
typedef struct {
    leash_chan *c, *other;
    int v, rc, ok;
    _Atomic int done;
} borrow_args;

static void borrower_select(void *arg) {
    borrow_args *b = arg;
    int d;
    leash_case cs[2] = {LEASH_RECV_CASE(b->c, &b->v),
                        LEASH_RECV_CASE(b->other, &d)};
    b->rc = leash_select(cs, b->other ? 2 : 1);
    b->ok = cs[0].ok;
    atomic_store(&b->done, 1);
}

static void borrower_recv(void *arg) {
    borrow_args *b = arg;
    b->rc = leash_recv(b->c, &b->v);
    b->ok = b->rc == 0;
    atomic_store(&b->done, 1);
}

static int borrowed_main(void *arg) {
    bool from_thread = arg != NULL;
    leash_chan *other = leash_chan_make(sizeof(int), 0);
    for (int round = 0; round < 200; round++) {
        /* Churn the free lists so a freed channel's link is non-NULL. */
        leash_chan *junk[3];
        for (int i = 0; i < 3; i++)
            junk[i] = leash_chan_make(sizeof(int), (size_t)i);
        for (int i = 0; i < 3; i++)
            leash_release(junk[i]);
        int how = round % 4; /* 0/1: send, 2/3: close; odd: plain recv */
        borrow_args b = {.c = leash_chan_make(sizeof(int), 0),
                         .other = (round & 8) ? other : NULL,
                         .v = -1};
        go_ok(leash_go(how & 1 ? borrower_recv : borrower_select, &b));
        if (!CHECK(WAIT_UNTIL(chan_waiters(b.c) == 1, 10)))
            break;
        if (how < 2) {
            int v = round;
            CHECK_EQ(leash_send(b.c, &v), 0);
        } else {
            CHECK_EQ(leash_close(b.c), 0);
        }
        leash_release(b.c); /* the lender's (only) reference */
        if (!CHECK(WAIT_UNTIL(atomic_load(&b.done), 5))) {
            fprintf(stderr, "borrowed: round %d (how %d, thread %d) hangs\n",
                    round, how, from_thread);
            break;
        }
        if (how < 2) {
            CHECK_EQ(b.rc, 0);
            CHECK_EQ(b.v, round);
            CHECK_EQ(b.ok, 1);
        } else {
            CHECK_EQ(b.rc, (how & 1) ? LEASH_ECLOSED : 0);
            CHECK_EQ(b.v, 0);
            CHECK_EQ(b.ok, 0);
        }
        CHECK(WAIT_UNTIL(leash_num_coroutines() == (from_thread ? 0 : 1), 10));
    }
    CHECK_EQ(chan_waiters(other), 0);
    leash_release(other);
    return 0;
}

Test(select, borrowed_channel_released_after_completing_op,
     .timeout = TMO(30)) {
    run_main(borrowed_main, NULL);
}

Test(select, borrowed_channel_released_after_completing_op_thread,
     .timeout = TMO(30)) {
    cr_expect_eq(borrowed_main((void *)1), 0);
    finish();
}

/* The last reference dropped while a select still waits on the channel
 * (a zombie): the API sees it dead, the select is woken by another case
 * and unhooks itself; later channels work normally. */
static int zombie_main(void *arg) {
    (void)arg;
    for (int round = 0; round < 100; round++) {
        leash_chan *keep = leash_chan_make(sizeof(int), 0);
        borrow_args b = {.c = leash_chan_make(sizeof(int), 0),
                         .other = keep, .v = -1};
        go_ok(leash_go(borrower_select, &b, keep));
        if (!CHECK(WAIT_UNTIL(chan_waiters(keep) == 1, 10)))
            break;
        leash_release(b.c);
        int v = 1;
        CHECK_EQ(leash_send(b.c, &v), LEASH_EINVAL);
        CHECK_EQ(leash_close(b.c), LEASH_EINVAL);
        CHECK_EQ(leash_send(keep, &v), 0);
        CHECK(WAIT_UNTIL(atomic_load(&b.done), 10));
        CHECK_EQ(b.rc, 1);
        CHECK(WAIT_UNTIL(leash_num_coroutines() == 1, 10));
        /* Fresh channels (possibly the recycled zombie) work. */
        leash_chan *n1 = leash_chan_make(sizeof(int), 1);
        leash_chan *n2 = leash_chan_make(sizeof(int), 0);
        CHECK_EQ(leash_send(n1, &v), 0);
        CHECK_EQ(leash_chan_len(n1), 1);
        CHECK_EQ(chan_waiters(n1), 0);
        CHECK_EQ(chan_waiters(n2), 0);
        CHECK_EQ(leash_try_send(n2, &v), LEASH_EAGAIN);
        leash_release(n1);
        leash_release(n2);
        leash_release(keep);
    }
    return 0;
}

Test(select, channel_released_while_select_waits, .timeout = TMO(30)) {
    run_main(zombie_main, NULL);
}
