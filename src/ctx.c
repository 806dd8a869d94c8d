/* SPDX-License-Identifier: MIT */
/*
 * ctx.c — Go's context: cancellation trees with deadlines and values.
 *
 * Every context but the background one is a cancellation scope with its
 * own done channel (element size 0, closed exactly once on cancel), made
 * when first asked for. A
 * child links itself into its parent's children list and holds a
 * runtime reference on the parent, so a parent lives as long as any
 * child; the parent's list holds no reference, so dropping the last user
 * reference on a child cancels it (Go's "context leak" cannot pile up
 * children forever).
 *
 * Cancel walks the subtree iteratively (a worklist, not recursion: a
 * chain of nested contexts must not overflow a 64 KiB coroutine stack).
 * Under a context's lock its error is set and its children are detached;
 * each child is taken with a runtime reference only if it is still alive
 * (obj_try_retain), so a child being destroyed concurrently is skipped
 * and unlinks itself. No two context locks are ever held at once.
 *
 * A deadline arms a timer whose callback cancels with LEASH_ETIMEDOUT;
 * destroying the context deletes the timer, waiting for a callback that
 * is running (timer.c), so the callback never sees freed memory.
 */
#include "internal.h"

struct leash_ctx {
    lobj obj;
    llock lock;
    leash_ctx *parent;
    leash_chan *done;    /* made on demand (leash_ctx_done), under lock */
    const char *file;    /* creation site, for the done channel */
    int line;
    _Atomic int err;
    leash_ctx *children, *sib_next, *sib_prev;
    bool linked;         /* in parent->children (parent->lock) */
    int64_t deadline;    /* T_INF: none */
    bool has_timer;
    rtimer timer;
    bool has_value;
    const void *key;
    void *value;
    _Atomic int64_t cancelled_at; /* coarse clock, for the diagnostics */
};

static struct leash_ctx background = {
    .obj = {.magic = OBJ_MAGIC, .type = OBJ_CTX, .immortal = true,
            .file = "leash_ctx_background", .line = 0},
    .deadline = T_INF,
};

leash_ctx *leash_ctx_background(void) { return &background; }

/* The background context is static, outside the object memory that
 * obj_check's fast path knows: named first, since most contexts hang
 * off it. */
static leash_ctx *ctx_check(const void *p) {
    if (p == &background)
        return &background;
    return (leash_ctx *)obj_check(p, OBJ_CTX);
}

static void unlink_from_parent(leash_ctx *c) {
    leash_ctx *p = c->parent;
    if (!p || p == &background)
        return;
    llock_acquire(&p->lock);
    if (c->linked) {
        if (c->sib_prev)
            c->sib_prev->sib_next = c->sib_next;
        else
            p->children = c->sib_next;
        if (c->sib_next)
            c->sib_next->sib_prev = c->sib_prev;
        c->linked = false;
    }
    llock_release(&p->lock);
}

typedef struct {
    leash_ctx **v;
    int n, cap;
    leash_ctx *small[16];
} worklist;

static bool work_push(worklist *wl, leash_ctx *c) {
    if (wl->n == wl->cap) {
        int cap = wl->cap * 2;
        leash_ctx **v = lmalloc(sizeof *v * (size_t)cap);
        if (!v)
            return false;
        memcpy(v, wl->v, sizeof *v * (size_t)wl->n);
        if (wl->v != wl->small)
            lfree(wl->v);
        wl->v = v;
        wl->cap = cap;
    }
    wl->v[wl->n++] = c;
    return true;
}

static void ctx_cancel_tree(leash_ctx *root, int err, bool from_own_timer);

/* Cancels one context: sets its error and detaches its children into wl
 * (each with a runtime reference). */
static void cancel_one(leash_ctx *c, int err, bool skip_timer, worklist *wl) {
    llock_acquire(&c->lock);
    int z = 0;
    if (!atomic_compare_exchange_strong(&c->err, &z, err)) {
        llock_release(&c->lock);
        return;
    }
    atomic_store_explicit(&c->cancelled_at, coarse_now(), memory_order_relaxed);
    leash_ctx *ch = c->children;
    c->children = NULL;
    for (leash_ctx *next; ch; ch = next) {
        next = ch->sib_next;
        ch->linked = false;
        ch->sib_next = ch->sib_prev = NULL;
        if (obj_try_retain(&ch->obj)) {
            if (!work_push(wl, ch)) {
                /* Out of memory for the worklist: recurse for this one. */
                ctx_cancel_tree(ch, err, false);
                obj_release_from(&ch->obj, NULL);
            }
        }
    }
    leash_chan *done = c->done; /* made on demand: maybe never */
    llock_release(&c->lock);
    if (done)
        leash_close(done);
    if (c->has_timer && !skip_timer)
        timer_del(&c->timer);
    unlink_from_parent(c);
}

static void ctx_cancel_tree(leash_ctx *root, int err, bool from_own_timer) {
    worklist wl; /* small[] is not zeroed: it is written before it is read */
    wl.n = 0;
    wl.cap = 16;
    wl.v = wl.small;
    cancel_one(root, err, from_own_timer, &wl);
    while (wl.n > 0) {
        leash_ctx *c = wl.v[--wl.n];
        cancel_one(c, err, false, &wl);
        obj_release_from(&c->obj, NULL);
    }
    if (wl.v != wl.small)
        lfree(wl.v);
}

static void ctx_timer_fire(rtimer *t, int64_t now) {
    (void)now;
    leash_ctx *c = t->arg;
    ctx_cancel_tree(c, LEASH_ETIMEDOUT, true);
}

static void ctx_destroy(lobj *o) {
    leash_ctx *c = (leash_ctx *)o;
    if (!atomic_load(&c->err)) /* cancelled already: nothing left to do */
        ctx_cancel_tree(c, LEASH_ECANCELED, false);
    if (c->has_timer)
        timer_del(&c->timer); /* waits for a callback in progress */
    unlink_from_parent(c);
    if (c->done) {
        /* Readers of done->ctx_of (diag/prove.c) use c under the done
         * channel's lock: from here on they find no context. */
        slock_acquire(&c->done->lock);
        __atomic_store_n(&c->done->ctx_of, NULL, __ATOMIC_RELAXED);
        slock_release(&c->done->lock);
        obj_release_from(&c->done->obj, NULL);
    }
    if (c->parent && c->parent != &background)
        obj_release_from(&c->parent->obj, NULL);
    obj_free_mem(o);
}

/* For the deadlock detector: would a cancel of c (its deadline timer
 * firing) wake anybody? Walks the live, uncancelled subtree one lock at a
 * time, as cancel does; true when unsure (out of memory). */
bool ctx_cancel_may_wake(leash_ctx *root) {
    worklist wl;
    wl.n = 0;
    wl.cap = 16;
    wl.v = wl.small;
    bool may = false, ok = obj_try_retain(&root->obj);
    if (ok)
        ok = work_push(&wl, root);
    while (wl.n > 0) {
        leash_ctx *c = wl.v[--wl.n];
        leash_chan *done = NULL;
        llock_acquire(&c->lock);
        if (!may && ok && !atomic_load(&c->err)) {
            if (c->done && obj_try_retain(&c->done->obj))
                done = c->done;
            for (leash_ctx *k = c->children; k && ok; k = k->sib_next)
                if (obj_try_retain(&k->obj) && !work_push(&wl, k)) {
                    obj_release_from(&k->obj, NULL);
                    ok = false;
                }
        }
        llock_release(&c->lock);
        if (done) {
            may = may || chan_has_receivers(done);
            obj_release_from(&done->obj, NULL);
        }
        obj_release_from(&c->obj, NULL);
    }
    if (wl.v != wl.small)
        lfree(wl.v);
    return may || !ok;
}

static leash_ctx *ctx_new(const char *file, int line, leash_ctx *parent,
                          int64_t deadline) {
    leash_ctx *p = ctx_check(parent);
    if (!p || sched_ensure_started() < 0)
        return NULL;
    coroutine *owner = sched_getg_or_foreign();
    if (!owner)
        return NULL;
    leash_ctx *c = obj_alloc(OBJ_CTX, sizeof *c);
    if (!c)
        return NULL;
    llock_init(&c->lock, LR_CTX);
    c->deadline = deadline < p->deadline ? deadline : p->deadline;
    c->file = file;
    c->line = line;
    if (p != &background && obj_retain_for(&p->obj, NULL, false) < 0) {
        obj_free_mem_type(c, OBJ_CTX);
        return NULL;
    }
    c->parent = p;
    if (obj_init(&c->obj, OBJ_CTX, file, line, ctx_destroy, owner) < 0) {
        if (p != &background)
            obj_release_from(&p->obj, NULL);
        obj_free_mem_type(c, OBJ_CTX);
        return NULL;
    }
    /* Join the parent's tree, or start cancelled if it already is. */
    int perr = 0;
    if (p != &background) {
        llock_acquire(&p->lock);
        perr = atomic_load(&p->err);
        if (!perr) {
            c->sib_prev = NULL;
            c->sib_next = p->children;
            if (p->children)
                p->children->sib_prev = c;
            p->children = c;
            c->linked = true;
        }
        llock_release(&p->lock);
    }
    if (perr) {
        ctx_cancel_tree(c, perr, false);
        return c;
    }
    if (c->deadline != T_INF) {
        if (c->deadline <= leash_now()) {
            ctx_cancel_tree(c, LEASH_ETIMEDOUT, false);
            return c;
        }
        /* A deadline inherited from the parent is the parent's timer's
         * to enforce, through the cancel walk (Go's WithCancel(parent)):
         * a timer of its own at the same time could fire first, and show
         * a child done while its parent is not. */
        if (c->deadline == p->deadline)
            return c;
        c->timer = (rtimer){.when = c->deadline, .fn = ctx_timer_fire,
                                 .arg = c, .idx = -1, .wakes = TW_CTX,
                                 .target = c};
        c->has_timer = true;
        if (timer_add(&c->timer) < 0) {
            c->has_timer = false;
            leash_release(c);
            return NULL;
        }
    }
    return c;
}

leash_ctx *leash_ctx_with_cancel_at(const char *file, int line,
                                    leash_ctx *parent) {
    return ctx_new(file, line, parent, T_INF);
}

leash_ctx *leash_ctx_with_deadline_at(const char *file, int line,
                                      leash_ctx *parent, int64_t abs_ns) {
    return ctx_new(file, line, parent, abs_ns < 0 ? 0 : abs_ns);
}

leash_ctx *leash_ctx_with_timeout_at(const char *file, int line,
                                     leash_ctx *parent, int64_t ns) {
    return ctx_new(file, line, parent, time_add(leash_now(), ns < 0 ? 0 : ns));
}

leash_ctx *leash_ctx_with_value_at(const char *file, int line,
                                   leash_ctx *parent, const void *key,
                                   void *value) {
    if (!key)
        return NULL;
    leash_ctx *c = ctx_new(file, line, parent, T_INF);
    if (c) {
        c->has_value = true;
        c->key = key;
        c->value = value;
    }
    return c;
}

void *leash_ctx_value(leash_ctx *ctx, const void *key) {
    for (leash_ctx *c = ctx_check(ctx); c; c = c->parent)
        if (c->has_value && c->key == key)
            return c->value;
    return NULL;
}

/* Every value stored under key along ctx's ancestry, nearest first. */
int ctx_values(leash_ctx *ctx, const void *key, const void **out, int max) {
    int n = 0;
    for (leash_ctx *c = ctx_check(ctx); c && n < max; c = c->parent)
        if (c->has_value && c->key == key)
            out[n++] = c->value;
    return n;
}

void leash_ctx_cancel(leash_ctx *ctx) {
    leash_ctx *c = ctx_check(ctx);
    if (c && c != &background)
        ctx_cancel_tree(c, LEASH_ECANCELED, false);
}

/* The done channel is made on first request, as Go does: a context that
 * nobody waits on costs no channel. One asked for after the cancel comes
 * back already closed. NULL on allocation failure (like a nil channel:
 * never ready). */
leash_chan *leash_ctx_done(leash_ctx *ctx) {
    leash_ctx *c = ctx_check(ctx);
    if (!c || c == &background)
        return NULL;
    llock_acquire(&c->lock);
    if (!c->done) {
        c->done = chan_make(c->file, c->line, 0, 0, NULL);
        if (c->done)
            __atomic_store_n(&c->done->ctx_of, c, __ATOMIC_RELAXED);
        if (c->done && atomic_load(&c->err))
            leash_close(c->done); /* cancelled before anyone asked */
    }
    leash_chan *d = c->done;
    llock_release(&c->lock);
    return d;
}

int leash_ctx_err(leash_ctx *ctx) {
    leash_ctx *c = ctx_check(ctx);
    return c ? atomic_load(&c->err) : LEASH_EINVAL;
}

int64_t leash_ctx_deadline(leash_ctx *ctx) {
    leash_ctx *c = ctx_check(ctx);
    if (!c)
        return LEASH_EINVAL;
    return c->deadline == T_INF ? -1 : c->deadline;
}

typedef struct {
    coroutine *g;
    int64_t at;
} held_scan;

static void scan_ctx(lobj *o, void *arg) {
    held_scan *h = arg;
    if (o->type != OBJ_CTX || o->immortal)
        return;
    leash_ctx *c = (leash_ctx *)o;
    void *waits = atomic_load_explicit(&h->g->wait_obj, memory_order_relaxed);
    if (waits && waits == (void *)__atomic_load_n(&c->done, __ATOMIC_RELAXED))
        return; /* it waits for exactly this cancellation */
    int64_t at = atomic_load_explicit(&c->cancelled_at, memory_order_relaxed);
    if (atomic_load(&c->err) && at && (!h->at || at < h->at))
        h->at = at;
}

/* Whether only a coroutine holding (or borrowing) c can ever close its
 * done channel: no deadline timer, the background as parent, and every
 * reference held by a coroutine (no child context, group, plain thread
 * or detached reference). Then the done channel's runtime reference
 * stands for those coroutines (diag/prove.c). The fields read here are
 * set at creation; the holders under R.lock. Called with the done
 * channel's lock held, under which ctx_destroy clears done->ctx_of, so
 * the context cannot be freed meanwhile. */
static bool only_coroutines(coroutine *h, void *arg) {
    (void)arg;
    return h && h != &obj_detached_holder && !h->foreign;
}

bool ctx_cancelled_only_by_coroutines(leash_ctx *ctx) {
    leash_ctx *c = ctx_check(ctx);
    if (!c || c == &background || c->has_timer || c->parent != &background)
        return false;
    return obj_all_holders(&c->obj, only_coroutines, NULL) &&
           !atomic_load(&c->err);
}

/* "Canceled but still blocked": the earliest cancellation among the
 * contexts g holds a reference on, unless g waits on that context's done
 * channel. 0 if none. */
int64_t ctx_cancelled_held(coroutine *g) {
    held_scan h = {g, 0};
    obj_foreach_held(g, scan_ctx, &h);
    return h.at;
}
