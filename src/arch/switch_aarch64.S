/* SPDX-License-Identifier: MIT */
/*
 * Context switch for aarch64 (AAPCS64, Linux).
 *
 * void *mctx_switch(void **save, void *to, void *arg)
 *   Saves the callee-saved state in a 176-byte frame on the current stack,
 *   stores sp in *save, loads `to` as sp, restores the same layout and
 *   returns `arg` (x0) on the new stack. The frame, in 8-byte slots from
 *   the saved sp:
 *
 *     [0]  x19  [1]  x20  [2]  x21  [3]  x22  [4]  x23  [5]  x24
 *     [6]  x29  [7]  x30  [8]  x25  [9]  x26  [10] x27  [11] x28
 *     [12] d8 ... [19] d15                 [20] FPCR  [21] unused
 *
 *   x29 (fp) and x30 (lr) sit in slots 6 and 7, where the x86-64 frame
 *   keeps rbp and the return address, so the diagnostics walk a parked
 *   coroutine (snapshot.c: walk_parked) the same way on both.
 *   Only the low 64 bits of v8-v15 are callee-saved (AAPCS64 6.1.2).
 *   FPCR (rounding, flush-to-zero, trap enables) is the counterpart of
 *   MXCSR and the x87 control word; writing it may synchronise the
 *   pipeline on some cores, so it is written only when it differs.
 *   sp stays 16-byte aligned throughout (the kernel enforces it).
 *
 *   It returns with `ret`, not `br x30`: a return needs no BTI landing pad
 *   if the binary is ever built with branch protection, and x30 is always
 *   a return address (into the caller, or mctx_trampoline).
 *
 * A fresh stack (ctx_init, mctx_aarch64.c) holds that layout with
 * x19 = g, x20 = entry, x29 = 0 and x30 = mctx_trampoline, which
 * calls entry(arg, g).
 */
#if defined(__aarch64__)
        .text
        .globl  mctx_switch
        .hidden mctx_switch
        .type   mctx_switch, %function
        .p2align 4
mctx_switch:
        .cfi_startproc
        sub     sp, sp, #176
        .cfi_def_cfa_offset 176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x29, x30, [sp, #48]
        .cfi_offset x29, -128
        .cfi_offset x30, -120
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
        mov     x10, sp
        str     x10, [x0]
        mov     sp, x1
        ldr     x10, [sp, #160]
        cmp     x9, x10
        b.eq    1f
        msr     fpcr, x10
1:      ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x29, x30, [sp, #48]
        ldp     x25, x26, [sp, #64]
        ldp     x27, x28, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #176
        .cfi_def_cfa_offset 0
        mov     x0, x2
        ret
        .cfi_endproc
        .size   mctx_switch, .-mctx_switch

        /* In the section of the coroutines' entry frames (ENTRY_FRAME,
         * src/common.h): dumps end a stack there. */
        .pushsection leash_entry,"ax",%progbits
        .globl  mctx_trampoline
        .hidden mctx_trampoline
        .type   mctx_trampoline, %function
        .p2align 4
mctx_trampoline:
        .cfi_startproc
        .cfi_undefined x30
        mov     x1, x19
        blr     x20
        brk     #0x1            /* entry never returns */
        .cfi_endproc
        .size   mctx_trampoline, .-mctx_trampoline
        .popsection
#endif
        .section .note.GNU-stack,"",%progbits
