/* SPDX-License-Identifier: MIT */
/* yield: two coroutines each call leash_yield N times; ns per yield.
 * Go: two goroutines calling runtime.Gosched. */
#include "bench_util.h"

static int64_t n;

static void yielder(void *arg)
{
    for (int64_t i = 0; i < n; i++)
        leash_yield();
    bench_signal((leash_chan *)arg);
}

static int bench_main(void *arg)
{
    (void)arg;
    leash_chan *done = bench_chan(0, 2, "done");
    int64_t t0 = bench_now();
    for (int k = 0; k < 2; k++)
        if (leash_go(yielder, done, done) <= 0)
            bench_fail("yield: leash_go failed");
    BENCH_CHECK(bench_wait(done));
    BENCH_CHECK(bench_wait(done));
    int64_t el = bench_now() - t0;
    leash_release(done);
    bench_per_op("yield", el, 2 * n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 500000);
    return leash_run(bench_main, NULL);
}
