/* SPDX-License-Identifier: MIT */
/* ctx: cancel-and-wake cycle. Each round makes a context with
 * leash_ctx_with_cancel(leash_ctx_background()), hands it to a waiter
 * coroutine that blocks on leash_ctx_done(), cancels it, waits for the
 * waiter's acknowledgement and releases it; ns per round. Go: the same
 * with context.WithCancel. */
#include "bench_util.h"

static int64_t n;

struct pair {
    leash_chan *ctxs, *ack;
};

static void waiter(void *arg)
{
    struct pair *p = arg;
    leash_ctx *c;
    while (leash_recv(p->ctxs, &c) == 0) {
        /* Borrowed: main holds the reference until it has our ack. */
        if (leash_recv_n(leash_ctx_done(c), NULL, 0) != LEASH_ECLOSED)
            bench_fail("ctx: done channel not closed");
        BENCH_CHECK(bench_signal(p->ack));
    }
    BENCH_CHECK(leash_close(p->ack));
}

static int bench_main(void *arg)
{
    (void)arg;
    struct pair p = {bench_chan(sizeof(leash_ctx *), 0, "ctxs"),
                     bench_chan(0, 0, "ack")};
    if (leash_go(waiter, &p, p.ctxs, p.ack) <= 0)
        bench_fail("ctx: leash_go failed");
    int64_t w = bench_warmup(n), t0 = 0;
    for (int64_t i = 0; i < w + n; i++) {
        if (i == w)
            t0 = bench_now();
        leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
        if (!c)
            bench_fail("ctx: leash_ctx_with_cancel failed");
        BENCH_CHECK(leash_send(p.ctxs, &c));
        leash_ctx_cancel(c);
        BENCH_CHECK(bench_wait(p.ack));
        leash_release(c);
    }
    int64_t el = bench_now() - t0;
    BENCH_CHECK(leash_close(p.ctxs));
    if (bench_wait(p.ack) != LEASH_ECLOSED)
        bench_fail("ctx: ack not closed");
    leash_release(p.ctxs);
    leash_release(p.ack);
    bench_per_op("ctx", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 200000);
    return leash_run(bench_main, NULL);
}
