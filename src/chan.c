/* SPDX-License-Identifier: MIT */
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
#include "sched_tls.h"
#include "chan_handoff.h"

#define ELEM_MAX (64u << 10) /* Go's limit on element size */

/* ----------------------------------------------------------- wait queues */

void waitq_enqueue(waitq *q, sudog *s) {
    leash_chan *c = s->c;
    s->next = NULL;
    s->prev = q->last;
    if (likely(!q->last)) /* a waiter most often waits alone */
        q->first = s;
    else
        q->last->next = s;
    q->last = s;
    q->n++;
    atomic_store_explicit(&s->queued, true, memory_order_relaxed);
    c->nwaiters++;
}

void waitq_remove(waitq *q, sudog *s) {
    if (!atomic_load_explicit(&s->queued, memory_order_relaxed))
        return;
    waitq_unlink(q, s);
    atomic_store_explicit(&s->queued, false, memory_order_relaxed);
}

/* --------------------------------------------------------------- orphans */

/* The proof (docs/DESIGN-NOTES.md, "Leak rules"): a channel is orphaned when every
 * reference to it is held by coroutines blocked on it, so no one else can
 * ever complete their operations. It is checked when a release leaves the
 * remaining holders (never merely because a holder blocks), under the
 * channel's lock, against the channel's own wait queues.
 *
 * Borrowers keep it sound: a coroutine may use a channel without a
 * reference while a lender holds one. Every operation notes a user that
 * holds no reference (chan_note_user); a borrowed channel is proven
 * orphaned only if its borrowers (two are remembered) are all gone. A
 * select waiter is not counted as blocked: another case may wake it.
 * Borrowers that have not used it yet are unseen: so, last, every live
 * coroutine must be stuck or have renounced c (borrowers.c). */

INTERNAL _Atomic int64_t orphans_total;

static bool is_holder_id(coroutine *h, void *id) {
    return !h || h->id != *(int64_t *)id; /* false: found */
}

/* LEASH_STRICT=1, c->lock held: g uses c with no reference while its
 * parent holds one -- most often an object left out of leash_go's list
 * (leash_go1/2/3 catch that at compile time). Borrowing is legal
 * (DESIGN.md), so this is a warning, once per channel, never a failure.
 * "Its parent holds one" is read now, not at the spawn. */
static void strict_warn_unhanded(leash_chan *c, coroutine *g) {
    if (g->foreign || g->parent_id <= 0)
        return;
    int64_t parent = g->parent_id;
    if (obj_all_holders(&c->obj, is_holder_id, &parent))
        return; /* the parent holds none: some other lender */
    c->strict_warned = true;
    fprintf(stderr,
            "leash: LEASH_STRICT: goroutine %lld (spawned at %s:%d) uses "
            "chan#%lld (made at %s:%d) without a reference while its parent, "
            "goroutine %lld, holds one: hand it in leash_go's list (or "
            "leash_go1/2/3), or leash_retain it; borrowing is legal, this is "
            "a warning\n",
            (long long)g->id, g->spawn_file ? g->spawn_file : "?",
            g->spawn_line, (long long)c->obj.id,
            c->obj.file ? c->obj.file : "?", c->obj.line, (long long)parent);
}

void chan_note_user_slow(leash_chan *c, coroutine *g) {
    if (c->nborrowers > 2)
        return; /* too many borrowers to prove anything: stop looking */
    if (obj_held_by(&c->obj, g)) {
        atomic_store_explicit(&g->held[g->held_next++ & 3], &c->obj,
                              memory_order_relaxed);
        return;
    }
    c->borrowed = true;
    if (unlikely(!c->strict_warned) && strict_mode())
        strict_warn_unhanded(c, g);
    for (int i = 0; i < c->nborrowers && i < 2; i++)
        if (c->borrower[i] == g->id)
            return;
    if (c->nborrowers < 2)
        c->borrower[c->nborrowers] = g->id;
    if (c->nborrowers < 3)
        c->nborrowers++;
}

static bool holder_is_stuck(coroutine *holder, void *arg) {
    /* NULL holder: the runtime (a timer) will still use it. */
    return holder && chan_waits_plainly(arg, holder);
}

/* Borrowers seen using c: each gone. A plain thread (id 0) never counts
 * as gone: leash cannot tell when it is done with c. */
static bool borrowers_gone(leash_chan *c) {
    if (!c->borrowed)
        return true;
    if (c->nborrowers > 2)
        return false;
    for (int i = 0; i < c->nborrowers; i++)
        if (c->borrower[i] == 0 || coro_alive(c->borrower[i]))
            return false;
    return true;
}

/* Decides the proof with c->lock held; true the first time it holds. */
bool orphan_prove(leash_chan *c, void *pc, int64_t by, bool at_exit,
                  const coroutine *returning) {
    if (c->orphaned || c->closed || c->nwaiters == 0)
        return false;
    /* More holders than waiters: one of them is not waiting here. This
     * keeps the proof (run at parks after a release) O(1) on a busy
     * channel with many holders. */
    if (!c->zombie &&
        atomic_load_explicit(&c->obj.nholders, memory_order_relaxed) >
            c->nwaiters)
        return false;
    /* Released entirely (a zombie): every operation on it is now
     * LEASH_EINVAL, for borrowers too, so nobody can complete a wait. */
    if (!c->zombie && (!obj_all_holders(&c->obj, holder_is_stuck, c) ||
                       !borrowers_gone(c) ||
                       !chan_nobody_else_can_act(c, returning)))
        return false;
    c->orphaned = true;
    chan_mark_stranded(c);
    c->orphan_pc = pc;
    c->orphan_by = by;
    c->orphan_exit = at_exit;
    atomic_fetch_add(&orphans_total, 1);
    return true;
}

void chan_after_release(leash_chan *c, void *pc, int64_t by, bool at_exit) {
    slock_acquire(&c->lock);
    /* Remembered: if the remaining holders block on it later, this is
     * the release that stranded them. */
    c->released = true;
    c->release_pc = pc;
    c->release_by = by;
    c->release_exit = at_exit;
    if (!at_exit) {
        c->drop_pc = pc;
        c->drop_by = by;
        coroutine *g = sched_getg(); /* the releaser (release_at) */
        if (g && g->id == by)
            chan_note_renounce(c, g);
    }
    /* A holder returning is past its last use of c: the walk skips it. */
    bool proved = orphan_prove(c, pc, by, at_exit,
                               at_exit ? sched_getg() : NULL);
    slock_release(&c->lock);
    if (proved)
        orphan_queue(c);
}

/* A coroutine is about to park on c (c->lock held, its sudog queued):
 * after a release left others holding c, this may complete the proof.
 * True when it did: the caller queues the report only once it has
 * switched out (park_unlock_proved), so the report, captured on another
 * thread, finds it parked, not half-way into its park. */
static inline bool orphan_check_park(leash_chan *c, coroutine *g, void *pc) {
    if (likely(!c->released)) {
        /* Nothing released, but every holder may now wait on it: a lone
         * holder blocked on its own channel, both holders of one. Cheap
         * filters first (a channel borrowers used keeps its proof for
         * the on-demand fixpoint, diag/prove.c), so a park on a busy
         * channel costs two loads. */
        if (likely(c->borrowed ||
                   atomic_load_explicit(&c->obj.nholders,
                                        memory_order_relaxed) > c->nwaiters))
            return false;
        if (orphan_prove(c, pc, g->id, false, NULL)) {
            c->orphan_park = true;
            return true;
        }
        return false;
    }
    if (c->orphaned) { /* one more coroutine stuck on it for good */
        chan_mark_stranded(c);
        return false;
    }
    return orphan_prove(c, c->release_pc, c->release_by, c->release_exit,
                        NULL);
}

/* sched_park's unlockf (arg: &c->lock) after orphan_check_park proved
 * c: queues the report (c->lock still held, as before) and unlocks. */
static void park_unlock_proved(void *p) {
    leash_chan *c = (leash_chan *)((char *)p - offsetof(leash_chan, lock));
    orphan_queue(c);
    slock_release(&c->lock);
}

/* Wakes every plain waiter of an orphaned channel with LEASH_EORPHANED
 * (LEASH_ORPHANS=wake). */
void orphan_wake(leash_chan *c, int64_t id) {
    slock_acquire(&c->lock);
    if (!c->orphaned || c->obj.id != id) { /* gone, or reused meanwhile */
        slock_release(&c->lock);
        return;
    }
    for (waitq *q = &c->sendq;; q = &c->recvq) {
        for (sudog *s = q->first, *next; s; s = next) {
            next = s->next;
            if (s->is_select)
                continue;
            waitq_remove(q, s);
            s->success = false;
            s->err = LEASH_EORPHANED;
            s->g->param = s;
            sched_ready(s->g, false);
        }
        if (q == &c->recvq)
            break;
    }
    chan_unlock(c);
}

/* ------------------------------------------------------------ lifetime */

void chan_free(leash_chan *c) {
    lfree(c->buf);
    obj_free_mem(&c->obj);
}

static void chan_destroy(lobj *o) {
    leash_chan *c = (leash_chan *)o;
    slock_acquire(&c->lock);
    if (c->nwaiters > 0) {
        c->zombie = true; /* freed by its last waiter */
        bool proved = orphan_prove(c, o->release_pc, o->release_by, false,
                                   NULL);
        slock_release(&c->lock);
        if (proved)
            orphan_queue(c);
        return;
    }
    slock_release(&c->lock);
    chan_free(c);
}

bool chan_has_receivers(leash_chan *c) {
    bool any = false;
    slock_acquire(&c->lock);
    for (sudog *s = c->recvq.first; s && !any; s = s->next)
        any = !s->g->system &&
              !(s->is_select && atomic_load(&s->g->selectdone));
    slock_release(&c->lock);
    return any;
}

leash_chan *leash_chan_make_at(const char *file, int line, size_t elem_size,
                               size_t cap) {
    if (sched_ensure_started() < 0)
        return NULL;
    coroutine *owner = sched_getg_or_foreign();
    return owner ? chan_make(file, line, elem_size, cap, owner) : NULL;
}

leash_chan *chan_make(const char *file, int line, size_t elem_size,
                      size_t cap, coroutine *owner) {
    if (elem_size > ELEM_MAX || cap > (size_t)INT32_MAX ||
        (elem_size && cap > SIZE_MAX / elem_size))
        return NULL;
    leash_chan *c = obj_alloc(OBJ_CHAN, sizeof *c);
    if (!c)
        return NULL;
    c->elem_size = elem_size;
    c->cap = cap;
    slock_init(&c->lock, LR_CHAN);
    if (elem_size && cap) {
        c->buf = lmalloc(elem_size * cap);
        if (!c->buf) {
            obj_free_mem_type(c, OBJ_CHAN);
            return NULL;
        }
    }
    c->obj.internal = owner == NULL;
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

/* slot, copy_elem and the inline hand-offs: chan_handoff.h. */

void chan_send_to_waiter(leash_chan *c, sudog *s, const void *elem) {
    chan_send_handoff(c, s, elem);
}

void chan_recv_from_waiter(leash_chan *c, sudog *s, void *out) {
    chan_recv_handoff(c, s, out);
}

/* ------------------------------------------------------- blocking forever */

void chan_block_forever(int reason) {
    coroutine *g = sched_prepare_park();
    if (g)
        g_wait_begin(g, reason, NULL);
    for (;;)
        sched_park(NULL, NULL); /* nothing will ever ready it */
}

/* ------------------------------------------------------------- waiting */

/* The slow path of a send or a receive, c->lock held and no peer or
 * buffer space to complete it now: LEASH_EAGAIN without blocking, or the
 * caller queues *me on q (elem: where the value comes from or goes) and
 * parks until a peer, close or an orphan wake completes it; then 1, and
 * *me tells how. The lock is released on every path. */
static inline __attribute__((always_inline)) int
chan_wait(leash_chan *c, waitq *q, sudog *me, void *elem, bool block,
          int reason, coroutine *self) {
    if (!block) {
        slock_release(&c->lock);
        return LEASH_EAGAIN;
    }
    coroutine *g = prepare_park(self);
    if (!g) {
        slock_release(&c->lock);
        return LEASH_ENOMEM;
    }
    /* waitq_enqueue sets the links and `queued`, the waker `success`:
     * only the rest is written here. */
    me->g = g;
    me->elem = elem;
    me->c = c;
    me->is_select = false;
    me->err = 0;
    waitq_enqueue(q, me);
    bool proved = orphan_check_park(c, g, __builtin_return_address(0));
    g_wait_begin(g, reason, c);
    /* One call site: a dump groups identical waits by return address. */
    sched_park(unlikely(proved) ? park_unlock_proved : slock_release_fn,
               &c->lock);
    g_wait_end(g);
    return 1;
}

/* ------------------------------------------------------------------ send */

static inline __attribute__((always_inline)) int
chan_send(leash_chan *c, const void *elem, bool block) {
    coroutine *self = sched_getg_entry(); /* before any switch */
    slock_acquire(&c->lock);
    chan_note_user(c, self);
    if (c->closed) {
        slock_release(&c->lock);
        return strict_fail(LEASH_ECLOSED, "send on closed channel");
    }
    sudog *s = waitq_dequeue(&c->recvq);
    if (s) {
        chan_send_handoff(c, s, elem);
        return 0;
    }
    if (c->count < c->cap) {
        copy_elem(slot(c, c->sendx), elem, c->elem_size);
        if (++c->sendx == c->cap)
            c->sendx = 0;
        c->count++;
        slock_release(&c->lock);
        return 0;
    }
    sudog me;
    int rc = chan_wait(c, &c->sendq, &me, (void *)elem, block, WR_CHAN_SEND,
                       self);
    if (rc <= 0)
        return rc;
    if (!me.success)
        return me.err ? me.err
                      : strict_fail(LEASH_ECLOSED, "send on closed channel");
    return 0;
}

static int check_elem(leash_chan *c, const void *elem, size_t size) {
    if (size != c->elem_size || (!elem && size))
        return LEASH_EINVAL;
    return 0;
}

API_FRAME int leash_send_n(leash_chan *ch, const void *elem, size_t size) {
    if (!ch)
        chan_block_forever(WR_CHAN_SEND_NIL);
    leash_chan *c = chan_check(ch);
    if (!c || check_elem(c, elem, size))
        return LEASH_EINVAL;
    return chan_send(c, elem, true);
}

API_FRAME int leash_try_send_n(leash_chan *ch, const void *elem, size_t size) {
    if (!ch)
        return LEASH_EAGAIN; /* a nil channel is never ready */
    leash_chan *c = chan_check(ch);
    if (!c || check_elem(c, elem, size))
        return LEASH_EINVAL;
    return chan_send(c, elem, false);
}

/* ------------------------------------------------------------------ recv */

static inline __attribute__((always_inline)) int
chan_recv(leash_chan *c, void *out, bool block) {
    coroutine *self = sched_getg_entry(); /* before any switch */
    g_note_recv(self);
    slock_acquire(&c->lock);
    chan_note_user(c, self);
    sudog *s = waitq_dequeue(&c->sendq);
    if (s) {
        chan_recv_handoff(c, s, out);
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
    size_t esz = c->elem_size; /* c may be freed by the time we wake */
    sudog me;
    int rc = chan_wait(c, &c->recvq, &me, out, block, WR_CHAN_RECV, self);
    if (rc <= 0)
        return rc;
    if (!me.success) {
        if (out)
            memset(out, 0, me.err ? 0 : esz);
        return me.err ? me.err : LEASH_ECLOSED;
    }
    return 0;
}

/* out == NULL discards the value, whatever the element size; otherwise
 * size must be the element size -- except on a zero-size channel (a
 * context's done channel, a signal channel): it carries nothing, so any
 * buffer will do and none is written, even on close (its zero value is
 * empty). `leash_recv(leash_ctx_done(ctx), &c)` is a wait for cancel. */
static int check_out(leash_chan *c, void *out, size_t size) {
    if (!out || c->elem_size == 0)
        return 0;
    return size == c->elem_size ? 0 : LEASH_EINVAL;
}

API_FRAME int leash_recv_n(leash_chan *ch, void *out, size_t size) {
    if (!ch)
        chan_block_forever(WR_CHAN_RECV_NIL);
    leash_chan *c = chan_check(ch);
    if (!c || check_out(c, out, size))
        return LEASH_EINVAL;
    return chan_recv(c, out, true);
}

API_FRAME int leash_try_recv_n(leash_chan *ch, void *out, size_t size) {
    if (!ch)
        return LEASH_EAGAIN;
    leash_chan *c = chan_check(ch);
    if (!c || check_out(c, out, size))
        return LEASH_EINVAL;
    return chan_recv(c, out, false);
}

/* ----------------------------------------------------------------- close */

API_FRAME int leash_close(leash_chan *ch) {
    if (!ch)
        return strict_fail(LEASH_EINVAL, "close of nil channel");
    leash_chan *c = chan_check(ch);
    if (!c)
        return LEASH_EINVAL;
    slock_acquire(&c->lock);
    chan_note_user(c, sched_getg());
    if (c->closed) {
        slock_release(&c->lock);
        return strict_fail(LEASH_ECLOSED, "close of closed channel");
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
