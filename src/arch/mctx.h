/* SPDX-License-Identifier: MIT */
/*
 * mctx.h — the machine context switch, one per architecture:
 * arch/switch_<arch>.S switches, arch/mctx_<arch>.c lays out a new
 * coroutine's first frame for it (CMakeLists.txt picks the pair).
 */
#ifndef LEASH_ARCH_MCTX_H
#define LEASH_ARCH_MCTX_H

#include "../common.h"

/* arch/switch_*.S: saves callee-saved registers, MXCSR and the x87
 * control word on the current stack, stores the stack pointer in *save,
 * switches to `to` and returns `arg` there. */
INTERNAL void *mctx_switch(void **save, void *to, void *arg);
INTERNAL void mctx_trampoline(void);
/* Lays out a fresh stack so that switching to the result calls
 * entry(arg_from_switch, g). */
INTERNAL void *ctx_init(void *stack_top, void (*entry)(void *, void *),
                        void *g);

#endif /* LEASH_ARCH_MCTX_H */
