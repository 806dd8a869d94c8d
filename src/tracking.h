/* SPDX-License-Identifier: MIT */
/*
 * tracking.h — what the core records as it runs, for the diagnostics and
 * the orphan proof: the execution trace's events, what each coroutine
 * waits on, the contention profiles' events and its receive count. The
 * flags that gate the hooks are the core's (observer.c); the hooks are
 * observer_impl's (observer.h).
 */
#ifndef LEASH_TRACKING_H
#define LEASH_TRACKING_H

#include "common.h"
#include "coro.h"
#include "sysmon.h"

/* What the core tells the layer above it (src/diag/): observer_impl. */
#include "observer.h"

/* The execution trace (leash_trace_start, diag/trace.c). Off, an event
 * site costs one relaxed load and a branch (TRACE). w: the caller's
 * worker (NULL: looked up). */
enum {
    TR_SPAWN = 1, /* g created (recorded by its creator) */
    TR_RUN,       /* g starts running on this worker */
    TR_PARK,      /* g parks (wait_reason, wait_obj set) */
    TR_UNPARK,    /* g made runnable by the current coroutine */
    TR_YIELD,     /* g yields */
    TR_EXIT,      /* g exits */
    TR_NAME,      /* g names itself */
    TR_LABEL,     /* g gets a label (trace_label) */
    TR_POLL_BEGIN, TR_POLL_END /* an idle worker waits in netpoll */
};
/* Core-owned (observer.c), set by the diagnostics. */
extern INTERNAL _Atomic int trace_on;
#define TRACE(w, kind, g)                                                  \
    do {                                                                   \
        if (unlikely(atomic_load_explicit(&trace_on, memory_order_relaxed))) \
            observer_impl.trace_event((w), (kind), (g));                   \
    } while (0)

/* Block and mutex profiles (diag/contention.c: Go's SetBlockProfileRate and
 * SetMutexProfileFraction). Off, the wait path pays one relaxed load and
 * a branch (g_wait_begin) and a load of its own g (g_wait_end); a
 * contended unlock one relaxed load and a branch. */
/* Core-owned (observer.c), set by the diagnostics. */
extern INTERNAL _Atomic int prof_wait_on;      /* either profile is on */
extern INTERNAL _Atomic int64_t prof_mutex_rate; /* 0: mutex profile off */

/* Records what the current g is about to wait on, for the diagnostics.
 * LEASH_TRACKING=0 (a build option, for measuring its cost) compiles the
 * per-operation tracking out: wait records and the borrower check, and
 * with them the contention profiles. */
static inline void g_wait_begin(coroutine *g, int reason, void *obj) {
#if LEASH_TRACKING
    atomic_store_explicit(&g->wait_obj, obj, memory_order_relaxed);
    atomic_store_explicit(&g->wait_since, coarse_now(), memory_order_relaxed);
    if (unlikely(atomic_load_explicit(&prof_wait_on, memory_order_relaxed)))
        g->prof_t0 = leash_now();
    atomic_store_explicit(&g->wait_reason, reason, memory_order_release);
#else
    (void)g, (void)reason, (void)obj;
#endif
}
static inline void g_wait_end(coroutine *g) {
#if LEASH_TRACKING
    if (unlikely(g->prof_t0))
        observer_impl.wait_end(g);
    atomic_store_explicit(&g->wait_reason, WR_NONE, memory_order_relaxed);
#else
    (void)g;
#endif
}
/* In an unlock that wakes `waiter`. */
static inline void g_unlock_event(coroutine *waiter) {
#if LEASH_TRACKING
    if (unlikely(atomic_load_explicit(&prof_mutex_rate, memory_order_relaxed)))
        observer_impl.unlock(waiter);
#else
    (void)waiter;
#endif
}

/* Counts a receive (or select) the current g starts, before it locks a
 * channel: a coroutine that renounced a channel may be given it back in
 * a message, and the orphan proof, reading this after taking that
 * channel's lock, sees it (borrowers.c). Only g writes it. */
static inline void g_note_recv(coroutine *g) {
#if LEASH_TRACKING
    if (g)
        atomic_store_explicit(
            &g->nrecv,
            atomic_load_explicit(&g->nrecv, memory_order_relaxed) + 1,
            memory_order_relaxed);
#else
    (void)g;
#endif
}

#endif /* LEASH_TRACKING_H */
