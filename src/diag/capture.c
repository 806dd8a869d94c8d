/* SPDX-License-Identifier: MIT */
/*
 * capture.c — snapshots of the live coroutines for the diagnostics.
 *
 * diag_capture copies every live coroutine into a dgor record: identity,
 * state, what it waits on (with the wait object's details read under its
 * lock), and its stack as raw return addresses.
 *
 * Stacks. A parked coroutine's frames are walked from the frame pointer
 * its context switch saved (the library and its users build with frame
 * pointers; see docs). The walk runs while the coroutine may be resumed
 * on another worker: every frame pointer is checked to lie inside the
 * coroutine's stack and to grow upward, so a racing walk reads garbage at
 * worst, never outside mapped memory, and g->nresume (bumped at every
 * resume) tells a consistent walk from a torn one, which is retried.
 * A coroutine running on another worker is sampled by a signal to that
 * worker (SIGURG, ignored by default, as Go uses it): the handler walks
 * from the interrupted context and only reads memory.
 *
 * Wait objects are type-stable (channels) or alive while a coroutine
 * waits on them (mutexes, wait groups), and their fields are read under
 * their own locks.
 */
#define _GNU_SOURCE 1
#include "diag.h"

#include <errno.h>
#include <signal.h>
#include <ucontext.h>

/* --------------------------------------------------------- frame walking */

/* The walks read another coroutine's stack while it may run: racy by
 * design (nresume tells a torn walk, whose values are dropped), so the
 * sanitizers are told not to look: TSan would call it a race, ASan a use
 * after scope when the coroutine has resumed and left the frame a wait
 * record points into (a select's case list). */
#if defined(LEASH_TSAN)
#define RACY_READS __attribute__((no_sanitize_thread, noinline))
#elif defined(LEASH_ASAN)
#define RACY_READS __attribute__((no_sanitize_address, noinline))
#else
#define RACY_READS
#endif

/* pc (if any), then the frame-pointer chain from fp within [lo, hi). */
static int walk_frames(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi,
                       uintptr_t *pcs, int max) {
    int n = 0;
    if (pc && n < max)
        pcs[n++] = pc;
    return fp_walk(fp, lo, hi, pcs, n, max);
}

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

/* ------------------------------------------------- running coroutines */

/* A request to sample the coroutine running on one worker, on the
 * requester's stack. The worker's signal handler claims it (takes it out
 * of the mailbox) and always answers: the frames if the target runs
 * there, else SAMPLE_MISSED -- it parked or moved before the signal came,
 * and the requester looks again rather than waiting for an answer that
 * never comes. A request nobody claimed in time is withdrawn. */
enum { SAMPLE_PENDING, SAMPLE_HIT, SAMPLE_MISSED, SAMPLE_TIMEOUT };
#define SAMPLE_TIMEOUT_NS 100000000 /* signals blocked, thread stuck */
#define SAMPLE_TRIES 12 /* looks at a coroutine that keeps switching */
#define SAMPLE_MIN_TRIES 4 /* ... however long they take (a loaded machine) */
#define SAMPLE_BUDGET_NS 2000000 /* no new round of looks after this */
#define SWITCH_WAIT_NS 20000 /* for it to park by itself before a signal */
#define WALK_TRIES 8 /* walks of a parked stack that raced with a resume */

typedef struct {
    coroutine *target;
    uintptr_t pcs[DIAG_MAX_FRAMES];
    int n;
    int slot;                /* where in its mailbox it was posted */
    _Atomic uint32_t result; /* SAMPLE_*; a futex word */
} sample_req;

/* One mailbox per worker (by index, modulo NMAILBOX), MB_SLOTS slots of
 * one request each and no lock: a requester posts by CAS (an empty slot
 * -> its request) and then signals; the handler claims every slot by
 * exchange (-> empty) and answers each; a requester whose request nobody
 * claimed in time withdraws it by CAS (its request -> empty), and if that
 * fails the handler has it and the answer is coming. A request is posted
 * before its signal is sent, so a signal delivered after the post finds
 * it (or finds it claimed by an earlier signal): none waits for a signal
 * that merged with another. Dumps on several threads therefore sample in
 * parallel (up to MB_SLOTS per worker with one signal; more take turns,
 * each lasting one signal delivery), and one dump samples every worker at
 * once (capture_running_all). */
#define NMAILBOX 64
#define MB_SLOTS 4
static struct mailbox {
    _Alignas(64) sample_req *_Atomic req[MB_SLOTS];
} MB[NMAILBOX];
static pthread_once_t sampler_once = PTHREAD_ONCE_INIT;

/* Answers r from the interrupted context of worker w. */
static void sample_answer_req(worker *w, sample_req *r, uintptr_t pc,
                              uintptr_t fp, uintptr_t sp) {
    coroutine *g = r->target;
    /* Its own stack in use, not the scheduler's on the way to or from a
     * switch (w->cur changes a little after the stack does). */
    int res = SAMPLE_MISSED;
    if (__atomic_load_n(&w->cur, __ATOMIC_RELAXED) == g &&
        sp >= (uintptr_t)g->stack->lo && sp < (uintptr_t)g) {
        r->n = walk_frames(pc, fp, (uintptr_t)g->stack->lo, (uintptr_t)g,
                           r->pcs, DIAG_MAX_FRAMES);
        res = SAMPLE_HIT;
    }
    atomic_store_explicit(&r->result, (uint32_t)res, memory_order_release);
    /* The requester sleeps rather than spins (on a loaded machine its
     * spinning would keep this very thread off the CPU). Waking an address
     * the requester has since left wakes nobody, or someone who checks. */
    futex_wake(&r->result, 1);
}

static void sample_handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    worker *w = sched_worker();
    if (!w)
        return;
    uintptr_t pc, fp, sp;
    uc_regs(ucv, &pc, &fp, &sp);
    int e = errno;
    struct mailbox *mb = &MB[w->idx % NMAILBOX];
    for (int i = 0; i < MB_SLOTS; i++) {
        /* Claimed by the exchange: from here the requester waits for the
         * answer, so r stays valid until `result` is stored. A late
         * signal finds the slot empty. */
        sample_req *r = atomic_exchange(&mb->req[i], NULL);
        if (r)
            sample_answer_req(w, r, pc, fp, sp);
    }
    errno = e;
}

static void sampler_init(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sample_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, NULL);
}

static int sample_result(sample_req *r) {
    return (int)atomic_load_explicit(&r->result, memory_order_acquire);
}

/* Posts r to w's mailbox and signals w: false if the mailbox stayed
 * taken (another sampler's turn) until `until`, or the signal could not
 * be sent (r->result is then SAMPLE_TIMEOUT). */
static bool sample_post(worker *w, sample_req *r, int64_t until) {
    pthread_once(&sampler_once, sampler_init);
    struct mailbox *mb = &MB[w->idx % NMAILBOX];
    atomic_store(&r->result, SAMPLE_PENDING);
    for (;;) {
        bool ok = false;
        for (int i = 0; i < MB_SLOTS && !ok; i++) {
            sample_req *empty = NULL;
            ok = atomic_compare_exchange_strong(&mb->req[i], &empty, r);
            r->slot = i;
        }
        if (ok)
            break;
        if (leash_now() >= until) {
            atomic_store(&r->result, SAMPLE_TIMEOUT);
            return false;
        }
        sched_yield();
    }
    if (pthread_kill(w->thread, SIGURG) != 0) {
        sample_req *mine = r;
        if (!atomic_compare_exchange_strong(&mb->req[r->slot], &mine, NULL))
            while (sample_result(r) == SAMPLE_PENDING) /* claimed anyway */
                sched_yield();
        else
            atomic_store(&r->result, SAMPLE_TIMEOUT);
        return false;
    }
    return true;
}

/* The answer to a posted r: waits for it (asleep: the CPU goes to the
 * worker that is to answer) until `until`, then withdraws r
 * (SAMPLE_TIMEOUT) unless the handler claimed it meanwhile. */
static int sample_answer(worker *w, sample_req *r, int64_t until) {
    while (sample_result(r) == SAMPLE_PENDING && leash_now() < until)
        futex_wait(&r->result, SAMPLE_PENDING, until);
    if (sample_result(r) == SAMPLE_PENDING) {
        sample_req *mine = r;
        if (atomic_compare_exchange_strong(
                &MB[w->idx % NMAILBOX].req[r->slot], &mine, NULL))
            return SAMPLE_TIMEOUT; /* withdrawn: nobody will write r */
        while (sample_result(r) == SAMPLE_PENDING) /* claimed: answering */
            sched_yield();
    }
    return sample_result(r);
}

/* One signal round trip to w: SAMPLE_HIT (frames in r), _MISSED or
 * _TIMEOUT. */
static int sample_once(worker *w, sample_req *r) {
    int64_t until = leash_now() + SAMPLE_TIMEOUT_NS;
    if (!sample_post(w, r, until))
        return sample_result(r);
    return sample_answer(w, r, until);
}

/* Samples the stack of g, running on worker w; 0 frames if it stopped
 * running meanwhile (answered at once) or did not answer within 100 ms. */
int diag_sample_running(worker *w, coroutine *g, uintptr_t *pcs, int max) {
    sample_req r = {.target = g};
    if (sample_once(w, &r) != SAMPLE_HIT)
        return 0;
    int n = r.n < max ? r.n : max;
    memcpy(pcs, r.pcs, sizeof *pcs * (size_t)n);
    return n;
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
 * and read by diag_capture once the shard lock is dropped. A channel
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
        d->rw_readers = __atomic_load_n(&rw->readers_, __ATOMIC_RELAXED);
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
        d->nw = so && so->n <= DIAG_MAX_WCHANS ? so->n : -1;
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

static void fill(dgor *d, coroutine *g, int64_t now, coroutine *self) {
    memset(d, 0, sizeof *d);
    d->id = g->id;
    d->parent_id = g->parent_id;
    d->scope = g->scope;
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

/* The stack and wait of g if it is parked (g's shard lock held: it
 * cannot exit); false if it runs, or if every walk raced with a resume
 * (nresume moved: it switches faster than a walk; the caller samples it
 * by a signal then). The channel is pinned only once a walk held, and
 * dropped from the record if g moved even then (the pin itself goes in
 * read_pinned_chans: never under a shard lock, as dropping it may
 * destroy the channel). */
static bool capture_parked(dgor *d, coroutine *g, int64_t now, bool objects) {
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
        d->nframes = walk_parked(g, d->pcs, DIAG_MAX_FRAMES);
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
        if (atomic_load_explicit(&g->nresume, memory_order_relaxed) != r1) {
            d->nframes = 0; /* torn: it ran meanwhile; try again */
            continue;
        }
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

/* A coroutine found running on another worker: sampled by a signal after
 * the shard walk, and found again by its registry slot if it stopped
 * before the signal came. */
typedef struct {
    int idx;
    coroutine *g;
    int slot;
    worker *w;
} running_g;

typedef struct {
    dsnap *snap;
    coroutine *self;
    bool objects;       /* read the channels waited on (diag_capture) */
    running_g running[64];
    int nrunning;
} capture_st;

/* Copies g (its shard lock held) into a new record. */
static void capture_one(capture_st *cs, coroutine *g) {
    dsnap *snap = cs->snap;
    dgor *d = &snap->g[snap->n++];
    fill(d, g, snap->now, cs->self);
    if (g == cs->self && g == sched_getg()) {
        d->nframes = walk_frames(0, (uintptr_t)__builtin_frame_address(0),
                                 (uintptr_t)g->stack->lo, (uintptr_t)g,
                                 d->pcs, DIAG_MAX_FRAMES);
        return;
    }
    if (capture_parked(d, g, snap->now, cs->objects))
        return;
    worker *gw = __atomic_load_n(&g->w, __ATOMIC_RELAXED);
    if (cs->nrunning < 64 && gw)
        cs->running[cs->nrunning++] =
            (running_g){snap->n - 1, g, g->reg_slot, gw};
}

/* A running coroutine missed by its sample, looked up again: NULL if it
 * is parked now (captured as such) or gone, else the worker it runs on
 * (or ran on last, if no walk of it held). */
static worker *recapture(capture_st *cs, running_g *rg) {
    dgor *d = &cs->snap->g[rg->idx];
    shard_t *sh = &G_shards[d->id % NSHARDS];
    worker *w = NULL;
    llock_acquire(&sh->lock);
    coroutine *g = rg->slot < sh->nslots ? sh->slots[rg->slot] : NULL;
    if (g == rg->g && g->id == d->id && !capture_parked(d, g, cs->snap->now, cs->objects))
        w = __atomic_load_n(&g->w, __ATOMIC_RELAXED);
    llock_release(&sh->lock);
    return w;
}

/* The coroutines found running, sampled together: each round signals
 * every worker that still runs one at once and waits for all the answers,
 * so a dump waits for the slowest worker, not for the sum of them (on a
 * loaded machine a signal waits for its thread to get a CPU back). Before
 * every other round each is given a moment (SWITCH_WAIT_NS, shared) to
 * park by itself: one that parks at once (a channel hand-off) is then
 * walked parked, with no signal. A miss (it switched before the signal
 * came) is looked up again (recapture) and tried in the next round; no
 * new round starts after SAMPLE_BUDGET_NS once SAMPLE_MIN_TRIES rounds
 * were made (on a loaded machine one round alone may outlast the budget,
 * and a dump that shows no running stack helps nobody), and one still
 * unsampled then keeps no frames (running, stack unavailable), as a dump
 * of a busy program must not wait on its busiest coroutines. Reads only workers,
 * which outlive every g. */
static void capture_running_all(capture_st *cs) {
    int n = cs->nrunning;
    if (!n)
        return;
    sample_req *req = lcalloc((size_t)n, sizeof *req);
    bool *posted = lcalloc((size_t)n, sizeof *posted);
    if (!req || !posted) {
        lfree(req);
        lfree(posted);
        return; /* out of memory: the running keep no frames */
    }
    int64_t budget = leash_now() + SAMPLE_BUDGET_NS;
    for (int tries = 0; tries < SAMPLE_TRIES; tries++) {
        int left = 0;
        for (int i = 0; i < n; i++)
            left += cs->running[i].w != NULL;
        if (!left || (tries >= SAMPLE_MIN_TRIES && leash_now() >= budget))
            break;
        if (tries % 2 == 0) {
            /* Those that switch within the moment are walked parked. */
            int64_t until = leash_now() + SWITCH_WAIT_NS;
            bool all = false;
            while (!all && leash_now() < until) {
                all = true;
                for (int i = 0; i < n; i++) {
                    running_g *rg = &cs->running[i];
                    if (rg->w && __atomic_load_n(&rg->w->cur,
                                                 __ATOMIC_RELAXED) == rg->g)
                        all = false;
                }
                for (int k = 0; k < 64; k++)
                    cpu_relax();
            }
            left = 0;
            for (int i = 0; i < n; i++) {
                running_g *rg = &cs->running[i];
                if (rg->w && __atomic_load_n(&rg->w->cur,
                                             __ATOMIC_RELAXED) != rg->g)
                    rg->w = recapture(cs, rg);
                left += rg->w != NULL;
            }
            if (!left)
                break;
        }
        int64_t until = leash_now() + SAMPLE_TIMEOUT_NS;
        for (int i = 0; i < n; i++) {
            running_g *rg = &cs->running[i];
            posted[i] = false;
            if (!rg->w)
                continue;
            req[i].target = rg->g;
            /* Two of ours for one mailbox (a stale worker): the second
             * waits for the next round. */
            bool dup = false;
            for (int k = 0; k < i; k++)
                dup |= posted[k] &&
                       cs->running[k].w->idx % NMAILBOX == rg->w->idx % NMAILBOX;
            if (dup)
                continue;
            posted[i] = sample_post(rg->w, &req[i], until);
            if (!posted[i] && sample_result(&req[i]) == SAMPLE_TIMEOUT)
                rg->w = NULL; /* cannot be signalled: no frames */
        }
        for (int i = 0; i < n; i++) {
            running_g *rg = &cs->running[i];
            if (!posted[i])
                continue;
            dgor *d = &cs->snap->g[rg->idx];
            int res = sample_answer(rg->w, &req[i], until);
            if (res == SAMPLE_HIT) {
                d->state = G_RUNNING;
                d->nframes = req[i].n;
                memcpy(d->pcs, req[i].pcs, sizeof *d->pcs * (size_t)req[i].n);
                /* The interrupted pc is exact; every consumer treats pcs
                 * as return addresses (looking up pc-1, as Go does):
                 * pc+1. */
                if (d->nframes > 0)
                    d->pcs[0]++;
                rg->w = NULL;
            } else if (res == SAMPLE_TIMEOUT) {
                rg->w = NULL;
            } else {
                rg->w = recapture(cs, rg);
            }
        }
    }
    lfree(req);
    lfree(posted);
}

int diag_capture_classified(dsnap *snap, coroutine *self, size_t elem_size,
                            void **per_g) {
    int rc = diag_capture(snap, self, true);
    if (rc < 0)
        return rc;
    diag_classify(snap);
    *per_g = lcalloc((size_t)(snap->n ? snap->n : 1), elem_size);
    if (!*per_g) {
        diag_snap_free(snap);
        return LEASH_ENOMEM;
    }
    return 0;
}

/* Lock order: under a shard lock only the g's own fields are copied (and
 * R.lock taken: pins, held contexts); channels are read after it is
 * dropped (note_chan), running coroutines sampled after it too. */
int diag_capture(dsnap *snap, coroutine *self, bool objects) {
    if (fork_refuse("a leash diagnostic"))
        return LEASH_EINVAL;
    snap->now = leash_now();
    snap->n = 0;
    snap->chans = NULL;
    snap->nchans = 0;
    size_t cap = leash_num_coroutines() + 64;
    snap->g = lmalloc(sizeof *snap->g * cap);
    if (!snap->g)
        return LEASH_ENOMEM;
    capture_st cs = {.snap = snap, .self = self, .objects = objects};
    for (int s = 0; s < NSHARDS; s++) {
        shard_t *sh = &G_shards[s];
        llock_acquire(&sh->lock);
        SHARD_FOR_EACH(sh, g) {
            if ((size_t)snap->n == cap) {
                size_t ncap = cap * 2;
                dgor *v = lrealloc(snap->g, sizeof *v * ncap);
                if (!v)
                    break;
                snap->g = v;
                cap = ncap;
            }
            capture_one(&cs, g);
        }
        llock_release(&sh->lock);
    }
    capture_running_all(&cs);
    diag_snap_sort(snap);
    if (objects) {
        read_pinned_chans(snap);
        diag_read_chans(snap);
    }
    return 0;
}

static int by_id(const void *a, const void *b) {
    const dgor *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Go lists goroutines in creation order: so do dumps. */
void diag_snap_sort(dsnap *snap) {
    qsort(snap->g, (size_t)snap->n, sizeof *snap->g, by_id);
}

void diag_snap_free(dsnap *snap) {
    lfree(snap->chans);
    snap->chans = NULL;
    snap->nchans = 0;
    lfree(snap->g);
    snap->g = NULL;
    snap->n = 0;
}
