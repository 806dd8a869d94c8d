/* SPDX-License-Identifier: MIT */
/*
 * endless_loop_fixed.c — fix for endless_loop.c: a scheduling point and an
 * exit condition.
 *
 * The loop checks a context (Go's `select { case <-ctx.Done(): return;
 * default: }`, here leash_ctx_err) and yields now and then, so it neither
 * hogs its worker nor outlives the caller's interest: main cancels it and
 * the count drops back to 1.
 *
 * Run:   make demo SCENARIO=endless_loop_fixed
 * Exit:  0 (also under LEASH_LEAKCHECK=1)
 */
#include <leash.h>

#include "example.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static volatile uint64_t spins;

static void spin(void *arg)
{
    leash_ctx *ctx = arg;
    while (leash_ctx_err(ctx) == 0) { /* exit condition */
        spins++;
        if (spins % 4096 == 0)
            leash_yield(); /* scheduling point */
    }
}

static int run(void *arg)
{
    (void)arg;
    leash_snapshot *snap = leash_snapshot_take();
    leash_ctx *ctx = leash_ctx_with_cancel(leash_ctx_background());
    leash_go(spin, ctx, ctx);
    leash_sleep(400 * MS);
    printf("#goroutines: %zu (working)\n", leash_num_coroutines());
    leash_ctx_cancel(ctx);
    leash_release(ctx);

    report_fixed(snap, " (cancelled)");
    return 0;
}

int main(void)
{
    setenv("LEASH_HOG_MS", "200", 0); /* as in endless_loop.c */
    return leash_run(run, NULL);
}
