/* SPDX-License-Identifier: MIT */
/*
 * sync.c — wait groups and mutexes: plain values that park coroutines.
 *
 * Both keep their waiters in a list of nodes that live on the waiters'
 * own stacks, guarded by a one-word spinlock inside the value (`lock_`),
 * and park with the park protocol: the spinlock is released after the
 * waiter has switched out.
 *
 * Wait group: the count and the waiter list change under lock_; the
 * add that brings the count to zero detaches the list, unlocks, and only
 * then wakes the waiters. It touches the wait group no more after the
 * unlock, so the wait group may live on a waiter's stack.
 *
 * RWMutex (whose readers mostly need no lock), Cond and Once (below)
 * reuse the same nodes and spinlock.
 *
 * Mutex: state_ holds LOCKED (1) and WAITERS (2). Uncontended lock and
 * unlock are one CAS each. With waiters, unlock hands the mutex directly
 * to the first waiter in FIFO order (the state stays LOCKED): nobody can
 * barge in ahead of a waiter, so no waiter starves (Go's starvation mode,
 * always on once there are waiters). owner_ records the holder for the
 * diagnostics.
 */
#include "internal.h"
#include "sched_tls.h"

#include <sched.h>

typedef struct wnode {
    coroutine *g;
    struct wnode *next;
} wnode;

/* ---------------------------------------------------- the value spinlock */

static __attribute__((noinline)) void ulock_spin(unsigned *l) {
    for (unsigned spins = 0;; spins++) {
        if (spins < 100)
            cpu_relax();
        else
            sched_yield();
        unsigned z = 0;
        if (!__atomic_load_n(l, __ATOMIC_RELAXED) &&
            __atomic_compare_exchange_n(l, &z, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
    }
}
static inline void ulock(unsigned *l) {
    unsigned z = 0;
    if (likely(__atomic_compare_exchange_n(l, &z, 1, false, __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED)))
        return;
    ulock_spin(l);
}
static inline void uunlock(unsigned *l) {
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}
static void uunlock_fn(void *l) { uunlock(l); }

/* ------------------------------------------------------------ wait group */

API_FRAME int leash_waitgroup_add(leash_waitgroup *wg, int64_t n) {
    if (!wg)
        return LEASH_EINVAL;
    ulock(&wg->lock_);
    int64_t v;
    if (__builtin_add_overflow(wg->count_, n, &v) || v < 0) {
        uunlock(&wg->lock_);
        return strict_fail(LEASH_EINVAL, "sync: negative WaitGroup counter");
    }
    wg->count_ = v;
    wnode *list = NULL;
    if (v == 0) {
        list = wg->waiters_;
        wg->waiters_ = NULL;
    }
    uunlock(&wg->lock_);
    /* wg may be gone as soon as the first waiter runs. */
    while (list) {
        wnode *x = list;
        list = x->next;
        sched_ready(x->g, false);
    }
    return 0;
}

API_FRAME int leash_waitgroup_done(leash_waitgroup *wg) {
    return leash_waitgroup_add(wg, -1);
}

API_FRAME int leash_waitgroup_wait(leash_waitgroup *wg) {
    if (!wg)
        return LEASH_EINVAL;
    ulock(&wg->lock_);
    if (wg->count_ == 0) {
        uunlock(&wg->lock_);
        return 0;
    }
    coroutine *g = sched_prepare_park();
    if (!g) {
        uunlock(&wg->lock_);
        return LEASH_ENOMEM;
    }
    wnode me = {.g = g, .next = wg->waiters_};
    wg->waiters_ = &me;
    g_wait_begin(g, WR_WAITGROUP, wg);
    sched_park(uunlock_fn, &wg->lock_);
    g_wait_end(g);
    return 0;
}

/* ----------------------------------------------------------------- mutex */

enum { MU_LOCKED = 1, MU_WAITERS = 2 };

static inline void set_owner(leash_mutex *mu, coroutine *g) {
    __atomic_store_n(&mu->owner_, g, __ATOMIC_RELAXED);
}

int leash_mutex_trylock(leash_mutex *mu) {
    if (!mu)
        return LEASH_EINVAL;
    unsigned z = 0;
    if (!__atomic_compare_exchange_n(&mu->state_, &z, MU_LOCKED, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return LEASH_EAGAIN;
    set_owner(mu, sched_getg_entry());
    return 0;
}

/* The slow paths are out of line, so the uncontended lock and unlock
 * are leaf-like: no frame to build, one CAS and the owner store. Their
 * names do not start with leash_, so dumps still show the public call
 * (leash_mutex_lock, which keeps its frame: API_FRAME) on top. */
static __attribute__((noinline)) int mutex_lock_slow(leash_mutex *mu) {
    if (!mu)
        return LEASH_EINVAL;
    coroutine *g = sched_prepare_park();
    if (!g)
        return LEASH_ENOMEM;
    ulock(&mu->lock_);
    /* Announce a waiter; if the mutex came free meanwhile, take it. */
    unsigned s = __atomic_load_n(&mu->state_, __ATOMIC_RELAXED);
    for (;;) {
        unsigned want = s == 0 ? MU_LOCKED : (s | MU_WAITERS);
        if (__atomic_compare_exchange_n(&mu->state_, &s, want, false,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            if (s == 0) {
                uunlock(&mu->lock_);
                set_owner(mu, g);
                return 0;
            }
            break;
        }
    }
    wnode me = {.g = g, .next = NULL};
    if (mu->tail_)
        ((wnode *)mu->tail_)->next = &me;
    else
        mu->head_ = &me;
    mu->tail_ = &me;
    g_wait_begin(g, WR_MUTEX, mu);
    sched_park(uunlock_fn, &mu->lock_);
    g_wait_end(g);
    /* The unlocker handed the mutex over and recorded us as owner. */
    return 0;
}

API_FRAME int leash_mutex_lock(leash_mutex *mu) {
    unsigned z = 0;
    if (likely(mu && __atomic_compare_exchange_n(&mu->state_, &z, MU_LOCKED,
                                                 false, __ATOMIC_ACQUIRE,
                                                 __ATOMIC_RELAXED))) {
        set_owner(mu, sched_getg_entry());
        return 0;
    }
    return mutex_lock_slow(mu);
}

/* s: the state the fast path found (not MU_LOCKED alone). */
static __attribute__((noinline)) int mutex_unlock_slow(leash_mutex *mu,
                                                       unsigned s) {
    if (!(s & MU_LOCKED))
        return strict_fail(LEASH_EINVAL, "sync: unlock of unlocked mutex");
    ulock(&mu->lock_);
    wnode *w = mu->head_;
    mu->head_ = w->next;
    if (!mu->head_) {
        mu->tail_ = NULL;
        __atomic_store_n(&mu->state_, MU_LOCKED, __ATOMIC_RELEASE);
    }
    set_owner(mu, w->g);
    coroutine *g = w->g;
    uunlock(&mu->lock_);
    g_unlock_event(g); /* g stays parked until readied */
    sched_ready(g, true);
    return 0;
}

API_FRAME int leash_mutex_unlock(leash_mutex *mu) {
    if (unlikely(!mu))
        return LEASH_EINVAL;
    unsigned s = MU_LOCKED;
    set_owner(mu, NULL);
    if (likely(__atomic_compare_exchange_n(&mu->state_, &s, 0, false,
                                           __ATOMIC_RELEASE,
                                           __ATOMIC_RELAXED)))
        return 0;
    return mutex_unlock_slow(mu, s);
}

/* ---------------------------------------------------------------- rwmutex */

/* Go's algorithm. readers_ counts the readers in; a writer subtracts
 * RW_WRITER from it, which keeps new readers out (they find the count
 * negative and queue) and tells the readers already in to count rwait_
 * down as they leave: the one that takes it to zero lets the writer in.
 * With no writer about, RLock is one atomic add and RUnlock one CAS;
 * lock_ guards the rest, and every change of readers_'s sign is made
 * under it (so a slow path that holds lock_ sees a stable sign).
 *
 *  - Writers queue (whead_) behind the one that holds the writer role
 *    (writer_ != 0). Unlock lets in every reader that came during the
 *    write (the queued ones are woken; the ones still on their way to
 *    the queue find a permit in rperm_), then starts the first queued
 *    writer's turn at once: Go's order, and no writer starves.
 *  - owner_ and rowners_ are records for the diagnostics only: a reader's
 *    record may be lost to a race, and the diagnostics, seeing more
 *    readers than records, then prove nothing; a record never outlives
 *    its reader's own RUnlock. (An RUnlock on another's behalf, which Go
 *    allows, may leave them naming the wrong one of the readers in.) */
#define RW_WRITER (1 << 30)

static void q_push(void **head, void **tail, wnode *n) {
    n->next = NULL;
    if (*tail)
        ((wnode *)*tail)->next = n;
    else
        *head = n;
    *tail = n;
}

static wnode *q_pop(void **head, void **tail) {
    wnode *n = *head;
    if (n) {
        *head = n->next;
        if (!*head)
            *tail = NULL;
    }
    return n;
}

/* Records a reader inside in a free slot, if any. */
static inline void rowner_add(leash_rwmutex *rw, coroutine *g) {
    for (int i = 0; i < 4; i++)
        if (!__atomic_load_n(&rw->rowners_[i], __ATOMIC_RELAXED)) {
            __atomic_store_n(&rw->rowners_[i], g, __ATOMIC_RELAXED);
            return;
        }
}

/* An RUnlock by a coroutine with no record (never recorded, its record
 * lost, or unlocking for another, which Go allows): some record may now
 * name a reader that has left, so none is kept. */
static __attribute__((noinline)) void rowner_del_slow(leash_rwmutex *rw,
                                                     coroutine *g) {
    for (int i = 1; i < 4; i++)
        if (__atomic_load_n(&rw->rowners_[i], __ATOMIC_RELAXED) == g) {
            __atomic_store_n(&rw->rowners_[i], NULL, __ATOMIC_RELAXED);
            return;
        }
    for (int i = 0; i < 4; i++)
        __atomic_store_n(&rw->rowners_[i], NULL, __ATOMIC_RELAXED);
}

static inline void rowner_del(leash_rwmutex *rw, coroutine *g) {
    if (likely(g && __atomic_load_n(&rw->rowners_[0], __ATOMIC_RELAXED) == g))
        __atomic_store_n(&rw->rowners_[0], NULL, __ATOMIC_RELAXED);
    else
        rowner_del_slow(rw, g);
}

/* Starts g's turn as the writer (lock_ held, no writer in): keeps new
 * readers out and counts the ones inside. True when there are none and
 * g is in; otherwise the last of them lets it in. */
static bool rw_begin_write(leash_rwmutex *rw, coroutine *g) {
    int in = __atomic_fetch_sub(&rw->readers_, RW_WRITER, __ATOMIC_ACQUIRE);
    __atomic_store_n(&rw->rwait_, in, __ATOMIC_RELAXED);
    if (in == 0) {
        __atomic_store_n(&rw->writer_, 2, __ATOMIC_RELAXED);
        __atomic_store_n(&rw->owner_, g, __ATOMIC_RELAXED);
        return true;
    }
    __atomic_store_n(&rw->writer_, 1, __ATOMIC_RELAXED);
    rw->wdrain_ = g;
    return false;
}

/* Parks g behind lock_ (held) until a waker lets it in. */
static void rw_park(leash_rwmutex *rw, coroutine *g, int reason) {
    g_wait_begin(g, reason, rw);
    sched_park(uunlock_fn, &rw->lock_);
    g_wait_end(g);
}

static void rw_let_in(coroutine *g, bool next) {
    g_unlock_event(g);
    sched_ready(g, next);
}

/* A reader that found a writer in or waiting (counted in already). */
static __attribute__((noinline)) int rw_rlock_slow(leash_rwmutex *rw,
                                                   coroutine *self) {
    coroutine *g = prepare_park(self); /* self exists: cannot fail */
    ulock(&rw->lock_);
    if (rw->rperm_ > 0) { /* that writer left before we could queue */
        rw->rperm_--;
        uunlock(&rw->lock_);
        rowner_add(rw, self);
        return 0;
    }
    wnode me = {.g = g};
    q_push(&rw->rhead_, &rw->rtail_, &me);
    rw_park(rw, g, WR_RWMUTEX_R);
    return 0; /* the writer's Unlock let us in and recorded us */
}

API_FRAME int leash_rwmutex_rlock(leash_rwmutex *rw) {
    if (unlikely(!rw))
        return LEASH_EINVAL;
    coroutine *self = sched_getg_entry();
    /* A plain thread's first wait needs its g before it counts itself in. */
    if (unlikely(!self) && !(self = sched_prepare_park()))
        return LEASH_ENOMEM;
    if (unlikely(__atomic_add_fetch(&rw->readers_, 1, __ATOMIC_ACQUIRE) <= 0))
        return rw_rlock_slow(rw, self);
    rowner_add(rw, self);
    return 0;
}

API_FRAME int leash_rwmutex_lock(leash_rwmutex *rw) {
    if (unlikely(!rw))
        return LEASH_EINVAL;
    coroutine *g = prepare_park(sched_getg_entry());
    if (unlikely(!g))
        return LEASH_ENOMEM;
    ulock(&rw->lock_);
    wnode me = {.g = g};
    if (likely(!rw->writer_)) {
        if (likely(rw_begin_write(rw, g))) {
            uunlock(&rw->lock_);
            return 0;
        }
        /* The last of the readers inside lets it in (wdrain_). */
    } else { /* behind the writer's turn under way */
        rw->wwait_++;
        q_push(&rw->whead_, &rw->wtail_, &me);
    }
    rw_park(rw, g, WR_RWMUTEX_W);
    return 0; /* in: let in by a reader or the previous writer */
}

bool rw_reader_queued(leash_rwmutex *rw, coroutine *g) {
    unsigned z = 0;
    for (int i = 0; i < 64; i++, cpu_relax()) {
        z = 0;
        if (__atomic_compare_exchange_n(&rw->lock_, &z, 1, false,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            break;
        if (i == 63)
            return false;
    }
    bool queued = false;
    for (wnode *n = rw->rhead_; n && !queued; n = n->next)
        queued = n->g == g;
    uunlock(&rw->lock_);
    return queued;
}

int rw_readers_inside(leash_rwmutex *rw) {
    int v = __atomic_load_n(&rw->readers_, __ATOMIC_RELAXED);
    if (v >= 0)
        return v;
    if (__atomic_load_n(&rw->writer_, __ATOMIC_RELAXED) == 2)
        return 0; /* the ones counted wait for the writer */
    return __atomic_load_n(&rw->rwait_, __ATOMIC_RELAXED);
}

static __attribute__((noinline)) int rw_unlock_bad(leash_rwmutex *rw,
                                                   const char *msg) {
    uunlock(&rw->lock_);
    return strict_fail(LEASH_EINVAL, msg);
}

/* An RUnlock that found the count at zero or below: a writer waits for
 * the readers inside to leave, or nobody is in (the caller's bug).
 * 1: the writer has left meanwhile, so the fast path is to be retried. */
static __attribute__((noinline)) int rw_runlock_slow(leash_rwmutex *rw) {
    ulock(&rw->lock_);
    int v = __atomic_load_n(&rw->readers_, __ATOMIC_RELAXED);
    if (v > 0) {
        uunlock(&rw->lock_);
        return 1;
    }
    /* With a writer in, the readers counted are all queued. */
    if (v == 0 || v == -RW_WRITER || rw->writer_ == 2)
        return rw_unlock_bad(rw, "sync: RUnlock of unlocked RWMutex");
    __atomic_fetch_sub(&rw->readers_, 1, __ATOMIC_RELEASE);
    coroutine *w = NULL;
    int left = rw->rwait_ - 1;
    __atomic_store_n(&rw->rwait_, left, __ATOMIC_RELAXED);
    if (left == 0) { /* the last one out lets the writer in */
        w = rw->wdrain_;
        rw->wdrain_ = NULL;
        __atomic_store_n(&rw->writer_, 2, __ATOMIC_RELAXED);
        __atomic_store_n(&rw->owner_, w, __ATOMIC_RELAXED);
    }
    uunlock(&rw->lock_);
    if (w)
        rw_let_in(w, true);
    return 0;
}

API_FRAME int leash_rwmutex_runlock(leash_rwmutex *rw) {
    if (unlikely(!rw))
        return LEASH_EINVAL;
    rowner_del(rw, sched_getg_entry());
    for (;;) {
        int v = __atomic_load_n(&rw->readers_, __ATOMIC_RELAXED);
        if (likely(v > 0)) {
            if (likely(__atomic_compare_exchange_n(&rw->readers_, &v, v - 1,
                                                   false, __ATOMIC_RELEASE,
                                                   __ATOMIC_RELAXED)))
                return 0;
            continue;
        }
        int rc = rw_runlock_slow(rw);
        if (rc != 1)
            return rc;
    }
}

API_FRAME int leash_rwmutex_unlock(leash_rwmutex *rw) {
    if (unlikely(!rw))
        return LEASH_EINVAL;
    ulock(&rw->lock_);
    if (rw->writer_ != 2)
        return rw_unlock_bad(rw, "sync: Unlock of unlocked RWMutex");
    __atomic_store_n(&rw->owner_, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&rw->writer_, 0, __ATOMIC_RELAXED);
    /* Every reader that came during the write goes in together. */
    int came = __atomic_add_fetch(&rw->readers_, RW_WRITER, __ATOMIC_RELEASE);
    wnode *readers = rw->rhead_;
    rw->rhead_ = rw->rtail_ = NULL;
    int queued = 0;
    for (wnode *r = readers; r; r = r->next, queued++)
        rowner_add(rw, r->g);
    if (came > queued) /* the rest are on their way to the queue */
        rw->rperm_ += came - queued;
    /* Then the next writer's turn starts: it waits for those readers. */
    coroutine *writer = NULL;
    wnode *next = q_pop(&rw->whead_, &rw->wtail_);
    if (next) {
        rw->wwait_--;
        if (rw_begin_write(rw, next->g))
            writer = next->g;
    }
    uunlock(&rw->lock_);
    while (readers) {
        wnode *r = readers;
        readers = r->next; /* read before the wake: r is on its stack */
        rw_let_in(r->g, false);
    }
    if (writer)
        rw_let_in(writer, true);
    return 0;
}

/* ------------------------------------------------------------------ cond */

API_FRAME int leash_cond_wait(leash_cond *c, leash_mutex *mu) {
    if (!c || !mu)
        return LEASH_EINVAL;
    coroutine *g = sched_prepare_park();
    if (!g)
        return LEASH_ENOMEM;
    ulock(&c->lock_);
    wnode me = {.g = g};
    q_push(&c->head_, &c->tail_, &me);
    /* Unlock mu while holding the cond's lock: a signal sent after the
     * unlock finds us queued, so none is lost. */
    int rc = leash_mutex_unlock(mu);
    if (rc < 0) {
        /* Not locked: take ourselves off again. */
        wnode **pp = (wnode **)&c->head_;
        wnode *prev = NULL;
        while (*pp && *pp != &me) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp) {
            *pp = me.next;
            if (c->tail_ == &me)
                c->tail_ = prev;
        }
        uunlock(&c->lock_);
        return rc;
    }
    cond_wait_obj wo = {c, mu}; /* what the diagnostics show */
    g_wait_begin(g, WR_COND, &wo);
    sched_park(uunlock_fn, &c->lock_);
    g_wait_end(g);
    return leash_mutex_lock(mu);
}

int leash_cond_signal(leash_cond *c) {
    if (!c)
        return LEASH_EINVAL;
    ulock(&c->lock_);
    wnode *w = q_pop(&c->head_, &c->tail_);
    coroutine *g = w ? w->g : NULL;
    uunlock(&c->lock_);
    if (g)
        sched_ready(g, false);
    return 0;
}

int leash_cond_broadcast(leash_cond *c) {
    if (!c)
        return LEASH_EINVAL;
    ulock(&c->lock_);
    wnode *list = c->head_;
    c->head_ = c->tail_ = NULL;
    uunlock(&c->lock_);
    while (list) {
        wnode *w = list;
        list = w->next;
        sched_ready(w->g, false);
    }
    return 0;
}

/* ------------------------------------------------------------------ once */

/* The header inlines the done_ check; parenthesised: the function, not
 * the macro. */
API_FRAME int (leash_once_do)(leash_once *o, void (*fn)(void *), void *arg) {
    if (!o || !fn)
        return LEASH_EINVAL;
    if (__atomic_load_n(&o->done_, __ATOMIC_ACQUIRE))
        return 0;
    int rc = leash_mutex_lock(&o->mu_);
    if (rc < 0)
        return rc;
    if (!o->done_) {
        fn(arg);
        __atomic_store_n(&o->done_, 1, __ATOMIC_RELEASE);
    }
    return leash_mutex_unlock(&o->mu_);
}
