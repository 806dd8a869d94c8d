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
 * Frames: a parked coroutine's stack starts inside the runtime. Go's
 * debug=2 hides runtime frames, so that format starts below the leash_*
 * call that blocked; debug=1, pprof and leash's format keep that call as
 * the top frame (it tells what blocks), and all drop the runtime's own
 * frames above it and the coroutine entry frames below the user's. Both
 * are recognised by address (the sections of src/internal.h's LEASH_API
 * and ENTRY_FRAME), not by name.
 */
#include "diag.h"
#include "quote.h"

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

static int visible_frames(const dgor *d, bool hide_api, int *first) {
    return diag_trim_frames(d->pcs, d->nframes, hide_api, first);
}

static const char *state_str(const dgor *d) {
    switch (d->state) {
    case G_RUNNING: return "running";
    case G_RUNNABLE: return "runnable";
    case G_WAITING: return wait_reason_str(d->reason);
    case G_IDLE: return "idle";
    default: return "dead";
    }
}

static const char *leak_str(int k) {
    switch (k) {
    case LEAK_NIL_CHAN: return "blocked forever on a nil channel";
    case LEAK_ORPHAN: return "orphaned: nobody can ever use its channel";
    case LEAK_DEADLOCK: return "deadlocked: a wait-for cycle";
    case LEAK_STUCK:
        return "stuck: nothing that can still run can complete its wait";
    default: return "";
    }
}

/* ------------------------------------------------------------ proofs */

static int find_id(const dsnap *s, int64_t id) {
    for (int i = 0; i < s->n; i++)
        if (s->g[i].id == id)
            return i;
    return -1;
}

/* Wait-for cycles through owned mutexes: each waits for a mutex the next
 * one holds, and the last for one the first holds. Only a cycle the
 * fixpoint proved stuck is one (diag_prove): a live coroutine may unlock
 * a mutex it does not own. */
static bool stuck(const dgor *d) {
    return d->leak == LEAK_STUCK || d->leak == LEAK_DEADLOCK;
}

static void find_mutex_cycles(dsnap *s) {
    for (int i = 0; i < s->n; i++) {
        int cur = i;
        for (int steps = 0; steps <= s->n; steps++) {
            dgor *d = &s->g[cur];
            if (d->state != G_WAITING || !d->mutex_owner || !stuck(d) ||
                (d->reason != WR_MUTEX && d->reason != WR_RWMUTEX_R &&
                 d->reason != WR_RWMUTEX_W))
                break;
            int next = find_id(s, d->mutex_owner);
            if (next < 0)
                break;
            if (next == i) { /* back where we started: a cycle */
                int k = i;
                do {
                    dgor *x = &s->g[k];
                    x->leak = LEAK_DEADLOCK;
                    x->cycle_next = find_id(s, x->mutex_owner);
                    k = x->cycle_next;
                } while (k != i && k >= 0);
                break;
            }
            cur = next;
        }
    }
}

/* Marks what the snapshot proves leaked (docs/DESIGN-NOTES.md, "Leak
 * rules"): nil channels and released or orphaned channels at once, then
 * the possibly-live fixpoint (prove.c), whose mutex cycles are named. */
void diag_classify(dsnap *s) {
    for (int i = 0; i < s->n; i++) {
        dgor *d = &s->g[i];
        d->leak = LEAK_NONE;
        d->suspect = SUSPECT_NONE;
        d->cycle_next = -1;
        if (d->state != G_WAITING)
            continue;
        switch (d->reason) {
        case WR_CHAN_SEND_NIL:
        case WR_CHAN_RECV_NIL:
        case WR_SELECT_NO_CASES:
            d->leak = LEAK_NIL_CHAN;
            break;
        case WR_SELECT:
            if (d->select_nil)
                d->leak = LEAK_NIL_CHAN;
            break;
        case WR_CHAN_SEND:
        case WR_CHAN_RECV:
            /* Released while it waited: every operation on it is now
             * LEASH_EINVAL, so nobody can complete this one. */
            if (d->has_chan && (d->chan.dead || d->chan.orphaned))
                d->leak = LEAK_ORPHAN;
            break;
        default:
            break;
        }
    }
    diag_prove(s);
    find_mutex_cycles(s);
    for (int i = 0; i < s->n; i++) {
        dgor *d = &s->g[i];
        if (d->leak || d->state != G_WAITING)
            continue;
        if (d->reason == WR_IO_WAIT && !d->io_deadline)
            d->suspect = SUSPECT_IO_NO_DEADLINE;
        else if (d->ctx_cancelled_at && !d->self && d->reason != WR_SYSCALL)
            d->suspect = SUSPECT_CANCELED_BLOCKED;
    }
    for (int i = 0; i < s->n; i++)
        if (s->g[i].state == G_RUNNING && s->g[i].hog_since)
            s->g[i].suspect = SUSPECT_HOG;
}

const char *diag_suspect_str(int k) {
    switch (k) {
    case SUSPECT_HOG: return "runs without yielding (endless loop?)";
    case SUSPECT_IO_NO_DEADLINE: return "waits for I/O with no deadline";
    case SUSPECT_CANCELED_BLOCKED:
        return "its context is canceled but it still waits on something else";
    default: return "";
    }
}

/* ------------------------------------------------------ Go: debug=2 */

/* One machine frame, two lines per source level: its inlined levels
 * first, without an offset (as Go prints them), the machine frame's
 * function last, with it. Go's form: `f(...)`; leash's: `  f`, and the
 * inlined levels marked. */
static void print_frame(FILE *out, uintptr_t pc, bool go) {
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

static void print_created_by(FILE *out, const dgor *d) {
    if (!d->spawn_pc || !d->spawn_file)
        return; /* leash_run's main coroutine: Go prints none for main */
    dsym s;
    sym_lookup(d->spawn_pc, true, &s);
    /* Go's form always names a goroutine; 0 is a plain thread. */
    fprintf(out, "created by %s in goroutine %" PRId64 "\n", s.func,
            d->parent_id);
    const char *file = d->spawn_file ? d->spawn_file : s.file;
    int line = d->spawn_file ? d->spawn_line : s.line;
    fprintf(out, "\t%s:%d +0x%" PRIxPTR "\n", file ? file : "?", line,
            s.offset);
}

/* Go 1.26 marks a goroutine its leak detector found in its header, after
 * the wait reason: `goroutine 7 [chan send (leaked)]:`; the leak
 * profile's does too (marked: the goroutineleak profile). */
static void dump_go_stacks(FILE *out, const dsnap *s, const bool *sel,
                           bool marked) {
    for (int i = 0; i < s->n; i++) {
        const dgor *d = &s->g[i];
        if (sel && !sel[i])
            continue;
        fprintf(out, "goroutine %" PRId64 " [%s", d->id, state_str(d));
        if (marked && d->leak)
            fprintf(out, " (leaked)");
        if (d->state == G_WAITING && d->wait_ns >= INT64_C(60000000000))
            fprintf(out, ", %" PRId64 " minutes", d->wait_ns / INT64_C(60000000000));
        fprintf(out, "]:\n");
        int first, n = visible_frames(d, true, &first);
        for (int k = 0; k < n; k++)
            print_frame(out, d->pcs[first + k], true);
        print_created_by(out, d);
        fputc('\n', out);
    }
}

/* ------------------------------------------------------ Go: debug=1 */

typedef struct {
    const uintptr_t *pcs;
    int n;
    int64_t count;
    const dgor *d; /* a representative, for its labels */
} stackgroup;

static bool same_labels(const dgor *a, const dgor *b) {
    if (a->nlabels != b->nlabels)
        return false;
    for (int i = 0; i < a->nlabels; i++) {
        int k = 0;
        while (k < b->nlabels && b->label_key[k] != a->label_key[i])
            k++;
        if (k == b->nlabels || b->label_val[k] != a->label_val[i])
            return false; /* interned: pointers compare */
    }
    return true;
}

static int group_stacks(const dsnap *s, const bool *sel, stackgroup **out) {
    stackgroup *gs = lmalloc(sizeof *gs * (size_t)(s->n ? s->n : 1));
    if (!gs)
        return LEASH_ENOMEM;
    int ng = 0;
    for (int i = 0; i < s->n; i++) {
        const dgor *d = &s->g[i];
        if (sel && !sel[i])
            continue;
        int first, n = visible_frames(d, false, &first);
        const uintptr_t *pcs = d->pcs + first;
        int k = 0;
        for (; k < ng; k++)
            if (gs[k].n == n &&
                !memcmp(gs[k].pcs, pcs, sizeof *pcs * (size_t)n) &&
                same_labels(gs[k].d, d))
                break;
        if (k == ng)
            gs[ng++] = (stackgroup){pcs, n, 0, d};
        gs[k].count++;
    }
    /* Most frequent first, as Go prints them. */
    for (int i = 1; i < ng; i++) {
        stackgroup x = gs[i];
        int j = i - 1;
        while (j >= 0 && gs[j].count < x.count) {
            gs[j + 1] = gs[j];
            j--;
        }
        gs[j + 1] = x;
    }
    *out = gs;
    return ng;
}

static int dump_go_profile(FILE *out, const dsnap *s, const bool *sel,
                           const char *name) {
    stackgroup *gs;
    int ng = group_stacks(s, sel, &gs);
    if (ng < 0)
        return ng;
    int64_t total = 0;
    for (int i = 0; i < ng; i++)
        total += gs[i].count;
    fprintf(out, "%s profile: total %" PRId64 "\n", name, total);
    for (int i = 0; i < ng; i++) {
        fprintf(out, "%" PRId64 " @", gs[i].count);
        for (int k = 0; k < gs[i].n; k++)
            fprintf(out, " 0x%" PRIxPTR, gs[i].pcs[k]);
        fputc('\n', out);
        const dgor *d = gs[i].d;
        if (d->nlabels) { /* sorted by key, as Go prints them */
            int ord[LEASH_MAX_LABELS];
            for (int k = 0; k < d->nlabels; k++) {
                int j = k;
                while (j > 0 && strcmp(d->label_key[ord[j - 1]],
                                       d->label_key[k]) > 0) {
                    ord[j] = ord[j - 1];
                    j--;
                }
                ord[j] = k;
            }
            fprintf(out, "# labels: {"); /* Go: %q:%q */
            for (int k = 0; k < d->nlabels; k++) {
                fputs(k ? ", " : "", out);
                quote_go(out, d->label_key[ord[k]]);
                fputc(':', out);
                quote_go(out, d->label_val[ord[k]]);
            }
            fprintf(out, "}\n");
        }
        for (int k = 0; k < gs[i].n; k++) {
            dsym sy;
            diag_frame_sym(gs[i].pcs[k], &sy);
            for (int v = 0; v < dsym_levels(&sy); v++) { /* Go: a line
                                                          * per inlined level */
                dpos p = dsym_level(&sy, v);
                fprintf(out, "#\t0x%" PRIxPTR "\t%s+0x%" PRIxPTR "\t%s:%d\n",
                        gs[i].pcs[k] - 1, p.func, sy.offset,
                        p.file ? p.file : "?", p.line);
            }
        }
        fputc('\n', out);
    }
    lfree(gs);
    return 0;
}

static int dump_pprof(FILE *out, const dsnap *s, const bool *sel,
                      const char *profile) {
    stackgroup *gs;
    int ng = group_stacks(s, sel, &gs);
    if (ng < 0)
        return ng;
    dsample *samples = lcalloc((size_t)(ng ? ng : 1), sizeof *samples);
    if (!samples) {
        lfree(gs);
        return LEASH_ENOMEM;
    }
    for (int i = 0; i < ng; i++)
        samples[i] = (dsample){.pcs = gs[i].pcs, .npcs = gs[i].n,
                               .count = gs[i].count,
                               .label_keys = gs[i].d->label_key,
                               .label_vals = gs[i].d->label_val,
                               .nlabels = gs[i].d->nlabels};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int rc = pprof_write_goroutine(out, samples, ng,
                                   (int64_t)ts.tv_sec * 1000000000 +
                                       ts.tv_nsec,
                                   profile);
    lfree(samples);
    lfree(gs);
    return rc;
}

/* ------------------------------------------------------ leash: debug=3 */

static void fmt_duration(char *buf, size_t n, int64_t ns) {
    int64_t ms = ns / 1000000;
    int64_t h = ms / 3600000, m = ms / 60000 % 60, sec = ms / 1000 % 60;
    if (h)
        snprintf(buf, n, "%" PRId64 "h%" PRId64 "m%" PRId64 ".%03" PRId64 "s",
                 h, m, sec, ms % 1000);
    else if (m)
        snprintf(buf, n, "%" PRId64 "m%" PRId64 ".%03" PRId64 "s", m, sec,
                 ms % 1000);
    else
        snprintf(buf, n, "%" PRId64 ".%03" PRId64 "s", sec, ms % 1000);
}

void diag_print_orphan_cause(FILE *out, const dgor *d) {
    if (!d->has_chan || !d->chan.orphaned)
        return;
    dsym s;
    sym_lookup(d->chan.orphan_pc, !d->chan.orphan_exit, &s);
    if (d->chan.orphan_pc && d->chan.orphan_park)
        fprintf(out, "    orphaned when goroutine %" PRId64 " parked on it in %s "
                     "at %s:%d, every holder then blocked on it\n",
                d->chan.orphan_by, s.func, s.file ? s.file : "?", s.line);
    else if (d->chan.orphan_pc && d->chan.orphan_exit)
        fprintf(out, "    orphaned by goroutine %" PRId64 " returning from %s "
                     "(%s:%d) while still holding it\n",
                d->chan.orphan_by, s.func, s.file ? s.file : "?", s.line);
    else if (d->chan.orphan_pc)
        fprintf(out, "    orphaned by goroutine %" PRId64 " releasing it in %s at %s:%d\n",
                d->chan.orphan_by, s.func, s.file ? s.file : "?", s.line);
    else
        fprintf(out, "    orphaned by goroutine %" PRId64 "\n", d->chan.orphan_by);
    /* The proof came with a holder's return (the winner of a race, say),
     * but somebody had let go of the channel before: that release is
     * usually the bug, and which of the two came last is a race. */
    if (d->chan.orphan_exit && d->chan.drop_pc) {
        sym_lookup(d->chan.drop_pc, true, &s);
        fprintf(out, "    after goroutine %" PRId64 " released it in %s at %s:%d\n",
                d->chan.drop_by, s.func, s.file ? s.file : "?", s.line);
    }
}

static void print_wait_obj(FILE *out, const dgor *d) {
    if (d->has_chan) {
        fprintf(out,
                "    waiting on chan#%" PRId64 " made at %s:%d (%s%d/%d, "
                "%d sender(s), %d receiver(s) waiting, %s, %" PRId64
                " reference(s)%s",
                d->chan.id, d->chan.file ? d->chan.file : "?", d->chan.line,
                d->chan.cap ? "buffered " : "unbuffered ", d->chan.len,
                d->chan.cap, d->chan.nsend, d->chan.nrecv,
                d->chan.closed ? "closed" : "open", d->chan.refs,
                d->chan.dead ? ", released" : "");
        if (d->chan.detached)
            fprintf(out, ", %d detached", d->chan.detached);
        fprintf(out, ")\n");
    } else if (d->reason == WR_MUTEX) {
        dsym sy; /* a global mutex has a name in the symbol table */
        sym_lookup(d->mutex_addr, false, &sy);
        fprintf(out, "    waiting on mutex %s%s%#" PRIxPTR "%s held by goroutine %" PRId64
                     "\n",
                strcmp(sy.func, "?") ? sy.func : "",
                strcmp(sy.func, "?") ? " (" : "", d->mutex_addr,
                strcmp(sy.func, "?") ? ")" : "", d->mutex_owner);
    } else if (d->reason == WR_RWMUTEX_R || d->reason == WR_RWMUTEX_W) {
        dsym sy;
        sym_lookup(d->mutex_addr, false, &sy);
        bool named = strcmp(sy.func, "?") != 0;
        fprintf(out, "    waiting on rwmutex %s%s%#" PRIxPTR "%s (%d reader(s) inside%s",
                named ? sy.func : "", named ? " (" : "", d->mutex_addr,
                named ? ")" : "", d->rw_readers,
                d->mutex_owner ? ", held by goroutine " : "");
        if (d->mutex_owner)
            fprintf(out, "%" PRId64, d->mutex_owner);
        fprintf(out, ")\n");
    } else if (d->reason == WR_COND && d->cond_addr) {
        dsym sy;
        sym_lookup(d->cond_addr, false, &sy);
        fprintf(out, "    waiting on cond %s%s%#" PRIxPTR "%s with mutex %#" PRIxPTR
                     "\n",
                strcmp(sy.func, "?") ? sy.func : "",
                strcmp(sy.func, "?") ? " (" : "", d->cond_addr,
                strcmp(sy.func, "?") ? ")" : "", d->mutex_addr);
    } else if (d->reason == WR_IO_WAIT) {
        fprintf(out, "    waiting for I/O %s\n",
                d->io_deadline ? "with a deadline" : "with no deadline");
    }
}

static void print_growing_sites(FILE *out) {
    dsite v[8];
    int n = diag_sites(v, 8);
    for (int i = 0; i < n; i++)
        if (v[i].growing)
            fprintf(out, "SUSPECT: coroutines spawned at %s:%d keep growing "
                         "(%" PRId64 " live)\n\n",
                    v[i].file, v[i].line, v[i].live);
}

void diag_print_leash(FILE *out, const dsnap *s, const bool *sel) {
    if (!sel)
        print_growing_sites(out);
    for (int i = 0; i < s->n; i++) {
        const dgor *d = &s->g[i];
        if (sel && !sel[i])
            continue;
        fprintf(out, "goroutine %" PRId64, d->id);
        if (d->name[0]) {
            fputc(' ', out);
            quote_go(out, d->name);
        }
        fprintf(out, " [%s", state_str(d));
        if (d->state == G_WAITING) {
            char dur[48];
            fmt_duration(dur, sizeof dur, d->wait_ns);
            fprintf(out, ", %s", dur);
        } else if (d->state == G_RUNNING && d->hog_since) {
            char dur[48];
            fmt_duration(dur, sizeof dur, s->now - d->hog_since);
            fprintf(out, ", %s without yielding", dur);
        }
        fprintf(out, "]:");
        if (d->leak)
            fprintf(out, " LEAKED (%s)", leak_str(d->leak));
        else if (d->suspect)
            fprintf(out, " SUSPECT (%s)", diag_suspect_str(d->suspect));
        fputc('\n', out);
        if (d->suspect == SUSPECT_CANCELED_BLOCKED) {
            char dur[48];
            fmt_duration(dur, sizeof dur, s->now - d->ctx_cancelled_at);
            fprintf(out, "    a context it holds was canceled %s ago\n", dur);
        }
        if (d->nlabels) {
            fprintf(out, "    labels:");
            for (int k = 0; k < d->nlabels; k++) {
                fputc(' ', out);
                quote_token(out, d->label_key[k]);
                fputc('=', out);
                quote_token(out, d->label_val[k]);
            }
            fputc('\n', out);
        }
        print_wait_obj(out, d);
        diag_print_orphan_cause(out, d);
        if (d->cycle_next >= 0) {
            /* d waits for a mutex held by the next one, and so on back. */
            fprintf(out, "    wait-for cycle: goroutine %" PRId64, d->id);
            const dgor *cur = d;
            for (int steps = 0; steps < s->n && cur->cycle_next >= 0; steps++) {
                const dgor *next = &s->g[cur->cycle_next];
                fprintf(out, " -> %s %#" PRIxPTR " -> goroutine %" PRId64,
                        cur->reason == WR_MUTEX ? "mutex" : "rwmutex",
                        cur->mutex_addr, next->id);
                cur = next;
                if (cur == d)
                    break;
            }
            fputc('\n', out);
        }
        if (d->spawn_file || d->spawn_pc) {
            dsym sy;
            sym_lookup(d->spawn_pc, true, &sy);
            fprintf(out, "    spawned at %s:%d in %s by goroutine %" PRId64 "\n",
                    d->spawn_file ? d->spawn_file : (sy.file ? sy.file : "?"),
                    d->spawn_file ? d->spawn_line : sy.line, sy.func,
                    d->parent_id);
        }
        int first, n = visible_frames(d, false, &first);
        for (int k = 0; k < n; k++)
            print_frame(out, d->pcs[first + k], false);
        fputc('\n', out);
    }
}

/* ------------------------------------------------------ leash: JSON */


/* The release that orphaned d's channel, inside its wait_obj. */
static void json_orphan(FILE *out, const dgor *d) {
    if (!d->chan.orphaned)
        return;
    dsym sy;
    sym_lookup(d->chan.orphan_pc, !d->chan.orphan_exit, &sy);
    fprintf(out, ",\"orphaned_by\":{\"goroutine\":%" PRId64
                 ",\"at_exit\":%s,\"func\":",
            d->chan.orphan_by, d->chan.orphan_exit ? "true" : "false");
    quote_json(out, d->chan.orphan_pc ? sy.func : NULL);
    fprintf(out, ",\"file\":");
    quote_json(out, sy.file);
    fprintf(out, ",\"line\":%d", sy.line);
    if (d->chan.orphan_exit && d->chan.drop_pc) {
        sym_lookup(d->chan.drop_pc, true, &sy);
        fprintf(out, ",\"after_release\":{\"goroutine\":%" PRId64 ",\"func\":",
                d->chan.drop_by);
        quote_json(out, sy.func);
        fprintf(out, ",\"file\":");
        quote_json(out, sy.file);
        fprintf(out, ",\"line\":%d}", sy.line);
    }
    fputc('}', out);
}

static const char *state_key(const dgor *d) {
    switch (d->state) {
    case G_RUNNING: return "running";
    case G_RUNNABLE: return "runnable";
    case G_WAITING: return "waiting";
    default: return "idle";
    }
}

static const char *leak_key(int k) {
    switch (k) {
    case LEAK_NIL_CHAN: return "nil_chan";
    case LEAK_ORPHAN: return "orphan";
    case LEAK_DEADLOCK: return "deadlock";
    case LEAK_STUCK: return "stuck";
    default: return NULL;
    }
}

static void dump_json(FILE *out, const dsnap *s, const bool *sel) {
    fprintf(out, "{\"format\":\"leash-dump/1\",\"monotonic_ns\":%" PRId64
                 ",\"coroutines\":[",
            s->now);
    bool firstg = true;
    for (int i = 0; i < s->n; i++) {
        const dgor *d = &s->g[i];
        if (sel && !sel[i])
            continue;
        fprintf(out, "%s\n{\"id\":%" PRId64 ",\"parent\":%" PRId64 ",\"name\":",
                firstg ? "" : ",", d->id, d->parent_id);
        firstg = false;
        quote_json(out, d->name);
        fprintf(out, ",\"state\":\"%s\",\"labels\":{", state_key(d));
        for (int k = 0; k < d->nlabels; k++) {
            if (k)
                fputc(',', out);
            quote_json(out, d->label_key[k]);
            fputc(':', out);
            quote_json(out, d->label_val[k]);
        }
        fputc('}', out);
        if (d->state == G_WAITING) {
            fprintf(out, ",\"wait_reason\":");
            quote_json(out, wait_reason_str(d->reason));
            fprintf(out, ",\"wait_ns\":%" PRId64, d->wait_ns);
        }
        fprintf(out, ",\"leak\":");
        quote_json(out, leak_key(d->leak));
        fprintf(out, ",\"suspect\":");
        quote_json(out, d->suspect == SUSPECT_HOG ? "hog"
                      : d->suspect == SUSPECT_IO_NO_DEADLINE ? "io_no_deadline"
                      : d->suspect == SUSPECT_CANCELED_BLOCKED
                          ? "canceled_blocked"
                          : NULL);
        dsym sy;
        sym_lookup(d->spawn_pc, true, &sy);
        fprintf(out, ",\"spawn\":{\"file\":");
        quote_json(out, d->spawn_file ? d->spawn_file : sy.file);
        fprintf(out, ",\"line\":%d,\"func\":",
                d->spawn_file ? d->spawn_line : sy.line);
        quote_json(out, sy.func);
        fputc('}', out);
        if (d->has_chan)
            fprintf(out,
                    ",\"wait_obj\":{\"kind\":\"chan\",\"id\":%" PRId64
                    ",\"len\":%d,\"cap\":%d,\"senders\":%d,\"receivers\":%d,"
                    "\"closed\":%s,\"released\":%s,\"refs\":%" PRId64
                    ",\"line\":%d,\"file\":",
                    d->chan.id, d->chan.len, d->chan.cap, d->chan.nsend,
                    d->chan.nrecv, d->chan.closed ? "true" : "false",
                    d->chan.dead ? "true" : "false", d->chan.refs,
                    d->chan.line),
                quote_json(out, d->chan.file), json_orphan(out, d),
                fputc('}', out);
        else if (d->reason == WR_MUTEX && d->state == G_WAITING)
            fprintf(out, ",\"wait_obj\":{\"kind\":\"mutex\",\"owner\":%" PRId64
                         "}",
                    d->mutex_owner);
        fprintf(out, ",\"frames\":[");
        int first, n = visible_frames(d, false, &first);
        for (int k = 0; k < n; k++) {
            diag_frame_sym(d->pcs[first + k], &sy);
            for (int v = 0, nv = dsym_levels(&sy); v < nv; v++) {
                dpos p = dsym_level(&sy, v);
                fprintf(out, "%s{\"pc\":\"0x%" PRIxPTR "\",\"func\":",
                        k || v ? "," : "", d->pcs[first + k]);
                quote_json(out, p.func);
                fprintf(out, ",\"file\":");
                quote_json(out, p.file);
                fprintf(out, ",\"line\":%d", p.line);
                if (v < nv - 1)
                    fprintf(out, ",\"inlined\":true");
                fputc('}', out);
            }
        }
        fprintf(out, "]}");
    }
    fprintf(out, "\n]}\n");
}

/* ------------------------------------------------------------- API */

int diag_format(FILE *out, int debug, const dsnap *s, const bool *sel,
                const char *profile) {
    int rc = 0;
    switch (debug) {
    case 0: rc = dump_pprof(out, s, sel, profile); break;
    case 1: rc = dump_go_profile(out, s, sel, profile); break;
    case 2:
        dump_go_stacks(out, s, sel,
                       profile && !strcmp(profile, "goroutineleak"));
        break;
    case 3: diag_print_leash(out, s, sel); break;
    case 4: dump_json(out, s, sel); break;
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
    int first, n = visible_frames(d, hide_api, &first);
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
