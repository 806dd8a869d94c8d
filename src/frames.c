/* SPDX-License-Identifier: MIT */
/*
 * frames.c — stacks by frame pointer: the one walker the stack sampler
 * (snapshot.c, sampler.c), the CPU profiler (diag/cpuprof.c) and the lock-rank
 * checker (lockrank.c) share, and the registers of an interrupted thread.
 *
 * leash and the code it is built with keep frame pointers, so a stack is
 * a chain of (saved frame pointer, return address) pairs. A walk never
 * leaves [lo, hi) and stops on a frame pointer that does not grow, is
 * misaligned or is 0: a torn or foreign chain ends the walk, never
 * faults. The stack read may belong to a coroutine running elsewhere
 * (the sampler reads parked stacks that may resume) or to the
 * interrupted code (signal handlers): racy by design, so the sanitizers
 * are told not to look; callers that need a consistent walk check for
 * themselves (snapshot.c's nresume).
 */
#define _GNU_SOURCE 1 /* REG_RIP */
#include "internal.h"

#include <signal.h>
#include <ucontext.h>

__attribute__((no_sanitize_address, no_sanitize_thread, noinline)) int
fp_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int n,
        int max) {
    /* fp <= hi - 16, not fp + 16 <= hi: a garbage fp near the top of
     * the address space (TSan delivers signals inside its own runtime,
     * which keeps no frame pointer) wrapped around and was followed. */
    while (n < max && hi >= 16 && fp >= lo && fp <= hi - 16 && !(fp & 7)) {
        uintptr_t next = ((const uintptr_t *)fp)[0];
        uintptr_t ret = ((const uintptr_t *)fp)[1];
        if (!ret)
            break;
        pcs[n++] = ret;
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

void uc_regs(const void *ucv, uintptr_t *pc, uintptr_t *fp, uintptr_t *sp) {
    const ucontext_t *uc = ucv;
#if defined(__x86_64__)
    *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    *fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    *sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    *pc = (uintptr_t)uc->uc_mcontext.pc;
    *fp = (uintptr_t)uc->uc_mcontext.regs[29];
    *sp = (uintptr_t)uc->uc_mcontext.sp;
#else
    (void)uc;
    *pc = *fp = *sp = 0;
#endif
}
