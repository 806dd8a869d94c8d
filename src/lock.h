/* SPDX-License-Identifier: MIT */
/*
 * lock.h — the runtime's locks and futex helpers (lock.c): llock, a
 * spin-then-futex mutex for its own short critical sections; slock, the
 * channels' spinlock; its few pthread mutexes, ranked like the rest. The
 * lock order is lockrank.h's (and, in short, internal.h's).
 */
#ifndef LEASH_LOCK_H
#define LEASH_LOCK_H

#include "common.h"

/* Lock ranks (the lock order): lockrank.h. Every lock is created with its
 * rank (LLOCK_INIT(LR_x), llock_init), checked in LEASH_LOCKRANK builds. */
#include "lockrank.h"

/* The lock word both kinds share: 0 free, 1 locked (llock: 2, locked
 * with waiters). Taking it uncontended is one CAS, the same for both;
 * what differs is the slow path and the release. */
static inline bool lockword_take(_Atomic uint32_t *v, bool weak) {
    uint32_t z = 0;
    return weak ? atomic_compare_exchange_weak_explicit(
                      v, &z, 1, memory_order_acquire, memory_order_relaxed)
                : atomic_compare_exchange_strong_explicit(
                      v, &z, 1, memory_order_acquire, memory_order_relaxed);
}

/* A spin-then-futex mutex (0 free, 1 locked, 2 locked with waiters). */
typedef struct { _Atomic uint32_t v; LOCKRANK_FIELD } llock;
#define LLOCK_INIT(r) {0 LOCKRANK_INIT(r)}
INTERNAL void llock_slow(llock *l);
INTERNAL void lunlock_slow(llock *l);
static inline void llock_init(llock *l, int rank) {
    atomic_init(&l->v, 0);
    LOCKRANK_SET(l, rank);
}
static inline void llock_acquire(llock *l) {
    lockrank_acquire(LOCKRANK_OF(l), l, false);
    if (likely(lockword_take(&l->v, true)))
        return;
    llock_slow(l);
}
static inline bool llock_try(llock *l) {
    bool ok = lockword_take(&l->v, false);
    if (ok)
        lockrank_acquire(LOCKRANK_OF(l), l, true);
    return ok;
}
static inline void llock_release(llock *l) {
    lockrank_release(l);
    if (likely(atomic_exchange_explicit(&l->v, 0, memory_order_release) == 1))
        return;
    lunlock_slow(l);
}
INTERNAL void llock_release_fn(void *l); /* unlockf form */

/* A spinlock for the channel locks: their critical sections are a few
 * dozen instructions and never block, and a plain store to unlock saves an
 * atomic exchange on every channel operation (a tenth of a round trip).
 * Waiters spin, then yield the CPU, so a preempted holder is not fought. */
typedef struct { _Atomic uint32_t v; LOCKRANK_FIELD } slock;
#define SLOCK_INIT(r) {0 LOCKRANK_INIT(r)}
INTERNAL void slock_slow(slock *l);
static inline void slock_init(slock *l, int rank) {
    atomic_init(&l->v, 0);
    LOCKRANK_SET(l, rank);
}
static inline void slock_acquire(slock *l) {
    lockrank_acquire(LOCKRANK_OF(l), l, false);
    if (likely(lockword_take(&l->v, true)))
        return;
    slock_slow(l);
}
static inline bool slock_try(slock *l) {
    bool ok = lockword_take(&l->v, false);
    if (ok)
        lockrank_acquire(LOCKRANK_OF(l), l, true);
    return ok;
}
static inline void slock_release(slock *l) {
    lockrank_release(l);
    atomic_store_explicit(&l->v, 0, memory_order_release);
}
INTERNAL void slock_release_fn(void *l);

/* The runtime's few pthread mutexes, ranked like the rest. */
static inline void rmutex_lock(pthread_mutex_t *m, int rank) {
    (void)rank;
    lockrank_acquire(rank, m, false);
    pthread_mutex_lock(m);
}
static inline void rmutex_unlock(pthread_mutex_t *m) {
    lockrank_release(m);
    pthread_mutex_unlock(m);
}
INTERNAL int futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline);
INTERNAL void futex_wake(_Atomic uint32_t *addr, int n);
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

#endif /* LEASH_LOCK_H */
