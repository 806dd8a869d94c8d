/* SPDX-License-Identifier: MIT */
/*
 * diag_spinner.c — testprog_diag_spinner: a dump (or any leash_blocking
 * call) from a coroutine while another coroutine spins without yielding
 * (tests/test_diag.c). Run with LEASH_PROCS=2: one worker is taken by the
 * spinner, the other must run everything else.
 *
 * Main starts the spinner, sleeps 10 ms, then makes 200 leash_blocking
 * calls, taking a leash_dump every 20th; prints "step N" as it goes and
 * "done" at the end, exit 0. A stall shows as a missing "done" (the test
 * kills it).
 */
#include <stdatomic.h>
#include <stdio.h>

#include "leash.h"

static atomic_int stop;

static void spin(void *arg) {
    (void)arg;
    volatile unsigned n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        n = n + 1u;
}

static intptr_t nop(void *arg) {
    (void)arg;
    return 0;
}

static int run(void *arg) {
    (void)arg;
    leash_go(spin, NULL);
    leash_sleep(10 * 1000000LL);
    FILE *null = fopen("/dev/null", "w");
    for (int i = 0; i < 200; i++) {
        if (i % 20 == 0) {
            leash_dump(null, LEASH_DUMP_STACKS);
            printf("step %d\n", i);
            fflush(stdout);
        } else {
            leash_blocking(nop, NULL);
        }
    }
    atomic_store(&stop, 1);
    printf("done\n");
    fflush(stdout);
    return 0;
}

int main(void) { return leash_run(run, NULL); }
