/* SPDX-License-Identifier: MIT */
/* leakverify10k: leash_leak_verify(snapshot, &opts) over N (10,000)
 * coroutines started after leash_snapshot_take, its report written to
 * /dev/null.
 *
 *   leakverify10k       all N parked for good on leash_recv(NULL, ...):
 *                       the check proves them stuck and returns at once
 *                       (one pass to find them, one to report them)
 *   leakverify10k_live  each of the N parked on its own live channel that
 *                       main holds, timeout_ns = 1 ms: it retries until
 *                       the timeout (a pass, a 1 ms nap, a pass, the
 *                       report pass). Own channels, not one shared: a
 *                       pass counts a channel's wait queue once per waiter
 *                       on it, which bench_dump100k's dump_shared shows
 *
 * ms per call, after one untimed call. No Go equivalent (goleak is not in
 * the standard library). The live ones are released at the end; the stuck
 * ones stay parked until the process exits.
 *
 * Baseline: NULL (every coroutine but the caller: here exactly the N under
 * test) unless BENCH_LEAK_SNAPSHOT=1, which checks against a
 * leash_snapshot_take() scope instead. NULL is the default because the
 * first leash_snapshot_take() of a process crashes at this commit
 * (src/diag/leakcheck.c scope_new grows its table only when n == cap, but
 * starts at n = 1, cap = 0); switch the default once that is fixed. */
#include <stdatomic.h>
#include <string.h>

#include "bench_util.h"

static int64_t n;
static atomic_llong started, exited;

struct live_arg {
    leash_chan *ch;    /* borrowed: main closes and releases it */
    leash_chan *done;
};

static void live(void *arg)
{
    struct live_arg *a = arg;
    leash_chan *done = a->done;
    atomic_fetch_add(&started, 1);
    if (bench_wait(a->ch) != LEASH_ECLOSED)
        bench_fail("leakverify10k: expected a closed channel");
    if (atomic_fetch_add(&exited, 1) + 1 == n)
        bench_signal(done);
}

static void stuck(void *arg)
{
    (void)arg;
    int v;
    atomic_fetch_add(&started, 1);
    leash_recv((leash_chan *)NULL, &v); /* never returns */
}

static void wait_started(int64_t want)
{
    while (atomic_load(&started) < want)
        leash_yield();
}

static int use_snapshot;

static leash_snapshot *snapshot(void)
{
    if (!use_snapshot)
        return NULL;
    leash_snapshot *s = leash_snapshot_take();
    if (!s)
        bench_fail("leakverify10k: leash_snapshot_take failed");
    return s;
}

static int64_t timed_verify(leash_snapshot *snap, leash_leak_opts *o,
                            const char *what)
{
    int64_t t0 = bench_now();
    int got = leash_leak_verify(snap, o);
    int64_t el = bench_now() - t0;
    if (got != n)
        bench_fail("leakverify10k: %s: found %d, want %lld", what, got,
                   (long long)n);
    return el;
}

static int bench_main(void *arg)
{
    (void)arg;
    FILE *f = fopen("/dev/null", "w");
    if (!f)
        bench_fail("leakverify10k: /dev/null: %s", strerror(errno));
    leash_leak_opts o = {.timeout_ns = 1000000, .out = f};

    /* Live: each parked on a channel main can still send on. */
    leash_chan *done = bench_chan(0, 1, "done");
    struct live_arg *a = calloc((size_t)n, sizeof *a);
    if (!a)
        bench_fail("leakverify10k: out of memory");
    leash_snapshot *snap = snapshot();
    for (int64_t i = 0; i < n; i++) {
        a[i] = (struct live_arg){bench_chan(0, 0, "live"), done};
        if (leash_go(live, &a[i]) <= 0)
            bench_fail("leakverify10k: leash_go failed");
    }
    wait_started(n);
    timed_verify(snap, &o, "live");
    int64_t el_live = timed_verify(snap, &o, "live");
    for (int64_t i = 0; i < n; i++)
        BENCH_CHECK(leash_close(a[i].ch));
    BENCH_CHECK(bench_wait(done));
    for (int64_t i = 0; i < n; i++)
        leash_release(a[i].ch);
    leash_release(done);
    free(a);
    leash_snapshot_free(snap);

    /* Stuck: parked on nil channels; proven stuck, so no retries. */
    atomic_store(&started, 0);
    snap = snapshot();
    for (int64_t i = 0; i < n; i++)
        if (leash_go(stuck, NULL) <= 0)
            bench_fail("leakverify10k: leash_go failed");
    wait_started(n);
    o.timeout_ns = 10000000000; /* must not matter: they are stuck */
    timed_verify(snap, &o, "stuck");
    int64_t el_stuck = timed_verify(snap, &o, "stuck");
    leash_snapshot_free(snap);
    fclose(f);

    bench_report("leakverify10k", (double)el_stuck / 1e6, "ms");
    bench_report("leakverify10k_live", (double)el_live / 1e6, "ms");
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 10000);
    const char *e = getenv("BENCH_LEAK_SNAPSHOT");
    use_snapshot = e && !strcmp(e, "1");
    return leash_run(bench_main, NULL);
}
