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
 * (diag/capture.c's zombie channels).
 *
 * TLS: the compiler may cache a thread-local's address across calls, and a
 * coroutine may resume on another thread. Inside the runtime the current
 * worker is read only through sched_worker()/sched_getg() (defined out of
 * line in sched.c), and code that switches uses the worker pointer the
 * switch returns.
 */
#ifndef LEASH_INTERNAL_H
#define LEASH_INTERNAL_H

/* Inside the library every public function is also placed in the section
 * leash_api: the declarations in leash.h carry this LEASH_API, and a
 * definition takes its section from them. Dumps recognise "the public
 * call that blocked" by that address range (rt_pc_is_api), not by the
 * leash_ prefix a user's own function may have too. */
#undef LEASH_API
#define LEASH_API __attribute__((visibility("default"), section("leash_api")))
#include "leash.h"

#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define LEASH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LEASH_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define LEASH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LEASH_TSAN 1
#endif
#endif

#ifndef LEASH_TRACKING
#define LEASH_TRACKING 1
#endif

/* Architectures with a context switch in src/arch/ (switch_<arch>.S and
 * ctx_<arch>.c, chosen by CMakeLists.txt). */
#if !defined(__x86_64__) && !defined(__aarch64__)
#error "leash: only x86-64 (System V) and aarch64 (Linux) have a context switch (src/arch/)"
#endif

/* A public entry point that may park keeps its own frame (no tail call
 * out of it), so dumps show the leash_* call that blocked on top of the
 * caller's frame; the rest of the library keeps its tail calls. */
#if defined(__clang__)
#define API_FRAME __attribute__((disable_tail_calls))
#else
#define API_FRAME __attribute__((optimize("no-optimize-sibling-calls")))
#endif

/* A coroutine's entry frames (the trampoline, sched.c's g_entry,
 * coro_body, and the bodies of coroutines the runtime itself starts:
 * leash_run's main, a group's members) lie in the section leash_entry;
 * dumps end a stack there (rt_pc_is_entry). Noinline: an entry must stay
 * a frame of its own; a section also keeps GCC from splitting it. */
#define ENTRY_FRAME __attribute__((section("leash_entry"), noinline))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define INTERNAL __attribute__((visibility("hidden")))

/* errno, read afresh on the thread that runs now. glibc declares
 * __errno_location() const, so a compiler may reuse, within a function,
 * the errno address it computed before a park -- another thread's errno
 * once the coroutine has moved (clang does, in a retry loop). A function
 * that parks reads errno through this, out of line in error.c. */
INTERNAL int errno_now(void) __attribute__((noinline));
#define CACHELINE 64
#define T_INF INT64_MAX

/* Time arithmetic saturates: a deadline past the end of int64_t is
 * "never" (T_INF), one before its start is "long ago" (0). Every `now +
 * d` of the runtime goes through this (signed overflow is undefined, and
 * a wrapped deadline fires at once, for ever). */
static inline int64_t time_add(int64_t t, int64_t d) {
    int64_t r;
    if (__builtin_add_overflow(t, d, &r))
        return d > 0 ? T_INF : 0;
    return r < 0 ? 0 : r;
}
/* An I/O deadline (absolute; -1: none): T_INF for none, or
 * LEASH_EINVAL for a negative value other than -1. */
static inline int64_t io_deadline(int64_t d) {
    return d == -1 ? T_INF : d < 0 ? LEASH_EINVAL : d;
}

typedef struct coroutine coroutine;
typedef struct worker worker;
typedef struct lobj lobj;
typedef struct rtimer rtimer;

/* ------------------------------------------------------------- alloc.c */
/* Every allocation of the runtime goes through these, so tests can make
 * the Nth one fail (alloc_test_fail). */
INTERNAL void *lmalloc(size_t n);
INTERNAL void *lcalloc(size_t n, size_t sz);
INTERNAL void *lrealloc(void *p, size_t n);
INTERNAL void lfree(void *p);
INTERNAL bool lalloc_should_fail(void); /* for mmap sites */

/* ----------------------------------------------------------- frames.c */
/* Return addresses by frame pointer from fp, never outside [lo, hi), into
 * pcs[n..max); returns the new count. Safe on a torn or foreign chain. */
INTERNAL int fp_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
                     int n, int max);
/* The interrupted pc, frame pointer and stack pointer of a signal's
 * ucontext (all 0 on an architecture leash does not know). */
INTERNAL void uc_regs(const void *ucv, uintptr_t *pc, uintptr_t *fp,
                      uintptr_t *sp);

/* ------------------------------------------------------------- lock.c */
/* Lock ranks (the lock order): lockrank.h. Every lock is created with its
 * rank (LLOCK_INIT(LR_x), llock_init), checked in LEASH_LOCKRANK builds. */
#include "lockrank.h"

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
    uint32_t z = 0;
    if (likely(atomic_compare_exchange_weak_explicit(
            &l->v, &z, 1, memory_order_acquire, memory_order_relaxed)))
        return;
    llock_slow(l);
}
static inline bool llock_try(llock *l) {
    uint32_t z = 0;
    bool ok = atomic_compare_exchange_strong_explicit(
        &l->v, &z, 1, memory_order_acquire, memory_order_relaxed);
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
    uint32_t z = 0;
    if (likely(atomic_compare_exchange_weak_explicit(
            &l->v, &z, 1, memory_order_acquire, memory_order_relaxed)))
        return;
    slock_slow(l);
}
static inline bool slock_try(slock *l) {
    uint32_t z = 0;
    bool ok = atomic_compare_exchange_strong_explicit(
        &l->v, &z, 1, memory_order_acquire, memory_order_relaxed);
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

/* ------------------------------------------------------------- context */
/* arch/switch_*.S: saves callee-saved registers, MXCSR and the x87
 * control word on the current stack, stores the stack pointer in *save,
 * switches to `to` and returns `arg` there. */
INTERNAL void *mctx_switch(void **save, void *to, void *arg);
INTERNAL void mctx_trampoline(void);
/* Lays out a fresh stack so that switching to the result calls
 * entry(arg_from_switch, g). */
INTERNAL void *ctx_init(void *stack_top, void (*entry)(void *, void *),
                        void *g);

/* ------------------------------------------------------------- stack.c */
typedef struct lstack {
    char *lo;            /* lowest usable byte (just above the guard) */
    char *hi;            /* one past the highest byte */
    size_t size;         /* hi - mapping base, guard included */
    bool guarded;        /* a PROT_NONE page below lo, else a canary */
    unsigned vg_id;      /* valgrind's stack id (stack.c) */
    struct lstack *next; /* pool link */
} lstack;
#define STACK_CANARY 0x6c656173682d2121ull /* "leash-!!" */
INTERNAL void stack_config(void);
INTERNAL size_t stack_size(void);
/* Returns a stack with room for `hdr` bytes at its top (the g), or NULL. */
INTERNAL lstack *stack_get(worker *w);
INTERNAL void stack_put(worker *w, lstack *s);
INTERNAL bool stack_canary_ok(const lstack *s);
INTERNAL void stack_drain_cache(worker *w);
INTERNAL void stack_trim(int budget);
INTERNAL void stack_release_all(void);
INTERNAL int stack_threads(void); /* the prefault helper: 0 or 1 */
INTERNAL void stack_prefault_stats(long *pooled, long *prefaulted);
INTERNAL void stack_fork_prepare(void);
INTERNAL void stack_fork_parent(void);
INTERNAL void stack_fork_child(void);
INTERNAL long stack_max_map_count(void); /* vm.max_map_count (65530) */
INTERNAL void stack_install_overflow_handler(void);
INTERNAL void stack_overflow_report(coroutine *g, const char *how);

/* ------------------------------------------------------------- the g */
enum gstate {
    G_IDLE = 0,
    G_RUNNABLE,
    G_RUNNING,
    G_WAITING,
    G_DEAD,
};

/* Why a coroutine waits: the strings are Go's where the meaning matches. */
enum wait_reason {
    WR_NONE = 0,
    WR_CHAN_SEND,
    WR_CHAN_RECV,
    WR_CHAN_SEND_NIL,
    WR_CHAN_RECV_NIL,
    WR_SELECT,
    WR_SELECT_NO_CASES,
    WR_SLEEP,
    WR_IO_WAIT,
    WR_MUTEX,
    WR_RWMUTEX_R,
    WR_RWMUTEX_W,
    WR_COND,
    WR_WAITGROUP,
    WR_ONCE,
    WR_GROUP_WAIT,
    WR_JOIN,
    WR_PREEMPTED,
    WR_SYSCALL,
    WR__COUNT
};
INTERNAL const char *wait_reason_str(int wr);

/* A reference held by a coroutine (or thread) on an object; linked into
 * the holder's list and the object's list (the orphan proof reads both). */
typedef struct lref {
    lobj *obj;
    coroutine *holder;
    struct lref *g_next, *g_prev;     /* holder's list, under R.lock */
    struct lref *o_next, *o_prev;     /* object's list, under R.lock */
    uint32_t count;                   /* references in this record */
    uint32_t handed;                  /* of which leash_go handed over */
    /* The detached record (holder == obj_detached_holder): who detached
     * last, and where (leash_ref_detach's call site). */
    int64_t detached_by;
    const char *detach_file;
    int detach_line;
} lref;

struct coroutine {
    void *sp;       /* saved stack pointer while switched out */
    worker *w;      /* worker it runs on (set at each resume) */
    _Atomic uint32_t nresume; /* bumped at each resume: stack walkers
                               * detect a walk that raced with one */
    int64_t id;
    int64_t parent_id;
    _Atomic int state;
    bool foreign;     /* an OS thread, not a coroutine */
    bool is_main;     /* coroutine 1 of leash_run */
    /* The runtime's own (the debug endpoint's), inherited by its
     * children: it can wake no user coroutine, so the deadlock check
     * leaves it out. Set by itself as it starts; read by sysmon. */
    _Atomic bool system;
    void (*fn)(void *);
    void *arg;
    void (*exit_fn)(void *); /* after it is unregistered (leash_run) */
    void *exit_arg;
    struct destroy_q *dq;    /* objects being destroyed (obj.c) */

    /* What it waits on; written by the g itself before it parks and read
     * racily by the diagnostics (hence atomics where torn reads matter). */
    _Atomic int wait_reason;
    void *_Atomic wait_obj;
    _Atomic int64_t wait_since;
    int64_t ready_at;          /* made runnable then (coarse clock) */
    /* When it began to wait (leash_now), set only while a contention
     * profile is on (diag/contention.c); 0 otherwise. Written by the g,
     * read by whoever wakes it while it is parked. */
    int64_t prof_t0;

    /* Wake-up plumbing. */
    _Atomic uint32_t parked;   /* foreign: futex word, 1 = woken */
    _Atomic int in_park;       /* foreign: counted in S.foreign_parked */
    _Atomic uint32_t selectdone;
    void *param;               /* set by the waker: the sudog that fired */

    /* Where and by whom it was created. */
    const char *spawn_file;
    int spawn_line;
    void *spawn_pc;
    int64_t scope;             /* leak scope, inherited from the parent */
    int nlabels;               /* label_key/val below: [0, nlabels) */
    /* Set by sysmon while it runs without yielding past LEASH_HOG_MS:
     * since when, and its stack sampled then (hog_pcs: [0, hog_n)). */
    _Atomic int64_t hog_since;
    int hog_n;

    lstack *stack;
    int reg_slot;                        /* in its registry shard */
    struct coroutine *qnext;               /* global run queue link */
    int shard;
    lref *refs;          /* references this g holds (R.lock) */
    /* Channels this g is known to hold a reference on (a cache for the
     * borrower check on every channel operation; obj.c invalidates). */
    lobj *_Atomic held[4];
    unsigned held_next;
    /* Set (nresume << 1 | 1) while it waits plainly on a channel proven
     * orphaned; stale as soon as it resumes (nresume moves on). */
    _Atomic uint64_t stranded;
    /* Receives (and selects) it has started: g_note_recv. */
    _Atomic uint64_t nrecv;

    /* Not zeroed at spawn (G_ZEROED_SIZE): read only below a count or,
     * for the name, up to its NUL, which spawn writes. */
    char name[32];
    /* Labels (interned strings), inherited at spawn; written by the g
     * itself under its shard lock (dumps read them under it). */
    const char *label_key[LEASH_MAX_LABELS];
    const char *label_val[LEASH_MAX_LABELS];
    uintptr_t hog_pcs[16];

#ifdef LEASH_ASAN
    void *asan_fake;     /* fake stack saved across a switch */
#endif
#ifdef LEASH_TSAN
    void *tsan_fiber;
#endif
};
/* How much of a new coroutine's g spawn clears. */
#define G_ZEROED_SIZE offsetof(coroutine, name)


/* The g of a stack: just below the slot's descriptor, cache-line aligned. */
static inline coroutine *stack_g(lstack *s) {
    return (coroutine *)(((uintptr_t)s - sizeof(coroutine)) & ~(uintptr_t)63);
}

/* A cond waiter's wait object (on its stack): the cond and its mutex. */
typedef struct {
    leash_cond *cond;
    leash_mutex *mu;
} cond_wait_obj;

/* A select's wait object (on its stack): the distinct channels of its
 * cases, for the proofs (diag/prove.c) to see what could complete it. */
struct leash_chan;
typedef struct {
    struct leash_chan **chans;
    int n;
} select_wait_obj;

/* sync.c, for the proofs: whether g is queued as a reader waiting on rw
 * (so not let in yet); false when unsure (rw busy). Never waits. */
INTERNAL bool rw_reader_queued(leash_rwmutex *rw, coroutine *g);

/* ------------------------------------------------------------- sched.c */
#define RUNQ_SIZE 256
/* Fairness (sched.c): a slice ends after this many coroutines in a row
 * from runnext, or when sysmon sees it last over SLICE_NS. */
#define RUNNEXT_CHAIN_MAX 64
#define SLICE_NS 10000000
#define OBJ_CACHE_TYPES 8 /* > OBJ__COUNT */
#define OBJ_CACHE_MAX 64

enum after_kind { AFTER_NONE = 0, AFTER_UNLOCK, AFTER_YIELD, AFTER_EXIT };

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

/* ------------------------------------------------------------- netpoll.c */
INTERNAL int netpoll_init(void);
INTERNAL void netpoll_fini(void);
INTERNAL void netpoll_break(void);
INTERNAL int netpoll(int64_t deadline); /* 0: don't block; T_INF: forever */
INTERNAL int64_t netpoll_last(void);

/* ------------------------------------------------------------- sysmon.c */
INTERNAL int sysmon_start(void);
INTERNAL void sysmon_stop(void);
INTERNAL void sysmon_worker_awake(void);
INTERNAL void sysmon_kick(void);

/* The clock park times are taken from: refreshed every millisecond by
 * sysmon while any worker runs (sysmon.c explains why). */
static inline int64_t coarse_now(void) {
    return atomic_load_explicit(&S.coarse_now, memory_order_relaxed);
}

/* ------------------------------------------------------------ observer.h */
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

/* ------------------------------------------------------------- coro.c */
/* The registry of live coroutines, in shards by id. Each shard is an
 * array of slots (a g knows its slot): an exit clears its slot and frees
 * it without touching any other coroutine (a linked list made every exit
 * write to two neighbours' stack pages: two cache and TLB misses). Walks
 * (dumps, sysmon) skip the empty slots. */
#define NSHARDS 16
typedef struct shard {
    _Alignas(CACHELINE) llock lock;
    coroutine **slots;       /* [0, nslots): a g or NULL */
    int nslots, cap;
    int *free;             /* empty slots below nslots */
    int nfree;
    _Atomic int64_t count; /* live coroutines (not foreign) */
} shard_t;
extern INTERNAL shard_t G_shards[NSHARDS];
/* Every coroutine of shard sh (its lock held) as g; break and continue
 * work as in a plain loop. */
#define SHARD_FOR_EACH(sh, g)                                               \
    for (coroutine **g##_p = (sh)->slots, **g##_e = g##_p + (sh)->nslots, *g; \
         g##_p < g##_e; g##_p++)                                            \
        if (!(g = *g##_p)) {                                                \
        } else
/* Calls fn(g, arg) for every registered coroutine until it returns
 * false (then returns false). Holds one shard lock at a time, for at most
 * REGISTRY_WALK_BATCH slots, so a walk over a million coroutines never
 * stalls spawn and exit for long; fn runs under that lock (g cannot exit
 * meanwhile) and must take no lock itself. A coroutine that starts or
 * ends during the walk may be missed: walks are for sampling, or are
 * confirmed by another check (the deadlock detector's tick counts). */
#define REGISTRY_WALK_BATCH 512
INTERNAL bool registry_walk(bool (*fn)(coroutine *g, void *arg), void *arg);
INTERNAL int g_register(coroutine *g); /* LEASH_ENOMEM */
INTERNAL void g_unregister(coroutine *g);
INTERNAL void g_release_refs(coroutine *g);
/* Whether a frame's return address (an interrupted leaf: its pc + 1) lies
 * in a public function (section leash_api), or in a coroutine's entry
 * (section leash_entry: ENTRY_FRAME). coro.c. */
INTERNAL bool rt_pc_is_api(uintptr_t ret);
INTERNAL bool rt_pc_is_entry(uintptr_t ret);
#define MAX_HANDED 16 /* objects one leash_go can hand over */
INTERNAL int64_t coro_spawn(const char *file, int line, void *spawn_pc,
                            void (*fn)(void *), void *arg, lobj *const *objs,
                            int nobj);
#include <stdarg.h>
INTERNAL int coro_collect_objs(va_list ap, lobj **objs, int max);
/* In a variadic spawn function whose last named parameter is `last`: the
 * leash objects handed after it into objs[MAX_HANDED]; their count, or
 * -1 (not a live object, or too many). */
#define COLLECT_HANDED(last, objs)                                          \
    ({                                                                      \
        va_list ap_;                                                        \
        va_start(ap_, last);                                                \
        int n_ = coro_collect_objs(ap_, (objs), MAX_HANDED);                \
        va_end(ap_);                                                        \
        n_;                                                                 \
    })

/* ------------------------------------------------------------- obj.c */
enum obj_type { OBJ_CHAN = 1, OBJ_CTX, OBJ_TICKER, OBJ_GROUP, OBJ_CONN,
                OBJ__COUNT };
_Static_assert(OBJ__COUNT <= OBJ_CACHE_TYPES, "grow OBJ_CACHE_TYPES");
#define OBJ_MAGIC 0x4c455348u /* "LESH" */
#define OBJ_DEAD 0xdeadbeefu

struct lobj {
    _Atomic uint32_t magic;
    /* Read by obj_check on any pointer, racing with the reuse of dead
     * memory: atomic, and kept across reuse (memory is reused by type). */
    _Atomic uint8_t type;
    bool immortal;          /* static (the background context): no counting */
    bool internal;          /* owned by another object (a context's done) */
    _Atomic int64_t refs;
    int64_t id;
    const char *file;
    int line;
    int64_t created_by;     /* coroutine id */
    int64_t created_at;     /* leash_now() */
    lref *holders;
    _Atomic int nholders;   /* records in holders (written under R.lock) */
    _Atomic int ndetached;  /* detached references (written under R.lock) */
    bool drop_noted;        /* listed once in the dropped report (R.lock) */
    lobj *all_next, *all_prev; /* registry of live objects */
    void (*destroy)(lobj *);
    void *release_pc;       /* where the last reference went (R.lock) */
    int64_t release_by;     /* by which coroutine */
};
INTERNAL int obj_init(lobj *o, int type, const char *file, int line,
                      void (*destroy)(lobj *), coroutine *owner);
/* Validates a user pointer: the object, or NULL if not live / wrong type
 * (type 0: any). obj_check (below, inline) takes the common case, an
 * aligned pointer into objmem, and leaves the rest to obj_check_slow. */
INTERNAL lobj *obj_check_slow(const void *p, int type);
INTERNAL int obj_retain_for(lobj *o, coroutine *holder, bool handed);
INTERNAL void *obj_alloc(int type, size_t size);
/* objmem.c: the range objects are carved from. obj_check reads a magic
 * only at an address objmem_holds, so a wild pointer cannot fault. */
struct objmem {
    char *_Atomic base;
    _Atomic size_t committed; /* readable bytes at base; only grows */
};
extern INTERNAL struct objmem objmem;
INTERNAL void *objmem_alloc(size_t size); /* zeroed; R.lock held */
static inline bool objmem_holds(const void *p) {
    size_t n = atomic_load_explicit(&objmem.committed, memory_order_acquire);
    char *base = atomic_load_explicit(&objmem.base, memory_order_relaxed);
    return (uintptr_t)p - (uintptr_t)base < n;
}
static inline lobj *obj_check(const void *p, int type) {
    lobj *o = (lobj *)p;
    if (unlikely(!objmem_holds(p) || ((uintptr_t)p & 7)))
        return obj_check_slow(p, type);
    if (atomic_load_explicit(&o->magic, memory_order_acquire) != OBJ_MAGIC ||
        (type && o->type != type))
        return NULL;
    return o;
}
INTERNAL void obj_free_mem_type(void *p, int type);
INTERNAL void obj_release_from(lobj *o, coroutine *holder);
/* The same, recording the call site (pc) for the orphan proof. */
/* When holder holds no reference: LEASH_EINVAL (REL_OWN), or drop one a
 * plain thread holds (REL_THREADS) or anyone's (REL_ANY). */
enum { REL_OWN, REL_THREADS, REL_ANY };
INTERNAL int obj_release_at(lobj *o, coroutine *holder, void *pc,
                           int instead);
INTERNAL bool obj_held_by(lobj *o, coroutine *g);
/* The holder of detached references (leash_ref_detach): owned by a data
 * structure, not by a coroutine. It never waits on anything, so the
 * orphan proof counts it as a holder that can still act. */
extern INTERNAL coroutine obj_detached_holder;
/* o's detached record (R.lock held: obj_foreach callbacks), or NULL. */
INTERNAL const lref *obj_detached_locked(lobj *o);
/* Calls fn(holder, arg) for each holder record until it returns false;
 * returns whether all returned true. R.lock held meanwhile. */
INTERNAL bool obj_all_holders(lobj *o, bool (*fn)(coroutine *, void *),
                              void *arg);
/* A runtime reference, only if o is still alive (count > 0). */
INTERNAL bool obj_try_retain(lobj *o);
/* Keeps o from being destroyed, only if it is still alive, without
 * becoming a holder: a bare count, invisible to the orphan proof, and no
 * release record when it goes (obj_try_retain's runtime reference would
 * block proofs while held and overwrite the channel's release site when
 * dropped). For readers such as the diagnostics. If obj_unpin drops the
 * last count, it destroys o (with no release site). */
INTERNAL bool obj_try_pin(lobj *o);
INTERNAL void obj_unpin(lobj *o);
INTERNAL size_t obj_count(int type);
INTERNAL void obj_free_mem(lobj *o); /* after destroy: mark dead, free */
INTERNAL void obj_drain_cache(worker *w);
/* An object whose last references went only because its owner returned
 * (reported as leaked: docs/DESIGN-NOTES.md, "Leak rules"). Kept for
 * LEASH_LEAKCHECK. */
typedef struct {
    int type;
    int64_t id;
    const char *file;
    int line;
    int64_t owner;
    const char *owner_file;
    int owner_line;
    void *owner_pc;   /* its spawn_pc: the site when owner_file is NULL */
} dropped_obj;
INTERNAL int obj_dropped(dropped_obj *out, int max, int64_t *total);
/* Calls fn for every live object (R.lock held: fn must not call back). */
INTERNAL void obj_foreach(void (*fn)(lobj *o, void *arg), void *arg);
/* Calls fn for every object g holds a reference on (R.lock held). */
INTERNAL void obj_foreach_held(coroutine *g, void (*fn)(lobj *o, void *arg),
                               void *arg);

/* ------------------------------------------------------------- timer.c */
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

/* ------------------------------------------------------------- chan.c */
/* A waiter on a channel: lives on the waiting coroutine's stack. */
typedef struct sudog {
    coroutine *g;
    struct sudog *next, *prev;
    void *elem;          /* where to copy from/to */
    struct leash_chan *c;
    bool is_select;
    _Atomic bool queued; /* on c's sendq or recvq; cleared (release) as
                          * the last touch of a dequeuer that skips it */
    bool success;        /* woken by a value (not by close) */
    int err;             /* why it failed: LEASH_ECLOSED or EORPHANED */
    int case_idx;
} sudog;
typedef struct waitq { sudog *first, *last; int n; } waitq;

struct leash_chan {
    lobj obj;
    slock lock;
    size_t elem_size;
    size_t cap;
    size_t count;       /* buffered elements */
    size_t sendx, recvx;
    char *buf;
    bool closed;
    bool zombie;        /* released while coroutines still wait on it */
    int nwaiters;       /* sudogs queued on it */
    /* The orphan proof (docs/DESIGN-NOTES.md, "Leak rules"), under lock. */
    bool borrowed;      /* used by a coroutine that held no reference */
    int nborrowers;     /* how many (3 = too many to track) */
    int64_t borrower[2];
    bool released;      /* a release left other holders: check parks */
    void *release_pc;   /* the latest such release */
    int64_t release_by;
    bool release_exit;  /* ... made by its holder returning */
    void *drop_pc;      /* the latest explicit leash_release leaving holders */
    int64_t drop_by;    /* (a return may come after it and make the proof) */
    /* Coroutines that released their own reference (not by returning):
     * they no longer use it (borrowers.c). */
    struct { int64_t id; uint64_t nrecv; } renounced[4];
    int nrenounced;
    _Atomic int signals; /* fed by signal.c: waiting on it is normal */
    bool strict_warned; /* LEASH_STRICT: an unhanded borrow was told */
    struct leash_ctx *ctx_of; /* the context whose done channel it is */
    bool orphaned;      /* proven: nobody can ever complete a wait */
    void *orphan_pc;    /* the release that proved it */
    int64_t orphan_by;
    bool orphan_exit;   /* that release was its holder returning */
    bool orphan_park;   /* no release: a holder parking on it proved it
                         * (orphan_pc: where it parked) */
    waitq recvq, sendq;
};
static inline leash_chan *chan_check(const void *p) {
    return (leash_chan *)obj_check(p, OBJ_CHAN);
}
INTERNAL void waitq_enqueue(waitq *q, sudog *s);
INTERNAL void waitq_remove(waitq *q, sudog *s);
static inline void waitq_unlink(waitq *q, sudog *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        q->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        q->last = s->prev;
    s->next = s->prev = NULL;
    q->n--;
    s->c->nwaiters--;
}
/* The first waiter that can still be woken: a select already won through
 * another channel is skipped and unhooked here. Clearing `queued` is the
 * last touch of a skipped sudog, so its select, which may check `queued`
 * without the lock (select.c), can return as soon as it sees it clear.
 * Inline: on the send and receive paths, an empty queue is one load. */
static inline sudog *waitq_dequeue(waitq *q) {
    for (sudog *s; (s = q->first);) {
        if (s->prev) /* the head has none: lets waitq_unlink skip a test */
            __builtin_unreachable();
        waitq_unlink(q, s);
        bool claimed = true;
        if (unlikely(s->is_select)) {
            uint32_t z = 0;
            claimed = atomic_compare_exchange_strong(&s->g->selectdone, &z, 1);
        }
        atomic_store_explicit(&s->queued, false, memory_order_release);
        if (claimed)
            return s;
    }
    return NULL;
}
/* The hand-offs select shares with the single-channel paths; called with
 * c->lock held, they release it. */
INTERNAL void chan_send_to_waiter(leash_chan *c, sudog *s, const void *elem);
INTERNAL void chan_recv_from_waiter(leash_chan *c, sudog *s, void *out);
INTERNAL void chan_block_forever(int reason) __attribute__((noreturn));
/* Unlocks c; frees it if it was a zombie whose last waiter just left. */
INTERNAL void chan_free(leash_chan *c);
static inline void chan_unlock(leash_chan *c) {
    bool dead = unlikely(c->zombie) && c->nwaiters == 0;
    slock_release(&c->lock);
    if (unlikely(dead))
        chan_free(c);
}
/* Whether a coroutine (not a system one) waits to receive from c now. */
INTERNAL bool chan_has_receivers(leash_chan *c);
/* Notes that g uses c (c->lock held): a borrower if it holds no ref. */
static inline void chan_note_user(leash_chan *c, coroutine *g);
INTERNAL void chan_note_user_slow(leash_chan *c, coroutine *g);
/* After a release left `remaining` references: prove orphans (chan.c). */
/* at_exit: the reference went as its holder returned; pc is then the
 * holder's function. */
INTERNAL void chan_after_release(leash_chan *c, void *pc, int64_t by,
                                 bool at_exit);
enum { ORPHANS_RECORD, ORPHANS_REPORT, ORPHANS_WAKE, ORPHANS_ABORT };
INTERNAL int orphan_policy(void); /* LEASH_ORPHANS */
/* returning: a coroutine whose own return made the release (it will
 * not act again), or NULL. */
INTERNAL bool orphan_prove(leash_chan *c, void *pc, int64_t by, bool at_exit,
                           const coroutine *returning);
/* borrowers.c, c->lock held: g released its reference to c (it
 * renounces c); whether no live coroutine other
 * than those stuck on c, stuck forever, renounced or returning (its
 * function has returned) could still use c;
 * marking c's plain waiters stranded once c is proven. */
INTERNAL void chan_note_renounce(leash_chan *c, coroutine *g);
INTERNAL bool chan_nobody_else_can_act(leash_chan *c,
                                       const coroutine *returning);
INTERNAL void chan_mark_stranded(leash_chan *c);
INTERNAL bool chan_waits_plainly(leash_chan *c, coroutine *g);
/* Hands a freshly orphaned channel to sysmon, which acts on the policy
 * (report, wake, abort) on its own big stack: the prover may be a
 * coroutine about to park, holding the channel's lock. */
INTERNAL void orphan_queue(leash_chan *c);
INTERNAL void orphan_process(void); /* sysmon: observer_impl.orphaned */
/* The earliest cancellation among the contexts g holds, if it is waiting
 * on something else: 0 if none (ctx.c). */
INTERNAL int64_t ctx_cancelled_held(coroutine *g);
/* Whether cancelling c now would wake a coroutine: one waits on the done
 * channel of c or of a descendant still live and not yet cancelled. */
INTERNAL bool ctx_cancel_may_wake(leash_ctx *c);
/* Whether only coroutines (holding or borrowing c) can ever cancel c:
 * no timer, no parent but the background, no other kind of holder. */
INTERNAL bool ctx_cancelled_only_by_coroutines(leash_ctx *c);
INTERNAL int ctx_values(leash_ctx *ctx, const void *key, const void **out,
                       int max);
INTERNAL int blocking_threads(void);
INTERNAL void orphan_wake(leash_chan *c, int64_t id);
INTERNAL bool coro_alive(int64_t id);
INTERNAL const char *label_intern(const char *s); /* NULL on ENOMEM */
extern INTERNAL _Atomic int64_t orphans_total;
/* A channel whose first reference goes to `owner` (NULL: the runtime). */
INTERNAL leash_chan *chan_make(const char *file, int line, size_t elem_size,
                               size_t cap, coroutine *owner);

/* Whether chan_note_user(c, g) has nothing to note: g is the runtime or
 * holds a reference to c that its cache knows (no lock needed: only g
 * and, invalidating, obj.c write g->held). */
static inline bool chan_user_known(leash_chan *c, coroutine *g) {
#if !LEASH_TRACKING
    (void)c, (void)g;
    return true;
#endif
    if (!g)
        return true; /* the runtime itself (a timer): holds its own reference */
    lobj *o = &c->obj;
    return atomic_load_explicit(&g->held[0], memory_order_relaxed) == o ||
           atomic_load_explicit(&g->held[1], memory_order_relaxed) == o ||
           atomic_load_explicit(&g->held[2], memory_order_relaxed) == o ||
           atomic_load_explicit(&g->held[3], memory_order_relaxed) == o;
}
static inline void chan_note_user(leash_chan *c, coroutine *g) {
    if (!chan_user_known(c, g))
        chan_note_user_slow(c, g);
}

/* ------------------------------------------------------------- misc */
/* Environment variables (env.c; the rules are in docs/TUNING.md). Each
 * returns dflt, with one line on stderr, for a value it rejects. */
INTERNAL bool env_bool(const char *name, bool dflt);
/* Decimal, optional k/m/g suffix (x1024^n), within lo..hi. */
INTERNAL uint64_t env_u64(const char *name, uint64_t dflt, uint64_t lo,
                          uint64_t hi);
/* The raw value of a string-valued variable, NULL when unset or empty;
 * its reader rejects unknown values with env_reject. */
INTERNAL const char *env_str(const char *name);
/* "leash: ignoring NAME=value (want WANT); using USING", once per name. */
INTERNAL void env_reject(const char *name, const char *value,
                         const char *want, const char *using);
INTERNAL _Noreturn void rt_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Misuse Go panics on: returns err, or under LEASH_STRICT=1 prints Go's
 * panic message with a dump of every coroutine and aborts. */
INTERNAL int strict_fail(int err, const char *go_message);
INTERNAL bool strict_mode(void); /* LEASH_STRICT=1 */


/* ------------------------------------------------- netpoll.c, conn.c I/O */
#include <sys/uio.h>
struct sockaddr;
typedef struct pdesc pdesc;
/* A coroutine waiting on an fd: lives on its stack, linked into the fd's
 * poll descriptor under its lock (netpoll.c). */
typedef struct iowaiter {
    coroutine *g;
    struct iowaiter *next, *prev;
    int events;          /* LEASH_POLLIN / LEASH_POLLOUT */
    int result;          /* ready events, 0 (look again) or LEASH_E* */
    bool queued;
    pdesc *pd;
    sudog *sel;          /* a select's case: claimed through selectdone,
                          * the result goes to sel->err */
    const _Atomic uint32_t *gen; /* set: woken with 0 when it moves (a
                                  * connection's deadline was changed) */
} iowaiter;

/* What bounds the waits of one I/O call: its own deadline, a
 * connection's deadline that another coroutine may move (bumping *gen
 * and kicking the waiters: fd_kick), and a context. */
typedef struct iobound {
    int64_t deadline;          /* absolute; T_INF: none */
    _Atomic int64_t *settable; /* NULL: none */
    _Atomic uint32_t *gen;
    leash_ctx *ctx;            /* NULL: none */
} iobound;

/* A call on fd's number counts itself in (LEASH_ECLOSED once
 * leash_fd_close began) and out; the close(2) waits for the last out. */
INTERNAL int fd_enter(int fd);
INTERNAL void fd_leave(int fd);
INTERNAL void fd_kick(int fd, int events);
INTERNAL int fd_calls_inside(int fd); /* for tests */
INTERNAL int fd_ready_now(int fd, int events); /* poll(2), no wait */
/* One wait of an I/O loop: > 0 or 0 (try again) or LEASH_E*. */
INTERNAL int io_park(int fd, int events, const iobound *b);
INTERNAL ssize_t io_read(int fd, void *buf, size_t n, const iobound *b);
INTERNAL ssize_t fd_read_ctx(int fd, void *buf, size_t n, int64_t deadline,
                             leash_ctx *ctx);
/* Consumes iov in place. */
INTERNAL ssize_t io_writev(int fd, struct iovec *iov, int cnt,
                           const iobound *b);
INTERNAL int io_accept(int fd, struct sockaddr *addr, unsigned *addrlen,
                       const iobound *b);
INTERNAL int io_connect(int fd, const struct sockaddr *addr,
                        unsigned addrlen, const iobound *b);
/* select.c's I/O cases: io_sel_pd is fd's descriptor (NULL: out of
 * memory); with it locked, io_sel_arm hangs w there (1: ready at once,
 * w->result says why); the select releases the lock after it parks and
 * takes w off with io_sel_disarm when it wakes. */
INTERNAL pdesc *io_sel_pd(int fd);
INTERNAL void io_sel_lock(pdesc *pd);
INTERNAL void io_sel_unlock(pdesc *pd);
INTERNAL int io_sel_arm(pdesc *pd, iowaiter *w, rtimer *t,
                        int64_t deadline, uint32_t seen);
INTERNAL void io_sel_disarm(iowaiter *w, rtimer *t, int64_t deadline);
/* select.c: waits until fd is ready for events (bounded like
 * fd_wait_at) or ctx is done: the wait's result, or ctx's error. */
INTERNAL int select_fd_or_ctx(int fd, int events, int64_t deadline,
                              const _Atomic uint32_t *gen, uint32_t seen,
                              leash_ctx *ctx);
/* conn.c: the fd of a live connection counted in for a select (its
 * closed flag checked: LEASH_ECLOSED), and out again. */
INTERNAL int conn_enter_fd(leash_conn *c);
INTERNAL void conn_leave_fd(leash_conn *c);

#endif /* LEASH_INTERNAL_H */
