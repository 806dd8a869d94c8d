/* SPDX-License-Identifier: MIT */
/* pingpong: round trips between two coroutines over two unbuffered int
 * channels; ns per round trip. Go: the same with chan int. */
#include "bench_util.h"

static int64_t n;

struct pair {
    leash_chan *ping, *pong;
};

static void ponger(void *arg)
{
    struct pair *p = arg;
    int v;
    while (leash_recv(p->ping, &v) == 0)
        BENCH_CHECK(leash_send(p->pong, &v));
    BENCH_CHECK(leash_close(p->pong));
}

static int bench_main(void *arg)
{
    (void)arg;
    bench_diag_start();
    struct pair p = {bench_chan(sizeof(int), 0, "ping"),
                     bench_chan(sizeof(int), 0, "pong")};
    if (leash_go(ponger, &p, p.ping, p.pong) <= 0)
        bench_fail("pingpong: leash_go failed");
    int64_t w = bench_warmup(n), t0 = 0;
    for (int64_t i = 0; i < w + n; i++) {
        if (i == w)
            t0 = bench_now();
        int v = (int)i;
        BENCH_CHECK(leash_send(p.ping, &v));
        BENCH_CHECK(leash_recv(p.pong, &v));
        if (v != (int)i)
            bench_fail("pingpong: got %d want %d", v, (int)i);
    }
    int64_t el = bench_now() - t0;
    bench_diag_stop();
    int v;
    BENCH_CHECK(leash_close(p.ping));
    if (leash_recv(p.pong, &v) != LEASH_ECLOSED)
        bench_fail("pingpong: pong not closed");
    leash_release(p.ping);
    leash_release(p.pong);
    bench_per_op("pingpong", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 200000);
    return leash_run(bench_main, NULL);
}
