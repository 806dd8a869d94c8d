/* SPDX-License-Identifier: MIT */
/*
 * lock.c — the runtime's mutex and futex helpers.
 *
 * llock is Drepper's three-state futex mutex (0 free, 1 locked, 2 locked
 * with possible sleepers) with a short spin first: the runtime's critical
 * sections are tens of nanoseconds, while a futex sleep and wake across
 * vCPUs costs tens of microseconds here.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SPIN_ROUNDS 100

int futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline) {
    struct timespec ts, *tp = NULL;
    if (deadline != T_INF) {
        int64_t now = leash_now();
        int64_t d = deadline > now ? deadline - now : 0;
        ts.tv_sec = d / 1000000000;
        ts.tv_nsec = d % 1000000000;
        tp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tp,
                     NULL, 0);
    return r == 0 ? 0 : -errno;
}

void futex_wake(_Atomic uint32_t *addr, int n) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void llock_slow(llock *l) {
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        uint32_t v = atomic_load_explicit(&l->v, memory_order_relaxed);
        if (v == 0) {
            uint32_t z = 0;
            if (atomic_compare_exchange_weak_explicit(
                    &l->v, &z, 1, memory_order_acquire, memory_order_relaxed))
                return;
        }
        cpu_relax();
    }
    /* Mark contended; whoever holds it will wake us. */
    while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0)
        futex_wait(&l->v, 2, T_INF);
}

void lunlock_slow(llock *l) {
    /* The value was 2: somebody may sleep. */
    futex_wake(&l->v, 1);
}

void llock_release_fn(void *l) { llock_release((llock *)l); }

void slock_slow(slock *l) {
    for (unsigned spins = 0;; spins++) {
        if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0) {
            uint32_t z = 0;
            if (atomic_compare_exchange_weak_explicit(
                    &l->v, &z, 1, memory_order_acquire, memory_order_relaxed))
                return;
        }
        if (spins < SPIN_ROUNDS)
            cpu_relax();
        else
            sched_yield(); /* the holder may have been preempted */
    }
}

void slock_release_fn(void *l) { slock_release((slock *)l); }
