/* SPDX-License-Identifier: MIT */
/*
 * netpoll.h — non-blocking I/O on epoll, integrated into the scheduler
 * (netpoll.c), and the I/O waits built on it that conn.c and select.c
 * share.
 */
#ifndef LEASH_NETPOLL_H
#define LEASH_NETPOLL_H

#include "common.h"
#include "chan.h"

/* ------------------------------------------------------------- netpoll.c */
INTERNAL int netpoll_init(void);
INTERNAL void netpoll_fini(void);
INTERNAL void netpoll_break(void);
INTERNAL int netpoll(int64_t deadline); /* 0: don't block; T_INF: forever */
INTERNAL int64_t netpoll_last(void);

/* ------------------------------------------------- netpoll.c, conn.c I/O */
#include <sys/uio.h>
struct sockaddr;
typedef struct pdesc pdesc;
/* A coroutine waiting on an fd: lives on its stack, linked into the fd's
 * poll descriptor under its lock (netpoll.c). */
typedef struct iowaiter {
    coroutine *g;
    struct iowaiter *next, *prev;
    int events;          /* LEASH_POLLIN / LEASH_POLLOUT */
    int result;          /* ready events, 0 (look again) or LEASH_E* */
    bool queued;
    pdesc *pd;
    sudog *sel;          /* a select's case: claimed through selectdone,
                          * the result goes to sel->err */
    const _Atomic uint32_t *gen; /* set: woken with 0 when it moves (a
                                  * connection's deadline was changed) */
} iowaiter;

/* What bounds the waits of one I/O call: its own deadline, a
 * connection's deadline that another coroutine may move (bumping *gen
 * and kicking the waiters: fd_kick), and a context. */
typedef struct iobound {
    int64_t deadline;          /* absolute; T_INF: none */
    _Atomic int64_t *settable; /* NULL: none */
    _Atomic uint32_t *gen;
    leash_ctx *ctx;            /* NULL: none */
} iobound;

/* A call on fd's number counts itself in (LEASH_ECLOSED once
 * leash_fd_close began) and out; the close(2) waits for the last out. */
INTERNAL int fd_enter(int fd);
INTERNAL void fd_leave(int fd);
INTERNAL void fd_kick(int fd, int events);
/* fd now belongs to a leash_conn, which closes it only through
 * leash_fd_close: its waits may use an edge-triggered registration. */
INTERNAL void fd_adopt(int fd);
INTERNAL int fd_calls_inside(int fd); /* for tests */
INTERNAL long netpoll_ctl_calls(void);  /* for tests: registrations */
INTERNAL int fd_ready_now(int fd, int events); /* poll(2), no wait */
/* One wait of an I/O loop: > 0 or 0 (try again) or LEASH_E*. */
INTERNAL int io_park(int fd, int events, const iobound *b);
INTERNAL ssize_t io_read(int fd, void *buf, size_t n, const iobound *b);
INTERNAL ssize_t fd_read_ctx(int fd, void *buf, size_t n, int64_t deadline,
                             leash_ctx *ctx);
/* Consumes iov in place. */
INTERNAL ssize_t io_writev(int fd, struct iovec *iov, int cnt,
                           const iobound *b);
INTERNAL int io_accept(int fd, struct sockaddr *addr, unsigned *addrlen,
                       const iobound *b);
INTERNAL int io_connect(int fd, const struct sockaddr *addr,
                        unsigned addrlen, const iobound *b);
/* select.c's I/O cases: io_sel_pd is fd's descriptor (NULL: out of
 * memory); with it locked, io_sel_arm hangs w there (1: ready at once,
 * w->result says why); the select releases the lock after it parks and
 * takes w off with io_sel_disarm when it wakes. */
INTERNAL pdesc *io_sel_pd(int fd);
INTERNAL void io_sel_lock(pdesc *pd);
INTERNAL void io_sel_unlock(pdesc *pd);
INTERNAL int io_sel_arm(pdesc *pd, iowaiter *w, rtimer *t,
                        int64_t deadline, uint32_t seen);
INTERNAL void io_sel_disarm(iowaiter *w, rtimer *t, int64_t deadline);
/* select.c: waits until fd is ready for events (bounded like
 * fd_wait_at) or ctx is done: the wait's result, or ctx's error. */
INTERNAL int select_fd_or_ctx(int fd, int events, int64_t deadline,
                              const _Atomic uint32_t *gen, uint32_t seen,
                              leash_ctx *ctx);
/* conn.c: the fd of a live connection counted in for a select (its
 * closed flag checked: LEASH_ECLOSED), and out again. */
INTERNAL int conn_enter_fd(leash_conn *c);
INTERNAL void conn_leave_fd(leash_conn *c);

#endif /* LEASH_NETPOLL_H */
