/*
 * select.c — Go's select over leash channels.
 *
 * Algorithm (Go's selectgo):
 *   1. Validate the cases; NULL channels take no part.
 *   2. Pick a random poll order (uniform choice among ready cases) and a
 *      lock order (by channel address, duplicates once), so selects on
 *      many workers never deadlock on each other's channel locks.
 *   3. With every channel locked, take the first ready case in poll order.
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
 */
#include "internal.h"

#define SMALL 8

typedef struct {
    leash_chan **locks; /* distinct channels in address order */
    int nlocks;
} lockset;

static void lock_all(lockset *ls) {
    for (int i = 0; i < ls->nlocks; i++)
        slock_acquire(&ls->locks[i]->lock);
}

static void unlock_all(void *p) {
    lockset *ls = p;
    for (int i = ls->nlocks - 1; i >= 0; i--)
        chan_unlock(ls->locks[i]);
}

/* Unlocks all but `keep`, which the caller releases through a hand-off. */
static void unlock_all_but(lockset *ls, leash_chan *keep) {
    for (int i = ls->nlocks - 1; i >= 0; i--)
        if (ls->locks[i] != keep)
            chan_unlock(ls->locks[i]);
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

static int validate(leash_case *cs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        leash_case *k = &cs[i];
        k->ok = 0;
        if (k->dir != LEASH_SEND && k->dir != LEASH_RECV)
            return LEASH_EINVAL;
        if (!k->ch)
            continue;
        leash_chan *c = chan_check(k->ch);
        if (!c)
            return LEASH_EINVAL;
        if (k->dir == LEASH_SEND &&
            (k->size != c->elem_size || (!k->elem && k->size)))
            return LEASH_EINVAL;
        /* A zero-size channel (a context's done) carries nothing: any
         * receive buffer will do, and none is written (chan.c). */
        if (k->dir == LEASH_RECV && k->elem && k->size != c->elem_size &&
            c->elem_size)
            return LEASH_EINVAL;
    }
    return 0;
}

/* Tries case k with its channel locked. Returns 1 if it completed (the
 * hand-off paths release c->lock themselves: *released is set), 0 if not
 * ready, or LEASH_ECLOSED for a send on a closed channel. */
static int try_case(leash_case *k, bool *released) {
    leash_chan *c = k->ch;
    *released = false;
    if (k->dir == LEASH_RECV) {
        sudog *s = waitq_dequeue(&c->sendq);
        if (s) {
            chan_recv_from_waiter(c, s, k->elem);
            *released = true;
            k->ok = 1;
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

static inline __attribute__((always_inline)) int
do_select(leash_case *cs, size_t n, bool block) {
    if (n > INT32_MAX)
        return LEASH_EINVAL;
    int rc = validate(cs, n);
    if (rc < 0)
        return rc;

    int small_order[SMALL];
    leash_chan *small_locks[SMALL];
    sudog small_sg[SMALL];
    int *order = small_order;
    leash_chan **locks = small_locks;
    sudog *sg = small_sg;
    if (n > SMALL) {
        order = lmalloc(n * sizeof *order);
        locks = lmalloc(n * sizeof *locks);
        sg = block ? lmalloc(n * sizeof *sg) : NULL;
        if (!order || !locks || (block && !sg)) {
            rc = LEASH_ENOMEM;
            goto out;
        }
    }

    /* Random poll order over the non-nil cases (inside-out shuffle). */
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cs[i].ch)
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
    for (int i = 0; i < m; i++)
        locks[i] = cs[order[i]].ch;
    sort_chans(locks, m);
    int nl = 0;
    for (int i = 0; i < m; i++)
        if (nl == 0 || locks[nl - 1] != locks[i])
            locks[nl++] = locks[i];
    lockset ls = {locks, nl};

    leash_g *self = sched_getg();
    g_note_recv(self); /* a receive case may take a message */
    lock_all(&ls);
    for (int i = 0; i < nl; i++)
        chan_note_user(locks[i], self);
    for (int i = 0; i < m; i++) {
        leash_case *k = &cs[order[i]];
        bool released;
        int r = try_case(k, &released);
        if (r == 0)
            continue;
        if (released)
            unlock_all_but(&ls, k->ch);
        else
            unlock_all(&ls);
        rc = r < 0 ? strict_fail(r, "send on closed channel") : order[i];
        goto out;
    }
    if (!block) {
        unlock_all(&ls);
        rc = LEASH_EAGAIN;
        goto out;
    }

    leash_g *g = sched_prepare_park();
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
        sg[i] = (sudog){.g = g, .elem = k->ch->elem_size ? k->elem : NULL,
                        .c = k->ch,
                        .is_select = true, .case_idx = ci};
        waitq_enqueue(k->dir == LEASH_SEND ? &k->ch->sendq : &k->ch->recvq,
                      &sg[i]);
    }
    g_wait_begin(g, WR_SELECT, cs);
    sched_park(unlock_all, &ls);
    g_wait_end(g);

    sudog *won = g->param;
    leash_case *k = &cs[won->case_idx];
    /* Not k->ch->elem_size: the waker may have freed the channel. A
     * receive case with an elem was checked to have the element size. */
    size_t esz = k->size;
    /* Unhook the other sudogs. One seen unqueued is done with for good
     * (waitq_dequeue), so only channels still holding one are locked. */
    for (int i = 0; i < m; i++) {
        if (&sg[i] == won ||
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
        rc = won->case_idx;
    } else {
        rc = won->success ? won->case_idx
                          : strict_fail(LEASH_ECLOSED, "send on closed channel");
    }
out:
    if (order != small_order) {
        lfree(order);
        lfree(locks);
        lfree(sg);
    }
    return rc;
}

API_FRAME int leash_select(leash_case *cases, size_t n) {
    if (!cases && n)
        return LEASH_EINVAL;
    return do_select(cases, n, true);
}

API_FRAME int leash_try_select(leash_case *cases, size_t n) {
    if (!cases && n)
        return LEASH_EINVAL;
    return do_select(cases, n, false);
}
