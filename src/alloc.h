/* SPDX-License-Identifier: MIT */
/*
 * alloc.h — the runtime's allocation entry points (alloc.c).
 */
#ifndef LEASH_ALLOC_H
#define LEASH_ALLOC_H

#include "common.h"

/* Every allocation of the runtime goes through these, so tests can make
 * the Nth one fail (alloc_test_fail). */
INTERNAL void *lmalloc(size_t n);
INTERNAL void *lcalloc(size_t n, size_t sz);
INTERNAL void *lrealloc(void *p, size_t n);
INTERNAL void lfree(void *p);
/* Whether this allocation is the one a test asked to fail (for mmap sites
 * and pools): one relaxed load inline, the countdown out of line. */
extern INTERNAL _Atomic long lalloc_fail_countdown; /* 0: no injection */
INTERNAL bool lalloc_should_fail_slow(void);
static inline bool lalloc_should_fail(void) {
    if (likely(atomic_load_explicit(&lalloc_fail_countdown,
                                    memory_order_relaxed) == 0))
        return false;
    return lalloc_should_fail_slow();
}

#endif /* LEASH_ALLOC_H */
