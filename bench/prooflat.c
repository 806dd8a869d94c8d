/* SPDX-License-Identifier: MIT */
/* prooflat: proof latency under LEASH_ORPHANS=wake, N (2,000) iterations
 * of each of two leaks, in microseconds at the 50th and 99th percentile.
 *
 *   release  a waiter holds a channel (handed by leash_go) and is parked
 *            receiving on it; main, the other holder, releases its
 *            reference. The proof is made inside that leash_release, so
 *            prooflat_release_proof is the time the call takes (release
 *            and proof); prooflat_release_wake is the time from just
 *            before the release to the waiter running again with
 *            LEASH_EORPHANED.
 *   park     the same, but main releases first, while the waiter runs;
 *            the waiter then receives: the proof is made as it parks
 *            (the park completes it), and prooflat_park_wake is the time
 *            from just before that leash_recv to its return with
 *            LEASH_EORPHANED. (A lone holder parking on a channel it
 *            made is proven at the park only when every other coroutine
 *            is inert: the borrowing rules of docs/DESIGN-NOTES.md.)
 *
 * The wake also prints the orphan report (the policy includes report):
 * stderr goes to /dev/null while the iterations run, unless
 * BENCH_PROOFLAT_STDERR=1. The machine should be
 * idle: this is a wake-up latency, and a busy machine delays the threads
 * involved. No Go equivalent (Go's goroutineleak profile is taken on
 * demand, after a GC cycle; it does not wake anyone). */
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>

#include "bench_util.h"

static int64_t n;

struct slot {
    leash_chan *ch;     /* borrowed: handed to the coroutine by leash_go */
    leash_waitgroup *done; /* the waiter is done with its slot */
    atomic_int ready;
    atomic_int go;      /* park: main has released; receive now */
    int park;
    int64_t t0;         /* just before the leash_recv */
    int64_t t_wake;     /* when the recv returned */
    int rc;
};

static void waiter(void *arg)
{
    struct slot *s = arg;
    int v;
    atomic_store(&s->ready, 1);
    while (s->park && !atomic_load(&s->go))
        leash_yield();
    s->t0 = bench_now();
    s->rc = leash_recv(s->ch, &v);
    s->t_wake = bench_now();
    leash_waitgroup_done(s->done);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, int64_t *v)
{
    char buf[64];
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    snprintf(buf, sizeof buf, "%s_p50", name);
    bench_report(buf, (double)v[n / 2] / 1e3, "us");
    snprintf(buf, sizeof buf, "%s_p99", name);
    bench_report(buf, (double)v[(n * 99) / 100] / 1e3, "us");
}

static int64_t *samples(void)
{
    int64_t *v = calloc((size_t)n, sizeof *v);
    if (!v)
        bench_fail("prooflat: out of memory");
    return v;
}

static void check(const struct slot *s, const char *what)
{
    if (s->rc != LEASH_EORPHANED)
        bench_fail("prooflat: %s: the waiter got %s, want EORPHANED", what,
                   leash_strerror(s->rc));
}

static int bench_main(void *arg)
{
    (void)arg;
    int64_t *rel_proof = samples(), *rel_wake = samples(),
            *park_wake = samples();
    /* Main waits on a WaitGroup, not a channel: a coroutine waiting to
     * receive could get the channel in a message, so it would count as
     * a possible user and no proof would be made at the park. */
    leash_waitgroup wg = LEASH_WAITGROUP_INIT, *done = &wg;
    struct slot s;
    size_t base = leash_num_coroutines();
    int err = dup(2), null = open("/dev/null", O_WRONLY);
    if (err < 0 || null < 0)
        bench_fail("prooflat: %s", strerror(errno));
    fflush(stderr);
    if (!getenv("BENCH_PROOFLAT_STDERR")) /* keep the reports */
        dup2(null, 2);
    for (int64_t i = -1; i < n; i++) { /* i = -1: untimed */
        memset(&s, 0, sizeof s);
        BENCH_CHECK(leash_waitgroup_add(done, 1));
        s.ch = bench_chan(sizeof(int), 0, "release");
        s.done = done;
        if (leash_go(waiter, &s, s.ch) <= 0)
            bench_fail("prooflat: leash_go failed");
        while (!atomic_load(&s.ready))
            leash_yield();
        leash_sleep(20000); /* parked by now, whatever the procs */
        int64_t t0 = bench_now();
        leash_release(s.ch); /* the waiter is its last holder: proven */
        int64_t t1 = bench_now();
        BENCH_CHECK(leash_waitgroup_wait(done));
        /* Until the waiter has returned: a coroutine still alive could
         * use the next iteration's channel, which would rightly keep
         * the next proof from being made. */
        while (leash_num_coroutines() > base)
            leash_yield();
        check(&s, "release");
        if (i >= 0) {
            rel_proof[i] = t1 - t0;
            rel_wake[i] = s.t_wake - t0;
        }
    }
    for (int64_t i = -1; i < n; i++) {
        memset(&s, 0, sizeof s);
        BENCH_CHECK(leash_waitgroup_add(done, 1));
        s.ch = bench_chan(sizeof(int), 0, "park");
        s.done = done;
        s.park = 1;
        if (leash_go(waiter, &s, s.ch) <= 0)
            bench_fail("prooflat: leash_go failed");
        while (!atomic_load(&s.ready))
            leash_yield();
        leash_release(s.ch); /* the waiter is its only holder now */
        atomic_store(&s.go, 1);
        BENCH_CHECK(leash_waitgroup_wait(done));
        /* Until the waiter has returned: a coroutine still alive could
         * use the next iteration's channel, which would rightly keep
         * the next proof from being made. */
        while (leash_num_coroutines() > base)
            leash_yield();
        check(&s, "park");
        if (i >= 0)
            park_wake[i] = s.t_wake - s.t0;
    }
    fflush(stderr);
    dup2(err, 2);
    close(err);
    close(null);
    report("prooflat_release_proof", rel_proof);
    report("prooflat_release_wake", rel_wake);
    report("prooflat_park_wake", park_wake);
    free(rel_proof);
    free(rel_wake);
    free(park_wake);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 2000);
    setenv("LEASH_ORPHANS", "wake", 1);
    return leash_run(bench_main, NULL);
}
