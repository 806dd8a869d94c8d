/* SPDX-License-Identifier: MIT */
/*
 * lockrank.c — the run-time check of the lock order (lockrank.h), built
 * only with -DLEASH_LOCKRANK=ON.
 *
 * Each thread keeps the locks it holds, with the rank and the call stack
 * that took each one, in a small thread-local array. Acquiring a lock
 * checks it against every lock held (not only the last one: a release out
 * of order must not hide an older inversion). Locks belong to threads,
 * not coroutines: a coroutine never holds a runtime lock across a switch
 * except through the park protocol, where the same thread releases it
 * after the switch (internal.h).
 *
 * Acquisitions record their stack by frame pointers (stack_walk); only a
 * violation calls backtrace(), which may load libgcc on first use
 * (lockrank_prime does that at start-up).
 */
#define _GNU_SOURCE 1 /* pthread_getattr_np */
#include "internal.h"

#ifdef LEASH_LOCKRANK
#include <execinfo.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#define HELD_STATIC 256 /* more (a select over many channels): mmap'd */
#define STACKS 64       /* the first locks held keep their stacks */
#define DEPTH 16

typedef struct {
    const void *lock;
    int rank;
    bool try;
} held_lock;

/* Per thread: the locks held in acquisition order, and per rank how many
 * and the highest address (for the address-order rule), so a check costs
 * one pass over the ranks however many channels a select holds. */
static __thread struct {
    held_lock fixed[HELD_STATIC];
    held_lock *v;
    int n, cap;
    int count[LR__COUNT];
    uintptr_t top[LR__COUNT];
    int depth[STACKS];
    uintptr_t pcs[STACKS][DEPTH];
    uintptr_t stack_lo, stack_hi; /* this thread's own stack, once known */
} T;

/* The stack `fp` lies on: the current coroutine's, or the thread's own
 * (looked up once per thread). False when neither holds it. */
static bool stack_bounds(uintptr_t fp, uintptr_t *lo, uintptr_t *hi) {
    coroutine *g = sched_getg();
    if (g && !g->foreign && g->stack && fp >= (uintptr_t)g->stack->lo &&
        fp < (uintptr_t)g) {
        *lo = (uintptr_t)g->stack->lo;
        *hi = (uintptr_t)g;
        return true;
    }
    if (!T.stack_hi) {
        pthread_attr_t a;
        void *addr;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &a) != 0)
            return false;
        if (pthread_attr_getstack(&a, &addr, &size) == 0) {
            T.stack_lo = (uintptr_t)addr;
            T.stack_hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&a);
    }
    *lo = T.stack_lo;
    *hi = T.stack_hi;
    return fp >= *lo && fp < *hi;
}

/* The caller's stack by frame pointers, never leaving the stack it is on:
 * cheap enough for every acquisition, and, unlike backtrace(), it leaves
 * the frame pointer chain intact for the stack sampler (sampler.c), which
 * may interrupt it. */
static int stack_walk(uintptr_t *pcs, int max) {
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0), lo, hi;
    if (!stack_bounds(fp, &lo, &hi))
        return 0;
    return fp_walk(fp, lo, hi, pcs, 0, max);
}

static void say_stack(const uintptr_t *pcs, int n) {
    void *p[DEPTH];
    for (int i = 0; i < n && i < DEPTH; i++)
        p[i] = (void *)pcs[i];
    backtrace_symbols_fd(p, n < DEPTH ? n : DEPTH, 2);
}

static const char *const rank_name[LR__COUNT] = {
    [LR_NONE] = "unranked",
#define LEASH_LR_NAME(name, multi) [LR_##name] = #name,
    LEASH_LOCKRANKS(LEASH_LR_NAME)
#undef LEASH_LR_NAME
};

static const bool rank_multi[LR__COUNT] = {
#define LEASH_LR_MULTI(name, multi) [LR_##name] = multi,
    LEASH_LOCKRANKS(LEASH_LR_MULTI)
#undef LEASH_LR_MULTI
};

static void say(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static const char *name_of(int rank) {
    return rank > LR_NONE && rank < LR__COUNT ? rank_name[rank] : "unranked";
}

static void say_lock(const char *what, int rank, const void *lock) {
    char buf[160];
    snprintf(buf, sizeof buf, "  %s %s lock %p (rank %d)\n", what,
             name_of(rank), lock, rank);
    say(buf);
}

/* The held lock that forbids taking `lock` of `rank`, or NULL. */
static const held_lock *conflict(int rank, const void *lock, int *at) {
    for (int i = 0; i < T.n; i++) {
        const held_lock *h = &T.v[i];
        if (h->lock == lock || h->rank > rank ||
            (h->rank == rank &&
             (!rank_multi[rank] || (uintptr_t)h->lock > (uintptr_t)lock))) {
            *at = i;
            return h;
        }
    }
    return NULL;
}

__attribute__((noreturn)) static void rank_violation(const char *why, int rank,
                                                     const void *lock) {
    say("leash: lock rank violation: ");
    say(why);
    say("\n");
    say_lock("acquiring", rank, lock);
    void *pcs[DEPTH];
    int n = backtrace(pcs, DEPTH); /* the slow, thorough unwinder: once */
    backtrace_symbols_fd(pcs, n, 2);
    int at = -1;
    const held_lock *h = rank > LR_NONE && rank < LR__COUNT
                             ? conflict(rank, lock, &at)
                             : NULL;
    if (h) {
        say_lock("while holding", h->rank, h->lock);
        if (at < STACKS)
            say_stack(T.pcs[at], T.depth[at]);
    }
    say("  (the order is in src/lockrank.h; addr2line -f -e <binary> "
        "<offset> names the frames)\n");
    abort();
}

static void grow(void) {
    int cap = T.cap * 2;
    held_lock *v = mmap(NULL, sizeof *v * (size_t)cap, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (v == MAP_FAILED)
        rank_violation("no memory to record the locks held", LR_NONE, NULL);
    memcpy(v, T.v, sizeof *v * (size_t)T.n);
    if (T.v != T.fixed)
        munmap(T.v, sizeof *v * (size_t)T.cap);
    T.v = v;
    T.cap = cap;
}

void lockrank_acquire(int rank, const void *lock, bool try) {
    if (rank <= LR_NONE || rank >= LR__COUNT)
        rank_violation("a lock with no rank", rank, lock);
    if (!T.v) {
        T.v = T.fixed;
        T.cap = HELD_STATIC;
    }
    if (!try) {
        for (int r = rank; r < LR__COUNT; r++) {
            if (!T.count[r])
                continue;
            if (r > rank)
                rank_violation("out of order (a lower rank after a higher)",
                               rank, lock);
            if (!rank_multi[rank] || T.top[rank] >= (uintptr_t)lock) {
                int at;
                if (conflict(rank, lock, &at))
                    rank_violation(rank_multi[rank]
                                       ? "two locks of one class out of "
                                         "address order"
                                       : "two locks of one class",
                                   rank, lock);
            }
        }
    }
    if (T.n == T.cap)
        grow();
    int i = T.n++;
    T.v[i] = (held_lock){lock, rank, try};
    if (i < STACKS)
        T.depth[i] = stack_walk(T.pcs[i], DEPTH);
    T.count[rank]++;
    if ((uintptr_t)lock > T.top[rank])
        T.top[rank] = (uintptr_t)lock;
}

void lockrank_release(const void *lock) {
    for (int i = T.n - 1; i >= 0; i--) {
        if (T.v[i].lock != lock)
            continue;
        int rank = T.v[i].rank;
        for (int j = i; j + 1 < T.n; j++) {
            T.v[j] = T.v[j + 1];
            if (j + 1 < STACKS) {
                T.depth[j] = T.depth[j + 1];
                memcpy(T.pcs[j], T.pcs[j + 1], sizeof T.pcs[j]);
            }
        }
        T.n--;
        if (--T.count[rank] == 0) {
            T.top[rank] = 0;
        } else if ((uintptr_t)lock == T.top[rank]) {
            T.top[rank] = 0;
            for (int j = 0; j < T.n; j++)
                if (T.v[j].rank == rank && (uintptr_t)T.v[j].lock > T.top[rank])
                    T.top[rank] = (uintptr_t)T.v[j].lock;
        }
        return;
    }
    rank_violation("releasing a lock this thread does not hold", LR_NONE, lock);
}

int lockrank_held(void) { return T.n; }

/* backtrace() loads libgcc_s on its first call, which allocates: do it
 * before any lock is taken, and before any signal handler may need it. */
__attribute__((constructor)) static void lockrank_prime(void) {
    void *pcs[2];
    (void)backtrace(pcs, 2);
}
#else
/* ISO C forbids an empty translation unit. */
typedef int lockrank_unused;
#endif
