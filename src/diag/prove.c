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
 * Locks: diag_read_chans runs with no lock held, pins each channel and
 * reads it under its own lock (R.lock under it, in order); the buffer
 * scan only tries other channels' locks under R.lock, as borrowers.c
 * does. The re-check takes one shard lock at a time.
 */
#include "diag.h"

/* ------------------------------------------------------------ channels */

static int cmp_addr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

static int find_chan(const dsnap *s, uintptr_t addr) {
    int lo = 0, hi = s->nchans - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (s->chans[mid].addr == addr)
            return mid;
        if (s->chans[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

typedef struct {
    dchan *c;
    bool valid[4];
    bool ctx_inside; /* a done channel only coroutines can close */
} holders_scan;

static bool note_holder(coroutine *h, void *arg) {
    holders_scan *hs = arg;
    /* The runtime (a timer), a detached reference, a plain thread: each
     * may use the channel whatever the coroutines do. */
    if ((!h && !hs->ctx_inside) || h == &obj_detached_holder ||
        (h && h->foreign))
        hs->c->outside = true;
    for (int i = 0; h && i < hs->c->nren; i++)
        if (hs->c->ren[i].id == h->id)
            hs->valid[i] = false; /* took a reference again */
    return true;
}

static void read_chan(dchan *dc) {
    lobj *o = obj_check((void *)dc->addr, OBJ_CHAN);
    if (!o || !obj_try_pin(o)) {
        dc->dead = true; /* released: no operation on it can complete */
        return;
    }
    leash_chan *c = (leash_chan *)o;
    slock_acquire(&c->lock);
    /* A context's done channel: its runtime reference is the context's,
     * which only its holders can cancel when it has no timer and no
     * parent but the background. Read under c->lock, under which the
     * context's destruction clears ctx_of (it was read before the lock,
     * and a context freed and made again meanwhile was read as it was
     * being built: TSan, stress_observer). No context lock is taken. */
    leash_ctx *ctx = __atomic_load_n(&c->ctx_of, __ATOMIC_RELAXED);
    bool ctx_inside = ctx && ctx_cancelled_only_by_coroutines(ctx);
    dc->id = o->id;
    dc->closed = c->closed;
    dc->dead = c->zombie;
    dc->orphaned = c->orphaned;
    dc->outside = atomic_load_explicit(&o->ndetached, memory_order_relaxed) ||
                  atomic_load_explicit(&c->signals, memory_order_relaxed) > 0;
    if (c->borrowed) {
        if (c->nborrowers > 2)
            dc->outside = true; /* untracked borrowers: a thread maybe */
        for (int i = 0; i < c->nborrowers && i < 2; i++)
            if (c->borrower[i] == 0)
                dc->outside = true; /* a plain thread used it */
    }
    dc->nren = c->nrenounced;
    for (int i = 0; i < c->nrenounced; i++) {
        dc->ren[i].id = c->renounced[i].id;
        dc->ren[i].nrecv = c->renounced[i].nrecv;
    }
    holders_scan hs = {dc, {true, true, true, true}, ctx_inside};
    obj_all_holders(o, note_holder, &hs);
    int n = 0;
    for (int i = 0; i < dc->nren; i++)
        if (hs.valid[i])
            dc->ren[n++] = dc->ren[i];
    dc->nren = n;
    slock_release(&c->lock);
    obj_unpin(o);
}

/* Marks outside every snapshot channel whose address a buffered message
 * holds (a message in flight: whoever receives it gets the channel). */
typedef struct {
    dsnap *s;
    bool busy;
} buf_scan;

static void scan_buffer(lobj *o, void *arg) {
    buf_scan *bs = arg;
    leash_chan *d = (leash_chan *)o;
    if (bs->busy || o->type != OBJ_CHAN || d->elem_size < sizeof(uintptr_t) ||
        !d->cap)
        return;
    int tries = 0;
    while (!slock_try(&d->lock)) { /* out of lock order: only try */
        if (++tries == 128) {
            bs->busy = true;
            return;
        }
        cpu_relax();
    }
    for (size_t i = 0, k = d->recvx; i < d->count; i++) {
        const char *e = d->buf + k * d->elem_size;
        for (size_t off = 0; off + sizeof(uintptr_t) <= d->elem_size;
             off += sizeof(uintptr_t)) {
            uintptr_t w;
            memcpy(&w, e + off, sizeof w);
            int x = find_chan(bs->s, w);
            if (x >= 0)
                bs->s->chans[x].outside = true;
        }
        if (++k == d->cap)
            k = 0;
    }
    slock_release(&d->lock);
}

void diag_read_chans(dsnap *s) {
    int n = 0;
    for (int i = 0; i < s->n; i++)
        if (s->g[i].nw > 0)
            n += s->g[i].nw;
    if (!n)
        return;
    uintptr_t *v = lmalloc(sizeof *v * (size_t)n);
    if (!v)
        goto unknown;
    n = 0;
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < s->g[i].nw; k++)
            v[n++] = s->g[i].waddr[k];
    qsort(v, (size_t)n, sizeof *v, cmp_addr);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!m || v[m - 1] != v[i])
            v[m++] = v[i];
    s->chans = lcalloc((size_t)m, sizeof *s->chans);
    if (!s->chans) {
        lfree(v);
        goto unknown;
    }
    s->nchans = m;
    for (int i = 0; i < m; i++)
        s->chans[i].addr = v[i];
    lfree(v);
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < s->g[i].nw; k++)
            s->g[i].widx[k] = find_chan(s, s->g[i].waddr[k]);
    for (int i = 0; i < m; i++)
        read_chan(&s->chans[i]);
    buf_scan bs = {s, false};
    obj_foreach(scan_buffer, &bs);
    if (bs.busy)
        for (int i = 0; i < m; i++)
            s->chans[i].outside = true;
    return;
unknown: /* out of memory: nothing about channels is proven */
    for (int i = 0; i < s->n; i++)
        if (s->g[i].nw > 0)
            s->g[i].nw = -1;
}

/* ------------------------------------------------------------ fixpoint */

static dgor *find_g(dsnap *s, int64_t id) {
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (s->g[mid].id == id)
            return &s->g[mid];
        if (s->g[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

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
        dgor *r = find_g(f->s, c->ren[i].id);
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

/* Every coroutine proven stuck still waits, never resumed since its
 * capture; every renouncer counted received nothing since. */
static bool recheck(dsnap *s, int nstuck) {
    int seen = 0;
    bool ok = true;
    for (int sh_i = 0; sh_i < NSHARDS && ok; sh_i++) {
        shard_t *sh = &G_shards[sh_i];
        llock_acquire(&sh->lock);
        SHARD_FOR_EACH(sh, g) {
            dgor *d = find_g(s, g->id);
            if (!d || d->system)
                continue;
            if (!d->live) {
                seen++;
                if (atomic_load_explicit(&g->state, memory_order_acquire) !=
                        G_WAITING ||
                    atomic_load_explicit(&g->nresume, memory_order_acquire) !=
                        d->nresume) {
                    ok = false;
                    break;
                }
            } else if (d->ren_used &&
                       atomic_load_explicit(&g->nrecv, memory_order_acquire) !=
                           d->nrecv) {
                ok = false;
                break;
            }
        }
        llock_release(&sh->lock);
    }
    return ok && seen == nstuck;
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
    if (!nstuck || !recheck(s, nstuck)) {
        for (int i = 0; i < s->n; i++)
            s->g[i].live = true; /* nothing new proven from this one */
        return;
    }
    for (int i = 0; i < s->n; i++)
        if (!s->g[i].live && !s->g[i].leak)
            s->g[i].leak = LEAK_STUCK;
}
