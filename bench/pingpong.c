/* SPDX-License-Identifier: MIT */
/* pingpong: round trips between two coroutines over two unbuffered int
 * channels; ns per round trip. Go: the same with chan int.
 *
 * With BENCH_PAIRS=K (bench/scale.sh's "pairs"): K independent pairs, each
 * on its own two channels, each pinger doing N round trips at once; wall
 * time over all K x N round trips (a throughput: it should fall as procs
 * are added), reported as "pairs". */
#include "bench_util.h"

static int64_t n;

struct pair {
    leash_chan *ping, *pong;
    leash_chan *done; /* pairs mode: the pinger signals main here */
};

static void ponger(void *arg)
{
    struct pair *p = arg;
    int v;
    while (leash_recv(p->ping, &v) == 0)
        BENCH_CHECK(leash_send(p->pong, &v));
    BENCH_CHECK(leash_close(p->pong));
}

/* Makes p's channels and starts its ponger, which waits on ping. */
static void pair_start(struct pair *p, leash_chan *done)
{
    p->ping = bench_chan(sizeof(int), 0, "ping");
    p->pong = bench_chan(sizeof(int), 0, "pong");
    p->done = done;
    if (leash_go(ponger, p, p->ping, p->pong) <= 0)
        bench_fail("pingpong: leash_go failed");
}

/* Round trips first .. first+count-1 from p's pinging side, checked. */
static void rounds(struct pair *p, int64_t first, int64_t count)
{
    for (int64_t i = first; i < first + count; i++) {
        int v = (int)i;
        BENCH_CHECK(leash_send(p->ping, &v));
        BENCH_CHECK(leash_recv(p->pong, &v));
        if (v != (int)i)
            bench_fail("pingpong: got %d want %d", v, (int)i);
    }
}

/* Closes ping, checks that the ponger closed pong, releases both. */
static void pair_end(struct pair *p)
{
    int v;
    BENCH_CHECK(leash_close(p->ping));
    if (leash_recv(p->pong, &v) != LEASH_ECLOSED)
        bench_fail("pingpong: pong not closed");
    leash_release(p->ping);
    leash_release(p->pong);
}

static void pinger(void *arg)
{
    struct pair *p = arg;
    rounds(p, 0, n);
    BENCH_CHECK(bench_signal(p->done));
}

/* K pairs at once; the pongers start (and park) before the clock does. */
static void pairs(int64_t k)
{
    struct pair *ps = calloc((size_t)k, sizeof *ps);
    leash_chan *done = bench_chan(0, (size_t)k, "done");
    if (!ps)
        bench_fail("pingpong: out of memory");
    for (int64_t i = 0; i < k; i++)
        pair_start(&ps[i], done);
    int64_t t0 = bench_now();
    for (int64_t i = 0; i < k; i++)
        if (leash_go(pinger, &ps[i], ps[i].ping, ps[i].pong, done) <= 0)
            bench_fail("pingpong: leash_go failed");
    for (int64_t i = 0; i < k; i++)
        BENCH_CHECK(bench_wait(done));
    int64_t el = bench_now() - t0;
    for (int64_t i = 0; i < k; i++)
        pair_end(&ps[i]);
    leash_release(done);
    free(ps);
    bench_per_op("pairs", el, k * n);
}

static int bench_main(void *arg)
{
    (void)arg;
    int64_t k = bench_env_n("BENCH_PAIRS", 0);
    if (k > 0) {
        pairs(k);
        return 0;
    }
    bench_diag_start();
    struct pair p;
    pair_start(&p, NULL);
    int64_t w = bench_warmup(n);
    rounds(&p, 0, w);
    int64_t t0 = bench_now();
    rounds(&p, w, n);
    int64_t el = bench_now() - t0;
    bench_diag_stop();
    pair_end(&p);
    bench_per_op("pingpong", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 200000);
    return leash_run(bench_main, NULL);
}
