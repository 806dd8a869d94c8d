/* SPDX-License-Identifier: MIT */
/*
 * test_nullconv.c — include/leash.h's NULL conventions, call by call.
 *
 * Every public function that takes a pointer is called with NULL in each
 * pointer parameter (one at a time), and the result is checked against
 * what the header promises: LEASH_EINVAL for a call that returns an
 * error code (its "Conventions": NULL gives LEASH_EINVAL), NULL back for
 * a constructor or a lookup, nothing for the void calls documented as
 * ignoring NULL, and, where the header says so, a default (an optional
 * FILE or options pointer, a NULL context meaning none, a NULL channel
 * blocking forever as Go's nil channel does). Never a crash: each
 * Criterion test runs in its own process, so a crash fails that test.
 *
 * Every mismatch is printed (not just the first), then the test fails.
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core_util.h"
#include "diag_util.h"

static atomic_int nbad;

/* got must equal want; else the call and both values are printed. */
#define EXPECT(call, want)                                                  \
    do {                                                                    \
        long long got_ = (long long)(call), want_ = (long long)(want);      \
        if (got_ != want_) {                                                \
            fprintf(stderr, "%s:%d: %s = %lld, want %lld\n", __FILE__,     \
                    __LINE__, #call, got_, want_);                          \
            atomic_fetch_add(&nbad, 1);                                     \
        }                                                                   \
    } while (0)
#define EXPECT_NULL(call)                                                   \
    do {                                                                    \
        const void *got_ = (const void *)(call);                            \
        if (got_) {                                                         \
            fprintf(stderr, "%s:%d: %s = %p, want NULL\n", __FILE__,        \
                    __LINE__, #call, got_);                                 \
            atomic_fetch_add(&nbad, 1);                                     \
        }                                                                   \
    } while (0)

static void nop(void *a) { (void)a; }
static int nop_int(void *a) { (void)a; return 0; }
static int wr_nop(void *a, const void *b, size_t n) {
    (void)a, (void)b, (void)n;
    return 0;
}

/* Objects for the calls whose other pointer is NULL. */
static leash_chan *ch;
static leash_conn *conn, *peer;
static leash_ctx *ctx;
static leash_group *grp;

static void objects_make(void) {
    ch = leash_chan_make(sizeof(int), 1);
    cr_assert(ch);
    leash_conn *l = NULL;
    cr_assert_eq(leash_listen(&l, "tcp", "127.0.0.1:0"), 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", leash_conn_local_port(l));
    cr_assert_eq(leash_dial(&conn, "tcp", addr, -1), 0);
    cr_assert_eq(leash_conn_accept(l, &peer), 0);
    leash_conn_close(l);
    leash_release(l);
    ctx = leash_ctx_with_cancel(leash_ctx_background());
    cr_assert(ctx);
    grp = leash_group_new(leash_ctx_background());
    cr_assert(grp);
}

static void objects_free(void) {
    leash_group_wait(grp);
    leash_release(grp);
    leash_release(ctx);
    leash_conn_close(conn);
    leash_conn_close(peer);
    leash_release(conn);
    leash_release(peer);
    leash_release(ch);
}

/* -------------------------------------------- runtime, objects, channels */

static void core_calls(void) {
    int v = 0;
    EXPECT(leash_go_at(__FILE__, __LINE__, NULL, NULL, (void *)0), LEASH_EINVAL);
    EXPECT(leash_go_n_at(__FILE__, __LINE__, NULL, NULL, 0, 0, 0, 0),
           LEASH_EINVAL);
    /* A NULL object in a typed form: LEASH_EINVAL (the header). */
    EXPECT(leash_go_n_at(__FILE__, __LINE__, nop, NULL, 1, NULL, 0, 0),
           LEASH_EINVAL);
    leash_set_name(NULL); /* clears the name (the header) */

    EXPECT_NULL(leash_retain(NULL));
    leash_release(NULL); /* no-op */
    EXPECT(leash_release_checked(NULL), LEASH_EINVAL);
    leash_release_ptr_(NULL); /* ignored */
    void *none = NULL;
    leash_release_ptr_(&none); /* a NULL object: no-op */
    EXPECT(leash_ref_detach_at(__FILE__, __LINE__, NULL), LEASH_EINVAL);
    EXPECT(leash_ref_adopt(NULL), LEASH_EINVAL);
    EXPECT(leash_release_detached(NULL), LEASH_EINVAL);
    EXPECT(leash_ref_detached(NULL), LEASH_EINVAL);

    /* The creation site is optional. */
    leash_chan *c = leash_chan_make_at(NULL, 0, sizeof(int), 0);
    EXPECT(c != NULL, 1);
    leash_release(c);

    /* A NULL channel: try forms never ready, close/len/cap invalid (the
     * blocking forms are below: they block forever). */
    EXPECT(leash_try_send_n(NULL, &v, sizeof v), LEASH_EAGAIN);
    EXPECT(leash_try_recv_n(NULL, &v, sizeof v), LEASH_EAGAIN);
    EXPECT(leash_close(NULL), LEASH_EINVAL);
    EXPECT(leash_chan_len(NULL), LEASH_EINVAL);
    EXPECT(leash_chan_cap(NULL), LEASH_EINVAL);
    /* A NULL element: invalid to send (size > 0), discarded on receive. */
    EXPECT(leash_send_n(ch, NULL, sizeof v), LEASH_EINVAL);
    EXPECT(leash_try_send_n(ch, NULL, sizeof v), LEASH_EINVAL);
    EXPECT(leash_send(ch, &v), 0);
    EXPECT(leash_recv_n(ch, NULL, sizeof v), 0);
    EXPECT(leash_try_recv_n(ch, NULL, sizeof v), LEASH_EAGAIN);

    EXPECT(leash_select(NULL, 1), LEASH_EINVAL);
    EXPECT(leash_try_select(NULL, 1), LEASH_EINVAL);
    EXPECT(leash_try_select(NULL, 0), LEASH_EAGAIN);
    leash_case nilcase = LEASH_RECV_CASE((leash_chan *)NULL, &v);
    EXPECT(leash_try_select(&nilcase, 1), LEASH_EAGAIN);

    leash_chan *t = leash_after_at(NULL, 0, 0);
    EXPECT(t != NULL, 1);
    leash_release(t);
    EXPECT_NULL(leash_ticker_chan(NULL));
    leash_ticker_stop(NULL); /* ignored */
}

/* ---------------------------------------------------- context, signals */

static void ctx_calls(void) {
    /* A NULL parent is LEASH_EINVAL's analogue for a constructor: NULL. */
    EXPECT_NULL(leash_ctx_with_cancel_at(__FILE__, __LINE__, NULL));
    EXPECT_NULL(leash_ctx_with_deadline_at(__FILE__, __LINE__, NULL, 0));
    EXPECT_NULL(leash_ctx_with_timeout_at(__FILE__, __LINE__, NULL, 1));
    EXPECT_NULL(leash_ctx_with_value_at(__FILE__, __LINE__, NULL, "k", "v"));
    EXPECT_NULL(leash_ctx_with_label_at(__FILE__, __LINE__, NULL, "k", "v"));
    EXPECT_NULL(leash_ctx_with_label_at(__FILE__, __LINE__, ctx, NULL, "v"));
    EXPECT_NULL(leash_ctx_value(NULL, "k"));
    EXPECT_NULL(leash_ctx_value(ctx, NULL));
    leash_ctx_cancel(NULL); /* ignored */
    EXPECT_NULL(leash_ctx_done(NULL));
    EXPECT(leash_ctx_err(NULL), LEASH_EINVAL);
    EXPECT(leash_ctx_deadline(NULL), LEASH_EINVAL);
    EXPECT(leash_signal_notify_list(NULL, SIGUSR1, 0), LEASH_EINVAL);
    EXPECT(leash_signal_stop(NULL), LEASH_EINVAL);
    EXPECT(leash_label_set(NULL, "v"), LEASH_EINVAL);
    EXPECT(leash_label_set("nullconv", NULL), 0); /* removes (unset: 0) */
    EXPECT_NULL(leash_label_get(NULL));
    EXPECT(leash_label_apply(NULL), LEASH_EINVAL);
}

/* ------------------------------------------------------------ sync, group */

static void sync_calls(void) {
    leash_mutex mu = LEASH_MUTEX_INIT;
    leash_cond cv = LEASH_COND_INIT;
    leash_once once = LEASH_ONCE_INIT;
    EXPECT(leash_waitgroup_add(NULL, 1), LEASH_EINVAL);
    EXPECT(leash_waitgroup_done(NULL), LEASH_EINVAL);
    EXPECT(leash_waitgroup_wait(NULL), LEASH_EINVAL);
    EXPECT(leash_mutex_lock(NULL), LEASH_EINVAL);
    EXPECT(leash_mutex_trylock(NULL), LEASH_EINVAL);
    EXPECT(leash_mutex_unlock(NULL), LEASH_EINVAL);
    EXPECT(leash_rwmutex_rlock(NULL), LEASH_EINVAL);
    EXPECT(leash_rwmutex_runlock(NULL), LEASH_EINVAL);
    EXPECT(leash_rwmutex_lock(NULL), LEASH_EINVAL);
    EXPECT(leash_rwmutex_unlock(NULL), LEASH_EINVAL);
    EXPECT(leash_mutex_lock(&mu), 0);
    EXPECT(leash_cond_wait(NULL, &mu), LEASH_EINVAL);
    EXPECT(leash_cond_wait(&cv, NULL), LEASH_EINVAL);
    EXPECT(leash_mutex_unlock(&mu), 0);
    EXPECT(leash_cond_signal(NULL), LEASH_EINVAL);
    EXPECT(leash_cond_broadcast(NULL), LEASH_EINVAL);
    EXPECT(leash_once_do(NULL, nop, NULL), LEASH_EINVAL);
    EXPECT(leash_once_do(&once, NULL, NULL), LEASH_EINVAL);

    EXPECT_NULL(leash_group_new_at(__FILE__, __LINE__, NULL));
    EXPECT_NULL(leash_group_ctx(NULL));
    EXPECT(leash_group_go_at(__FILE__, __LINE__, NULL, nop_int, NULL,
                             (void *)0),
           LEASH_EINVAL);
    EXPECT(leash_group_go_at(__FILE__, __LINE__, grp, NULL, NULL, (void *)0),
           LEASH_EINVAL);
    EXPECT(leash_group_wait(NULL), LEASH_EINVAL);
    EXPECT(leash_blocking(NULL, NULL), LEASH_EINVAL);
}

/* --------------------------------------------------- I/O, connections */

static void io_calls(void) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    EXPECT(leash_read(fds[0], NULL, 1, -1), LEASH_EINVAL);
    EXPECT(leash_write(fds[1], NULL, 1, -1), LEASH_EINVAL);
    EXPECT(leash_connect(fds[1], NULL, 0, -1), LEASH_EINVAL);
    close(fds[0]);
    close(fds[1]);

    leash_conn *out = (leash_conn *)&out; /* set to NULL on an error */
    EXPECT(leash_listen_at(__FILE__, __LINE__, NULL, "tcp", ":0"), LEASH_EINVAL);
    EXPECT(leash_listen_at(__FILE__, __LINE__, &out, NULL, ":0"), LEASH_EINVAL);
    EXPECT_NULL(out);
    EXPECT(leash_listen_at(__FILE__, __LINE__, &out, "tcp", NULL), LEASH_EINVAL);
    EXPECT(leash_dial_at(__FILE__, __LINE__, NULL, "tcp", ":1", -1), LEASH_EINVAL);
    EXPECT(leash_dial_at(__FILE__, __LINE__, &out, NULL, ":1", -1), LEASH_EINVAL);
    EXPECT(leash_dial_at(__FILE__, __LINE__, &out, "tcp", NULL, -1), LEASH_EINVAL);
    EXPECT(leash_conn_accept_at(__FILE__, __LINE__, NULL, &out), LEASH_EINVAL);
    EXPECT(leash_conn_accept_at(__FILE__, __LINE__, conn, NULL), LEASH_EINVAL);
    EXPECT(leash_conn_from_fd_at(__FILE__, __LINE__, NULL, 0), LEASH_EINVAL);

    char buf[64];
    struct iovec iov = {buf, 1};
    EXPECT(leash_conn_read(NULL, buf, 1), LEASH_EINVAL);
    EXPECT(leash_conn_read(conn, NULL, 1), LEASH_EINVAL);
    EXPECT(leash_conn_write(NULL, buf, 1), LEASH_EINVAL);
    EXPECT(leash_conn_write(conn, NULL, 1), LEASH_EINVAL);
    EXPECT(leash_conn_writev(NULL, &iov, 1), LEASH_EINVAL);
    EXPECT(leash_conn_writev(conn, NULL, 1), LEASH_EINVAL);
    EXPECT(leash_conn_read_ctx(NULL, ctx, buf, 1), LEASH_EINVAL);
    EXPECT(leash_conn_read_ctx(conn, ctx, NULL, 1), LEASH_EINVAL);
    EXPECT(leash_conn_write_ctx(NULL, ctx, buf, 1), LEASH_EINVAL);
    EXPECT(leash_conn_write_ctx(conn, ctx, NULL, 1), LEASH_EINVAL);
    /* A NULL ctx: as without _ctx. */
    EXPECT(leash_conn_write_ctx(conn, NULL, "x", 1), 1);
    EXPECT(leash_conn_read_ctx(peer, NULL, buf, 1), 1);
    EXPECT(leash_conn_close(NULL), LEASH_EINVAL);
    EXPECT(leash_conn_set_deadline(NULL, -1), LEASH_EINVAL);
    EXPECT(leash_conn_set_read_deadline(NULL, -1), LEASH_EINVAL);
    EXPECT(leash_conn_set_write_deadline(NULL, -1), LEASH_EINVAL);
    EXPECT(leash_conn_local_addr(NULL, buf, sizeof buf), LEASH_EINVAL);
    EXPECT(leash_conn_local_addr(conn, NULL, 16), LEASH_EINVAL);
    EXPECT(leash_conn_remote_addr(NULL, buf, sizeof buf), LEASH_EINVAL);
    EXPECT(leash_conn_remote_addr(conn, NULL, 16), LEASH_EINVAL);
    EXPECT(leash_conn_local_port(NULL), LEASH_EINVAL);
    EXPECT(leash_conn_fd(NULL), LEASH_EINVAL);

    const char *line;
    EXPECT_NULL(leash_reader_new(NULL, 0));
    leash_reader_free(NULL); /* ignored */
    EXPECT(leash_reader_set_deadline(NULL, -1), LEASH_EINVAL);
    EXPECT(leash_reader_set_ctx(NULL, ctx), LEASH_EINVAL);
    EXPECT(leash_reader_read_until(NULL, '\n', &line), LEASH_EINVAL);
    EXPECT(leash_reader_read_line(NULL, &line), LEASH_EINVAL);
    EXPECT(leash_reader_read(NULL, buf, 1), LEASH_EINVAL);
    leash_reader *r = leash_reader_new(conn, 0);
    cr_assert(r);
    EXPECT(leash_reader_set_ctx(r, NULL), 0); /* none */
    EXPECT(leash_reader_read_until(r, '\n', NULL), LEASH_EINVAL);
    EXPECT(leash_reader_read_line(r, NULL), LEASH_EINVAL);
    EXPECT(leash_reader_read(r, NULL, 1), LEASH_EINVAL);
    leash_reader_free(r);
    EXPECT_NULL(leash_writer_new(NULL, 0));
    EXPECT(leash_writer_set_deadline(NULL, -1), LEASH_EINVAL);
    EXPECT(leash_writer_write(NULL, buf, 1), LEASH_EINVAL);
    EXPECT(leash_writer_flush(NULL), LEASH_EINVAL);
    EXPECT(leash_writer_close(NULL), 0); /* the header: NULL gives 0 */
    leash_writer *w = leash_writer_new(conn, 0);
    cr_assert(w);
    EXPECT(leash_writer_write(w, NULL, 1), LEASH_EINVAL);
    EXPECT(leash_writer_close(w), 0);
}

/* ---------------------------------------------------------- diagnostics */

static void diag_calls(void) {
    EXPECT(leash_dump(NULL, 2), LEASH_EINVAL);
    EXPECT(leash_leak_dump(NULL, 2), LEASH_EINVAL);
    EXPECT(leash_profile_write(NULL, "block", 1), LEASH_EINVAL);
    FILE *devnull = fopen("/dev/null", "w");
    cr_assert(devnull);
    EXPECT(leash_profile_write(devnull, NULL, 1), LEASH_EINVAL);
    EXPECT(leash_cpu_profile(NULL, CU_MS), LEASH_EINVAL);
    leash_snapshot_free(NULL); /* ignored */
    /* NULL baseline: every coroutine but the caller; NULL opts: defaults
     * (quiet here: opts with a FILE). */
    leash_leak_opts o = {.timeout_ns = CU_MS, .out = devnull};
    EXPECT(leash_leak_verify(NULL, &o) >= 0, 1);
    EXPECT(leash_debug_handle(NULL, "/metrics", 0, wr_nop, NULL), LEASH_EINVAL);
    EXPECT(leash_debug_handle("GET", NULL, 0, wr_nop, NULL), LEASH_EINVAL);
    EXPECT(leash_debug_handle("GET", "/metrics", 0, NULL, NULL), LEASH_EINVAL);
    EXPECT(leash_debug_serve_conn(NULL, 0), LEASH_EINVAL);
    EXPECT(leash_metrics_write(NULL), LEASH_EINVAL);
    char path[8];
    EXPECT(leash_agent_path(NULL, sizeof path), LEASH_EINVAL);
    /* NULL address: 127.0.0.1 with a free port (the header). */
    EXPECT(leash_debug_listen(NULL) > 0, 1);
    EXPECT(leash_metrics_listen(NULL) > 0, 1);
    EXPECT(leash_debug_stop(), 2);
    fclose(devnull);
}

/* ------------------------------- a NULL channel blocks forever, as in Go */

static void nil_send(void *a) {
    (void)a;
    int v = 0;
    leash_send_n(NULL, &v, sizeof v);
}
static void nil_recv(void *a) {
    (void)a;
    int v;
    leash_recv_n(NULL, &v, sizeof v);
}
static void nil_select(void *a) {
    (void)a;
    leash_select(NULL, 0);
}

static int main_co(void *a) {
    (void)a;
    objects_make();
    core_calls();
    ctx_calls();
    sync_calls();
    io_calls();
    diag_calls();
    int64_t s = leash_go(nil_send, NULL), r = leash_go(nil_recv, NULL),
            z = leash_go(nil_select, NULL);
    CU_CHECK(du_wait_state(s, "waiting:chan send (nil chan)", 10000));
    CU_CHECK(du_wait_state(r, "waiting:chan receive (nil chan)", 10000));
    CU_CHECK(du_wait_state(z, "waiting:select (no cases)", 10000));
    objects_free();
    return 0;
}

Test(nullconv, every_pointer_parameter, .timeout = 60) {
    setenv("LEASH_PROCS", "2", 1);
    EXPECT(leash_run(NULL, NULL), LEASH_EINVAL);
    cr_assert_eq(leash_run(main_co, NULL), 0);
    CU_ASSERT_CLEAN();
    cr_assert_eq(atomic_load(&nbad), 0, "%d call(s) disagree with the header",
                 atomic_load(&nbad));
}

/* The same calls from a plain thread (not a coroutine), where the
 * blocking ones take the OS path. */
Test(nullconv, from_a_plain_thread, .timeout = 60) {
    setenv("LEASH_PROCS", "2", 1);
    objects_make();
    core_calls();
    ctx_calls();
    sync_calls();
    io_calls();
    diag_calls();
    objects_free();
    cr_assert_eq(atomic_load(&nbad), 0, "%d call(s) disagree with the header",
                 atomic_load(&nbad));
}
