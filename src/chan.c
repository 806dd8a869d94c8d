/*
 * chan.c — channels with Go's semantics.
 *
 * Invariants (c->lock held):
 *   - At most one of sendq and recvq is non-empty, except that a select
 *     may wait on both sides of one channel (it never matches itself).
 *   - A buffered channel with waiting senders is full; one with waiting
 *     receivers is empty.
 *   - A waiting coroutine's sudog lives on its own stack, so blocking
 *     allocates nothing. A value moves directly between the peer's stack
 *     and ours when one side waits (Go's sudog hand-off); the buffer is
 *     touched only when nobody waits.
 *   - Waiters are served in FIFO order. A select waiter is claimed with a
 *     CAS on its g->selectdone: the first channel to claim it wins and the
 *     others skip its sudogs (select.c removes them).
 *
 * Lifetime: the last leash_release of a channel marks it dead for the API.
 * If coroutines still wait on it, its memory stays (a "zombie") until the
 * last waiter leaves, so a select woken by another case can still unhook
 * itself safely.
 *
 * Parking: the channel lock is released by sched_park's unlockf after the
 * coroutine has switched out (internal.h, park protocol).
 */
#include "internal.h"

#define ELEM_MAX (64u << 10) /* Go's limit on element size */

leash_chan *chan_check(const void *p) {
    return (leash_chan *)obj_check(p, OBJ_CHAN);
}

/* ----------------------------------------------------------- wait queues */

void waitq_enqueue(waitq *q, sudog *s) {
    s->next = NULL;
    s->prev = q->last;
    if (q->last)
        q->last->next = s;
    else
        q->first = s;
    q->last = s;
    atomic_store_explicit(&s->queued, true, memory_order_relaxed);
    s->c->nwaiters++;
}

static void waitq_unlink(waitq *q, sudog *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        q->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        q->last = s->prev;
    s->next = s->prev = NULL;
    s->c->nwaiters--;
}

void waitq_remove(waitq *q, sudog *s) {
    if (!atomic_load_explicit(&s->queued, memory_order_relaxed))
        return;
    waitq_unlink(q, s);
    atomic_store_explicit(&s->queued, false, memory_order_relaxed);
}

/* The first waiter that can still be woken: a select already won through
 * another channel is skipped and unhooked here. Clearing `queued` is the
 * last touch of a skipped sudog, so its select, which may check `queued`
 * without the lock (select.c), can return as soon as it sees it clear. */
sudog *waitq_dequeue(waitq *q) {
    for (sudog *s; (s = q->first);) {
        waitq_unlink(q, s);
        bool claimed = true;
        if (s->is_select) {
            uint32_t z = 0;
            claimed = atomic_compare_exchange_strong(&s->g->selectdone, &z, 1);
        }
        atomic_store_explicit(&s->queued, false, memory_order_release);
        if (claimed)
            return s;
    }
    return NULL;
}

/* ------------------------------------------------------------ lifetime */

static void chan_free(leash_chan *c) {
    lfree(c->buf);
    obj_free_mem(&c->obj);
}

static void chan_destroy(lobj *o) {
    leash_chan *c = (leash_chan *)o;
    slock_acquire(&c->lock);
    if (c->nwaiters > 0) {
        c->zombie = true; /* freed by its last waiter */
        slock_release(&c->lock);
        return;
    }
    slock_release(&c->lock);
    chan_free(c);
}

/* Unlocks c; frees it if it was a zombie whose last waiter just left. */
void chan_unlock(leash_chan *c) {
    bool dead = c->zombie && c->nwaiters == 0;
    slock_release(&c->lock);
    if (dead)
        chan_free(c);
}

leash_chan *leash_chan_make_at(const char *file, int line, size_t elem_size,
                               size_t cap) {
    if (sched_ensure_started() < 0)
        return NULL;
    leash_g *owner = sched_getg_or_foreign();
    return owner ? chan_make(file, line, elem_size, cap, owner) : NULL;
}

leash_chan *chan_make(const char *file, int line, size_t elem_size,
                      size_t cap, leash_g *owner) {
    if (elem_size > ELEM_MAX || cap > (size_t)INT32_MAX ||
        (elem_size && cap > SIZE_MAX / elem_size))
        return NULL;
    leash_chan *c = obj_alloc(OBJ_CHAN, sizeof *c);
    if (!c)
        return NULL;
    c->elem_size = elem_size;
    c->cap = cap;
    c->lock = (slock)SLOCK_INIT;
    if (elem_size && cap) {
        c->buf = lmalloc(elem_size * cap);
        if (!c->buf) {
            obj_free_mem_type(c, OBJ_CHAN);
            return NULL;
        }
    }
    if (obj_init(&c->obj, OBJ_CHAN, file, line, chan_destroy, owner) < 0) {
        lfree(c->buf);
        obj_free_mem_type(c, OBJ_CHAN);
        return NULL;
    }
    return c;
}

int leash_chan_len(leash_chan *ch) {
    leash_chan *c = chan_check(ch);
    if (!c)
        return LEASH_EINVAL;
    slock_acquire(&c->lock);
    int n = (int)c->count;
    slock_release(&c->lock);
    return n;
}

int leash_chan_cap(leash_chan *ch) {
    leash_chan *c = chan_check(ch);
    return c ? (int)c->cap : LEASH_EINVAL;
}

/* ------------------------------------------------------------ hand-offs */

static inline void *slot(leash_chan *c, size_t i) {
    return c->buf + i * c->elem_size;
}

static inline void copy_elem(void *dst, const void *src, size_t n) {
    if (n && dst)
        memcpy(dst, src, n);
}

/* A receiver waits (so the buffer is empty): give it the value directly.
 * Called with c->lock held; releases it. */
void chan_send_to_waiter(leash_chan *c, sudog *s, const void *elem) {
    copy_elem(s->elem, elem, c->elem_size);
    s->success = true;
    s->g->param = s;
    leash_g *g = s->g;
    chan_unlock(c);
    sched_ready(g, true);
}

/* A sender waits. Unbuffered: take its value. Buffered (so full): take
 * the head of the buffer and put the sender's value at the tail, which
 * is the same slot. Called with c->lock held; releases it. */
void chan_recv_from_waiter(leash_chan *c, sudog *s, void *out) {
    if (c->cap == 0 || c->elem_size == 0) {
        copy_elem(out, s->elem, c->elem_size);
    } else {
        void *p = slot(c, c->recvx);
        copy_elem(out, p, c->elem_size);
        memcpy(p, s->elem, c->elem_size);
        if (++c->recvx == c->cap)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    s->success = true;
    s->g->param = s;
    leash_g *g = s->g;
    chan_unlock(c);
    sched_ready(g, true);
}

/* ------------------------------------------------------- blocking forever */

void chan_block_forever(int reason) {
    leash_g *g = sched_prepare_park();
    if (g)
        g_wait_begin(g, reason, NULL);
    for (;;)
        sched_park(NULL, NULL); /* nothing will ever ready it */
}

/* ------------------------------------------------------------------ send */

static int chan_send(leash_chan *c, const void *elem, bool block) {
    slock_acquire(&c->lock);
    if (c->closed) {
        slock_release(&c->lock);
        return LEASH_ECLOSED;
    }
    sudog *s = waitq_dequeue(&c->recvq);
    if (s) {
        chan_send_to_waiter(c, s, elem);
        return 0;
    }
    if (c->count < c->cap) {
        if (c->elem_size) {
            memcpy(slot(c, c->sendx), elem, c->elem_size);
        }
        if (++c->sendx == c->cap)
            c->sendx = 0;
        c->count++;
        slock_release(&c->lock);
        return 0;
    }
    if (!block) {
        slock_release(&c->lock);
        return LEASH_EAGAIN;
    }
    leash_g *g = sched_prepare_park();
    if (!g) {
        slock_release(&c->lock);
        return LEASH_ENOMEM;
    }
    sudog me = {.g = g, .elem = (void *)elem, .c = c};
    waitq_enqueue(&c->sendq, &me);
    g_wait_begin(g, WR_CHAN_SEND, c);
    sched_park(slock_release_fn, &c->lock);
    g_wait_end(g);
    if (!me.success)
        return LEASH_ECLOSED; /* closed while we waited */
    return 0;
}

static int check_elem(leash_chan *c, const void *elem, size_t size) {
    if (size != c->elem_size || (!elem && size))
        return LEASH_EINVAL;
    return 0;
}

int leash_send_n(leash_chan *ch, const void *elem, size_t size) {
    if (!ch)
        chan_block_forever(WR_CHAN_SEND_NIL);
    leash_chan *c = chan_check(ch);
    if (!c || check_elem(c, elem, size))
        return LEASH_EINVAL;
    return chan_send(c, elem, true);
}

int leash_try_send_n(leash_chan *ch, const void *elem, size_t size) {
    if (!ch)
        return LEASH_EAGAIN; /* a nil channel is never ready */
    leash_chan *c = chan_check(ch);
    if (!c || check_elem(c, elem, size))
        return LEASH_EINVAL;
    return chan_send(c, elem, false);
}

/* ------------------------------------------------------------------ recv */

static int chan_recv(leash_chan *c, void *out, bool block) {
    slock_acquire(&c->lock);
    sudog *s = waitq_dequeue(&c->sendq);
    if (s) {
        chan_recv_from_waiter(c, s, out);
        return 0;
    }
    if (c->count > 0) {
        copy_elem(out, slot(c, c->recvx), c->elem_size);
        if (++c->recvx == c->cap)
            c->recvx = 0;
        c->count--;
        slock_release(&c->lock);
        return 0;
    }
    if (c->closed) {
        slock_release(&c->lock);
        if (out)
            memset(out, 0, c->elem_size);
        return LEASH_ECLOSED;
    }
    if (!block) {
        slock_release(&c->lock);
        return LEASH_EAGAIN;
    }
    leash_g *g = sched_prepare_park();
    if (!g) {
        slock_release(&c->lock);
        return LEASH_ENOMEM;
    }
    sudog me = {.g = g, .elem = out, .c = c};
    waitq_enqueue(&c->recvq, &me);
    g_wait_begin(g, WR_CHAN_RECV, c);
    sched_park(slock_release_fn, &c->lock);
    g_wait_end(g);
    if (!me.success) {
        if (out)
            memset(out, 0, c->elem_size);
        return LEASH_ECLOSED;
    }
    return 0;
}

/* out == NULL discards the value, whatever the element size; otherwise
 * size must be the element size. */
static int check_out(leash_chan *c, void *out, size_t size) {
    if (!out)
        return 0;
    return size == c->elem_size ? 0 : LEASH_EINVAL;
}

int leash_recv_n(leash_chan *ch, void *out, size_t size) {
    if (!ch)
        chan_block_forever(WR_CHAN_RECV_NIL);
    leash_chan *c = chan_check(ch);
    if (!c || check_out(c, out, size))
        return LEASH_EINVAL;
    return chan_recv(c, out, true);
}

int leash_try_recv_n(leash_chan *ch, void *out, size_t size) {
    if (!ch)
        return LEASH_EAGAIN;
    leash_chan *c = chan_check(ch);
    if (!c || check_out(c, out, size))
        return LEASH_EINVAL;
    return chan_recv(c, out, false);
}

/* ----------------------------------------------------------------- close */

int leash_close(leash_chan *ch) {
    leash_chan *c = chan_check(ch);
    if (!c)
        return LEASH_EINVAL;
    slock_acquire(&c->lock);
    if (c->closed) {
        slock_release(&c->lock);
        return LEASH_ECLOSED;
    }
    c->closed = true;
    sudog *list = NULL;
    for (sudog *s; (s = waitq_dequeue(&c->recvq));) {
        if (s->elem)
            memset(s->elem, 0, c->elem_size);
        s->success = false;
        s->next = list;
        list = s;
    }
    for (sudog *s; (s = waitq_dequeue(&c->sendq));) {
        s->success = false;
        s->next = list;
        list = s;
    }
    /* Wake with the lock held: a woken waiter's stack, and the sudog on
     * it, may be reused as soon as it runs, so read `next` first. */
    while (list) {
        sudog *s = list;
        list = s->next;
        s->g->param = s;
        sched_ready(s->g, false);
    }
    chan_unlock(c);
    return 0;
}
