/* SPDX-License-Identifier: MIT */
/*
 * generator_ctx.c — fix for generator.c: a cancellable context.
 *
 * The generator selects on the context's done channel beside its send,
 * so once the consumer cancels, it returns (rakyll.org/leakingctx):
 *
 *     select {
 *     case <-ctx.Done(): return   // avoid leaking this coroutine
 *     case ch <- n: n++
 *     }
 *
 * The consumer cancels when it breaks out, and on every other path too
 * (Go's `defer cancel()`; in C, before each return).
 *
 * Run:   make demo SCENARIO=generator_ctx
 * Exit:  0 (also under LEASH_LEAKCHECK=1)
 */
#include <leash.h>

#include "example.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    leash_chan *ch;
    leash_ctx *ctx;
} gen_args;

static void generate(void *arg)
{
    gen_args a = *(gen_args *)arg;
    free(arg);
    int n = 0;
    for (;;) {
        leash_case cs[2] = {
            LEASH_RECV_CASE(leash_ctx_done(a.ctx), (char *)NULL),
            LEASH_SEND_CASE(a.ch, &n),
        };
        cs[0].size = 0; /* done carries no value */
        int i = leash_select(cs, 2);
        if (i != 1)
            return; /* ctx is done (or the select failed) */
        n++;
    }
}

/* gen is a generator that can be cancelled by cancelling ctx. */
static leash_chan *gen(leash_ctx *ctx)
{
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    gen_args *a = malloc(sizeof *a);
    *a = (gen_args){ch, ctx};
    leash_go(generate, a, ch, ctx);
    return ch;
}

static void consume(void)
{
    leash_ctx *ctx = leash_ctx_with_cancel(leash_ctx_background());
    leash_chan *ch = gen(ctx);
    int n;
    while (leash_recv(ch, &n) == 0) {
        printf("%d ", n);
        if (n == 5) {
            leash_ctx_cancel(ctx); /* cancel(): the generator returns */
            break;
        }
    }
    printf("\n");
    leash_ctx_cancel(ctx); /* defer cancel(): every path cancels */
    leash_release(ctx);
    leash_release(ch);
}

static int run(void *arg)
{
    (void)arg;
    leash_snapshot *snap = leash_snapshot_take();
    for (int i = 0; i < 3; i++) {
        consume();
        leash_sleep(50 * 1000 * 1000); /* as in generator.c */
        printf("#goroutines: %zu\n", leash_num_coroutines());
    }

    report_fixed(snap, NULL);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
