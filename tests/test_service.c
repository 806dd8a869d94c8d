/* SPDX-License-Identifier: MIT */
/*
 * test_service.c — small things a network service needs (issue 18):
 *
 *   - receiving from a context's done channel (element size 0) with
 *     leash_recv(done, &c): any buffer size, nothing written, in a plain
 *     receive, a try-receive and a select case (it used to be
 *     LEASH_EINVAL);
 *   - typed spawning (leash_go1/2/3): each object handed (a connection
 *     too), a NULL at run time is LEASH_EINVAL (the compile-time check:
 *     tests/compile_fail/);
 *   - leash_debug_stop closes every debug endpoint's port, and the
 *     endpoint can be started again;
 *   - LEASH_STRICT=1 warns (once per channel) when a child uses a
 *     channel its parent holds but did not hand it;
 *   - accepted and dialed TCP connections have TCP_NODELAY set, as Go's
 *     do (a reply is not held back for the peer's delayed ACK);
 *   - the first dump with a libc frame adds < 8 MB of RSS (it added 18 MB
 *     with libc6-dbg installed: LEASH_SYSTEM_DEBUGINFO=1 still does).
 *
 * LEASH_TEST_TIMEOUT 60
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_util.h"
#include "diag_util.h"

#define MS CU_MS

/* ------------------------------------------------ receive from done */

static void cancel_later(void *arg) {
    leash_sleep(10 * MS);
    leash_ctx_cancel(arg);
}

static int recv_done(void *arg) {
    (void)arg;
    leash_ctx *ctx = leash_ctx_with_cancel(leash_ctx_background());
    leash_chan *done = leash_ctx_done(ctx);
    char c = 'x';
    int64_t big = 77;
    CU_CHECK_EQ(leash_try_recv(done, &c), LEASH_EAGAIN);
    leash_go(cancel_later, ctx, ctx);
    CU_CHECK_EQ(leash_recv(done, &c), LEASH_ECLOSED); /* parks, then closed */
    CU_CHECK_EQ(c, 'x');                              /* nothing written */
    CU_CHECK_EQ(leash_recv(done, &big), LEASH_ECLOSED);
    CU_CHECK_EQ(big, 77);
    CU_CHECK_EQ(leash_try_recv(done, &big), LEASH_ECLOSED);
    leash_release(ctx);

    /* In a select, parked and then woken by the cancel. */
    ctx = leash_ctx_with_cancel(leash_ctx_background());
    leash_chan *never = leash_chan_make(sizeof(int), 0);
    int v = 5;
    leash_case cs[2] = {LEASH_RECV_CASE(never, &v),
                        LEASH_RECV_CASE(leash_ctx_done(ctx), &big)};
    leash_go(cancel_later, ctx, ctx);
    CU_CHECK_EQ(leash_select(cs, 2), 1);
    CU_CHECK_EQ(cs[1].ok, 0);
    CU_CHECK_EQ(big, 77);
    CU_CHECK_EQ(leash_select(cs, 2), 1); /* ready at once now */
    CU_CHECK_EQ(big, 77);
    /* A non-zero element size still checks the size. */
    CU_CHECK_EQ(leash_recv(never, &big), LEASH_EINVAL);
    cs[0] = LEASH_RECV_CASE(never, &big);
    CU_CHECK_EQ(leash_try_select(cs, 1), LEASH_EINVAL);
    /* Zero-size channels the user makes behave the same. */
    leash_chan *sig = leash_chan_make(0, 1);
    CU_CHECK_EQ(leash_send_n(sig, NULL, 0), 0);
    CU_CHECK_EQ(leash_recv(sig, &big), 0);
    CU_CHECK_EQ(big, 77);
    leash_release(sig);
    leash_release(never);
    leash_release(ctx);
    return 0;
}

Test(done_recv, any_buffer_on_a_zero_size_channel, .timeout = 30) {
    cr_assert_eq(leash_run(recv_done, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* ------------------------------------------------- typed spawning */

static void holds_all(void *arg) {
    void **objs = arg;
    for (int i = 0; objs[i]; i++) /* each handed: its own reference */
        CU_CHECK_EQ(leash_release_checked(objs[i]), 0);
}

static int typed(void *arg) {
    (void)arg;
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    leash_ctx *x = leash_ctx_with_cancel(leash_ctx_background());
    leash_ticker *t = leash_ticker_start(3600000 * MS);
    void *one[] = {c, NULL}, *two[] = {c, x, NULL}, *three[] = {c, x, t, NULL};
    CU_CHECK(leash_go1(holds_all, one, c) > 0);
    CU_CHECK(leash_go2(holds_all, two, c, x) > 0);
    CU_CHECK(leash_go3(holds_all, three, c, x, t) > 0);
    leash_conn *k;
    CU_CHECK_EQ(leash_listen(&k, "tcp", "127.0.0.1:0"), 0);
    void *conn[] = {k, NULL};
    CU_CHECK(leash_go1(holds_all, conn, k) > 0); /* connections too */
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 5000));
    /* A NULL at run time is an error, not the end of a list. */
    leash_chan *forgotten = NULL;
    CU_CHECK_EQ(leash_go2(holds_all, one, c, forgotten), LEASH_EINVAL);
    CU_CHECK_EQ(leash_go_n_at(__FILE__, __LINE__, holds_all, one, 4, c, c, c),
                LEASH_EINVAL);
    CU_CHECK_EQ(leash_go_n_at(__FILE__, __LINE__, NULL, one, 1, c, 0, 0),
                LEASH_EINVAL);
    leash_release(k);
    leash_ticker_stop(t);
    leash_ctx_cancel(x);
    leash_release(x);
    leash_release(c);
    return 0;
}

Test(typed_go, go1_go2_go3_hand_references, .timeout = 30) {
    cr_assert_eq(leash_run(typed, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* ------------------------------------------------- leash_debug_stop */

static int connect_port(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

Test(debug_stop, closes_the_port_and_can_listen_again, .timeout = 30) {
    cr_expect_eq(leash_debug_stop(), 0); /* none running */
    int port = leash_debug_listen(NULL);
    cr_assert_gt(port, 0);
    int port2 = leash_debug_listen("127.0.0.1:0");
    cr_assert_gt(port2, 0);
    cr_expect_eq(connect_port(port), 0);
    cr_expect_eq(leash_debug_stop(), 2);
    cr_expect_eq(connect_port(port), -ECONNREFUSED);
    cr_expect_eq(connect_port(port2), -ECONNREFUSED);
    cr_expect(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 5000),
              "%zu coroutine(s) left", leash_num_coroutines());
    port = leash_debug_listen(NULL);
    cr_assert_gt(port, 0);
    cr_expect_eq(connect_port(port), 0);
    cr_expect_eq(leash_debug_stop(), 1);
    cr_expect_eq(leash_debug_stop(), 0);
}

/* ------------------------------------------------- symbolizer memory */

/* One coroutine parked inside a qsort callback: its dump has a libc
 * frame, which used to load libc's separate debug file (+18 MB RSS with
 * libc6-dbg installed) into a session kept for good. */
static leash_chan *sort_gate;

static int gate_cmp(const void *x, const void *y) {
    int v;
    leash_recv(sort_gate, &v);
    return *(const int *)x - *(const int *)y;
}

static void sorter(void *arg) {
    (void)arg;
    int a[2] = {2, 1};
    qsort(a, 2, sizeof a[0], gate_cmp);
}

static int dump_memory(void *arg) {
    (void)arg;
    sort_gate = leash_chan_make(sizeof(int), 0);
    leash_go(sorter, NULL);
    leash_sleep(10 * MS);
    FILE *null = fopen("/dev/null", "w");
    size_t before = cu_rss_bytes();
    CU_CHECK(leash_dump(null, LEASH_DUMP_STACKS) >= 2);
    size_t after = cu_rss_bytes();
    fclose(null);
    /* was +18 MB; a sanitizer's shadow memory and quarantine would
     * blur the figure, so there it is not checked */
    if (!cu_sanitized() && after >= before + (8u << 20))
        cu_fail(__FILE__, __LINE__, "first dump: +%zu KiB",
                (after - before) >> 10);
    leash_close(sort_gate);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 5000));
    leash_release(sort_gate);
    return 0;
}

Test(symbolizer, first_dump_stays_small, .timeout = 30) {
    cr_assert_eq(leash_run(dump_memory, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* --------------------------------------- LEASH_STRICT: unhanded borrow */

static void uses_it(void *arg) {
    int v = 1;
    CU_CHECK_EQ(leash_try_send((leash_chan *)arg, &v), 0);
}

static int unhanded(void *arg) {
    (void)arg;
    leash_chan *forgot = leash_chan_make(sizeof(int), 4);
    leash_chan *handed = leash_chan_make(sizeof(int), 4);
    leash_go(uses_it, forgot);              /* forgot to hand it */
    leash_go1(uses_it, handed, handed);     /* handed: no warning */
    leash_go(uses_it, forgot);              /* warned once per channel */
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 5000));
    CU_CHECK_EQ(leash_chan_len(forgot), 2);
    CU_CHECK_EQ(leash_chan_len(handed), 1);
    leash_release(forgot);
    leash_release(handed);
    return 0;
}

static void strict_env(void) { setenv("LEASH_STRICT", "1", 1); }

Test(strict, warns_once_when_a_child_borrows_what_its_parent_did_not_hand,
     .init = strict_env, .timeout = 30) {
    FILE *log = tmpfile();
    cr_assert_not_null(log);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(log), 2);
    int rc = leash_run(unhanded, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    cr_assert_eq(rc, 0);
    CU_ASSERT_CLEAN();
    char buf[4096] = {0};
    rewind(log);
    size_t n = fread(buf, 1, sizeof buf - 1, log);
    buf[n] = 0;
    fclose(log);
    const char *p = strstr(buf, "leash: LEASH_STRICT: goroutine ");
    cr_expect(p && strstr(p, "without a reference while its parent, "
                             "goroutine 1, holds one"),
              "%s", buf);
    cr_expect(p && strstr(p, "test_service.c:"), "%s", buf);
    cr_expect(p && !strstr(p + 20, "LEASH_STRICT:"), "warned twice:\n%s", buf);
}

/* --------------------------------------------- TCP_NODELAY, as in Go */

static int nodelay_of(leash_conn *c) {
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(leash_conn_fd(c), IPPROTO_TCP, TCP_NODELAY, &v, &len) < 0)
        return -errno;
    return v != 0;
}

static int nodelay_main(void *arg) {
    (void)arg;
    leash_conn *l, *d, *a;
    CU_CHECK_EQ(leash_listen(&l, "tcp", "127.0.0.1:0"), 0);
    char addr[64];
    CU_CHECK(leash_conn_local_addr(l, addr, sizeof addr) > 0);
    CU_CHECK_EQ(leash_dial(&d, "tcp", addr, leash_now() + 5000 * MS), 0);
    CU_CHECK_EQ(leash_conn_accept(l, &a), 0);
    CU_CHECK_EQ(nodelay_of(d), 1); /* dialed */
    CU_CHECK_EQ(nodelay_of(a), 1); /* accepted */
    leash_release(a);
    leash_release(d);
    leash_release(l);
    /* Unix sockets have no Nagle: nothing to set, nothing fails. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/leash-nodelay-%d.sock", (int)getpid());
    CU_CHECK_EQ(leash_listen(&l, "unix", path), 0);
    CU_CHECK_EQ(leash_dial(&d, "unix", path, leash_now() + 5000 * MS), 0);
    CU_CHECK_EQ(leash_conn_accept(l, &a), 0);
    CU_CHECK_EQ(leash_conn_write(d, "x", 1), 1);
    char b;
    CU_CHECK_EQ(leash_conn_read(a, &b, 1), 1);
    leash_release(a);
    leash_release(d);
    leash_release(l);
    return 0;
}

Test(tcp, connections_start_with_nodelay_as_in_go, .timeout = 30) {
    cr_assert_eq(leash_run(nodelay_main, NULL), 0);
    CU_ASSERT_CLEAN();
}
