/* SPDX-License-Identifier: MIT */
/* parked: N coroutines (1,000,000 in full mode) parked three ways:
 *   - each blocks receiving from one shared channel: the RSS growth per
 *     parked coroutine (parked, B/op, from /proc/self/statm like the Go
 *     side) and the time to create one and have it parked (parked_spawn,
 *     ns/op); then the channel is closed and all exit;
 *   - each waits on one context's done channel (parked_ctx_spawn); then
 *     the context is cancelled and all exit;
 *   - each sleeps for an hour (parked_sleep_spawn); they are still asleep
 *     when main returns and the process ends.
 * The children borrow the channel and the context. */
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

static void sleeper(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    leash_sleep(3600LL * 1000000000);
}

/* Starts n coroutines fn(arg) and returns the time until all started. */
static int64_t start_all(void (*fn)(void *), void *arg)
{
    atomic_store(&started, 0);
    atomic_store(&exited, 0);
    int64_t t0 = bench_now();
    for (int64_t i = 0; i < n; i++)
        if (leash_go(fn, arg) <= 0)
            bench_fail("parked: leash_go failed at %lld", (long long)i);
    while (atomic_load(&started) < n)
        leash_yield();
    return bench_now() - t0;
}

static int bench_main(void *arg)
{
    (void)arg;
    struct shared s = {bench_chan(0, 0, "ch"), bench_chan(0, 1, "done")};
    int64_t rss0 = bench_rss_bytes();
    int64_t el = start_all(parker, &s);
    int64_t rss1 = bench_rss_bytes();
    BENCH_CHECK(leash_close(s.ch));
    BENCH_CHECK(bench_wait(s.done));
    leash_release(s.ch);
    bench_report("parked", (double)(rss1 - rss0) / (double)n, "B/op");
    bench_per_op("parked_spawn", el, n);

    leash_ctx *ctx = leash_ctx_with_cancel(leash_ctx_background());
    if (!ctx)
        bench_fail("parked: no context");
    s.ch = leash_ctx_done(ctx);
    el = start_all(parker, &s);
    leash_ctx_cancel(ctx);
    BENCH_CHECK(bench_wait(s.done));
    leash_release(ctx);
    leash_release(s.done);
    bench_per_op("parked_ctx_spawn", el, n);

    el = start_all(sleeper, NULL);
    bench_per_op("parked_sleep_spawn", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 100000);
    return leash_run(bench_main, NULL);
}
