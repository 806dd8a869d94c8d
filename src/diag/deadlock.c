/* SPDX-License-Identifier: MIT */
/*
 * deadlock.c — Go's "all goroutines are asleep - deadlock!", for C.
 *
 * sysmon calls deadlock_check when every worker is idle. It is a proof,
 * not a guess, so it asks for all of:
 *   - no runnable coroutine (every worker idle, the global queue empty);
 *   - every live coroutine parked, none asleep, in I/O or in a
 *     leash_blocking call (each of those can wake somebody);
 *   - no pending timer that can wake a coroutine when it fires. leash
 *     knows what each timer wakes: a sleeper; the receivers of the
 *     channel an after or a ticker sends to (none waiting: the value is
 *     buffered or dropped, nobody wakes); whoever waits on a done channel
 *     in the subtree a deadline cancels. So a ticker nobody reads or a
 *     forgotten timeout does not hide a deadlock, as it does in Go;
 *   - the runtime's own coroutines (the debug endpoint's, g->system) wake
 *     no user coroutine, so they are left out: a program that serves
 *     /debug/pprof/ is still told it has deadlocked;
 *   - every thread of the process accounted for and blocked: the workers,
 *     sysmon, idle leash_blocking helpers, and plain threads parked inside
 *     leash. A thread leash does not know about (counted in /proc) could
 *     still send on a channel, so it silences the detector.
 * The state must hold twice, 10 ms apart, with no scheduling in between.
 * When only an unaccounted thread stands in the way, sysmon asks again
 * with a growing delay (50 ms to 5 s) rather than sleeping for good.
 * Then it prints Go's message and every coroutine (Go's debug=2 format)
 * and exits with status 2, as Go does.
 */
#include "diag.h"
#include "debug.h"

#include <time.h>
#include <unistd.h>


/* registry_walk's callback: counts user coroutines, stops at the first
 * that is not parked on something only another coroutine can resolve. */
static bool parked_for_good(coroutine *g, void *users) {
    if (atomic_load(&g->system))
        return true;
    (*(int *)users)++;
    if (atomic_load(&g->state) != G_WAITING)
        return false;
    switch (atomic_load(&g->wait_reason)) {
    case WR_SLEEP:
    case WR_IO_WAIT:
    case WR_SYSCALL:
        return false;
    default:
        return true;
    }
}

/* Every user coroutine parked on something nothing external can
 * resolve, and at least one of them (or a plain thread parked in leash).
 * The walk takes one shard lock at a time: a coroutine that starts or
 * ends meanwhile moves a scheduling tick, which the caller compares. */
static bool all_parked(int64_t *ticks) {
    *ticks = 0;
    for (int i = 0; i < S.nprocs; i++)
        *ticks += atomic_load_explicit(&S.workers[i].schedtick,
                                       memory_order_relaxed);
    int users = 0;
    bool ok = registry_walk(parked_for_good, &users);
    return ok && (users > 0 || atomic_load(&S.foreign_parked) > 0);
}

/* DL_NO: something can still run. DL_MAYBE: everything leash knows of is
 * parked, but some thread of the process is not accounted for (it may be
 * the user's, or one of ours just exiting): look again later. */
enum { DL_NO, DL_MAYBE, DL_YES };

static int quiescent(int64_t *ticks) {
    if (atomic_load(&S.nidle) != S.nprocs || atomic_load(&S.gq_len) != 0)
        return DL_NO;
    if (!all_parked(ticks) || timers_may_wake())
        return DL_NO;
    int known = S.nprocs + 1 /* sysmon */ + blocking_threads() +
                stack_threads() +
                sym_threads() + agent_threads() +
                atomic_load(&S.foreign_parked);
    return dbg_os_threads() == known ? DL_YES : DL_MAYBE;
}

/* Returns true when it should be asked again later (DL_MAYBE). */
bool deadlock_check(void) {
    if (!env_bool("LEASH_DEADLOCK", true))
        return false;
    int64_t t1, t2;
    int q = quiescent(&t1);
    if (q != DL_YES)
        return q == DL_MAYBE;
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
    q = quiescent(&t2);
    if (q != DL_YES || t1 != t2)
        return q == DL_MAYBE;
    fflush(stdout);
    fprintf(stderr, "fatal error: all goroutines are asleep - deadlock!\n\n");
    leash_dump(stderr, LEASH_DUMP_STACKS);
    fflush(stderr);
    _exit(2);
}
