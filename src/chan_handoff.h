/* SPDX-License-Identifier: MIT */
/*
 * chan_handoff.h — a value handed between a channel operation and a
 * waiting peer (chan.c's design comment: the sudog hand-off), inline for
 * the hot paths of chan.c and select.c's fast pass. Everything else calls
 * the out-of-line chan_send_to_waiter / chan_recv_from_waiter.
 */
#ifndef LEASH_CHAN_HANDOFF_H
#define LEASH_CHAN_HANDOFF_H

#include "internal.h"

static inline void *slot(leash_chan *c, size_t i) {
    return c->buf + i * c->elem_size;
}

/* The common element sizes are copied inline, not through memcpy. */
static inline void copy_elem(void *dst, const void *src, size_t n) {
    if (!dst)
        return;
    if (n == 4)
        memcpy(dst, src, 4);
    else if (n == 8)
        memcpy(dst, src, 8);
    else if (n)
        memcpy(dst, src, n);
}

/* A receiver waits (so the buffer is empty): give it the value directly.
 * Called with c->lock held; releases it. */
static inline __attribute__((always_inline)) void
chan_send_handoff(leash_chan *c, sudog *s, const void *elem) {
    copy_elem(s->elem, elem, c->elem_size);
    s->success = true;
    s->g->param = s;
    coroutine *g = s->g;
    chan_unlock(c);
    sched_ready(g, true);
}

/* A sender waits. Unbuffered: take its value. Buffered (so full): take
 * the head of the buffer and put the sender's value at the tail, which
 * is the same slot. Called with c->lock held; releases it. */
static inline __attribute__((always_inline)) void
chan_recv_handoff(leash_chan *c, sudog *s, void *out) {
    /* Senders wait on unbuffered channels more than on full ones. */
    if (likely(c->cap == 0 || c->elem_size == 0)) {
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
    coroutine *g = s->g;
    chan_unlock(c);
    sched_ready(g, true);
}

#endif
