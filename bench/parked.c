/* SPDX-License-Identifier: MIT */
/* parked: N coroutines (1,000,000 in full mode) each block receiving from
 * one shared channel. Reports the RSS growth per parked coroutine
 * (parked, B/op, from /proc/self/statm like the Go side) and the time to
 * create one and have it parked (parked_spawn, ns/op); then closes the
 * channel and waits for all to exit. The children borrow the channels. */
#include <stdatomic.h>

#include "bench_util.h"

static int64_t n;
static atomic_llong started, exited;

struct shared {
    leash_chan *ch, *done;
};

static void parker(void *arg)
{
    struct shared *s = arg;
    leash_chan *done = s->done;
    atomic_fetch_add(&started, 1);
    if (bench_wait(s->ch) != LEASH_ECLOSED)
        bench_fail("parked: expected a closed channel");
    if (atomic_fetch_add(&exited, 1) + 1 == n)
        bench_signal(done);
}

static int bench_main(void *arg)
{
    (void)arg;
    struct shared s = {bench_chan(0, 0, "ch"), bench_chan(0, 1, "done")};
    int64_t rss0 = bench_rss_bytes();
    int64_t t0 = bench_now();
    for (int64_t i = 0; i < n; i++)
        if (leash_go(parker, &s) <= 0)
            bench_fail("parked: leash_go failed at %lld", (long long)i);
    while (atomic_load(&started) < n)
        leash_yield();
    int64_t el = bench_now() - t0;
    int64_t rss1 = bench_rss_bytes();
    BENCH_CHECK(leash_close(s.ch));
    BENCH_CHECK(bench_wait(s.done));
    leash_release(s.ch);
    leash_release(s.done);
    bench_report("parked", (double)(rss1 - rss0) / (double)n, "B/op");
    bench_per_op("parked_spawn", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 100000);
    return leash_run(bench_main, NULL);
}
