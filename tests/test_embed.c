/* SPDX-License-Identifier: MIT */
/*
 * test_embed.c — leash's debug routes inside an application's own server
 * (issue 16, item 4): leash_debug_handle called in-process with a memory
 * writer (every status, no hang on huge or hostile input), then
 * tests/progs/embed_server.c — an HTTP/1.1 server of its own on leash
 * connections, keep-alive, that mounts the routes — read by raw clients,
 * `go tool pprof` and `promtool check metrics`; leash_debug_serve_conn;
 * the metrics-only listener; Prometheus' standard process_* series.
 *
 * go and promtool are skipped with a message when absent (Debian:
 * golang-go, prometheus).
 *
 * LEASH_TEST_TIMEOUT 240
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include "dbg_util.h"
#include "leash.h"

/* ------------------------------------------------------------ in-process */

typedef struct {
    char *buf;
    size_t n;
    FILE *f;
    int fail_after; /* > 0: fail the call after that many */
    int calls;
} sink;

static int sink_write(void *arg, const void *p, size_t n) {
    sink *s = arg;
    if (s->fail_after && ++s->calls > s->fail_after)
        return -EPIPE;
    return fwrite(p, 1, n, s->f) == n ? 0 : -EIO;
}

static void sink_open(sink *s) {
    memset(s, 0, sizeof *s);
    s->f = open_memstream(&s->buf, &s->n);
    cr_assert(s->f);
}

static char *sink_close(sink *s) {
    fclose(s->f);
    return s->buf;
}

/* Calls leash_debug_handle; checks the status and the response's frame. */
static char *handle(const char *method, const char *target, unsigned flags,
                    int want) {
    sink s;
    sink_open(&s);
    int st = leash_debug_handle(method, target, flags, sink_write, &s);
    char *r = sink_close(&s);
    cr_assert_eq(st, want, "%s %.80s: got %d: %.300s", method, target, st, r);
    cr_assert_eq(dbg_http_status(r), want, "%.200s", r);
    cr_expect(!strstr(r, "Connection:"), "the caller decides: %.200s", r);
    const char *cl = strstr(r, "Content-Length: ");
    cr_assert(cl, "%.200s", r);
    if (strcmp(method, "HEAD") && !strstr(r, "application/octet-stream"))
        cr_expect_eq(strtoul(cl + 16, NULL, 10), strlen(dbg_http_body(r)),
                     "%.300s", r);
    return r;
}

/* Every sample line has a # TYPE for its name and a number. */
static void check_prom_text(const char *body) {
    char *copy = strdup(body), *save = NULL;
    char types[4096] = " ";
    int samples = 0;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(l, "# TYPE ", 7)) {
            char name[128];
            cr_assert_eq(sscanf(l + 7, "%127s", name), 1, "%s", l);
            size_t tl = strlen(types);
            snprintf(types + tl, sizeof types - tl, "%s ", name);
            continue;
        }
        if (l[0] == '#')
            continue;
        char name[256];
        snprintf(name, sizeof name, " %.*s ", (int)strcspn(l, "{ "), l);
        cr_assert(strstr(types, name), "sample without TYPE: %s", l);
        const char *v = strrchr(l, ' ');
        char *end;
        strtod(v + 1, &end);
        cr_assert(end != v + 1 && !*end, "bad value: %s", l);
        samples++;
    }
    cr_expect_gt(samples, 20);
    free(copy);
}

static double sample(const char *body, const char *name) {
    size_t n = strlen(name);
    for (const char *p = body; (p = strstr(p, name)); p += n)
        if ((p == body || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

Test(embed, handler_routes_and_statuses, .timeout = 60) {
    char *r = handle("GET", "/metrics", 0, 200);
    cr_expect(strstr(r, "Content-Type: text/plain; version=0.0.4"));
    const char *b = dbg_http_body(r);
    check_prom_text(b);
    static const char *const std[] = {
        "# TYPE process_cpu_seconds_total counter",
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
        "# TYPE process_open_fds gauge",
        "# HELP process_open_fds Number of open file descriptors.",
        "# TYPE process_max_fds gauge",
        "# HELP process_max_fds Maximum number of open file descriptors.",
        "# TYPE process_virtual_memory_bytes gauge",
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.",
        "# TYPE process_resident_memory_bytes gauge",
        "# HELP process_resident_memory_bytes Resident memory size in bytes.",
        "# TYPE process_start_time_seconds gauge",
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
    };
    for (size_t i = 0; i < sizeof std / sizeof *std; i++)
        cr_expect(strstr(b, std[i]), "missing: %s", std[i]);
    cr_expect_gt(sample(b, "process_open_fds"), 2);
    cr_expect_gt(sample(b, "process_max_fds"), 2);
    cr_expect_gt(sample(b, "process_virtual_memory_bytes"), 1 << 20);
    cr_expect_gt(sample(b, "process_resident_memory_bytes"), 1 << 16);
    cr_expect_geq(sample(b, "process_cpu_seconds_total"), 0);
    double start = sample(b, "process_start_time_seconds");
    cr_expect(start > (double)time(NULL) - 600 && start <= (double)time(NULL) + 1,
              "start %f", start);
    free(r);

    r = handle("HEAD", "/metrics", 0, 200);
    cr_expect_str_eq(dbg_http_body(r), "");
    free(r);
    r = handle("GET", "/debug/pprof/goroutine?debug=1", 0, 200);
    cr_expect(strstr(r, "goroutine profile: total "), "%s", r);
    free(r);
    r = handle("GET", "/debug/pprof/goroutine", 0, 200);
    cr_expect(strstr(r, "application/octet-stream"));
    cr_expect((unsigned char)dbg_http_body(r)[0] == 0x1f);
    free(r);
    free(handle("GET", "/debug/pprof/", 0, 200));
    r = handle("GET", "/debug/leash/", 0, 200);
    cr_expect(strstr(r, "text/html") && strstr(r, "<svg id=\"chart-states\""),
              "%.500s", r);
    free(r);
    free(handle("GET", "/debug/leash?format=json", 0, 200));
    /* Absolute form, as a proxy sends it. */
    free(handle("GET", "http://app.example/metrics", 0, 200));

    static const struct { const char *m, *t; int st; } bad[] = {
        {"GET", "/a%zz", 400},       {"GET", "/a%00", 400},
        {"GET", "metrics", 400},     {"GET", "", 400},
        {"GET", "/a b", 400},        {"GET", "/metrics\r\nX-Injected: 1", 400},
        {"GET", "/\x01", 400},       {"GET", "/\xff", 400},
        {"G T", "/metrics", 400},    {"", "/metrics", 400},
        {"GET\r\n", "/metrics", 400}, {"GETGETGETGETGETGETGET", "/metrics", 400},
        {"GET", "/debug/pprof/goroutine?debug=9", 400},
        {"GET", "/debug/leash?format=xml", 400},
        {"GET", "/debug/pprof/nope", 404}, {"GET", "/", 404},
        {"GET", "/debug/pprofx", 404},
        {"POST", "/metrics", 405},   {"BREW", "/debug/pprof/", 405},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = handle(bad[i].m, bad[i].t, 0, bad[i].st);
        if (bad[i].st == 405)
            cr_expect(strstr(r, "Allow: GET, HEAD"));
        free(r);
    }
    /* Huge targets: 414 from 2 KiB on, whatever their size, at once. */
    size_t sizes[] = {2047, 2048, 3000, 1 << 20};
    for (size_t i = 0; i < 4; i++) {
        char *t = malloc(sizes[i] + 1);
        memcpy(t, "/metrics?q=", 11);
        memset(t + 11, 'a', sizes[i] - 11);
        t[sizes[i]] = 0;
        free(handle("GET", t, 0, i ? 414 : 200));
        free(t);
    }

    /* Metrics only. */
    free(handle("GET", "/metrics", LEASH_DEBUG_METRICS_ONLY, 200));
    free(handle("GET", "/debug/pprof/", LEASH_DEBUG_METRICS_ONLY, 404));
    free(handle("GET", "/debug/leash/", LEASH_DEBUG_METRICS_ONLY, 404));
    free(handle("GET", "/debug/pprof/goroutine?debug=2", LEASH_DEBUG_METRICS_ONLY,
                404));

    /* Bad calls write nothing. */
    sink s;
    sink_open(&s);
    cr_expect_eq(leash_debug_handle(NULL, "/metrics", 0, sink_write, &s), LEASH_EINVAL);
    cr_expect_eq(leash_debug_handle("GET", NULL, 0, sink_write, &s), LEASH_EINVAL);
    cr_expect_eq(leash_debug_handle("GET", "/metrics", 0, NULL, &s), LEASH_EINVAL);
    cr_expect_eq(leash_debug_handle("GET", "/metrics", 0x10, sink_write, &s),
                 LEASH_EINVAL);
    free(sink_close(&s));
    cr_expect_eq(s.n, 0);
    /* A writer that fails: its error, and no more calls. */
    sink_open(&s);
    s.fail_after = 1;
    cr_expect_eq(leash_debug_handle("GET", "/metrics", 0, sink_write, &s), -EPIPE);
    cr_expect_eq(s.calls, 2);
    free(sink_close(&s));

    cr_expect_eq(leash_metrics_write(NULL), LEASH_EINVAL);
    sink_open(&s);
    cr_expect_eq(leash_metrics_write(s.f), 0);
    r = sink_close(&s);
    check_prom_text(r);
    free(r);
}

Test(embed, metrics_listener_addresses, .timeout = 30) {
    cr_expect_eq(leash_metrics_listen("bogus"), LEASH_EINVAL);
    cr_expect_eq(leash_metrics_listen("127.0.0.1"), LEASH_EINVAL);
    unsetenv("LEASH_DEBUG_ALLOW_REMOTE");
    cr_expect_eq(leash_debug_listen("0.0.0.0:0"), -EACCES);
    int port = leash_metrics_listen("0.0.0.0:0");
    cr_assert_gt(port, 0, "a metrics listener may bind any address: %d", port);
    char *r = dbg_http_get(port, "/metrics", NULL);
    cr_expect_eq(dbg_http_status(r), 200, "%.200s", r);
    cr_expect(strstr(r, "process_open_fds"));
    free(r);
    const char evil[] = "GET /metrics HTTP/1.1\r\nHost: metrics.example:9464\r\n\r\n";
    r = dbg_http_raw(port, evil, sizeof evil - 1, NULL);
    cr_expect_eq(dbg_http_status(r), 200, "no Host check for /metrics: %.200s", r);
    free(r);
    const char *other[] = {"/debug/pprof/", "/debug/pprof/goroutine?debug=2",
                           "/debug/leash", "/"};
    for (size_t i = 0; i < 4; i++) {
        r = dbg_http_get(port, other[i], NULL);
        cr_expect_eq(dbg_http_status(r), 404, "%s: %.200s", other[i], r);
        cr_expect(strstr(r, "/metrics only"), "%s", r);
        free(r);
    }
    cr_expect_geq(leash_debug_stop(), 1);
}

/* ------------------------------------------------------------ the app */

typedef struct {
    pid_t pid;
    int out, port, conn_port, metrics_port, leaked;
    char log[2048];
} app_proc;

static app_proc app;
static char *tmp;

static void app_stop(void) {
    if (app.pid > 0) {
        kill(app.pid, SIGKILL);
        waitpid(app.pid, NULL, 0);
    }
    if (app.out > 0)
        close(app.out);
    memset(&app, 0, sizeof app);
    dbg_rmrf(tmp);
    free(tmp);
    tmp = NULL;
}

static void app_start(const char *const *args, const char *const *env) {
    const char *argv[16] = {LEASH_TEST_BINDIR "/testprog_embed_server"};
    int n = 1;
    for (; args && args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    int po[2];
    cr_assert(pipe2(po, O_CLOEXEC) == 0);
    app.pid = dbg_spawn(argv, env, po[1], 2, NULL);
    close(po[1]);
    app.out = po[0];
    size_t len = 0;
    int64_t end = dbg_ms() + 10000;
    while (!strstr(app.log, "ready\n") && dbg_ms() < end &&
           len + 1 < sizeof app.log) {
        struct pollfd pf = {app.out, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t r = read(app.out, app.log + len, sizeof app.log - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        app.log[len] = 0;
    }
    cr_assert(strstr(app.log, "ready\n"), "embed_server did not start: %s", app.log);
    const char *s;
    if ((s = strstr(app.log, "\nport=")) || !strncmp((s = app.log), "port=", 5))
        app.port = atoi(strchr(s, '=') + 1);
    if ((s = strstr(app.log, "conn_port=")))
        app.conn_port = atoi(s + 10);
    if ((s = strstr(app.log, "metrics_port=")))
        app.metrics_port = atoi(s + 13);
    if ((s = strstr(app.log, "leaked=")))
        app.leaked = atoi(s + 7);
    cr_assert(app.port > 0 && app.conn_port > 0, "%s", app.log);
}

static char *app_get(int port, const char *path, int want) {
    char *r = dbg_http_get(port, path, NULL);
    cr_assert(r, "cannot connect for %s", path);
    cr_assert_eq(dbg_http_status(r), want, "GET %.80s: %.300s", path, r);
    return r;
}

static char *app_raw(int port, const char *req, size_t n, int want) {
    char *r = dbg_http_raw(port, req, n, NULL);
    cr_assert(r, "cannot connect");
    cr_assert_eq(dbg_http_status(r), want, "%.60s: %.300s", req, r);
    return r;
}

Test(embed, app_server_mounts_the_routes, .fini = app_stop, .timeout = 60) {
    app_start(NULL, NULL);
    char *r = app_get(app.port, "/", 200);
    cr_expect(strstr(r, "hello from the app"));
    free(r);
    r = app_get(app.port, "/debug/pprof/goroutineleak?debug=1", 200);
    char want[64];
    snprintf(want, sizeof want, "goroutineleak profile: total %d", app.leaked);
    cr_expect(strstr(r, want) && strstr(r, "leaky_worker"), "%s", r);
    free(r);
    r = app_get(app.port, "/debug/pprof/goroutine?debug=2", 200);
    cr_expect(strstr(r, "serve(") && strstr(r, "embed_server.c"), "%s", r);
    free(r);
    r = app_get(app.port, "/debug/leash", 200);
    cr_expect(strstr(r, "LEAKED"), "%.500s", r);
    free(r);
    r = app_get(app.port, "/metrics", 200);
    check_prom_text(dbg_http_body(r));
    cr_expect_eq(sample(dbg_http_body(r), "leash_coroutines_leaked"), app.leaked);
    free(r);
    r = app_get(app.port, "/app/metrics", 200);
    check_prom_text(dbg_http_body(r));
    free(r);

    /* Keep-alive: three requests on one connection, pipelined; the
     * answers carry no Connection header of leash's, and the app closes
     * after the one that asks. */
    const char three[] =
        "GET /debug/pprof/goroutine?debug=1 HTTP/1.1\r\nHost: a\r\n\r\n"
        "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    r = app_raw(app.port, three, sizeof three - 1, 200);
    cr_expect_eq(dbg_count(r, "HTTP/1.1 200 OK\r\n"), 3, "%s", r);
    cr_expect(strstr(r, "hello from the app"), "%s", r);
    cr_expect(!strstr(r, "Connection:"), "%s", r);
    free(r);

    /* Bad requests through the app: leash's statuses. */
    static const struct { const char *path; int st; } bad[] = {
        {"/debug/pprof/nope", 404}, {"/metricsx", 404}, {"/debug/a%zz", 400},
        {"/debug/pprof/goroutine?debug=%g1", 400}, {"/nowhere", 404},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        free(app_get(app.port, bad[i].path, bad[i].st));
    const char post[] = "POST /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                        "Content-Length: 0\r\n\r\n";
    r = app_raw(app.port, post, sizeof post - 1, 405);
    cr_expect(strstr(r, "Allow: GET, HEAD"));
    free(r);
    char *huge = malloc(12000);
    int n = snprintf(huge, 12000, "GET /debug/pprof/goroutine?debug=1&pad=");
    memset(huge + n, 'x', 10000);
    n += 10000;
    n += snprintf(huge + n, (size_t)(12000 - n),
                  " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    r = app_raw(app.port, huge, (size_t)n, 414);
    free(r);
    free(huge);
    /* The app still answers. */
    free(app_get(app.port, "/", 200));
}

Test(embed, serve_conn, .fini = app_stop, .timeout = 60) {
    const char *env[] = {"LEASH_DEBUG_HEADER_TIMEOUT_MS=300", NULL};
    app_start(NULL, env);
    char *r = app_get(app.conn_port, "/debug/pprof/goroutine?debug=1", 200);
    cr_expect(strstr(r, "Connection: close") && strstr(r, "goroutine profile"));
    free(r);
    free(app_get(app.conn_port, "/metrics", 200));
    free(app_get(app.conn_port, "/nope", 404));
    const char v9[] = "GET /metrics HTTP/9.9\r\nHost: a\r\n\r\n";
    free(app_raw(app.conn_port, v9, sizeof v9 - 1, 505));
    const char evil[] = "GET /debug/pprof/ HTTP/1.1\r\nHost: evil.example\r\n\r\n";
    free(app_raw(app.conn_port, evil, sizeof evil - 1, 403));
    const char garbage[] = "\x16\x03\x01\x02\x00\r\n\r\n";
    free(app_raw(app.conn_port, garbage, sizeof garbage - 1, 400));
    /* A client that sends half a head: 408 after the header timeout. */
    const char half[] = "GET /metrics HTTP/1.1\r\nHost: a\r\n";
    int64_t t0 = dbg_ms();
    free(app_raw(app.conn_port, half, sizeof half - 1, 408));
    cr_expect_lt(dbg_ms() - t0, 5000);
    free(app_get(app.conn_port, "/debug/pprof/", 200));
}

Test(embed, metrics_addr_env, .fini = app_stop, .timeout = 60) {
    const char *env[] = {"LEASH_METRICS_ADDR=127.0.0.1:0", NULL};
    const char *args[] = {"--metrics", "0.0.0.0:0", NULL};
    app_start(args, env);
    cr_assert_gt(app.metrics_port, 0, "%s", app.log);
    char *r = app_get(app.metrics_port, "/metrics", 200);
    cr_expect(strstr(r, "leash_coroutines_leaked 3"), "%.2000s", r);
    free(r);
    free(app_get(app.metrics_port, "/debug/pprof/goroutine", 404));
}

Test(embed, go_tool_pprof_and_promtool, .fini = app_stop, .timeout = 150) {
    char *go = dbg_which("go"), *promtool = dbg_which("promtool");
    if (!go && !promtool)
        cr_skip_test("neither go (golang-go) nor promtool (prometheus) found");
    app_start(NULL, NULL);
    tmp = dbg_tmpdir();
    cr_assert(tmp);
    if (go) {
        char home[300], cache[300], pp[300], url[160];
        snprintf(home, sizeof home, "HOME=%s", tmp);
        snprintf(cache, sizeof cache, "GOCACHE=%s/gocache", tmp);
        snprintf(pp, sizeof pp, "PPROF_TMPDIR=%s", tmp);
        const char *env[] = {home, cache, pp, "GOFLAGS=",
                             "PPROF_BINARY_PATH=/nonexistent", NULL};
        for (int leak = 0; leak < 2; leak++) {
            snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/pprof/%s",
                     app.port, leak ? "goroutineleak" : "goroutine");
            const char *argv[] = {go, "tool", "pprof", "-top", url, NULL};
            char *out, *err;
            int rc = dbg_run(argv, env, 90, &out, &err);
            cr_assert_eq(rc, 0, "go tool pprof -top %s: %s\n%s", url, out, err);
            cr_expect(strstr(out, "Type: goroutine"), "%s", out);
            cr_expect(strstr(out, "leaky_worker"), "%s", out);
            if (leak) {
                char want[64];
                snprintf(want, sizeof want, "of %d total", app.leaked);
                cr_expect(strstr(out, want), "want '%s': %s", want, out);
            } else {
                cr_expect(strstr(out, "accept_loop") && strstr(out, "serve"),
                          "%s", out);
            }
            free(out);
            free(err);
        }
    } else {
        cr_log_warn("go not found (Debian: golang-go): go tool pprof skipped");
    }
    if (promtool) {
        size_t n;
        char *r = dbg_http_get(app.port, "/metrics", &n);
        cr_assert_eq(dbg_http_status(r), 200);
        char path[400];
        snprintf(path, sizeof path, "%s/metrics.txt", tmp);
        dbg_write_file(path, dbg_http_body(r), strlen(dbg_http_body(r)));
        free(r);
        const char *argv[] = {promtool, "check", "metrics", NULL};
        char *out, *err;
        int rc = dbg_run_in(argv, NULL, 60, &out, &err, path);
        cr_expect_eq(rc, 0, "promtool check metrics: %s\n%s", out, err);
        free(out);
        free(err);
    } else {
        cr_log_warn("promtool not found (Debian: prometheus): check skipped");
    }
    free(go);
    free(promtool);
}
