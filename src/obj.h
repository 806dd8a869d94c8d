/* SPDX-License-Identifier: MIT */
/*
 * obj.h — leash objects: identity, reference counts and their holders
 * (obj.c), carved from one reserved address range (objmem.c). The
 * bookkeeping is under one lock, R.lock, under which nothing else is
 * taken.
 */
#ifndef LEASH_OBJ_H
#define LEASH_OBJ_H

#include "common.h"
#include "coro.h"
#include "scheduler.h"

enum obj_type { OBJ_CHAN = 1, OBJ_CTX, OBJ_TICKER, OBJ_GROUP, OBJ_CONN,
                OBJ__COUNT };
_Static_assert(OBJ__COUNT <= OBJ_CACHE_TYPES, "grow OBJ_CACHE_TYPES");
#define OBJ_MAGIC 0x4c455348u /* "LESH" */
#define OBJ_DEAD 0xdeadbeefu

struct lobj {
    _Atomic uint32_t magic;
    /* Read by obj_check on any pointer, racing with the reuse of dead
     * memory: atomic, and kept across reuse (memory is reused by type). */
    _Atomic uint8_t type;
    bool immortal;          /* static (the background context): no counting */
    bool internal;          /* owned by another object (a context's done) */
    _Atomic int64_t refs;
    int64_t id;
    const char *file;
    int line;
    int64_t created_by;     /* coroutine id */
    int64_t created_at;     /* leash_now() */
    lref *holders;
    _Atomic int nholders;   /* records in holders (written under R.lock) */
    _Atomic int ndetached;  /* detached references (written under R.lock) */
    bool drop_noted;        /* listed once in the dropped report (R.lock) */
    lobj *all_next, *all_prev; /* registry of live objects */
    void (*destroy)(lobj *);
    void *release_pc;       /* where the last reference went (R.lock) */
    int64_t release_by;     /* by which coroutine */
};
INTERNAL int obj_init(lobj *o, int type, const char *file, int line,
                      void (*destroy)(lobj *), coroutine *owner);
/* Validates a user pointer: the object, or NULL if not live / wrong type
 * (type 0: any). obj_check (below, inline) takes the common case, an
 * aligned pointer into objmem, and leaves the rest to obj_check_slow. */
INTERNAL lobj *obj_check_slow(const void *p, int type);
INTERNAL int obj_retain_for(lobj *o, coroutine *holder, bool handed);
INTERNAL void *obj_alloc(int type, size_t size);
/* objmem.c: the range objects are carved from. obj_check reads a magic
 * only at an address objmem_holds, so a wild pointer cannot fault. */
struct objmem {
    char *_Atomic base;
    _Atomic size_t committed; /* readable bytes at base; only grows */
};
extern INTERNAL struct objmem objmem;
INTERNAL void *objmem_alloc(size_t size); /* zeroed; R.lock held */
static inline bool objmem_holds(const void *p) {
    size_t n = atomic_load_explicit(&objmem.committed, memory_order_acquire);
    char *base = atomic_load_explicit(&objmem.base, memory_order_relaxed);
    return (uintptr_t)p - (uintptr_t)base < n;
}
static inline lobj *obj_check(const void *p, int type) {
    lobj *o = (lobj *)p;
    if (unlikely(!objmem_holds(p) || ((uintptr_t)p & 7)))
        return obj_check_slow(p, type);
    if (atomic_load_explicit(&o->magic, memory_order_acquire) != OBJ_MAGIC ||
        (type && o->type != type))
        return NULL;
    return o;
}
INTERNAL void obj_free_mem_type(void *p, int type);
INTERNAL void obj_release_from(lobj *o, coroutine *holder);
/* The same, recording the call site (pc) for the orphan proof. */
/* When holder holds no reference: LEASH_EINVAL (REL_OWN), or drop one a
 * plain thread holds (REL_THREADS) or anyone's (REL_ANY). */
enum { REL_OWN, REL_THREADS, REL_ANY };
INTERNAL int obj_release_at(lobj *o, coroutine *holder, void *pc,
                           int instead);
INTERNAL bool obj_held_by(lobj *o, coroutine *g);
/* The holder of detached references (leash_ref_detach): owned by a data
 * structure, not by a coroutine. It never waits on anything, so the
 * orphan proof counts it as a holder that can still act. */
extern INTERNAL coroutine obj_detached_holder;
/* o's detached record (R.lock held: obj_foreach callbacks), or NULL. */
INTERNAL const lref *obj_detached_locked(lobj *o);
/* Calls fn(holder, arg) for each holder record until it returns false;
 * returns whether all returned true. R.lock held meanwhile. */
INTERNAL bool obj_all_holders(lobj *o, bool (*fn)(coroutine *, void *),
                              void *arg);
/* A runtime reference, only if o is still alive (count > 0). */
INTERNAL bool obj_try_retain(lobj *o);
/* Keeps o from being destroyed, only if it is still alive, without
 * becoming a holder: a bare count, invisible to the orphan proof, and no
 * release record when it goes (obj_try_retain's runtime reference would
 * block proofs while held and overwrite the channel's release site when
 * dropped). For readers such as the diagnostics. If obj_unpin drops the
 * last count, it destroys o (with no release site). */
INTERNAL bool obj_try_pin(lobj *o);
INTERNAL void obj_unpin(lobj *o);
INTERNAL size_t obj_count(int type);
INTERNAL void obj_free_mem(lobj *o); /* after destroy: mark dead, free */
INTERNAL void obj_drain_cache(worker *w);
/* An object whose last references went only because its owner returned
 * (reported as leaked: docs/DESIGN-NOTES.md, "Leak rules"). Kept for
 * LEASH_LEAKCHECK. */
typedef struct {
    int type;
    int64_t id;
    const char *file;
    int line;
    int64_t owner;
    const char *owner_file;
    int owner_line;
    void *owner_pc;   /* its spawn_pc: the site when owner_file is NULL */
} dropped_obj;
INTERNAL int obj_dropped(dropped_obj *out, int max, int64_t *total);
/* Calls fn for every live object (R.lock held: fn must not call back). */
INTERNAL void obj_foreach(void (*fn)(lobj *o, void *arg), void *arg);
/* Calls fn for every object g holds a reference on (R.lock held). */
INTERNAL void obj_foreach_held(coroutine *g, void (*fn)(lobj *o, void *arg),
                               void *arg);

#endif /* LEASH_OBJ_H */
