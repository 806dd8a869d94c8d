/* SPDX-License-Identifier: MIT */
/* dumpbusy: the latency of a coroutine dump while every worker is busy.
 *
 *   N coroutines (1,000): one ping-pong pair per worker (LEASH_PROCS, else
 *   the CPU count) passing a token back and forth on unbuffered channels
 *   without pause, so every worker always has one to run; the rest parked,
 *   each receiving from its own channel. DUMPS times (200) leash_dump(f, 2)
 *   to a FILE open on /dev/null:
 *
 *   dumpbusy_thread_p50/_p99  from a plain thread (not a coroutine)
 *   dumpbusy_co_p50/_p99      from a coroutine
 *   dumpbusy_conc_p99         from 4 plain threads at once, each DUMPS/4
 *                             times: concurrent dumps are not serialised
 *
 * The first dump of each series is untimed (symbol tables loaded, buffers
 * warm). Go: the same goroutines, runtime.Stack(buf, true) written to
 * /dev/null from a goroutine (_co), from a goroutine locked to its thread
 * (_thread), and from 4 goroutines at once (_conc). The goal for leash is
 * a p99 of 5 ms or less. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "bench_util.h"

#define DUMPS 200
#define CONC 4

static int64_t n;
static int procs;
static atomic_int stop;
static atomic_llong started;

static void pinger(void *arg)
{
    leash_chan **ch = arg; /* ch[0]: to the partner, ch[1]: from it */
    int v = 0;
    atomic_fetch_add(&started, 1);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (leash_send(ch[0], &v) < 0 || leash_recv(ch[1], &v) < 0)
            break;
    }
    leash_close(ch[0]);
}

static void ponger(void *arg)
{
    leash_chan **ch = arg; /* ch[0]: from the partner, ch[1]: to it */
    int v;
    atomic_fetch_add(&started, 1);
    while (leash_recv(ch[0], &v) == 0)
        if (leash_send(ch[1], &v) < 0)
            break;
}

static void parker(void *arg)
{
    atomic_fetch_add(&started, 1);
    if (bench_wait(arg) != LEASH_ECLOSED)
        bench_fail("dumpbusy: expected a closed channel");
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(int64_t *v, int k, int p)
{
    qsort(v, (size_t)k, sizeof *v, cmp64);
    int i = (k * p + 99) / 100 - 1;
    return v[i < 0 ? 0 : i];
}

/* k timed dumps after one untimed one, into t[0..k), each to its own
 * FILE on /dev/null (stdio locks a FILE per call). */
static void dumps(int64_t *t, int k)
{
    FILE *f = fopen("/dev/null", "w");
    if (!f)
        bench_fail("dumpbusy: /dev/null: %s", strerror(errno));
    for (int i = -1; i < k; i++) {
        int64_t t0 = bench_now();
        int got = leash_dump(f, 2);
        int64_t el = bench_now() - t0;
        if (got < 0)
            bench_fail("dumpbusy: leash_dump: %s", leash_strerror(got));
        if (got < n)
            bench_fail("dumpbusy: leash_dump wrote %d coroutines, want >= %lld",
                       got, (long long)n);
        if (i >= 0)
            t[i] = el;
    }
    fclose(f);
}

struct series {
    int64_t *t;
    int k;
};

static void *thread_main(void *arg)
{
    struct series *s = arg;
    dumps(s->t, s->k);
    return NULL;
}

/* Runs the series on nth plain threads at once; joined off the workers
 * (leash_blocking), so the caller's worker stays busy too. */
static int nth_;
static pthread_t th_[CONC];
static struct series ser_[CONC];

static intptr_t join_all(void *arg)
{
    (void)arg;
    for (int i = 0; i < nth_; i++)
        pthread_join(th_[i], NULL);
    return 0;
}

static void on_threads(int64_t *t, int nth)
{
    nth_ = nth;
    for (int i = 0; i < nth; i++) {
        ser_[i] = (struct series){t + i * (DUMPS / nth), DUMPS / nth};
        if (pthread_create(&th_[i], NULL, thread_main, &ser_[i]))
            bench_fail("dumpbusy: pthread_create");
    }
    leash_blocking(join_all, NULL);
}

static void report(const char *name, int64_t *t, int k)
{
    char m[64];
    snprintf(m, sizeof m, "%s_p50", name);
    bench_report(m, (double)pct(t, k, 50) / 1e6, "ms");
    snprintf(m, sizeof m, "%s_p99", name);
    bench_report(m, (double)pct(t, k, 99) / 1e6, "ms");
}

static int bench_main(void *arg)
{
    (void)arg;
    int pairs = procs;
    if (n < 2 * pairs + 1)
        bench_fail("dumpbusy: N must be more than twice the procs (%d)", procs);
    int64_t nparked = n - 2 * pairs - 1; /* and this main coroutine */
    leash_chan **pp = calloc((size_t)pairs * 2, sizeof *pp);
    leash_chan **parked = calloc((size_t)nparked, sizeof *parked);
    if (!pp || !parked)
        bench_fail("dumpbusy: out of memory");
    for (int64_t i = 0; i < nparked; i++) {
        parked[i] = bench_chan(0, 0, "inbox");
        if (leash_go(parker, parked[i]) <= 0)
            bench_fail("dumpbusy: leash_go failed");
    }
    for (int i = 0; i < pairs; i++) {
        pp[2 * i] = bench_chan(sizeof(int), 0, "ping");
        pp[2 * i + 1] = bench_chan(sizeof(int), 0, "pong");
        if (leash_go(pinger, &pp[2 * i]) <= 0 ||
            leash_go(ponger, &pp[2 * i]) <= 0)
            bench_fail("dumpbusy: leash_go failed");
    }
    while (atomic_load(&started) < n - 1)
        leash_yield();

    static int64_t t_thread[DUMPS], t_co[DUMPS], t_conc[DUMPS];
    on_threads(t_thread, 1);
    dumps(t_co, DUMPS);
    on_threads(t_conc, CONC);

    atomic_store(&stop, 1);
    for (int64_t i = 0; i < nparked; i++)
        BENCH_CHECK(leash_close(parked[i]));
    /* The pairs end on their own (stop, then the pinger closes); the
     * process exits with the channels still referenced. */
    report("dumpbusy_thread", t_thread, DUMPS);
    report("dumpbusy_co", t_co, DUMPS);
    bench_report("dumpbusy_conc_p99",
                 (double)pct(t_conc, DUMPS / CONC * CONC, 99) / 1e6, "ms");
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 1000);
    const char *e = getenv("LEASH_PROCS");
    procs = e && atoi(e) > 0 ? atoi(e) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return leash_run(bench_main, NULL);
}
