/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c — copies of the live coroutines and of what they wait on,
 * for the layer above (snapshot.h).
 *
 * snapshot_take copies every live coroutine into a dgor record:
 * identity, state, what it waits on (with the wait object's details read
 * under its lock), and its stack as raw return addresses.
 *
 * Stacks. A parked coroutine's frames are walked from the frame pointer
 * its context switch saved (the library and its users build with frame
 * pointers; see docs). The walk runs while the coroutine may be resumed
 * on another worker: every frame pointer is checked to lie inside the
 * coroutine's stack and to grow upward, so a racing walk reads garbage at
 * worst, never outside mapped memory, and g->nresume (bumped at every
 * resume) tells a consistent walk from a torn one, which is retried.
 * A coroutine running on another worker is sampled by a signal to that
 * worker (sampler.c) once no lock is held.
 *
 * Lock order (src/lockrank.h). Under a shard lock only the g's own
 * fields are copied (and R.lock taken, innermost: pins, held contexts);
 * the channel path takes a shard lock under a channel lock (the orphan
 * proof's coro_alive), so channels are pinned there and read after the
 * shard lock is dropped, each under its own lock. Other wait objects are
 * read without locks (their owner words are atomics) while g waits on
 * them. snapshot_read_chans reads the channels a snapshot's coroutines
 * wait on with no lock held, pinning each and reading it under its own
 * lock (R.lock under it, in order); its buffer scan only tries other
 * channels' locks under R.lock, as borrowers.c does. snapshot_recheck
 * takes one shard lock at a time.
 */
#define _GNU_SOURCE 1
#include "snapshot.h"

#include <sys/mman.h>
#include <unistd.h>

#define WALK_TRIES 8 /* walks of a parked stack that raced with a resume */

/* ---------------------------------------------------------- parked stacks */

/* The frames of a switched-out coroutine: see switch_x86_64.S and
 * switch_aarch64.S for the layout at the saved stack pointer (the frame
 * pointer at [6], the return address at [7], on both). */
RACY_READS static int walk_parked(coroutine *g, uintptr_t *pcs, int max) {
    uintptr_t sp = (uintptr_t)g->sp;
    uintptr_t lo = (uintptr_t)g->stack->lo, hi = (uintptr_t)g;
    if (sp < lo || sp + 64 > hi)
        return 0;
    const uintptr_t *f = (const uintptr_t *)sp;
    return walk_frames(f[7], f[6], lo, hi, pcs, max);
}

/* ------------------------------------------------------- wait objects */

/* Copies c's state; c->lock held, or c pinned and its lock free. */
static void read_chan_locked(dgor *d, leash_chan *c) {
    d->chan.id = c->obj.id;
    d->chan.file = c->obj.file;
    d->chan.line = c->obj.line;
    d->chan.len = (int)c->count;
    d->chan.cap = (int)c->cap;
    d->chan.closed = c->closed;
    d->chan.dead = c->zombie ||
                   atomic_load(&c->obj.magic) != OBJ_MAGIC;
    d->chan.nsend = c->sendq.n; /* counts: O(1) per waiter, not O(queue) */
    d->chan.nrecv = c->recvq.n;
    /* Less the dump's own pin, if any: the count the program holds. */
    d->chan.refs = atomic_load(&c->obj.refs) - (d->chan_pin != NULL);
    d->chan.detached = atomic_load_explicit(&c->obj.ndetached,
                                            memory_order_relaxed);
    d->chan.signals = atomic_load_explicit(&c->signals,
                                           memory_order_relaxed) > 0;
    d->chan.orphaned = c->orphaned;
    d->chan.orphan_pc = (uintptr_t)c->orphan_pc;
    d->chan.orphan_by = c->orphan_by;
    d->chan.orphan_exit = c->orphan_exit;
    d->chan.orphan_park = c->orphan_park;
    d->chan.drop_pc = c->orphan_exit ? (uintptr_t)c->drop_pc : 0;
    d->chan.drop_by = c->drop_by;
    d->chan.borrowed = c->borrowed;
}

/* slock_try on a channel's lock, ranked as a channel lock whatever its
 * memory holds now (see note_chan). */
static bool chan_try_lock(leash_chan *c) {
    uint32_t z = 0;
    bool ok = atomic_compare_exchange_strong_explicit(
        &c->lock.v, &z, 1, memory_order_acquire, memory_order_relaxed);
    if (ok)
        lockrank_acquire(LR_CHAN, &c->lock, true);
    return ok;
}

/* The channel a parked g waits on, found under g's shard lock. Its lock
 * is not taken there: the channel path takes a shard lock under it
 * (the orphan proof's coro_alive), so that would deadlock. The channel
 * is pinned instead (R.lock, innermost, may be taken under a shard lock)
 * and read by snapshot_take once the shard lock is dropped. A channel
 * already destroyed (a zombie, whose memory lasts while waiters remain)
 * cannot be pinned: it is read at once if its lock is free -- trying
 * never waits, so it cannot deadlock -- or left out. */
static void note_chan(dgor *d, leash_chan *c, coroutine *g, uint32_t r1) {
    if (obj_try_pin(&c->obj)) {
        d->chan_pin = &c->obj;
        d->has_chan = true;
        return;
    }
    /* A zombie's memory lasts only while g still waits on it: once g has
     * moved on, it may be freed and made again (its lock re-made, with no
     * rank for a moment), so leave it out. That check can still race
     * with a resume, hence the lock is tried as the channel lock it was
     * (chan_try_lock), not by the rank it may hold now; the caller drops
     * what was read if g moved. */
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&g->nresume, memory_order_relaxed) != r1)
        return;
    for (int i = 0; i < 64; i++, cpu_relax())
        if (chan_try_lock(c)) {
            d->has_chan = true;
            read_chan_locked(d, c);
            slock_release(&c->lock);
            return;
        }
}

/* Reads and unpins the channels note_chan pinned (no lock held): first
 * those whose lock is free, then the others, so that a lock held by a
 * worker the OS preempted is waited for once, after everything else. */
static void read_pinned_chans(dsnap *snap) {
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < snap->n; i++) {
            dgor *d = &snap->g[i];
            lobj *o = d->chan_pin;
            if (!o)
                continue;
            if (d->has_chan) {
                leash_chan *c = (leash_chan *)o;
                if (pass == 0 && !slock_try(&c->lock))
                    continue;
                if (pass == 1)
                    slock_acquire(&c->lock);
                read_chan_locked(d, c);
                slock_release(&c->lock);
            }
            d->chan_pin = NULL;
            obj_unpin(o);
        }
    }
}

/* Everything but channels: read without locks (the owner words are
 * atomics), under g's shard lock while g waits on them. */
RACY_READS static void capture_wait_obj(dgor *d, coroutine *g, void *obj) {
    switch (d->reason) {
    case WR_MUTEX: {
        leash_mutex *mu = obj;
        coroutine *owner = mu ? __atomic_load_n(&mu->owner_, __ATOMIC_RELAXED)
                            : NULL;
        d->mutex_owner = owner ? owner->id : 0;
        d->mutex_addr = (uintptr_t)mu;
        /* No owner: an unlock in progress; itself: handed over, about to
         * run. A plain thread's: it may unlock (foreign g's are never
         * freed, so the flag reads safely). */
        d->owner_self = !owner || owner == g;
        d->owner_outside = owner && owner->foreign;
        break;
    }
    case WR_RWMUTEX_R:
    case WR_RWMUTEX_W: {
        leash_rwmutex *rw = obj;
        if (!rw) {
            d->owner_self = true;
            break;
        }
        coroutine *writer = __atomic_load_n(&rw->owner_, __ATOMIC_RELAXED);
        coroutine *owner = writer;
        int nrec = 0;
        bool self_reader = false;
        for (int i = 0; i < 4; i++) {
            coroutine *r = __atomic_load_n(&rw->rowners_[i], __ATOMIC_RELAXED);
            if (!r)
                continue;
            nrec++;
            d->owner_outside |= r->foreign;
            self_reader |= r == g;
            /* The cycle detector follows another reader than itself. */
            if (!owner || owner == g)
                owner = r;
        }
        d->mutex_owner = owner && owner != g ? owner->id : 0;
        d->mutex_addr = (uintptr_t)rw;
        d->rw_readers = rw_readers_inside(rw);
        d->owner_outside |= (writer && writer->foreign) ||
                            d->rw_readers > nrec; /* readers not recorded */
        if (d->reason == WR_RWMUTEX_W)
            d->owner_self = writer == g; /* let in, about to run */
        else if (self_reader) /* let in, or a recursive RLock? */
            d->owner_self = !rw_reader_queued(rw, g);
        if (!writer && !d->rw_readers)
            d->owner_self = true; /* free: a hand-over in progress */
        break;
    }
    case WR_COND: {
        cond_wait_obj *wo = obj;
        if (!wo)
            break;
        leash_mutex *mu = wo->mu;
        coroutine *owner = __atomic_load_n(&mu->owner_, __ATOMIC_RELAXED);
        d->cond_addr = (uintptr_t)wo->cond;
        d->mutex_addr = (uintptr_t)mu;
        d->mutex_owner = owner && owner != g ? owner->id : 0;
        break;
    }
    case WR_SELECT: {
        d->select_nil = obj == NULL;
        const select_wait_obj *so = obj;
        d->nw = so && so->n <= SNAP_MAX_WCHANS ? so->n : -1;
        for (int i = 0; i < d->nw; i++)
            d->waddr[i] = (uintptr_t)so->chans[i];
        break;
    }
    case WR_CHAN_SEND:
    case WR_CHAN_RECV:
        d->nw = obj ? 1 : -1;
        d->waddr[0] = (uintptr_t)obj;
        break;
    case WR_IO_WAIT:
        d->io_deadline = obj != NULL;
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------ capture */

static void set_wait_ns(dgor *d, coroutine *g, int64_t now) {
    int64_t since = atomic_load_explicit(&g->wait_since, memory_order_relaxed);
    d->wait_ns = d->state == G_WAITING && since ? now - since : -1;
    if (d->wait_ns < 0 && d->state == G_WAITING)
        d->wait_ns = 0;
}

/* d->pcs of a record without frames: never NULL, as the readers compare
 * and copy d->pcs[0..nframes) with memcmp and memcpy, which must not be
 * passed NULL even for 0 bytes (UBSan). */
static uintptr_t no_frames[1];

static void fill(dgor *d, coroutine *g, int64_t now, coroutine *self) {
    memset(d, 0, sizeof *d);
    d->pcs = no_frames;
    d->id = g->id;
    d->parent_id = g->parent_id;
    d->scope = __atomic_load_n(&g->scope, __ATOMIC_RELAXED); /* its owner sets it */
    d->state = atomic_load_explicit(&g->state, memory_order_acquire);
    d->reason = atomic_load_explicit(&g->wait_reason, memory_order_acquire);
    set_wait_ns(d, g, now);
    d->spawn_file = g->spawn_file;
    d->spawn_line = g->spawn_line;
    d->spawn_pc = (uintptr_t)g->spawn_pc;
    memcpy(d->name, g->name, sizeof d->name);
    d->name[sizeof d->name - 1] = 0;
    d->system = atomic_load_explicit(&g->system, memory_order_relaxed);
    d->nlabels = g->nlabels;
    memcpy(d->label_key, g->label_key, sizeof d->label_key);
    memcpy(d->label_val, g->label_val, sizeof d->label_val);
    d->self = g == self;
    if (d->self) /* it is parked only to have this dump written */
        d->state = G_RUNNING;
    d->hog_since = atomic_load_explicit(&g->hog_since, memory_order_relaxed);
    d->gaddr = (uintptr_t)g;
}

/* A g that has marked itself waiting runs on until its switch has
 * saved its stack pointer (g->sp is stale until then): its worker still
 * names it as current for most of that window. */
static bool still_on_cpu(coroutine *g) {
    worker *w = __atomic_load_n(&g->w, __ATOMIC_RELAXED);
    return w && __atomic_load_n(&w->cur, __ATOMIC_RELAXED) == g;
}

/* Gives d a copy of pcs[0..n) from the snapshot's frame blocks (none if
 * memory ran out: the record stays, without frames). */
static void keep_frames(dsnap *snap, dgor *d, const uintptr_t *pcs, int n) {
    d->nframes = 0;
    d->pcs = no_frames;
    if (n <= 0)
        return;
    dframes *b = snap->frames;
    if (!b || b->cap - b->used < (size_t)n) {
        size_t cap = 16384; /* 128 KiB: ~2,000 parked coroutines' frames */
        b = lmalloc(sizeof *b + sizeof *b->pcs * cap);
        if (!b)
            return;
        b->used = 0;
        b->cap = cap;
        b->next = snap->frames;
        snap->frames = b;
    }
    d->pcs = b->pcs + b->used;
    b->used += (size_t)n;
    memcpy(d->pcs, pcs, sizeof *pcs * (size_t)n);
    d->nframes = n;
}

/* The stack and wait of g if it is parked (g's shard lock held: it
 * cannot exit); false if it runs, or if every walk raced with a resume
 * (nresume moved: it switches faster than a walk; the caller samples it
 * by a signal then). The channel is pinned only once a walk held, and
 * dropped from the record if g moved even then (the pin itself goes in
 * read_pinned_chans: never under a shard lock, as dropping it may
 * destroy the channel). */
static bool capture_parked(dsnap *snap, dgor *d, coroutine *g, bool objects) {
    int64_t now = snap->now;
    uintptr_t pcs[SNAP_MAX_FRAMES];
    for (int tries = 0; tries < WALK_TRIES; tries++) {
        uint32_t r1 = atomic_load_explicit(&g->nresume, memory_order_acquire);
        int st = atomic_load_explicit(&g->state, memory_order_acquire);
        if (st == G_RUNNING || still_on_cpu(g)) {
            d->state = G_RUNNING;
            return false;
        }
        d->state = d->self ? G_RUNNING : st;
        d->reason = atomic_load(&g->wait_reason);
        set_wait_ns(d, g, now);
        int nframes = walk_parked(g, pcs, SNAP_MAX_FRAMES);
        d->ctx_cancelled_at = 0;
        d->nresume = r1;
        d->nrecv = atomic_load_explicit(&g->nrecv, memory_order_relaxed);
        d->nw = 0;
        d->owner_self = d->owner_outside = false;
        void *obj = atomic_load_explicit(&g->wait_obj, memory_order_relaxed);
        capture_wait_obj(d, g, obj);
        if (objects && st == G_WAITING && d->reason != WR_SELECT)
            d->ctx_cancelled_at = ctx_cancelled_held(g); /* R.lock */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&g->nresume, memory_order_relaxed) != r1)
            continue; /* torn: it ran meanwhile; try again */
        keep_frames(snap, d, pcs, nframes);
        if (objects && obj &&
            (d->reason == WR_CHAN_SEND || d->reason == WR_CHAN_RECV)) {
            note_chan(d, obj, g, r1);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&g->nresume, memory_order_relaxed) != r1)
                d->has_chan = false; /* moved on: the pin may be another's */
        }
        return true;
    }
    return false;
}

/* ------------------------------------------- the channels waited on */

static int cmp_addr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

int snapshot_find_chan(const dsnap *s, uintptr_t addr) {
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
            int x = snapshot_find_chan(bs->s, w);
            if (x >= 0)
                bs->s->chans[x].outside = true;
        }
        if (++k == d->cap)
            k = 0;
    }
    slock_release(&d->lock);
}

/* The channel records of a fresh snapshot (no lock held). */
static void snapshot_read_chans(dsnap *s) {
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
            s->g[i].widx[k] = snapshot_find_chan(s, s->g[i].waddr[k]);
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

/* ------------------------------------------------------------ snapshots */

/* A coroutine found running on another worker: sampled by a signal after
 * the shard walk (sampler_sample_all), and found again by its registry
 * slot if it stopped before the signal came. */
typedef struct {
    int idx;  /* its record */
    int slot; /* its registry slot */
} running_g;

#define MAX_RUNNING 64

typedef struct {
    dsnap *snap;
    coroutine *self;
    bool objects;       /* read the channels waited on */
    running_g running[MAX_RUNNING];
    sample_target target[MAX_RUNNING];
    int nrunning;
} capture_st;

/* Copies g (its shard lock held) into a new record. */
static void capture_one(capture_st *cs, coroutine *g) {
    dsnap *snap = cs->snap;
    dgor *d = &snap->g[snap->n++];
    fill(d, g, snap->now, cs->self);
    if (g == cs->self && g == sched_getg()) {
        uintptr_t pcs[SNAP_MAX_FRAMES];
        int n = walk_frames(0, (uintptr_t)__builtin_frame_address(0),
                            (uintptr_t)g->stack->lo, (uintptr_t)g, pcs,
                            SNAP_MAX_FRAMES);
        keep_frames(snap, d, pcs, n);
        return;
    }
    if (capture_parked(snap, d, g, cs->objects))
        return;
    worker *gw = __atomic_load_n(&g->w, __ATOMIC_RELAXED);
    if (cs->nrunning < MAX_RUNNING && gw) {
        cs->running[cs->nrunning] = (running_g){snap->n - 1, g->reg_slot};
        cs->target[cs->nrunning++] = (sample_target){g, gw};
    }
}

/* A running coroutine missed by its sample, looked up again: NULL if it
 * is parked now (captured as such) or gone, else the worker it runs on
 * (or ran on last, if no walk of it held). */
static worker *recapture(void *arg, int i) {
    capture_st *cs = arg;
    running_g *rg = &cs->running[i];
    dgor *d = &cs->snap->g[rg->idx];
    shard_t *sh = &G_shards[d->id % NSHARDS];
    worker *w = NULL;
    llock_acquire(&sh->lock);
    coroutine *g = rg->slot < sh->nslots ? sh->slots[rg->slot] : NULL;
    if (g == cs->target[i].g && g->id == d->id &&
        !capture_parked(cs->snap, d, g, cs->objects))
        w = __atomic_load_n(&g->w, __ATOMIC_RELAXED);
    llock_release(&sh->lock);
    return w;
}

/* The frames of a running coroutine, sampled. The interrupted pc is
 * exact; every consumer treats pcs as return addresses (looking up pc-1,
 * as Go does): pc+1. */
static void sampled(void *arg, int i, const uintptr_t *pcs, int n) {
    capture_st *cs = arg;
    dgor *d = &cs->snap->g[cs->running[i].idx];
    d->state = G_RUNNING;
    keep_frames(cs->snap, d, pcs, n);
    if (d->nframes > 0)
        d->pcs[0]++;
}

static int by_id(const void *a, const void *b) {
    const dgor *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* ------------------------------------------------------ record memory */

/* A dump of 100,000 coroutines writes ~58 MB of records, and memory fresh
 * from the kernel costs a page fault per 4 KiB, 15-20 us each on a VM
 * whose host backs the page then: most of such a dump's time. So the
 * last snapshot's record mapping is kept for the next one (recs_cache),
 * as Go keeps its heap, and given back to the kernel once no snapshot
 * has used it for RECS_KEEP_NS (snapshot_trim, from sysmon), as Go's
 * scavenger does. (MADV_FREE instead made the next dump slower still
 * on this VM: re-dirtying freed pages costs about a fault each.) One
 * mapping is kept; a snapshot taken while another holds it maps its
 * own. */
static _Atomic(size_t *) recs_cache; /* a mapping: its size, then room */
static _Atomic int64_t recs_used_at; /* when it was last given back */
#define RECS_HDR 64 /* the size word, padded; records follow */
#define RECS_KEEP_NS (10 * 1000000000LL)

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* Gives back the mapping g lies in: kept if nothing is kept yet, else
 * unmapped. */
static void recs_put(dgor *g) {
    if (!g)
        return;
    size_t *m = (size_t *)((char *)g - RECS_HDR), *none = NULL;
    atomic_store(&recs_used_at, leash_now());
    if (!atomic_compare_exchange_strong(&recs_cache, &none, m))
        munmap(m, *m);
}

size_t snapshot_kept_bytes(void) {
    size_t *m = atomic_load(&recs_cache);
    return m ? *m : 0;
}

void snapshot_trim(int64_t now) {
    if (atomic_load_explicit(&recs_cache, memory_order_relaxed) &&
        now - atomic_load(&recs_used_at) > RECS_KEEP_NS) {
        size_t *m = atomic_exchange(&recs_cache, NULL);
        if (m)
            munmap(m, *m);
    }
}

/* Room for at least n records (*cap: how many fit), from the kept
 * mapping if it is big enough, else a new one; NULL if none. */
static dgor *recs_get(size_t n, size_t *cap) {
    if (lalloc_should_fail())
        return NULL;
    size_t page = page_size();
    size_t want = (RECS_HDR + sizeof(dgor) * n + page - 1) / page * page;
    size_t *m = atomic_exchange(&recs_cache, NULL);
    if (m && *m < want) {
        munmap(m, *m);
        m = NULL;
    }
    if (!m) {
        m = mmap(NULL, want, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        *m = want;
    }
    *cap = (*m - RECS_HDR) / sizeof(dgor);
    return (dgor *)((char *)m + RECS_HDR);
}

/* Doubles snap's room for records (a shard lock may be held). */
static bool recs_grow(dsnap *snap, size_t *cap) {
    dgor *v = recs_get(*cap * 2, cap);
    if (!v)
        return false;
    memcpy(v, snap->g, sizeof *v * (size_t)snap->n);
    recs_put(snap->g);
    snap->g = v;
    return true;
}

/* See snapshot.h; the lock order at the top of this file. */
int snapshot_take(dsnap *snap, coroutine *self, bool objects) {
    *snap = (dsnap){.now = leash_now()}; /* snapshot_free-able from here */
    if (fork_refuse("a leash diagnostic"))
        return LEASH_EINVAL;
    size_t cap;
    snap->g = recs_get(leash_num_coroutines() + 64, &cap);
    if (!snap->g)
        return LEASH_ENOMEM;
    capture_st cs = {.snap = snap, .self = self, .objects = objects};
    for (int s = 0; s < NSHARDS; s++) {
        shard_t *sh = &G_shards[s];
        llock_acquire(&sh->lock);
        SHARD_FOR_EACH(sh, g) {
            if ((size_t)snap->n == cap && !recs_grow(snap, &cap))
                break;
            capture_one(&cs, g);
        }
        llock_release(&sh->lock);
    }
    sampler_sample_all(cs.target, cs.nrunning, recapture, sampled, &cs);
    /* Go lists goroutines in creation order: so do dumps. */
    qsort(snap->g, (size_t)snap->n, sizeof *snap->g, by_id);
    if (objects) {
        read_pinned_chans(snap);
        snapshot_read_chans(snap);
    }
    return 0;
}

void snapshot_free(dsnap *snap) {
    lfree(snap->chans);
    snap->chans = NULL;
    snap->nchans = 0;
    recs_put(snap->g);
    snap->g = NULL;
    snap->n = 0;
    while (snap->frames) {
        dframes *b = snap->frames;
        snap->frames = b->next;
        lfree(b);
    }
}

/* ---------------------------------------------------- proofs, re-checked */

dgor *snapshot_find_g(const dsnap *s, int64_t id) {
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

/* See snapshot.h. */
bool snapshot_recheck(const dsnap *s, int nstuck) {
    int seen = 0;
    bool ok = true;
    for (int sh_i = 0; sh_i < NSHARDS && ok; sh_i++) {
        shard_t *sh = &G_shards[sh_i];
        llock_acquire(&sh->lock);
        SHARD_FOR_EACH(sh, g) {
            const dgor *d = snapshot_find_g(s, g->id);
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
