/* SPDX-License-Identifier: MIT */
/*
 * obj.c — leash objects: identity, reference counts and their holders.
 *
 * Every channel, context, ticker and group starts with an lobj header:
 * a magic word, a type, its creation site and the references held on it.
 * Each reference belongs to a holder (the coroutine or thread that took
 * it): an lref record per (object, holder) pair is linked into the
 * object's list and the holder's list. The orphan proof reads the first,
 * a coroutine's exit walks the second to release what it still holds.
 *
 * All of this bookkeeping sits under one lock, R.lock. Retain and release
 * are not per-message operations, and one lock keeps the two lists
 * consistent without a lock-order dance between objects and holders.
 *
 * Memory is type-stable: a destroyed object is marked dead and kept on a
 * free list of its type, never returned, so a stale pointer handed back
 * to the API reads a dead magic and gets LEASH_EINVAL instead of a crash
 * (until the slot is reused by a new object of the same type). Fresh
 * memory comes from one reserved range (objmem.c), so a pointer that was
 * never an object is rejected before anything is read through it.
 */
#include "internal.h"
#include "sched_tls.h"

static struct {
    llock lock;
    lobj *all;                 /* live objects */
    lref *free_refs;
    void *free_objs[OBJ__COUNT];
    size_t count[OBJ__COUNT];
    int64_t next_id;
    dropped_obj dropped[256]; /* the first ones, for the report */
    int64_t ndropped;
} R = {.lock = LLOCK_INIT(LR_OBJ)};

/* Dead memory of an object of `type` to reuse, or NULL. */
static void *obj_reuse(int type) {
    worker *w = sched_worker();
    void *p = NULL;
    if (w && (p = w->obj_cache[type])) { /* this worker's cache: no lock */
        w->obj_cache[type] = *(void **)((char *)p + sizeof(lobj));
        w->obj_ncache[type]--;
        return p;
    }
    llock_acquire(&R.lock);
    p = R.free_objs[type];
    if (p)
        R.free_objs[type] = *(void **)((char *)p + sizeof(lobj));
    llock_release(&R.lock);
    return p;
}

/* Allocates (or reuses) the memory of an object of `type`, `size` bytes;
 * every object of one type must have one size. Fresh memory comes from
 * objmem, so that obj_check can validate any pointer without a fault. */
void *obj_alloc(int type, size_t size) {
    void *p = obj_reuse(type);
    if (!p) {
        llock_acquire(&R.lock);
        p = objmem_alloc(size); /* zeroed: the magic is not live */
        llock_release(&R.lock);
        return p;
    }
    if (lalloc_should_fail()) {
        obj_free_mem_type(p, type);
        return NULL;
    }
    /* The magic stays dead until obj_init; the type is already right (a
     * free list per type) and obj_check may be reading it; refs is 0 (it
     * died at 0) and obj_try_pin may be reading it. The rest is zeroed. */
    size_t a = offsetof(lobj, immortal), b = offsetof(lobj, refs),
           c = b + sizeof(((lobj *)0)->refs);
    memset((char *)p + a, 0, b - a);
    memset((char *)p + c, 0, size - c);
    return p;
}

/* Puts dead object memory on a free list of its type. The link is stored
 * just after the header, which keeps the magic word readable as dead. */
void obj_free_mem_type(void *p, int type) {
    lobj *o = p;
    atomic_store(&o->magic, OBJ_DEAD);
    worker *w = sched_worker();
    if (w && w->obj_ncache[type] < OBJ_CACHE_MAX) {
        *(void **)((char *)p + sizeof(lobj)) = w->obj_cache[type];
        w->obj_cache[type] = p;
        w->obj_ncache[type]++;
        return;
    }
    llock_acquire(&R.lock);
    *(void **)((char *)p + sizeof(lobj)) = R.free_objs[type];
    R.free_objs[type] = p;
    llock_release(&R.lock);
}

/* Moves a worker's cached object memory to the global lists (shutdown). */
void obj_drain_cache(worker *w) {
    for (int t = 0; t < OBJ__COUNT; t++) {
        while (w->obj_cache[t]) {
            void *p = w->obj_cache[t];
            w->obj_cache[t] = *(void **)((char *)p + sizeof(lobj));
            w->obj_ncache[t]--;
            llock_acquire(&R.lock);
            *(void **)((char *)p + sizeof(lobj)) = R.free_objs[t];
            R.free_objs[t] = p;
            llock_release(&R.lock);
        }
    }
}

void obj_free_mem(lobj *o) { obj_free_mem_type(o, o->type); }

static int retain_locked(lobj *o, coroutine *holder, bool handed);

/* Registers a new object and gives `owner` (NULL: the runtime) its first
 * reference, in one critical section. LEASH_ENOMEM leaves nothing behind:
 * the caller frees the memory with obj_free_mem_type. */
int obj_init(lobj *o, int type, const char *file, int line,
             void (*destroy)(lobj *), coroutine *owner) {
    if (in_forked_child())
        return fork_refuse("a new leash object");
    coroutine *g = sched_getg_entry();
    if (atomic_load_explicit(&o->type, memory_order_relaxed) != type)
        atomic_store_explicit(&o->type, (uint8_t)type, memory_order_relaxed);
    o->file = file;
    o->line = line;
    o->destroy = destroy;
    o->created_by = g ? g->id : 0;
    o->created_at = coarse_now();
    atomic_store(&o->refs, 0);
    o->holders = NULL;
    llock_acquire(&R.lock);
    if (retain_locked(o, owner, false) < 0) {
        llock_release(&R.lock);
        return LEASH_ENOMEM;
    }
    o->id = ++R.next_id;
    o->all_prev = NULL;
    o->all_next = R.all;
    if (R.all)
        R.all->all_prev = o;
    R.all = o;
    R.count[type]++;
    llock_release(&R.lock);
    atomic_store_explicit(&o->magic, OBJ_MAGIC, memory_order_release);
    return 0;
}

/* The immortal objects are statics outside objmem: the only pointers
 * outside it that are objects. */
static lobj *obj_check_static(const void *p) {
    return p == (const void *)leash_ctx_background() ? (lobj *)p : NULL;
}

lobj *obj_check_slow(const void *p, int type) {
    lobj *o = (lobj *)p;
    if (unlikely(!objmem_holds(p)) && !(o = obj_check_static(p)))
        return NULL; /* NULL, wild, freed by malloc, on a stack: unread */
    if ((uintptr_t)p & 7)
        return NULL;
    if (atomic_load_explicit(&o->magic, memory_order_acquire) != OBJ_MAGIC)
        return NULL;
    if (type && atomic_load_explicit(&o->type, memory_order_relaxed) != type)
        return NULL;
    return o;
}

static lref *ref_find(lobj *o, coroutine *holder) {
    for (lref *r = o->holders; r; r = r->o_next)
        if (r->holder == holder)
            return r;
    return NULL;
}

static void ref_unlink(lref *r) {
    lobj *o = r->obj;
    atomic_fetch_sub_explicit(&o->nholders, 1, memory_order_relaxed);
    if (r->holder) /* no longer a holder: drop it from its cache */
        for (int i = 0; i < 4; i++)
            if (atomic_load_explicit(&r->holder->held[i],
                                     memory_order_relaxed) == o)
                atomic_store_explicit(&r->holder->held[i], NULL,
                                      memory_order_relaxed);
    if (r->o_prev)
        r->o_prev->o_next = r->o_next;
    else
        o->holders = r->o_next;
    if (r->o_next)
        r->o_next->o_prev = r->o_prev;
    coroutine *g = r->holder;
    if (g) {
        if (r->g_prev)
            r->g_prev->g_next = r->g_next;
        else /* atomic: g_release_refs peeks without R.lock */
            __atomic_store_n(&g->refs, r->g_next, __ATOMIC_RELAXED);
        if (r->g_next)
            r->g_next->g_prev = r->g_prev;
    }
    r->g_next = R.free_refs;
    R.free_refs = r;
}

/* Takes a reference for `holder` (NULL: the runtime itself); R.lock held. */
static int retain_locked(lobj *o, coroutine *holder, bool handed) {
    lref *r = ref_find(o, holder);
    if (!r) {
        if (lalloc_should_fail())
            return LEASH_ENOMEM; /* warm or cold, each site can fail */
        r = R.free_refs;
        if (r)
            R.free_refs = r->g_next;
        else if (!(r = malloc(sizeof *r)))
            return LEASH_ENOMEM;
        r->obj = o;
        r->holder = holder;
        r->count = 0;
        r->handed = 0;
        r->o_prev = NULL;
        r->o_next = o->holders;
        if (o->holders)
            o->holders->o_prev = r;
        o->holders = r;
        atomic_fetch_add_explicit(&o->nholders, 1, memory_order_relaxed);
        r->g_prev = NULL;
        r->g_next = NULL;
        if (holder) {
            r->g_next = holder->refs;
            if (holder->refs)
                holder->refs->g_prev = r;
            __atomic_store_n(&holder->refs, r, __ATOMIC_RELAXED);
        }
    }
    r->count++;
    if (handed)
        r->handed++;
    if (holder == &obj_detached_holder)
        atomic_fetch_add_explicit(&o->ndetached, 1, memory_order_relaxed);
    atomic_fetch_add(&o->refs, 1);
    return 0;
}

int obj_retain_for(lobj *o, coroutine *holder, bool handed) {
    if (o->immortal)
        return 0;
    llock_acquire(&R.lock);
    int rc = retain_locked(o, holder, handed);
    llock_release(&R.lock);
    return rc;
}

bool obj_try_retain(lobj *o) {
    if (o->immortal)
        return true;
    llock_acquire(&R.lock);
    bool ok = atomic_load(&o->refs) > 0 && retain_locked(o, NULL, false) == 0;
    llock_release(&R.lock);
    return ok;
}

static void obj_destroy(lobj *o);
static void unregister_locked(lobj *o);
static void unpin(lobj *o, void *pc, int64_t by);

bool obj_try_pin(lobj *o) {
    if (o->immortal)
        return true;
    llock_acquire(&R.lock);
    bool ok = atomic_load(&o->refs) > 0;
    if (ok) /* a bare count, as pin_for_proof_locked takes */
        atomic_fetch_add(&o->refs, 1);
    llock_release(&R.lock);
    return ok;
}

void obj_unpin(lobj *o) {
    if (!o->immortal)
        unpin(o, NULL, 0);
}

/* Drops the runtime reference pin_for_proof_locked took; no proof runs
 * again for it (the proof just ran). */
static void unpin(lobj *o, void *pc, int64_t by) {
    llock_acquire(&R.lock);
    bool last = atomic_fetch_sub(&o->refs, 1) == 1;
    if (last) { /* the release we pinned for was the last after all */
        o->release_pc = pc;
        o->release_by = by;
        unregister_locked(o);
    }
    llock_release(&R.lock);
    if (last)
        obj_destroy(o);
}

/* Takes a dead object off the registry (R.lock held). */
static void unregister_locked(lobj *o) {
    if (o->all_prev)
        o->all_prev->all_next = o->all_next;
    else
        R.all = o->all_next;
    if (o->all_next)
        o->all_next->all_prev = o->all_prev;
    R.count[o->type]--;
}

/* Destructors release references (a context its parent), which may
 * destroy more objects: a chain of 10,000 contexts would recurse 10,000
 * deep on a 64 KiB coroutine stack. So the outermost obj_destroy of a
 * coroutine (or thread) drains a queue, and nested ones only enqueue.
 * The queue's slot is in the g (a coroutine may migrate while a
 * destructor yields), the worker (scheduler context) or the thread. */
struct destroy_q {
    lobj *head;
};
static __thread struct destroy_q *tls_dq;

static struct destroy_q **dq_slot(void) {
    coroutine *g = sched_getg_entry();
    if (g)
        return &g->dq;
    worker *w = sched_worker();
    return w ? &w->dq : &tls_dq;
}

static void obj_destroy(lobj *o) {
    atomic_store(&o->magic, OBJ_DEAD);
    struct destroy_q **slot = dq_slot();
    if (*slot) { /* a destructor further up will get to it */
        o->all_next = (*slot)->head; /* off the registry: free to reuse */
        (*slot)->head = o;
        return;
    }
    struct destroy_q q = {NULL};
    *slot = &q;
    o->destroy(o);
    while (q.head) {
        lobj *x = q.head;
        q.head = x->all_next;
        x->destroy(x);
    }
    *dq_slot() = NULL;
}

/* After a release left a channel with other holders, the orphan proof
 * runs without R.lock: the channel is pinned with a runtime reference
 * taken under the lock, or it could be destroyed and reused meanwhile. */
static bool pin_for_proof_locked(lobj *o) {
    if (o->type != OBJ_CHAN)
        return false;
    /* A bare count with no holder record: the proof must not see the pin
     * as a holder (a runtime holder would make any proof fail). */
    atomic_fetch_add(&o->refs, 1);
    return true;
}

static void release_locked_done(lobj *o, bool last, bool pinned, void *pc,
                                int64_t by, bool at_exit);

/* Drops one reference of `holder`'s and destroys the object with the
 * last one; pc is the call site, for the orphan proof. A holder with no
 * reference gets LEASH_EINVAL and changes nothing: dropping another
 * holder's reference instead would free the object under that holder (a
 * double release by a parent would drop its child's reference, and the
 * child's next send would land in whatever object reuses the slot).
 * `instead` says whose reference may go when holder has none (REL_*). */
int obj_release_at(lobj *o, coroutine *holder, void *pc, int instead) {
    if (o->immortal)
        return 0;
    llock_acquire(&R.lock);
    lref *r = ref_find(o, holder);
    for (lref *x = o->holders; !r && instead != REL_OWN && x; x = x->o_next)
        if (instead == REL_ANY || (x->holder && x->holder->foreign))
            r = x;
    if (!r) {
        llock_release(&R.lock);
        return LEASH_EINVAL;
    }
    if (--r->count < r->handed)
        r->handed = r->count;
    if (r->count == 0)
        ref_unlink(r);
    bool last = atomic_fetch_sub(&o->refs, 1) == 1;
    if (holder == &obj_detached_holder) { /* leash_release_detached */
        atomic_fetch_sub_explicit(&o->ndetached, 1, memory_order_relaxed);
        holder = sched_getg_entry(); /* the releaser, for the diagnostics */
    }
    int64_t by = holder ? holder->id : 0;
    bool pinned = false;
    if (last) {
        o->release_pc = pc;
        o->release_by = by;
        unregister_locked(o);
    } else {
        pinned = pin_for_proof_locked(o);
    }
    llock_release(&R.lock);
    release_locked_done(o, last, pinned, pc, by, false);
    return 0;
}

/* The part of a release after R.lock: destroy, or prove orphans. */
static void release_locked_done(lobj *o, bool last, bool pinned, void *pc,
                                int64_t by, bool at_exit) {
    if (last) {
        obj_destroy(o);
    } else if (pinned) {
        chan_after_release((leash_chan *)o, pc, by, at_exit);
        unpin(o, pc, by);
    }
}

void obj_release_from(lobj *o, coroutine *holder) {
    (void)obj_release_at(o, holder, NULL, REL_OWN);
}

bool obj_held_by(lobj *o, coroutine *g) {
    llock_acquire(&R.lock);
    bool held = ref_find(o, g) != NULL;
    llock_release(&R.lock);
    return held;
}

bool obj_all_holders(lobj *o, bool (*fn)(coroutine *, void *), void *arg) {
    llock_acquire(&R.lock);
    bool all = true;
    for (lref *r = o->holders; r && all; r = r->o_next)
        all = fn(r->holder, arg);
    llock_release(&R.lock);
    return all;
}

/* Releases everything g still holds (g is returning). */
/* g is returning. Only g itself or its spawner (before g ran) adds to
 * g->refs, so a g that holds nothing can tell without R.lock: most
 * coroutines hold nothing of their own when they return. */
void g_release_refs(coroutine *g) {
    if (!__atomic_load_n(&g->refs, __ATOMIC_ACQUIRE))
        return;
    for (;;) {
        llock_acquire(&R.lock);
        lref *r = g->refs;
        if (!r) {
            llock_release(&R.lock);
            return;
        }
        lobj *o = r->obj;
        uint32_t n = r->count;
        if (r->count > r->handed && !g->foreign && !o->drop_noted) {
            /* References it took itself and never released. Listed once
             * per object: several holders of one channel (a parent and
             * the child that retained it) each return without releasing,
             * and each return is the same leak, not another one. */
            o->drop_noted = true;
            if (R.ndropped < (int64_t)(sizeof R.dropped / sizeof R.dropped[0]))
                R.dropped[R.ndropped] = (dropped_obj){
                    o->type, o->id, o->file, o->line, g->id, g->spawn_file,
                    g->spawn_line, g->spawn_pc};
            R.ndropped++;
        }
        ref_unlink(r);
        bool last = atomic_fetch_sub(&o->refs, n) == n;
        void *pc = (void *)g->fn; /* "released as fn returned" */
        bool pinned = false;
        if (last) {
            o->release_pc = pc;
            o->release_by = g->id;
            unregister_locked(o);
        } else {
            pinned = pin_for_proof_locked(o);
        }
        llock_release(&R.lock);
        release_locked_done(o, last, pinned, pc, g->id, true);
    }
}

int obj_dropped(dropped_obj *out, int max, int64_t *total) {
    llock_acquire(&R.lock);
    int n = (int)(R.ndropped < max ? R.ndropped : max);
    if (n > (int)(sizeof R.dropped / sizeof R.dropped[0]))
        n = (int)(sizeof R.dropped / sizeof R.dropped[0]);
    memcpy(out, R.dropped, sizeof *out * (size_t)n);
    *total = R.ndropped;
    llock_release(&R.lock);
    return n;
}

void obj_foreach(void (*fn)(lobj *o, void *arg), void *arg) {
    llock_acquire(&R.lock);
    for (lobj *o = R.all; o; o = o->all_next)
        fn(o, arg);
    llock_release(&R.lock);
}

void obj_foreach_held(coroutine *g, void (*fn)(lobj *o, void *arg), void *arg) {
    llock_acquire(&R.lock);
    for (lref *r = g->refs; r; r = r->g_next)
        fn(r->obj, arg);
    llock_release(&R.lock);
}

size_t obj_count(int type) {
    llock_acquire(&R.lock);
    size_t n = 0;
    if (type)
        n = R.count[type];
    else
        for (int i = 0; i < OBJ__COUNT; i++)
            n += R.count[i];
    llock_release(&R.lock);
    return n;
}

/* --------------------------------------------------------- public API */

void *leash_retain(void *p) {
    lobj *o = obj_check(p, 0);
    if (!o)
        return NULL;
    coroutine *g = sched_getg_or_foreign();
    if (obj_retain_for(o, g, false) < 0)
        return NULL;
    return p;
}

/* A release by the calling coroutine or thread, of a reference it holds.
 * A thread that never took one has no g at all: NULL here must not be
 * read as the runtime's own holder record. Two exceptions:
 *  - a coroutine started by a plain thread (leash_run's main, or a
 *    leash_go from a thread) acts for that thread, so objects a program
 *    makes on its main thread before leash_run can be released in its
 *    main coroutine: with no reference of its own it drops a thread's;
 *  - leash_ticker_stop, whoever calls it, drops the reference
 *    leash_ticker_start gave, and it does so through leash_release.
 * Inlined, and strict_fail not in tail position, so that a strict-mode
 * dump shows the public call's frame (the dump starts below it). */
static inline __attribute__((always_inline)) int release_at(void *p,
                                                            void *pc) {
    lobj *o = obj_check(p, 0);
    if (!o)
        return LEASH_EINVAL;
    if (o->immortal)
        return 0;
    coroutine *g = sched_getg_entry();
    int instead = o->type == OBJ_TICKER ? REL_ANY
                  : g && !g->foreign && g->parent_id == 0 ? REL_THREADS
                                                          : REL_OWN;
    if (atomic_load(&o->refs) > 0 && (g || instead == REL_ANY) &&
        obj_release_at(o, g, pc, instead) == 0)
        return 0;
    int rc = strict_fail(LEASH_EINVAL, "leash_release: the caller holds no "
                                       "reference to this object (released "
                                       "twice?)");
    __asm__ volatile("" ::: "memory"); /* keeps the caller's frame */
    return rc;
}

int leash_release_checked(void *p) {
    return release_at(p, __builtin_return_address(0));
}

void leash_release(void *p) {
    (void)release_at(p, __builtin_return_address(0));
}

void leash_release_ptr_(void *pp) {
    void **p = pp;
    if (p && *p) {
        (void)release_at(*p, __builtin_return_address(0));
        *p = NULL;
    }
}

/* ------------------------------------------------------ detached references
 *
 * A reference owned by a data structure rather than by a coroutine
 * (leash.h, "Detached references"). All detached references of an object
 * share one record whose holder is obj_detached_holder: a holder that
 * never returns (so nothing releases them behind the program's back),
 * never waits (so the orphan proof, which needs every holder blocked on
 * the channel, is never made while one exists: whoever can reach the
 * structure can still use the channel), and whose record the exit check
 * reads to say the object was detached, by whom and where.
 */
INTERNAL coroutine obj_detached_holder = {.id = -1};

const lref *obj_detached_locked(lobj *o) {
    return ref_find(o, &obj_detached_holder);
}

/* Moves one reference of o from the record `from` to `to` (R.lock held);
 * LEASH_ENOMEM leaves everything as it was. The count does not change,
 * so no proof or destruction can follow. */
static int ref_move_locked(lobj *o, lref *from, coroutine *to) {
    if (retain_locked(o, to, false) < 0)
        return LEASH_ENOMEM;
    if (from->holder == &obj_detached_holder)
        atomic_fetch_sub_explicit(&o->ndetached, 1, memory_order_relaxed);
    if (--from->count < from->handed)
        from->handed = from->count;
    if (from->count == 0)
        ref_unlink(from);
    atomic_fetch_sub(&o->refs, 1);
    return 0;
}

/* The caller's record on o, with release_at's rule for the main
 * coroutine (it acts for the plain thread that started it). */
static lref *own_ref_locked(lobj *o, coroutine *g) {
    lref *r = ref_find(o, g);
    if (!r && g && !g->foreign && g->parent_id == 0)
        for (lref *x = o->holders; !r && x; x = x->o_next)
            if (x->holder && x->holder->foreign)
                r = x;
    return r;
}

int leash_ref_detach_at(const char *file, int line, void *p) {
    lobj *o = obj_check(p, 0);
    coroutine *g = sched_getg_entry();
    if (!o || !g)
        return LEASH_EINVAL;
    if (o->immortal)
        return 0;
    llock_acquire(&R.lock);
    lref *r = own_ref_locked(o, g);
    int rc = r ? ref_move_locked(o, r, &obj_detached_holder) : LEASH_EINVAL;
    if (rc == 0) {
        lref *d = ref_find(o, &obj_detached_holder);
        d->detached_by = g->foreign ? 0 : g->id;
        d->detach_file = file;
        d->detach_line = line;
    }
    llock_release(&R.lock);
    if (rc == LEASH_EINVAL)
        return strict_fail(rc, "leash_ref_detach: the caller holds no "
                               "reference to this object");
    return rc;
}

int leash_ref_adopt(void *p) {
    lobj *o = obj_check(p, 0);
    if (!o)
        return LEASH_EINVAL;
    if (o->immortal)
        return 0;
    coroutine *g = sched_getg_or_foreign();
    if (!g)
        return LEASH_ENOMEM;
    llock_acquire(&R.lock);
    lref *d = ref_find(o, &obj_detached_holder);
    int rc = d ? ref_move_locked(o, d, g) : LEASH_EINVAL;
    llock_release(&R.lock);
    if (rc == LEASH_EINVAL)
        return strict_fail(rc, "leash_ref_adopt: the object has no "
                               "detached reference");
    return rc;
}

API_FRAME int leash_release_detached(void *p) {
    lobj *o = obj_check(p, 0);
    if (!o)
        return LEASH_EINVAL;
    if (o->immortal)
        return 0;
    int rc = obj_release_at(o, &obj_detached_holder,
                            __builtin_return_address(0), REL_OWN);
    if (rc == LEASH_EINVAL)
        return strict_fail(rc, "leash_release_detached: the object has no "
                               "detached reference");
    return rc;
}

int leash_ref_detached(void *p) {
    lobj *o = obj_check(p, 0);
    return o ? atomic_load_explicit(&o->ndetached, memory_order_relaxed)
             : LEASH_EINVAL;
}

/* ------------------------------------------------------------------ fork */

void obj_fork_prepare(void) { llock_acquire(&R.lock); }
void obj_fork_parent(void) { llock_release(&R.lock); }

/* The child's only thread: the list is consistent (R.lock was held
 * across the fork). The memory stays (type-stable), only unusable. */
void obj_fork_child(void) {
    for (lobj *o = R.all; o; o = o->all_next)
        atomic_store_explicit(&o->magic, OBJ_DEAD, memory_order_relaxed);
    llock_release(&R.lock);
}
