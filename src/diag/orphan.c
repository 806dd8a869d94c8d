/* SPDX-License-Identifier: MIT */
/*
 * orphan.c — the report of a channel proven orphaned, and what the
 * policy (LEASH_ORPHANS, src/orphan.c: the core's queue) asks of the
 * diagnostics: report prints it, wake captures it before the core wakes
 * the stranded coroutines, abort prints it and a full dump.
 */
#include "diag.h"

#include <inttypes.h>

/* The coroutines blocked on chan#id, captured (stacks walked, nothing
 * symbolised yet): what a report prints. */
typedef struct {
    dsnap s;
    bool *sel;
    int n;
    const dgor *first;
} report_snap;

static int report_capture(report_snap *r, int64_t chan_id) {
    memset(r, 0, sizeof *r);
    if (diag_capture_classified(&r->s, NULL, sizeof *r->sel,
                                (void **)&r->sel) < 0)
        return LEASH_ENOMEM;
    for (int i = 0; i < r->s.n; i++)
        if ((r->sel[i] = r->s.g[i].has_chan &&
                         r->s.g[i].chan.id == chan_id)) {
            r->n++;
            if (!r->first)
                r->first = &r->s.g[i];
        }
    return 0;
}

/* Prints (symbolising: the slow part) and frees what report_capture
 * took; returns how many coroutines it names. */
static int report_print(report_snap *r, int64_t chan_id, FILE *out) {
    if (r->first) {
        const dgor *first = r->first;
        fprintf(out,
                "leash: orphaned channel chan#%" PRId64 " (made at %s:%d): "
                "%d goroutine(s) blocked on it forever\n",
                chan_id, first->chan.file ? first->chan.file : "?",
                first->chan.line, r->n);
        diag_print_orphan_cause(out, first);
        fputc('\n', out);
        diag_print_leash(out, &r->s, r->sel);
        fflush(out);
    }
    lfree(r->sel);
    snapshot_free(&r->s);
    return r->n;
}

typedef struct {
    int64_t chan_id;
    FILE *out;
} report_job;

static intptr_t report_on_thread(void *p) {
    report_job *j = p;
    report_snap r;
    if (report_capture(&r, j->chan_id) < 0)
        return LEASH_ENOMEM;
    return report_print(&r, j->chan_id, j->out);
}

void orphan_report(int64_t chan_id, FILE *out) {
    report_job j = {chan_id, out};
    diag_on_thread(report_on_thread, &j);
}

/* observer_impl.orphaned: chan#id was proven orphaned and the policy
 * is report, wake or abort (src/orphan.c queued it; sysmon's thread). */
void orphan_act(leash_chan *c, int64_t id, int policy) {
    if (policy == ORPHANS_WAKE) {
        /* The report shows the waiters blocked, so it is captured
         * before they are woken; symbolising and printing it (most
         * of its cost, the first time by far) waits until they run
         * (docs/DESIGN-NOTES.md, "Proof latency"). On sysmon's
         * thread: no coroutine stack to spare. */
        report_snap r;
        bool captured = report_capture(&r, id) == 0;
        orphan_wake(c, id);
        if (captured)
            report_print(&r, id, stderr);
        return;
    }
    orphan_report(id, stderr);
    if (policy == ORPHANS_ABORT) {
        leash_dump(stderr, LEASH_DUMP_STACKS);
        fflush(stderr);
        abort();
    }
}
