/* SPDX-License-Identifier: MIT */
/*
 * orphan.c — what happens when a channel is proven orphaned (chan.c
 * decides the proof, borrowers.c keeps it sound):
 * LEASH_ORPHANS=record|report|wake|abort.
 *
 *   record  (default) counted, and shown in dumps, the leak profile and
 *           the tools;
 *   report  also printed to stderr at that moment, naming the release
 *           that made it so and every coroutine it strands;
 *   wake    also wakes the stranded coroutines with LEASH_EORPHANED;
 *   abort   prints a full dump and aborts.
 *
 * The policy and the queue are the core's: the prover may be a coroutine
 * about to park, holding the channel's lock, so it only queues the
 * channel; sysmon acts on it through observer_impl.orphaned (the report
 * is the diagnostics'; without them, observer_none.c still wakes and
 * aborts, with one line instead of a report).
 */
#include "internal.h"

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
    for (int i = 0; i < n; i++)
        observer_impl.orphaned(q[i].c, q[i].id, policy);
}
