/* SPDX-License-Identifier: MIT */
/*
 * queryall_ctx.c — fix 2 for queryall.c: cancel the losers with a context
 * (rakyll.org/leakingctx, as the write-up suggests).
 *
 * queryAll makes a cancellable context and hands it to every query. Each
 * query waits for its answer *or* for the context (a select on
 * leash_ctx_done), and offers its answer the same way. When the first
 * answer arrives, queryAll cancels the context: the two slower queries
 * stop at once, wherever they are, and return.
 *
 * Run:   make demo SCENARIO=queryall_ctx
 * Exit:  0 (also under LEASH_LEAKCHECK=1: nothing is left at exit)
 */
#include <leash.h>

#include "example.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* func query(ctx) (int, error): 0-99 ms of work, abandoned on cancel
 * (query() of example.h, watching the context). */
static int query_ctx(leash_ctx *ctx, int *out)
{
    int n = rand_intn(100);
    leash_chan *timer = leash_after(n * MS);
    leash_case cs[2] = {
        LEASH_RECV_CASE(timer, (int64_t *)NULL),
        LEASH_RECV_CASE(leash_ctx_done(ctx), (char *)NULL),
    };
    cs[0].size = sizeof(int64_t); /* the timer's element; value discarded */
    cs[1].size = 0;               /* done carries no value */
    int which = leash_select(cs, 2);
    leash_release(timer);
    if (which != 0)
        return leash_ctx_err(ctx); /* canceled: stop working */
    *out = n;
    return 0;
}

typedef struct {
    leash_chan *ch;
    leash_ctx *ctx;
} ask_args;

static void ask(void *arg)
{
    ask_args a = *(ask_args *)arg;
    free(arg);
    int v;
    if (query_ctx(a.ctx, &v) < 0)
        return;
    leash_case cs[2] = {
        LEASH_SEND_CASE(a.ch, &v),               /* case ch <- v:        */
        LEASH_RECV_CASE(leash_ctx_done(a.ctx), (char *)NULL), /* case <-ctx.Done(): */
    };
    cs[1].size = 0;
    leash_select(cs, 2);
}

static int query_all(void)
{
    leash_ctx *ctx = leash_ctx_with_cancel(leash_ctx_background());
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    for (int i = 0; i < 3; i++) {
        ask_args *a = malloc(sizeof *a);
        *a = (ask_args){ch, ctx};
        leash_go(ask, a, ch, ctx); /* hands a reference to both */
    }
    int v = 0;
    leash_recv(ch, &v);
    leash_ctx_cancel(ctx); /* cancel(): the losers return */
    leash_release(ctx);
    leash_release(ch);
    return v;
}

static int run(void *arg)
{
    (void)arg;
    leash_snapshot *snap = leash_snapshot_take();
    for (int i = 0; i < 4; i++) {
        query_all();
        leash_sleep(150 * MS); /* as in queryall.c */
        printf("#goroutines: %zu\n", leash_num_coroutines());
    }

    report_fixed(snap, NULL);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
