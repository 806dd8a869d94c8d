/* SPDX-License-Identifier: MIT */
/*
 * coro.h — coroutines: the g (struct coroutine: its state, what it waits
 * on, the references it holds) with the wait objects the proofs read, and
 * coro.c's registry of live coroutines and spawn. A coroutine's struct
 * lives at the top of its own stack (stack.h, stack_g).
 */
#ifndef LEASH_CORO_H
#define LEASH_CORO_H

#include "common.h"
#include "lock.h"
#include "stack.h"

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
    int64_t scope;             /* leak scope, inherited from the parent;
                                  changed by its owner only, with atomic
                                  stores: snapshots read it meanwhile */
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
/* Readers inside (for the diagnostics: as racy as any look at a lock). */
INTERNAL int rw_readers_inside(leash_rwmutex *rw);

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

#endif /* LEASH_CORO_H */
