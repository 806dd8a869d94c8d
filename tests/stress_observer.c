/* SPDX-License-Identifier: MIT */
/*
 * stress_observer.c — the observer never hangs the observed (issue 13).
 *
 * Every worker runs traffic of every kind, with objects both held and
 * borrowed: ping-pong pairs over unbuffered channels (the parent holds
 * them, the child borrows them through its argument), a buffered
 * producer/consumer, selects over two channels and a timer, a contended
 * mutex, contexts created, waited on by a borrowing child and cancelled
 * or timed out, and sleepers. Meanwhile observers ask for everything the
 * diagnostics offer, from plain threads and from a coroutine:
 *
 *   - every dump format (pprof, debug=1, 2, 3, JSON) and the leak dumps;
 *   - the HTTP endpoint: /metrics, the goroutine and goroutineleak
 *     profiles, /debug/leash;
 *   - the agent: stats, stack, dump, json;
 *   - leak checks (leash_leak_verify) and dumps from a coroutine.
 *
 * Checked: no observer goes 20 s (60 s under TSan) without completing an
 * operation (a hang fails the test instead of blocking it), every dump and
 * request completes and answers sensibly, and no message is lost or
 * duplicated (counts and sums per channel), the mutex counter is exact,
 * every context's waiter returns. In the LEASH_LOCKRANK builds of
 * `make test` (clang, TSan) any out-of-order lock acquisition aborts.
 *
 * Runs at LEASH_PROCS=1, 2 and 4, STRESS_OBSERVER_SECONDS seconds each
 * (default 5; `make test-tsan` sets 30).
 *
 * LEASH_TEST_TIMEOUT 600
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_util.h"
#include "dbg_util.h"

#define NOINLINE __attribute__((noinline))
#define MS CU_MS

#if defined(__SANITIZE_THREAD__)
#define STALL_MS 60000
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STALL_MS 60000
#endif
#endif
#ifndef STALL_MS
#define STALL_MS 20000
#endif

static _Atomic bool stop;
static leash_waitgroup traffic_wg = LEASH_WAITGROUP_INIT;

/* ------------------------------------------------------------ traffic */

typedef struct {
    leash_chan *ch;
    _Atomic long sent, sent_sum, got, got_sum;
} flow;

#define NPAIRS_MAX 8
static flow pairs[NPAIRS_MAX], buffered, sel_a, sel_b;
static int npairs;

/* Borrows f->ch (passed in its argument, no reference of its own). */
static NOINLINE void sender(void *a) {
    flow *f = a;
    for (long i = 1; !atomic_load(&stop); i++) {
        if (leash_send(f->ch, &i) != 0)
            break;
        atomic_fetch_add(&f->sent, 1);
        atomic_fetch_add(&f->sent_sum, i);
    }
    leash_waitgroup_done(&traffic_wg);
}

/* Holds f->ch (handed by leash_go): closes it when the senders stop. */
static NOINLINE void receiver(void *a) {
    flow *f = a;
    long v;
    while (leash_recv(f->ch, &v) == 0) {
        atomic_fetch_add(&f->got, 1);
        atomic_fetch_add(&f->got_sum, v);
    }
    leash_waitgroup_done(&traffic_wg);
}

static NOINLINE void selector(void *a) {
    (void)a;
    long v;
    while (true) {
        leash_chan *to = leash_after(MS);
        leash_case cs[3] = {LEASH_RECV_CASE(sel_a.ch, &v),
                            LEASH_RECV_CASE(sel_b.ch, &v),
                            LEASH_RECV_CASE(to, &(int64_t){0})};
        int r = leash_select(cs, 3);
        leash_release(to);
        if (r == 0 || r == 1) {
            flow *f = r ? &sel_b : &sel_a;
            if (!cs[r].ok) { /* closed: the other one drains alone */
                long w;
                flow *o = r ? &sel_a : &sel_b;
                while (leash_recv(o->ch, &w) == 0) {
                    atomic_fetch_add(&o->got, 1);
                    atomic_fetch_add(&o->got_sum, w);
                }
                break;
            }
            atomic_fetch_add(&f->got, 1);
            atomic_fetch_add(&f->got_sum, v);
        }
    }
    leash_waitgroup_done(&traffic_wg);
}

static leash_mutex mu = LEASH_MUTEX_INIT;
static long mu_counter;
static _Atomic long mu_adds;

static NOINLINE void locker(void *a) {
    (void)a;
    while (!atomic_load(&stop)) {
        leash_mutex_lock(&mu);
        mu_counter++;
        if ((mu_counter & 63) == 0)
            leash_yield(); /* others queue on the mutex meanwhile */
        leash_mutex_unlock(&mu);
        atomic_fetch_add(&mu_adds, 1);
    }
    leash_waitgroup_done(&traffic_wg);
}

static _Atomic long ctx_waits, ctx_woken;

/* Holds the context (handed by leash_go): waits for it to end. */
static NOINLINE void ctx_waiter(void *a) {
    leash_ctx *c = a;
    char x;
    leash_recv_n(leash_ctx_done(c), &x, 0);
    atomic_fetch_add(&ctx_woken, 1);
    leash_waitgroup_done(&traffic_wg);
}

static NOINLINE void ctx_churn(void *a) {
    (void)a;
    for (long i = 0; !atomic_load(&stop); i++) {
        leash_ctx *c = i & 1 ? leash_ctx_with_timeout(leash_ctx_background(),
                                                      200000)
                             : leash_ctx_with_cancel(leash_ctx_background());
        if (!c)
            break;
        leash_waitgroup_add(&traffic_wg, 1);
        atomic_fetch_add(&ctx_waits, 1);
        leash_go(ctx_waiter, c, c);
        if (!(i & 1))
            leash_ctx_cancel(c);
        leash_sleep(100000);
        leash_release(c);
    }
    leash_waitgroup_done(&traffic_wg);
}

static NOINLINE void sleeper(void *a) {
    (void)a;
    while (!atomic_load(&stop))
        leash_sleep(50000);
    leash_waitgroup_done(&traffic_wg);
}

static void flow_start(flow *f, size_t cap, int senders, bool with_receiver) {
    memset(f, 0, sizeof *f);
    f->ch = leash_chan_make(sizeof(long), cap);
    CU_CHECK(f->ch);
    for (int i = 0; i < senders; i++) {
        leash_waitgroup_add(&traffic_wg, 1);
        CU_CHECK(leash_go(sender, f) > 0);
    }
    if (with_receiver) {
        leash_waitgroup_add(&traffic_wg, 1);
        CU_CHECK(leash_go(receiver, f, f->ch) > 0);
    }
}

static void flow_check(const char *what, flow *f) {
    CU_CHECK_EQ(atomic_load(&f->got), atomic_load(&f->sent));
    CU_CHECK_EQ(atomic_load(&f->got_sum), atomic_load(&f->sent_sum));
    if (atomic_load(&f->got) == 0)
        cr_log_error("%s: no message went through", what);
    CU_CHECK(atomic_load(&f->got) > 0);
}

/* ---------------------------------------------------------- observers */

enum { OB_DUMPS, OB_HTTP, OB_AGENT, OB_CORO, OB__N };
static const char *const ob_name[OB__N] = {"dumps (thread)", "HTTP",
                                           "agent", "coroutine"};
static _Atomic long ob_ops[OB__N], ob_bad[OB__N];
static _Atomic int64_t ob_since[OB__N]; /* ms: the operation in flight began */
static const char *_Atomic ob_what[OB__N];

static void ob_begin(int i, const char *what) {
    atomic_store(&ob_what[i], what);
    atomic_store(&ob_since[i], dbg_ms());
}
static int http_port;
static _Atomic int threads_done;
static char agent_path[256];

static void *dump_thread(void *a) {
    (void)a;
    FILE *nul = fopen("/dev/null", "w");
    for (int i = 0; !atomic_load(&stop); i++) {
        int d = i % 5;
        int n = i % 7 == 6 ? leash_leak_dump(nul, d % 3) : leash_dump(nul, d);
        if (n < 0)
            atomic_fetch_add(&ob_bad[OB_DUMPS], 1);
        atomic_fetch_add(&ob_ops[OB_DUMPS], 1);
    }
    fclose(nul);
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

static void *http_thread(void *a) {
    (void)a;
    static const char *const paths[] = {
        "/metrics", "/debug/pprof/goroutine?debug=1",
        "/debug/pprof/goroutine?debug=2", "/debug/pprof/goroutine?debug=0",
        "/debug/pprof/goroutineleak?debug=1", "/debug/leash?format=json",
        "/debug/leash?format=text"};
    for (int i = 0; !atomic_load(&stop); i++) {
        size_t n = 0;
        ob_begin(OB_HTTP, paths[i % 7]);
        char *r = dbg_http_get(http_port, paths[i % 7], &n);
        if (!r || dbg_http_status(r) != 200) {
            atomic_fetch_add(&ob_bad[OB_HTTP], 1);
            cr_log_error("GET %s: %.80s", paths[i % 7], r ? r : "(nothing)");
        }
        free(r);
        atomic_store(&ob_since[OB_HTTP], 0);
        atomic_fetch_add(&ob_ops[OB_HTTP], 1);
    }
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

/* One agent request: true when the reply head says OK and the whole body
 * arrived. */
static bool agent_call(int fd, const char *req) {
    if (!dbg_send(fd, req, strlen(req)))
        return false;
    char head[64];
    size_t hn = 0;
    int64_t end = dbg_ms() + STALL_MS;
    while (hn < sizeof head - 1 && dbg_ms() < end) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        if (recv(fd, head + hn, 1, 0) != 1)
            return false;
        if (head[hn++] == '\n')
            break;
    }
    head[hn] = 0;
    long long len = -1;
    char st[8] = "";
    if (sscanf(head, "LEASH1 %7s %lld\n", st, &len) != 2 || len < 0)
        return false;
    for (long long got = 0; got < len;) {
        char buf[4096];
        size_t want = (size_t)(len - got) < sizeof buf ? (size_t)(len - got)
                                                      : sizeof buf;
        ssize_t r = recv(fd, buf, want, 0);
        if (r <= 0)
            return false;
        got += r;
    }
    return !strcmp(st, "OK");
}

static void *agent_thread(void *a) {
    (void)a;
    static const char *const reqs[] = {"LEASH1 stats\n", "LEASH1 stack 2\n",
                                       "LEASH1 dump\n", "LEASH1 json\n",
                                       "LEASH1 stack 1\n"};
    int fd = -1;
    for (int i = 0; !atomic_load(&stop); i++) {
        if (fd < 0 && (fd = dbg_unix(agent_path)) < 0) {
            atomic_fetch_add(&ob_bad[OB_AGENT], 1);
            usleep(10000);
            continue;
        }
        ob_begin(OB_AGENT, reqs[i % 5]);
        if (!agent_call(fd, reqs[i % 5])) {
            atomic_fetch_add(&ob_bad[OB_AGENT], 1);
            cr_log_error("agent: %s failed", reqs[i % 5]);
            close(fd);
            fd = -1;
        }
        atomic_store(&ob_since[OB_AGENT], 0);
        atomic_fetch_add(&ob_ops[OB_AGENT], 1);
    }
    if (fd >= 0)
        close(fd);
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

static NOINLINE void coro_observer(void *a) {
    (void)a;
    leash_leak_opts o = {.timeout_ns = MS, .quiet = 1};
    for (int i = 0; !atomic_load(&stop); i++) {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);
        int r = i % 3 == 2 ? leash_leak_verify(NULL, &o) : leash_dump(f, i % 5);
        fclose(f);
        free(buf);
        if (r < 0)
            atomic_fetch_add(&ob_bad[OB_CORO], 1);
        atomic_fetch_add(&ob_ops[OB_CORO], 1);
    }
    leash_waitgroup_done(&traffic_wg);
}

/* -------------------------------------------------------------- main */

static int seconds;

/* Wakes every second; fails when an observer made no progress for
 * STALL_MS (it would otherwise hang the test until CTest's timeout). */
static bool watch(void) {
    long last[OB__N] = {0};
    int64_t since[OB__N];
    int64_t t0 = dbg_ms();
    bool dumped = false;
    for (int i = 0; i < OB__N; i++)
        since[i] = t0;
    while (dbg_ms() - t0 < seconds * 1000LL) {
        leash_sleep(100 * MS);
        int64_t now = dbg_ms();
        for (int i = 0; i < OB__N; i++) {
            long v = atomic_load(&ob_ops[i]);
            if (v != last[i]) {
                last[i] = v;
                since[i] = now;
            } else if (!dumped && now - since[i] > 3000 &&
                       atomic_load(&ob_since[i]) &&
                       now - atomic_load(&ob_since[i]) > 3000) {
                /* Slow: show where everything is, once. */
                dumped = true;
                cr_log_warn("observer '%s' is slow on %s: a dump follows",
                            ob_name[i], atomic_load(&ob_what[i]));
                leash_dump(stderr, LEASH_DUMP_LEASH);
            } else if (now - since[i] > STALL_MS) {
                cr_log_error("observer '%s' made no progress for %d ms",
                             ob_name[i], STALL_MS);
                return false;
            }
        }
    }
    return true;
}

static int stress_main(void *a) {
    (void)a;
    int procs = leash_num_workers();
    npairs = procs < NPAIRS_MAX ? procs : NPAIRS_MAX;
    for (int i = 0; i < npairs; i++)
        flow_start(&pairs[i], 0, 1, true);
    flow_start(&buffered, 16, 3, true);
    flow_start(&sel_a, 0, 2, false);
    flow_start(&sel_b, 4, 2, false);
    leash_waitgroup_add(&traffic_wg, 1);
    leash_go(selector, NULL, sel_a.ch, sel_b.ch);
    for (int i = 0; i < 4; i++) {
        leash_waitgroup_add(&traffic_wg, 1);
        leash_go(locker, NULL);
    }
    for (int i = 0; i < 2; i++) {
        leash_waitgroup_add(&traffic_wg, 2);
        leash_go(ctx_churn, NULL);
        leash_go(sleeper, NULL);
    }
    leash_waitgroup_add(&traffic_wg, 1);
    leash_go(coro_observer, NULL);

    http_port = leash_debug_listen(NULL);
    CU_CHECK(http_port > 0);
    CU_CHECK(leash_agent_start() == 0);
    CU_CHECK(leash_agent_path(agent_path, sizeof agent_path) > 0);
    pthread_t th[3];
    void *(*fns[3])(void *) = {dump_thread, http_thread, agent_thread};
    for (int i = 0; i < 3; i++)
        CU_CHECK(pthread_create(&th[i], NULL, fns[i], NULL) == 0);

    bool ok = watch();
    atomic_store(&stop, true);
    if (!ok)
        abort(); /* an observer is stuck: nothing can be joined */
    /* The threads' requests need this worker: wait without blocking it. */
    while (atomic_load(&threads_done) < 3)
        leash_sleep(MS);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    /* The senders see `stop` at their next send (the receivers are still
     * taking), then the channels close so the receivers finish. */
    leash_sleep(10 * MS);
    for (int i = 0; i < npairs; i++)
        leash_close(pairs[i].ch);
    leash_close(buffered.ch);
    leash_close(sel_a.ch);
    leash_close(sel_b.ch);
    leash_waitgroup_wait(&traffic_wg);
    leash_agent_stop();
    leash_debug_stop();

    for (int i = 0; i < npairs; i++)
        flow_check("ping-pong pair", &pairs[i]);
    flow_check("buffered", &buffered);
    flow_check("select a", &sel_a);
    flow_check("select b", &sel_b);
    CU_CHECK_EQ(mu_counter, atomic_load(&mu_adds));
    CU_CHECK_EQ(atomic_load(&ctx_woken), atomic_load(&ctx_waits));
    for (int i = 0; i < OB__N; i++) {
        cr_log_info("LEASH_PROCS=%d: %s: %ld operations, %ld failed", procs,
                    ob_name[i], atomic_load(&ob_ops[i]),
                    atomic_load(&ob_bad[i]));
        CU_CHECK(atomic_load(&ob_ops[i]) > 0);
        CU_CHECK_EQ(atomic_load(&ob_bad[i]), 0);
    }
    for (int i = 0; i < npairs; i++)
        leash_release(pairs[i].ch);
    leash_release(buffered.ch);
    leash_release(sel_a.ch);
    leash_release(sel_b.ch);
    return 0;
}

static void run(const char *procs) {
    const char *s = getenv("STRESS_OBSERVER_SECONDS");
    seconds = s && atoi(s) > 0 ? atoi(s) : 5;
    setenv("LEASH_PROCS", procs, 1);
    cr_assert_eq(cu_run(stress_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

Test(stress_observer, everything_observed_procs1) { run("1"); }
Test(stress_observer, everything_observed_procs2) { run("2"); }
Test(stress_observer, everything_observed_procs4) { run("4"); }
