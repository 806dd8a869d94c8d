/* SPDX-License-Identifier: MIT */
/* buffered: a producer sends N int64 over one channel of cap 128 to the
 * consumer (main), which checks what arrived; ns per message.
 *
 * With BENCH_MPMC=K (bench/scale.sh's "mpmc"): K producers send their
 * share of 0 .. N-1 over the one channel to K consumer coroutines, which
 * hand main their tallies; ns per message over all N. The count, sum and
 * sum of squares of what arrived must be those of 0 .. N-1: a message
 * lost, duplicated or torn fails the run. */
#include "bench_util.h"

static int64_t n;

struct producer {
    leash_chan *ch, *done; /* done: NULL = close ch when finished */
    int64_t lo, hi;        /* sends lo .. hi-1 */
};

/* What a consumer received (the sums wrap, on both sides alike). */
struct tally {
    uint64_t cnt, sum, sq;
};

static void producer(void *arg)
{
    struct producer *p = arg;
    for (int64_t i = p->lo; i < p->hi; i++)
        BENCH_CHECK(leash_send(p->ch, &i));
    if (p->done)
        BENCH_CHECK(bench_signal(p->done));
    else
        BENCH_CHECK(leash_close(p->ch));
}

static void tally_add(struct tally *t, const struct tally *r)
{
    t->cnt += r->cnt;
    t->sum += r->sum;
    t->sq += r->sq;
}

/* Receives until ch is closed, adding what came to *t. A local tally in
 * the loop: the compiler must assume leash_recv may change *t. */
static void drain(leash_chan *ch, struct tally *t)
{
    struct tally got = {0, 0, 0};
    int64_t v;
    int rc;
    while ((rc = leash_recv(ch, &v)) == 0) {
        got.cnt++;
        got.sum += (uint64_t)v;
        got.sq += (uint64_t)v * (uint64_t)v;
    }
    if (rc != LEASH_ECLOSED)
        bench_fail("buffered: recv: %s", leash_strerror(rc));
    tally_add(t, &got);
}

/* Fails unless t is the tally of 0 .. N-1: N, N(N-1)/2 and
 * (N-1)N(2N-1)/6, modulo 2^64 like the sums (each divisor taken out of
 * the factor it divides first, so the products may wrap). A formula, not
 * a loop: callgrind counts what runs after the clock too. */
static void check(const struct tally *t, const char *what)
{
    uint64_t a = (uint64_t)n - 1, b = (uint64_t)n, c = 2 * (uint64_t)n - 1;
    uint64_t sum = a % 2 ? a * (b / 2) : (a / 2) * b;
    if (a % 2 == 0)
        a /= 2;
    else
        b /= 2;
    if (a % 3 == 0)
        a /= 3;
    else if (b % 3 == 0)
        b /= 3;
    else
        c /= 3;
    struct tally want = {(uint64_t)n, sum, a * b * c};
    if (t->cnt != want.cnt || t->sum != want.sum || t->sq != want.sq)
        bench_fail("%s: got %llu messages (sum %llu, squares %llu), want "
                   "%llu (%llu, %llu)",
                   what, (unsigned long long)t->cnt,
                   (unsigned long long)t->sum, (unsigned long long)t->sq,
                   (unsigned long long)want.cnt,
                   (unsigned long long)want.sum, (unsigned long long)want.sq);
}

struct consumer {
    leash_chan *ch, *results;
};

static void consumer(void *arg)
{
    struct consumer *c = arg;
    struct tally t = {0, 0, 0};
    drain(c->ch, &t);
    BENCH_CHECK(leash_send(c->results, &t));
}

/* K producers, K consumers; main closes the channel once every producer
 * has signalled, then adds up the consumers' tallies. */
static void mpmc(int64_t k)
{
    struct producer *ps = calloc((size_t)k, sizeof *ps);
    leash_chan *ch = bench_chan(sizeof(int64_t), 128, "ch");
    leash_chan *done = bench_chan(0, (size_t)k, "done");
    leash_chan *results = bench_chan(sizeof(struct tally), (size_t)k, "results");
    struct consumer c = {ch, results};
    struct tally t = {0, 0, 0}, r;
    if (!ps)
        bench_fail("mpmc: out of memory");
    int64_t t0 = bench_now();
    for (int64_t i = 0; i < k; i++) {
        ps[i] = (struct producer){ch, done, i * n / k, (i + 1) * n / k};
        if (leash_go(producer, &ps[i], ch, done) <= 0)
            bench_fail("mpmc: leash_go failed");
    }
    for (int64_t i = 0; i < k; i++)
        if (leash_go(consumer, &c, ch, results) <= 0)
            bench_fail("mpmc: leash_go failed");
    for (int64_t i = 0; i < k; i++)
        BENCH_CHECK(bench_wait(done));
    BENCH_CHECK(leash_close(ch));
    for (int64_t i = 0; i < k; i++) {
        BENCH_CHECK(leash_recv(results, &r));
        tally_add(&t, &r);
    }
    int64_t el = bench_now() - t0;
    check(&t, "mpmc");
    leash_release(ch);
    leash_release(done);
    leash_release(results);
    free(ps);
    bench_per_op("mpmc", el, n);
}

static int bench_main(void *arg)
{
    (void)arg;
    int64_t k = bench_env_n("BENCH_MPMC", 0);
    if (k > 0) {
        mpmc(k);
        return 0;
    }
    struct producer p = {bench_chan(sizeof(int64_t), 128, "ch"), NULL, 0, n};
    struct tally t = {0, 0, 0};
    int64_t t0 = bench_now();
    if (leash_go(producer, &p, p.ch) <= 0)
        bench_fail("buffered: leash_go failed");
    drain(p.ch, &t);
    int64_t el = bench_now() - t0;
    check(&t, "buffered");
    leash_release(p.ch);
    bench_per_op("buffered", el, n);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 1000000);
    return leash_run(bench_main, NULL);
}
