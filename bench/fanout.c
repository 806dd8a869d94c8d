/* SPDX-License-Identifier: MIT */
/* fanout: `workers` workers (BENCH_WORKERS, default 8) take 64 x workers
 * CPU-bound tasks (N rounds of integer hashing each) from a jobs channel
 * (cap 64, fed by a feeder coroutine) and return results on another (cap
 * 64) to main. Reports wall time per task; run at 1 and P procs for the
 * scaling ratio (bench/scale.sh runs 16 workers at every P, so that the
 * work is the same and 16 procs all have a worker). */
#include "bench_util.h"

static int64_t n, workers, tasks;

struct fan {
    leash_chan *jobs, *results;
};

static uint64_t fan_hash(uint64_t seed, int64_t rounds)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (int64_t i = 0; i < rounds; i++) {
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ULL;
        x += (uint64_t)i;
    }
    return x;
}

static void feeder(void *arg)
{
    leash_chan *jobs = arg;
    for (uint64_t i = 0; i < (uint64_t)tasks; i++)
        BENCH_CHECK(leash_send(jobs, &i));
    BENCH_CHECK(leash_close(jobs));
}

static void worker(void *arg)
{
    struct fan *f = arg;
    leash_chan *jobs = f->jobs, *results = f->results;
    uint64_t j, r;
    while (leash_recv(jobs, &j) == 0) {
        r = fan_hash(j, n);
        BENCH_CHECK(leash_send(results, &r));
    }
}

static int bench_main(void *arg)
{
    (void)arg;
    struct fan f = {bench_chan(sizeof(uint64_t), 64, "jobs"),
                    bench_chan(sizeof(uint64_t), 64, "results")};
    int64_t t0 = bench_now();
    if (leash_go(feeder, f.jobs, f.jobs) <= 0)
        bench_fail("fanout: leash_go failed");
    for (int64_t k = 0; k < workers; k++)
        if (leash_go(worker, &f, f.jobs, f.results) <= 0)
            bench_fail("fanout: leash_go failed");
    uint64_t sum = 0, r;
    for (int64_t i = 0; i < tasks; i++) {
        BENCH_CHECK(leash_recv(f.results, &r));
        sum += r;
    }
    int64_t el = bench_now() - t0;
    leash_release(f.jobs);
    leash_release(f.results);
    bench_per_op("fanout", el, tasks);
    fprintf(stderr, "fanout checksum %016llx\n", (unsigned long long)sum);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 20000);
    workers = bench_env_n("BENCH_WORKERS", 8);
    tasks = 64 * workers;
    return leash_run(bench_main, NULL);
}
