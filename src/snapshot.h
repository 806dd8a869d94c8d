/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h — the core's introspection interface: copies of the live
 * coroutines and of the objects they wait on, for the layer above (the
 * diagnostics, src/diag/) to format, classify and prove leaks from.
 *
 * The core writes these because only it knows its own lock order
 * (src/lockrank.h): a snapshot is taken one registry shard at a time,
 * copying under the shard lock only the coroutine's own fields (and
 * pinning, under R.lock, what it waits on); the objects are read after
 * the shard lock is dropped, each under its own lock; running coroutines
 * are sampled by a signal (sampler.c) once no lock is held. The layer
 * above takes no core lock: it calls these functions and reads the
 * copies. Fields marked "the observer's" are zero in a fresh snapshot and
 * belong to the layer above (classification, proof scratch).
 *
 * snapshot.c: taking snapshots, reading their channels, re-checking a
 * proof against the live registry. sampler.c: the stacks of running
 * coroutines, by signal.
 */
#ifndef LEASH_SNAPSHOT_H
#define LEASH_SNAPSHOT_H

#include "internal.h"

#define SNAP_MAX_FRAMES 64
#define SNAP_MAX_WCHANS 8

/* Walks that read another coroutine's stack while it may run: racy by
 * design (g->nresume tells a torn walk, whose values are dropped), so
 * the sanitizers are told not to look: TSan would call it a race, ASan a
 * use after scope when the coroutine has resumed and left the frame a
 * wait record points into (a select's case list). */
#if defined(LEASH_TSAN)
#define RACY_READS __attribute__((no_sanitize_thread, noinline))
#elif defined(LEASH_ASAN)
#define RACY_READS __attribute__((no_sanitize_address, noinline))
#else
#define RACY_READS
#endif

/* One coroutine in a snapshot. */
typedef struct dgor {
    int64_t id, parent_id;
    int64_t scope;      /* leak scope (g->scope: leash_leak_scope) */
    int state;          /* G_* */
    int reason;         /* WR_* (meaningful while waiting) */
    int64_t wait_ns;    /* how long it has waited, -1 if not waiting */
    const char *spawn_file;
    int spawn_line;
    uintptr_t spawn_pc; /* return address in the creating function */
    char name[32];
    int nlabels;        /* interned strings: valid for good */
    const char *label_key[LEASH_MAX_LABELS];
    const char *label_val[LEASH_MAX_LABELS];
    bool self;          /* the coroutine taking the snapshot */
    bool system;        /* the runtime's own (g->system), not a name */
    int nframes;
    uintptr_t *pcs;     /* nframes return addresses, leaf first (an
                         * interrupted leaf: its pc + 1), in the
                         * snapshot's frame blocks; NULL if none */
    /* What it waits on. */
    bool has_chan;
    lobj *chan_pin;     /* pinned until read (NULL after) */
    struct {
        int64_t id;
        const char *file;
        int line;
        int len, cap, nsend, nrecv;
        int64_t refs;
        int detached;       /* of which detached (leash_ref_detach) */
        bool signals;       /* fed by leash_signal_notify */
        bool closed, dead;
        bool orphaned;
        uintptr_t orphan_pc;
        int64_t orphan_by;
        bool orphan_exit;
        bool orphan_park;     /* proven as a holder parked (orphan_pc) */
        uintptr_t drop_pc;    /* an explicit release before a proving  */
        int64_t drop_by;      /* return, 0 if none (see chan.c) */
        bool borrowed;
    } chan;
    int64_t mutex_owner;  /* holder of what it waits for (a mutex, or an
                           * rwmutex's writer, else one of its readers) */
    uintptr_t mutex_addr;
    int rw_readers;       /* rwmutex: readers inside */
    uintptr_t cond_addr;  /* cond wait: the cond (mutex_addr: its mutex) */
    int cycle_next;     /* the observer's: next in a wait-for cycle */
    bool select_nil;    /* a select whose channels are all NULL */
    bool io_deadline;   /* IO wait with a deadline */
    int leak;           /* the observer's: its classification (0 here) */
    int64_t hog_since;  /* running without yielding since (sysmon) */
    int64_t ctx_cancelled_at; /* a context it holds was cancelled then */
    int suspect;        /* the observer's (0 here) */
    /* For a proof over the snapshot (snapshot_recheck), read at capture. */
    uintptr_t gaddr;    /* its coroutine */
    uint32_t nresume;   /* re-read after the proof: it must not move */
    uint64_t nrecv;
    /* The channels it waits on (one for a plain wait, a select's cases):
     * addresses at capture, then indices in dsnap.chans; nw -1: more
     * than SNAP_MAX_WCHANS or unreadable (it counts as possibly live). */
    int nw;
    uintptr_t waddr[SNAP_MAX_WCHANS];
    int widx[SNAP_MAX_WCHANS];
    bool owner_outside; /* mutex/rwmutex: held by a plain thread, or by
                         * readers leash did not record */
    bool owner_self;    /* the mutex was just handed to it */
    bool live;          /* the observer's proof: possibly live; */
    bool ren_used;      /* counted as a renouncer (nrecv re-checked) */
} dgor;

/* A channel some coroutine of a snapshot waits on, as the proofs see it. */
typedef struct {
    uintptr_t addr;
    int64_t id;
    bool dead;          /* released entirely (a zombie) or gone */
    bool closed;
    bool orphaned;
    bool outside;       /* someone leash does not see may complete a wait:
                         * a detached or runtime reference, a plain thread,
                         * too many borrowers, signals, a buffered message */
    int nren;
    struct { int64_t id; uint64_t nrecv; } ren[4];
} dchan;


/* Frames are kept out of line, as many as each coroutine has: a parked
 * one has a handful, and SNAP_MAX_FRAMES in every record made a dump of
 * 100,000 coroutines ~90 MB of fresh pages. */
typedef struct dframes {
    struct dframes *next;
    size_t used, cap;
    uintptr_t pcs[];
} dframes;

typedef struct {
    dgor *g;
    int n;
    int64_t now;
    dframes *frames;    /* where the records' pcs point */
    dchan *chans;       /* the channels waited on (snapshot_read_chans) */
    int nchans;
} dsnap;

/* Copies every live coroutine into s (s->g, sorted by id, as Go lists
 * goroutines). self: the coroutine asking (marked, its frames walked
 * while parked). objects: also read the channels waited on (d->chan,
 * s->chans: snapshot_read_chans) and the cancelled contexts the waiters
 * hold (d->ctx_cancelled_at); without them no channel lock and no R.lock
 * is taken (every channel operation of a busy program takes them too).
 * LEASH_ENOMEM, or LEASH_EINVAL in a forked child. */
INTERNAL int snapshot_take(dsnap *s, coroutine *self, bool objects);
INTERNAL void snapshot_free(dsnap *s);
/* Whether, in the live registry now, every non-system coroutine of s
 * not marked live still waits without having resumed since its capture
 * (nresume), there are exactly nstuck of them, and every one marked
 * ren_used has received nothing since (nrecv): what makes a proof over a
 * snapshot, which is not taken at one instant, hold at one. One shard
 * lock at a time. */
INTERNAL bool snapshot_recheck(const dsnap *s, int nstuck);
/* The index in s->chans of the channel at addr, or -1; the record of
 * coroutine id (s sorted, as snapshot_take leaves it), or NULL. */
INTERNAL int snapshot_find_chan(const dsnap *s, uintptr_t addr);
INTERNAL dgor *snapshot_find_g(const dsnap *s, int64_t id);
/* sysmon: unmaps the record memory kept for the next snapshot once none
 * has used it for a while (snapshot.c, "record memory"). */
INTERNAL void snapshot_trim(int64_t now);
INTERNAL size_t snapshot_kept_bytes(void); /* tests */

/* sampler.c: the stack of g, running on worker w, by a signal to w; 0
 * frames if it stopped running before the signal came (answered at
 * once) or did not answer within 100 ms (signals blocked). */
INTERNAL int sampler_sample(worker *w, coroutine *g, uintptr_t *pcs, int max);

/* Several coroutines found running, sampled together (sampler.c): each
 * round signals every worker that still runs one and waits for all the
 * answers. recapture(arg, i) looks target i up again once it stopped
 * running: the worker it runs on now, or NULL (parked: captured as such,
 * or gone); hit(arg, i, pcs, n) gets the frames of a sampled one. */
typedef struct {
    coroutine *g;
    worker *w; /* NULL: done (sampled, gone, or cannot be) */
} sample_target;
INTERNAL void sampler_sample_all(sample_target *t, int n,
                                 worker *(*recapture)(void *arg, int i),
                                 void (*hit)(void *arg, int i,
                                             const uintptr_t *pcs, int npcs),
                                 void *arg);
/* The frames from pc (if any), then the frame-pointer chain from fp
 * within [lo, hi) (frames.c's fp_walk). */
static inline int walk_frames(uintptr_t pc, uintptr_t fp, uintptr_t lo,
                              uintptr_t hi, uintptr_t *pcs, int max) {
    int n = 0;
    if (pc && n < max)
        pcs[n++] = pc;
    return fp_walk(fp, lo, hi, pcs, n, max);
}

#endif /* LEASH_SNAPSHOT_H */
