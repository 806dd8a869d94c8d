/* SPDX-License-Identifier: MIT */
/*
 * test_chan.c — channels: Go's semantics for send, receive, close, nil
 * channels, buffering and element sizes (the channel section of include/leash.h).
 *
 * Checks made inside coroutines or helper threads never call Criterion's
 * assertions (they longjmp on failure, which is only valid on the test's
 * own thread): they record the first failure with CHECK() and the test
 * thread asserts at the end (finish()).
 *
 * "Is it blocked yet?" is answered deterministically where it matters
 * (FIFO order, close waking waiters) by reading the channel's waiter count
 * under its lock (white-box: internal.h). "It stays blocked" is checked
 * after a short sleep: a slow machine can only make such a check pass
 * vacuously, never fail spuriously.
 */
#define _GNU_SOURCE 1
#include "chan_harness.h"

/* ------------------------------------------------------- make, len, cap */

Test(chan, make_len_cap, .timeout = TMO(10)) {
    leash_chan *u = leash_chan_make(sizeof(int), 0);
    leash_chan *b = leash_chan_make(sizeof(int), 7);
    leash_chan *s = leash_chan_make(0, 3);
    cr_assert(u && b && s);
    cr_expect_eq(leash_chan_cap(u), 0);
    cr_expect_eq(leash_chan_len(u), 0);
    cr_expect_eq(leash_chan_cap(b), 7);
    cr_expect_eq(leash_chan_len(b), 0);
    cr_expect_eq(leash_chan_cap(s), 3);
    int v = 1;
    cr_expect_eq(leash_send(b, &v), 0);
    cr_expect_eq(leash_send(b, &v), 0);
    cr_expect_eq(leash_chan_len(b), 2);
    cr_expect_eq(leash_chan_cap(b), 7);
    cr_expect_eq(leash_send_n(s, NULL, 0), 0);
    cr_expect_eq(leash_chan_len(s), 1);

    /* len/cap on NULL or on something that is not a channel. */
    _Alignas(64) static unsigned char junk[512];
    memset(junk, 0x5a, sizeof junk);
    cr_expect_eq(leash_chan_len(NULL), LEASH_EINVAL);
    cr_expect_eq(leash_chan_cap(NULL), LEASH_EINVAL);
    cr_expect_eq(leash_chan_len((leash_chan *)junk), LEASH_EINVAL);
    cr_expect_eq(leash_chan_cap((leash_chan *)junk), LEASH_EINVAL);
    cr_expect_eq(leash_chan_len((leash_chan *)(junk + 1)), LEASH_EINVAL);
    cr_expect_eq(leash_chan_cap((leash_chan *)(junk + 8)), LEASH_EINVAL);
    leash_ticker *tk = leash_ticker_start(SEC);
    cr_assert_not_null(tk);
    cr_expect_eq(leash_chan_len((leash_chan *)tk), LEASH_EINVAL,
                 "a ticker is not a channel");
    cr_expect_eq(leash_chan_cap((leash_chan *)tk), LEASH_EINVAL);
    cr_expect_eq(leash_send((leash_chan *)tk, &v), LEASH_EINVAL);
    cr_expect_eq(leash_recv((leash_chan *)tk, &v), LEASH_EINVAL);
    cr_expect_eq(leash_close((leash_chan *)tk), LEASH_EINVAL);
    leash_ticker_stop(tk);
    cr_expect_eq(leash_send((leash_chan *)junk, &v), LEASH_EINVAL);
    cr_expect_eq(leash_recv((leash_chan *)junk, &v), LEASH_EINVAL);
    cr_expect_eq(leash_try_send((leash_chan *)junk, &v), LEASH_EINVAL);
    cr_expect_eq(leash_try_recv((leash_chan *)junk, &v), LEASH_EINVAL);

    leash_release(u);
    leash_release(b);
    leash_release(s);
}

Test(chan, make_absurd_sizes, .timeout = TMO(10)) {
    cr_expect_null(leash_chan_make((64u << 10) + 1, 0), "elem > 64 KiB");
    cr_expect_null(leash_chan_make((64u << 10) + 1, 1));
    cr_expect_null(leash_chan_make(SIZE_MAX, 0));
    cr_expect_null(leash_chan_make(SIZE_MAX / 2, 2));
    cr_expect_null(leash_chan_make(sizeof(int), SIZE_MAX), "cap overflows");
    cr_expect_null(leash_chan_make(8, SIZE_MAX / 4 + 1));
    cr_expect_null(leash_chan_make(1, (size_t)INT32_MAX + 1),
                   "cap must fit leash_chan_cap's int");
    cr_expect_null(leash_chan_make(0, SIZE_MAX));

    /* The limit itself is fine: 64 KiB elements, buffered and not. */
    size_t big = 64u << 10;
    unsigned char *in = malloc(big), *out = malloc(big);
    cr_assert(in && out);
    for (size_t i = 0; i < big; i++)
        in[i] = (unsigned char)(i * 7 + 3);
    leash_chan *b = leash_chan_make(big, 2);
    cr_assert_not_null(b);
    cr_expect_eq(leash_send_n(b, in, big), 0);
    cr_expect_eq(leash_try_send_n(b, in, big), 0);
    cr_expect_eq(leash_try_send_n(b, in, big), LEASH_EAGAIN);
    memset(out, 0, big);
    cr_expect_eq(leash_recv_n(b, out, big), 0);
    cr_expect(memcmp(in, out, big) == 0);
    leash_release(b);
    free(in);
    free(out);
}

/* A 64 KiB element handed directly between a thread and a coroutine
 * (the value lives on the heap: coroutine stacks are 64 KiB). */
static void big_sender(void *arg) {
    leash_chan *c = arg;
    size_t big = 64u << 10;
    unsigned char *buf = malloc(big);
    if (!CHECK(buf))
        return;
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < big; i++)
            buf[i] = (unsigned char)(i + (size_t)round);
        CHECK_EQ(leash_send_n(c, buf, big), 0);
    }
    free(buf);
}

Test(chan, big_elements_unbuffered, .timeout = TMO(10)) {
    size_t big = 64u << 10;
    leash_chan *c = leash_chan_make(big, 0);
    cr_assert_not_null(c);
    go_ok(leash_go(big_sender, c, c));
    unsigned char *buf = malloc(big);
    cr_assert_not_null(buf);
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(leash_recv_n(c, buf, big), 0);
        size_t bad = 0;
        for (size_t i = 0; i < big; i++)
            bad += buf[i] != (unsigned char)(i + (size_t)round);
        cr_expect_eq(bad, 0, "round %d: %zu bytes differ", round, bad);
    }
    free(buf);
    leash_release(c);
    finish();
}

/* ------------------------------------------------------ send and receive */

typedef struct {
    leash_chan *in, *out;
    int n;
} echo_args;

static void echo(void *arg) {
    echo_args *e = arg;
    for (;;) {
        long v;
        int rc = leash_recv(e->in, &v);
        if (rc == LEASH_ECLOSED)
            break;
        if (!CHECK_EQ(rc, 0))
            break;
        v = v * 2 + 1;
        if (!CHECK_EQ(leash_send(e->out, &v), 0))
            break;
    }
    leash_close(e->out);
}

static int echo_main(void *arg) {
    size_t cap = (size_t)(uintptr_t)arg;
    echo_args e = {leash_chan_make(sizeof(long), cap),
                   leash_chan_make(sizeof(long), cap), 0};
    if (!CHECK(e.in && e.out))
        return 1;
    go_ok(leash_go(echo, &e, e.in, e.out));
    for (long i = 0; i < 2000; i++) {
        long v = i, r = -1;
        CHECK_EQ(leash_send(e.in, &v), 0);
        CHECK_EQ(leash_recv(e.out, &r), 0);
        CHECK_EQ(r, 2 * i + 1);
    }
    CHECK_EQ(leash_close(e.in), 0);
    long r = 77;
    CHECK_EQ(leash_recv(e.out, &r), LEASH_ECLOSED);
    CHECK_EQ(r, 0);
    leash_release(e.in);
    leash_release(e.out);
    return 0;
}

Test(chan, unbuffered_ping_pong, .timeout = TMO(20)) {
    run_main(echo_main, (void *)(uintptr_t)0);
}

Test(chan, buffered_ping_pong, .timeout = TMO(20)) {
    run_main(echo_main, (void *)(uintptr_t)3);
}

/* An unbuffered send completes only when a receiver takes the value. */
typedef struct {
    leash_chan *c;
    _Atomic int sent;
} rv_args;

static void rendezvous_sender(void *arg) {
    rv_args *a = arg;
    int v = 42;
    CHECK_EQ(leash_send(a->c, &v), 0);
    atomic_store(&a->sent, 1);
}

static int rendezvous_main(void *arg) {
    (void)arg;
    rv_args a = {leash_chan_make(sizeof(int), 0), 0};
    go_ok(leash_go(rendezvous_sender, &a, a.c));
    CHECK(WAIT_UNTIL(chan_waiters(a.c) == 1, 10));
    leash_sleep(20 * MS);
    CHECK_EQ(atomic_load(&a.sent), 0); /* nobody received yet */
    CHECK_EQ(leash_chan_len(a.c), 0);
    int v = 0;
    CHECK_EQ(leash_recv(a.c, &v), 0);
    CHECK_EQ(v, 42);
    CHECK(WAIT_UNTIL(atomic_load(&a.sent) == 1, 10));
    leash_release(a.c);
    return 0;
}

Test(chan, unbuffered_send_waits_for_receiver, .timeout = TMO(20)) {
    run_main(rendezvous_main, NULL);
}

Test(chan, buffered_wraparound_order, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(sizeof(uint64_t), 3);
    cr_assert_not_null(c);
    uint64_t next_in = 0, next_out = 0;
    /* Fill and drain by different amounts so the ring wraps at every
     * offset. */
    for (int round = 0; round < 300; round++) {
        int fill = 1 + round % 3, drain = 1 + (round * 7) % 3;
        for (int i = 0; i < fill; i++) {
            int rc = leash_try_send(c, &next_in);
            if (rc == LEASH_EAGAIN) {
                cr_expect_eq(leash_chan_len(c), 3);
                break;
            }
            cr_assert_eq(rc, 0);
            next_in++;
        }
        cr_expect_eq((uint64_t)leash_chan_len(c), next_in - next_out);
        for (int i = 0; i < drain; i++) {
            uint64_t v = 999;
            int rc = leash_try_recv(c, &v);
            if (rc == LEASH_EAGAIN) {
                cr_expect_eq(next_in, next_out);
                break;
            }
            cr_assert_eq(rc, 0);
            cr_assert_eq(v, next_out, "round %d: got %lu want %lu", round,
                         (unsigned long)v, (unsigned long)next_out);
            next_out++;
        }
    }
    leash_release(c);
}

/* ----------------------------------------------------- element sizes */

Test(chan, size_checked_macros, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(sizeof(int), 2);
    cr_assert_not_null(c);
    int i = 5;
    short sh = 1;
    long long ll = 2;
    char ch = 3;
    cr_expect_eq(leash_send(c, &sh), LEASH_EINVAL);
    cr_expect_eq(leash_send(c, &ll), LEASH_EINVAL);
    cr_expect_eq(leash_try_send(c, &ch), LEASH_EINVAL);
    cr_expect_eq(leash_send_n(c, &i, 0), LEASH_EINVAL);
    cr_expect_eq(leash_send_n(c, &i, 8), LEASH_EINVAL);
    cr_expect_eq(leash_chan_len(c), 0, "a rejected send enqueues nothing");
    cr_expect_eq(leash_send(c, &i), 0);
    cr_expect_eq(leash_chan_len(c), 1);
    cr_expect_eq(leash_recv(c, &sh), LEASH_EINVAL);
    cr_expect_eq(leash_recv(c, &ll), LEASH_EINVAL);
    cr_expect_eq(leash_try_recv(c, &ch), LEASH_EINVAL);
    cr_expect_eq(leash_recv_n(c, &i, 3), LEASH_EINVAL);
    cr_expect_eq(leash_chan_len(c), 1, "a rejected receive takes nothing");
    int out = 0;
    cr_expect_eq(leash_recv(c, &out), 0);
    cr_expect_eq(out, 5);

    /* Structs: sizeof *ptr, padding included. */
    struct rec {
        char tag;
        double d;
        int arr[5];
    } r = {'x', 2.5, {1, 2, 3, 4, 5}}, r2;
    leash_chan *rc = leash_chan_make(sizeof(struct rec), 1);
    cr_assert_not_null(rc);
    cr_expect_eq(leash_send(rc, &r), 0);
    memset(&r2, 0, sizeof r2);
    cr_expect_eq(leash_recv(rc, &r2), 0);
    cr_expect(r2.tag == 'x' && r2.d == 2.5 && r2.arr[4] == 5);
    leash_release(rc);

    /* Closed does not hide a size error: EINVAL wins. */
    cr_expect_eq(leash_close(c), 0);
    cr_expect_eq(leash_send(c, &ll), LEASH_EINVAL);
    cr_expect_eq(leash_recv(c, &ll), LEASH_EINVAL);
    leash_release(c);
}

Test(chan, null_elem_with_size_is_einval, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(sizeof(int), 2);
    cr_assert_not_null(c);
    cr_expect_eq(leash_send_n(c, NULL, sizeof(int)), LEASH_EINVAL);
    cr_expect_eq(leash_try_send_n(c, NULL, sizeof(int)), LEASH_EINVAL);
    cr_expect_eq(leash_send_n(c, NULL, 0), LEASH_EINVAL,
                 "size 0 on an int channel");
    cr_expect_eq(leash_chan_len(c), 0);
    leash_release(c);
}

Test(chan, recv_null_out_discards, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(sizeof(int), 8);
    cr_assert_not_null(c);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(leash_send(c, &i), 0);
    /* Whatever the size argument, NULL discards one value. */
    cr_expect_eq(leash_recv_n(c, NULL, 0), 0);
    cr_expect_eq(leash_recv_n(c, NULL, sizeof(int)), 0);
    cr_expect_eq(leash_recv_n(c, NULL, 12345), 0);
    cr_expect_eq(leash_try_recv_n(c, NULL, 0), 0);
    cr_expect_eq(leash_try_recv_n(c, NULL, 3), 0);
    cr_expect_eq(leash_chan_len(c), 1);
    int v = -1;
    cr_expect_eq(leash_recv(c, &v), 0);
    cr_expect_eq(v, 5, "the discards consumed values 0..4 in order");
    cr_expect_eq(leash_try_recv_n(c, NULL, 0), LEASH_EAGAIN);
    leash_close(c);
    cr_expect_eq(leash_recv_n(c, NULL, 0), LEASH_ECLOSED);
    cr_expect_eq(leash_recv_n(c, NULL, 99), LEASH_ECLOSED);
    leash_release(c);
}

/* A blocked sender's value discarded by a NULL receive (unbuffered). */
static void send_seven(void *arg) {
    int v = 7;
    CHECK_EQ(leash_send((leash_chan *)arg, &v), 0);
    v = 8;
    CHECK_EQ(leash_send((leash_chan *)arg, &v), 0);
}

Test(chan, recv_null_out_unbuffered, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(sizeof(int), 0);
    cr_assert_not_null(c);
    go_ok(leash_go(send_seven, c, c));
    cr_expect_eq(leash_recv_n(c, NULL, 0), 0);
    int v = 0;
    cr_expect_eq(leash_recv(c, &v), 0);
    cr_expect_eq(v, 8);
    leash_release(c);
    finish();
}

/* ------------------------------------------------ signal channels (size 0) */

static void signaller(void *arg) {
    leash_chan *c = arg;
    for (int i = 0; i < 100; i++)
        if (!CHECK_EQ(leash_send_n(c, NULL, 0), 0))
            break;
    CHECK_EQ(leash_close(c), 0);
}

Test(chan, signal_channels, .timeout = TMO(10)) {
    leash_chan *u = leash_chan_make(0, 0);
    cr_assert_not_null(u);
    go_ok(leash_go(signaller, u, u));
    int n = 0, rc;
    while ((rc = leash_recv_n(u, NULL, 0)) == 0)
        n++;
    cr_expect_eq(rc, LEASH_ECLOSED);
    cr_expect_eq(n, 100);
    leash_release(u);

    leash_chan *b = leash_chan_make(0, 3);
    cr_assert_not_null(b);
    int x = 1;
    char zero[0]; /* GNU C: sizeof zero == 0, so the macros fit */
    cr_expect_eq(leash_send_n(b, &x, sizeof x), LEASH_EINVAL);
    /* A receive buffer of any size will do (nothing is written): empty. */
    cr_expect_eq(leash_try_recv(b, &x), LEASH_EAGAIN);
    cr_expect_eq(leash_send(b, &zero), 0);
    cr_expect_eq(leash_send_n(b, NULL, 0), 0);
    cr_expect_eq(leash_try_send_n(b, &x, 0), 0, "non-NULL elem, size 0");
    cr_expect_eq(leash_chan_len(b), 3);
    cr_expect_eq(leash_try_send_n(b, NULL, 0), LEASH_EAGAIN, "full");
    cr_expect_eq(leash_recv(b, &zero), 0);
    cr_expect_eq(leash_recv_n(b, NULL, 0), 0);
    cr_expect_eq(leash_chan_len(b), 1);
    cr_expect_eq(leash_close(b), 0);
    cr_expect_eq(leash_try_recv_n(b, NULL, 0), 0, "buffered before close");
    cr_expect_eq(leash_try_recv_n(b, NULL, 0), LEASH_ECLOSED);
    cr_expect_eq(leash_recv_n(b, NULL, 0), LEASH_ECLOSED);
    cr_expect_eq(leash_send_n(b, NULL, 0), LEASH_ECLOSED);
    leash_release(b);
    finish();
}

/* Buffered size-0 channel whose buffer is full: a blocked sender is
 * handed over by a receive (no buffer memory at all). */
static void sig_fill(void *arg) {
    leash_chan *c = arg;
    for (int i = 0; i < 5; i++)
        CHECK_EQ(leash_send_n(c, NULL, 0), 0);
}

Test(chan, signal_channel_buffered_blocking, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(0, 2);
    cr_assert_not_null(c);
    go_ok(leash_go(sig_fill, c, c));
    cr_expect(WAIT_UNTIL(leash_chan_len(c) == 2 && chan_waiters(c) == 1, 10));
    for (int i = 0; i < 5; i++)
        cr_expect_eq(leash_recv_n(c, NULL, 0), 0);
    cr_expect_eq(leash_chan_len(c), 0);
    cr_expect_eq(leash_try_recv_n(c, NULL, 0), LEASH_EAGAIN);
    leash_release(c);
    finish();
}

/* ------------------------------------------------------------ try_ ops */

static void recv_one_int(void *arg) {
    leash_chan *c = ((leash_chan **)arg)[0];
    int *out = (int *)((leash_chan **)arg)[1];
    CHECK_EQ(leash_recv(c, out), 0);
}

static void send_one_int(void *arg) {
    int v = 31337;
    CHECK_EQ(leash_send((leash_chan *)arg, &v), 0);
}

Test(chan, try_ops, .timeout = TMO(10)) {
    leash_chan *u = leash_chan_make(sizeof(int), 0);
    cr_assert_not_null(u);
    int v = 9, out = 0;
    cr_expect_eq(leash_try_send(u, &v), LEASH_EAGAIN, "no receiver");
    cr_expect_eq(leash_try_recv(u, &v), LEASH_EAGAIN, "no sender");

    /* A waiting receiver makes try_send succeed (hand-off). */
    void *args[2] = {u, &out};
    go_ok(leash_go(recv_one_int, args, u));
    cr_assert(WAIT_UNTIL(chan_waiters(u) == 1, 10));
    cr_expect_eq(leash_try_recv(u, &v), LEASH_EAGAIN,
                 "a waiting receiver does not make recv ready");
    cr_expect_eq(leash_try_send(u, &v), 0);
    cr_expect(WAIT_UNTIL(leash_num_coroutines() == 0, 10));
    cr_expect_eq(out, 9);

    /* A waiting sender makes try_recv succeed. */
    go_ok(leash_go(send_one_int, u, u));
    cr_assert(WAIT_UNTIL(chan_waiters(u) == 1, 10));
    cr_expect_eq(leash_try_send(u, &v), LEASH_EAGAIN,
                 "a waiting sender does not make send ready");
    out = 0;
    cr_expect_eq(leash_try_recv(u, &out), 0);
    cr_expect_eq(out, 31337);
    cr_expect(WAIT_UNTIL(leash_num_coroutines() == 0, 10));

    /* Buffered: ready while there is room / there are values. */
    leash_chan *b = leash_chan_make(sizeof(int), 2);
    cr_assert_not_null(b);
    cr_expect_eq(leash_try_recv(b, &out), LEASH_EAGAIN);
    v = 1;
    cr_expect_eq(leash_try_send(b, &v), 0);
    v = 2;
    cr_expect_eq(leash_try_send(b, &v), 0);
    v = 3;
    cr_expect_eq(leash_try_send(b, &v), LEASH_EAGAIN);
    cr_expect_eq(leash_try_recv(b, &out), 0);
    cr_expect_eq(out, 1);
    cr_expect_eq(leash_try_recv(b, &out), 0);
    cr_expect_eq(out, 2);
    cr_expect_eq(leash_try_recv(b, &out), LEASH_EAGAIN);

    /* Closed: try_send is ECLOSED, try_recv drains then ECLOSED + zero. */
    v = 4;
    cr_expect_eq(leash_try_send(b, &v), 0);
    cr_expect_eq(leash_close(b), 0);
    cr_expect_eq(leash_try_send(b, &v), LEASH_ECLOSED);
    out = 0;
    cr_expect_eq(leash_try_recv(b, &out), 0);
    cr_expect_eq(out, 4);
    out = 55;
    cr_expect_eq(leash_try_recv(b, &out), LEASH_ECLOSED);
    cr_expect_eq(out, 0);
    cr_expect_eq(leash_close(u), 0);
    out = 55;
    cr_expect_eq(leash_try_recv(u, &out), LEASH_ECLOSED);
    cr_expect_eq(out, 0);
    cr_expect_eq(leash_try_send(u, &v), LEASH_ECLOSED);
    leash_release(u);
    leash_release(b);
    finish();
}

Test(chan, try_on_null_channel, .timeout = TMO(10)) {
    int v = 1;
    cr_expect_eq(leash_try_send((leash_chan *)NULL, &v), LEASH_EAGAIN);
    cr_expect_eq(leash_try_recv((leash_chan *)NULL, &v), LEASH_EAGAIN);
    cr_expect_eq(leash_try_send_n(NULL, NULL, 0), LEASH_EAGAIN);
    cr_expect_eq(leash_try_recv_n(NULL, NULL, 0), LEASH_EAGAIN);
    cr_expect_eq(leash_try_recv_n(NULL, &v, 4), LEASH_EAGAIN);
}

/* ---------------------------------------------------------------- close */

typedef struct {
    leash_chan *c;
    int rc;
    int val;
    _Atomic int done;
} waiter_slot;

static void slot_recv(void *arg) {
    waiter_slot *s = arg;
    s->val = 0x5a5a5a5a;
    s->rc = leash_recv(s->c, &s->val);
    atomic_store(&s->done, 1);
}

static void slot_send(void *arg) {
    waiter_slot *s = arg;
    s->rc = leash_send(s->c, &s->val);
    atomic_store(&s->done, 1);
}

#define NCO 5
#define NTH 2

static void close_wakes_receivers(size_t cap) {
    leash_chan *c = leash_chan_make(sizeof(int), cap);
    cr_assert_not_null(c);
    waiter_slot s[NCO + NTH];
    pthread_t th[NTH];
    memset(s, 0, sizeof s);
    for (int i = 0; i < NCO + NTH; i++) {
        s[i].c = c;
        s[i].rc = 12345;
        if (i < NCO)
            go_ok(leash_go(slot_recv, &s[i], c));
        else
            th[i - NCO] = thread_go(slot_recv, &s[i]);
    }
    cr_assert(WAIT_UNTIL(chan_waiters(c) == NCO + NTH, 10),
              "waiters: %d", chan_waiters(c));
    leash_sleep(10 * MS);
    for (int i = 0; i < NCO + NTH; i++)
        cr_expect_eq(atomic_load(&s[i].done), 0, "receiver %d returned", i);
    cr_expect_eq(leash_close(c), 0);
    for (int i = 0; i < NCO + NTH; i++) {
        cr_expect(WAIT_UNTIL(atomic_load(&s[i].done), 10), "receiver %d", i);
        cr_expect_eq(s[i].rc, LEASH_ECLOSED, "receiver %d rc", i);
        cr_expect_eq(s[i].val, 0, "receiver %d: zero value", i);
    }
    for (int i = 0; i < NTH; i++)
        pthread_join(th[i], NULL);
    cr_expect_eq(chan_waiters(c), 0);
    leash_release(c);
    finish();
}

Test(chan, close_wakes_all_receivers_unbuffered, .timeout = TMO(20)) {
    close_wakes_receivers(0);
}

Test(chan, close_wakes_all_receivers_buffered, .timeout = TMO(20)) {
    close_wakes_receivers(4);
}

static void close_fails_senders(size_t cap) {
    leash_chan *c = leash_chan_make(sizeof(int), cap);
    cr_assert_not_null(c);
    for (int i = 0; i < (int)cap; i++)
        cr_assert_eq(leash_send(c, &i), 0);
    waiter_slot s[NCO + NTH];
    pthread_t th[NTH];
    memset(s, 0, sizeof s);
    for (int i = 0; i < NCO + NTH; i++) {
        s[i].c = c;
        s[i].rc = 12345;
        s[i].val = 1000 + i;
        if (i < NCO)
            go_ok(leash_go(slot_send, &s[i], c));
        else
            th[i - NCO] = thread_go(slot_send, &s[i]);
    }
    cr_assert(WAIT_UNTIL(chan_waiters(c) == NCO + NTH, 10),
              "waiters: %d", chan_waiters(c));
    cr_expect_eq(leash_close(c), 0);
    for (int i = 0; i < NCO + NTH; i++) {
        cr_expect(WAIT_UNTIL(atomic_load(&s[i].done), 10), "sender %d", i);
        cr_expect_eq(s[i].rc, LEASH_ECLOSED, "sender %d rc", i);
    }
    for (int i = 0; i < NTH; i++)
        pthread_join(th[i], NULL);
    /* What was buffered before the close is still delivered, in order;
     * nothing of the failed senders is. */
    cr_expect_eq(leash_chan_len(c), (int)cap);
    for (int i = 0; i < (int)cap; i++) {
        int v = -1;
        cr_expect_eq(leash_recv(c, &v), 0);
        cr_expect_eq(v, i);
    }
    int v = 77;
    cr_expect_eq(leash_recv(c, &v), LEASH_ECLOSED);
    cr_expect_eq(v, 0);
    leash_release(c);
    finish();
}

Test(chan, close_fails_blocked_senders_unbuffered, .timeout = TMO(20)) {
    close_fails_senders(0);
}

Test(chan, close_fails_blocked_senders_buffered, .timeout = TMO(20)) {
    close_fails_senders(3);
}

Test(chan, close_then_drain, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(sizeof(long), 5);
    cr_assert_not_null(c);
    for (long i = 10; i < 13; i++)
        cr_assert_eq(leash_send(c, &i), 0);
    cr_expect_eq(leash_close(c), 0);
    cr_expect_eq(leash_chan_len(c), 3);
    cr_expect_eq(leash_chan_cap(c), 5);
    for (long i = 10; i < 13; i++) {
        long v = 0;
        cr_expect_eq(leash_recv(c, &v), 0);
        cr_expect_eq(v, i);
    }
    for (int k = 0; k < 3; k++) { /* stays closed and drained */
        long v = -1;
        cr_expect_eq(leash_recv(c, &v), LEASH_ECLOSED);
        cr_expect_eq(v, 0);
    }
    cr_expect_eq(leash_chan_len(c), 0);
    leash_release(c);
}

Test(chan, close_twice_null_garbage, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(sizeof(int), 0);
    cr_assert_not_null(c);
    cr_expect_eq(leash_close(c), 0);
    cr_expect_eq(leash_close(c), LEASH_ECLOSED);
    cr_expect_eq(leash_close(c), LEASH_ECLOSED);
    cr_expect_eq(leash_close(NULL), LEASH_EINVAL);
    static uint64_t junk[32];
    cr_expect_eq(leash_close((leash_chan *)junk), LEASH_EINVAL);
    leash_release(c);
}

Test(chan, send_on_closed, .timeout = TMO(10)) {
    leash_chan *u = leash_chan_make(sizeof(int), 0);
    leash_chan *b = leash_chan_make(sizeof(int), 4);
    cr_assert(u && b);
    int v = 1;
    cr_expect_eq(leash_send(b, &v), 0);
    cr_expect_eq(leash_close(u), 0);
    cr_expect_eq(leash_close(b), 0);
    cr_expect_eq(leash_send(u, &v), LEASH_ECLOSED);
    cr_expect_eq(leash_try_send(u, &v), LEASH_ECLOSED);
    cr_expect_eq(leash_send(b, &v), LEASH_ECLOSED, "room in the buffer");
    cr_expect_eq(leash_try_send(b, &v), LEASH_ECLOSED);
    cr_expect_eq(leash_chan_len(b), 1, "nothing enqueued after close");
    leash_release(u);
    leash_release(b);
}

/* ------------------------------------------------------- released = dead */

Test(chan, released_channel_is_dead, .timeout = TMO(10)) {
    leash_chan *c = leash_chan_make(sizeof(int), 2);
    cr_assert_not_null(c);
    int v = 3;
    cr_expect_eq(leash_send(c, &v), 0);
    leash_release(c);
    /* Memory is type-stable: the stale pointer reads a dead object. */
    cr_expect_eq(leash_send(c, &v), LEASH_EINVAL);
    cr_expect_eq(leash_recv(c, &v), LEASH_EINVAL);
    cr_expect_eq(leash_try_send(c, &v), LEASH_EINVAL);
    cr_expect_eq(leash_try_recv(c, &v), LEASH_EINVAL);
    cr_expect_eq(leash_recv_n(c, NULL, 0), LEASH_EINVAL);
    cr_expect_eq(leash_close(c), LEASH_EINVAL);
    cr_expect_eq(leash_chan_len(c), LEASH_EINVAL);
    cr_expect_eq(leash_chan_cap(c), LEASH_EINVAL);
    cr_expect_null(leash_retain(c));
    cr_expect_eq(leash_release_checked(c), LEASH_EINVAL);
    leash_release(c); /* a no-op on a dead object */
    leash_case k = LEASH_RECV_CASE(c, &v);
    cr_expect_eq(leash_try_select(&k, 1), LEASH_EINVAL);
    cr_expect_eq(leash_select(&k, 1), LEASH_EINVAL);
}

/* A channel lives while references handed by leash_go exist: the creator
 * may drop its own at once. */
static void ref_prod(void *arg) {
    leash_chan *c = arg;
    for (int i = 0; i < 50; i++)
        CHECK_EQ(leash_send(c, &i), 0);
    CHECK_EQ(leash_close(c), 0);
}

typedef struct {
    leash_chan *c;
    leash_chan *done;
} ref_cons_args;

static void ref_cons(void *arg) {
    ref_cons_args *a = arg;
    int v, n = 0, rc;
    while ((rc = leash_recv(a->c, &v)) == 0) {
        CHECK_EQ(v, n);
        n++;
    }
    CHECK_EQ(rc, LEASH_ECLOSED);
    CHECK_EQ(n, 50);
    CHECK_EQ(leash_send_n(a->done, NULL, 0), 0);
}

static int handed_refs_main(void *arg) {
    (void)arg;
    ref_cons_args a = {leash_chan_make(sizeof(int), 0),
                       leash_chan_make(0, 1)};
    if (!CHECK(a.c && a.done))
        return 1;
    go_ok(leash_go(ref_cons, &a, a.c));
    go_ok(leash_go(ref_prod, a.c, a.c));
    leash_release(a.c); /* the children's references keep it alive */
    CHECK_EQ(leash_recv_n(a.done, NULL, 0), 0);
    CHECK(WAIT_UNTIL(leash_num_coroutines() == 1, 10));
    CHECK_EQ(leash_chan_len(a.c), LEASH_EINVAL); /* last ref gone: dead */
    leash_release(a.done);
    return 0;
}

Test(chan, handed_references_keep_channel_alive, .timeout = TMO(10)) {
    run_main(handed_refs_main, NULL);
}

/* ------------------------------------------------------------ FIFO order */

#define NFIFO 8

/* Starts NFIFO waiters running fn on c one after the other, each only
 * once the previous one is blocked (their queue order), alternating
 * coroutines and plain threads when `threads`; a sender sends first + i. */
static void block_in_order(leash_chan *c, void (*fn)(void *), waiter_slot *s,
                           pthread_t *th, int first, bool threads) {
    memset(s, 0, sizeof *s * NFIFO);
    for (int i = 0; i < NFIFO; i++) {
        s[i].c = c;
        if (fn == slot_send) /* a receiver's val is what it gets */
            s[i].val = first + i;
        if (threads && i % 2)
            th[i] = thread_go(fn, &s[i]);
        else
            go_ok(leash_go(fn, &s[i], c));
        cr_assert(WAIT_UNTIL(chan_waiters(c) == i + 1, 10),
                  "waiter %d never blocked", i);
    }
}

/* Waits for waiter i of block_in_order to finish, successfully. */
static void finish_slot(waiter_slot *s, pthread_t *th, int i, bool threads) {
    cr_expect(WAIT_UNTIL(atomic_load(&s->done), 10));
    cr_expect_eq(s->rc, 0);
    if (threads && i % 2)
        pthread_join(th[i], NULL);
}

static void fifo_senders(size_t cap, bool threads) {
    leash_chan *c = leash_chan_make(sizeof(int), cap);
    cr_assert_not_null(c);
    for (int i = 0; i < (int)cap; i++)
        cr_assert_eq(leash_send(c, &i), 0);
    waiter_slot s[NFIFO];
    pthread_t th[NFIFO];
    block_in_order(c, slot_send, s, th, (int)cap, threads);
    for (int i = 0; i < (int)cap + NFIFO; i++) {
        int v = -1;
        cr_expect_eq(leash_recv(c, &v), 0);
        cr_expect_eq(v, i, "receive %d: senders not served in FIFO order", i);
    }
    for (int i = 0; i < NFIFO; i++)
        finish_slot(&s[i], th, i, threads);
    leash_release(c);
    finish();
}

Test(chan, fifo_blocked_senders_unbuffered, .timeout = TMO(20)) {
    fifo_senders(0, false);
}
Test(chan, fifo_blocked_senders_buffered, .timeout = TMO(20)) {
    fifo_senders(3, false);
}
Test(chan, fifo_blocked_senders_with_threads, .timeout = TMO(20)) {
    fifo_senders(2, true);
}

static void fifo_receivers(size_t cap, bool threads) {
    leash_chan *c = leash_chan_make(sizeof(int), cap);
    cr_assert_not_null(c);
    waiter_slot s[NFIFO];
    pthread_t th[NFIFO];
    block_in_order(c, slot_recv, s, th, 0, threads);
    for (int i = 0; i < NFIFO; i++)
        cr_expect_eq(leash_send(c, &i), 0);
    for (int i = 0; i < NFIFO; i++) {
        finish_slot(&s[i], th, i, threads);
        cr_expect_eq(s[i].val, i, "receiver %d: receivers not served FIFO",
                     i);
    }
    leash_release(c);
    finish();
}

Test(chan, fifo_blocked_receivers_unbuffered, .timeout = TMO(20)) {
    fifo_receivers(0, false);
}
Test(chan, fifo_blocked_receivers_buffered, .timeout = TMO(20)) {
    fifo_receivers(4, false);
}
Test(chan, fifo_blocked_receivers_with_threads, .timeout = TMO(20)) {
    fifo_receivers(0, true);
}

/* ------------------------------------------------------- NULL channels */

static _Atomic int nil_returned;

static void nil_send(void *arg) {
    (void)arg;
    int v = 1;
    leash_send((leash_chan *)NULL, &v);
    atomic_fetch_add(&nil_returned, 1);
}

static void nil_recv(void *arg) {
    (void)arg;
    int v;
    leash_recv((leash_chan *)NULL, &v);
    atomic_fetch_add(&nil_returned, 1);
}

static void nil_recv_discard(void *arg) {
    (void)arg;
    leash_recv_n(NULL, NULL, 0);
    atomic_fetch_add(&nil_returned, 1);
}

static int nil_main(void *arg) {
    (void)arg;
    size_t base = leash_num_coroutines();
    CHECK_EQ(base, 1);
    go_ok(leash_go(nil_send, NULL));
    go_ok(leash_go(nil_recv, NULL));
    go_ok(leash_go(nil_recv_discard, NULL));
    pthread_t t = thread_go(nil_recv, NULL);
    pthread_detach(t);
    /* Let them run and block; other coroutines keep running meanwhile. */
    for (int i = 0; i < 10; i++) {
        leash_sleep(10 * MS);
        leash_yield();
    }
    CHECK_EQ(leash_num_coroutines(), base + 3);
    CHECK_EQ(atomic_load(&nil_returned), 0);
    /* Still blocked a while later, and the runtime still works. */
    leash_chan *c = leash_chan_make(sizeof(int), 0);
    go_ok(leash_go(send_one_int, c, c));
    int v = 0;
    CHECK_EQ(leash_recv(c, &v), 0);
    CHECK_EQ(v, 31337);
    leash_release(c);
    leash_sleep(50 * MS);
    CHECK(WAIT_UNTIL(leash_num_coroutines() == base + 3, 10));
    CHECK_EQ(atomic_load(&nil_returned), 0);
    return 0;
}

Test(chan, null_channel_blocks_forever, .timeout = TMO(20)) {
    run_main(nil_main, NULL);
}

/* ------------------------------------------ threads mixed with coroutines */

#define MIX_PER 2000

typedef struct {
    leash_chan *c;
    int base;
    _Atomic long long *sum;
    _Atomic int *count;
} mix_args;

static void mix_producer(void *arg) {
    mix_args *m = arg;
    for (int i = 0; i < MIX_PER; i++) {
        int v = m->base + i;
        if (!CHECK_EQ(leash_send(m->c, &v), 0))
            break;
    }
}

static void mix_consumer(void *arg) {
    mix_args *m = arg;
    int v, rc;
    while ((rc = leash_recv(m->c, &v)) == 0) {
        atomic_fetch_add(m->sum, v);
        atomic_fetch_add(m->count, 1);
    }
    CHECK_EQ(rc, LEASH_ECLOSED);
}

static void mixed_threads_coroutines(size_t cap) {
    leash_chan *c = leash_chan_make(sizeof(int), cap);
    cr_assert_not_null(c);
    _Atomic long long sum = 0;
    _Atomic int count = 0;
    enum { NP = 4, NC = 4 };
    mix_args pa[NP], ca[NC];
    pthread_t pt[NP], ct[NC];
    long long want = 0;
    for (int i = 0; i < NP; i++) {
        pa[i] = (mix_args){c, i * 1000000, &sum, &count};
        for (int k = 0; k < MIX_PER; k++)
            want += pa[i].base + k;
    }
    for (int i = 0; i < NC; i++) {
        ca[i] = (mix_args){c, 0, &sum, &count};
        if (i % 2)
            ct[i] = thread_go(mix_consumer, &ca[i]);
        else
            go_ok(leash_go(mix_consumer, &ca[i], c));
    }
    for (int i = 0; i < NP; i++) {
        if (i % 2)
            go_ok(leash_go(mix_producer, &pa[i], c));
        else
            pt[i] = thread_go(mix_producer, &pa[i]);
    }
    for (int i = 0; i < NP; i += 2)
        pthread_join(pt[i], NULL);
    cr_expect(WAIT_UNTIL(atomic_load(&count) == NP * MIX_PER, 30),
              "received %d of %d", atomic_load(&count), NP * MIX_PER);
    cr_expect_eq(leash_close(c), 0);
    for (int i = 1; i < NC; i += 2)
        pthread_join(ct[i], NULL);
    cr_expect(WAIT_UNTIL(leash_num_coroutines() == 0, 10));
    cr_expect_eq(atomic_load(&count), NP * MIX_PER);
    cr_expect_eq(atomic_load(&sum), want);
    leash_release(c);
    finish();
}

Test(chan, threads_and_coroutines_unbuffered, .timeout = TMO(30)) {
    mixed_threads_coroutines(0);
}

Test(chan, threads_and_coroutines_buffered, .timeout = TMO(30)) {
    mixed_threads_coroutines(16);
}

/* Only plain threads, no coroutine at all. */
static void thr_pingpong(void *arg) {
    leash_chan **cs = arg;
    for (int i = 0; i < 500; i++) {
        int v;
        if (!CHECK_EQ(leash_recv(cs[0], &v), 0))
            return;
        CHECK_EQ(v, i);
        v = -i;
        CHECK_EQ(leash_send(cs[1], &v), 0);
    }
}

Test(chan, threads_only_ping_pong, .timeout = TMO(30)) {
    leash_chan *cs[2] = {leash_chan_make(sizeof(int), 0),
                         leash_chan_make(sizeof(int), 0)};
    cr_assert(cs[0] && cs[1]);
    pthread_t t = thread_go(thr_pingpong, cs);
    for (int i = 0; i < 500; i++) {
        int v = i;
        cr_assert_eq(leash_send(cs[0], &v), 0);
        cr_assert_eq(leash_recv(cs[1], &v), 0);
        cr_assert_eq(v, -i);
    }
    pthread_join(t, NULL);
    cr_expect_eq(leash_num_coroutines(), 0);
    leash_release(cs[0]);
    leash_release(cs[1]);
    finish();
}
