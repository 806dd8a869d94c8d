/* SPDX-License-Identifier: MIT */
/*
 * frames.h — stacks by frame pointer, and the registers of an interrupted
 * thread (frames.c): the one walker the stack sampler, the CPU profiler
 * and the lock-rank checker share.
 */
#ifndef LEASH_FRAMES_H
#define LEASH_FRAMES_H

#include "common.h"

/* Return addresses by frame pointer from fp, never outside [lo, hi), into
 * pcs[n..max); returns the new count. Safe on a torn or foreign chain. */
INTERNAL int fp_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
                     int n, int max);
/* The interrupted pc, frame pointer and stack pointer of a signal's
 * ucontext (all 0 on an architecture leash does not know). */
INTERNAL void uc_regs(const void *ucv, uintptr_t *pc, uintptr_t *fp,
                      uintptr_t *sp);

#endif /* LEASH_FRAMES_H */
