/* SPDX-License-Identifier: MIT */
/*
 * scheduler.h — the M:N work-stealing scheduler (sched.c): a worker's
 * state, the scheduler's (S), parking and readying coroutines, and the
 * fork hooks (proc.c, obj.c). The park protocol and the rule for reading
 * the current worker are internal.h's.
 *
 * Not sched.h: src/ is on the include path, and <sched.h>, which
 * <pthread.h> includes, would find that instead of the system's.
 */
#ifndef LEASH_SCHEDULER_H
#define LEASH_SCHEDULER_H

#include "common.h"
#include "lock.h"
#include "stack.h"
#include "coro.h"
#include "timer.h"

#define RUNQ_SIZE 256
/* Fairness (sched.c): a slice ends after this many coroutines in a row
 * from runnext, or when sysmon sees it last over SLICE_NS. */
#define RUNNEXT_CHAIN_MAX 64
#define SLICE_NS 10000000
#define OBJ_CACHE_TYPES 8 /* > OBJ__COUNT */
#define OBJ_CACHE_MAX 64

enum after_kind { AFTER_NONE = 0, AFTER_UNLOCK, AFTER_YIELD, AFTER_EXIT };

struct worker {
    /* Owner-written hot fields. */
    coroutine *cur;           /* running coroutine, NULL on g0; written with
                             * __atomic_store_n (sysmon reads it) */
    void *g0_sp;            /* scheduler context */
    _Atomic uint32_t schedtick; /* owner-written, sysmon reads */
    enum after_kind after;  /* action for whoever runs next (park protocol) */
    coroutine *after_g;
    void (*after_fn)(void *);
    void *after_arg;
    uint64_t rng;
    int idx;
    int64_t id_next, id_end; /* batch of coroutine ids */

    /* Fairness (sched.c, "Fairness"): how many coroutines in a row
     * came from runnext (the owner counts; sysmon stores the maximum to
     * end a slice early: a lost race only delays that by a tick);
     * nslices counts slices, so sysmon sees one go on. */
    _Atomic uint32_t next_chain;
    _Atomic uint32_t nslices;
    /* The longest a coroutine waited runnable on this worker since
     * sysmon last collected it (ns, coarse clock). */
    _Atomic int64_t lat_max;

    _Alignas(CACHELINE) _Atomic uint32_t runq_head; /* stealers CAS it */
    _Atomic uint32_t runq_tail;                      /* owner stores */
    _Atomic(coroutine *) runnext;
    _Atomic(coroutine *) runq[RUNQ_SIZE];

    _Alignas(CACHELINE) _Atomic uint32_t wakeup; /* futex: 1 = woken */
    bool spinning;
    bool idle;            /* on the idle list (sched.lock) */
    worker *idle_next;
    struct theap timers;
    lstack *stack_cache;
    int nstack_cache;
    struct destroy_q *dq;             /* obj.c, for the scheduler context */
    void *obj_cache[OBJ_CACHE_TYPES]; /* dead object memory by type */
    int obj_ncache[OBJ_CACHE_TYPES];
    pthread_t thread;
    _Atomic int tid;      /* its kernel thread id (the CPU profiler's
                           * per-thread timers), set as it starts */
    char *g0_stack_lo;
    size_t g0_stack_size;
#ifdef LEASH_TSAN
    void *tsan_fiber;
#endif
#ifdef LEASH_ASAN
    void *asan_fake;
#endif
    void *altstack;
};

typedef struct sched {
    _Atomic int state; /* 0 stopped, 2 running, SCHED_FORKED (proc.c) */
    int nprocs;
    worker *workers;
    llock lock;                  /* idle list and global queue */
    worker *idle;
    _Atomic int nidle;
    _Atomic int nspinning;
    /* Global run queue: a ring of pointers (spilling and taking batches
     * touches no g), plus a list linked by qnext used only when the ring
     * cannot grow. */
    coroutine **gq_ring;
    uint32_t gq_cap, gq_head, gq_nring;
    coroutine *gq_ovf_head, *gq_ovf_tail;
    _Atomic int gq_len;
    _Atomic int64_t sleep_until; /* deadline of the timed idle worker */
    worker *timed_sleeper;
    _Atomic int64_t next_id;
    _Atomic int shutting_down;
    _Atomic int64_t coarse_now;      /* sysmon's clock, ns */
    _Atomic int io_waiters;          /* coroutines in leash_fd_wait */
    worker *_Atomic poller;          /* the worker blocked in epoll */
    llock poll_lock;                 /* one non-blocking poller at a time
                                      * (the blocking one is S.poller) */
    _Atomic uint32_t sysmon_sleeping;
    _Atomic uint32_t sysmon_stop;
    _Atomic uint32_t sysmon_kicks;   /* bumped by sysmon_kick: the word
                                      * sysmon's tick wait sleeps on */
    pthread_t sysmon_thread;
    _Atomic int orphans_queued;
    _Atomic int foreign_parked;      /* plain threads parked in leash */
    /* Scheduling latency: the longest a coroutine waited runnable over
     * the last SCHED_LAT_WINDOW seconds (sysmon collects the workers'
     * lat_max); what leash stats and /metrics show. */
    _Atomic int64_t sched_lat_max;
    _Atomic uint64_t slices_forced;  /* runnext chains sysmon ended */
} sched_t;
#define SCHED_LAT_WINDOW 10
extern INTERNAL sched_t S;

/* S.state in the child of a fork() made while the runtime ran: the
 * runtime's threads do not exist there, so every leash call refuses
 * (proc.c, "fork"). */
#define SCHED_FORKED 4
static inline bool in_forked_child(void) {
    return unlikely(atomic_load_explicit(&S.state, memory_order_relaxed) ==
                    SCHED_FORKED);
}
/* In a forked child: prints once that `what` cannot be used there and
 * returns LEASH_EINVAL; elsewhere 0. */
INTERNAL int fork_refuse(const char *what);
INTERNAL _Noreturn void fork_refuse_fatal(const char *what);
/* For the child: the calling thread is no worker any more (sched.c). */
INTERNAL void sched_forget_thread(void);
/* For fork (obj.c): R.lock held across fork(); in the child, every live
 * object's magic made dead, so the API refuses it with LEASH_EINVAL. */
INTERNAL void obj_fork_prepare(void);
INTERNAL void obj_fork_parent(void);
INTERNAL void obj_fork_child(void);
INTERNAL int sched_ensure_started(void);
INTERNAL worker *sched_worker(void);   /* NULL on a foreign thread */
INTERNAL coroutine *sched_getg(void);    /* coroutine or foreign g; may be NULL */
INTERNAL coroutine *sched_getg_or_foreign(void); /* allocates the foreign g */
/* Parks the current g; unlockf(arg) runs after it has switched out. */
INTERNAL void sched_park(void (*unlockf)(void *), void *arg);
/* The current g (a foreign one is allocated for a plain thread), ready to
 * be published as a waiter; NULL only when that allocation fails. */
INTERNAL coroutine *sched_prepare_park(void);
/* The same for a caller that has looked up self = sched_getg() already:
 * a coroutine is ready as it is. */
static inline coroutine *prepare_park(coroutine *self) {
    return self && !self->foreign ? self : sched_prepare_park();
}
/* Whether the running coroutine's slice is over (sysmon saw it last
 * SLICE_NS, or RUNNEXT_CHAIN_MAX hand-offs ran in it) while coroutines
 * wait in w's queue: where a call may switch without blocking (leash_go),
 * it gives way then, as Go's preemption would. */
static inline bool sched_slice_over(worker *w) {
    return atomic_load_explicit(&w->next_chain, memory_order_relaxed) >=
               RUNNEXT_CHAIN_MAX &&
           atomic_load_explicit(&w->runq_tail, memory_order_relaxed) !=
               atomic_load_explicit(&w->runq_head, memory_order_relaxed);
}
/* Makes a parked g runnable; `next`: run it right after the current one. */
INTERNAL void sched_ready(coroutine *g, bool next);
INTERNAL void sched_init_g(coroutine *g);  /* lays out its first switch */
INTERNAL void sched_discard_g(worker *w, coroutine *g); /* never started */
INTERNAL void sched_start_g(coroutine *g); /* a new coroutine */
INTERNAL _Noreturn void sched_exit_current(worker *w);
INTERNAL uint32_t sched_rand(void);
INTERNAL int64_t sched_new_id(worker *w);
INTERNAL void sched_wake_idle(void);
/* For proc.c: a worker thread's body, waking one, and the last step
 * after it has stopped. */
INTERNAL void *sched_worker_main(void *w);
INTERNAL void sched_worker_wake(worker *w);
INTERNAL void sched_worker_finish(worker *w);

INTERNAL void sched_netpoll_waiter_added(void);

#endif /* LEASH_SCHEDULER_H */
