/* SPDX-License-Identifier: MIT */
/*
 * observer.h — what the core calls in the layer above it.
 *
 * The core (src/) knows nothing of the diagnostics (src/diag/): it
 * includes none of their headers and calls none of their functions. What
 * they need to hear about, the core tells through one table of hooks,
 * observer_impl, which the core declares and the layer above defines:
 * src/diag/observer.c in a normal build, src/observer_none.c (no-ops, and
 * the public diagnostics API refusing with -ENOTSUP) in a build with
 * -DLEASH_DIAGNOSTICS=OFF. The table is bound at link time, not
 * registered at run time: with a static library an object nothing
 * references is not linked at all, so a constructor in the diagnostics
 * would never run for a program that only sets LEASH_DEBUG_ADDR or
 * LEASH_LEAKCHECK. Referencing the table from the core is what pulls the
 * diagnostics in. docs/DESIGN-NOTES.md, "Layering".
 *
 * Cost: the hooks that sit on hot paths are only called behind flags the
 * core owns and reads inline (trace_on, prof_wait_on, prof_mutex_rate;
 * the diagnostics set them): off, a site costs what it did before, one
 * relaxed load and a branch. The rest are cold (start, a sysmon round,
 * an orphan, the end of leash_run, a fatal error).
 *
 * Every hook is set (no NULL checks): a table that has nothing to do for
 * one points it at a function that does nothing.
 */
#ifndef LEASH_OBSERVER_H
#define LEASH_OBSERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct observer {
    const char *name; /* "diag", "none" */
    /* Runtime start, the scheduler's start lock held, before the workers
     * run: signal handlers and environment settings (LEASH_LEAKCHECK,
     * SIGQUIT dumps, LEASH_BLOCK_PROFILE_RATE...). */
    void (*install)(void);
    /* Once the runtime has started, no lock held: what starts threads or
     * coroutines of its own (LEASH_DEBUG_ADDR, LEASH_AGENT...). Called
     * by every successful start; runs its work once. */
    void (*started)(void);
    /* Every sysmon round (at least once a second, idle or not), from
     * sysmon's thread, no lock held; now: the time it read. */
    void (*tick)(int64_t now);
    /* sysmon, every worker idle and nothing queued: whether that is a
     * global deadlock (which may end the process); true: look again
     * later (sysmon re-checks after a growing delay). */
    bool (*all_idle)(void);
    /* sysmon: chan#id (c) was proven orphaned and the policy
     * (LEASH_ORPHANS, orphan_policy) is report, wake or abort. The hook
     * does what the policy says: for wake it calls orphan_wake(c, id)
     * (the core's), for abort it does not return. */
    void (*orphaned)(leash_chan *c, int64_t id, int policy);
    /* leash_run's main returned (the exit leak check). */
    void (*run_returned)(void);
    /* A fatal misuse (LEASH_STRICT=1): everything the process can tell
     * about its coroutines, to out, before the core aborts. */
    void (*fatal_dump)(FILE *out);
    /* Behind prof_wait_on: g waited since g->prof_t0 and runs again (its
     * wait_reason still set); clears prof_t0. */
    void (*wait_end)(coroutine *g);
    /* Behind prof_mutex_rate: the current g hands a mutex to `waiter`. */
    void (*unlock)(coroutine *waiter);
    /* Behind trace_on: the execution trace's events (TR_*, tracking.h). */
    void (*trace_event)(worker *w, int kind, coroutine *g);
    void (*trace_switch)(worker *w, coroutine *g, coroutine *to);
    void (*trace_label)(worker *w, coroutine *g, const char *key,
                        const char *val);
} observer;

/* Defined by the layer above (see the top of this file). */
extern INTERNAL const observer observer_impl;

#endif /* LEASH_OBSERVER_H */
