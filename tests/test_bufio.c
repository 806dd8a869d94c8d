/* SPDX-License-Identifier: MIT */
/*
 * test_bufio.c — leash_reader / leash_writer over connections and plain
 * fds: lines split across reads, an over-long line (LEASH_E2BIG, then
 * the next line), a reset in the middle of a line (the error, never the
 * fragment), end of stream without a newline (the fragment as a last
 * line, then 0), fd deadlines, a reader's context (cancelled mid-line:
 * its error, the fragment kept), and the writer flushing on close.
 *
 * Loopback TCP and socketpairs/pipes only.
 * LEASH_TEST_TIMEOUT 60
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core_util.h"

#define MS CU_MS
#define HANG_MS 5000

/* Checks the next line is `want` (with its length). */
#define CHECK_LINE(r, want)                                                 \
    do {                                                                    \
        const char *l_;                                                     \
        ssize_t n_ = leash_reader_read_line((r), &l_);                      \
        CU_CHECK_EQ(n_, (ssize_t)strlen(want));                             \
        CU_CHECK(n_ > 0 && l_ && memcmp(l_, (want), (size_t)n_) == 0);      \
    } while (0)

typedef struct {
    int fd;
    const char *const *chunks; /* NULL-terminated, written 5 ms apart */
    bool reset;                /* then RST instead of FIN */
} feeder;

static void feed(void *p) {
    feeder *f = p;
    for (const char *const *c = f->chunks; *c; c++) {
        CU_CHECK_EQ(leash_write(f->fd, *c, strlen(*c), -1), (ssize_t)strlen(*c));
        leash_sleep(5 * MS);
    }
    if (f->reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    leash_fd_close(f->fd);
}

/* A TCP connection: *c is our end; returns the peer's fd. */
static int tcp_pair(leash_conn **c) {
    leash_conn *l, *peer;
    CU_CHECK_EQ(leash_listen(&l, "tcp", "127.0.0.1:0"), 0);
    char addr[64];
    CU_CHECK(leash_conn_local_addr(l, addr, sizeof addr) > 0);
    CU_CHECK_EQ(leash_dial(c, "tcp", addr, leash_now() + HANG_MS * MS), 0);
    CU_CHECK_EQ(leash_conn_accept(l, &peer), 0);
    leash_release(l);
    int fd = dup(leash_conn_fd(peer)); /* a plain fd the feeder closes */
    leash_release(peer);
    return fd;
}

static int lines_main(void *arg) {
    (void)arg;
    leash_conn *c;
    static const char *const chunks[] = {"hel", "lo\nwor", "ld\nshort\n",
        "xxxxxxxxxxxxxxxxxxxx", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nnext\nlast",
        NULL};
    feeder f = {.fd = tcp_pair(&c), .chunks = chunks};
    leash_go(feed, &f);
    leash_reader *r = leash_reader_new(c, 16);
    CU_CHECK(r != NULL);
    CHECK_LINE(r, "hello\n");
    CHECK_LINE(r, "world\n");
    CHECK_LINE(r, "short\n");
    const char *l = "stale";
    CU_CHECK_EQ(leash_reader_read_line(r, &l), LEASH_E2BIG);
    CU_CHECK(l == NULL);
    CHECK_LINE(r, "next\n"); /* the rest of the long line was skipped */
    CHECK_LINE(r, "last");   /* end of stream: no newline, Go's io.EOF */
    CU_CHECK_EQ(leash_reader_read_line(r, &l), 0);
    CU_CHECK_EQ(leash_reader_read_line(r, &l), 0);
    leash_reader_free(r);
    leash_release(c);
    return 0;
}

Test(bufio, lines_split_overlong_and_eof, .timeout = 30) {
    cu_run(lines_main, NULL);
}

static int reset_main(void *arg) {
    (void)arg;
    leash_conn *c;
    static const char *const chunks[] = {"one\ntw", "o-and-no-end", NULL};
    feeder f = {.fd = tcp_pair(&c), .chunks = chunks, .reset = true};
    leash_go(feed, &f);
    leash_reader *r = leash_reader_new(c, 0);
    CHECK_LINE(r, "one\n");
    const char *l = "stale";
    CU_CHECK_EQ(leash_reader_read_line(r, &l), -ECONNRESET);
    CU_CHECK(l == NULL);
    CU_CHECK_EQ(leash_reader_read_line(r, &l), -ECONNRESET); /* sticky */
    char b[4];
    CU_CHECK_EQ(leash_reader_read(r, b, sizeof b), -ECONNRESET);
    leash_reader_free(r);
    leash_release(c);
    return 0;
}

Test(bufio, reset_mid_line_is_an_error_not_a_line, .timeout = 30) {
    cu_run(reset_main, NULL);
}

static int fd_main(void *arg) {
    (void)arg;
    int p[2];
    CU_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    leash_reader *r = leash_reader_new_fd(p[0], 64);
    leash_writer *w = leash_writer_new_fd(p[1], 8);
    CU_CHECK(r && w);

    /* A deadline on the fd reader: the partial line is kept. */
    CU_CHECK_EQ(leash_writer_write(w, "par", 3), 3);
    CU_CHECK_EQ(leash_writer_flush(w), 0);
    CU_CHECK_EQ(leash_reader_set_deadline(r, leash_now() + 10 * MS), 0);
    const char *l;
    CU_CHECK_EQ(leash_reader_read_line(r, &l), LEASH_ETIMEDOUT);
    CU_CHECK_EQ(leash_reader_set_deadline(r, -1), 0);
    /* Writes gathered, a big one straight through, then flushed. */
    CU_CHECK_EQ(leash_writer_write(w, "tial\n", 5), 5);
    CU_CHECK_EQ(leash_writer_write(w, "a-longer-line\n", 14), 14);
    CU_CHECK_EQ(leash_writer_write(w, "x\n", 2), 2);
    CHECK_LINE(r, "partial\n");
    CHECK_LINE(r, "a-longer-line\n");
    CU_CHECK_EQ(leash_writer_close(w), 0); /* flushes "x\n" */
    CHECK_LINE(r, "x\n");
    /* Raw reads mixed with lines. */
    CU_CHECK_EQ(write(p[1], "ab\ncd", 5), 5);
    close(p[1]);
    char b[2];
    CU_CHECK_EQ(leash_reader_read(r, b, 1), 1);
    CU_CHECK_EQ(b[0], 'a');
    CHECK_LINE(r, "b\n");
    CU_CHECK_EQ(leash_reader_read(r, b, 2), 2);
    CU_CHECK_EQ(leash_reader_read(r, b, 2), 0);
    leash_reader_free(r);
    leash_fd_close(p[0]);
    return 0;
}

Test(bufio, plain_fds_deadline_and_writer, .timeout = 30) {
    cu_run(fd_main, NULL);
}

static void cancel_soon(void *ctx) {
    leash_sleep(10 * MS);
    leash_ctx_cancel(ctx);
}

/* A reader's context ends a wait for the rest of a line, over a
 * connection and over an fd; the fragment stays for a later call. */
static int ctx_main(void *arg) {
    (void)arg;
    leash_conn *c;
    int peer = tcp_pair(&c);
    int p[2];
    CU_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    leash_reader *rs[2] = {leash_reader_new(c, 64), leash_reader_new_fd(p[0], 64)};
    int wfd[2] = {peer, p[1]};
    for (int i = 0; i < 2; i++) {
        leash_reader *r = rs[i];
        leash_ctx *ctx = leash_ctx_with_cancel(leash_ctx_background());
        CU_CHECK_EQ(leash_reader_set_ctx(r, ctx), 0);
        CU_CHECK_EQ(write(wfd[i], "one\npar", 7), 7);
        CHECK_LINE(r, "one\n");
        leash_go(cancel_soon, ctx, ctx);
        const char *l = "stale";
        int64_t t0 = leash_now();
        CU_CHECK_EQ(leash_reader_read_line(r, &l), LEASH_ECANCELED);
        CU_CHECK(leash_now() - t0 < HANG_MS * MS);
        CU_CHECK(l == NULL);
        CU_CHECK_EQ(leash_reader_read_line(r, &l), LEASH_ECANCELED); /* done */
        CU_CHECK_EQ(leash_reader_set_ctx(r, NULL), 0);
        CU_CHECK_EQ(write(wfd[i], "tial\n", 5), 5);
        CHECK_LINE(r, "partial\n"); /* nothing was lost */
        /* A context with a deadline: LEASH_ETIMEDOUT, then retried. */
        leash_ctx *dl = leash_ctx_with_timeout(leash_ctx_background(), 10 * MS);
        CU_CHECK_EQ(leash_reader_set_ctx(r, dl), 0);
        CU_CHECK_EQ(leash_reader_read_line(r, &l), LEASH_ETIMEDOUT);
        CU_CHECK_EQ(leash_reader_set_ctx(r, leash_ctx_background()), 0);
        CU_CHECK_EQ(write(wfd[i], "two\n", 4), 4);
        CHECK_LINE(r, "two\n");
        leash_ctx_cancel(dl);
        leash_release(dl);
        leash_release(ctx);
        leash_reader_free(r);
    }
    CU_CHECK_EQ(leash_reader_set_ctx(NULL, NULL), LEASH_EINVAL);
    leash_release(c);
    leash_fd_close(peer);
    leash_fd_close(p[0]);
    close(p[1]);
    return 0;
}

Test(bufio, reader_context_ends_a_wait_and_keeps_the_fragment, .timeout = 30) {
    cu_run(ctx_main, NULL);
}

static int flush_main(void *arg) {
    (void)arg;
    leash_conn *c;
    int peer = tcp_pair(&c);
    leash_writer *w = leash_writer_new(c, 64);
    CU_CHECK_EQ(leash_writer_write(w, "abc", 3), 3);
    CU_CHECK_EQ(leash_writer_write(w, "def\n", 4), 4);
    char b[16];
    CU_CHECK_EQ(recv(peer, b, sizeof b, MSG_DONTWAIT), -1); /* buffered */
    CU_CHECK_EQ(leash_writer_close(w), 0);
    CU_CHECK_EQ(leash_read(peer, b, sizeof b, leash_now() + HANG_MS * MS), 7);
    CU_CHECK_EQ(memcmp(b, "abcdef\n", 7), 0);
    /* A write error is sticky: the connection closed under the writer. */
    w = leash_writer_new(c, 4);
    CU_CHECK_EQ(leash_conn_close(c), 0);
    CU_CHECK_EQ(leash_writer_write(w, "toolong", 7), LEASH_ECLOSED);
    CU_CHECK_EQ(leash_writer_write(w, "a", 1), LEASH_ECLOSED);
    CU_CHECK_EQ(leash_writer_close(w), LEASH_ECLOSED);
    leash_release(c);
    leash_fd_close(peer);
    return 0;
}

Test(bufio, writer_flushes_on_close, .timeout = 30) {
    cu_run(flush_main, NULL);
}

static int bad_main(void *arg) {
    (void)arg;
    const char *l;
    char b[4];
    CU_CHECK(leash_reader_new(NULL, 0) == NULL);
    CU_CHECK(leash_reader_new((leash_conn *)(intptr_t)0x1000, 0) == NULL);
    CU_CHECK(leash_reader_new_fd(-1, 0) == NULL);
    CU_CHECK(leash_writer_new(NULL, 0) == NULL);
    CU_CHECK(leash_writer_new_fd(-1, 0) == NULL);
    CU_CHECK_EQ(leash_reader_read_line(NULL, &l), LEASH_EINVAL);
    CU_CHECK_EQ(leash_reader_read_until(NULL, '\n', &l), LEASH_EINVAL);
    CU_CHECK_EQ(leash_reader_read(NULL, b, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_reader_set_deadline(NULL, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_writer_write(NULL, b, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_writer_flush(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_writer_set_deadline(NULL, -1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_writer_close(NULL), 0);
    leash_reader_free(NULL);
    int p[2];
    CU_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    leash_reader *r = leash_reader_new_fd(p[0], 0);
    leash_writer *w = leash_writer_new_fd(p[1], 0);
    CU_CHECK_EQ(leash_reader_read_line(r, NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_reader_read_until(r, 300, &l), LEASH_EINVAL);
    CU_CHECK_EQ(leash_reader_read(r, NULL, 1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_reader_set_deadline(r, -3), LEASH_EINVAL);
    leash_chan *notctx = leash_chan_make(sizeof(int), 0);
    CU_CHECK_EQ(leash_reader_set_ctx(r, (leash_ctx *)(void *)notctx), LEASH_EINVAL);
    CU_CHECK_EQ(leash_reader_set_ctx(r, (leash_ctx *)(intptr_t)0x1000), LEASH_EINVAL);
    leash_release(notctx);
    CU_CHECK_EQ(leash_writer_write(w, NULL, 1), LEASH_EINVAL);
    leash_conn *c;
    CU_CHECK_EQ(leash_conn_from_fd(&c, dup(p[0])), 0);
    leash_reader *rc = leash_reader_new(c, 0);
    CU_CHECK_EQ(leash_reader_set_deadline(rc, -1), LEASH_EINVAL);
    leash_reader_free(rc);
    leash_release(c);
    leash_reader_free(r);
    CU_CHECK_EQ(leash_writer_close(w), 0);
    close(p[0]);
    close(p[1]);
    return 0;
}

Test(bufio, bad_arguments, .timeout = 30) {
    cu_run(bad_main, NULL);
}
