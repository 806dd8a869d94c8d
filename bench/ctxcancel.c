/* SPDX-License-Identifier: MIT */
/* ctxcancel: leash_ctx_with_cancel(leash_ctx_background()), cancel it,
 * release it; no waiter. ns per context. Go: ctx, cancel :=
 * context.WithCancel(context.Background()); cancel(). */
#include "bench_util.h"

static int64_t n;

static int bench_main(void *arg)
{
    (void)arg;
    int64_t w = bench_warmup(n), t0 = 0;
    for (int64_t i = 0; i < w + n; i++) {
        if (i == w)
            t0 = bench_now();
        leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
        if (!c)
            bench_fail("ctxcancel: leash_ctx_with_cancel failed");
        leash_ctx_cancel(c);
        leash_release(c);
    }
    int64_t el = bench_now() - t0;
    bench_per_op("ctxcancel", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 1000000);
    return leash_run(bench_main, NULL);
}
