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
 * RWMutex, Cond and Once (below) reuse the same nodes and spinlock.
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

/* All RWMutex state sits under lock_: readers_, writer_, the two FIFO
 * queues and wwait_. A reader gets in only while no writer is inside or
 * waiting; a writer when nobody is inside. Unlock by a writer lets every
 * waiting reader in (Go's order), else the next writer; the last reader
 * out hands over to the first waiting writer. */

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

static __attribute__((noinline)) int rw_wait(leash_rwmutex *rw, void **head,
                                             void **tail, int reason) {
    coroutine *g = sched_prepare_park();
    if (!g) {
        if (head == &rw->whead_)
            rw->wwait_--; /* counted by leash_rwmutex_lock */
        uunlock(&rw->lock_);
        return LEASH_ENOMEM;
    }
    wnode me = {.g = g};
    q_push(head, tail, &me);
    g_wait_begin(g, reason, rw);
    sched_park(uunlock_fn, &rw->lock_);
    g_wait_end(g);
    return 0; /* the waker let us in */
}

/* Remembers up to four readers inside (lock_ held), so the diagnostics
 * can follow a writer's wait to them. */
static inline void rowner_add(leash_rwmutex *rw, coroutine *g) {
    if (likely(!rw->rowners_[0])) {
        __atomic_store_n(&rw->rowners_[0], g, __ATOMIC_RELAXED);
        return;
    }
    for (int i = 1; i < 4; i++)
        if (!rw->rowners_[i]) {
            __atomic_store_n(&rw->rowners_[i], g, __ATOMIC_RELAXED);
            return;
        }
}

static __attribute__((noinline)) void rowner_del_slow(leash_rwmutex *rw,
                                                     coroutine *g) {
    int any = -1;
    for (int i = 0; i < 4; i++) {
        if (rw->rowners_[i] == g) {
            __atomic_store_n(&rw->rowners_[i], NULL, __ATOMIC_RELAXED);
            return;
        }
        if (rw->rowners_[i])
            any = i;
    }
    /* Unlocked by another coroutine than the one that locked (allowed):
     * forget one, so the list never names more readers than are in. */
    if (any >= 0 && rw->readers_ < 4)
        __atomic_store_n(&rw->rowners_[any], NULL, __ATOMIC_RELAXED);
}

static inline void rowner_del(leash_rwmutex *rw, coroutine *g) {
    if (likely(rw->rowners_[0] == g && g))
        __atomic_store_n(&rw->rowners_[0], NULL, __ATOMIC_RELAXED);
    else
        rowner_del_slow(rw, g);
}

API_FRAME int leash_rwmutex_rlock(leash_rwmutex *rw) {
    if (!rw)
        return LEASH_EINVAL;
    coroutine *self = sched_getg_entry();
    ulock(&rw->lock_);
    if (likely(!rw->writer_ && !rw->wwait_)) {
        rw->readers_++;
        rowner_add(rw, self);
        uunlock(&rw->lock_);
        return 0;
    }
    return rw_wait(rw, &rw->rhead_, &rw->rtail_, WR_RWMUTEX_R);
}

API_FRAME int leash_rwmutex_lock(leash_rwmutex *rw) {
    if (!rw)
        return LEASH_EINVAL;
    coroutine *self = sched_getg_entry();
    ulock(&rw->lock_);
    if (!rw->writer_ && !rw->readers_) {
        rw->writer_ = 1;
        __atomic_store_n(&rw->owner_, self, __ATOMIC_RELAXED);
        uunlock(&rw->lock_);
        return 0;
    }
    rw->wwait_++;
    return rw_wait(rw, &rw->whead_, &rw->wtail_, WR_RWMUTEX_W);
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

/* Lets the first waiting writer in (lock_ held); returns its g. */
static coroutine *rw_admit_writer(leash_rwmutex *rw) {
    wnode *w = q_pop(&rw->whead_, &rw->wtail_);
    if (!w)
        return NULL;
    rw->wwait_--;
    rw->writer_ = 1;
    __atomic_store_n(&rw->owner_, w->g, __ATOMIC_RELAXED);
    return w->g;
}

/* The last reader out with writers waiting (lock_ held): lets the first
 * one in. */
static __attribute__((noinline)) int rw_runlock_admit(leash_rwmutex *rw) {
    coroutine *next = rw_admit_writer(rw);
    uunlock(&rw->lock_);
    if (next) {
        g_unlock_event(next);
        sched_ready(next, true);
    }
    return 0;
}

static __attribute__((noinline)) int rw_runlock_bad(leash_rwmutex *rw) {
    uunlock(&rw->lock_);
    return strict_fail(LEASH_EINVAL, "sync: RUnlock of unlocked RWMutex");
}

API_FRAME int leash_rwmutex_runlock(leash_rwmutex *rw) {
    if (unlikely(!rw))
        return LEASH_EINVAL;
    ulock(&rw->lock_);
    if (likely(rw->readers_ == 1)) {
        /* The last reader out: no record may remain, whoever unlocks (the
         * common case needs no sched_getg). */
        for (int i = 0; i < 4; i++)
            if (rw->rowners_[i])
                __atomic_store_n(&rw->rowners_[i], NULL, __ATOMIC_RELAXED);
        rw->readers_ = 0;
        /* Writers wait (wwait_) only while readers are in. */
        if (likely(!rw->wwait_)) {
            uunlock(&rw->lock_);
            return 0;
        }
        return rw_runlock_admit(rw);
    }
    if (unlikely(rw->readers_ <= 0))
        return rw_runlock_bad(rw);
    rowner_del(rw, sched_getg_entry());
    rw->readers_--; /* others remain inside */
    uunlock(&rw->lock_);
    return 0;
}

API_FRAME int leash_rwmutex_unlock(leash_rwmutex *rw) {
    if (!rw)
        return LEASH_EINVAL;
    ulock(&rw->lock_);
    if (!rw->writer_) {
        uunlock(&rw->lock_);
        return strict_fail(LEASH_EINVAL, "sync: Unlock of unlocked RWMutex");
    }
    rw->writer_ = 0;
    __atomic_store_n(&rw->owner_, NULL, __ATOMIC_RELAXED);
    wnode *readers = rw->rhead_;
    coroutine *writer = NULL;
    if (readers) { /* every waiting reader goes in together */
        for (wnode *r = readers; r; r = r->next) {
            rw->readers_++;
            rowner_add(rw, r->g);
        }
        rw->rhead_ = rw->rtail_ = NULL;
    } else {
        writer = rw_admit_writer(rw);
    }
    uunlock(&rw->lock_);
    while (readers) {
        wnode *r = readers;
        readers = r->next; /* read before the wake: r is on its stack */
        g_unlock_event(r->g);
        sched_ready(r->g, false);
    }
    if (writer) {
        g_unlock_event(writer);
        sched_ready(writer, true);
    }
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
