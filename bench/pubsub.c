/* SPDX-License-Identifier: MIT */
/* pubsub: a load generator for the pub/sub broker, driving either
 * examples/pubsub.c (build/example_pubsub) or its Go twin
 * (bench/go/pubsub) the same way:
 *
 *   bench_pubsub N SERVER [ARGS...]
 *
 * starts `SERVER -addr 127.0.0.1:0 ARGS...` (LEASH_PROCS / GOMAXPROCS
 * inherited), reads its port from "listening on port P", and connects
 * PS_TOPICS x PS_SUBS subscribers (SUB, wait for OK) and one publisher per
 * topic. Each publisher sends its topic ~N / (PS_TOPICS x PS_SUBS)
 * messages "PUB tK SEQ SENT_NS PADDING", at most PS_WINDOW ahead of the
 * slowest of its subscribers (a credit channel per subscriber), so no
 * queue in the broker can overflow. Every subscriber checks it gets every
 * message of its topic once and in order, and records the latency
 * (now - SENT_NS, the loader's own clock). Then:
 *
 *   pubsub      wall time per delivery (first publish to last delivery)
 *   pubsub_p50  median latency of a delivery, in us
 *   pubsub_p99  99th percentile, in us
 *   pubsub_rss  the server's peak RSS (VmHWM), in MB
 *   pubsub_cpu  the server's CPU time (user + system) per delivery
 *
 * Finally SIGTERM: the server must exit 0 within 10 s. Any loss,
 * duplicate, reordering, disconnect or bad exit is a failure (exit 1). */
#define _GNU_SOURCE 1
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

#include "bench_util.h"

#define PS_TOPICS 8
#define PS_SUBS 8    /* subscribers per topic */
#define PS_WINDOW 32 /* messages a publisher may be ahead of a subscriber */
#define PS_PAD "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static int64_t per_topic; /* messages each publisher sends */
static char addr[64];
static leash_chan *credit[PS_TOPICS][PS_SUBS]; /* elem 0, cap PS_WINDOW */
static int64_t *lat;                           /* ns, one per delivery */
static leash_waitgroup wg = LEASH_WAITGROUP_INIT;

typedef struct {
    int topic, sub;
    leash_conn *conn;
    leash_reader *r;
} client;
static client subs[PS_TOPICS][PS_SUBS];

static leash_conn *dial(void) {
    leash_conn *c;
    BENCH_CHECK(leash_dial(&c, "tcp", addr, leash_now() + 10000000000LL));
    return c;
}

static void publisher(void *arg) {
    int t = (int)(intptr_t)arg;
    leash_conn *c = dial();
    char line[256];
    for (int64_t k = 0; k < per_topic; k++) {
        if (k >= PS_WINDOW)
            for (int j = 0; j < PS_SUBS; j++)
                BENCH_CHECK(leash_recv_n(credit[t][j], NULL, 0));
        int n = snprintf(line, sizeof line, "PUB t%d %lld %lld %s\n", t,
                         (long long)k, (long long)leash_now(), PS_PAD);
        if (leash_conn_write(c, line, (size_t)n) != n)
            bench_fail("pubsub: publisher %d: write failed", t);
    }
    leash_release(c);
    BENCH_CHECK(leash_waitgroup_done(&wg));
}

static void subscriber(void *arg) {
    client *s = arg;
    int64_t *out = lat + ((int64_t)s->topic * PS_SUBS + s->sub) * per_topic;
    for (int64_t k = 0; k < per_topic; k++) {
        const char *l;
        ssize_t n = leash_reader_read_line(s->r, &l);
        if (n <= 0)
            bench_fail("pubsub: subscriber t%d/%d: message %lld: %s", s->topic,
                       s->sub, (long long)k, n ? leash_strerror((int)n) : "end");
        int t;
        long long seq, sent;
        if (sscanf(l, "MSG t%d %lld %lld ", &t, &seq, &sent) != 3 ||
            t != s->topic || seq != k)
            bench_fail("pubsub: subscriber t%d/%d: expected message %lld, "
                       "got %.*s", s->topic, s->sub, (long long)k, (int)n, l);
        out[k] = leash_now() - sent;
        BENCH_CHECK(leash_try_send_n(credit[s->topic][s->sub], BENCH_SIGNAL, 0));
    }
    BENCH_CHECK(leash_waitgroup_done(&wg));
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Field `key` of /proc/PID/status, in kB. */
static long long proc_status(pid_t pid, const char *key) {
    char path[64], line[256];
    long long v = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key)))
            sscanf(line + strlen(key), ":%lld", &v);
    if (f)
        fclose(f);
    return v;
}

/* User + system CPU time of PID, in ns. */
static int64_t proc_cpu_ns(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        bench_fail("pubsub: cannot read %s", path);
    return (int64_t)((ut + st) * (1000000000ULL / (unsigned long long)sysconf(_SC_CLK_TCK)));
}

static intptr_t wait_child(void *arg) {
    int st;
    if (waitpid((pid_t)(intptr_t)arg, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

typedef struct {
    int argc;
    char **argv;
} args;

static int run(void *arg) {
    args *a = arg;
    char *argv[64] = {a->argv[2], "-addr", "127.0.0.1:0"};
    for (int i = 3; i < a->argc && i < 62; i++)
        argv[i] = a->argv[i];
    int out[2];
    if (pipe(out) < 0)
        bench_fail("pubsub: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    pid_t pid;
    extern char **environ;
    int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    if (e)
        bench_fail("pubsub: cannot start %s: %s", argv[0], strerror(e));
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);

    leash_reader *so = leash_reader_new_fd(out[0], 256);
    leash_reader_set_deadline(so, leash_now() + 10000000000LL);
    const char *l;
    int port = 0;
    while (!port && leash_reader_read_line(so, &l) > 0)
        sscanf(l, "listening on port %d", &port);
    if (!port)
        bench_fail("pubsub: %s printed no \"listening on port\"", argv[0]);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);

    for (int t = 0; t < PS_TOPICS; t++)
        for (int j = 0; j < PS_SUBS; j++) {
            client *s = &subs[t][j];
            *s = (client){.topic = t, .sub = j, .conn = dial()};
            s->r = leash_reader_new(s->conn, 256);
            char sub[32];
            int n = snprintf(sub, sizeof sub, "SUB t%d\n", t);
            if (leash_conn_write(s->conn, sub, (size_t)n) != n ||
                leash_reader_read_line(s->r, &l) != 3 || memcmp(l, "OK\n", 3))
                bench_fail("pubsub: SUB t%d failed", t);
            credit[t][j] = bench_chan(0, PS_WINDOW, "credit");
        }
    int64_t total = per_topic * PS_TOPICS * PS_SUBS;
    if (!(lat = malloc((size_t)total * sizeof *lat)))
        bench_fail("pubsub: out of memory");
    int64_t cpu0 = proc_cpu_ns(pid), t0 = leash_now();
    BENCH_CHECK(leash_waitgroup_add(&wg, PS_TOPICS * (PS_SUBS + 1)));
    for (int t = 0; t < PS_TOPICS; t++) {
        for (int j = 0; j < PS_SUBS; j++)
            BENCH_CHECK(leash_go(subscriber, &subs[t][j]));
        BENCH_CHECK(leash_go(publisher, (void *)(intptr_t)t));
    }
    BENCH_CHECK(leash_waitgroup_wait(&wg));
    int64_t el = leash_now() - t0, cpu = proc_cpu_ns(pid) - cpu0;
    long long hwm = proc_status(pid, "VmHWM");

    qsort(lat, (size_t)total, sizeof *lat, cmp64);
    bench_per_op("pubsub", el, total);
    bench_report("pubsub_p50", (double)lat[total / 2] / 1e3, "us");
    bench_report("pubsub_p99", (double)lat[total * 99 / 100] / 1e3, "us");
    bench_report("pubsub_rss", (double)hwm / 1024, "MB");
    bench_per_op("pubsub_cpu", cpu, total);
    fprintf(stderr, "pubsub: %lld deliveries, %.0f deliveries/s\n",
            (long long)total, (double)total * 1e9 / (double)el);

    for (int t = 0; t < PS_TOPICS; t++)
        for (int j = 0; j < PS_SUBS; j++) {
            leash_reader_free(subs[t][j].r);
            leash_release(subs[t][j].conn);
            leash_release(credit[t][j]);
        }
    int64_t stop = leash_now();
    kill(pid, SIGTERM);
    intptr_t st = leash_blocking(wait_child, (void *)(intptr_t)pid);
    if (st != 0)
        bench_fail("pubsub: %s exited %d after SIGTERM", argv[0], (int)st);
    if (leash_now() - stop > 10000000000LL)
        bench_fail("pubsub: %s took over 10 s to stop", argv[0]);
    leash_reader_free(so);
    close(out[0]);
    free(lat);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s N SERVER [ARGS...]\n", argv[0]);
        return 2;
    }
    int64_t n = strtoll(argv[1], NULL, 10);
    per_topic = n / (PS_TOPICS * PS_SUBS);
    if (per_topic < PS_WINDOW) {
        fprintf(stderr, "%s: N must be at least %d\n", argv[0],
                PS_WINDOW * PS_TOPICS * PS_SUBS);
        return 2;
    }
    args a = {argc, argv};
    return leash_run(run, &a);
}
