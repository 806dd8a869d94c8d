/* SPDX-License-Identifier: MIT */
/*
 * ctx_x86_64.c — the first frame of a new coroutine, as
 * arch/switch_x86_64.S expects to find it.
 *
 * mctx_switch pops MXCSR and the x87 control word (one 8-byte
 * slot), r15, r14, r13, r12, rbx and rbp, then jumps to the return
 * address: mctx_trampoline, which calls entry(worker, g) with r13 and
 * r12. rbp = 0 ends every frame walk of the new stack.
 */
#include "../internal.h"

void *ctx_init(void *stack_top, void (*entry)(void *, void *), void *g) {
    uintptr_t top = ((uintptr_t)stack_top & ~(uintptr_t)15) - 16;
    uint64_t *sp = (uint64_t *)(top - 64); /* 16-aligned: see switch_*.S */
    sp[0] = 0x1F80 | ((uint64_t)0x037F << 32); /* MXCSR, x87 CW */
    sp[1] = 0;                                 /* r15 */
    sp[2] = 0;                                 /* r14 */
    sp[3] = (uint64_t)(uintptr_t)entry;        /* r13 */
    sp[4] = (uint64_t)(uintptr_t)g;            /* r12 */
    sp[5] = 0;                                 /* rbx */
    sp[6] = 0;                                 /* rbp: ends frame walks */
    sp[7] = (uint64_t)(uintptr_t)mctx_trampoline;
    return sp;
}
