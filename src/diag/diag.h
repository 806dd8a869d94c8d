/* SPDX-License-Identifier: MIT */
/*
 * diag.h — the diagnostics' internal interfaces.
 *
 * A dump works on a snapshot: an array of dgor records copied out of the
 * live coroutines (capture.c), each with its frames as raw return
 * addresses. Formatters (dump.c and its dump_*.c, dump.h; pprof.c)
 * symbolise those addresses through symbolize.c, which caches what it
 * resolved.
 */
#ifndef LEASH_DIAG_H
#define LEASH_DIAG_H

#include "../internal.h"

#include <stdio.h>

#define DIAG_MAX_FRAMES 64
#define DIAG_MAX_WCHANS 8

/* ------------------------------------------------------------- capture.c */

enum leak_kind {
    LEAK_NONE = 0,
    LEAK_NIL_CHAN,   /* blocked on a NULL channel, or select with none */
    LEAK_ORPHAN,     /* its channel can never be used again */
    LEAK_DEADLOCK,   /* part of a global deadlock */
    LEAK_STUCK,      /* nothing that can still act can complete its wait
                      * (the possibly-live fixpoint, prove.c) */
};

/* One coroutine in a snapshot. */
typedef struct dgor {
    int64_t id, parent_id;
    int64_t scope;      /* leak scope (leakcheck.c) */
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
    uintptr_t pcs[DIAG_MAX_FRAMES]; /* return addresses, leaf first (an
                                     * interrupted leaf: its pc + 1) */
    /* What it waits on. */
    bool has_chan;
    lobj *chan_pin;     /* capture.c: pinned until read (NULL after) */
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
    int cycle_next;     /* index of the next coroutine in its wait-for
                         * cycle (LEAK_DEADLOCK), -1 if none */
    bool select_nil;    /* a select whose channels are all NULL */
    bool io_deadline;   /* IO wait with a deadline */
    int leak;           /* enum leak_kind, set by diag_classify */
    int64_t hog_since;  /* running without yielding since (sysmon) */
    int64_t ctx_cancelled_at; /* a context it holds was cancelled then */
    int suspect;        /* enum suspect_kind, set by diag_classify */
    /* For the possibly-live fixpoint (prove.c), read at capture. */
    uintptr_t gaddr;    /* its coroutine */
    uint32_t nresume;   /* re-read after the proof: it must not move */
    uint64_t nrecv;
    /* The channels it waits on (one for a plain wait, a select's cases):
     * addresses at capture, then indices in dsnap.chans; nw -1: more
     * than DIAG_MAX_WCHANS or unreadable (it counts as possibly live). */
    int nw;
    uintptr_t waddr[8];
    int widx[8];
    bool owner_outside; /* mutex/rwmutex: held by a plain thread, or by
                         * readers leash did not record */
    bool owner_self;    /* the mutex was just handed to it */
    bool live;          /* possibly live (fixpoint result) */
    bool ren_used;      /* counted as a renouncer: its nrecv is re-read */
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

enum suspect_kind {
    SUSPECT_NONE = 0,
    SUSPECT_HOG,          /* running without yielding (endless loop?) */
    SUSPECT_IO_NO_DEADLINE,
    SUSPECT_CANCELED_BLOCKED, /* its context is done, it still waits */
};

typedef struct {
    dgor *g;
    int n;
    int64_t now;
    dchan *chans;       /* the channels waited on (prove.c) */
    int nchans;
} dsnap;

/* self: the coroutine asking (marked, its frames walked while parked).
 * objects: also read the channels waited on (d->chan, snap->chans) and
 * the cancelled contexts the waiters hold (d->ctx_cancelled_at): what
 * diag_classify and leash's own formats need; without them a capture
 * takes neither channel locks nor R.lock (which every channel operation
 * of a busy program takes too), for Go's formats of a plain dump. */
INTERNAL int diag_capture(dsnap *snap, coroutine *self, bool objects);
INTERNAL void diag_snap_free(dsnap *snap);
INTERNAL void diag_snap_sort(dsnap *snap); /* by id, as Go lists them */
INTERNAL void diag_classify(dsnap *snap);
/* prove.c: the channel records of a fresh capture (no lock held), and
 * the possibly-live fixpoint over it: marks LEAK_STUCK what nothing
 * that can still act can complete, if the proof re-checks. */
INTERNAL void diag_read_chans(dsnap *snap);
INTERNAL void diag_prove(dsnap *snap);
/* diag_capture then diag_classify, and a zeroed array of one elem_size
 * element per captured coroutine in *per_g (lfree it, then
 * diag_snap_free). On failure nothing is left allocated. */
INTERNAL int diag_capture_classified(dsnap *snap, coroutine *self,
                                     size_t elem_size, void **per_g);
INTERNAL const char *diag_suspect_str(int kind);
INTERNAL int diag_write(FILE *out, int debug, bool leaked_only);
INTERNAL intptr_t diag_on_thread(intptr_t (*fn)(void *), void *arg);
/* Formats the selected records (sel NULL: all) of a snapshot. */
INTERNAL int diag_format(FILE *out, int debug, const dsnap *s,
                         const bool *sel, const char *profile_name);
INTERNAL void diag_print_leash(FILE *out, const dsnap *s, const bool *sel);
INTERNAL void diag_print_orphan_cause(FILE *out, const dgor *d);
INTERNAL const char *diag_top_func(const dgor *d, bool hide_api);
INTERNAL const char *diag_creator_func(const dgor *d);

/* --------------------------------------------------------------- sites.c */

typedef struct {
    const char *file;
    int line;
    int64_t live;   /* live coroutines spawned there, at the last sample */
    bool growing;   /* rose at each of the last samples */
} dsite;
INTERNAL int diag_sites(dsite *out, int max);
INTERNAL bool diag_site_growing(const char *file, int line);

/* ------------------------------------------------------------ livepage.c */

#define LIVE_SITES 8 /* sites kept per sample of the live page's ring */
/* sysmon (sites_sample): coroutines by state (running, runnable,
 * waiting: the user's) and the busiest spawn sites, most first; kept
 * every LIVE_PERIOD in a bounded ring. */
INTERNAL void live_sample(int64_t now, const int64_t states[3],
                          const dsite *top, int n);

/* ------------------------------------------------------------ symbolize.c */

/* One level of a frame whose code was inlined: a function, and the line
 * in it where the level below was called (inlined). */
typedef struct {
    const char *func;
    const char *file;   /* NULL if unknown */
    int line;           /* 0 if unknown */
    int start_line;     /* line of func's declaration, 0 if unknown */
} dpos;
#define DSYM_MAX_INLINE 8 /* levels kept beyond the innermost */

/* What an address resolves to. Strings (and the callers array) are owned
 * by the symbol cache and stay valid for the life of the process.
 *
 * Where pc lies in code the compiler inlined, one machine frame is
 * several source frames, as in Go's tracebacks: `func`/`file`/`line` are
 * the innermost function's, and `callers` the functions it was inlined
 * into, innermost first, each with the line of the inlined call; the last
 * of them is the function of the machine frame (the symbol). */
typedef struct {
    const char *func;   /* function name, "?" if unknown */
    const char *file;   /* source file (absolute if known), NULL if unknown */
    int line;           /* 0 if unknown */
    int start_line;     /* line func is declared at (DW_AT_decl_line; for
                         * an inlined function its abstract origin's),
                         * 0 if unknown: pprof's Function.start_line */
    uintptr_t offset;   /* pc - start of the machine frame's function */
    const char *module; /* path of the object file, NULL if unknown */
    const dpos *callers; /* inlined into these; NULL when ncallers == 0 */
    int ncallers;
} dsym;

/* The function of the machine frame: the outermost level. */
static inline const char *dsym_outer_func(const dsym *s) {
    return s->ncallers ? s->callers[s->ncallers - 1].func : s->func;
}

/* Level k of s (0: innermost, dsym_levels(s) - 1: the machine frame). */
static inline int dsym_levels(const dsym *s) { return 1 + s->ncallers; }
static inline dpos dsym_level(const dsym *s, int k) {
    return k == 0 ? (dpos){s->func, s->file, s->line, s->start_line} : s->callers[k - 1];
}

/* Resolves pc (a return address: looks up pc-1 for the line, as Go does
 * for return addresses; `is_return` false for an exact pc). Thread-safe;
 * never fails: unknown parts are filled as documented above. */
INTERNAL void sym_lookup(uintptr_t pc, bool is_return, dsym *out);
INTERNAL int sym_threads(void); /* libdw's resolver thread: 0 or 1 */
/* The function whose code holds file:line (a creation site), or NULL. */
INTERNAL const char *sym_func_at_line(const char *file, int line);
/* sym_lookup of a return address as the dumps show the frame: leash's own
 * machine frames as one level, the user's with their inlined levels. */
INTERNAL void diag_frame_sym(uintptr_t pc, dsym *s);
/* The frames of pcs[0..n) (return addresses, leaf first) a dump shows:
 * from the public call that blocked (or below it, hide_api) down to the
 * coroutine's entry; *first is the first shown, the count is returned.
 * By address: a user's function may have any name. dump.c. */
INTERNAL int diag_trim_frames(const uintptr_t *pcs, int n, bool hide_api,
                              int *first);

/* ------------------------------------------------------------- profiles */

/* One sample of a goroutine-style profile: a stack (leaf first) and a
 * count, with optional key=value labels. */
typedef struct {
    const uintptr_t *pcs; /* return addresses, leaf first */
    int npcs;
    int64_t count;
    int64_t value;        /* the second value, if the profile has two */
    const char *const *label_keys;
    const char *const *label_vals;
    int nlabels;
} dsample;

/* Writes a gzipped pprof profile.proto (google/pprof's format) for a
 * goroutine profile named `type` ("goroutine" or "goroutineleak"): sample
 * type TYPE/"count", period type TYPE/"count", period 1 (as Go writes its
 * count profiles, goroutineleak/count in Go 1.26), the given samples, with locations,
 * functions and mappings (from /proc/self/maps) so that
 * `go tool pprof -raw` and `-top` read it. `time_ns` is the wall-clock
 * time of collection. Returns 0 or a negative LEASH_E* / -errno. */
INTERNAL int pprof_write_goroutine(FILE *out, const dsample *samples, int n,
                                   int64_t time_ns, const char *type);

/* Any profile: one or two sample types (count, then value, of each
 * sample), a period type and period, collection time and duration. */
typedef struct {
    const char *sample_type[2], *sample_unit[2];
    int nvalues;
    const char *period_type, *period_unit;
    int64_t period;
    int64_t time_ns, duration_ns; /* duration 0: omitted */
} pprof_spec;
INTERNAL int pprof_write(FILE *out, const pprof_spec *spec,
                         const dsample *samples, int n);

/* ------------------------------------- what observer.c hooks to the core */
/* The core calls none of these: src/diag/observer.c puts them in
 * observer_impl (src/observer.h), the table the core calls through. */
INTERNAL void leakcheck_install(void);   /* at runtime start */
INTERNAL void leakcheck_after_run(void); /* after leash_run's main */
INTERNAL void sigdump_install(void);
INTERNAL void sigdump_process(void);     /* sysmon */
INTERNAL void sites_sample(int64_t now); /* sysmon, once a second */
INTERNAL bool deadlock_check(void);      /* sysmon, when all workers idle */
/* Samples the stack of g running on w by a signal (capture.c). */
INTERNAL int diag_sample_running(worker *w, coroutine *g, uintptr_t *pcs,
                                 int max);
INTERNAL void orphan_report(int64_t chan_id, FILE *out);
INTERNAL void orphan_act(leash_chan *c, int64_t id, int policy);
/* g waited since g->prof_t0 and runs again: the block event (g's
 * wait_reason still set). Clears prof_t0. */
INTERNAL void contention_wait_end(coroutine *g);
/* The current g hands a mutex to (or lets in) `waiter`, still parked:
 * the mutex event, on the unlocker's stack. */
INTERNAL void contention_unlock(coroutine *waiter);
INTERNAL void contention_env_init(void); /* at runtime start */
INTERNAL void trace_event(worker *w, int kind, coroutine *g);
/* A switch away from g (parked, yielding or exiting: its state says) to
 * `to` (NULL: the scheduler). */
INTERNAL void trace_switch(worker *w, coroutine *g, coroutine *to);
INTERNAL void trace_label(worker *w, coroutine *g, const char *key,
                          const char *val);
/* At runtime start: LEASH_DEBUG_ADDR and LEASH_AGENT=1 (agent.c). Runs
 * once; called without the scheduler's start lock held. */
INTERNAL void debug_env_start(void);

#endif /* LEASH_DIAG_H */
