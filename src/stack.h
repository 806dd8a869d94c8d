/* SPDX-License-Identifier: MIT */
/*
 * stack.h — coroutine stacks: mmap'd in chunks, committed lazily, pooled
 * (stack.c, which also describes a slot's layout and overflow detection).
 */
#ifndef LEASH_STACK_H
#define LEASH_STACK_H

#include "common.h"

typedef struct lstack {
    char *lo;            /* lowest usable byte (just above the guard) */
    char *hi;            /* one past the highest byte */
    size_t size;         /* hi - mapping base, guard included */
    bool guarded;        /* a PROT_NONE page below lo, else a canary */
    unsigned vg_id;      /* valgrind's stack id (stack.c) */
    struct lstack *next; /* pool link */
} lstack;
#define STACK_CANARY 0x6c656173682d2121ull /* "leash-!!" */
INTERNAL void stack_config(void);
INTERNAL size_t stack_size(void);
/* Returns a stack with room for `hdr` bytes at its top (the g), or NULL. */
INTERNAL lstack *stack_get(worker *w);
INTERNAL void stack_put(worker *w, lstack *s);
INTERNAL bool stack_canary_ok(const lstack *s);
INTERNAL void stack_drain_cache(worker *w);
INTERNAL void stack_trim(int budget);
INTERNAL void stack_release_all(void);
INTERNAL int stack_threads(void); /* the prefault helper: 0 or 1 */
INTERNAL void stack_prefault_stats(long *pooled, long *prefaulted);
INTERNAL void stack_fork_prepare(void);
INTERNAL void stack_fork_parent(void);
INTERNAL void stack_fork_child(void);
INTERNAL long stack_max_map_count(void); /* vm.max_map_count (65530) */
INTERNAL void stack_install_overflow_handler(void);
INTERNAL void stack_overflow_report(coroutine *g, const char *how);

#endif /* LEASH_STACK_H */
