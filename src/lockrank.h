/* SPDX-License-Identifier: MIT */
/*
 * lockrank.h — the runtime's lock order, the one place it is written.
 *
 * Every lock the runtime takes (llock, slock, and its few pthread
 * mutexes) belongs to a class with a rank below. A thread may acquire a
 * lock only while every lock it already holds has a *lower* rank: locks
 * are taken from the top of this list down. Two locks of one class may be
 * held together only where the class is marked "address order" (several
 * channels in a select, taken in increasing address order). A try-lock
 * that never waits may be taken at any rank (it cannot close a cycle);
 * snapshot.c uses that for zombie channels. Once held, a try-locked
 * lock counts like any other: blocking on a lower rank under it could
 * close a cycle.
 *
 * A build with -DLEASH_LOCKRANK=ON checks all of this at run time: each
 * thread keeps the locks it holds with the stack that took them, and an
 * acquisition out of order, an unranked lock or a release of a lock the
 * thread does not hold aborts with both stacks (lockrank.c). `make test`
 * runs the clang unit and stress tests and the TSan stress tests in such a
 * build. In a normal build every hook below compiles to nothing.
 *
 * Why this order (outer first):
 *   - the start lock, then the diagnostics' own serialising locks (agent,
 *     capture, endpoint registry, leak-check state): they call into
 *     everything below;
 *   - signal registry, then connection, then context locks: a signal
 *     delivery, a connection close and a context cancel each wake
 *     channel waiters and fd waiters under their own lock;
 *   - channel locks (address order), the non-blocking poll lock (held
 *     while the events found wake their fds' waiters), an fd's poll
 *     descriptor, the blocking-call pool, leash_run's handshake: all
 *     ready coroutines;
 *   - timer heaps and the scheduler lock: the scheduler's own state,
 *     taken by sched_ready and the timers;
 *   - orphan queue, spawn-site table, registry shards, labels, objects
 *     (R.lock): bookkeeping, taken under a channel lock by the proof path
 *     (coro_alive) and by spawn and exit;
 *   - the stack pool, the block/mutex profiles and the live page's
 *     history, the poll table's growth, the foreign-thread list, the
 *     symbolizer and the environment cache: leaves.
 */
#ifndef LEASH_LOCKRANK_H
#define LEASH_LOCKRANK_H

#include <stdbool.h>
#include <stdint.h>

/* X(name, address_order_allowed). Order = rank: first is outermost. */
#define LEASH_LOCKRANKS(X)                                                    \
    X(START, false)      /* proc.c start_mu: leash_run/start and stop */      \
    X(AGENT, false)      /* diag/agent.c: the agent's state */                \
    X(HTTP, false)       /* diag/http.c: the endpoint registry */             \
    X(LEAKCHECK, false)  /* diag/leakcheck.c: the leak check's baseline */    \
    X(SIGNAL, false)     /* signal.c: signal -> channel registrations */      \
    X(CONN, false)       /* conn.c: one connection */                         \
    X(CTX, false)        /* ctx.c: one context */                             \
    X(CHAN, true)        /* chan.c: one channel; select: address order */     \
    X(POLL, false)       /* sched.c: one non-blocking poller */               \
    X(PDESC, false)      /* netpoll.c: one fd's poll descriptor */            \
    X(BLOCKING, false)   /* blocking.c: the blocking-call thread pool */      \
    X(RUN, false)        /* coro.c: leash_run's main-returned handshake */    \
    X(THEAP, false)      /* timer.c: one worker's timer heap */               \
    X(SCHED, false)      /* sched.c: idle list, global run queue */           \
    X(ORPHANQ, false)    /* orphan.c: orphan events for sysmon */             \
    X(SITES, false)      /* diag/sites.c: spawn-site table */                 \
    X(SHARD, false)      /* coro.c: one registry shard */                     \
    X(LABELS, false)     /* labels.c: interned label sets */                  \
    X(OBJ, false)        /* obj.c R.lock: objects, references, pins */        \
    X(STACK, false)      /* stack.c: the global stack pool */                 \
    X(PROFALLOC, false)  /* diag/contention.c: a profile's table, once */     \
    X(PROFILE, false)    /* diag/contention.c: block or mutex profile */      \
    X(LIVE, false)       /* diag/livepage.c: the live page's history */       \
    X(NPGROW, false)     /* netpoll.c: growth of the descriptor table */      \
    X(FOREIGN, false)    /* sched.c: plain threads known to the runtime */    \
    X(SYM, false)        /* diag/symbolize.c: the DWARF session */            \
    X(SYMRES, false)     /* diag/symbolize.c: the result cache */             \
    X(ENV, false)        /* env.c: the environment cache */

enum lockrank {
    LR_NONE = 0, /* an unranked lock: an error in a LEASH_LOCKRANK build */
#define LEASH_LR_ENUM(name, multi) LR_##name,
    LEASH_LOCKRANKS(LEASH_LR_ENUM)
#undef LEASH_LR_ENUM
    LR__COUNT
};

#ifdef LEASH_LOCKRANK
/* The rank travels in the lock (llock, slock). */
#define LOCKRANK_FIELD uint16_t rank;
#define LOCKRANK_INIT(r) , (r)
#define LOCKRANK_SET(l, r) ((l)->rank = (uint16_t)(r))
#define LOCKRANK_OF(l) ((l)->rank)
/* Before waiting for `lock` (try: a try-lock that succeeded; it is only
 * recorded). Aborts on an out-of-order acquisition. */
INTERNAL void lockrank_acquire(int rank, const void *lock, bool try);
/* Before releasing `lock`; aborts when this thread does not hold it. */
INTERNAL void lockrank_release(const void *lock);
/* The locks this thread holds (tests, assertions). */
INTERNAL int lockrank_held(void);
#else
#define LOCKRANK_FIELD
#define LOCKRANK_INIT(r)
#define LOCKRANK_SET(l, r) ((void)(l), (void)(r))
#define LOCKRANK_OF(l) 0
#define lockrank_acquire(rank, lock, try) ((void)0)
#define lockrank_release(lock) ((void)0)
#define lockrank_held() 0
#endif

#endif
