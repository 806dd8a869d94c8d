/* SPDX-License-Identifier: MIT */
/*
 * test_ioedge.c — a connection's fd is registered with epoll once,
 * edge-triggered (netpoll.c, "Registration"), and no readiness is lost:
 * waits with and without an operation before them, partial reads, a
 * plain wait before the fd was adopted, and a number a closed connection
 * gave back and a plain fd took.
 *
 * Socketpairs only. Coroutines record failures with CU_CHECK*.
 * LEASH_TEST_TIMEOUT 60
 */
#define _GNU_SOURCE 1
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core_util.h"
#include "internal.h"

#define MS CU_MS
#define ROUNDS 2000

static void conn_pair(leash_conn **a, leash_conn **b) {
    int sv[2];
    CU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CU_CHECK_EQ(leash_conn_from_fd(a, sv[0]), 0);
    CU_CHECK_EQ(leash_conn_from_fd(b, sv[1]), 0);
}

/* ------------------------------------------------- one registration each */

typedef struct {
    leash_conn *c;
    atomic_int done;
} echo_st;

static void echoer(void *p) {
    echo_st *st = p;
    char b[16];
    ssize_t r;
    while ((r = leash_conn_read(st->c, b, sizeof b)) > 0)
        CU_CHECK_EQ(leash_conn_write(st->c, b, (size_t)r), r);
    CU_CHECK_EQ(r, 0); /* end of stream, nothing else */
    atomic_store(&st->done, 1);
}

/* Each round trip parks both sides in a read: with one-shot
 * registrations that was an epoll_ctl per wait (4,000 here). */
static int round_trips_main(void *arg) {
    (void)arg;
    leash_conn *a, *b;
    conn_pair(&a, &b);
    echo_st st = {.c = b};
    long ctl0 = netpoll_ctl_calls();
    leash_go(echoer, &st);
    uint64_t sent = 0, got = 0;
    for (uint32_t i = 0; i < ROUNDS; i++) {
        uint32_t v = i * 2654435761u, back = 0;
        CU_CHECK_EQ(leash_conn_write(a, &v, sizeof v), (ssize_t)sizeof v);
        size_t have = 0;
        while (have < sizeof back) {
            ssize_t r = leash_conn_read(a, (char *)&back + have,
                                        sizeof back - have);
            CU_CHECK(r > 0);
            if (r <= 0)
                break;
            have += (size_t)r;
        }
        sent += v;
        got += back;
    }
    CU_CHECK_EQ(got, sent);
    long ctl = netpoll_ctl_calls() - ctl0;
    if (ctl > 4)
        cu_fail(__FILE__, __LINE__, "%ld epoll_ctl calls for %d round trips",
                ctl, ROUNDS);
    CU_CHECK_EQ(leash_conn_close(a), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st.done), 5000));
    leash_release(a);
    leash_release(b);
    return 0;
}

Test(ioedge, a_connection_registers_once, .timeout = 30) {
    cu_run(round_trips_main, NULL);
}

/* ------------------------------------------- waits that keep level semantics */

/* leash_fd_wait has no operation before it: data that is there is
 * reported however often it is asked, and once read, it is not. */
static int fd_wait_main(void *arg) {
    (void)arg;
    leash_conn *a, *b;
    conn_pair(&a, &b);
    int fd = leash_conn_fd(a);
    CU_CHECK_EQ(leash_fd_wait(fd, LEASH_POLLIN, leash_now() + 20 * MS),
                LEASH_ETIMEDOUT); /* registers it, nothing there */
    CU_CHECK_EQ(leash_conn_write(b, "xyz", 3), 3);
    for (int i = 0; i < 3; i++)
        CU_CHECK_EQ(leash_fd_wait(fd, LEASH_POLLIN, leash_now() + 2000 * MS),
                    LEASH_POLLIN);
    char buf[8];
    CU_CHECK_EQ(leash_conn_read(a, buf, sizeof buf), 3);
    CU_CHECK_EQ(leash_fd_wait(fd, LEASH_POLLIN, leash_now() + 20 * MS),
                LEASH_ETIMEDOUT); /* no stale readiness */
    /* Writable all along: reported every time, too. */
    for (int i = 0; i < 3; i++)
        CU_CHECK_EQ(leash_fd_wait(fd, LEASH_POLLOUT, leash_now() + 2000 * MS),
                    LEASH_POLLOUT);
    leash_release(a);
    leash_release(b);
    return 0;
}

Test(ioedge, fd_wait_reports_data_until_it_is_read, .timeout = 30) {
    cu_run(fd_wait_main, NULL);
}

/* A partial read leaves data that raises no new edge: the next read must
 * find it without waiting for one. */
static int partial_main(void *arg) {
    (void)arg;
    leash_conn *a, *b;
    conn_pair(&a, &b);
    char msg[100], got[100];
    for (int i = 0; i < 100; i++)
        msg[i] = (char)(i * 7 + 1);
    CU_CHECK_EQ(leash_conn_write(b, msg, sizeof msg), (ssize_t)sizeof msg);
    size_t have = 0;
    while (have < sizeof got) {
        leash_conn_set_read_deadline(a, leash_now() + 2000 * MS);
        ssize_t r = leash_conn_read(a, got + have, 10);
        CU_CHECK_EQ(r, 10);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    CU_CHECK_EQ(memcmp(got, msg, sizeof msg), 0);
    leash_release(a);
    leash_release(b);
    return 0;
}

Test(ioedge, partial_reads_find_the_rest, .timeout = 30) {
    cu_run(partial_main, NULL);
}

/* ------------------------------------------------- registrations handed on */

typedef struct {
    leash_conn *c;
    atomic_int got;
} reader_st;

static void reader(void *p) {
    reader_st *st = p;
    char b[8];
    atomic_store(&st->got, (int)leash_conn_read(st->c, b, sizeof b));
}

/* A plain wait left a one-shot registration (disarmed after it timed
 * out); the connection that adopts the fd turns it edge-triggered. */
static int adopt_main(void *arg) {
    (void)arg;
    int sv[2];
    CU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char b[8];
    CU_CHECK_EQ(leash_read(sv[0], b, sizeof b, leash_now() + 20 * MS),
                LEASH_ETIMEDOUT);
    reader_st st = {.got = -1000};
    CU_CHECK_EQ(leash_conn_from_fd(&st.c, sv[0]), 0);
    leash_go(reader, &st);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&S.io_waiters) == 1, 5000));
    CU_CHECK_EQ(write(sv[1], "ab", 2), 2);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st.got) != -1000, 5000));
    CU_CHECK_EQ(atomic_load(&st.got), 2);
    leash_release(st.c);
    close(sv[1]);
    return 0;
}

Test(ioedge, a_plain_wait_before_adoption, .timeout = 30) {
    cu_run(adopt_main, NULL);
}

/* A closed connection's number, taken by a plain fd, is one-shot again:
 * the plain fd, closed with close(2) and its number reused, still
 * works (the kernel forgot it; a stale edge-triggered belief would make
 * the next wait sleep forever). */
static int reuse_main(void *arg) {
    (void)arg;
    leash_conn *a, *b;
    conn_pair(&a, &b);
    int fd = leash_conn_fd(a);
    CU_CHECK_EQ(leash_fd_wait(fd, LEASH_POLLIN, leash_now() + 10 * MS),
                LEASH_ETIMEDOUT); /* registered edge-triggered */
    CU_CHECK_EQ(leash_conn_close(a), 0);
    leash_release(a);
    leash_release(b);
    for (int round = 0; round < 2; round++) {
        int sv[2];
        CU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        int mine = sv[0] == fd ? sv[0] : sv[1] == fd ? sv[1] : sv[0];
        int peer = mine == sv[0] ? sv[1] : sv[0];
        char buf[8];
        CU_CHECK_EQ(leash_read(mine, buf, sizeof buf, leash_now() + 10 * MS),
                    LEASH_ETIMEDOUT);
        CU_CHECK_EQ(write(peer, "q", 1), 1);
        CU_CHECK_EQ(leash_read(mine, buf, sizeof buf, leash_now() + 2000 * MS),
                    1);
        close(sv[0]); /* plain close(2), behind leash's back */
        close(sv[1]);
    }
    return 0;
}

Test(ioedge, a_returned_number_is_plain_again, .timeout = 30) {
    cu_run(reuse_main, NULL);
}
