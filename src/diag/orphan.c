/* SPDX-License-Identifier: MIT */
/*
 * orphan.c — what happens when a channel is proven orphaned (chan.c
 * decides the proof): LEASH_ORPHANS=record|report|wake|abort.
 *
 *   record  (default) counted, and shown in dumps, the leak profile and
 *           the tools;
 *   report  also printed to stderr at that moment, naming the release
 *           that made it so and every coroutine it strands;
 *   wake    also wakes the stranded coroutines with LEASH_EORPHANED;
 *   abort   prints a full dump and aborts.
 */
#include "diag.h"

#include <inttypes.h>

int orphan_policy(void) {
    static _Atomic int policy = -1;
    int p = atomic_load_explicit(&policy, memory_order_relaxed);
    if (p >= 0)
        return p;
    const char *e = env_str("LEASH_ORPHANS");
    p = ORPHANS_RECORD;
    if (e && !strcmp(e, "report"))
        p = ORPHANS_REPORT;
    else if (e && !strcmp(e, "wake"))
        p = ORPHANS_WAKE;
    else if (e && !strcmp(e, "abort"))
        p = ORPHANS_ABORT;
    else if (e && *e && strcmp(e, "record"))
        fprintf(stderr, "leash: ignoring LEASH_ORPHANS=%s "
                        "(record|report|wake|abort)\n", e);
    atomic_store(&policy, p);
    return p;
}

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
    diag_snap_free(&r->s);
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

/* Channels proven orphaned, waiting for sysmon to act on the policy. */
static struct {
    llock lock;
    struct { leash_chan *c; int64_t id; } q[64];
    int n;
    int64_t dropped;
} OQ = {.lock = LLOCK_INIT(LR_ORPHANQ)};

void orphan_queue(leash_chan *c) {
    if (orphan_policy() == ORPHANS_RECORD)
        return; /* counted and shown in dumps: nothing to do now */
    llock_acquire(&OQ.lock);
    if (OQ.n < 64) {
        OQ.q[OQ.n].c = c;
        OQ.q[OQ.n].id = c->obj.id;
        OQ.n++;
    } else {
        OQ.dropped++;
    }
    llock_release(&OQ.lock);
    atomic_store(&S.orphans_queued, 1);
    sysmon_kick();
}

void orphan_process(void) {
    if (!atomic_exchange(&S.orphans_queued, 0))
        return;
    llock_acquire(&OQ.lock);
    int n = OQ.n;
    struct { leash_chan *c; int64_t id; } q[64];
    memcpy(q, OQ.q, sizeof q[0] * (size_t)n);
    OQ.n = 0;
    llock_release(&OQ.lock);
    int policy = orphan_policy();
    for (int i = 0; i < n; i++) {
        if (policy == ORPHANS_WAKE) {
            /* The report shows the waiters blocked, so it is captured
             * before they are woken; symbolising and printing it (most
             * of its cost, the first time by far) waits until they run
             * (docs/DESIGN-NOTES.md, "Proof latency"). On sysmon's
             * thread: no coroutine stack to spare. */
            report_snap r;
            bool captured = report_capture(&r, q[i].id) == 0;
            orphan_wake(q[i].c, q[i].id);
            if (captured)
                report_print(&r, q[i].id, stderr);
            continue;
        }
        orphan_report(q[i].id, stderr);
        if (policy == ORPHANS_ABORT) {
            leash_dump(stderr, LEASH_DUMP_STACKS);
            fflush(stderr);
            abort();
        }
    }
}
