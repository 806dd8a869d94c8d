/* SPDX-License-Identifier: MIT */
/*
 * timer.h — timers: sleep, after, tickers, on a 4-ary heap per worker
 * (timer.c, which states the heap's invariants); each worker holds its
 * heap (struct theap) by value.
 */
#ifndef LEASH_TIMER_H
#define LEASH_TIMER_H

#include "common.h"
#include "lock.h"

/* How many callbacks of one heap may run at once (on different threads);
 * a runner that finds every slot taken leaves the heap to the others. */
#define THEAP_RUNNERS 4

struct theap {
    llock lock;
    /* Whose callbacks run now (lock dropped), and on which thread: any
     * worker may run any heap's due timers, so several at once. */
    struct { rtimer *t; const void *thread; } running[THEAP_RUNNERS];
    struct theap_ent { int64_t when; rtimer *t; } *v;
    int n, cap;
    _Atomic int64_t next_when; /* T_INF when empty */
};

/* What a timer's firing can wake, for the deadlock detector (which must
 * not be silenced by a timer that wakes nobody): `target` is the
 * coroutine, the channel it sends to, or the context it cancels. */
enum { TW_G, TW_CHAN, TW_CTX };

struct rtimer {
    int64_t when;
    int64_t period;         /* > 0: re-armed by the heap before firing */
    void (*fn)(rtimer *t, int64_t now);
    void *arg;
    struct theap *_Atomic heap;
    int idx;                /* in heap, -1 if not queued */
    _Atomic int running;    /* fn in progress */
    int wakes;              /* TW_* */
    void *target;
};
INTERNAL int timer_add_locked(struct theap *h, rtimer *t);
INTERNAL struct theap *timer_heap_lock_for_add(void);
INTERNAL int timer_add(rtimer *t);
INTERNAL bool timer_del(rtimer *t); /* true if it was queued */
INTERNAL int timers_run_due(int64_t now); /* every heap, earliest first */
INTERNAL int timer_heap_run(struct theap *h, int64_t now, int max);
INTERNAL int64_t timer_next_all(void);
/* Whether some pending timer, when it fires, can wake a coroutine that is
 * not a system one (deadlock.c); conservative (true) when unsure. */
INTERNAL bool timers_may_wake(void);
INTERNAL void timer_heap_free(struct theap *h);
INTERNAL void timer_kick(int64_t when);

#endif /* LEASH_TIMER_H */
