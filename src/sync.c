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
 * Mutex: state_ holds LOCKED (1) and WAITERS (2). Uncontended lock and
 * unlock are one CAS each. With waiters, unlock hands the mutex directly
 * to the first waiter in FIFO order (the state stays LOCKED): nobody can
 * barge in ahead of a waiter, so no waiter starves (Go's starvation mode,
 * always on once there are waiters). owner_ records the holder for the
 * diagnostics.
 */
#include "internal.h"

#include <sched.h>

typedef struct wnode {
    leash_g *g;
    struct wnode *next;
} wnode;

/* ---------------------------------------------------- the value spinlock */

static inline void ulock(unsigned *l) {
    for (unsigned spins = 0;; spins++) {
        unsigned z = 0;
        if (__atomic_compare_exchange_n(l, &z, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
        if (spins < 100)
            cpu_relax();
        else
            sched_yield();
    }
}
static inline void uunlock(unsigned *l) {
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}
static void uunlock_fn(void *l) { uunlock(l); }

/* ------------------------------------------------------------ wait group */

int leash_waitgroup_add(leash_waitgroup *wg, int64_t n) {
    if (!wg)
        return LEASH_EINVAL;
    ulock(&wg->lock_);
    int64_t v = wg->count_ + n;
    if (v < 0 || (n > 0 && v < wg->count_)) {
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

int leash_waitgroup_done(leash_waitgroup *wg) {
    return leash_waitgroup_add(wg, -1);
}

int leash_waitgroup_wait(leash_waitgroup *wg) {
    if (!wg)
        return LEASH_EINVAL;
    ulock(&wg->lock_);
    if (wg->count_ == 0) {
        uunlock(&wg->lock_);
        return 0;
    }
    leash_g *g = sched_prepare_park();
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

static inline void set_owner(leash_mutex *mu, leash_g *g) {
    __atomic_store_n(&mu->owner_, g, __ATOMIC_RELAXED);
}

int leash_mutex_trylock(leash_mutex *mu) {
    if (!mu)
        return LEASH_EINVAL;
    unsigned z = 0;
    if (!__atomic_compare_exchange_n(&mu->state_, &z, MU_LOCKED, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return LEASH_EAGAIN;
    set_owner(mu, sched_getg());
    return 0;
}

int leash_mutex_lock(leash_mutex *mu) {
    if (!mu)
        return LEASH_EINVAL;
    unsigned z = 0;
    if (likely(__atomic_compare_exchange_n(&mu->state_, &z, MU_LOCKED, false,
                                           __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED))) {
        set_owner(mu, sched_getg());
        return 0;
    }
    leash_g *g = sched_prepare_park();
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

int leash_mutex_unlock(leash_mutex *mu) {
    if (!mu)
        return LEASH_EINVAL;
    unsigned s = MU_LOCKED;
    set_owner(mu, NULL);
    if (likely(__atomic_compare_exchange_n(&mu->state_, &s, 0, false,
                                           __ATOMIC_RELEASE,
                                           __ATOMIC_RELAXED)))
        return 0;
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
    leash_g *g = w->g;
    uunlock(&mu->lock_);
    sched_ready(g, true);
    return 0;
}
