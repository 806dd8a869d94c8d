/* SPDX-License-Identifier: MIT */
/*
 * netpoll.c — non-blocking I/O on epoll, integrated into the scheduler.
 *
 * Each fd the runtime has seen gets a poll descriptor (pdesc) in a
 * two-level table indexed by fd; descriptors are never freed, so an
 * event that arrives for a descriptor whose fd was closed meanwhile is
 * harmless (a spurious wake-up: the reader retries and waits again).
 *
 * Registration is level-triggered and one-shot, re-armed with the union
 * of the directions waited for each time a coroutine starts waiting
 * (EPOLL_CTL_MOD, or ADD when the kernel has forgotten the fd because
 * the user closed it with close(2) and the number was reused). Re-arming
 * reports readiness that arrived before the wait, so no wake-up is lost.
 *
 * Waiters (on their own stacks) hang off the descriptor under its lock,
 * with an optional deadline timer. An event, the deadline, or
 * leash_fd_close takes a waiter off under that lock and readies it:
 * whoever takes it off wakes it, exactly once.
 *
 * Polling: a worker that finds nothing to run polls without blocking;
 * the last one to go idle blocks in epoll_pwait2 until the next timer
 * (S.poller), and is woken through an eventfd when work arrives. sysmon
 * polls when nobody has for a while, so busy workers cannot starve I/O.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define PD_PAGE 1024
#define PD_PAGES 4096 /* fds up to 4M */

typedef struct iowaiter {
    leash_g *g;
    struct iowaiter *next, *prev;
    int events;          /* LEASH_POLLIN / LEASH_POLLOUT */
    int result;          /* ready events, or LEASH_E* */
    bool queued;
    struct pdesc *pd;
} iowaiter;

typedef struct pdesc {
    llock lock;
    int fd;
    _Atomic bool nonblock; /* O_NONBLOCK already set on this fd */
    bool closing;
    iowaiter *waiters;
} pdesc;

static struct {
    int epfd;
    int evfd;                 /* wakes a worker blocked in epoll */
    pdesc *_Atomic pages[PD_PAGES];
    llock grow;
    _Atomic int64_t last_poll;
} NP = {.epfd = -1, .evfd = -1, .grow = LLOCK_INIT};

/* ---------------------------------------------------------------- setup */

int netpoll_init(void) {
    if (NP.epfd >= 0)
        return 0;
    NP.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (NP.epfd < 0)
        return LEASH_ENOMEM;
    NP.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (NP.evfd < 0 || epoll_ctl(NP.epfd, EPOLL_CTL_ADD, NP.evfd, &ev) < 0) {
        close(NP.epfd);
        if (NP.evfd >= 0)
            close(NP.evfd);
        NP.epfd = NP.evfd = -1;
        return LEASH_ENOMEM;
    }
    return 0;
}

void netpoll_fini(void) {
    if (NP.epfd >= 0) {
        close(NP.epfd);
        close(NP.evfd);
        NP.epfd = NP.evfd = -1;
    }
}

/* Wakes the worker blocked in epoll_pwait2. */
void netpoll_break(void) {
    uint64_t one = 1;
    ssize_t r = write(NP.evfd, &one, sizeof one);
    (void)r;
}

static pdesc *pd_get(int fd) {
    if (fd < 0 || fd >= PD_PAGE * PD_PAGES)
        return NULL;
    pdesc *page = atomic_load_explicit(&NP.pages[fd / PD_PAGE],
                                       memory_order_acquire);
    if (!page) {
        llock_acquire(&NP.grow);
        page = atomic_load(&NP.pages[fd / PD_PAGE]);
        if (!page) {
            page = lcalloc(PD_PAGE, sizeof *page);
            if (page) {
                for (int i = 0; i < PD_PAGE; i++) /* fixed for good */
                    page[i].fd = fd / PD_PAGE * PD_PAGE + i;
                atomic_store_explicit(&NP.pages[fd / PD_PAGE], page,
                                      memory_order_release);
            }
        }
        llock_release(&NP.grow);
        if (!page)
            return NULL;
    }
    return &page[fd % PD_PAGE];
}

/* --------------------------------------------------------------- waiters */

static void waiter_unlink(pdesc *pd, iowaiter *w) {
    if (!w->queued)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        pd->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->queued = false;
    atomic_fetch_sub(&S.io_waiters, 1);
}

static int armed_events(pdesc *pd) {
    int ev = 0;
    for (iowaiter *w = pd->waiters; w; w = w->next)
        ev |= w->events;
    return ev;
}

/* Re-arms the one-shot registration for what is still waited for. */
static int pd_arm(pdesc *pd) {
    int want = armed_events(pd);
    if (!want)
        return 0;
    struct epoll_event ev = {.events = EPOLLONESHOT | EPOLLRDHUP,
                             .data.ptr = pd};
    if (want & LEASH_POLLIN)
        ev.events |= EPOLLIN;
    if (want & LEASH_POLLOUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(NP.epfd, EPOLL_CTL_MOD, pd->fd, &ev) == 0)
        return 0;
    if (errno == ENOENT && epoll_ctl(NP.epfd, EPOLL_CTL_ADD, pd->fd, &ev) == 0)
        return 0;
    return -errno;
}

/* Takes every waiter matching `events` off pd and readies it with
 * `result` (pd->lock held). */
static void pd_wake(pdesc *pd, int events, int result) {
    iowaiter *w = pd->waiters;
    while (w) {
        iowaiter *next = w->next;
        if (w->events & events) {
            waiter_unlink(pd, w);
            w->result = result > 0 ? (result & w->events) : result;
            sched_ready(w->g, false);
        }
        w = next;
    }
}

static void io_timeout(leash_timer *t, int64_t now) {
    (void)now;
    iowaiter *w = t->arg;
    pdesc *pd = w->pd;
    llock_acquire(&pd->lock);
    if (w->queued) {
        waiter_unlink(pd, w);
        w->result = LEASH_ETIMEDOUT;
        sched_ready(w->g, false);
    }
    llock_release(&pd->lock);
}

/* Translates an epoll event mask into LEASH_POLL* bits: errors and hang
 * ups wake both directions (the next read/write reports them). */
static int ev_to_poll(uint32_t e) {
    int r = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        r |= LEASH_POLLIN;
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        r |= LEASH_POLLOUT;
    return r;
}

/* epoll_pwait2 (a timespec timeout) needs Linux 5.11, and qemu-user does
 * not emulate it: on ENOSYS, fall back to epoll_pwait with the timeout in
 * milliseconds, rounded up so that a timer is never polled for early. */
static int epoll_wait_ts(int epfd, struct epoll_event *evs, int max,
                         const struct timespec *tp) {
    static _Atomic bool no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        int n = epoll_pwait2(epfd, evs, max, tp, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    }
    int ms = -1;
    if (tp) {
        int64_t ns = (int64_t)tp->tv_sec * 1000000000 + tp->tv_nsec;
        int64_t m = (ns + 999999) / 1000000;
        ms = m > INT_MAX ? INT_MAX : (int)m;
    }
    return epoll_pwait(epfd, evs, max, ms, NULL);
}

/* Polls epoll once, waiting until deadline (0: not at all; T_INF:
 * forever) and readies the waiters of every event; returns how many
 * events. Runs on a worker's scheduler context or on sysmon. */
int netpoll(int64_t deadline) {
    if (NP.epfd < 0)
        return 0;
    struct epoll_event evs[128];
    struct timespec ts, *tp = NULL;
    if (deadline != T_INF) {
        int64_t d = deadline - leash_now();
        if (deadline == 0 || d < 0)
            d = 0;
        ts.tv_sec = d / 1000000000;
        ts.tv_nsec = d % 1000000000;
        tp = &ts;
    }
    int n = epoll_wait_ts(NP.epfd, evs, 128, tp);
    atomic_store_explicit(&NP.last_poll, leash_now(), memory_order_relaxed);
    for (int i = 0; i < n; i++) {
        pdesc *pd = evs[i].data.ptr;
        if (!pd) {
            /* The eventfd breaks the blocking poller out: only that one
             * drains it. A non-blocking poll may run beside it (sched.c)
             * and must leave it readable, or the sleeper it was written
             * for would sleep on. */
            if (deadline != 0) {
                uint64_t v;
                ssize_t r = read(NP.evfd, &v, sizeof v);
                (void)r;
            }
            continue;
        }
        llock_acquire(&pd->lock);
        pd_wake(pd, ev_to_poll(evs[i].events), ev_to_poll(evs[i].events));
        if (pd->waiters)
            pd_arm(pd); /* the other direction still waits */
        llock_release(&pd->lock);
    }
    return n < 0 ? 0 : n;
}

int64_t netpoll_last(void) {
    return atomic_load_explicit(&NP.last_poll, memory_order_relaxed);
}

/* -------------------------------------------------------------- waiting */

static int set_nonblock(int fd);

/* Sets O_NONBLOCK once per descriptor (leash_fd_close forgets it). */
static int make_nonblock(int fd) {
    pdesc *pd = pd_get(fd);
    if (pd && atomic_load_explicit(&pd->nonblock, memory_order_relaxed))
        return 0;
    int rc = set_nonblock(fd);
    if (rc == 0 && pd)
        atomic_store_explicit(&pd->nonblock, true, memory_order_relaxed);
    return rc;
}

static int set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static int poll_thread(int fd, int events, int64_t deadline) {
    struct pollfd p = {.fd = fd, .events = (short)events};
    for (;;) {
        int ms = -1;
        if (deadline != T_INF) {
            int64_t d = deadline - leash_now();
            if (d <= 0)
                return LEASH_ETIMEDOUT;
            int64_t m = d / 1000000 + 1; /* rounded up, never early */
            ms = m > INT_MAX ? INT_MAX : (int)m;
        }
        int r = poll(&p, 1, ms);
        if (r > 0) {
            if (p.revents & POLLNVAL)
                return LEASH_ECLOSED;
            int got = 0;
            if (p.revents & (POLLIN | POLLHUP | POLLERR))
                got |= LEASH_POLLIN;
            if (p.revents & (POLLOUT | POLLHUP | POLLERR))
                got |= LEASH_POLLOUT;
            return got & events ? got & events : events;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

API_FRAME int leash_fd_wait(int fd, int events, int64_t deadline) {
    events &= LEASH_POLLIN | LEASH_POLLOUT;
    if (fd < 0 || !events)
        return LEASH_EINVAL;
    if (fd >= PD_PAGE * PD_PAGES)
        return -EBADF; /* beyond any descriptor this table serves */
    if ((deadline = io_deadline(deadline)) < 0)
        return LEASH_EINVAL;
    if (deadline != T_INF && deadline <= leash_now())
        return LEASH_ETIMEDOUT;
    leash_g *g = sched_getg();
    if (!g || g->foreign)
        return poll_thread(fd, events, deadline);
    if (netpoll_init() < 0)
        return LEASH_ENOMEM;
    pdesc *pd = pd_get(fd);
    if (!pd)
        return LEASH_ENOMEM;
    iowaiter me = {.g = g, .events = events, .pd = pd};
    leash_timer t = {.when = deadline, .fn = io_timeout, .arg = &me,
                     .idx = -1, .wakes = TW_G, .target = g};
    llock_acquire(&pd->lock);
    if (pd->closing) {
        llock_release(&pd->lock);
        return LEASH_ECLOSED;
    }
    me.next = pd->waiters;
    if (pd->waiters)
        pd->waiters->prev = &me;
    pd->waiters = &me;
    me.queued = true;
    atomic_fetch_add(&S.io_waiters, 1);
    int rc = pd_arm(pd);
    if (rc < 0) {
        waiter_unlink(pd, &me);
        llock_release(&pd->lock);
        return rc; /* -EBADF for a closed fd */
    }
    if (deadline != T_INF && timer_add(&t) < 0) {
        waiter_unlink(pd, &me);
        llock_release(&pd->lock);
        return LEASH_ENOMEM;
    }
    g_wait_begin(g, WR_IO_WAIT, (void *)(intptr_t)(deadline != T_INF));
    sched_netpoll_waiter_added();
    sched_park(llock_release_fn, &pd->lock);
    g_wait_end(g);
    if (deadline != T_INF)
        timer_del(&t); /* waits for a firing callback; t is on our stack */
    return me.result;
}

int leash_fd_close(int fd) {
    if (fd < 0)
        return LEASH_EINVAL;
    pdesc *pd = NP.epfd >= 0 ? pd_get(fd) : NULL;
    if (pd) {
        llock_acquire(&pd->lock);
        pd->closing = true;
        epoll_ctl(NP.epfd, EPOLL_CTL_DEL, fd, NULL);
        pd_wake(pd, LEASH_POLLIN | LEASH_POLLOUT, LEASH_ECLOSED);
        llock_release(&pd->lock);
    }
    int r = close(fd);
    if (pd) {
        /* The number may be reused from now on: a fresh descriptor. */
        llock_acquire(&pd->lock);
        pd->closing = false;
        atomic_store(&pd->nonblock, false);
        llock_release(&pd->lock);
    }
    return r < 0 ? -errno : 0;
}

/* ------------------------------------------------------------ operations */

/* fds are made non-blocking once (leash_fd_wait's contract in
 * include/leash.h), and sockets are read and
 * written with MSG_DONTWAIT too, so a number reused behind leash's back
 * (close(2) instead of leash_fd_close) can never block a worker; other
 * fds get their flag checked on every call. Writes to a socket use
 * MSG_NOSIGNAL: a peer that went away is -EPIPE, not a SIGPIPE that
 * kills the process. */
API_FRAME ssize_t leash_read(int fd, void *buf, size_t n, int64_t deadline) {
    if (fd < 0 || (!buf && n) || io_deadline(deadline) < 0)
        return LEASH_EINVAL;
    bool sock = true;
    int rc = make_nonblock(fd); /* once per fd: see above */
    if (rc < 0)
        return rc;
    for (;;) {
        ssize_t r = sock ? recv(fd, buf, n, MSG_DONTWAIT) : read(fd, buf, n);
        if (r >= 0)
            return r;
        int e = errno_now(); /* this loop parks: see errno_now */
        if (e == EINTR)
            continue;
        if (e == ENOTSOCK && sock) {
            sock = false; /* a pipe or tty: its flag is what counts */
            if ((rc = set_nonblock(fd)) < 0)
                return rc;
            continue;
        }
        if (e != EAGAIN && e != EWOULDBLOCK)
            return -e;
        rc = leash_fd_wait(fd, LEASH_POLLIN, deadline);
        if (rc < 0)
            return rc;
    }
}

API_FRAME ssize_t leash_write(int fd, const void *buf, size_t n, int64_t deadline) {
    if (fd < 0 || (!buf && n) || io_deadline(deadline) < 0)
        return LEASH_EINVAL;
    bool sock = true;
    int rc = make_nonblock(fd);
    if (rc < 0)
        return rc;
    size_t done = 0;
    while (done < n) {
        const char *p = (const char *)buf + done;
        ssize_t r = sock ? send(fd, p, n - done, MSG_DONTWAIT | MSG_NOSIGNAL)
                         : write(fd, p, n - done);
        if (r >= 0) {
            done += (size_t)r;
            continue;
        }
        int e = errno_now();
        if (e == EINTR)
            continue;
        if (e == ENOTSOCK && sock) {
            sock = false;
            if ((rc = set_nonblock(fd)) < 0)
                return done ? (ssize_t)done : rc;
            continue;
        }
        if (e != EAGAIN && e != EWOULDBLOCK)
            return done ? (ssize_t)done : -e;
        rc = leash_fd_wait(fd, LEASH_POLLOUT, deadline);
        if (rc < 0)
            return done ? (ssize_t)done : rc;
    }
    return (ssize_t)done;
}

API_FRAME int leash_accept(int fd, struct sockaddr *addr, unsigned *addrlen,
                 int64_t deadline) {
    if (fd < 0 || io_deadline(deadline) < 0)
        return LEASH_EINVAL;
    int rc = set_nonblock(fd);
    if (rc < 0)
        return rc;
    for (;;) {
        int c = accept4(fd, addr, (socklen_t *)addrlen,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0)
            return c;
        int e = errno_now();
        if (e == EINTR || e == ECONNABORTED)
            continue;
        if (e != EAGAIN)
            return -e;
        rc = leash_fd_wait(fd, LEASH_POLLIN, deadline);
        if (rc < 0)
            return rc;
    }
}

API_FRAME int leash_connect(int fd, const struct sockaddr *addr, unsigned addrlen,
                  int64_t deadline) {
    if (fd < 0 || !addr || io_deadline(deadline) < 0)
        return LEASH_EINVAL;
    int rc = set_nonblock(fd);
    if (rc < 0)
        return rc;
    if (connect(fd, addr, (socklen_t)addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    rc = leash_fd_wait(fd, LEASH_POLLOUT, deadline);
    if (rc < 0)
        return rc;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno_now(); /* after a park */
    return err ? -err : 0;
}
