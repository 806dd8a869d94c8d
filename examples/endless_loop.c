/* SPDX-License-Identifier: MIT */
/*
 * endless_loop.c — scenario 4 of the write-up: a coroutine in an endless
 * loop.
 *
 * The worker below never returns and never blocks: no channel is
 * involved, so no proof of a leak exists — it might finish some day, for
 * all anybody can tell. leash's watchdog (sysmon) notices a coroutine that
 * has run for LEASH_HOG_MS (default 1000; this example sets 200) without
 * a scheduling point and keeps its stack: dumps mark it
 * "SUSPECT (runs without yielding (endless loop?))", and the leak checks
 * report it as a coroutine still alive.
 *
 * leash does not preempt (like Go before 1.14): with one worker thread
 * the loop would starve everything else, so this example asks for two
 * (LEASH_PROCS=2 unless set).
 *
 * Fix: endless_loop_fixed.c (yield, and an exit condition).
 *
 * Run:   make demo SCENARIO=endless_loop
 * Exit:  0 (23 under LEASH_LEAKCHECK=1)
 */
#include <leash.h>

#include "example.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static volatile uint64_t spins;

static void spin(void *arg)
{
    (void)arg;
    for (;;) /* no exit condition, no scheduling point */
        spins++;
}

static int run(void *arg)
{
    (void)arg;
    if (leash_num_workers() < 2) {
        printf("needs 2 worker threads (LEASH_PROCS >= 2): the loop would "
               "starve main\n");
        return 0;
    }
    leash_snapshot *snap = leash_snapshot_take();
    leash_go(spin, NULL);
    leash_sleep(400 * MS);
    printf("#goroutines: %zu\n", leash_num_coroutines());

    printf("\nleash_dump(stdout, LEASH_DUMP_LEASH):\n\n");
    leash_dump(stdout, LEASH_DUMP_LEASH);

    leash_leak_opts opts = {.timeout_ns = 200 * MS, .out = stdout};
    printf("leash_leak_verify:\n");
    int n = leash_leak_verify(snap, &opts);
    printf("%d coroutine(s) still running\n", n);
    leash_snapshot_free(snap);
    return 0; /* the process exit ends the loop */
}

int main(void)
{
    setenv("LEASH_PROCS", "2", 0);
    setenv("LEASH_HOG_MS", "200", 0);
    return leash_run(run, NULL);
}
