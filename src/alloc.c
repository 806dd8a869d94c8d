/* SPDX-License-Identifier: MIT */
/*
 * alloc.c — the runtime's allocation entry points.
 *
 * Every allocation of the runtime goes through lmalloc & co. so that tests
 * can make the Nth allocation from now fail and check that the caller
 * returns LEASH_ENOMEM (or NULL) and leaves everything consistent.
 */
#include "internal.h"

_Atomic long lalloc_fail_countdown; /* 0: off; n: the nth call fails */

/* Test hook (declared in tests/, not in leash.h): the nth allocation from
 * now fails; 0 turns injection off. Stack mappings count too. */
void alloc_test_fail(long nth) { atomic_store(&lalloc_fail_countdown, nth); }

bool lalloc_should_fail_slow(void) {
    long v = atomic_load_explicit(&lalloc_fail_countdown, memory_order_relaxed);
    while (v > 0) {
        if (atomic_compare_exchange_weak(&lalloc_fail_countdown, &v, v - 1))
            return v == 1;
    }
    return false;
}

void *lmalloc(size_t n) { return lalloc_should_fail() ? NULL : malloc(n); }
void *lcalloc(size_t n, size_t sz) {
    return lalloc_should_fail() ? NULL : calloc(n, sz);
}
void *lrealloc(void *p, size_t n) {
    return lalloc_should_fail() ? NULL : realloc(p, n);
}
void lfree(void *p) { free(p); }
