/* SPDX-License-Identifier: MIT */
/* sleepers: N coroutines each leash_sleep(1 ms); total ms until all are
 * done (the last one to finish signals main). */
#include <stdatomic.h>

#include "bench_util.h"

static int64_t n;
static atomic_llong exited;

static void sleeper(void *arg)
{
    leash_chan *done = arg;
    leash_sleep(1000000);
    if (atomic_fetch_add(&exited, 1) + 1 == n)
        bench_signal(done);
}

static int bench_main(void *arg)
{
    (void)arg;
    leash_chan *done = bench_chan(0, 1, "done");
    int64_t t0 = bench_now();
    for (int64_t i = 0; i < n; i++)
        if (leash_go(sleeper, done) <= 0)
            bench_fail("sleepers: leash_go failed at %lld", (long long)i);
    BENCH_CHECK(bench_wait(done));
    int64_t el = bench_now() - t0;
    leash_release(done);
    bench_report("sleepers", (double)el / 1e6, "ms");
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 100000);
    return leash_run(bench_main, NULL);
}
