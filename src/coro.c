/* SPDX-License-Identifier: MIT */
/*
 * coro.c — coroutines: spawn, exit, the registry, leash_run.
 *
 * A coroutine's record (coroutine) lives at the top of its stack (stack.c).
 * Live coroutines are linked into one of NSHARDS registry shards (chosen
 * by id) so that spawn and exit on different workers rarely share a lock,
 * while the diagnostics can still walk every coroutine.
 *
 * leash_go hands references: each object in its trailing list is retained
 * for the child before the child can run; the child's exit releases every
 * reference it still holds (obj.c).
 */
#include "internal.h"
#include "sched_tls.h"

#include <stdarg.h>
#include <stdio.h>

/* Shard locks get their rank here (lockrank.h): every other field starts
 * zeroed. */
#define SHARD_INIT {.lock = LLOCK_INIT(LR_SHARD)}
#define SHARD_INIT4 SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT
INTERNAL shard_t G_shards[NSHARDS] = {SHARD_INIT4, SHARD_INIT4, SHARD_INIT4,
                                      SHARD_INIT4};
_Static_assert(NSHARDS == 16, "G_shards' initialiser lists 16 shards");


/* Grows s's arrays to hold one more slot (s->lock held). */
static bool shard_grow(shard_t *s) {
    int cap = s->cap ? s->cap * 2 : 256;
    coroutine **slots = lrealloc(s->slots, sizeof *slots * (size_t)cap);
    if (!slots)
        return false;
    s->slots = slots;
    int *fr = lrealloc(s->free, sizeof *fr * (size_t)cap);
    if (!fr)
        return false; /* slots grew, cap did not: harmless */
    s->free = fr;
    s->cap = cap;
    return true;
}

int g_register(coroutine *g) {
    shard_t *s = &G_shards[g->shard];
    llock_acquire(&s->lock);
    int slot;
    if (s->nfree > 0) {
        slot = s->free[--s->nfree];
    } else {
        if (s->nslots == s->cap && !shard_grow(s)) {
            llock_release(&s->lock);
            return LEASH_ENOMEM;
        }
        slot = s->nslots++;
    }
    s->slots[slot] = g;
    g->reg_slot = slot;
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    llock_release(&s->lock);
    return 0;
}

void g_unregister(coroutine *g) {
    shard_t *s = &G_shards[g->shard];
    llock_acquire(&s->lock);
    s->slots[g->reg_slot] = NULL;
    if (atomic_fetch_sub_explicit(&s->count, 1, memory_order_relaxed) == 1) {
        s->nslots = s->nfree = 0; /* empty: start packed again */
    } else if (g->reg_slot == s->nslots - 1) {
        s->nslots--; /* the last slot: no need to remember it */
    } else {
        s->free[s->nfree++] = g->reg_slot; /* cap >= nslots > nfree */
    }
    llock_release(&s->lock);
}

bool registry_walk(bool (*fn)(coroutine *, void *), void *arg) {
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &G_shards[i];
        for (int from = 0;; from += REGISTRY_WALK_BATCH) {
            llock_acquire(&s->lock);
            int to = from + REGISTRY_WALK_BATCH;
            if (to > s->nslots)
                to = s->nslots;
            bool go_on = true;
            for (int k = from; k < to && go_on; k++)
                if (s->slots[k])
                    go_on = fn(s->slots[k], arg);
            llock_release(&s->lock);
            if (!go_on)
                return false;
            if (to < from + REGISTRY_WALK_BATCH)
                break;
        }
    }
    return true;
}

bool coro_alive(int64_t id) {
    shard_t *s = &G_shards[id % NSHARDS];
    bool alive = false;
    llock_acquire(&s->lock);
    SHARD_FOR_EACH(s, g) {
        if (g->id == id) {
            alive = true;
            break;
        }
    }
    llock_release(&s->lock);
    return alive;
}

size_t leash_num_coroutines(void) {
    if (in_forked_child())
        return 0; /* they stayed in the parent */
    int64_t n = 0;
    for (int i = 0; i < NSHARDS; i++)
        n += atomic_load_explicit(&G_shards[i].count, memory_order_relaxed);
    return n > 0 ? (size_t)n : 0;
}

/* The sections common.h's LEASH_API and ENTRY_FRAME place code in; the
 * linker defines their bounds. */
extern const char __start_leash_api[] INTERNAL, __stop_leash_api[] INTERNAL;
extern const char __start_leash_entry[] INTERNAL,
    __stop_leash_entry[] INTERNAL;

bool rt_pc_is_api(uintptr_t ret) {
    uintptr_t pc = ret - 1; /* inside the call instruction */
    return ret && pc >= (uintptr_t)__start_leash_api &&
           pc < (uintptr_t)__stop_leash_api;
}

bool rt_pc_is_entry(uintptr_t ret) {
    uintptr_t pc = ret - 1;
    return ret && pc >= (uintptr_t)__start_leash_entry &&
           pc < (uintptr_t)__stop_leash_entry;
}

/* Runs on the new coroutine's stack (called from sched.c's entry). */
ENTRY_FRAME void coro_body(coroutine *g) {
    g->fn(g->arg);
    /* The coroutine that called fork() ended in the child: it was the
     * child's last thread (proc.c, "fork"), and like a last thread that
     * returns, it ends the process. */
    if (in_forked_child())
        exit(0);
    g_release_refs(g);
    g_unregister(g);
    if (g->exit_fn)
        g->exit_fn(g->exit_arg);
}

/* Spawns fn(arg) at file:line, handing it a reference to each of objs. */
int64_t coro_spawn(const char *file, int line, void *spawn_pc,
                   void (*fn)(void *), void *arg, lobj *const *objs,
                   int nobj) {
    int rc = sched_ensure_started();
    if (rc < 0)
        return rc;
    /* Read inline: nothing here switches (sched_tls.h's rule). */
    worker *w = sched_tls_w;
    coroutine *parent = sched_getg_entry();
    lstack *st = stack_get(w);
    if (!st)
        return LEASH_ENOMEM;
    coroutine *g = stack_g(st);
    memset(g, 0, G_ZEROED_SIZE); /* the rest: see coroutine */
    g->name[0] = '\0';
    g->stack = st;
    g->fn = fn;
    g->arg = arg;
    g->spawn_file = file;
    g->spawn_line = line;
    g->spawn_pc = spawn_pc;
    g->parent_id = parent ? parent->id : 0;
    g->scope = parent ? parent->scope : 0;
    if (parent && !parent->foreign && atomic_load(&parent->system))
        atomic_store_explicit(&g->system, true, memory_order_relaxed);
    if (parent && parent->nlabels) {
        memcpy(g->label_key, parent->label_key, sizeof g->label_key);
        memcpy(g->label_val, parent->label_val, sizeof g->label_val);
        g->nlabels = parent->nlabels;
    }

    for (int i = 0; i < nobj; i++) {
        if (obj_retain_for(objs[i], g, true) < 0) {
            g_release_refs(g);
            stack_put(w, st);
            return LEASH_ENOMEM;
        }
    }
    g->id = sched_new_id(w);
    g->shard = (int)(g->id % NSHARDS);
    sched_init_g(g);
    if (g_register(g) < 0) {
        g_release_refs(g);
        sched_discard_g(w, g);
        return LEASH_ENOMEM;
    }
    int64_t id = g->id; /* g may run and exit before we return */
    sched_start_g(g);
    /* A spawner that has kept its worker for a whole slice while others
     * wait gives way, as Go's preemption would make it: on one worker a
     * loop of leash_go would otherwise hold every coroutine it starts,
     * and their stacks, until it blocks (100,000 one-millisecond sleepers
     * took 411 MB at 1 proc, Go's 47). */
    if (w && parent && unlikely(sched_slice_over(w)))
        leash_yield();
    return id;
}

/* Collects a NULL-terminated list of leash objects; -1 if one is not a
 * live leash object or there are more than max. */
static inline __attribute__((always_inline)) int
collect_objs(va_list ap, lobj **objs, int max) {
    int n = 0;
    for (void *p; (p = va_arg(ap, void *));) {
        lobj *o = obj_check(p, 0);
        if (!o || n == max)
            return -1;
        objs[n++] = o;
    }
    return n;
}

int coro_collect_objs(va_list ap, lobj **objs, int max) {
    return collect_objs(ap, objs, max);
}

int64_t leash_go_at(const char *file, int line, void (*fn)(void *), void *arg,
                    ...) {
    if (!fn)
        return LEASH_EINVAL;
    lobj *objs[MAX_HANDED];
    va_list ap; /* COLLECT_HANDED, with the loop inline */
    va_start(ap, arg);
    int n = collect_objs(ap, objs, MAX_HANDED);
    va_end(ap);
    if (n < 0)
        return LEASH_EINVAL;
    return coro_spawn(file, line, __builtin_return_address(0), fn, arg, objs,
                      n);
}

/* leash_go1/2/3: the first n of a, b, c are handed; each must be a live
 * object (the macros checked its type; NULL here is a forgotten one). */
int64_t leash_go_n_at(const char *file, int line, void (*fn)(void *),
                      void *arg, int n, void *a, void *b, void *c) {
    void *in[3] = {a, b, c};
    lobj *objs[3];
    if (!fn || n < 0 || n > 3)
        return LEASH_EINVAL;
    for (int i = 0; i < n; i++)
        if (!(objs[i] = obj_check(in[i], 0)))
            return LEASH_EINVAL;
    return coro_spawn(file, line, __builtin_return_address(0), fn, arg, objs,
                      n);
}

int64_t leash_self(void) {
    coroutine *g = sched_getg();
    return g && !g->foreign ? g->id : 0;
}

void leash_set_name(const char *name) {
    coroutine *g = sched_getg_or_foreign();
    if (!g)
        return;
    if (!name)
        name = "";
    if (g->foreign) {
        snprintf(g->name, sizeof g->name, "%s", name);
        return;
    }
    shard_t *s = &G_shards[g->shard]; /* dumps copy the name under it */
    llock_acquire(&s->lock);
    snprintf(g->name, sizeof g->name, "%s", name);
    llock_release(&s->lock);
    TRACE(NULL, TR_NAME, g);
}

/* ------------------------------------------------------------ leash_run */

typedef struct {
    int (*fn)(void *);
    void *arg;
    int result;
    llock lock;
    bool done;
    coroutine *waiter;
} run_ctx;

/* Tells leash_run's thread that coroutine 1 is gone: called by
 * coro_body after the coroutine is unregistered, so leash_run returns
 * with leash_num_coroutines() no longer counting it. */
static void main_exited(void *p) {
    run_ctx *r = p;
    llock_acquire(&r->lock);
    r->done = true;
    coroutine *w = r->waiter;
    if (w)
        sched_ready(w, false);
    llock_release(&r->lock);
}

ENTRY_FRAME static void main_coroutine(void *p) {
    run_ctx *r = p;
    coroutine *g = sched_getg();
    g->exit_fn = main_exited;
    g->exit_arg = r;
    r->result = r->fn(r->arg);
}

API_FRAME int leash_run(int (*main_fn)(void *), void *arg) {
    if (!main_fn)
        return LEASH_EINVAL;
    coroutine *self = sched_getg();
    if (self && !self->foreign)
        return main_fn(arg); /* already on a coroutine: just call it */
    run_ctx r = {.fn = main_fn, .arg = arg, .lock = LLOCK_INIT(LR_RUN)};
    coroutine *me = sched_prepare_park();
    if (!me)
        return LEASH_ENOMEM;
    int64_t id = coro_spawn(NULL, 0, __builtin_return_address(0),
                            main_coroutine, &r, NULL, 0);
    if (id < 0)
        return (int)id;
    llock_acquire(&r.lock);
    if (!r.done) {
        r.waiter = me;
        g_wait_begin(me, WR_JOIN, NULL);
        sched_park(llock_release_fn, &r.lock);
        g_wait_end(me);
        /* The waker released the lock after readying us: wait for it so
         * r (on this stack) outlives its use. */
        llock_acquire(&r.lock);
    }
    llock_release(&r.lock);
    observer_impl.run_returned();
    return r.result;
}
