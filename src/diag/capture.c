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

#include <signal.h>
#include <ucontext.h>

/* --------------------------------------------------------- frame walking */

/* The walks read another coroutine's stack while it may run: racy by
 * design (nresume tells a torn walk), so TSan is told not to look. */
#if defined(LEASH_TSAN)
#define RACY_READS __attribute__((no_sanitize_thread, noinline))
#else
#define RACY_READS
#endif

RACY_READS static int walk_frames(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi,
                       uintptr_t *pcs, int max) {
    int n = 0;
    if (pc && n < max)
        pcs[n++] = pc;
    while (n < max && fp >= lo && fp + 16 <= hi && !(fp & 7)) {
        uintptr_t next = ((uintptr_t *)fp)[0];
        uintptr_t ret = ((uintptr_t *)fp)[1];
        if (!ret)
            break;
        pcs[n++] = ret;
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

/* The frames of a switched-out coroutine: see switch_x86_64.S and
 * switch_aarch64.S for the layout at the saved stack pointer (the frame
 * pointer at [6], the return address at [7], on both). */
RACY_READS static int walk_parked(leash_g *g, uintptr_t *pcs, int max) {
    uintptr_t sp = (uintptr_t)g->sp;
    uintptr_t lo = (uintptr_t)g->stack->lo, hi = (uintptr_t)g;
    if (sp < lo || sp + 64 > hi)
        return 0;
    const uintptr_t *f = (const uintptr_t *)sp;
    return walk_frames(f[7], f[6], lo, hi, pcs, max);
}

/* ------------------------------------------------- running coroutines */

static struct {
    pthread_mutex_t mu;
    leash_g *_Atomic target;
    uintptr_t pcs[DIAG_MAX_FRAMES];
    _Atomic int n;
    _Atomic int done;
    bool installed;
} SIG = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void sample_handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    worker *w = sched_worker();
    leash_g *g = atomic_load(&SIG.target);
    if (!w || !g || __atomic_load_n(&w->cur, __ATOMIC_RELAXED) != g)
        return;
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.pc;
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.regs[29];
#else
    uintptr_t pc = 0, fp = 0;
    (void)uc;
#endif
    int n = walk_frames(pc, fp, (uintptr_t)g->stack->lo, (uintptr_t)g,
                        SIG.pcs, DIAG_MAX_FRAMES);
    atomic_store(&SIG.n, n);
    atomic_store_explicit(&SIG.done, 1, memory_order_release);
}

static void install_sampler(void) {
    if (SIG.installed)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sample_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, NULL);
    SIG.installed = true;
}

/* Samples the stack of g, running on worker w; 0 frames if it stopped
 * running meanwhile or did not answer within 100 ms. */
int diag_sample_running(worker *w, leash_g *g, uintptr_t *pcs, int max) {
    pthread_mutex_lock(&SIG.mu);
    install_sampler();
    atomic_store(&SIG.done, 0);
    atomic_store(&SIG.n, 0);
    atomic_store(&SIG.target, g);
    int n = 0;
    if (pthread_kill(w->thread, SIGURG) == 0) {
        int64_t until = leash_now() + 100000000;
        while (!atomic_load_explicit(&SIG.done, memory_order_acquire) &&
               leash_now() < until)
            sched_yield();
        if (atomic_load(&SIG.done)) {
            n = atomic_load(&SIG.n);
            if (n > max)
                n = max;
            memcpy(pcs, SIG.pcs, sizeof *pcs * (size_t)n);
        }
    }
    atomic_store(&SIG.target, NULL);
    pthread_mutex_unlock(&SIG.mu);
    return n;
}

/* ------------------------------------------------------- wait objects */

static void capture_chan(dgor *d, leash_chan *c) {
    d->has_chan = true;
    slock_acquire(&c->lock);
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
    d->chan.refs = atomic_load(&c->obj.refs);
    d->chan.orphaned = c->orphaned;
    d->chan.orphan_pc = (uintptr_t)c->orphan_pc;
    d->chan.orphan_by = c->orphan_by;
    d->chan.orphan_exit = c->orphan_exit;
    d->chan.drop_pc = c->orphan_exit ? (uintptr_t)c->drop_pc : 0;
    d->chan.drop_by = c->drop_by;
    d->chan.borrowed = c->borrowed;
    slock_release(&c->lock);
}

static void capture_wait_obj(dgor *d, leash_g *g) {
    void *obj = atomic_load_explicit(&g->wait_obj, memory_order_relaxed);
    switch (d->reason) {
    case WR_CHAN_SEND:
    case WR_CHAN_RECV:
        if (obj)
            capture_chan(d, obj);
        break;
    case WR_MUTEX: {
        leash_mutex *mu = obj;
        leash_g *owner = mu ? __atomic_load_n(&mu->owner_, __ATOMIC_RELAXED)
                            : NULL;
        d->mutex_owner = owner ? owner->id : 0;
        d->mutex_addr = (uintptr_t)mu;
        break;
    }
    case WR_RWMUTEX_R:
    case WR_RWMUTEX_W: {
        leash_rwmutex *rw = obj;
        if (!rw)
            break;
        leash_g *owner = __atomic_load_n(&rw->owner_, __ATOMIC_RELAXED);
        for (int i = 0; !owner && i < 4; i++)
            owner = __atomic_load_n(&rw->rowners_[i], __ATOMIC_RELAXED);
        d->mutex_owner = owner && owner != g ? owner->id : 0;
        d->mutex_addr = (uintptr_t)rw;
        d->rw_readers = __atomic_load_n(&rw->readers_, __ATOMIC_RELAXED);
        break;
    }
    case WR_COND: {
        cond_wait_obj *wo = obj;
        if (!wo)
            break;
        leash_mutex *mu = wo->mu;
        leash_g *owner = __atomic_load_n(&mu->owner_, __ATOMIC_RELAXED);
        d->cond_addr = (uintptr_t)wo->cond;
        d->mutex_addr = (uintptr_t)mu;
        d->mutex_owner = owner && owner != g ? owner->id : 0;
        break;
    }
    case WR_SELECT:
        d->select_nil = obj == NULL;
        break;
    case WR_IO_WAIT:
        d->io_deadline = obj != NULL;
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------ capture */

static void fill(dgor *d, leash_g *g, int64_t now, leash_g *self) {
    memset(d, 0, sizeof *d);
    d->id = g->id;
    d->parent_id = g->parent_id;
    d->scope = g->scope;
    d->state = atomic_load_explicit(&g->state, memory_order_acquire);
    d->reason = atomic_load_explicit(&g->wait_reason, memory_order_acquire);
    int64_t since = atomic_load_explicit(&g->wait_since, memory_order_relaxed);
    d->wait_ns = d->state == G_WAITING && since ? now - since : -1;
    if (d->wait_ns < 0 && d->state == G_WAITING)
        d->wait_ns = 0;
    d->spawn_file = g->spawn_file;
    d->spawn_line = g->spawn_line;
    d->spawn_pc = (uintptr_t)g->spawn_pc;
    memcpy(d->name, g->name, sizeof d->name);
    d->name[sizeof d->name - 1] = 0;
    d->nlabels = g->nlabels;
    memcpy(d->label_key, g->label_key, sizeof d->label_key);
    memcpy(d->label_val, g->label_val, sizeof d->label_val);
    d->self = g == self;
    if (d->self) /* it is parked only to have this dump written */
        d->state = G_RUNNING;
    d->hog_since = atomic_load_explicit(&g->hog_since, memory_order_relaxed);
}

int diag_capture_classified(dsnap *snap, leash_g *self, size_t elem_size,
                            void **per_g) {
    int rc = diag_capture(snap, self);
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

int diag_capture(dsnap *snap, leash_g *self) {
    if (fork_refuse("a leash diagnostic"))
        return LEASH_EINVAL;
    snap->now = leash_now();
    snap->n = 0;
    size_t cap = leash_num_coroutines() + 64;
    snap->g = lmalloc(sizeof *snap->g * cap);
    if (!snap->g)
        return LEASH_ENOMEM;
    /* Running coroutines on other workers are sampled after the walk,
     * outside the shard locks (the signal handler takes none, but the
     * wait must not hold up spawns and exits). */
    struct { int idx; leash_g *g; worker *w; } running[64];
    int nrunning = 0;
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
            dgor *d = &snap->g[snap->n++];
            fill(d, g, snap->now, self);
            if (g == self && g == sched_getg()) {
                d->nframes = walk_frames(
                    0, (uintptr_t)__builtin_frame_address(0),
                    (uintptr_t)g->stack->lo, (uintptr_t)g, d->pcs,
                    DIAG_MAX_FRAMES);
                continue;
            }
            for (int tries = 0; tries < 4; tries++) {
                uint32_t r1 = atomic_load_explicit(&g->nresume,
                                                   memory_order_acquire);
                int st = atomic_load_explicit(&g->state, memory_order_acquire);
                if (st == G_RUNNING) {
                    worker *gw = __atomic_load_n(&g->w, __ATOMIC_RELAXED);
                    if (nrunning < 64 && gw)
                        running[nrunning++] = (typeof(running[0])){
                            snap->n - 1, g, gw};
                    break;
                }
                int reason = atomic_load(&g->wait_reason);
                d->state = d->self ? G_RUNNING : st;
                d->reason = reason;
                d->nframes = walk_parked(g, d->pcs, DIAG_MAX_FRAMES);
                capture_wait_obj(d, g);
                if (st == G_WAITING && reason != WR_SELECT)
                    d->ctx_cancelled_at = ctx_cancelled_held(g);
                atomic_thread_fence(memory_order_acquire);
                if (atomic_load_explicit(&g->nresume, memory_order_relaxed) ==
                    r1)
                    break;
                d->nframes = 0; /* torn: it ran meanwhile; try again */
                d->has_chan = false;
            }
        }
        llock_release(&sh->lock);
    }
    for (int i = 0; i < nrunning; i++) {
        dgor *d = &snap->g[running[i].idx];
        d->state = G_RUNNING;
        d->nframes = diag_sample_running(running[i].w, running[i].g, d->pcs,
                                    DIAG_MAX_FRAMES);
        /* The interrupted pc is exact; every consumer treats pcs as return
         * addresses (looking up pc-1, as Go does), so store pc+1. */
        if (d->nframes > 0)
            d->pcs[0]++;
    }
    diag_snap_sort(snap);
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
    lfree(snap->g);
    snap->g = NULL;
    snap->n = 0;
}
