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
INTERNAL bool lalloc_should_fail(void); /* for mmap sites */

#endif /* LEASH_ALLOC_H */
