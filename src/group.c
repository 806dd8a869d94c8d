/* SPDX-License-Identifier: MIT */
/*
 * group.c — structured concurrency: Go's errgroup with a context.
 *
 * A group owns a child context of its parent and a wait group. Members
 * are coroutines spawned at the caller's file:line (the macro passes it
 * through), each holding a runtime reference on the group until it is
 * gone (it is released after the member is unregistered). The
 * first member to return non-zero records its result and cancels the
 * group's context; leash_group_wait joins every member, then cancels the
 * context too, so nothing started in the group outlives the wait.
 */
#include "internal.h"

struct leash_group {
    lobj obj;
    leash_ctx *ctx;         /* owned by the group */
    leash_waitgroup wg;
    _Atomic int first_err;
    _Atomic bool has_err;
};

typedef struct {
    leash_group *g;
    int (*fn)(void *);
    void *arg;
} member;

static leash_group *group_check(const void *p) {
    return (leash_group *)obj_check(p, OBJ_GROUP);
}

static void group_destroy(lobj *o) {
    leash_group *g = (leash_group *)o;
    if (g->ctx)
        obj_release_from((lobj *)g->ctx, NULL);
    obj_free_mem(o);
}

leash_group *leash_group_new_at(const char *file, int line,
                                leash_ctx *parent) {
    if (sched_ensure_started() < 0)
        return NULL;
    coroutine *owner = sched_getg_or_foreign();
    if (!owner)
        return NULL;
    leash_ctx *ctx = leash_ctx_with_cancel_at(file, line, parent);
    if (!ctx)
        return NULL;
    leash_group *g = obj_alloc(OBJ_GROUP, sizeof *g);
    if (!g || obj_retain_for((lobj *)ctx, NULL, false) < 0) {
        if (g)
            obj_free_mem_type(g, OBJ_GROUP);
        leash_release(ctx);
        return NULL;
    }
    leash_release(ctx); /* the group holds the context now */
    ((lobj *)ctx)->internal = true; /* not the user's to release */
    g->ctx = ctx;
    g->wg = (leash_waitgroup)LEASH_WAITGROUP_INIT;
    if (obj_init(&g->obj, OBJ_GROUP, file, line, group_destroy, owner) < 0) {
        obj_release_from((lobj *)ctx, NULL);
        obj_free_mem_type(g, OBJ_GROUP);
        return NULL;
    }
    return g;
}

leash_ctx *leash_group_ctx(leash_group *g) {
    leash_group *x = group_check(g);
    return x ? x->ctx : NULL;
}

/* Runs after the member is unregistered (coro_body), so leash_group_wait
 * returns only when every member is really gone. The member's runtime
 * reference keeps the group (and its wait group) alive until here. */
static void member_exited(void *p) {
    member *m = p;
    leash_group *g = m->g;
    lfree(m);
    leash_waitgroup_done(&g->wg);
    obj_release_from(&g->obj, NULL);
}

ENTRY_FRAME static void member_main(void *p) {
    member *m = p;
    coroutine *self = sched_getg();
    self->exit_fn = member_exited;
    self->exit_arg = m;
    int rc = m->fn(m->arg);
    if (rc != 0) {
        bool z = false;
        if (atomic_compare_exchange_strong(&m->g->has_err, &z, true)) {
            atomic_store(&m->g->first_err, rc);
            leash_ctx_cancel(m->g->ctx);
        }
    }
}

int64_t leash_group_go_at(const char *file, int line, leash_group *g,
                          int (*fn)(void *), void *arg, ...) {
    leash_group *x = group_check(g);
    if (!x || !fn)
        return LEASH_EINVAL;
    lobj *objs[MAX_HANDED];
    int n = COLLECT_HANDED(arg, objs);
    if (n < 0)
        return LEASH_EINVAL;
    member *m = lmalloc(sizeof *m);
    if (!m)
        return LEASH_ENOMEM;
    if (obj_retain_for(&x->obj, NULL, false) < 0) {
        lfree(m);
        return LEASH_ENOMEM;
    }
    *m = (member){.g = x, .fn = fn, .arg = arg};
    leash_waitgroup_add(&x->wg, 1);
    int64_t id = coro_spawn(file, line, __builtin_return_address(0),
                            member_main, m, objs, n);
    if (id < 0) {
        lfree(m);
        leash_waitgroup_done(&x->wg);
        obj_release_from(&x->obj, NULL);
    }
    return id;
}

API_FRAME int leash_group_wait(leash_group *g) {
    leash_group *x = group_check(g);
    if (!x)
        return LEASH_EINVAL;
    leash_waitgroup_wait(&x->wg);
    leash_ctx_cancel(x->ctx);
    return atomic_load(&x->has_err) ? atomic_load(&x->first_err) : 0;
}
