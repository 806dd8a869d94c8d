/* SPDX-License-Identifier: MIT */
/*
 * test_connio.c — I/O in select (LEASH_READABLE_CASE / WRITABLE_CASE)
 * and context-aware reads and writes (leash_conn_read_ctx / write_ctx):
 * a reader waits for data or cancellation, with no shutdown(2) trick.
 *
 * Socketpairs only. Coroutines record failures with CU_CHECK*.
 * LEASH_TEST_TIMEOUT 60
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core_util.h"
#include "internal.h"

#define MS CU_MS
#define HANG_MS 5000

typedef struct {
    leash_conn *c;
    int peer;
    leash_ctx *ctx;
    atomic_int result;
    atomic_int ok;
    atomic_int done;
} io_st;

static void pair(io_st *st) {
    int sv[2];
    CU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CU_CHECK_EQ(leash_conn_from_fd(&st->c, sv[0]), 0);
    st->peer = sv[1];
    atomic_store(&st->done, 0);
}

static void unpair(io_st *st) {
    leash_release(st->c);
    close(st->peer);
}

static bool parked(int n) {
    return CU_WAIT_UNTIL(atomic_load(&S.io_waiters) >= n, HANG_MS);
}

/* ---------------------------------------------------------------- select */

/* Waits for data on st->c or cancellation of st->ctx. */
static void select_waiter(void *p) {
    io_st *st = p;
    leash_case cs[2] = {LEASH_READABLE_CASE(st->c),
                        LEASH_RECV_CASE(leash_ctx_done(st->ctx), (char *)NULL)};
    cs[1].size = 0;
    int r = leash_select(cs, 2);
    atomic_store(&st->ok, cs[r < 0 ? 0 : r].ok);
    atomic_store(&st->result, r);
    atomic_store(&st->done, 1);
}

static int select_main(void *arg) {
    (void)arg;
    io_st st = {0};
    pair(&st);
    st.ctx = leash_ctx_with_cancel(leash_ctx_background());

    /* Data wakes it. */
    leash_go(select_waiter, &st);
    CU_CHECK(parked(1));
    CU_CHECK_EQ(write(st.peer, "hi", 2), 2);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st.done), HANG_MS));
    CU_CHECK_EQ(atomic_load(&st.result), 0);
    CU_CHECK_EQ(atomic_load(&st.ok), 1);
    char b[8];
    CU_CHECK_EQ(leash_conn_read(st.c, b, sizeof b), 2);

    /* Cancellation wakes it. */
    atomic_store(&st.done, 0);
    leash_go(select_waiter, &st);
    CU_CHECK(parked(1));
    leash_ctx_cancel(st.ctx);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st.done), HANG_MS));
    CU_CHECK_EQ(atomic_load(&st.result), 1);
    CU_CHECK_EQ(atomic_load(&S.io_waiters), 0); /* its fd waiter is gone */
    leash_release(st.ctx);

    /* A close from another coroutine wakes it: ok 0. */
    st.ctx = leash_ctx_with_cancel(leash_ctx_background());
    atomic_store(&st.done, 0);
    leash_go(select_waiter, &st);
    CU_CHECK(parked(1));
    CU_CHECK_EQ(leash_conn_close(st.c), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st.done), HANG_MS));
    CU_CHECK_EQ(atomic_load(&st.result), 0);
    CU_CHECK_EQ(atomic_load(&st.ok), 0);
    /* ... and a closed connection is ready at once. */
    leash_case cs[1] = {LEASH_READABLE_CASE(st.c)};
    cs[0].ok = 7;
    CU_CHECK_EQ(leash_try_select(cs, 1), 0);
    CU_CHECK_EQ(cs[0].ok, 0);
    leash_release(st.ctx);
    unpair(&st);
    return 0;
}

Test(connio, select_readable_or_cancelled_or_closed, .timeout = 30) {
    cu_run(select_main, NULL);
}

static int try_select_main(void *arg) {
    (void)arg;
    io_st st = {0};
    pair(&st);
    leash_conn *none = NULL;
    leash_case cs[3] = {LEASH_READABLE_CASE(st.c), LEASH_READABLE_CASE(none),
                        LEASH_WRITABLE_CASE(none)};
    CU_CHECK_EQ(leash_try_select(cs, 3), LEASH_EAGAIN); /* nothing to read */
    cs[2] = LEASH_WRITABLE_CASE(st.c);
    CU_CHECK_EQ(leash_try_select(cs, 3), 2); /* room to write */
    CU_CHECK_EQ(cs[2].ok, 1);
    CU_CHECK_EQ(write(st.peer, "x", 1), 1);
    cs[2] = LEASH_WRITABLE_CASE(none);
    CU_CHECK_EQ(leash_try_select(cs, 3), 0);
    /* Blocking, with a timer beside it: the timer wins, nothing leaks. */
    char b[2];
    CU_CHECK_EQ(leash_conn_read(st.c, b, 2), 1);
    leash_chan *t = leash_after(20 * MS);
    int64_t v;
    leash_case cs2[2] = {LEASH_READABLE_CASE(st.c), LEASH_RECV_CASE(t, &v)};
    CU_CHECK_EQ(leash_select(cs2, 2), 1);
    CU_CHECK_EQ(atomic_load(&S.io_waiters), 0);
    leash_release(t);
    unpair(&st);
    return 0;
}

Test(connio, try_select_and_timer_beside_io, .timeout = 30) {
    cu_run(try_select_main, NULL);
}

/* ------------------------------------------------------------- contexts */

static void ctx_reader(void *p) {
    io_st *st = p;
    char b[16];
    atomic_store(&st->result, (int)leash_conn_read_ctx(st->c, st->ctx, b, sizeof b));
    atomic_store(&st->done, 1);
}

static void ctx_writer(void *p) {
    io_st *st = p;
    static char big[1 << 20];
    ssize_t n;
    do /* fills the socket, then waits; cut short, the next gets the error */
        n = leash_conn_write_ctx(st->c, st->ctx, big, sizeof big);
    while (n >= 0);
    atomic_store(&st->result, (int)n);
    atomic_store(&st->done, 1);
}

static int ctx_main(void *arg) {
    (void)arg;
    io_st st = {0};
    pair(&st);

    /* Cancelled while waiting. */
    st.ctx = leash_ctx_with_cancel(leash_ctx_background());
    leash_go(ctx_reader, &st);
    CU_CHECK(parked(1));
    leash_ctx_cancel(st.ctx);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st.done), HANG_MS));
    CU_CHECK_EQ(atomic_load(&st.result), LEASH_ECANCELED);
    /* Already cancelled: at once, even with data waiting. */
    CU_CHECK_EQ(write(st.peer, "abc", 3), 3);
    char b[8];
    CU_CHECK_EQ(leash_conn_read_ctx(st.c, st.ctx, b, sizeof b), LEASH_ECANCELED);
    leash_release(st.ctx);

    /* A live context: data comes through. */
    st.ctx = leash_ctx_with_timeout(leash_ctx_background(), 30 * MS);
    CU_CHECK_EQ(leash_conn_read_ctx(st.c, st.ctx, b, sizeof b), 3);
    /* Its timeout ends the wait with LEASH_ETIMEDOUT. */
    int64_t t0 = leash_now();
    CU_CHECK_EQ(leash_conn_read_ctx(st.c, st.ctx, b, sizeof b), LEASH_ETIMEDOUT);
    CU_CHECK(leash_now() - t0 < HANG_MS * MS);
    leash_release(st.ctx);

    /* The connection's own deadline, moved by another coroutine, still
     * applies to a context read; and a close wakes it. */
    st.ctx = leash_ctx_with_cancel(leash_ctx_background());
    atomic_store(&st.done, 0);
    leash_go(ctx_reader, &st);
    CU_CHECK(parked(1));
    CU_CHECK_EQ(leash_conn_set_read_deadline(st.c, leash_now() + 10 * MS), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st.done), HANG_MS));
    CU_CHECK_EQ(atomic_load(&st.result), LEASH_ETIMEDOUT);
    CU_CHECK_EQ(leash_conn_set_read_deadline(st.c, -1), 0);
    atomic_store(&st.done, 0);
    leash_go(ctx_reader, &st);
    CU_CHECK(parked(1));
    CU_CHECK_EQ(leash_conn_close(st.c), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st.done), HANG_MS));
    CU_CHECK_EQ(atomic_load(&st.result), LEASH_ECLOSED);
    leash_release(st.ctx);
    unpair(&st);

    /* A writer blocked on a full socket: cancelled. */
    pair(&st);
    st.ctx = leash_ctx_with_cancel(leash_ctx_background());
    leash_go(ctx_writer, &st);
    CU_CHECK(parked(1));
    leash_ctx_cancel(st.ctx);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st.done), HANG_MS));
    CU_CHECK_EQ(atomic_load(&st.result), LEASH_ECANCELED);
    CU_CHECK_EQ(atomic_load(&S.io_waiters), 0);
    leash_release(st.ctx);
    unpair(&st);
    return 0;
}

Test(connio, read_write_ctx_data_or_cancellation, .timeout = 30) {
    cu_run(ctx_main, NULL);
}

/* A plain thread (no coroutine) in a context read: polled, still woken
 * by cancellation (through the netpoller, like channel waits). */
static void *thread_reader(void *p) {
    ctx_reader(p);
    return NULL;
}

static int thread_main(void *arg) {
    (void)arg;
    io_st st = {0};
    pair(&st);
    st.ctx = leash_ctx_with_cancel(leash_ctx_background());
    pthread_t th;
    CU_CHECK_EQ(pthread_create(&th, NULL, thread_reader, &st), 0);
    leash_sleep(20 * MS);
    CU_CHECK_EQ(atomic_load(&st.done), 0);
    leash_ctx_cancel(st.ctx);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st.done), HANG_MS));
    CU_CHECK_EQ(atomic_load(&st.result), LEASH_ECANCELED);
    pthread_join(th, NULL);
    leash_release(st.ctx);
    unpair(&st);
    return 0;
}

Test(connio, plain_thread_ctx_read_is_cancelled, .timeout = 30) {
    cu_run(thread_main, NULL);
}
