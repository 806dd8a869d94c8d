/* SPDX-License-Identifier: MIT */
/*
 * dump_json.c — the dump as a stable JSON document (debug=4, format
 * "leash-dump/1", docs/FORMATS.md): every coroutine with its state, labels,
 * wait, verdicts, spawn site, wait object and frames.
 */
#include "dump.h"
#include "quote.h"

#include <inttypes.h>

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

void diag_print_json(FILE *out, const dsnap *s, const bool *sel) {
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
        int first, n = diag_visible_frames(d, false, &first);
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
