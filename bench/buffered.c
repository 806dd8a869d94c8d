/* SPDX-License-Identifier: MIT */
/* buffered: a producer sends N int64 over one channel of cap 128 to the
 * consumer (main), which checks the sum; ns per message. */
#include "bench_util.h"

static int64_t n;

static void producer(void *arg)
{
    leash_chan *ch = arg;
    for (int64_t i = 0; i < n; i++)
        BENCH_CHECK(leash_send(ch, &i));
    BENCH_CHECK(leash_close(ch));
}

static int bench_main(void *arg)
{
    (void)arg;
    leash_chan *ch = bench_chan(sizeof(int64_t), 128, "ch");
    int64_t t0 = bench_now();
    if (leash_go(producer, ch, ch) <= 0)
        bench_fail("buffered: leash_go failed");
    int64_t v, sum = 0, cnt = 0;
    int rc;
    while ((rc = leash_recv(ch, &v)) == 0) {
        sum += v;
        cnt++;
    }
    int64_t el = bench_now() - t0;
    if (rc != LEASH_ECLOSED)
        bench_fail("buffered: recv: %s", leash_strerror(rc));
    if (cnt != n || sum != n * (n - 1) / 2)
        bench_fail("buffered: got %lld messages summing to %lld",
                   (long long)cnt, (long long)sum);
    leash_release(ch);
    bench_per_op("buffered", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 1000000);
    return leash_run(bench_main, NULL);
}
