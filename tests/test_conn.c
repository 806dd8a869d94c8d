/* SPDX-License-Identifier: MIT */
/*
 * test_conn.c — connections (leash_conn): no read after a close ever
 * touches a reused fd number; close and deadlines set from another
 * coroutine wake the waiters; listen / dial / accept over TCP
 * and Unix sockets; writev; bad arguments.
 *
 * Loopback only (127.0.0.1, Unix sockets under /tmp). Coroutines record
 * failures with CU_CHECK*; the test thread asserts CU_ASSERT_CLEAN().
 * LEASH_TEST_TIMEOUT 120
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core_util.h"
#include "internal.h"
#include "reuse_util.h"

#define MS CU_MS
#define HANG_MS 5000

/* ------------------------------------------------- the fd reuse race */

static ssize_t conn_read1(reuse_st *st, char *ch) {
    return leash_conn_read(st->conn, ch, 1);
}

static void conn_reader(void *p) { reuse_read_loop(p, conn_read1); }

static int close_conn(reuse_st *st) { return leash_conn_close(st->conn); }

/* test_fdreuse.c's race with a connection: here the close may land
 * inside a read or between two (the reader is kept going by data), and
 * by design no read after the close touches the fd. */
static int reuse_conn_main(void *arg) {
    (void)arg;
    int reused = 0, bad = 0;
    for (int i = 0; i < REUSE_ITERS; i++) {
        int sv[2];
        CU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        reuse_st st = {.fd = sv[0]};
        leash_conn *c;
        CU_CHECK_EQ(leash_conn_from_fd(&c, sv[0]), 0);
        st.conn = c;
        CU_CHECK(leash_go(conn_reader, &st, c) > 0);
        CU_CHECK_EQ(write(sv[1], "OO", 2), 2);
        if (reuse_rand() & 1)
            leash_yield();
        reuse_spin(reuse_rand() % 4000);
        reused += reuse_close_and_check(&st, close_conn, sv[1]);
        bad += atomic_load(&st.bad);
        leash_release(c);
    }
    CU_CHECK(reused > 0); /* some closes landed between two reads */
    CU_CHECK_EQ(bad, 0);
    return 0;
}

Test(conn, conn_close_reuse_never_reads_new_socket, .timeout = 120) {
    cu_run(reuse_conn_main, NULL);
}

/* ------------------------------------------------- close, deadlines */

typedef struct {
    leash_conn *c;
    atomic_int results[8];
    atomic_int finished;
} waiters_st;

static waiters_st ws;

static void read_waiter(void *p) {
    char b[16];
    ssize_t n = leash_conn_read(ws.c, b, sizeof b);
    atomic_store(&ws.results[(intptr_t)p], (int)n);
    atomic_fetch_add(&ws.finished, 1);
}

static void write_waiter(void *p) {
    static char big[1 << 20];
    ssize_t n;
    do /* until the socket buffer is full and it waits: a write the
        * close cut short returns its count, and the next one the error */
        n = leash_conn_write(ws.c, big, sizeof big);
    while (n >= 0);
    atomic_store(&ws.results[(intptr_t)p], (int)n);
    atomic_fetch_add(&ws.finished, 1);
}

static void accept_waiter(void *p) {
    leash_conn *nc = (leash_conn *)(intptr_t)1;
    int r = leash_conn_accept(ws.c, &nc);
    CU_CHECK(nc == NULL);
    atomic_store(&ws.results[(intptr_t)p], r);
    atomic_fetch_add(&ws.finished, 1);
}

static int close_wakes_main(void *arg) {
    (void)arg;
    int sv[2];
    CU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    memset(&ws, 0, sizeof ws);
    CU_CHECK_EQ(leash_conn_from_fd(&ws.c, sv[0]), 0);
    for (intptr_t i = 0; i < 6; i++)
        leash_go(read_waiter, (void *)i);
    leash_go(write_waiter, (void *)6);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&S.io_waiters) >= 7, HANG_MS));
    CU_CHECK_EQ(leash_conn_close(ws.c), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&ws.finished) == 7, HANG_MS));
    for (int i = 0; i < 7; i++)
        CU_CHECK_EQ(atomic_load(&ws.results[i]), LEASH_ECLOSED);
    /* Every later call: closed, never the fd. */
    char b[4];
    CU_CHECK_EQ(leash_conn_read(ws.c, b, 4), LEASH_ECLOSED);
    CU_CHECK_EQ(leash_conn_write(ws.c, "x", 1), LEASH_ECLOSED);
    CU_CHECK_EQ(leash_conn_set_deadline(ws.c, -1), LEASH_ECLOSED);
    CU_CHECK_EQ(leash_conn_fd(ws.c), LEASH_ECLOSED);
    CU_CHECK_EQ(leash_conn_close(ws.c), LEASH_ECLOSED);
    leash_release(ws.c);
    close(sv[1]);

    /* A listener: close wakes its acceptor. */
    memset(&ws, 0, sizeof ws);
    CU_CHECK_EQ(leash_listen(&ws.c, "tcp", "127.0.0.1:0"), 0);
    leash_go(accept_waiter, (void *)0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&S.io_waiters) >= 1, HANG_MS));
    CU_CHECK_EQ(leash_conn_close(ws.c), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&ws.finished) == 1, HANG_MS));
    CU_CHECK_EQ(atomic_load(&ws.results[0]), LEASH_ECLOSED);
    leash_release(ws.c);
    return 0;
}

Test(conn, close_wakes_every_waiter, .timeout = 30) {
    cu_run(close_wakes_main, NULL);
}

static void timed_reader(void *p) {
    (void)p;
    char b[4];
    int64_t t0 = leash_now();
    ssize_t n = leash_conn_read(ws.c, b, sizeof b);
    atomic_store(&ws.results[0], (int)n);
    atomic_store(&ws.results[1], (int)((leash_now() - t0) / MS));
    atomic_fetch_add(&ws.finished, 1);
}

static int deadline_main(void *arg) {
    (void)arg;
    int sv[2];
    CU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    memset(&ws, 0, sizeof ws);
    CU_CHECK_EQ(leash_conn_from_fd(&ws.c, sv[0]), 0);

    /* Blocked with no deadline; another coroutine sets one 50 ms out. */
    leash_go(timed_reader, NULL);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&S.io_waiters) >= 1, HANG_MS));
    CU_CHECK_EQ(leash_conn_set_read_deadline(ws.c, leash_now() + 50 * MS), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&ws.finished) == 1, HANG_MS));
    CU_CHECK_EQ(atomic_load(&ws.results[0]), LEASH_ETIMEDOUT);
    CU_CHECK(atomic_load(&ws.results[1]) >= 50);
    /* Past it, a read fails at once, even with data there (Go's rule). */
    CU_CHECK_EQ(write(sv[1], "abc", 3), 3);
    char b[4];
    CU_CHECK_EQ(leash_conn_read(ws.c, b, sizeof b), LEASH_ETIMEDOUT);

    /* Blocked with a far deadline; moved into the past: wakes now. */
    CU_CHECK_EQ(leash_conn_set_read_deadline(ws.c, -1), 0);
    CU_CHECK_EQ(leash_conn_read(ws.c, b, sizeof b), 3);
    CU_CHECK_EQ(leash_conn_set_deadline(ws.c, leash_now() + 60000 * MS), 0);
    ws.finished = 0;
    leash_go(timed_reader, NULL);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&S.io_waiters) >= 1, HANG_MS));
    CU_CHECK_EQ(leash_conn_set_deadline(ws.c, leash_now()), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&ws.finished) == 1, HANG_MS));
    CU_CHECK_EQ(atomic_load(&ws.results[0]), LEASH_ETIMEDOUT);
    CU_CHECK(atomic_load(&ws.results[1]) < 10000);

    /* Cleared while blocked: it keeps waiting, then reads. */
    CU_CHECK_EQ(leash_conn_set_deadline(ws.c, leash_now() + 60000 * MS), 0);
    ws.finished = 0;
    leash_go(timed_reader, NULL);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&S.io_waiters) >= 1, HANG_MS));
    CU_CHECK_EQ(leash_conn_set_read_deadline(ws.c, -1), 0);
    leash_sleep(20 * MS);
    CU_CHECK_EQ(atomic_load(&ws.finished), 0);
    CU_CHECK_EQ(write(sv[1], "z", 1), 1);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&ws.finished) == 1, HANG_MS));
    CU_CHECK_EQ(atomic_load(&ws.results[0]), 1);

    CU_CHECK_EQ(leash_conn_set_deadline(ws.c, -5), LEASH_EINVAL);
    leash_release(ws.c); /* the last release closes */
    close(sv[1]);
    return 0;
}

Test(conn, deadline_from_another_coroutine_wakes_reader, .timeout = 30) {
    cu_run(deadline_main, NULL);
}

/* ------------------------------------------------- listen, dial, accept */

static void echo_server(void *p) {
    leash_conn *l = p;
    leash_conn *c;
    CU_CHECK_EQ(leash_conn_accept(l, &c), 0);
    char buf[256];
    ssize_t n;
    while ((n = leash_conn_read(c, buf, sizeof buf)) > 0)
        CU_CHECK_EQ(leash_conn_write(c, buf, (size_t)n), n);
    CU_CHECK_EQ(n, 0);
    leash_release(c);
}

static void echo_round(leash_conn *l, const char *network, const char *addr) {
    leash_go(echo_server, l, l);
    leash_conn *c;
    CU_CHECK_EQ(leash_dial(&c, network, addr, leash_now() + HANG_MS * MS), 0);
    struct iovec iov[3] = {{"hel", 3}, {NULL, 0}, {"lo, world", 9}};
    CU_CHECK_EQ(leash_conn_writev(c, iov, 3), 12);
    CU_CHECK_EQ(strncmp(iov[0].iov_base, "hel", 3), 0); /* not consumed */
    char buf[32] = {0};
    size_t got = 0;
    while (got < 12) {
        ssize_t n = leash_conn_read(c, buf + got, sizeof buf - got);
        CU_CHECK(n > 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CU_CHECK_EQ(strcmp(buf, "hello, world"), 0);
    char a[128];
    CU_CHECK(leash_conn_remote_addr(c, a, sizeof a) > 0);
    if (strcmp(network, "unix") != 0)
        CU_CHECK(strncmp(a, "127.0.0.1:", 10) == 0);
    leash_release(c); /* closes: the server reads EOF and returns */
}

static int tcp_unix_main(void *arg) {
    (void)arg;
    leash_conn *l;
    CU_CHECK_EQ(leash_listen(&l, "tcp", "127.0.0.1:0"), 0);
    int port = leash_conn_local_port(l);
    CU_CHECK(port > 0);
    char addr[64], local[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    CU_CHECK_EQ(leash_conn_local_addr(l, local, sizeof local),
                (int)strlen(addr));
    CU_CHECK_EQ(strcmp(local, addr), 0);
    CU_CHECK_EQ(leash_conn_local_addr(l, local, 4), LEASH_EINVAL);
    echo_round(l, "tcp", addr);
    snprintf(addr, sizeof addr, "localhost:%d", port);
    echo_round(l, "tcp4", addr);
    leash_release(l);

    char path[64];
    snprintf(path, sizeof path, "/tmp/leash-test-conn-%d.sock", (int)getpid());
    unlink(path);
    CU_CHECK_EQ(leash_listen(&l, "unix", path), 0);
    CU_CHECK_EQ(access(path, F_OK), 0);
    CU_CHECK_EQ(leash_conn_local_port(l), LEASH_EINVAL);
    echo_round(l, "unix", path);
    CU_CHECK_EQ(leash_conn_close(l), 0);
    CU_CHECK(access(path, F_OK) != 0); /* removed at close, as in Go */
    leash_release(l);

    /* Refused, and a deadline on dial. */
    leash_conn *c = (leash_conn *)(intptr_t)1;
    CU_CHECK_EQ(leash_dial(&c, "unix", path, -1), -ENOENT);
    CU_CHECK(c == NULL);
    return 0;
}

Test(conn, listen_dial_accept_tcp_and_unix, .timeout = 30) {
    cu_run(tcp_unix_main, NULL);
}

/* ------------------------------------------------- bad arguments */

static int bad_args_main(void *arg) {
    (void)arg;
    leash_conn *c = NULL;
    char b[8];
    leash_conn *wild = (leash_conn *)(intptr_t)0x1000;
    CU_CHECK_EQ(leash_listen(NULL, "tcp", ":0"), LEASH_EINVAL);
    CU_CHECK_EQ(leash_listen(&c, NULL, ":0"), LEASH_EINVAL);
    CU_CHECK_EQ(leash_listen(&c, "tcp", NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_listen(&c, "udp", ":0"), LEASH_EINVAL);
    CU_CHECK_EQ(leash_listen(&c, "tcp", "127.0.0.1"), LEASH_EINVAL);
    CU_CHECK_EQ(leash_listen(&c, "tcp", "127.0.0.1:99999"), LEASH_EINVAL);
    CU_CHECK_EQ(leash_listen(&c, "tcp", "example.com:80"), LEASH_EINVAL);
    CU_CHECK_EQ(leash_listen(&c, "tcp4", "[::1]:0"), LEASH_EINVAL);
    CU_CHECK_EQ(leash_listen(&c, "unix", ""), LEASH_EINVAL);
    CU_CHECK_EQ(leash_dial(NULL, "tcp", ":1", -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_dial(&c, "tcp", "127.0.0.1:1", -7), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_from_fd(&c, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_from_fd(NULL, 0), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_accept(NULL, &c), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_accept(wild, NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_read(NULL, b, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_read(wild, b, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_write(NULL, b, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_writev(NULL, NULL, 0), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_read_ctx(NULL, NULL, b, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_write_ctx(NULL, NULL, b, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_close(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_close(wild), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_set_deadline(NULL, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_set_read_deadline(NULL, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_set_write_deadline(NULL, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_local_addr(NULL, b, sizeof b), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_remote_addr(NULL, b, sizeof b), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_local_port(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_fd(NULL), LEASH_EINVAL);
    /* A channel is not a connection. */
    leash_chan *ch = leash_chan_make(0, 0);
    CU_CHECK_EQ(leash_conn_read((leash_conn *)(void *)ch, b, 1), LEASH_EINVAL);
    leash_case cs[1] = {LEASH_READABLE_CASE((leash_conn *)(void *)ch)};
    CU_CHECK_EQ(leash_try_select(cs, 1), LEASH_EINVAL);
    leash_release(ch);

    int sv[2];
    CU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CU_CHECK_EQ(leash_conn_from_fd(&c, sv[0]), 0);
    CU_CHECK_EQ(leash_conn_read(c, NULL, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_write(c, NULL, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_writev(c, NULL, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_writev(c, NULL, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_read(c, b, 0), 0);
    CU_CHECK_EQ(leash_conn_writev(c, NULL, 0), 0);
    CU_CHECK_EQ(leash_conn_local_addr(c, NULL, 4), LEASH_EINVAL);
    CU_CHECK_EQ(leash_conn_read_ctx(c, (leash_ctx *)(void *)wild, b, 1),
                LEASH_EINVAL);
    leash_release(c);
    close(sv[1]);
    return 0;
}

Test(conn, bad_arguments_are_einval, .timeout = 30) {
    cu_run(bad_args_main, NULL);
}
