/* SPDX-License-Identifier: MIT */
/* sync: uncontended leash_mutex lock+unlock (mutex), leash_rwmutex
 * rlock+runlock (rwmutex), and leash_once_do after the first call (once),
 * N times each on one coroutine; ns per operation. Go: sync.Mutex,
 * sync.RWMutex, sync.Once. BENCH_ONLY=mutex|rwmutex|once runs one of
 * them (bench/run.sh callgrind counts each on its own). */
#include "bench_util.h"

#include <string.h>

static int part(const char *name)
{
    const char *only = getenv("BENCH_ONLY");
    return !only || !*only || !strcmp(only, name);
}

static int64_t n;
static int64_t once_calls;

static void once_fn(void *arg)
{
    (void)arg;
    once_calls++;
}

static int bench_main(void *arg)
{
    (void)arg;
    int64_t w = bench_warmup(n), t0, el;

    static leash_mutex mu = LEASH_MUTEX_INIT;
    if (!part("mutex"))
        goto rwmutex;
    for (int64_t i = 0; i < w; i++) {
        BENCH_CHECK(leash_mutex_lock(&mu));
        BENCH_CHECK(leash_mutex_unlock(&mu));
    }
    t0 = bench_now();
    for (int64_t i = 0; i < n; i++) {
        BENCH_CHECK(leash_mutex_lock(&mu));
        BENCH_CHECK(leash_mutex_unlock(&mu));
    }
    el = bench_now() - t0;
    bench_per_op("mutex", el, n);

rwmutex:;
    static leash_rwmutex rw = LEASH_RWMUTEX_INIT;
    if (!part("rwmutex"))
        goto once;
    for (int64_t i = 0; i < w; i++) {
        BENCH_CHECK(leash_rwmutex_rlock(&rw));
        BENCH_CHECK(leash_rwmutex_runlock(&rw));
    }
    t0 = bench_now();
    for (int64_t i = 0; i < n; i++) {
        BENCH_CHECK(leash_rwmutex_rlock(&rw));
        BENCH_CHECK(leash_rwmutex_runlock(&rw));
    }
    el = bench_now() - t0;
    bench_per_op("rwmutex", el, n);

once:;
    static leash_once once = LEASH_ONCE_INIT;
    if (!part("once"))
        return 0;
    for (int64_t i = 0; i < w + 1; i++)
        BENCH_CHECK(leash_once_do(&once, once_fn, NULL));
    t0 = bench_now();
    for (int64_t i = 0; i < n; i++)
        BENCH_CHECK(leash_once_do(&once, once_fn, NULL));
    el = bench_now() - t0;
    if (once_calls != 1)
        bench_fail("once: fn ran %lld times", (long long)once_calls);
    bench_per_op("once", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 10000000);
    return leash_run(bench_main, NULL);
}
