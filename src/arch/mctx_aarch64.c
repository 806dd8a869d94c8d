/* SPDX-License-Identifier: MIT */
/*
 * ctx_aarch64.c — the first frame of a new coroutine, as
 * arch/switch_aarch64.S expects to find it.
 *
 * mctx_switch restores x19-x28, x29, x30, d8-d15 and FPCR from a
 * 176-byte frame (layout in switch_aarch64.S), then returns to x30:
 * mctx_trampoline, which calls entry(worker, g) with x20 and x19.
 * x29 = 0 ends every frame walk of the new stack; FPCR = 0 is the
 * default floating-point environment (round to nearest, no traps, no
 * flush-to-zero), as a new thread gets. The frame and the stack pointer
 * the trampoline runs with are 16-byte aligned.
 */
#include "../internal.h"

enum { F_X19 = 0, F_X20 = 1, F_X29 = 6, F_X30 = 7, F_FPCR = 20, F_SLOTS = 22 };

void *ctx_init(void *stack_top, void (*entry)(void *, void *), void *g) {
    uintptr_t top = ((uintptr_t)stack_top & ~(uintptr_t)15) - 16;
    uint64_t *sp = (uint64_t *)(top - F_SLOTS * 8);
    memset(sp, 0, F_SLOTS * 8); /* x21-x28, d8-d15 */
    sp[F_X19] = (uint64_t)(uintptr_t)g;
    sp[F_X20] = (uint64_t)(uintptr_t)entry;
    sp[F_X29] = 0; /* ends frame walks */
    sp[F_X30] = (uint64_t)(uintptr_t)mctx_trampoline;
    sp[F_FPCR] = 0;
    return sp;
}
