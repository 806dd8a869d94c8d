/* SPDX-License-Identifier: MIT */
/*
 * classify.c — what a snapshot proves leaked and what it only suspects
 * (diag_classify), for the leak dumps, the leak profile, leash's own
 * formats and the tools (docs/DESIGN-NOTES.md, "Leak rules").
 *
 * Proven: blocked on a nil channel, waiting on a released or orphaned
 * channel, stuck by the possibly-live fixpoint (prove.c), and among the
 * stuck the wait-for cycles through owned mutexes. Suspected: a
 * coroutine that runs without yielding, waits for I/O with no deadline,
 * or still waits on something else once a context it holds is canceled.
 */
#include "diag.h"

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

int diag_capture_classified(dsnap *snap, coroutine *self, size_t elem_size,
                            void **per_g) {
    int rc = snapshot_take(snap, self, true);
    if (rc < 0)
        return rc;
    diag_classify(snap);
    *per_g = lcalloc((size_t)(snap->n ? snap->n : 1), elem_size);
    if (!*per_g) {
        snapshot_free(snap);
        return LEASH_ENOMEM;
    }
    return 0;
}
