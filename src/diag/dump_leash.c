/* SPDX-License-Identifier: MIT */
/*
 * dump_leash.c — leash's own text dump (debug=3, docs/FORMATS.md): Go's
 * goroutine headers with exact wait times (`goroutine 2 [chan send,
 * 0.040s]:`), LEAKED and SUSPECT verdicts (classify.c), labels, what each
 * coroutine waits on (channel, mutex, rwmutex, cond, I/O), why its
 * channel is orphaned, wait-for cycles, spawn sites, and frames with their
 * inlined levels.
 */
#include "dump.h"
#include "quote.h"

#include <inttypes.h>

/* ------------------------------------------------------ leash: debug=3 */

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

/* A mutex's or cond's address, with its name when the symbol table has
 * one (a global): "name (0x...)", else "0x...". */
static void print_sync_addr(FILE *out, uintptr_t addr) {
    dsym sy;
    sym_lookup(addr, false, &sy);
    if (strcmp(sy.func, "?") != 0)
        fprintf(out, "%s (%#" PRIxPTR ")", sy.func, addr);
    else
        fprintf(out, "%#" PRIxPTR, addr);
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
        fputs("    waiting on mutex ", out);
        print_sync_addr(out, d->mutex_addr);
        fprintf(out, " held by goroutine %" PRId64 "\n", d->mutex_owner);
    } else if (d->reason == WR_RWMUTEX_R || d->reason == WR_RWMUTEX_W) {
        fputs("    waiting on rwmutex ", out);
        print_sync_addr(out, d->mutex_addr);
        fprintf(out, " (%d reader(s) inside", d->rw_readers);
        if (d->mutex_owner)
            fprintf(out, ", held by goroutine %" PRId64, d->mutex_owner);
        fprintf(out, ")\n");
    } else if (d->reason == WR_COND && d->cond_addr) {
        fputs("    waiting on cond ", out);
        print_sync_addr(out, d->cond_addr);
        fprintf(out, " with mutex %#" PRIxPTR "\n", d->mutex_addr);
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
        fprintf(out, " [%s", diag_state_str(d));
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
        int first, n = diag_visible_frames(d, false, &first);
        for (int k = 0; k < n; k++)
            diag_print_frame(out, d->pcs[first + k], false);
        fputc('\n', out);
    }
}
