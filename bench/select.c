/* SPDX-License-Identifier: MIT */
/* select: like pingpong, but each side receives through a 2-case
 * leash_select whose second case is a channel nobody uses; ns per round
 * trip. */
#include "bench_util.h"

static int64_t n;

struct trio {
    leash_chan *ping, *pong, *unused;
};

static void ponger(void *arg)
{
    struct trio *p = arg;
    int v, dummy;
    leash_case cs[2];
    for (;;) {
        cs[0] = LEASH_RECV_CASE(p->ping, &v);
        cs[1] = LEASH_RECV_CASE(p->unused, &dummy);
        int i = leash_select(cs, 2);
        if (i != 0)
            bench_fail("select: ponger got case %d", i);
        if (!cs[0].ok)
            break;
        BENCH_CHECK(leash_send(p->pong, &v));
    }
    BENCH_CHECK(leash_close(p->pong));
}

static int bench_main(void *arg)
{
    (void)arg;
    struct trio p = {bench_chan(sizeof(int), 0, "ping"),
                     bench_chan(sizeof(int), 0, "pong"),
                     bench_chan(sizeof(int), 0, "unused")};
    if (leash_go(ponger, &p, p.ping, p.pong, p.unused) <= 0)
        bench_fail("select: leash_go failed");
    int64_t w = bench_warmup(n), t0 = 0;
    int v, dummy;
    leash_case cs[2];
    for (int64_t i = 0; i < w + n; i++) {
        if (i == w)
            t0 = bench_now();
        v = (int)i;
        BENCH_CHECK(leash_send(p.ping, &v));
        cs[0] = LEASH_RECV_CASE(p.pong, &v);
        cs[1] = LEASH_RECV_CASE(p.unused, &dummy);
        int k = leash_select(cs, 2);
        if (k != 0 || !cs[0].ok || v != (int)i)
            bench_fail("select: case %d ok %d got %d want %d", k, cs[0].ok,
                       v, (int)i);
    }
    int64_t el = bench_now() - t0;
    BENCH_CHECK(leash_close(p.ping));
    if (leash_recv(p.pong, &v) != LEASH_ECLOSED)
        bench_fail("select: pong not closed");
    leash_release(p.ping);
    leash_release(p.pong);
    leash_release(p.unused);
    bench_per_op("select", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 200000);
    return leash_run(bench_main, NULL);
}
