/* SPDX-License-Identifier: MIT */
/*
 * borrowers.c — who else could still use a channel: the part of the
 * orphan proof that keeps it sound under borrowing (docs/DESIGN-NOTES.md,
 * "Leak rules" and "Why leaks can be proven").
 *
 * A coroutine may use a channel without a reference of its own: through
 * its argument, a global, a table, a message. leash cannot see where a
 * pointer is stored, so it does not try to: once every holder is blocked
 * on c, it asks instead whether any *live* coroutine could still act. Each
 * one must be, for c,
 *   - stuck on c: queued plainly (not in a select) on c itself;
 *   - stuck forever: blocked on a nil channel or a select with no case,
 *     or waiting plainly on a channel already proven orphaned (unless
 *     LEASH_ORPHANS=wake, which wakes those);
 *   - renounced: it released its own reference to c (not by returning),
 *     holds none now and has received nothing since. A release says "I
 *     am done with it": the releaser does not use its pointer again,
 *     unless a message brings c back (hence the receive count);
 *   - the runtime's own (g->system): it uses no user channel;
 *   - returning: its function has returned, and its exit releasing its
 *     references is what runs the proof.
 * Anything else (running, runnable, asleep, in I/O, in a select, on a
 * mutex or another channel) could still reach c through memory leash
 * does not see, so the proof is not made: the coroutines stay suspects
 * (the exit check and leash_leak_verify still report them).
 *
 * What is not alive yet can only be started by a renouncer (or a plain
 * thread): the contract is that those get c only in a message. So c must
 * not sit in any channel's buffer either (a message in flight, say a
 * request carrying its reply channel, that a server started later will
 * receive). Messages handed over directly are in their sender's hands,
 * and a sender able to act is already counted.
 *
 * This runs only when everything cheaper already says "proven" (all
 * holders blocked on c, no borrower alive), so it costs nothing on the
 * operations themselves; it is one pass over the registry.
 *
 * Locks: called with c->lock held; takes shard locks and R.lock (both
 * after channel locks in the order of internal.h).
 */
#include "internal.h"

/* A renounce entry counts only while its coroutine holds no reference:
 * one that took a reference again is a holder like any other. */
typedef struct {
    leash_chan *c;
    bool valid[4];
} renounce_check;

static bool clear_holding(coroutine *h, void *arg) {
    renounce_check *rc = arg;
    for (int i = 0; h && i < rc->c->nrenounced; i++)
        if (rc->c->renounced[i].id == h->id)
            rc->valid[i] = false;
    return true;
}

void chan_note_renounce(leash_chan *c, coroutine *g) {
    if (!g || g->foreign) /* plain threads are not walked (see the notes) */
        return;
    int slot = -1;
    for (int i = 0; i < c->nrenounced && slot < 0; i++)
        if (c->renounced[i].id == g->id)
            slot = i;
    if (slot < 0 && c->nrenounced < 4)
        slot = c->nrenounced++;
    for (int i = 0; i < 4 && slot < 0; i++) /* full: reuse a dead one's */
        if (!coro_alive(c->renounced[i].id))
            slot = i;
    if (slot < 0)
        return; /* not remembered: it counts as a possible user */
    c->renounced[slot].id = g->id;
    c->renounced[slot].nrecv =
        atomic_load_explicit(&g->nrecv, memory_order_relaxed);
}

static bool renounced(const renounce_check *rc, const coroutine *g) {
    for (int i = 0; i < rc->c->nrenounced; i++)
        if (rc->valid[i] && rc->c->renounced[i].id == g->id)
            return atomic_load_explicit(&g->nrecv, memory_order_relaxed) ==
                   rc->c->renounced[i].nrecv;
    return false;
}

bool chan_waits_plainly(leash_chan *c, coroutine *g) {
    for (sudog *s = c->sendq.first; s; s = s->next)
        if (s->g == g && !s->is_select)
            return true;
    for (sudog *s = c->recvq.first; s; s = s->next)
        if (s->g == g && !s->is_select)
            return true;
    return false;
}

/* The waiters of a proven channel (c->lock held): each is stuck until it
 * resumes, which only LEASH_ORPHANS=wake can make happen. The mark names
 * the resume count, so it goes stale by itself. */
void chan_mark_stranded(leash_chan *c) {
    for (waitq *q = &c->sendq;; q = &c->recvq) {
        for (sudog *s = q->first; s; s = s->next) {
            coroutine *g = s->g;
            if (s->is_select || g->foreign)
                continue;
            uint64_t n = atomic_load_explicit(&g->nresume, memory_order_relaxed);
            atomic_store_explicit(&g->stranded, n << 1 | 1,
                                  memory_order_release);
        }
        if (q == &c->recvq)
            break;
    }
}

static bool stuck_forever(coroutine *g, bool wake) {
    switch (atomic_load_explicit(&g->wait_reason, memory_order_acquire)) {
    case WR_CHAN_SEND_NIL: /* chan_block_forever never returns */
    case WR_CHAN_RECV_NIL:
    case WR_SELECT_NO_CASES:
        return true;
    default:
        break;
    }
    if (wake)
        return false;
    uint64_t m = atomic_load_explicit(&g->stranded, memory_order_acquire);
    return (m & 1) &&
           m >> 1 == atomic_load_explicit(&g->nresume, memory_order_acquire);
}

static bool inert_for(const renounce_check *rc, coroutine *g, coroutine *self,
                      bool wake) {
    if (atomic_load_explicit(&g->system, memory_order_relaxed))
        return true;
    /* Every waiter queued on c but the one parking now (self) has already
     * recorded c as its wait object: the lock orders it. */
    if ((g == self ||
         atomic_load_explicit(&g->wait_obj, memory_order_relaxed) == rc->c) &&
        chan_waits_plainly(rc->c, g))
        return true;
    return renounced(rc, g) || stuck_forever(g, wake);
}

/* Whether c's address is in d's buffered messages, or cannot be told
 * (d busy). Each pointer-sized word is compared, at every 8-byte offset
 * of each element (a pointer in a message struct is aligned in it). */
typedef struct {
    leash_chan *c;
    bool found;
} buf_scan;

static bool elem_holds(const char *e, size_t size, uintptr_t want) {
    for (size_t off = 0; off + sizeof want <= size; off += sizeof want) {
        uintptr_t w;
        memcpy(&w, e + off, sizeof w);
        if (w == want)
            return true;
    }
    return false;
}

static void scan_buffer(lobj *o, void *arg) {
    buf_scan *bs = arg;
    leash_chan *d = (leash_chan *)o;
    if (bs->found || o->type != OBJ_CHAN || d == bs->c ||
        d->elem_size < sizeof(uintptr_t) || !d->cap)
        return;
    /* Out of lock order (R.lock is held; d's holder may be waiting for
     * it), so only a bounded try: a channel busy that long is assumed to
     * carry c. */
    int tries = 0;
    while (!slock_try(&d->lock)) {
        if (++tries == 128) {
            bs->found = true;
            return;
        }
        cpu_relax();
    }
    for (size_t i = 0, k = d->recvx; i < d->count && !bs->found; i++) {
        bs->found = elem_holds(d->buf + k * d->elem_size, d->elem_size,
                               (uintptr_t)bs->c);
        if (++k == d->cap)
            k = 0;
    }
    slock_release(&d->lock);
}

bool chan_nobody_else_can_act(leash_chan *c, const coroutine *returning) {
    renounce_check rc = {.c = c, .valid = {true, true, true, true}};
    obj_all_holders(&c->obj, clear_holding, &rc);
    /* Buffers first: a renouncer taking c out of one afterwards has
     * counted the receive before it locked that buffer's channel. */
    buf_scan bs = {c, false};
    obj_foreach(scan_buffer, &bs);
    if (bs.found)
        return false;
    coroutine *self = sched_getg();
    bool wake = orphan_policy() == ORPHANS_WAKE;
    for (int s = 0; s < NSHARDS; s++) {
        shard_t *sh = &G_shards[s];
        bool ok = true;
        llock_acquire(&sh->lock);
        SHARD_FOR_EACH(sh, g) {
            if (g != returning && !(ok = inert_for(&rc, g, self, wake)))
                break;
        }
        llock_release(&sh->lock);
        if (!ok)
            return false;
    }
    return true;
}
