/* SPDX-License-Identifier: MIT */
/* spawn: spawn a coroutine that only signals completion, wait for it;
 * N times. ns per spawn+exit+wait. Go: go func(){ done<-struct{}{} }(); <-done
 * The child borrows `done` (main holds the reference and waits). */
#include "bench_util.h"

static int64_t n;

static void child(void *arg)
{
    bench_signal((leash_chan *)arg);
}

static int bench_main(void *arg)
{
    (void)arg;
    leash_chan *done = bench_chan(0, 0, "done");
    int64_t w = bench_warmup(n), t0 = 0;
    for (int64_t i = 0; i < w + n; i++) {
        if (i == w)
            t0 = bench_now();
        if (leash_go(child, done) <= 0)
            bench_fail("spawn: leash_go failed");
        BENCH_CHECK(bench_wait(done));
    }
    int64_t el = bench_now() - t0;
    leash_release(done);
    bench_per_op("spawn", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 200000);
    return leash_run(bench_main, NULL);
}
