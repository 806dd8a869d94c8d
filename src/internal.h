/* SPDX-License-Identifier: MIT */
/*
 * internal.h — the runtime's shared structures and invariants.
 *
 * Model (Go's, adapted):
 *   - A coroutine is a `coroutine`. Its struct lives at the top of its own
 *     stack mapping, so a parked coroutine with a shallow stack costs one
 *     page and spawning needs no allocation beyond a pooled stack.
 *   - A worker (Go's P+M) is an OS thread with a scheduler context (g0, the
 *     thread's own stack), a bounded lock-free run queue with a `runnext`
 *     slot, a timer heap and a stack cache.
 *   - A thread that is not a worker gets a "foreign" coroutine (no stack of
 *     its own); parking it blocks the thread on a futex. Every wait queue
 *     therefore holds coroutine's of either kind and wakes them with
 *     sched_ready().
 *
 * Park protocol (Go's gopark(unlockf)): a coroutine that blocks publishes
 * itself as a waiter under some lock L (a channel's, a timer heap's), then
 * calls sched_park(unlock_L). The lock is released by whoever runs next on
 * that worker *after* the switch, so no waker can resume the coroutine
 * while its stack is still in use.
 *
 * Locking order: src/lockrank.h ranks every lock class, and a
 * LEASH_LOCKRANK build checks each acquisition against it. In short:
 * channel locks (several: in address order) > timer heap locks >
 * sched.lock > registry shard locks > R.lock (objects, references;
 * obj.c). A registry shard lock is next to innermost: the channel path
 * takes one under a channel lock (the orphan proof's coro_alive), so code
 * holding a shard lock takes no channel, context, timer heap or sched
 * lock -- only R.lock (pins, held references), under which nothing else
 * is taken. Readers of other coroutines (src/diag/) therefore copy what
 * they need of each g under its shard lock, pin the objects it waits on
 * (obj_try_pin), drop the shard lock, and only then lock the objects; a
 * pin is dropped with no lock held (dropping it may destroy them). Taking
 * a lock of the wrong rank is allowed only as a try-lock that never waits
 * (snapshot.c's zombie channels).
 *
 * TLS: the compiler may cache a thread-local's address across calls, and a
 * coroutine may resume on another thread. Inside the runtime the current
 * worker is read only through sched_worker()/sched_getg() (defined out of
 * line in sched.c), and code that switches uses the worker pointer the
 * switch returns.
 *
 * The declarations live in one header per module, each with what it
 * needs, included below in dependency order; the runtime (and the
 * white-box tests) include this one. No header is named after a system
 * header (src/ is on the include path): the scheduler's is scheduler.h.
 */
#ifndef LEASH_INTERNAL_H
#define LEASH_INTERNAL_H

#include "common.h"     /* LEASH_API, INTERNAL, likely, T_INF, time_add,
                         * env_*, rt_fatal, strict_fail */
#include "alloc.h"      /* lmalloc & co. */
#include "frames.h"     /* fp_walk, uc_regs */
#include "lock.h"       /* llock, slock, futexes; lockrank.h */
#include "arch/mctx.h"  /* mctx_switch, ctx_init */
#include "stack.h"      /* lstack */
#include "coro.h"       /* struct coroutine, wait reasons, the registry */
#include "timer.h"      /* rtimer, struct theap */
#include "scheduler.h"  /* struct worker, S, sched_park, sched_ready */
#include "sysmon.h"     /* coarse_now */
#include "tracking.h"   /* TRACE, g_wait_begin; observer.h */
#include "obj.h"        /* lobj, obj_check, objmem */
#include "chan.h"       /* leash_chan, sudog, the orphan proof */
#include "netpoll.h"    /* netpoll, fd_enter, io_park, iowaiter */

#endif /* LEASH_INTERNAL_H */
