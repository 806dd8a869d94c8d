/* SPDX-License-Identifier: MIT */
/*
 * diag.h — the diagnostics' internal interfaces.
 *
 * A dump works on a snapshot: an array of dgor records copied out of the
 * live coroutines by the core (snapshot_take, src/snapshot.h), each with
 * its frames as raw return addresses; the diagnostics take no core lock.
 * Formatters (dump.c and its dump_*.c, dump.h; pprof.c) symbolise those
 * addresses through symbolize.c, which caches what it resolved.
 */
#ifndef LEASH_DIAG_H
#define LEASH_DIAG_H

#include "../internal.h"
#include "../snapshot.h"

#include <stdio.h>

#define DIAG_MAX_FRAMES SNAP_MAX_FRAMES /* snapshot.h */
#define DIAG_MAX_WCHANS SNAP_MAX_WCHANS

/* ----------------------------------------------------- snapshots, proofs */

enum leak_kind {
    LEAK_NONE = 0,
    LEAK_NIL_CHAN,   /* blocked on a NULL channel, or select with none */
    LEAK_ORPHAN,     /* its channel can never be used again */
    LEAK_DEADLOCK,   /* part of a global deadlock */
    LEAK_STUCK,      /* nothing that can still act can complete its wait
                      * (the possibly-live fixpoint, prove.c) */
};

enum suspect_kind {
    SUSPECT_NONE = 0,
    SUSPECT_HOG,          /* running without yielding (endless loop?) */
    SUSPECT_IO_NO_DEADLINE,
    SUSPECT_CANCELED_BLOCKED, /* its context is done, it still waits */
};

INTERNAL void diag_classify(dsnap *snap);
/* prove.c: the possibly-live fixpoint over a snapshot taken with its
 * objects: marks LEAK_STUCK what nothing that can still act can
 * complete, if the proof re-checks (snapshot_recheck). */
INTERNAL void diag_prove(dsnap *snap);
/* snapshot_take (with objects) then diag_classify, and a zeroed array
 * of one elem_size element per captured coroutine in *per_g (lfree it,
 * then snapshot_free). On failure nothing is left allocated. */
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
