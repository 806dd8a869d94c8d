/* SPDX-License-Identifier: MIT */
/* dump100k: the time of one coroutine dump, to a FILE open on /dev/null.
 *
 *   dump100k_2  N coroutines (100,000) each parked receiving from its own
 *               channel (an inbox, as per-connection state would be):
 *               leash_dump(f, 2), Go's runtime.Stack text
 *   dump100k_3  the same, leash_dump(f, 3): leash's text with wait objects
 *               and spawn sites
 *   dump_shared DUMP_SHARED (1,000) coroutines all parked on one shared
 *               channel: leash_dump(f, 2). Small on purpose: the dump
 *               counts a channel's wait queue once per waiter on it
 *
 * Each timed dump follows one untimed dump of the same set (symbol tables
 * loaded, buffers warm). Then the channels are closed and all exit. Go:
 * runtime.Stack(buf, true) with the buffer large enough, written to
 * /dev/null, after one untimed call; that Go time is the reference for
 * both dump100k metrics (Go has no format 3). */
#include <stdatomic.h>
#include <string.h>

#include "bench_util.h"

#define DUMP_SHARED 1000

static int64_t n;
static atomic_llong started, exited;

struct parker_arg {
    leash_chan *ch;          /* borrowed: main closes and releases it */
    leash_chan *done;
    int64_t total;
};

static void parker(void *arg)
{
    struct parker_arg *a = arg;
    leash_chan *done = a->done;
    int64_t total = a->total;
    atomic_fetch_add(&started, 1);
    if (bench_wait(a->ch) != LEASH_ECLOSED)
        bench_fail("dump100k: expected a closed channel");
    if (atomic_fetch_add(&exited, 1) + 1 == total)
        bench_signal(done);
}

static int64_t timed_dump(FILE *f, int debug, int64_t want)
{
    int64_t t0 = bench_now();
    int got = leash_dump(f, debug);
    int64_t el = bench_now() - t0;
    if (got < 0)
        bench_fail("dump100k: leash_dump(%d): %s", debug, leash_strerror(got));
    if (got < want)
        bench_fail("dump100k: leash_dump(%d) wrote %d coroutines, want >= %lld",
                   debug, got, (long long)want);
    return el;
}

/* Starts total parkers, on one shared channel (shared) or one each. */
static struct parker_arg *park(int64_t total, int shared, leash_chan *done)
{
    struct parker_arg *a = calloc((size_t)total, sizeof *a);
    if (!a)
        bench_fail("dump100k: out of memory");
    atomic_store(&started, 0);
    atomic_store(&exited, 0);
    leash_chan *one = shared ? bench_chan(0, 0, "shared") : NULL;
    for (int64_t i = 0; i < total; i++) {
        a[i] = (struct parker_arg){one ? one : bench_chan(0, 0, "inbox"), done,
                                   total};
        if (leash_go(parker, &a[i]) <= 0)
            bench_fail("dump100k: leash_go failed at %lld", (long long)i);
    }
    while (atomic_load(&started) < total)
        leash_yield();
    return a;
}

static void unpark(struct parker_arg *a, int64_t total, int shared,
                   leash_chan *done)
{
    for (int64_t i = 0; i < (shared ? 1 : total); i++)
        BENCH_CHECK(leash_close(a[i].ch));
    BENCH_CHECK(bench_wait(done));
    for (int64_t i = 0; i < (shared ? 1 : total); i++)
        leash_release(a[i].ch);
    free(a);
}

static int bench_main(void *arg)
{
    (void)arg;
    leash_chan *done = bench_chan(0, 1, "done");
    FILE *f = fopen("/dev/null", "w");
    if (!f)
        bench_fail("dump100k: /dev/null: %s", strerror(errno));

    struct parker_arg *a = park(DUMP_SHARED, 1, done);
    timed_dump(f, 2, DUMP_SHARED);
    int64_t el_shared = timed_dump(f, 2, DUMP_SHARED);
    unpark(a, DUMP_SHARED, 1, done);

    a = park(n, 0, done);
    timed_dump(f, 2, n);
    int64_t el2 = timed_dump(f, 2, n);
    int64_t el3 = timed_dump(f, 3, n);
    unpark(a, n, 0, done);

    fclose(f);
    leash_release(done);
    bench_report("dump100k_2", (double)el2 / 1e6, "ms");
    bench_report("dump100k_3", (double)el3 / 1e6, "ms");
    bench_report("dump_shared", (double)el_shared / 1e6, "ms");
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 100000);
    return leash_run(bench_main, NULL);
}
