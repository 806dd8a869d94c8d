/* SPDX-License-Identifier: MIT */
/*
 * test_netpoll.c — non-blocking I/O through the netpoller: read/write over
 * socketpairs and TCP loopback, deadlines, leash_fd_close waking waiters,
 * EOF, connect/accept, leash_fd_wait, plain-thread I/O (poll path),
 * leash_blocking, bad fds.
 *
 * Loopback only (127.0.0.1, port 0). Assertions on coroutines and other
 * threads go through CU_CHECK*; the test thread turns them into a verdict
 * with CU_ASSERT_CLEAN(). Timing checks are one-sided (a deadline never
 * fires early) with generous upper bounds that only catch hangs.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core_util.h"
#include "internal.h" /* S.io_waiters: how many coroutines wait on an fd */

#define HANG_MS 5000 /* bound that only a hang exceeds */

/* Waits until at least n coroutines are parked in leash_fd_wait. */
static bool io_waiters_at_least(int n) {
    return CU_WAIT_UNTIL(atomic_load(&S.io_waiters) >= n, HANG_MS);
}

static int tcp_listener(uint16_t *port, int backlog) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0)
        return -errno;
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, backlog) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) < 0) {
        int e = errno;
        close(l);
        return -e;
    }
    *port = ntohs(a.sin_port);
    return l;
}

static struct sockaddr_in loopback(uint16_t port) {
    return (struct sockaddr_in){.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

static int tcp_connect(uint16_t port, int64_t deadline) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0)
        return -errno;
    struct sockaddr_in a = loopback(port);
    int r = leash_connect(c, (struct sockaddr *)&a, sizeof a, deadline);
    if (r < 0) {
        close(c);
        return r;
    }
    return c;
}

/* A connected TCP loopback pair (client, server side). */
static bool tcp_pair(int *cli, int *srv) {
    uint16_t port;
    int l = tcp_listener(&port, 8);
    CU_CHECK(l >= 0);
    if (l < 0)
        return false;
    *cli = tcp_connect(port, leash_now() + HANG_MS * CU_MS);
    CU_CHECK(*cli >= 0);
    *srv = leash_accept(l, NULL, NULL, leash_now() + HANG_MS * CU_MS);
    CU_CHECK(*srv >= 0);
    close(l);
    return *cli >= 0 && *srv >= 0;
}

static int sockpair(int sv[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

/* Fills fd's send buffer (and the peer's receive buffer); returns bytes. */
static size_t fill_socket(int fd) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    static char junk[65536];
    size_t total = 0;
    for (;;) {
        ssize_t r = write(fd, junk, sizeof junk);
        if (r > 0) {
            total += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        break;
    }
    return total;
}

static uint8_t pattern(uint32_t seed, size_t i) {
    uint32_t x = seed * 2654435761u + (uint32_t)i * 40503u;
    x ^= x >> 13;
    return (uint8_t)(x ^ (x >> 7));
}

/* Reads exactly n bytes (or fails). */
static ssize_t read_full(int fd, void *buf, size_t n, int64_t deadline) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = leash_read(fd, (char *)buf + got, n - got, deadline);
        if (r <= 0)
            return r < 0 ? r : (ssize_t)got;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ------------------------------------------------------- data transfer */

typedef struct {
    int fd;
    size_t n;
    uint32_t seed;
    ssize_t result;
    leash_waitgroup *wg;
} xfer;

static void writer_co(void *p) {
    xfer *x = p;
    char *buf = malloc(x->n);
    for (size_t i = 0; i < x->n; i++)
        buf[i] = (char)pattern(x->seed, i);
    x->result = leash_write(x->fd, buf, x->n, leash_now() + 30000 * CU_MS);
    free(buf);
    leash_waitgroup_done(x->wg);
}

static void reader_co(void *p) {
    xfer *x = p;
    char *buf = malloc(x->n + 1);
    ssize_t r = read_full(x->fd, buf, x->n, leash_now() + 30000 * CU_MS);
    x->result = r;
    if (r == (ssize_t)x->n)
        for (size_t i = 0; i < x->n; i++)
            if ((uint8_t)buf[i] != pattern(x->seed, i)) {
                cu_fail(__FILE__, __LINE__, "byte %zu differs", i);
                x->result = -1;
                break;
            }
    free(buf);
    leash_waitgroup_done(x->wg);
}

/* Both directions at once, n bytes each way (more than the socket
 * buffers: the writers park and get woken as the readers drain). */
static void transfer_both_ways(int a, int b, size_t n) {
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    xfer x[4] = {
        {a, n, 1, 0, &wg}, {b, n, 1, 0, &wg}, /* a -> b */
        {b, n, 2, 0, &wg}, {a, n, 2, 0, &wg}, /* b -> a */
    };
    leash_waitgroup_add(&wg, 4);
    CU_CHECK(leash_go(writer_co, &x[0]) > 0);
    CU_CHECK(leash_go(reader_co, &x[1]) > 0);
    CU_CHECK(leash_go(writer_co, &x[2]) > 0);
    CU_CHECK(leash_go(reader_co, &x[3]) > 0);
    leash_waitgroup_wait(&wg);
    for (int i = 0; i < 4; i++)
        CU_CHECK_EQ(x[i].result, (ssize_t)n);
}

static int socketpair_main(void *arg) {
    (void)arg;
    int sv[2];
    CU_CHECK_EQ(sockpair(sv), 0);
    /* A small message. */
    CU_CHECK_EQ(leash_write(sv[0], "hello", 5, -1), 5);
    char buf[16] = {0};
    CU_CHECK_EQ(leash_read(sv[1], buf, sizeof buf, -1), 5);
    CU_CHECK(memcmp(buf, "hello", 5) == 0);
    /* The fds are non-blocking now. */
    CU_CHECK(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    CU_CHECK(fcntl(sv[1], F_GETFL) & O_NONBLOCK);
    /* Zero-byte read and write. */
    CU_CHECK_EQ(leash_write(sv[0], buf, 0, -1), 0);
    /* 4 MiB each way, concurrently. */
    transfer_both_ways(sv[0], sv[1], 4u << 20);
    CU_CHECK_EQ(leash_fd_close(sv[0]), 0);
    CU_CHECK_EQ(leash_fd_close(sv[1]), 0);
    return 0;
}

Test(netpoll, socketpair_read_write, .timeout = 60) {
    cr_assert_eq(cu_run(socketpair_main, NULL), 0);
}

static int tcp_main(void *arg) {
    (void)arg;
    int c, s;
    if (!tcp_pair(&c, &s))
        return 1;
    CU_CHECK_EQ(leash_write(c, "ping", 4, -1), 4);
    char buf[8] = {0};
    CU_CHECK_EQ(read_full(s, buf, 4, leash_now() + HANG_MS * CU_MS), 4);
    CU_CHECK(memcmp(buf, "ping", 4) == 0);
    transfer_both_ways(c, s, 3u << 20);
    CU_CHECK_EQ(leash_fd_close(c), 0);
    CU_CHECK_EQ(leash_fd_close(s), 0);
    return 0;
}

Test(netpoll, tcp_loopback_read_write, .timeout = 60) {
    cr_assert_eq(cu_run(tcp_main, NULL), 0);
}

/* ------------------------------------------------------------ deadlines */

static int read_deadline_main(void *arg) {
    (void)arg;
    int sv[2];
    CU_CHECK_EQ(sockpair(sv), 0);
    char buf[8];
    int64_t t0 = leash_now();
    int64_t dl = t0 + 50 * CU_MS;
    CU_CHECK_EQ(leash_read(sv[0], buf, sizeof buf, dl), LEASH_ETIMEDOUT);
    int64_t t1 = leash_now();
    CU_CHECK(t1 >= dl); /* never early */
    CU_CHECK(t1 - t0 < HANG_MS * CU_MS);
    /* The fd still works after a timeout. */
    CU_CHECK_EQ(leash_write(sv[1], "x", 1, -1), 1);
    CU_CHECK_EQ(leash_read(sv[0], buf, sizeof buf, leash_now() + HANG_MS * CU_MS), 1);

    /* A write deadline with the buffer full and nobody reading. */
    size_t filled = fill_socket(sv[0]);
    CU_CHECK(filled > 0);
    dl = leash_now() + 30 * CU_MS;
    ssize_t w = leash_write(sv[0], buf, sizeof buf, dl);
    CU_CHECK(w == LEASH_ETIMEDOUT || (w > 0 && w < (ssize_t)sizeof buf));
    CU_CHECK(leash_now() >= dl);

    /* fd_wait with a deadline. */
    dl = leash_now() + 20 * CU_MS;
    CU_CHECK_EQ(leash_fd_wait(sv[0], LEASH_POLLOUT, dl), LEASH_ETIMEDOUT);
    CU_CHECK(leash_now() >= dl);
    leash_fd_close(sv[0]);
    leash_fd_close(sv[1]);
    return 0;
}

Test(netpoll, read_write_deadlines_fire, .timeout = 30) {
    cr_assert_eq(cu_run(read_deadline_main, NULL), 0);
}

static int past_deadline_main(void *arg) {
    (void)arg;
    int sv[2];
    CU_CHECK_EQ(sockpair(sv), 0);
    char buf[8];
    int64_t t0 = leash_now();
    CU_CHECK_EQ(leash_read(sv[0], buf, sizeof buf, t0 - 1), LEASH_ETIMEDOUT);
    CU_CHECK_EQ(leash_read(sv[0], buf, sizeof buf, 0), LEASH_ETIMEDOUT);
    CU_CHECK_EQ(leash_fd_wait(sv[0], LEASH_POLLIN, t0 - 1), LEASH_ETIMEDOUT);
    CU_CHECK_EQ(leash_fd_wait(sv[0], LEASH_POLLIN, leash_now()), LEASH_ETIMEDOUT);
    uint16_t port;
    int l = tcp_listener(&port, 4);
    CU_CHECK(l >= 0);
    CU_CHECK_EQ(leash_accept(l, NULL, NULL, t0 - 1), LEASH_ETIMEDOUT);
    CU_CHECK(leash_now() - t0 < 1000 * CU_MS); /* at once, not after a wait */
    close(l);
    leash_fd_close(sv[0]);
    leash_fd_close(sv[1]);
    return 0;
}

Test(netpoll, past_deadline_times_out_at_once, .timeout = 30) {
    cr_assert_eq(cu_run(past_deadline_main, NULL), 0);
}

static int accept_deadline_main(void *arg) {
    (void)arg;
    uint16_t port;
    int l = tcp_listener(&port, 4);
    CU_CHECK(l >= 0);
    int64_t t0 = leash_now(), dl = t0 + 40 * CU_MS;
    CU_CHECK_EQ(leash_accept(l, NULL, NULL, dl), LEASH_ETIMEDOUT);
    CU_CHECK(leash_now() >= dl);
    CU_CHECK(leash_now() - t0 < HANG_MS * CU_MS);
    /* Then a connection arrives and is accepted, with its address. */
    int c = tcp_connect(port, leash_now() + HANG_MS * CU_MS);
    CU_CHECK(c >= 0);
    struct sockaddr_in peer;
    unsigned plen = sizeof peer;
    int s = leash_accept(l, (struct sockaddr *)&peer, &plen,
                         leash_now() + HANG_MS * CU_MS);
    CU_CHECK(s >= 0);
    CU_CHECK_EQ(plen, sizeof peer);
    CU_CHECK_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    /* The accepted fd is non-blocking and close-on-exec. */
    CU_CHECK(fcntl(s, F_GETFL) & O_NONBLOCK);
    CU_CHECK(fcntl(s, F_GETFD) & FD_CLOEXEC);
    leash_fd_close(c);
    leash_fd_close(s);
    leash_fd_close(l);
    return 0;
}

Test(netpoll, accept_deadline_then_accept, .timeout = 30) {
    cr_assert_eq(cu_run(accept_deadline_main, NULL), 0);
}

/* ----------------------------------------------------- close wakes waiters */

static atomic_int closed_result = 1;

static void blocked_reader(void *p) {
    int fd = (int)(intptr_t)p;
    char buf[8];
    atomic_store(&closed_result, (int)leash_read(fd, buf, sizeof buf, -1));
}

static void blocked_writer(void *p) {
    int fd = (int)(intptr_t)p;
    char buf[4096] = {0};
    atomic_store(&closed_result, (int)leash_write(fd, buf, sizeof buf, -1));
}

static void blocked_acceptor(void *p) {
    int fd = (int)(intptr_t)p;
    atomic_store(&closed_result, leash_accept(fd, NULL, NULL, -1));
}

static int close_wakes_main(void *arg) {
    (void)arg;
    int base = atomic_load(&S.io_waiters);
    /* A reader. */
    int sv[2];
    CU_CHECK_EQ(sockpair(sv), 0);
    atomic_store(&closed_result, 1);
    CU_CHECK(leash_go(blocked_reader, (void *)(intptr_t)sv[0]) > 0);
    CU_CHECK(io_waiters_at_least(base + 1));
    CU_CHECK_EQ(leash_fd_close(sv[0]), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&closed_result) != 1, HANG_MS));
    CU_CHECK_EQ(atomic_load(&closed_result), LEASH_ECLOSED);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&S.io_waiters) == base, HANG_MS));
    close(sv[1]);

    /* A writer with the buffer full. */
    CU_CHECK_EQ(sockpair(sv), 0);
    fill_socket(sv[0]);
    atomic_store(&closed_result, 1);
    CU_CHECK(leash_go(blocked_writer, (void *)(intptr_t)sv[0]) > 0);
    CU_CHECK(io_waiters_at_least(base + 1));
    CU_CHECK_EQ(leash_fd_close(sv[0]), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&closed_result) != 1, HANG_MS));
    CU_CHECK_EQ(atomic_load(&closed_result), LEASH_ECLOSED);
    close(sv[1]);

    /* An acceptor. */
    uint16_t port;
    int l = tcp_listener(&port, 4);
    atomic_store(&closed_result, 1);
    CU_CHECK(leash_go(blocked_acceptor, (void *)(intptr_t)l) > 0);
    CU_CHECK(io_waiters_at_least(base + 1));
    CU_CHECK_EQ(leash_fd_close(l), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&closed_result) != 1, HANG_MS));
    CU_CHECK_EQ(atomic_load(&closed_result), LEASH_ECLOSED);

    /* The fd number, reused by a new socket, works normally. */
    CU_CHECK_EQ(sockpair(sv), 0);
    CU_CHECK_EQ(leash_write(sv[1], "ok", 2, -1), 2);
    char buf[4];
    CU_CHECK_EQ(leash_read(sv[0], buf, sizeof buf, leash_now() + HANG_MS * CU_MS), 2);
    leash_fd_close(sv[0]);
    leash_fd_close(sv[1]);
    return 0;
}

Test(netpoll, fd_close_wakes_blocked_io, .timeout = 30) {
    cr_assert_eq(cu_run(close_wakes_main, NULL), 0);
}

/* Several coroutines wait on the same fd, both directions: close wakes
 * every one of them, once. */
static atomic_int many_closed, many_other;

static void many_reader(void *p) {
    char b[4];
    int r = (int)leash_read((int)(intptr_t)p, b, sizeof b, -1);
    atomic_fetch_add(r == LEASH_ECLOSED ? &many_closed : &many_other, 1);
}

static void many_writer(void *p) {
    char b[1024] = {0};
    int r = (int)leash_write((int)(intptr_t)p, b, sizeof b, -1);
    atomic_fetch_add(r == LEASH_ECLOSED ? &many_closed : &many_other, 1);
}

static int close_many_main(void *arg) {
    (void)arg;
    int base = atomic_load(&S.io_waiters);
    int sv[2];
    CU_CHECK_EQ(sockpair(sv), 0);
    fill_socket(sv[0]);
    for (int i = 0; i < 8; i++) {
        CU_CHECK(leash_go(many_reader, (void *)(intptr_t)sv[0]) > 0);
        CU_CHECK(leash_go(many_writer, (void *)(intptr_t)sv[0]) > 0);
    }
    CU_CHECK(io_waiters_at_least(base + 16));
    leash_sleep(5 * CU_MS);
    CU_CHECK_EQ(atomic_load(&many_closed) + atomic_load(&many_other), 0);
    CU_CHECK_EQ(leash_fd_close(sv[0]), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&many_closed) + atomic_load(&many_other) == 16,
                           HANG_MS));
    CU_CHECK_EQ(atomic_load(&many_closed), 16);
    CU_CHECK_EQ(atomic_load(&many_other), 0);
    close(sv[1]);
    return 0;
}

Test(netpoll, fd_close_wakes_every_waiter, .timeout = 30) {
    cr_assert_eq(cu_run(close_many_main, NULL), 0);
}

/* A reader and a writer on one socket: data wakes the reader only, space
 * wakes the writer. */
static atomic_int rw_read_done, rw_write_done;

static void rw_reader(void *p) {
    char b[16];
    ssize_t r = leash_read((int)(intptr_t)p, b, sizeof b, leash_now() + HANG_MS * CU_MS);
    CU_CHECK_EQ(r, 3);
    atomic_store(&rw_read_done, 1);
}

static void rw_writer(void *p) {
    char b[100] = {0};
    ssize_t r = leash_write((int)(intptr_t)p, b, sizeof b, leash_now() + HANG_MS * CU_MS);
    CU_CHECK_EQ(r, 100);
    atomic_store(&rw_write_done, 1);
}

static int two_directions_main(void *arg) {
    (void)arg;
    int base = atomic_load(&S.io_waiters);
    int sv[2];
    CU_CHECK_EQ(sockpair(sv), 0);
    size_t filled = fill_socket(sv[0]);
    CU_CHECK(leash_go(rw_reader, (void *)(intptr_t)sv[0]) > 0);
    CU_CHECK(leash_go(rw_writer, (void *)(intptr_t)sv[0]) > 0);
    CU_CHECK(io_waiters_at_least(base + 2));
    /* Data for the reader. */
    CU_CHECK_EQ(write(sv[1], "abc", 3), 3);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&rw_read_done), HANG_MS));
    leash_sleep(5 * CU_MS);
    CU_CHECK_EQ(atomic_load(&rw_write_done), 0); /* no room yet */
    /* Drain: room for the writer. */
    char *sink = malloc(filled + 200);
    size_t got = 0;
    while (got < filled + 100) {
        ssize_t r = leash_read(sv[1], sink, filled + 200, leash_now() + HANG_MS * CU_MS);
        CU_CHECK(r > 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    free(sink);
    CU_CHECK_EQ(got, filled + 100);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&rw_write_done), HANG_MS));
    leash_fd_close(sv[0]);
    leash_fd_close(sv[1]);
    return 0;
}

Test(netpoll, reader_and_writer_on_one_fd, .timeout = 30) {
    cr_assert_eq(cu_run(two_directions_main, NULL), 0);
}

/* ------------------------------------------------------- EOF, connect */

static int eof_main(void *arg) {
    (void)arg;
    int sv[2];
    CU_CHECK_EQ(sockpair(sv), 0);
    CU_CHECK_EQ(leash_write(sv[1], "hi", 2, -1), 2);
    close(sv[1]);
    char buf[8];
    int64_t dl = leash_now() + HANG_MS * CU_MS;
    CU_CHECK_EQ(leash_read(sv[0], buf, sizeof buf, dl), 2);
    CU_CHECK_EQ(leash_read(sv[0], buf, sizeof buf, dl), 0);
    CU_CHECK_EQ(leash_read(sv[0], buf, sizeof buf, dl), 0);
    leash_fd_close(sv[0]);

    /* A reader parked before the peer closes wakes with 0. */
    int c, s;
    if (!tcp_pair(&c, &s))
        return 1;
    int base = atomic_load(&S.io_waiters);
    atomic_store(&closed_result, 1);
    CU_CHECK(leash_go(blocked_reader, (void *)(intptr_t)s) > 0);
    CU_CHECK(io_waiters_at_least(base + 1));
    CU_CHECK_EQ(leash_fd_close(c), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&closed_result) != 1, HANG_MS));
    CU_CHECK_EQ(atomic_load(&closed_result), 0);
    /* Writing to a peer that is gone: an OS error (SIGPIPE ignored). */
    signal(SIGPIPE, SIG_IGN);
    ssize_t w = 0;
    for (int i = 0; i < 100 && w >= 0; i++) /* the RST may take a write */
        w = leash_write(s, "late", 4, leash_now() + HANG_MS * CU_MS);
    CU_CHECK(w == -EPIPE || w == -ECONNRESET);
    leash_fd_close(s);
    return 0;
}

Test(netpoll, eof_reads_zero, .timeout = 30) {
    cr_assert_eq(cu_run(eof_main, NULL), 0);
}

static int refused_main(void *arg) {
    (void)arg;
    /* A port that was bound, then closed without listening. */
    int t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    CU_CHECK_EQ(bind(t, (struct sockaddr *)&a, sizeof a), 0);
    CU_CHECK_EQ(getsockname(t, (struct sockaddr *)&a, &len), 0);
    close(t);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r = leash_connect(c, (struct sockaddr *)&a, sizeof a,
                          leash_now() + HANG_MS * CU_MS);
    CU_CHECK_EQ(r, -ECONNREFUSED);
    leash_fd_close(c);

    /* connect with no deadline to a listener: 0. */
    uint16_t port;
    int l = tcp_listener(&port, 4);
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a = loopback(port);
    CU_CHECK_EQ(leash_connect(c, (struct sockaddr *)&a, sizeof a, -1), 0);
    leash_fd_close(c);
    close(l);
    return 0;
}

Test(netpoll, connect_refused, .timeout = 30) {
    cr_assert_eq(cu_run(refused_main, NULL), 0);
}

/* ----------------------------------------------- errno after a park */

/* An accept that parks and is woken by the listener shutting down must
 * fail with EINVAL, read on the thread it resumed on. glibc's
 * __errno_location is const, so clang computed errno's address before
 * the park and reused it after: the accept then read another worker's
 * errno (stress_net saw -ENOENT, an epoll_ctl error of another thread).
 * Each round leaves a different error in the parking worker's errno and
 * keeps that worker busy, so in many rounds another one resumes the
 * acceptor. */
typedef struct {
    int fd;
    leash_chan *res;
} acc_arg;

static void parked_accept(void *arg) {
    acc_arg *a = arg;
    long r = leash_accept(a->fd, NULL, NULL, leash_now() + HANG_MS * CU_MS);
    leash_send(a->res, &r);
}

/* Out of line, so errno's address is taken on the thread running now
 * (errno_main itself moves between workers). */
static __attribute__((noinline)) void set_errno_here(int e) { errno = e; }

static int errno_main(void *arg) {
    (void)arg;
    leash_chan *res = leash_chan_make(sizeof(long), 0);
    for (int round = 0; round < 40; round++) {
        uint16_t port;
        int l = tcp_listener(&port, 4);
        CU_CHECK(l >= 0);
        acc_arg a = {l, res};
        leash_go(parked_accept, &a);
        CU_CHECK(io_waiters_at_least(1));
        set_errno_here(ENOTTY);
        shutdown(l, SHUT_RD); /* wakes the acceptor: accept fails EINVAL */
        for (int64_t t = leash_now(); leash_now() - t < 2 * CU_MS;)
            ; /* busy: another worker takes the event */
        long r = 0;
        leash_recv(res, &r);
        CU_CHECK_EQ(r, -EINVAL);
        leash_fd_close(l);
    }
    leash_release(res);
    return 0;
}

Test(netpoll, errors_after_a_park_are_read_on_the_resuming_thread,
     .timeout = 60) {
    cr_assert_eq(cu_run(errno_main, NULL), 0);
}

/* --------------------------------------------------------- leash_fd_wait */

static int fd_wait_main(void *arg) {
    (void)arg;
    int sv[2];
    CU_CHECK_EQ(sockpair(sv), 0);
    int64_t t0 = leash_now();
    /* Writable at once, with or without a deadline. */
    CU_CHECK_EQ(leash_fd_wait(sv[0], LEASH_POLLOUT, -1), LEASH_POLLOUT);
    CU_CHECK_EQ(leash_fd_wait(sv[0], LEASH_POLLOUT, leash_now() + HANG_MS * CU_MS),
                LEASH_POLLOUT);
    /* Both asked, only writable: POLLOUT only. */
    CU_CHECK_EQ(leash_fd_wait(sv[0], LEASH_POLLIN | LEASH_POLLOUT, -1), LEASH_POLLOUT);
    CU_CHECK(leash_now() - t0 < 2000 * CU_MS);
    /* Readable once data arrives. */
    CU_CHECK_EQ(write(sv[1], "z", 1), 1);
    int r = leash_fd_wait(sv[0], LEASH_POLLIN | LEASH_POLLOUT, -1);
    CU_CHECK(r & LEASH_POLLIN);
    CU_CHECK_EQ(r & ~(LEASH_POLLIN | LEASH_POLLOUT), 0);
    CU_CHECK_EQ(leash_fd_wait(sv[0], LEASH_POLLIN, -1), LEASH_POLLIN);
    /* Bad arguments. */
    CU_CHECK_EQ(leash_fd_wait(sv[0], 0, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_fd_wait(-1, LEASH_POLLIN, -1), LEASH_EINVAL);
    /* Many times in a row on a ready fd (re-arming each time). */
    for (int i = 0; i < 1000; i++)
        if (leash_fd_wait(sv[0], LEASH_POLLOUT, -1) != LEASH_POLLOUT) {
            CU_CHECK(0);
            break;
        }
    leash_fd_close(sv[0]);
    leash_fd_close(sv[1]);
    return 0;
}

Test(netpoll, fd_wait_ready_at_once, .timeout = 30) {
    cr_assert_eq(cu_run(fd_wait_main, NULL), 0);
}

/* --------------------------------------------------------- plain threads */

/* The peer writes only once the thread's timeouts are checked: a sleep
 * there raced with a thread started late on a loaded machine. */
static leash_waitgroup timeouts_checked = LEASH_WAITGROUP_INIT;

static void *thread_io(void *p) {
    int *sv = p;
    char buf[64];
    /* Deadline on the poll path. */
    int64_t dl = leash_now() + 30 * CU_MS;
    CU_CHECK_EQ(leash_read(sv[0], buf, sizeof buf, dl), LEASH_ETIMEDOUT);
    CU_CHECK(leash_now() >= dl);
    CU_CHECK_EQ(leash_read(sv[0], buf, sizeof buf, 0), LEASH_ETIMEDOUT);
    leash_waitgroup_done(&timeouts_checked);
    /* Data from a coroutine, read here (blocking in poll). */
    ssize_t r = read_full(sv[0], buf, 10, leash_now() + HANG_MS * CU_MS);
    CU_CHECK_EQ(r, 10);
    CU_CHECK(memcmp(buf, "0123456789", 10) == 0);
    /* And an answer, written here. */
    CU_CHECK_EQ(leash_write(sv[0], "ack", 3, -1), 3);
    CU_CHECK_EQ(leash_fd_wait(sv[0], LEASH_POLLOUT, -1), LEASH_POLLOUT);
    /* Big transfer, plain thread to coroutine. */
    size_t n = 2u << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)pattern(9, i);
    CU_CHECK_EQ(leash_write(sv[0], big, n, leash_now() + 30000 * CU_MS), (ssize_t)n);
    free(big);
    return NULL;
}

static leash_waitgroup peer_wg = LEASH_WAITGROUP_INIT;

static void co_peer(void *p) {
    int *sv = p;
    leash_waitgroup_wait(&timeouts_checked);
    leash_sleep(10 * CU_MS); /* the thread then blocks in poll, mostly */
    CU_CHECK_EQ(leash_write(sv[1], "0123456789", 10, -1), 10);
    char buf[4] = {0};
    CU_CHECK_EQ(read_full(sv[1], buf, 3, leash_now() + HANG_MS * CU_MS), 3);
    CU_CHECK(memcmp(buf, "ack", 3) == 0);
    size_t n = 2u << 20;
    char *big = malloc(n);
    CU_CHECK_EQ(read_full(sv[1], big, n, leash_now() + 30000 * CU_MS), (ssize_t)n);
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)big[i] != pattern(9, i)) {
            cu_fail(__FILE__, __LINE__, "byte %zu differs", i);
            break;
        }
    free(big);
    leash_waitgroup_done(&peer_wg);
}

static void *thread_accept(void *p) {
    uint16_t port;
    int l = tcp_listener(&port, 4);
    *(uint16_t *)p = port;
    CU_CHECK_EQ(leash_accept(l, NULL, NULL, leash_now() + 20 * CU_MS), LEASH_ETIMEDOUT);
    int c = tcp_connect(port, leash_now() + HANG_MS * CU_MS); /* poll path */
    CU_CHECK(c >= 0);
    int s = leash_accept(l, NULL, NULL, leash_now() + HANG_MS * CU_MS);
    CU_CHECK(s >= 0);
    CU_CHECK_EQ(leash_write(c, "tcp", 3, -1), 3);
    char b[4];
    CU_CHECK_EQ(read_full(s, b, 3, leash_now() + HANG_MS * CU_MS), 3);
    close(c);
    close(s);
    close(l);
    return NULL;
}

Test(netpoll, plain_thread_io_poll_path, .timeout = 60) {
    int sv[2];
    cr_assert_eq(sockpair(sv), 0);
    pthread_t th, th2;
    uint16_t port = 0;
    leash_waitgroup_add(&timeouts_checked, 1);
    cr_assert_eq(pthread_create(&th, NULL, thread_io, sv), 0);
    cr_assert_eq(pthread_create(&th2, NULL, thread_accept, &port), 0);
    leash_waitgroup_add(&peer_wg, 1);
    cr_assert_gt(leash_go(co_peer, sv), 0);
    pthread_join(th, NULL);
    pthread_join(th2, NULL);
    /* The coroutine finishes reading after the thread's last write. */
    cr_assert_eq(leash_waitgroup_wait(&peer_wg), 0);
    close(sv[0]);
    close(sv[1]);
    CU_ASSERT_CLEAN();
}

/* ------------------------------------------------------------ bad fds */

static int bad_fds_main(void *arg) {
    (void)arg;
    char buf[8];
    CU_CHECK_EQ(leash_read(-1, buf, sizeof buf, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_write(-1, buf, sizeof buf, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_accept(-1, NULL, NULL, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_connect(-1, NULL, 0, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_fd_wait(-1, LEASH_POLLIN, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_fd_close(-1), LEASH_EINVAL);
    int sv[2];
    CU_CHECK_EQ(sockpair(sv), 0);
    CU_CHECK_EQ(leash_read(sv[0], NULL, 4, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_write(sv[0], NULL, 4, -1), LEASH_EINVAL);
    struct sockaddr_in a = loopback(1);
    CU_CHECK_EQ(leash_connect(sv[0], NULL, sizeof a, -1), LEASH_EINVAL);

    /* A closed fd number. */
    int dead = dup(sv[0]);
    close(dead);
    CU_CHECK_EQ(leash_read(dead, buf, sizeof buf, -1), -EBADF);
    CU_CHECK_EQ(leash_write(dead, buf, sizeof buf, -1), -EBADF);
    CU_CHECK_EQ(leash_accept(dead, NULL, NULL, -1), -EBADF);
    CU_CHECK_EQ(leash_fd_close(dead), -EBADF);
    int r = leash_fd_wait(dead, LEASH_POLLIN, leash_now() + 100 * CU_MS);
    CU_CHECK(r == -EBADF || r == LEASH_ECLOSED || r == LEASH_EINVAL);
    /* A number far beyond any open fd (and beyond the descriptor table). */
    int huge = 1 << 30;
    CU_CHECK_EQ(leash_read(huge, buf, sizeof buf, -1), -EBADF);
    CU_CHECK_EQ(leash_write(huge, buf, sizeof buf, -1), -EBADF);
    r = leash_fd_wait(huge, LEASH_POLLIN, leash_now() + 100 * CU_MS);
    if (!(r == -EBADF || r == LEASH_ECLOSED || r == LEASH_EINVAL))
        cu_fail(__FILE__, __LINE__,
                "leash_fd_wait(1<<30) = %d (%s), want -EBADF, ECLOSED or EINVAL",
                r, leash_strerror(r));
    CU_CHECK_EQ(leash_fd_close(huge), -EBADF);
    r = leash_fd_wait(INT32_MAX, LEASH_POLLOUT, -1);
    CU_CHECK(r < 0);

    /* Not a socket: accept and connect say so. */
    int p[2];
    CU_CHECK_EQ(pipe(p), 0);
    CU_CHECK_EQ(leash_accept(p[0], NULL, NULL, -1), -ENOTSOCK);
    CU_CHECK_EQ(leash_connect(p[0], (struct sockaddr *)&a, sizeof a, -1), -ENOTSOCK);
    /* A socket that is not listening. */
    CU_CHECK_EQ(leash_accept(sv[0], NULL, NULL, -1), -EINVAL);
    /* Reading a write-only pipe end. */
    CU_CHECK_EQ(leash_read(p[1], buf, sizeof buf, -1), -EBADF);
    /* Pipes work like sockets. */
    CU_CHECK_EQ(leash_write(p[1], "pp", 2, -1), 2);
    CU_CHECK_EQ(leash_read(p[0], buf, sizeof buf, -1), 2);
    leash_fd_close(p[0]);
    leash_fd_close(p[1]);
    leash_fd_close(sv[0]);
    leash_fd_close(sv[1]);
    return 0;
}

Test(netpoll, bad_fds_are_errors, .timeout = 30) {
    cr_assert_eq(cu_run(bad_fds_main, NULL), 0);
}

/* -------------------------------------------------------- leash_blocking */

static atomic_long ticks;
static atomic_int ticker_stop;

static void ticker(void *p) {
    (void)p;
    while (!atomic_load(&ticker_stop)) {
        atomic_fetch_add(&ticks, 1);
        leash_sleep(CU_MS);
    }
}

static intptr_t blocking_sleep(void *p) {
    usleep((useconds_t)(intptr_t)p);
    return 4242;
}

static atomic_int blocking_done;
static void blocking_co(void *p) {
    (void)p;
    CU_CHECK_EQ(leash_blocking(blocking_sleep, (void *)(intptr_t)30000), 4242);
    atomic_fetch_add(&blocking_done, 1);
}

static int blocking_main(void *arg) {
    (void)arg;
    CU_CHECK_EQ(leash_num_workers(), 1);
    CU_CHECK(leash_go(ticker, NULL) > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&ticks) > 0, HANG_MS));
    long before = atomic_load(&ticks);
    int64_t t0 = leash_now();
    intptr_t r = leash_blocking(blocking_sleep, (void *)(intptr_t)50000);
    int64_t t1 = leash_now();
    long during = atomic_load(&ticks) - before;
    CU_CHECK_EQ(r, 4242);
    CU_CHECK(t1 - t0 >= 50 * CU_MS);
    /* With one worker, the ticker only ran because the call did not hold
     * the worker (1 ms ticks over 50 ms: at least a few). */
    if (during < 3)
        cu_fail(__FILE__, __LINE__, "ticker made %ld ticks during a 50 ms "
                "leash_blocking call on the only worker", during);
    /* Several at once: none holds the worker. */
    for (int i = 0; i < 4; i++)
        CU_CHECK(leash_go(blocking_co, NULL) > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&blocking_done) == 4, HANG_MS));
    atomic_store(&ticker_stop, 1);
    return 0;
}

Test(netpoll, blocking_keeps_worker_free, .timeout = 30) {
    setenv("LEASH_PROCS", "1", 1);
    cr_assert_eq(cu_run(blocking_main, NULL), 0);
    /* On a plain thread it just calls fn. */
    cr_assert_eq(leash_blocking(blocking_sleep, (void *)(intptr_t)1000), 4242);
}
