/* SPDX-License-Identifier: MIT */
/*
 * dump.c — leash_dump and leash_leak_dump in Go's formats and leash's own.
 *
 *   debug=0  gzipped pprof profile.proto (pprof.c), one sample per stack
 *   debug=1  Go's aggregated goroutine profile text
 *   debug=2  Go's runtime.Stack(all) text (`goroutine N [reason, M minutes]:`)
 *   debug=3  leash's text: exact wait times, wait objects, spawn sites
 *   debug=4  a stable JSON document (docs/FORMATS.md)
 *
 * This file is the entry (diag_write, diag_format) and what the formats
 * share: a dump takes a snapshot (snapshot_take), classifies it when it
 * shows leaks (classify.c), and hands it to its format: dump_go.c
 * (debug=0, 1 and 2), dump_leash.c (debug=3) or dump_json.c (debug=4).
 *
 * Frames: a parked coroutine's stack starts inside the runtime. Go's
 * debug=2 hides runtime frames, so that format starts below the leash_*
 * call that blocked; debug=1, pprof and leash's format keep that call as
 * the top frame (it tells what blocks), and all drop the runtime's own
 * frames above it and the coroutine entry frames below the user's. Both
 * are recognised by address (the sections of src/common.h's LEASH_API
 * and ENTRY_FRAME), not by name.
 */
#include "dump.h"

#include <inttypes.h>

/* ------------------------------------------------------------ frames */

/* A frame as the dumps show it: a machine frame of leash's public API is
 * one frame, whatever the library inlined into it; the user's code shows
 * every inlined level, as Go does. Frames are told apart by address
 * (rt_pc_is_api), never by name: a user's function may be called
 * leash_anything. */
void diag_frame_sym(uintptr_t pc, dsym *s) {
    sym_lookup(pc, true, s);
    if (s->ncallers && rt_pc_is_api(pc)) {
        s->func = dsym_outer_func(s);
        s->callers = NULL;
        s->ncallers = 0;
    }
}

/* The frames of a stack worth showing: [*first, *first + return) of pcs.
 * The top is the deepest frame in a public function (rt_pc_is_api) among
 * the first 16 (the public call that blocked: internal frames above it
 * may be any function, and a public call may use another, as leash_dump
 * uses leash_blocking); with hide_api that frame is dropped too. The
 * stack ends before the first entry frame (rt_pc_is_entry) below it. */
int diag_trim_frames(const uintptr_t *pcs, int n, bool hide_api,
                     int *first) {
    int top = 0, api = -1;
    for (int i = 0; i < n && i < 16; i++)
        if (rt_pc_is_api(pcs[i]))
            api = i;
    if (api >= 0)
        top = hide_api ? api + 1 : api;
    int end = n;
    for (int i = top; i < n; i++) {
        if (rt_pc_is_entry(pcs[i])) {
            end = i;
            break;
        }
    }
    *first = top;
    return end > top ? end - top : 0;
}

/* The frames of d's stack a dump shows (diag_trim_frames). */
int diag_visible_frames(const dgor *d, bool hide_api, int *first) {
    return diag_trim_frames(d->pcs, d->nframes, hide_api, first);
}

const char *diag_state_str(const dgor *d) {
    switch (d->state) {
    case G_RUNNING: return "running";
    case G_RUNNABLE: return "runnable";
    case G_WAITING: return wait_reason_str(d->reason);
    case G_IDLE: return "idle";
    default: return "dead";
    }
}

/* One machine frame, two lines per source level: its inlined levels
 * first, without an offset (as Go prints them), the machine frame's
 * function last, with it. Go's form: `f(...)`; leash's: `  f`, and the
 * inlined levels marked. */
void diag_print_frame(FILE *out, uintptr_t pc, bool go) {
    dsym s;
    diag_frame_sym(pc, &s);
    for (int k = 0, n = dsym_levels(&s); k < n; k++) {
        dpos p = dsym_level(&s, k);
        fprintf(out, go ? "%s(...)\n\t%s:%d" : "  %s\n\t%s:%d", p.func,
                p.file ? p.file : "?", p.line);
        if (k == n - 1)
            fprintf(out, " +0x%" PRIxPTR, s.offset);
        else if (!go)
            fprintf(out, " (inlined)");
        fputc('\n', out);
    }
}

/* ------------------------------------------------------------- API */

int diag_format(FILE *out, int debug, const dsnap *s, const bool *sel,
                const char *profile) {
    int rc = 0;
    switch (debug) {
    case 0: rc = diag_write_go_pprof(out, s, sel, profile); break;
    case 1: rc = diag_print_go_profile(out, s, sel, profile); break;
    case 2:
        diag_print_go_stacks(out, s, sel,
                             profile && !strcmp(profile, "goroutineleak"));
        break;
    case 3: diag_print_leash(out, s, sel); break;
    case 4: diag_print_json(out, s, sel); break;
    default: return LEASH_EINVAL;
    }
    fflush(out);
    return rc;
}

typedef struct {
    FILE *out;
    int debug;
    bool leaked_only;
    coroutine *self;
} write_job;

static intptr_t write_on_thread(void *p) {
    write_job *j = p;
    dsnap s;
    bool *sel = NULL;
    /* Go's formats of all coroutines show no leak, suspect or wait object
     * (a leak dump's do): no classification, no channel read -- half the
     * time of a dump of parked coroutines. */
    bool plain = !j->leaked_only && j->debug <= 2;
    int rc = plain ? snapshot_take(&s, j->self, false)
                   : diag_capture_classified(&s, j->self, sizeof *sel,
                                             (void **)&sel);
    if (rc < 0)
        return rc;
    int n = s.n;
    if (j->leaked_only) {
        n = 0;
        for (int i = 0; i < s.n; i++)
            if ((sel[i] = s.g[i].leak != LEAK_NONE))
                n++;
    }
    rc = diag_format(j->out, j->debug, &s, j->leaked_only ? sel : NULL,
                     j->leaked_only ? "goroutineleak" : "goroutine");
    lfree(sel);
    snapshot_free(&s);
    return rc < 0 ? rc : n;
}

/* Symbolising with libdw needs far more stack than a coroutine has, so a
 * coroutine hands the work to a helper thread (leash_blocking) and parks;
 * its own frames are then walked like any parked coroutine's. */
intptr_t diag_on_thread(intptr_t (*fn)(void *), void *arg) {
    coroutine *g = sched_getg();
    if (g && !g->foreign)
        return leash_blocking(fn, arg);
    return fn(arg);
}

int diag_write(FILE *out, int debug, bool leaked_only) {
    if (!out || debug < 0 || debug > 4)
        return LEASH_EINVAL;
    if (sched_ensure_started() < 0)
        return LEASH_ENOMEM;
    write_job j = {out, debug, leaked_only, sched_getg()};
    return (int)diag_on_thread(write_on_thread, &j);
}

/* The function on top of d's stack as a person reads it: the caller of
 * the leash_* call that blocked (hide_api) or that call itself. */
const char *diag_top_func(const dgor *d, bool hide_api) {
    int first, n = diag_visible_frames(d, hide_api, &first);
    if (n <= 0)
        return "";
    dsym s;
    diag_frame_sym(d->pcs[first], &s);
    return s.func;
}

const char *diag_creator_func(const dgor *d) {
    dsym s;
    sym_lookup(d->spawn_pc, true, &s);
    return d->spawn_pc ? s.func : "";
}

API_FRAME int leash_dump(FILE *out, int debug) { return diag_write(out, debug, false); }

API_FRAME int leash_leak_dump(FILE *out, int debug) {
    return diag_write(out, debug, true);
}
