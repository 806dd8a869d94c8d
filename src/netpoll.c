/* SPDX-License-Identifier: MIT */
/*
 * netpoll.c — non-blocking I/O on epoll, integrated into the scheduler.
 *
 * Each fd the runtime has seen gets a poll descriptor (pdesc) in a
 * two-level table indexed by fd; descriptors are never freed, so an
 * event that arrives for a descriptor whose fd was closed meanwhile is
 * harmless (a spurious wake-up: the reader retries and waits again).
 *
 * Registration comes in two kinds, chosen by who may close the fd:
 *
 *   - A plain fd (leash_read and co. on a number the user owns) may be
 *     closed with close(2) and its number reused behind leash's back, and
 *     the kernel then drops the registration silently. So it is
 *     level-triggered and one-shot, re-armed with the union of the
 *     directions waited for each time a coroutine starts waiting
 *     (EPOLL_CTL_MOD, or ADD when the kernel has forgotten the fd).
 *     Re-arming reports readiness that arrived before the wait, so no
 *     wake-up is lost; the price is one epoll_ctl per wait.
 *   - An fd owned by a leash_conn (fd_adopt) is closed only through
 *     leash_fd_close (the connection's contract), which deletes the
 *     registration before close(2). It is registered once, edge-triggered,
 *     for both directions (Go's netpoll). An event that finds no waiter
 *     of its direction is kept in pd->ready, and a wait that follows an
 *     operation's EAGAIN takes it instead of parking: the EAGAIN proves
 *     that readiness older than the operation is used up, and anything
 *     newer raised an edge that either set pd->ready or finds the waiter
 *     (both under pd->lock). A wait with no operation before it
 *     (leash_fd_wait, a select's case) polls the fd under pd->lock first,
 *     since pd->ready may be stale. A stale bit costs one spurious retry.
 *
 * Waiters (on their own stacks) hang off the descriptor under its lock,
 * with an optional deadline timer. An event, the deadline, or
 * leash_fd_close takes a waiter off under that lock and readies it:
 * whoever takes it off wakes it, exactly once, and reads nothing of it
 * afterwards (the woken coroutine may already be reusing that stack on
 * another worker while the lock is still held). A select's waiter
 * (select.c) is claimed through its g's selectdone first, like a sudog.
 *
 * Closing: a number is only ever touched by calls inside it. Every call
 * on an fd (leash_read and co.) counts itself in pd->inflight for its
 * whole duration; leash_fd_close marks the descriptor closing, wakes its
 * waiters with LEASH_ECLOSED, and leaves the close(2) to the last call
 * out if any is inside (Go's fdMutex), so no call can find the number
 * reused under it. A connection (conn.c) adds its own closed flag, which
 * also covers the calls that start after the close.
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
#include <limits.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define PD_PAGE 1024
#define PD_PAGES 4096 /* fds up to 4M */

typedef struct pdesc {
    llock lock;
    int fd;
    _Atomic bool nonblock; /* O_NONBLOCK already set on this fd */
    bool closing;          /* leash_fd_close called: waits get ECLOSED */
    bool close_pending;    /* ... and the last call out does close(2) */
    bool owned;            /* a leash_conn's fd: edge-triggered (fd_adopt) */
    bool et;               /* ... and registered so */
    uint8_t ready;         /* edge-triggered: events no waiter took */
    int inflight;          /* calls inside, on this number */
    iowaiter *waiters;
} pdesc;

static struct {
    int epfd;
    int evfd;                 /* wakes a worker blocked in epoll */
    pdesc *_Atomic pages[PD_PAGES];
    llock grow;
    _Atomic int64_t last_poll;
    _Atomic long ctl_calls; /* epoll_ctl calls made by waits (tests) */
} NP = {.epfd = -1, .evfd = -1, .grow = LLOCK_INIT(LR_NPGROW)};

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
                for (int i = 0; i < PD_PAGE; i++) { /* fixed for good */
                    page[i].fd = fd / PD_PAGE * PD_PAGE + i;
                    llock_init(&page[i].lock, LR_PDESC);
                }
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

static void waiter_link(pdesc *pd, iowaiter *w) {
    w->prev = NULL;
    w->next = pd->waiters;
    if (pd->waiters)
        pd->waiters->prev = w;
    pd->waiters = w;
    w->queued = true;
    atomic_fetch_add(&S.io_waiters, 1);
}

static int armed_events(pdesc *pd) {
    int ev = 0;
    for (iowaiter *w = pd->waiters; w; w = w->next)
        ev |= w->events;
    return ev;
}

/* Makes sure the kernel will report what pd's waiters wait for (pd->lock
 * held): an owned fd is registered edge-triggered once; a plain one's
 * one-shot registration is re-armed for what is still waited for. */
static int pd_arm(pdesc *pd) {
    if (pd->et)
        return 0; /* registered for good: every edge comes by itself */
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = pd};
    int first = EPOLL_CTL_MOD, then = EPOLL_CTL_ADD, retry_on = ENOENT;
    if (pd->owned) {
        ev.events |= EPOLLIN | EPOLLOUT | EPOLLET;
        /* Usually new; a wait before the fd was adopted left a one-shot
         * registration to modify. */
        first = EPOLL_CTL_ADD, then = EPOLL_CTL_MOD, retry_on = EEXIST;
    } else {
        int want = armed_events(pd);
        if (!want)
            return 0;
        ev.events |= EPOLLONESHOT;
        if (want & LEASH_POLLIN)
            ev.events |= EPOLLIN;
        if (want & LEASH_POLLOUT)
            ev.events |= EPOLLOUT;
    }
    atomic_fetch_add_explicit(&NP.ctl_calls, 1, memory_order_relaxed);
    if (epoll_ctl(NP.epfd, first, pd->fd, &ev) < 0 &&
        (errno != retry_on || epoll_ctl(NP.epfd, then, pd->fd, &ev) < 0))
        return -errno;
    pd->et = pd->owned;
    return 0;
}

/* An edge-triggered fd's readiness for `events` a waiter may take
 * instead of parking (pd->lock held): `tried` says an operation got
 * EAGAIN just before, which makes pd->ready trustworthy; otherwise the
 * fd is polled, and pd->ready, maybe stale, forgotten. 0: park. */
static int pd_take_ready(pdesc *pd, int events, bool tried) {
    if (!pd->et)
        return 0;
    if (tried) {
        int r = pd->ready & events;
        pd->ready &= (uint8_t)~r;
        return r;
    }
    pd->ready &= (uint8_t)~events;
    int r = fd_ready_now(pd->fd, events);
    return r > 0 ? r : 0;
}

/* Test hook (declared in tests/, not in leash.h): called with each waiter
 * just readied, and with NULL once its waker is done with the waiters it
 * readied, the descriptor's lock held throughout, so that a test can
 * make a woken waiter's memory unreadable (ASan) for exactly the time its
 * coroutine may be reusing it. */
static void (*_Atomic wake_hook)(const void *w, size_t size);
void netpoll_test_wake_hook(void (*fn)(const void *w, size_t size)) {
    atomic_store(&wake_hook, fn);
}

static inline void wake_hook_call(const iowaiter *w) {
    void (*hook)(const void *, size_t) =
        atomic_load_explicit(&wake_hook, memory_order_relaxed);
    if (unlikely(hook))
        hook(w, w ? sizeof *w : 0);
}

/* Takes w off pd and readies it with `result` (pd->lock held); returns
 * whether it was readied. A select's waiter is readied only if this
 * claims its select; otherwise another case won, and the select unhooks
 * the rest itself. Once it returns true, w belongs to its coroutine
 * again (and may be gone): the caller must not touch it. */
static bool waiter_fire(pdesc *pd, iowaiter *w, int result) {
    waiter_unlink(pd, w);
    if (w->sel) {
        uint32_t z = 0;
        if (!atomic_compare_exchange_strong(&w->g->selectdone, &z, 1))
            return false;
        w->sel->err = result;
        w->g->param = w->sel;
    }
    w->result = result;
    sched_ready(w->g, false);
    wake_hook_call(w);
    return true;
}

/* Fires every waiter matching `events` (pd->lock held): with the ready
 * ones of its own if result > 0, else with result. Returns the events
 * that some readied waiter waited for.
 *
 * Everything needed of w is read before it is fired: once readied, its
 * coroutine may run at once on another worker, return from its wait and
 * reuse the stack w lives on, while this still holds pd->lock. */
static int pd_wake(pdesc *pd, int events, int result) {
    int taken = 0;
    for (iowaiter *w = pd->waiters, *next; w; w = next) {
        next = w->next;
        int want = w->events;
        if (!(want & events) ||
            !waiter_fire(pd, w, result > 0 ? (result & want) : result))
            continue;
        taken |= want;
    }
    wake_hook_call(NULL);
    return taken;
}

static void io_timeout(rtimer *t, int64_t now) {
    (void)now;
    iowaiter *w = t->arg;
    pdesc *pd = w->pd;
    llock_acquire(&pd->lock);
    if (w->queued)
        waiter_fire(pd, w, LEASH_ETIMEDOUT);
    wake_hook_call(NULL);
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
        int got = ev_to_poll(evs[i].events);
        llock_acquire(&pd->lock);
        int taken = pd_wake(pd, got, got);
        if (pd->et)
            pd->ready |= (uint8_t)(got & ~taken); /* for the next wait */
        else if (pd->waiters)
            pd_arm(pd); /* the other direction still waits */
        llock_release(&pd->lock);
    }
    return n < 0 ? 0 : n;
}

int64_t netpoll_last(void) {
    return atomic_load_explicit(&NP.last_poll, memory_order_relaxed);
}

/* -------------------------------------------------------------- closing */

/* Counts a call in on fd's number: LEASH_ECLOSED once leash_fd_close has
 * begun and until its close(2) is done. An fd beyond the table (or a
 * table page that could not be had) is not counted: 0. */
int fd_enter(int fd) {
    pdesc *pd = pd_get(fd);
    if (!pd)
        return 0;
    int rc = 0;
    llock_acquire(&pd->lock);
    if (pd->closing)
        rc = LEASH_ECLOSED;
    else
        pd->inflight++;
    llock_release(&pd->lock);
    return rc;
}

/* The close(2) itself (pd->lock held, nobody inside): the descriptor is
 * fresh again before the number can be reused. */
static int pd_close(pdesc *pd) {
    if (NP.epfd >= 0)
        epoll_ctl(NP.epfd, EPOLL_CTL_DEL, pd->fd, NULL);
    int r = close(pd->fd) < 0 ? -errno : 0;
    pd->closing = pd->close_pending = false;
    pd->owned = pd->et = false;
    pd->ready = 0;
    atomic_store(&pd->nonblock, false);
    return r;
}

void fd_leave(int fd) {
    pdesc *pd = pd_get(fd);
    if (!pd)
        return;
    llock_acquire(&pd->lock);
    if (--pd->inflight == 0 && pd->close_pending)
        pd_close(pd);
    llock_release(&pd->lock);
}

int leash_fd_close(int fd) {
    if (fd < 0)
        return LEASH_EINVAL;
    pdesc *pd = pd_get(fd);
    if (!pd)
        return close(fd) < 0 ? -errno : 0;
    llock_acquire(&pd->lock);
    if (pd->closing) { /* a close is pending already */
        llock_release(&pd->lock);
        return LEASH_ECLOSED;
    }
    pd->closing = true;
    pd_wake(pd, LEASH_POLLIN | LEASH_POLLOUT, LEASH_ECLOSED);
    int r = 0;
    if (pd->inflight > 0)
        pd->close_pending = true; /* the last call out closes it */
    else
        r = pd_close(pd);
    llock_release(&pd->lock);
    return r;
}

long netpoll_ctl_calls(void) {
    return atomic_load_explicit(&NP.ctl_calls, memory_order_relaxed);
}

void fd_adopt(int fd) {
    pdesc *pd = pd_get(fd);
    if (!pd)
        return; /* beyond the table: waits are not netpolled anyway */
    llock_acquire(&pd->lock);
    pd->owned = true;
    llock_release(&pd->lock);
}

/* How many calls are inside fd's number now (tests: a close "while a
 * call is inside" can be staged without guessing). */
int fd_calls_inside(int fd) {
    pdesc *pd = pd_get(fd);
    if (!pd)
        return 0;
    llock_acquire(&pd->lock);
    int n = pd->inflight;
    llock_release(&pd->lock);
    return n;
}

/* Wakes fd's waiters for `events` that watch a settable deadline (their
 * gen moved): they look at the new deadline and wait again. */
void fd_kick(int fd, int events) {
    pdesc *pd = pd_get(fd);
    if (!pd)
        return;
    llock_acquire(&pd->lock);
    for (iowaiter *w = pd->waiters, *next; w; w = next) {
        next = w->next;
        if (w->gen && (w->events & events))
            waiter_fire(pd, w, 0);
    }
    wake_hook_call(NULL);
    llock_release(&pd->lock);
}

/* -------------------------------------------------------------- waiting */

static int set_nonblock(int fd);

/* Sets O_NONBLOCK once per descriptor (a close forgets it). */
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

static int revents_to_poll(short re, int events) {
    int got = 0;
    if (re & (POLLIN | POLLHUP | POLLERR))
        got |= LEASH_POLLIN;
    if (re & (POLLOUT | POLLHUP | POLLERR))
        got |= LEASH_POLLOUT;
    return got & events;
}

/* Whether fd is ready for `events` now (select's first pass). */
int fd_ready_now(int fd, int events) {
    pdesc *pd = pd_get(fd);
    if (pd && __atomic_load_n(&pd->closing, __ATOMIC_RELAXED))
        return LEASH_ECLOSED;
    struct pollfd p = {.fd = fd, .events = (short)events};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & POLLNVAL)
        return LEASH_ECLOSED;
    return revents_to_poll(p.revents, events);
}

/* A plain thread waits in poll(2). It cannot be woken by a close or a
 * deadline change, so with a settable deadline it polls in slices and
 * looks again. */
#define THREAD_SLICE_NS (20 * 1000000LL)
static int poll_thread(pdesc *pd, int fd, int events, int64_t deadline,
                       const _Atomic uint32_t *gen, uint32_t seen) {
    struct pollfd p = {.fd = fd, .events = (short)events};
    for (;;) {
        if (pd && __atomic_load_n(&pd->closing, __ATOMIC_RELAXED))
            return LEASH_ECLOSED;
        if (gen && atomic_load(gen) != seen)
            return 0;
        int64_t now = leash_now();
        if (deadline != T_INF && now >= deadline)
            return LEASH_ETIMEDOUT;
        int64_t until = time_add(now, THREAD_SLICE_NS);
        if (until > deadline)
            until = deadline;
        int r = poll(&p, 1, (int)((until - now + 999999) / 1000000));
        if (r > 0) {
            if (p.revents & POLLNVAL)
                return LEASH_ECLOSED;
            int got = revents_to_poll(p.revents, events);
            return got ? got : events;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

/* Parks the caller until fd is ready for `events`, `deadline` passes, fd
 * is closed, or (gen set) *gen moves away from `seen`: returns the ready
 * events, LEASH_ETIMEDOUT, LEASH_ECLOSED, or 0 for "look again". */
static int fd_wait_at(int fd, int events, int64_t deadline,
                      const _Atomic uint32_t *gen, uint32_t seen,
                      bool tried) {
    if (deadline != T_INF && deadline <= leash_now())
        return LEASH_ETIMEDOUT;
    coroutine *g = sched_getg();
    if (!g || g->foreign)
        return poll_thread(pd_get(fd), fd, events, deadline, gen, seen);
    if (netpoll_init() < 0)
        return LEASH_ENOMEM;
    pdesc *pd = pd_get(fd);
    if (!pd)
        return LEASH_ENOMEM;
    iowaiter me = {.g = g, .events = events, .pd = pd, .gen = gen};
    rtimer t = {.when = deadline, .fn = io_timeout, .arg = &me,
                     .idx = -1, .wakes = TW_G, .target = g};
    llock_acquire(&pd->lock);
    int rc = pd->closing ? LEASH_ECLOSED : 0;
    if (rc == 0 && gen && atomic_load(gen) != seen)
        rc = 1; /* moved before we got here: look again (returns 0) */
    int ready = rc ? 0 : pd_take_ready(pd, events, tried);
    if (rc || ready) {
        llock_release(&pd->lock);
        return rc < 0 ? rc : ready;
    }
    waiter_link(pd, &me);
    if ((rc = pd_arm(pd)) < 0 ||
        (deadline != T_INF && (rc = timer_add(&t)) < 0)) {
        waiter_unlink(pd, &me);
        llock_release(&pd->lock);
        return rc == -1 ? LEASH_ENOMEM : rc; /* -EBADF: a closed fd */
    }
    g_wait_begin(g, WR_IO_WAIT, (void *)(intptr_t)(deadline != T_INF));
    sched_netpoll_waiter_added();
    sched_park(llock_release_fn, &pd->lock);
    g_wait_end(g);
    if (deadline != T_INF)
        timer_del(&t); /* waits for a firing callback; t is on our stack */
    return me.result;
}

/* ------------------------------------------------------ select's waiters */

pdesc *io_sel_pd(int fd) {
    return netpoll_init() < 0 ? NULL : pd_get(fd);
}

void io_sel_lock(pdesc *pd) { llock_acquire(&pd->lock); }

void io_sel_unlock(pdesc *pd) { llock_release(&pd->lock); }

/* Hangs a select's waiter on pd (locked): 1 if it is
 * ready at once instead (closing, or gen moved: w->result says why), 0
 * when hung, or an error. */
int io_sel_arm(pdesc *pd, iowaiter *w, rtimer *t, int64_t deadline,
               uint32_t seen) {
    w->pd = pd;
    if (pd->closing) {
        w->result = LEASH_ECLOSED;
        return 1;
    }
    if (w->gen && atomic_load(w->gen) != seen) {
        w->result = 0;
        return 1;
    }
    if (deadline != T_INF && deadline <= leash_now()) {
        w->result = LEASH_ETIMEDOUT;
        return 1;
    }
    if ((w->result = pd_take_ready(pd, w->events, false)) > 0)
        return 1;
    waiter_link(pd, w);
    int rc = pd_arm(pd);
    if (rc == 0 && deadline != T_INF) {
        *t = (rtimer){.when = deadline, .fn = io_timeout, .arg = w,
                           .idx = -1, .wakes = TW_G, .target = w->g};
        if (timer_add(t) < 0)
            rc = LEASH_ENOMEM;
    }
    if (rc < 0)
        waiter_unlink(pd, w);
    return rc;
}

/* After the select woke: takes w off if it is still hung. */
void io_sel_disarm(iowaiter *w, rtimer *t, int64_t deadline) {
    if (!w->pd)
        return;
    if (deadline != T_INF)
        timer_del(t);
    llock_acquire(&w->pd->lock);
    waiter_unlink(w->pd, w);
    llock_release(&w->pd->lock);
}

/* One wait of an I/O loop, bounded as *b says: > 0 or 0 to try the
 * operation again, or an error (the context's, when it ends first). */
int io_park(int fd, int events, const iobound *b) {
    uint32_t seen = b->gen ? atomic_load(b->gen) : 0;
    int64_t dl = b->deadline;
    if (b->settable) {
        int64_t s = atomic_load(b->settable);
        dl = s < dl ? s : dl;
    }
    if (b->ctx) {
        int e = leash_ctx_err(b->ctx);
        if (e)
            return e;
        if (leash_ctx_done(b->ctx))
            return select_fd_or_ctx(fd, events, dl, b->gen, seen, b->ctx);
    }
    return fd_wait_at(fd, events, dl, b->gen, seen, true);
}

API_FRAME int leash_fd_wait(int fd, int events, int64_t deadline) {
    events &= LEASH_POLLIN | LEASH_POLLOUT;
    if (fd < 0 || !events)
        return LEASH_EINVAL;
    if (fd >= PD_PAGE * PD_PAGES)
        return -EBADF; /* beyond any descriptor this table serves */
    if ((deadline = io_deadline(deadline)) < 0)
        return LEASH_EINVAL;
    int rc = fd_enter(fd);
    if (rc < 0)
        return rc;
    rc = fd_wait_at(fd, events, deadline, NULL, 0, false);
    fd_leave(fd);
    return rc;
}

/* ------------------------------------------------------------ operations */

/* fds are made non-blocking once (leash_fd_wait's contract in
 * include/leash.h), and sockets are read and
 * written with MSG_DONTWAIT too, so a number reused behind leash's back
 * (close(2) instead of leash_fd_close) can never block a worker; other
 * fds get their flag checked on every call. Writes to a socket use
 * MSG_NOSIGNAL: a peer that went away is -EPIPE, not a SIGPIPE that
 * kills the process. */
ssize_t io_read(int fd, void *buf, size_t n, const iobound *b) {
    if (n == 0)
        return 0; /* a socket would wait for data it cannot take */
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
        rc = io_park(fd, LEASH_POLLIN, b);
        if (rc < 0)
            return rc;
    }
}

/* Moves past k written bytes, and past empty entries. */
static void iov_advance(struct iovec **iov, int *cnt, size_t k) {
    while (*cnt > 0 && k >= (*iov)->iov_len) {
        k -= (*iov)->iov_len;
        (*iov)++;
        (*cnt)--;
    }
    if (*cnt > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + k;
        (*iov)->iov_len -= k;
    }
}

/* Writes every byte of iov[0..cnt) (consumed in place) unless an error
 * or the bound stops it: the bytes written, or the error if none. */
ssize_t io_writev(int fd, struct iovec *iov, int cnt, const iobound *b) {
    bool sock = true;
    int rc = make_nonblock(fd);
    if (rc < 0)
        return rc;
    size_t done = 0;
    iov_advance(&iov, &cnt, 0);
    while (cnt > 0) {
        struct msghdr m = {.msg_iov = iov,
                           .msg_iovlen = (size_t)(cnt > IOV_MAX ? IOV_MAX : cnt)};
        ssize_t r = sock ? sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL)
                         : writev(fd, iov, (int)m.msg_iovlen);
        if (r >= 0) {
            done += (size_t)r;
            iov_advance(&iov, &cnt, (size_t)r);
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
        rc = io_park(fd, LEASH_POLLOUT, b);
        if (rc < 0)
            return done ? (ssize_t)done : rc;
    }
    return (ssize_t)done;
}

int io_accept(int fd, struct sockaddr *addr, unsigned *addrlen,
              const iobound *b) {
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
        rc = io_park(fd, LEASH_POLLIN, b);
        if (rc < 0)
            return rc;
    }
}

int io_connect(int fd, const struct sockaddr *addr, unsigned addrlen,
               const iobound *b) {
    int rc = set_nonblock(fd);
    if (rc < 0)
        return rc;
    if (connect(fd, addr, (socklen_t)addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    do
        rc = io_park(fd, LEASH_POLLOUT, b);
    while (rc == 0);
    if (rc < 0)
        return rc;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno_now(); /* after a park */
    return err ? -err : 0;
}

/* The public fd calls: a plain deadline, counted in on the number. */
#define FD_CALL(fd, deadline, expr)                                         \
    ({                                                                      \
        iobound b_ = {.deadline = io_deadline(deadline)};                   \
        __typeof__(expr) r_ = fd_enter(fd);                                 \
        if (r_ == 0) {                                                      \
            r_ = (expr);                                                    \
            fd_leave(fd);                                                   \
        }                                                                   \
        r_;                                                                 \
    })

API_FRAME ssize_t leash_read(int fd, void *buf, size_t n, int64_t deadline) {
    if (fd < 0 || (!buf && n) || io_deadline(deadline) < 0)
        return LEASH_EINVAL;
    return FD_CALL(fd, deadline, io_read(fd, buf, n, &b_));
}

/* leash_read also bounded by ctx (NULL: none), for bufio's fd readers. */
ssize_t fd_read_ctx(int fd, void *buf, size_t n, int64_t deadline,
                    leash_ctx *ctx) {
    iobound b = {.deadline = io_deadline(deadline), .ctx = ctx};
    ssize_t r = fd_enter(fd);
    if (r == 0) {
        r = io_read(fd, buf, n, &b);
        fd_leave(fd);
    }
    return r;
}

API_FRAME ssize_t leash_write(int fd, const void *buf, size_t n,
                              int64_t deadline) {
    if (fd < 0 || (!buf && n) || io_deadline(deadline) < 0)
        return LEASH_EINVAL;
    struct iovec v = {.iov_base = (void *)buf, .iov_len = n};
    return FD_CALL(fd, deadline, io_writev(fd, &v, 1, &b_));
}

API_FRAME int leash_accept(int fd, struct sockaddr *addr, unsigned *addrlen,
                           int64_t deadline) {
    if (fd < 0 || io_deadline(deadline) < 0)
        return LEASH_EINVAL;
    return FD_CALL(fd, deadline, io_accept(fd, addr, addrlen, &b_));
}

API_FRAME int leash_connect(int fd, const struct sockaddr *addr,
                            unsigned addrlen, int64_t deadline) {
    if (fd < 0 || !addr || io_deadline(deadline) < 0)
        return LEASH_EINVAL;
    return FD_CALL(fd, deadline, io_connect(fd, addr, addrlen, &b_));
}
