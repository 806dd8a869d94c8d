/* SPDX-License-Identifier: MIT */
/*
 * bench_util.h — small helpers shared by the leash benchmarks (bench/NAME.c).
 *
 * Every benchmark is its own program: `bench_<name> [N]` prints one or more
 * `name value unit` lines (lower is better), exactly like the Go program in
 * bench/go, which runs the same algorithms. bench/run.sh runs both.
 */
#ifndef LEASH_BENCH_UTIL_H
#define LEASH_BENCH_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leash.h"

/* Monotonic wall clock in ns (CLOCK_MONOTONIC, like Go's time.Now). */
static inline int64_t bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Resident set size in bytes from /proc/self/statm (as the Go side). */
static inline int64_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, resident = 0;
    if (!f) {
        perror("bench: /proc/self/statm");
        exit(1);
    }
    if (fscanf(f, "%lld %lld", &size, &resident) != 2) {
        fprintf(stderr, "bench: bad /proc/self/statm\n");
        exit(1);
    }
    fclose(f);
    return (int64_t)resident * (int64_t)sysconf(_SC_PAGESIZE);
}

/* A positive integer from s (what: "N" or a variable's name), or exits. */
static inline int64_t bench_parse_n_(const char *prog, const char *what,
                                     const char *s)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0) {
        fprintf(stderr, "%s: bad %s '%s'\n", prog, what, s);
        exit(2);
    }
    return (int64_t)v;
}

/* N from argv[1] (a positive integer), or def when absent. */
static inline int64_t bench_arg_n(int argc, char **argv, int64_t def)
{
    if (argc < 2)
        return def;
    if (argc > 2) {
        fprintf(stderr, "usage: %s [N]\n", argv[0]);
        exit(2);
    }
    return bench_parse_n_(argv[0], "N", argv[1]);
}

/* A workload's width from the environment variable name (BENCH_WORKERS,
 * BENCH_PAIRS, BENCH_MPMC: bench/scale.sh keeps it fixed while the procs
 * vary), or def when unset; the Go side reads the same variables. */
static inline int64_t bench_env_n(const char *name, int64_t def)
{
    const char *s = getenv(name);
    return s && *s ? bench_parse_n_("bench", name, s) : def;
}

/* Untimed iterations before the timed ones (same rule as the Go side). */
static inline int64_t bench_warmup(int64_t n)
{
    int64_t w = n / 10;
    return w > 100000 ? 100000 : w;
}

static inline void bench_report(const char *name, double value,
                                const char *unit)
{
    printf("%s %.1f %s\n", name, value, unit);
    fflush(stdout);
}

static inline void bench_per_op(const char *name, int64_t elapsed_ns,
                                int64_t n)
{
    bench_report(name, (double)elapsed_ns / (double)n, "ns/op");
}

#define bench_fail(...)                                                 \
    do {                                                                \
        fprintf(stderr, "bench: " __VA_ARGS__);                         \
        fputc('\n', stderr);                                            \
        exit(1);                                                        \
    } while (0)

/* Checks a leash call that must succeed. */
#define BENCH_CHECK(call)                                               \
    do {                                                                \
        int bench_rc_ = (int)(call);                                    \
        if (bench_rc_ < 0)                                              \
            bench_fail("%s:%d: %s: %s", __FILE__, __LINE__, #call,      \
                       leash_strerror(bench_rc_));                      \
    } while (0)

/* A byte to point at when sending on a signal channel (elem_size 0). */
/* The overhead rows (bench/run.sh's "overhead" workload): with
 * BENCH_TRACE=1 the execution trace runs for the whole program
 * (leash_trace_start, its rings overwriting as a long trace does); with
 * BENCH_CPUPROF=1 a CPU profile does (leash_cpu_profile on a thread of
 * its own, cut short by the exit). */
static void *bench_cpuprof_thread_(void *arg)
{
    (void)arg;
    FILE *f = fopen("/dev/null", "w");
    if (f)
        leash_cpu_profile(f, INT64_C(3600) * 1000000000);
    return NULL;
}

static inline void bench_diag_start(void)
{
    const char *t = getenv("BENCH_TRACE"), *c = getenv("BENCH_CPUPROF");
    if (t && !strcmp(t, "1") && leash_trace_start(0) != 0)
        bench_fail("bench: leash_trace_start failed");
    if (c && !strcmp(c, "1")) {
        pthread_t th;
        if (pthread_create(&th, NULL, bench_cpuprof_thread_, NULL) != 0)
            bench_fail("bench: cannot start the CPU profile");
        pthread_detach(th);
    }
}

/* After the timed part: ends the trace (discarded). */
static inline void bench_diag_stop(void)
{
    const char *t = getenv("BENCH_TRACE");
    if (t && !strcmp(t, "1"))
        leash_trace_stop(NULL);
}

static char bench_signal_byte_;
#define BENCH_SIGNAL (&bench_signal_byte_)

/* Sends/receives one signal on a channel of elem_size 0. */
static inline int bench_signal(leash_chan *ch)
{
    return leash_send_n(ch, BENCH_SIGNAL, 0);
}
static inline int bench_wait(leash_chan *ch)
{
    return leash_recv_n(ch, NULL, 0);
}

/* Makes a channel or exits. */
static inline leash_chan *bench_chan(size_t elem_size, size_t cap,
                                     const char *what)
{
    leash_chan *ch = leash_chan_make(elem_size, cap);
    if (!ch)
        bench_fail("cannot make channel %s", what);
    return ch;
}

#endif /* LEASH_BENCH_UTIL_H */
