/* SPDX-License-Identifier: MIT */
/*
 * prove.c — the possibly-live fixpoint (docs/DESIGN-NOTES.md, "Leak
 * rules" and "Why leaks can be proven"), run on every snapshot the
 * leak profile, leash_leak_verify, the agent's `leaks` and the exit
 * check classify.
 *
 * A coroutine is *possibly live* if it runs or is runnable, sleeps,
 * waits for I/O, a leash_blocking call, a join, a group, a WaitGroup or
 * a Cond (a plain thread leash does not see may call Done or Signal), or
 * waits on something a possibly-live actor could still complete:
 *   - a channel: someone leash does not see may (a detached or runtime
 *     reference, a plain thread holding or using it, signals, the
 *     channel's address in a buffered message: dchan.outside), or a
 *     possibly-live coroutine that has not renounced it (any coroutine
 *     may have borrowed it through an argument, a global or the heap:
 *     leash cannot scan the heap, so it does not ask who has the
 *     pointer, only who could still act). A closed channel completes
 *     every wait; a released one (a zombie) none; one already proven
 *     orphaned none, unless LEASH_ORPHANS=wake wakes its waiters.
 *   - a select: any of its channels;
 *   - a Mutex or RWMutex: its owner is a plain thread (or a reader
 *     leash did not record), or any possibly-live coroutine exists (Go
 *     lets a goroutine unlock a mutex another locked: the owner record
 *     names who holds it, not who may unlock it).
 * Everything else blocked — on a nil channel, on channels and locks only
 * stuck coroutines could complete — is proven leaked (LEAK_STUCK): a
 * lone holder blocked on its own channel, two loops each blocked sending
 * to the other, a select whose every case is stuck, an RWMutex
 * self-deadlock, a lock whose owner returned, waiters behind a cycle.
 *
 * The snapshot is not taken at one instant, so the proof is re-checked
 * against the live registry: every coroutine proven stuck must still be
 * waiting without having resumed since its capture (nresume), and every
 * live coroutine counted as a renouncer must have received nothing since
 * (nrecv). Then, at the re-check, all of them are blocked at once; no
 * live actor could act on their objects (by the rules above, read while
 * each was blocked), and by the induction of "Why leaks can be proven"
 * none can later. If the re-check fails nothing new is proven from this
 * snapshot (a leak check asks again).
 *
 * Locks: none. The channel records come with the snapshot (the core's
 * snapshot_take reads them, src/snapshot.c), and so does the re-check
 * (snapshot_recheck).
 */
#include "diag.h"

/* ------------------------------------------------------------ fixpoint */

/* Whether d may still act without another coroutine's help. */
static bool base_live(const dgor *d) {
    if (d->state != G_WAITING)
        return true;
    switch (d->reason) {
    case WR_CHAN_SEND_NIL:
    case WR_CHAN_RECV_NIL:
    case WR_SELECT_NO_CASES:
        return false;
    case WR_CHAN_SEND:
    case WR_CHAN_RECV:
        return d->nw != 1 || d->widx[0] < 0;
    case WR_SELECT:
        if (d->select_nil)
            return false;
        if (d->nw < 0)
            return true;
        for (int k = 0; k < d->nw; k++)
            if (d->widx[k] < 0)
                return true;
        return false;
    case WR_MUTEX:
    case WR_RWMUTEX_R:
    case WR_RWMUTEX_W:
        return d->owner_self || d->owner_outside;
    default: /* asleep, I/O, a helper, a join, a WaitGroup, a Cond... */
        return true;
    }
}

typedef struct {
    dsnap *s;
    int nlive; /* possibly-live user coroutines */
    bool wake;
} fix_st;

/* Whether some possibly-live actor could complete a wait on channel k. */
static bool chan_completable(fix_st *f, int k) {
    dchan *c = &f->s->chans[k];
    if (c->dead)
        return false;
    if (c->closed || c->outside)
        return true;
    if (c->orphaned)
        return f->wake;
    /* Every possibly-live coroutine could use c, but one that renounced
     * it (released its reference, received nothing since). */
    int renouncers = 0;
    for (int i = 0; i < c->nren; i++) {
        dgor *r = snapshot_find_g(f->s, c->ren[i].id);
        if (r && r->live && !r->system && r->nrecv == c->ren[i].nrecv) {
            renouncers++;
            r->ren_used = true;
        }
    }
    return f->nlive > renouncers;
}

static bool completable(fix_st *f, const dgor *d) {
    switch (d->reason) {
    case WR_CHAN_SEND:
    case WR_CHAN_RECV:
        return chan_completable(f, d->widx[0]);
    case WR_SELECT:
        for (int k = 0; k < d->nw; k++)
            if (chan_completable(f, d->widx[k]))
                return true;
        return false;
    case WR_MUTEX:
    case WR_RWMUTEX_R:
    case WR_RWMUTEX_W:
        return f->nlive > 0;
    default:
        return false;
    }
}

void diag_prove(dsnap *s) {
    fix_st f = {s, 0, orphan_policy() == ORPHANS_WAKE};
    for (int i = 0; i < s->n; i++) {
        dgor *d = &s->g[i];
        d->ren_used = false;
        d->live = d->system || base_live(d);
        f.nlive += d->live && !d->system;
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < s->n; i++) {
            dgor *d = &s->g[i];
            if (!d->live && completable(&f, d)) {
                d->live = true;
                f.nlive++;
                changed = true;
            }
        }
    }
    int nstuck = 0;
    for (int i = 0; i < s->n; i++)
        nstuck += !s->g[i].live;
    if (!nstuck || !snapshot_recheck(s, nstuck)) {
        for (int i = 0; i < s->n; i++)
            s->g[i].live = true; /* nothing new proven from this one */
        return;
    }
    for (int i = 0; i < s->n; i++)
        if (!s->g[i].live && !s->g[i].leak)
            s->g[i].leak = LEAK_STUCK;
}
