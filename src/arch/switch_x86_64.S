/* SPDX-License-Identifier: MIT */
/*
 * Context switch for x86-64 System V.
 *
 * void *mctx_switch(void **save, void *to, void *arg)
 *   Pushes the callee-saved registers (rbp rbx r12-r15) and an 8-byte slot
 *   holding MXCSR and the x87 control word, stores rsp in *save, loads
 *   `to` as rsp, pops the same layout and returns `arg` (rax) on the new
 *   stack. ldmxcsr and fldcw are slow (they serialise floating point on
 *   many cores) and the environment rarely differs between coroutines,
 *   so they run only when the saved values differ from the current ones. It returns by `jmp` rather than `ret`: after a stack switch the
 *   return-stack predictor is always wrong, an indirect jump is not.
 *
 * A fresh stack (ctx_init) holds that layout with r12 = g, r13 = entry and
 * the return address mctx_trampoline, which calls entry(arg, g).
 */
#if defined(__x86_64__)
        .text
        .globl  mctx_switch
        .hidden mctx_switch
        .type   mctx_switch, @function
        .p2align 4
mctx_switch:
        .cfi_startproc
        /* No endbr64: only ever called directly (sched.c's ctx_switch),
         * and IBT checks the targets of indirect branches only. */
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movl    (%rsp), %r8d            /* each as stored: loads that */
        movzwl  4(%rsp), %r9d           /* span two stores stall */
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        cmpl    (%rsp), %r8d            /* the same FP environment? */
        jne     2f
        cmpw    4(%rsp), %r9w
        jne     2f
1:      addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        movq    %rdx, %rax
        popq    %rcx
        jmpq    *%rcx
2:      ldmxcsr (%rsp)
        fldcw   4(%rsp)
        jmp     1b
        .cfi_endproc
        .size   mctx_switch, .-mctx_switch

        /* In the section of the coroutines' entry frames (ENTRY_FRAME,
         * src/common.h): dumps end a stack there. */
        .pushsection leash_entry,"ax",@progbits
        .globl  mctx_trampoline
        .hidden mctx_trampoline
        .type   mctx_trampoline, @function
        .p2align 4
mctx_trampoline:
        .cfi_startproc
        .cfi_undefined rip
        endbr64
        movq    %rax, %rdi
        movq    %r12, %rsi
        callq   *%r13
        ud2
        .cfi_endproc
        .size   mctx_trampoline, .-mctx_trampoline
        .popsection
#endif
        .section .note.GNU-stack,"",@progbits
