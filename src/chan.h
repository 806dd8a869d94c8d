/* SPDX-License-Identifier: MIT */
/*
 * chan.h — channels with Go's semantics (chan.c): their waiters (sudog,
 * waitq), the channel itself, the hand-offs select shares, and the orphan
 * proof with its parts in other files (borrowers.c, orphan.c, ctx.c,
 * blocking.c, labels.c, coro.c's coro_alive). A channel's lock is an
 * slock; several are taken in address order (select.c).
 */
#ifndef LEASH_CHAN_H
#define LEASH_CHAN_H

#include "common.h"
#include "lock.h"
#include "coro.h"
#include "obj.h"

/* A waiter on a channel: lives on the waiting coroutine's stack. */
typedef struct sudog {
    coroutine *g;
    struct sudog *next, *prev;
    void *elem;          /* where to copy from/to */
    struct leash_chan *c;
    bool is_select;
    _Atomic bool queued; /* on c's sendq or recvq; cleared (release) as
                          * the last touch of a dequeuer that skips it */
    bool success;        /* woken by a value (not by close) */
    int err;             /* why it failed: LEASH_ECLOSED or EORPHANED */
    int case_idx;
} sudog;
typedef struct waitq { sudog *first, *last; int n; } waitq;

struct leash_chan {
    lobj obj;
    slock lock;
    size_t elem_size;
    size_t cap;
    size_t count;       /* buffered elements */
    size_t sendx, recvx;
    char *buf;
    bool closed;
    bool zombie;        /* released while coroutines still wait on it */
    int nwaiters;       /* sudogs queued on it */
    /* The orphan proof (docs/DESIGN-NOTES.md, "Leak rules"), under lock. */
    bool borrowed;      /* used by a coroutine that held no reference */
    int nborrowers;     /* how many (3 = too many to track) */
    int64_t borrower[2];
    bool released;      /* a release left other holders: check parks */
    void *release_pc;   /* the latest such release */
    int64_t release_by;
    bool release_exit;  /* ... made by its holder returning */
    void *drop_pc;      /* the latest explicit leash_release leaving holders */
    int64_t drop_by;    /* (a return may come after it and make the proof) */
    /* Coroutines that released their own reference (not by returning):
     * they no longer use it (borrowers.c). */
    struct { int64_t id; uint64_t nrecv; } renounced[4];
    int nrenounced;
    _Atomic int signals; /* fed by signal.c: waiting on it is normal */
    bool strict_warned; /* LEASH_STRICT: an unhanded borrow was told */
    struct leash_ctx *ctx_of; /* the context whose done channel it is */
    bool orphaned;      /* proven: nobody can ever complete a wait */
    void *orphan_pc;    /* the release that proved it */
    int64_t orphan_by;
    bool orphan_exit;   /* that release was its holder returning */
    bool orphan_park;   /* no release: a holder parking on it proved it
                         * (orphan_pc: where it parked) */
    waitq recvq, sendq;
};
static inline leash_chan *chan_check(const void *p) {
    return (leash_chan *)obj_check(p, OBJ_CHAN);
}
INTERNAL void waitq_enqueue(waitq *q, sudog *s);
INTERNAL void waitq_remove(waitq *q, sudog *s);
static inline void waitq_unlink(waitq *q, sudog *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        q->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        q->last = s->prev;
    s->next = s->prev = NULL;
    q->n--;
    s->c->nwaiters--;
}
/* The first waiter that can still be woken: a select already won through
 * another channel is skipped and unhooked here. Clearing `queued` is the
 * last touch of a skipped sudog, so its select, which may check `queued`
 * without the lock (select.c), can return as soon as it sees it clear.
 * Inline: on the send and receive paths, an empty queue is one load. */
static inline sudog *waitq_dequeue(waitq *q) {
    for (sudog *s; (s = q->first);) {
        if (s->prev) /* the head has none: lets waitq_unlink skip a test */
            __builtin_unreachable();
        waitq_unlink(q, s);
        bool claimed = true;
        if (unlikely(s->is_select)) {
            uint32_t z = 0;
            claimed = atomic_compare_exchange_strong(&s->g->selectdone, &z, 1);
        }
        atomic_store_explicit(&s->queued, false, memory_order_release);
        if (claimed)
            return s;
    }
    return NULL;
}
/* The hand-offs select shares with the single-channel paths; called with
 * c->lock held, they release it. */
INTERNAL void chan_send_to_waiter(leash_chan *c, sudog *s, const void *elem);
INTERNAL void chan_recv_from_waiter(leash_chan *c, sudog *s, void *out);
INTERNAL void chan_block_forever(int reason) __attribute__((noreturn));
/* Unlocks c; frees it if it was a zombie whose last waiter just left. */
INTERNAL void chan_free(leash_chan *c);
static inline void chan_unlock(leash_chan *c) {
    bool dead = unlikely(c->zombie) && c->nwaiters == 0;
    slock_release(&c->lock);
    if (unlikely(dead))
        chan_free(c);
}
/* Whether a coroutine (not a system one) waits to receive from c now. */
INTERNAL bool chan_has_receivers(leash_chan *c);
/* Notes that g uses c (c->lock held): a borrower if it holds no ref. */
static inline void chan_note_user(leash_chan *c, coroutine *g);
INTERNAL void chan_note_user_slow(leash_chan *c, coroutine *g);
/* After a release left `remaining` references: prove orphans (chan.c). */
/* at_exit: the reference went as its holder returned; pc is then the
 * holder's function. */
INTERNAL void chan_after_release(leash_chan *c, void *pc, int64_t by,
                                 bool at_exit);
enum { ORPHANS_RECORD, ORPHANS_REPORT, ORPHANS_WAKE, ORPHANS_ABORT };
INTERNAL int orphan_policy(void); /* LEASH_ORPHANS */
/* returning: a coroutine whose own return made the release (it will
 * not act again), or NULL. */
INTERNAL bool orphan_prove(leash_chan *c, void *pc, int64_t by, bool at_exit,
                           const coroutine *returning);
/* borrowers.c, c->lock held: g released its reference to c (it
 * renounces c); whether no live coroutine other
 * than those stuck on c, stuck forever, renounced or returning (its
 * function has returned) could still use c;
 * marking c's plain waiters stranded once c is proven. */
INTERNAL void chan_note_renounce(leash_chan *c, coroutine *g);
INTERNAL bool chan_nobody_else_can_act(leash_chan *c,
                                       const coroutine *returning);
INTERNAL void chan_mark_stranded(leash_chan *c);
INTERNAL bool chan_waits_plainly(leash_chan *c, coroutine *g);
/* Hands a freshly orphaned channel to sysmon, which acts on the policy
 * (report, wake, abort) on its own big stack: the prover may be a
 * coroutine about to park, holding the channel's lock. */
INTERNAL void orphan_queue(leash_chan *c);
INTERNAL void orphan_process(void); /* sysmon: observer_impl.orphaned */
/* The earliest cancellation among the contexts g holds, if it is waiting
 * on something else: 0 if none (ctx.c). */
INTERNAL int64_t ctx_cancelled_held(coroutine *g);
/* Whether cancelling c now would wake a coroutine: one waits on the done
 * channel of c or of a descendant still live and not yet cancelled. */
INTERNAL bool ctx_cancel_may_wake(leash_ctx *c);
/* Whether only coroutines (holding or borrowing c) can ever cancel c:
 * no timer, no parent but the background, no other kind of holder. */
INTERNAL bool ctx_cancelled_only_by_coroutines(leash_ctx *c);
INTERNAL int ctx_values(leash_ctx *ctx, const void *key, const void **out,
                       int max);
INTERNAL int blocking_threads(void);
INTERNAL void orphan_wake(leash_chan *c, int64_t id);
INTERNAL bool coro_alive(int64_t id);
INTERNAL const char *label_intern(const char *s); /* NULL on ENOMEM */
extern INTERNAL _Atomic int64_t orphans_total;
/* A channel whose first reference goes to `owner` (NULL: the runtime). */
INTERNAL leash_chan *chan_make(const char *file, int line, size_t elem_size,
                               size_t cap, coroutine *owner);

/* Whether chan_note_user(c, g) has nothing to note: g is the runtime or
 * holds a reference to c that its cache knows (no lock needed: only g
 * and, invalidating, obj.c write g->held). */
static inline bool chan_user_known(leash_chan *c, coroutine *g) {
#if !LEASH_TRACKING
    (void)c, (void)g;
    return true;
#endif
    if (!g)
        return true; /* the runtime itself (a timer): holds its own reference */
    lobj *o = &c->obj;
    return atomic_load_explicit(&g->held[0], memory_order_relaxed) == o ||
           atomic_load_explicit(&g->held[1], memory_order_relaxed) == o ||
           atomic_load_explicit(&g->held[2], memory_order_relaxed) == o ||
           atomic_load_explicit(&g->held[3], memory_order_relaxed) == o;
}
static inline void chan_note_user(leash_chan *c, coroutine *g) {
    if (!chan_user_known(c, g))
        chan_note_user_slow(c, g);
}

#endif /* LEASH_CHAN_H */
