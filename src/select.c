/* SPDX-License-Identifier: MIT */
/*
 * select.c — Go's select over leash channels.
 *
 * Algorithm (Go's selectgo):
 *   1. Validate the cases; NULL channels take no part.
 *   2. Pick a random poll order (uniform choice among ready cases) and a
 *      lock order (by channel address, duplicates once), so selects on
 *      many workers never deadlock on each other's channel locks. Two
 *      cases on channels, neither nil (the common select), are checked
 *      in one unrolled step and take one random bit for the poll order
 *      and one compare for the lock order (order_two, select_locked).
 *   3. With every channel locked, take the first ready case in poll order.
 *      A channel-only select first tries each case in poll order with
 *      only its own channel locked (select_chans, "fast pass"): a case
 *      that proceeds there is taken; finding none decides nothing, and
 *      the select goes on with every channel locked.
 *   4. If none is ready: try_select returns LEASH_EAGAIN; select enqueues
 *      a sudog (on its own stack) on every channel and parks; the locks
 *      are released after the switch. The waker claims the select through
 *      g->selectdone, so exactly one case fires.
 *   5. Woken, it unhooks its other sudogs, locking only the channels
 *      that still hold one.
 *
 * A send case on a closed channel makes the select return LEASH_ECLOSED
 * (Go panics), as does a send case whose channel is closed while the
 * select waits.
 *
 * I/O cases (LEASH_READABLE / LEASH_WRITABLE on a connection) take part
 * the same way: polled without waiting in step 3, and in step 4 an
 * iowaiter hangs on the fd's poll descriptor, whose lock (taken after
 * the channel locks, descriptors in address order) is also released
 * only after the switch; netpoll claims the select through selectdone
 * like a channel does. The connection's fd is counted in for the whole
 * select (conn_enter_fd), so a concurrent close cannot free its number.
 */
#include "internal.h"
#include "sched_tls.h"
#include "chan_handoff.h"

#define SMALL 8

typedef struct {
    leash_chan **locks; /* distinct channels in address order */
    int nlocks;
    pdesc **pds;        /* distinct poll descriptors locked, in order */
    int npds;
} lockset;

static void lock_all(lockset *ls) {
    for (int i = 0; i < ls->nlocks; i++)
        slock_acquire(&ls->locks[i]->lock);
}

static void unlock_all(void *p) {
    lockset *ls = p;
    for (int i = ls->npds - 1; i >= 0; i--)
        io_sel_unlock(ls->pds[i]);
    for (int i = ls->nlocks - 1; i >= 0; i--)
        chan_unlock(ls->locks[i]);
}

/* ------------------------------------------------------------ I/O cases */

static bool is_io(int dir) { return dir == LEASH_READABLE || dir == LEASH_WRITABLE; }

/* The state of one I/O case. A select on an fd of the runtime's own
 * (select_fd_or_ctx) has no connection, a deadline and a generation. */
typedef struct {
    int ci;               /* its case */
    int fd;               /* -1: the connection is closed */
    int events;
    leash_conn *conn;     /* counted in: counted out at the end */
    int64_t deadline;
    const _Atomic uint32_t *gen;
    uint32_t seen;
    pdesc *pd;
    iowaiter w;
    rtimer t;
} selio;

typedef struct { /* select_fd_or_ctx's fd, as case 0 */
    int fd;
    int64_t deadline;
    const _Atomic uint32_t *gen;
    uint32_t seen;
    int result;           /* out: the wait's result */
} selext;

static selio *io_of(selio *io, int nio, int ci) {
    for (int j = 0; j < nio; j++)
        if (io[j].ci == ci)
            return &io[j];
    return NULL;
}

/* Counts the connections in (or takes ext's fd); a closed one is ready. */
static void io_setup(leash_case *cs, size_t n, selio *io, const selext *ext) {
    int j = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_io(cs[i].dir) || (!cs[i].ch && !(ext && i == 0)))
            continue;
        selio *x = &io[j++];
        *x = (selio){.ci = (int)i, .fd = -1, .deadline = T_INF,
                     .events = cs[i].dir == LEASH_READABLE ? LEASH_POLLIN
                                                           : LEASH_POLLOUT};
        if (ext && i == 0) {
            x->fd = ext->fd;
            x->deadline = ext->deadline;
            x->gen = ext->gen;
            x->seen = ext->seen;
        } else {
            x->conn = (leash_conn *)cs[i].ch;
            x->fd = conn_enter_fd(x->conn);
            if (x->fd < 0)
                x->conn = NULL; /* not counted in */
        }
    }
}

/* Step 3 for an I/O case: its result if it is ready (> 0 ready, 0 look
 * again, LEASH_E*), or INT_MIN. */
static int io_try(selio *x) {
    if (x->fd < 0)
        return LEASH_ECLOSED;
    if (x->gen && atomic_load(x->gen) != x->seen)
        return 0;
    if (x->deadline != T_INF && x->deadline <= leash_now())
        return LEASH_ETIMEDOUT;
    int r = fd_ready_now(x->fd, x->events);
    return r != 0 ? r : INT_MIN;
}

static void io_finish(leash_case *k, selext *ext, int result) {
    k->ok = result != LEASH_ECLOSED;
    if (ext)
        ext->result = result;
}

static void sort_pds(selio **v, int n) {
    for (int i = 1; i < n; i++) {
        selio *x = v[i];
        int j = i - 1;
        while (j >= 0 && (uintptr_t)v[j]->pd > (uintptr_t)x->pd) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}

/* Unlocks all but `keep`, which the caller releases through a hand-off. */
static inline void unlock_all_but(lockset *ls, leash_chan *keep) {
    for (int i = ls->nlocks - 1; i >= 0; i--)
        if (ls->locks[i] != keep)
            chan_unlock(ls->locks[i]);
}

/* try_case proceeded (rc 1) or failed (rc < 0) on case k, number idx:
 * unlocks (all but k's channel when the case released it itself) and
 * returns select's result. */
static int case_done(lockset *ls, leash_case *k, bool released, int rc,
                     int idx) {
    if (released)
        unlock_all_but(ls, k->ch);
    else
        unlock_all(ls);
    return rc < 0 ? strict_fail(rc, "send on closed channel") : idx;
}

static void sort_chans(leash_chan **v, int n) {
    for (int i = 1; i < n; i++) { /* insertion sort: n is small */
        leash_chan *x = v[i];
        int j = i - 1;
        while (j >= 0 && (uintptr_t)v[j] > (uintptr_t)x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}

static bool is_chan_dir(int dir) { return dir == LEASH_SEND || dir == LEASH_RECV; }

/* The channel of a send or receive case that has one, or NULL if the case
 * is invalid: not a live channel, or an element that does not fit it. */
static inline leash_chan *case_chan(const leash_case *k) {
    leash_chan *c = chan_check(k->ch);
    if (!c)
        return NULL;
    if (k->dir == LEASH_SEND)
        return k->size != c->elem_size || (!k->elem && k->size) ? NULL : c;
    /* A zero-size channel (a context's done) carries nothing: any
     * receive buffer will do, and none is written (chan.c). */
    return k->elem && k->size != c->elem_size && c->elem_size ? NULL : c;
}

/* Checks the cases; *nio gets the number of I/O cases taking part. */
static int validate(leash_case *cs, size_t n, const selext *ext, int *nio) {
    *nio = ext ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        leash_case *k = &cs[i];
        k->ok = 0;
        if (is_io(k->dir)) {
            if (!(ext && i == 0) && k->ch) {
                if (!obj_check(k->ch, OBJ_CONN))
                    return LEASH_EINVAL;
                ++*nio;
            }
            continue;
        }
        if (!is_chan_dir(k->dir) || (k->ch && !case_chan(k)))
            return LEASH_EINVAL;
    }
    return 0;
}

/* Tries case k with its channel locked. Returns 1 if it completed (the
 * hand-off paths release c->lock themselves: *released is set), 0 if not
 * ready, or LEASH_ECLOSED for a send on a closed channel. inl: the
 * hand-offs inline (the fast pass), else called. */
static inline __attribute__((always_inline)) int
try_case(leash_case *k, bool *released, bool inl) {
    leash_chan *c = k->ch;
    *released = false;
    if (k->dir == LEASH_RECV) {
        sudog *s = waitq_dequeue(&c->sendq);
        if (s) {
            k->ok = 1; /* first: nothing is live across the hand-off */
            *released = true;
            if (inl)
                chan_recv_handoff(c, s, k->elem);
            else
                chan_recv_from_waiter(c, s, k->elem);
            return 1;
        }
        if (c->count > 0) {
            if (k->elem && c->elem_size)
                memcpy(k->elem, c->buf + c->recvx * c->elem_size,
                       c->elem_size);
            if (++c->recvx == c->cap)
                c->recvx = 0;
            c->count--;
            k->ok = 1;
            return 1;
        }
        if (c->closed) {
            if (k->elem)
                memset(k->elem, 0, c->elem_size);
            k->ok = 0;
            return 1;
        }
        return 0;
    }
    if (c->closed)
        return LEASH_ECLOSED;
    sudog *s = waitq_dequeue(&c->recvq);
    if (s) {
        if (inl)
            chan_send_handoff(c, s, k->elem);
        else
            chan_send_to_waiter(c, s, k->elem);
        *released = true;
        return 1;
    }
    if (c->count < c->cap) {
        if (c->elem_size)
            memcpy(c->buf + c->sendx * c->elem_size, k->elem, c->elem_size);
        if (++c->sendx == c->cap)
            c->sendx = 0;
        c->count++;
        return 1;
    }
    return 0;
}

/* After the wake-up: unhooks the sudogs other than the one that won (an
 * I/O case's has none queued) and returns the case's result (an I/O
 * case's is its index: the caller finishes it). */
static int select_woken(leash_case *cs, sudog *sg, int m, sudog *won) {
    leash_case *k = &cs[won->case_idx];
    /* Not k->ch->elem_size: the waker may have freed the channel. A
     * receive case with an elem was checked to have the element size. */
    size_t esz = k->size;
    /* Unhook the other sudogs. One seen unqueued is done with for good
     * (waitq_dequeue), so only channels still holding one are locked. */
    for (int i = 0; i < m; i++) {
        if (&sg[i] == won || is_io(cs[sg[i].case_idx].dir) ||
            !atomic_load_explicit(&sg[i].queued, memory_order_acquire))
            continue;
        leash_case *o = &cs[sg[i].case_idx];
        slock_acquire(&o->ch->lock);
        waitq_remove(o->dir == LEASH_SEND ? &o->ch->sendq : &o->ch->recvq,
                     &sg[i]);
        chan_unlock(o->ch);
    }
    if (k->dir == LEASH_RECV) {
        k->ok = won->success;
        if (!won->success && won->elem)
            memset(won->elem, 0, esz);
        return won->case_idx;
    }
    if (k->dir == LEASH_SEND)
        return won->success
                   ? won->case_idx
                   : strict_fail(LEASH_ECLOSED, "send on closed channel");
    return won->case_idx; /* an I/O case: the caller finishes it */
}

/* A random 64-bit number from the worker self runs on (self->w is set at
 * each resume, so it is this thread's worker while self runs), else
 * sched_rand's. */
static inline uint64_t sel_rand(coroutine *self) {
    worker *w = self && !self->foreign ? self->w : NULL;
    if (likely(w)) {
        uint64_t x = w->rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w->rng = x;
        return x;
    }
    return (uint64_t)sched_rand() << 32 | sched_rand();
}

/* ------------------------------------------------- channel-only selects */

#define SEL_GENERAL INT_MIN /* not for select_chans: an I/O case */

/* The poll order of a channel-only select's cases (order[], the number
 * taking part returned) and whether every channel is in self's held
 * cache (*known), in one pass that checks them (validate's rules).
 * Returns SEL_GENERAL, having changed nothing but the cases' ok, when it
 * meets an I/O case, or LEASH_EINVAL. */
static inline __attribute__((always_inline)) int
order_cases(leash_case *cs, int n, coroutine *self, int *order, bool *known) {
    int m = 0;
    *known = true;
    /* One draw serves the whole shuffle: j = floor(r * (m + 1)) with r a
     * fraction in [0, 1), then r keeps the fraction left over (8! < 2^16,
     * so the 64 bits are far from used up). */
    uint64_t r = 0;
    for (int i = 0; i < n; i++) {
        leash_case *k = &cs[i];
        k->ok = 0;
        if (!is_chan_dir(k->dir))
            return is_io(k->dir) ? SEL_GENERAL : LEASH_EINVAL;
        if (!k->ch)
            continue;
        leash_chan *c = case_chan(k);
        if (!c)
            return LEASH_EINVAL;
        *known = *known && chan_user_known(c, self);
        int j = 0;
        if (m) {
            if (m == 1)
                r = sel_rand(self);
            unsigned __int128 x = (unsigned __int128)r * (unsigned)(m + 1);
            j = (int)(x >> 64);
            r = (uint64_t)x;
        }
        order[m] = order[j];
        order[j] = i;
        m++;
    }
    return m;
}

/* order_cases for the common select: two cases, both on channels, neither
 * nil. The same checks, unrolled, and the same draw, which for two cases
 * is the top bit of one random number. Returns 0, having changed nothing,
 * when the cases are not all that (order_cases then looks at them). */
static inline __attribute__((always_inline)) int
order_two(leash_case *cs, coroutine *self, int *order, bool *known) {
    leash_case *a = &cs[0], *b = &cs[1];
    if (!is_chan_dir(a->dir) || !is_chan_dir(b->dir) || !a->ch || !b->ch)
        return 0;
    leash_chan *ca = case_chan(a), *cb = case_chan(b);
    if (!ca || !cb)
        return 0;
    a->ok = 0;
    b->ok = 0;
    *known = chan_user_known(ca, self) && chan_user_known(cb, self);
    int f = (int)(sel_rand(self) >> 63);
    order[0] = f;
    order[1] = f ^ 1;
    return 2;
}

/* select_chans' full path, out of line (the fast pass keeps its registers):
 * the m cases in poll order tried with every channel locked in address
 * order, then the wait. */
static __attribute__((noinline)) int
select_locked(leash_case *cs, const int *order, int m, coroutine *self,
              bool block) {
    leash_chan *locks[SMALL];
    int nl = 0; /* the distinct channels, by address */
    if (m == 2) { /* the common select: one compare */
        leash_chan *x = cs[order[0]].ch, *y = cs[order[1]].ch;
        bool swap = (uintptr_t)x > (uintptr_t)y;
        locks[0] = swap ? y : x;
        locks[1] = swap ? x : y;
        nl = x == y ? 1 : 2;
    } else {
        for (int i = 0; i < m; i++) {
            leash_chan *c = cs[order[i]].ch;
            int p = nl;
            while (p > 0 && (uintptr_t)locks[p - 1] > (uintptr_t)c)
                p--;
            if (p > 0 && locks[p - 1] == c)
                continue;
            for (int q = nl; q > p; q--)
                locks[q] = locks[q - 1];
            locks[p] = c;
            nl++;
        }
    }
    lockset ls = {locks, nl, NULL, 0};
    lock_all(&ls);
    for (int i = 0; i < nl; i++)
        chan_note_user(locks[i], self);
    for (int i = 0; i < m; i++) {
        leash_case *k = &cs[order[i]];
        bool released;
        int rc = try_case(k, &released, false);
        if (rc == 0)
            continue;
        return case_done(&ls, k, released, rc, order[i]);
    }
    if (!block) {
        unlock_all(&ls);
        return LEASH_EAGAIN;
    }
    coroutine *g = prepare_park(self);
    if (!g) {
        unlock_all(&ls);
        return LEASH_ENOMEM;
    }
    sudog sg[SMALL];
    atomic_store_explicit(&g->selectdone, 0, memory_order_relaxed);
    g->param = NULL;
    for (int i = 0; i < m; i++) {
        leash_case *k = &cs[order[i]];
        sg[i] = (sudog){.g = g, .elem = k->ch->elem_size ? k->elem : NULL,
                        .c = k->ch, .is_select = true, .case_idx = order[i]};
        waitq_enqueue(k->dir == LEASH_SEND ? &k->ch->sendq : &k->ch->recvq,
                      &sg[i]);
    }
    select_wait_obj swo = {locks, nl};
    g_wait_begin(g, WR_SELECT, &swo);
    sched_park(unlock_all, &ls);
    g_wait_end(g);
    return select_woken(cs, sg, m, g->param);
}

/* A select of at most SMALL cases, all on channels (the common case): one
 * pass checks the cases and draws the poll order (order_cases; two cases
 * on channels: order_two), with no I/O bookkeeping and nothing allocated.
 * Returns SEL_GENERAL, having changed nothing but the cases' ok, when it
 * meets an I/O case.
 *
 * Fast pass: with two or more cases, each case is first tried in poll
 * order with only its own channel locked, and the first that can proceed
 * does. A case that proceeds while its channel is locked is a legal
 * choice whatever the other channels hold (it was ready; select may
 * choose any ready case), so this needs no lock order. Finding none is
 * not an answer: another case may have become ready meanwhile (a value
 * moved from a channel tried later to one tried earlier), so a try_select
 * that finds nothing, like a select about to wait, goes on to the full
 * path: every channel locked in address order, all cases tried again,
 * then the wait. The pass runs only when every channel is in the
 * caller's held cache (chan_user_known), so that it notes users as the
 * full path would. */
static inline __attribute__((always_inline)) int
select_chans(leash_case *cs, int n, bool block) {
    int order[SMALL];
    coroutine *self = sched_getg_entry(); /* before any switch */
    bool known; /* every channel in self's held cache */
    int m = n == 2 ? order_two(cs, self, order, &known) : 0;
    if (!m) {
        m = order_cases(cs, n, self, order, &known);
        if (m < 0)
            return m;
    }
    if (m == 0) {
        if (!block)
            return LEASH_EAGAIN;
        chan_block_forever(n == 0 ? WR_SELECT_NO_CASES : WR_SELECT);
    }
    g_note_recv(self); /* a receive case may take a message */
    if (known && m > 1) {
        for (int i = 0; i < m; i++) {
            leash_case *k = &cs[order[i]];
            leash_chan *c = k->ch;
            slock_acquire(&c->lock);
            bool released;
            int rc = try_case(k, &released, true);
            if (rc == 0 || !released)
                chan_unlock(c);
            if (rc != 0)
                return rc < 0 ? strict_fail(rc, "send on closed channel")
                              : order[i];
        }
    }
    return select_locked(cs, order, m, self, block);
}

/* Any select: I/O cases, more than SMALL cases, select_fd_or_ctx's. Out
 * of line, so that select_chans keeps its registers. */
static __attribute__((noinline)) int
select_general(leash_case *cs, size_t n, bool block, selext *ext) {
    if (n > INT32_MAX)
        return LEASH_EINVAL;
    int nio;
    int rc = validate(cs, n, ext, &nio);
    if (rc < 0)
        return rc;

    int small_order[SMALL];
    leash_chan *small_locks[SMALL];
    sudog small_sg[SMALL];
    int *order = small_order;
    leash_chan **locks = small_locks;
    sudog *sg = small_sg;
    selio *io = NULL;     /* I/O cases are rare: their state is allocated */
    selio **iov = NULL;   /* ... and sorted by descriptor */
    pdesc **pds = NULL;
    if (n > SMALL) {
        order = lmalloc(n * sizeof *order);
        locks = lmalloc(n * sizeof *locks);
        sg = block ? lmalloc(n * sizeof *sg) : NULL;
        if (!order || !locks || (block && !sg)) {
            rc = LEASH_ENOMEM;
            goto out;
        }
    }
    if (nio) {
        io = lcalloc((size_t)nio, sizeof *io + sizeof *iov + sizeof *pds);
        if (!io) {
            rc = LEASH_ENOMEM;
            goto out;
        }
        iov = (selio **)(io + nio);
        pds = (pdesc **)(iov + nio);
        io_setup(cs, n, io, ext);
    }

    /* Random poll order over the cases taking part (inside-out shuffle). */
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_io(cs[i].dir) ? !io_of(io, nio, (int)i) : !cs[i].ch)
            continue;
        int j = m ? (int)(sched_rand() % (uint32_t)(m + 1)) : 0;
        order[m] = order[j];
        order[j] = (int)i;
        m++;
    }
    if (m == 0) {
        if (!block) {
            rc = LEASH_EAGAIN;
            goto out;
        }
        if (order != small_order) {
            lfree(order);
            lfree(locks);
            lfree(sg);
        }
        chan_block_forever(n == 0 ? WR_SELECT_NO_CASES : WR_SELECT);
    }
    int nc = 0; /* channel cases */
    for (int i = 0; i < m; i++)
        if (!is_io(cs[order[i]].dir))
            locks[nc++] = cs[order[i]].ch;
    sort_chans(locks, nc);
    int nl = 0;
    for (int i = 0; i < nc; i++)
        if (nl == 0 || locks[nl - 1] != locks[i])
            locks[nl++] = locks[i];
    lockset ls = {locks, nl, pds, 0};
    select_wait_obj swo = {locks, nl};

    coroutine *self = sched_getg();
    g_note_recv(self); /* a receive case may take a message */
    lock_all(&ls);
    for (int i = 0; i < nl; i++)
        chan_note_user(locks[i], self);
    for (int i = 0; i < m; i++) {
        leash_case *k = &cs[order[i]];
        if (is_io(k->dir)) {
            int r = io_try(io_of(io, nio, order[i]));
            if (r == INT_MIN)
                continue;
            unlock_all(&ls);
            io_finish(k, ext, r);
            rc = order[i];
            goto out;
        }
        bool released;
        int r = try_case(k, &released, false);
        if (r == 0)
            continue;
        rc = case_done(&ls, k, released, r, order[i]);
        goto out;
    }
    if (!block) {
        unlock_all(&ls);
        rc = LEASH_EAGAIN;
        goto out;
    }

    coroutine *g = sched_prepare_park();
    if (!g) {
        unlock_all(&ls);
        rc = LEASH_ENOMEM;
        goto out;
    }
    atomic_store_explicit(&g->selectdone, 0, memory_order_relaxed);
    g->param = NULL;
    for (int i = 0; i < m; i++) {
        int ci = order[i];
        leash_case *k = &cs[ci];
        /* An I/O case's ch is a connection, not a channel. A zero-size
         * channel's receive writes nothing (see validate). */
        bool carries = !is_io(k->dir) && k->ch->elem_size;
        sg[i] = (sudog){.g = g, .elem = carries ? k->elem : NULL,
                        .c = k->ch,
                        .is_select = true, .case_idx = ci};
    }
    /* I/O waiters first: one found ready after all (closed, moved) is
     * taken as the case, the select claimed by ourselves so that no
     * waiter already hung can be fired for it. */
    bool timed = false;
    int hung = 0, now_ready = -1, now_result = 0;
    for (int i = 0; i < m && nio; i++) {
        selio *x = io_of(io, nio, order[i]);
        if (!x)
            continue;
        x->pd = io_sel_pd(x->fd);
        if (!x->pd) {
            now_ready = -2;
            now_result = LEASH_ENOMEM;
            break;
        }
        x->w = (iowaiter){.g = g, .events = x->events, .sel = &sg[i],
                          .gen = x->gen};
        iov[hung++] = x;
        timed |= x->deadline != T_INF;
    }
    sort_pds(iov, hung);
    for (int j = 0; j < hung && now_ready == -1; j++) {
        if (ls.npds == 0 || pds[ls.npds - 1] != iov[j]->pd) {
            io_sel_lock(iov[j]->pd);
            pds[ls.npds++] = iov[j]->pd;
        }
        int r = io_sel_arm(iov[j]->pd, &iov[j]->w, &iov[j]->t,
                           iov[j]->deadline, iov[j]->seen);
        if (r != 0) {
            now_ready = r < 0 ? -2 : iov[j]->ci;
            now_result = r < 0 ? r : iov[j]->w.result;
        }
    }
    if (now_ready != -1) {
        atomic_store(&g->selectdone, 1);
        unlock_all(&ls);
        for (int j = 0; j < hung; j++)
            io_sel_disarm(&iov[j]->w, &iov[j]->t, iov[j]->deadline);
        if (now_ready == -2) {
            rc = now_result;
        } else {
            io_finish(&cs[now_ready], ext, now_result);
            rc = now_ready;
        }
        goto out;
    }
    for (int i = 0; i < m; i++) {
        leash_case *k = &cs[order[i]];
        if (!is_io(k->dir))
            waitq_enqueue(k->dir == LEASH_SEND ? &k->ch->sendq
                                               : &k->ch->recvq, &sg[i]);
    }
    if (nio) {
        /* Shown (and weighed by the deadlock detector) as I/O: an fd can
         * wake it. With a deadline or another case it has a way out. */
        g_wait_begin(g, WR_IO_WAIT,
                     (void *)(intptr_t)(timed || m > hung));
        sched_netpoll_waiter_added();
    } else {
        g_wait_begin(g, WR_SELECT, &swo);
    }
    sched_park(unlock_all, &ls);
    g_wait_end(g);

    sudog *won = g->param;
    leash_case *k = &cs[won->case_idx];
    for (int j = 0; j < hung; j++)
        io_sel_disarm(&iov[j]->w, &iov[j]->t, iov[j]->deadline);
    if (is_io(k->dir))
        io_finish(k, ext, won->err);
    rc = select_woken(cs, sg, m, won);
out:
    if (order != small_order) {
        lfree(order);
        lfree(locks);
        lfree(sg);
    }
    if (io) {
        for (int j = 0; j < nio; j++)
            if (io[j].conn)
                conn_leave_fd(io[j].conn);
        lfree(io);
    }
    return rc;
}

/* An I/O loop's wait that a context can end (io_park): case 0 is the fd,
 * case 1 the context's done channel. */
int select_fd_or_ctx(int fd, int events, int64_t deadline,
                     const _Atomic uint32_t *gen, uint32_t seen,
                     leash_ctx *ctx) {
    selext ext = {.fd = fd, .deadline = deadline, .gen = gen, .seen = seen};
    leash_case cs[2] = {
        {.dir = events == LEASH_POLLIN ? LEASH_READABLE : LEASH_WRITABLE},
        {.ch = leash_ctx_done(ctx), .dir = LEASH_RECV},
    };
    int rc = select_general(cs, 2, true, &ext);
    if (rc == 1) {
        int e = leash_ctx_err(ctx);
        return e ? e : LEASH_ECANCELED;
    }
    return rc < 0 ? rc : ext.result;
}

static inline __attribute__((always_inline)) int
do_select(leash_case *cs, size_t n, bool block) {
    if (n <= SMALL) {
        int rc = select_chans(cs, (int)n, block);
        if (rc != SEL_GENERAL)
            return rc;
    }
    return select_general(cs, n, block, NULL);
}

API_FRAME int leash_select(leash_case *cases, size_t n) {
    if (unlikely(!cases) && n)
        return LEASH_EINVAL;
    return do_select(cases, n, true);
}

API_FRAME int leash_try_select(leash_case *cases, size_t n) {
    if (!cases && n)
        return LEASH_EINVAL;
    return do_select(cases, n, false);
}
