/* SPDX-License-Identifier: MIT */
/*
 * test_http.c — the HTTP debug endpoint (leash_debug_listen) with real
 * clients: raw requests for every route and for bad, huge and slow ones;
 * the Prometheus text format line by line; `go tool pprof -top` on the
 * live profile; a real Prometheus server scraping /metrics and answering
 * a query for the leaked-coroutine count. The server is
 * tests/progs/dbg_server.c (2*N+1 proven leaks), loopback only.
 *
 * go and prometheus are skipped with a message when absent (Debian:
 * golang-go, prometheus).
 *
 * LEASH_TEST_TIMEOUT 240
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <ctype.h>
#include <pthread.h>

#include "dbg_util.h"
#include "leash.h"

static dbg_proc srv;
static char *tmp;

static void teardown(void) {
    dbg_stop(&srv);
    dbg_rmrf(tmp);
    free(tmp);
    tmp = NULL;
}

static void start(const char *const *args, const char *const *env) {
    cr_assert(dbg_start(&srv, args, env), "dbg_server did not start: %s",
              srv.log);
    cr_assert(srv.port > 0, "no port: %s", srv.log);
}

static char *get(const char *path, int want_status) {
    size_t n;
    char *r = dbg_http_get(srv.port, path, &n);
    cr_assert(r, "cannot connect for %s", path);
    cr_assert_eq(dbg_http_status(r), want_status, "GET %s: %.300s", path, r);
    return r;
}

static char *raw(const char *req, size_t n, int want_status) {
    char *r = dbg_http_raw(srv.port, req, n, NULL);
    cr_assert(r, "cannot connect");
    cr_assert_eq(dbg_http_status(r), want_status, "request %.60s: got %.200s",
                 req, r);
    return r;
}

/* ------------------------------------------------------------ routes */

Test(http, routes, .fini = teardown, .timeout = 60) {
    start(NULL, NULL);
    char *r = get("/debug/pprof/", 200);
    cr_expect(strstr(r, "Content-Type: text/html"));
    cr_expect(strstr(r, "goroutineleak") && strstr(r, "goroutine?debug=2"));
    cr_expect(strstr(r, "Connection: close"));
    free(r);
    free(get("/debug/pprof", 200));

    const char *gz[] = {"/debug/pprof/goroutine", "/debug/pprof/goroutine?debug=0",
                        "/debug/pprof/goroutineleak?debug=0"};
    for (size_t i = 0; i < 3; i++) {
        r = get(gz[i], 200);
        cr_expect(strstr(r, "Content-Type: application/octet-stream"), "%s", gz[i]);
        const unsigned char *b = (const unsigned char *)dbg_http_body(r);
        cr_expect(b[0] == 0x1f && b[1] == 0x8b, "%s: not gzip", gz[i]);
        free(r);
    }
    r = get("/debug/pprof/goroutine?debug=1", 200);
    cr_expect(strstr(dbg_http_body(r), "goroutine profile: total "), "%s", r);
    free(r);
    r = get("/debug/pprof/goroutine?debug=2", 200);
    cr_expect(strstr(r, "goroutine 1 [") && strstr(r, "created by"));
    cr_expect(strstr(r, "query"));
    free(r);
    r = get("/debug/pprof/goroutineleak?debug=1", 200);
    char want[64];
    snprintf(want, sizeof want, "goroutineleak profile: total %d", srv.leaked);
    cr_expect(strstr(r, want), "want '%s' in %s", want, r);
    free(r);
    r = get("/debug/pprof/goroutineleak?debug=2", 200);
    cr_expect_eq(dbg_count(dbg_http_body(r), "]:\n"), srv.leaked, "%s", r);
    free(r);
    r = get("/debug/leash", 200);
    cr_expect(strstr(r, "LEAKED") && strstr(r, "spawned at"), "%s", r);
    free(r);
    r = get("/debug/leash?format=text", 200);
    free(r);
    r = get("/debug/leash?format=json", 200);
    cr_expect(strstr(r, "application/json"));
    cr_expect(strstr(dbg_http_body(r), "{\"format\":\"leash-dump/1\"") ==
              dbg_http_body(r), "%.200s", dbg_http_body(r));
    free(r);
    r = get("/metrics", 200);
    cr_expect(strstr(r, "Content-Type: text/plain; version=0.0.4"));
    free(r);

    /* HEAD: the head only. */
    const char head[] = "HEAD /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
    r = raw(head, sizeof head - 1, 200);
    cr_expect(strstr(r, "Content-Length: ") && !strstr(r, "# HELP"));
    free(r);
    /* HTTP/1.0 needs no Host; bare LF line ends are accepted. */
    const char h10[] = "GET /debug/pprof/goroutine?debug=1 HTTP/1.0\n\n";
    free(raw(h10, sizeof h10 - 1, 200));
    /* Absolute form, escapes in the path and query, '+' for spaces. */
    const char abs[] = "GET http://127.0.0.1/debug/%70prof/goroutine?x=a+b&debug=%31 "
                       "HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    r = raw(abs, sizeof abs - 1, 200);
    cr_expect(strstr(r, "goroutine profile: total"));
    free(r);
}

/* ------------------------------------------------------------ bad input */

Test(http, bad_requests, .fini = teardown, .timeout = 60) {
    start(NULL, NULL);
    static const struct { const char *req; int status; } cases[] = {
        {"garbage\r\n\r\n", 400},
        {"GET\r\n\r\n", 400},
        {"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", 400},
        {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\n\r\n", 400},              /* no Host */
        {"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\nHost: localhost\r\n folded\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\nHost : localhost\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\nHost: localhost\r\nBad\x01: x\r\n\r\n", 400},
        {"GET /a%zz HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        {"GET /a%00 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        {"GET metrics HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n"
         "Transfer-Encoding: chunked\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET /debug/pprof/goroutine?debug=3 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        {"GET /debug/pprof/goroutine?debug=x HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        {"GET /debug/pprof/goroutine?debug=%g1 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        {"GET /debug/leash?format=xml HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        {"GET /metrics HTTP/2.0\r\nHost: localhost\r\n\r\n", 505},
        {"GET /metrics HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403},
        {"GET /metrics HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n", 403},
        {"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n", 404},
        {"GET /debug/pprof/heap HTTP/1.1\r\nHost: localhost\r\n\r\n", 404},
        {"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 404},
        {"POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nab", 405},
        {"DELETE /debug/pprof/ HTTP/1.1\r\nHost: localhost\r\n\r\n", 405},
        {"BREW /coffee HTTP/1.1\r\nHost: localhost\r\n\r\n", 405},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *r = raw(cases[i].req, strlen(cases[i].req), cases[i].status);
        cr_expect(strstr(r, "Connection: close"), "case %zu", i);
        if (cases[i].status == 405)
            cr_expect(strstr(r, "Allow: GET, HEAD"));
        free(r);
    }
    /* NUL bytes and binary garbage. */
    const char bin[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";
    free(raw(bin, sizeof bin - 1, 400));
    const char nul[] = "GET /metrics\0 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    free(raw(nul, sizeof nul - 1, 400));

    /* Huge: a header past 8 KiB (413), a target past 2 KiB (414), a method
     * that never ends. */
    size_t big = 9000;
    char *req = malloc(big + 128);
    int n = snprintf(req, 128, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    free(raw(req, (size_t)n + big + 4, 413));
    n = snprintf(req, 128, "GET /");
    memset(req + n, 'a', 3000);
    memcpy(req + n + 3000, " HTTP/1.1\r\nHost: a\r\n\r\n", 23);
    free(raw(req, (size_t)n + 3023, 414));
    memset(req, 'G', 200);
    free(raw(req, 200, 400));
    /* Many headers. */
    char *many = malloc(8192);
    n = snprintf(many, 8192, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n");
    for (int i = 0; i < 70; i++)
        n += snprintf(many + n, 8192 - (size_t)n, "X-%d: v\r\n", i);
    n += snprintf(many + n, 8192 - (size_t)n, "\r\n");
    free(raw(many, (size_t)n, 413));
    free(many);
    free(req);

    /* Clients that go away mid-request or mid-answer hurt nobody. */
    for (int i = 0; i < 20; i++) {
        int fd = dbg_tcp(srv.port);
        cr_assert(fd >= 0);
        const char *q = i % 2 ? "GET /debug/pprof/goroutine?debug=2 HTTP/1.1\r\n"
                                "Host: a\r\n\r\n"
                              : "GET /met";
        dbg_send(fd, q, strlen(q));
        close(fd);
    }
    char *r = get("/metrics", 200);
    cr_expect(strstr(r, "leash_coroutines_leaked"));
    free(r);
}

/* A head that does not arrive in time gets 408, however it trickles. */
Test(http, slow_requests, .fini = teardown, .timeout = 60) {
    const char *env[] = {"LEASH_DEBUG_TIMEOUT_MS=400", NULL};
    start(NULL, env);
    /* Silent client, partial head, and a slowloris (a byte per 100 ms). */
    for (int mode = 0; mode < 3; mode++) {
        int fd = dbg_tcp(srv.port);
        cr_assert(fd >= 0);
        int64_t t0 = dbg_ms();
        if (mode == 1)
            dbg_send(fd, "GET /metrics HTTP/1.1\r\nHost: a\r\n", 32);
        if (mode == 2) {
            const char *s = "GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaa";
            for (int i = 0; s[i]; i++) {
                if (!dbg_send(fd, s + i, 1))
                    break;
                usleep(100000);
            }
        }
        char *r = dbg_read_all(fd, 5000, NULL);
        int64_t el = dbg_ms() - t0;
        close(fd);
        cr_expect_eq(dbg_http_status(r), 408, "mode %d: %.100s", mode, r);
        cr_expect(el >= 350 && el < 5000, "mode %d: answered after %lld ms", mode,
                  (long long)el);
        free(r);
    }
    free(get("/debug/pprof/", 200));
}

/* Opens n slowloris clients (a partial head, never finished) in fds. */
static void open_slow(int *fds, int n) {
    static const char part[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (int i = 0; i < n; i++) {
        fds[i] = dbg_tcp(srv.port);
        cr_assert(fds[i] >= 0, "slow client %d cannot connect", i);
        dbg_send(fds[i], part, sizeof part - 1);
    }
}

/* GET path answered 200 within ms milliseconds. */
static void expect_served_within(const char *path, int ms) {
    int64_t t0 = dbg_ms();
    size_t n;
    char *r = dbg_http_get(srv.port, path, &n);
    int64_t el = dbg_ms() - t0;
    cr_expect_eq(dbg_http_status(r), 200, "GET %s with slow clients: %.200s",
                 path, r ? r : "(no answer)");
    cr_expect(el < ms, "GET %s answered after %lld ms", path, (long long)el);
    cr_log_info("GET %s with slow clients: %lld ms", path, (long long)el);
    free(r);
}

/* Slowloris: twice the (default) connection cap of clients that never
 * finish their head; a real request is still answered at once (the
 * slowest waiting head is closed to make room). */
Test(http, slow_clients_do_not_starve_requests, .fini = teardown,
     .timeout = 60) {
    start(NULL, NULL);
    enum { N = 64 }; /* 2 x the default LEASH_DEBUG_MAX_CONNS */
    int fds[N];
    open_slow(fds, N);
    usleep(200000); /* all accepted, all waiting for the rest of a head */
    for (int i = 0; i < 3; i++)
        expect_served_within("/debug/pprof/goroutine?debug=1", 1000);
    for (int i = 0; i < N; i++)
        close(fds[i]);
}

/* Notes in eof[] which of fds[0..n) the server has closed; true when the
 * first `oldest` of them are. */
static bool saw_eofs(const int *fds, bool *eof, int n, int oldest) {
    bool all = true;
    for (int i = 0; i < n; i++) {
        struct pollfd pf = {fds[i], POLLIN, 0};
        char c;
        if (!eof[i])
            eof[i] = poll(&pf, 1, 0) == 1 &&
                     recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0;
        if (i < oldest)
            all &= eof[i];
    }
    return all;
}

/* LEASH_DEBUG_MAX_CONNS: with a cap of 4, eight slow clients leave at
 * most four open (the oldest closed first), and requests are served. */
Test(http, max_conns_evicts_oldest_slow_clients, .fini = teardown,
     .timeout = 60) {
    const char *env[] = {"LEASH_DEBUG_MAX_CONNS=4", NULL};
    start(NULL, env);
    enum { N = 8 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        open_slow(&fds[i], 1);
        usleep(20000); /* accepted in this order */
    }
    /* The server closes the oldest as it accepts the newer ones: wait for
     * it (a loaded machine may take longer than the clients did). */
    bool eof[N] = {false};
    int64_t end = dbg_ms() + 10000;
    while (!saw_eofs(fds, eof, N, N - 4) && dbg_ms() < end)
        usleep(20000);
    for (int i = 0; i < N - 4; i++)
        cr_expect(eof[i], "slow client %d (of the oldest) still open", i);
    usleep(100000); /* and no more than those go */
    int closed = 0;
    saw_eofs(fds, eof, N, 0);
    for (int i = 0; i < N; i++)
        closed += eof[i];
    cr_expect_geq(closed, N - 4, "%d of %d slow clients closed", closed, N);
    expect_served_within("/debug/pprof/goroutine?debug=1", 1000);
    for (int i = 0; i < N; i++)
        close(fds[i]);
}

/* More clients at once than the connection limit: none hangs, the server
 * survives. */
static void *hammer(void *arg) {
    int port = (int)(intptr_t)arg, ok = 0;
    for (int i = 0; i < 10; i++) {
        char *r = dbg_http_get(port, "/debug/pprof/goroutine?debug=1", NULL);
        ok += r && dbg_http_status(r) == 200;
        free(r);
    }
    return (void *)(intptr_t)ok;
}

Test(http, concurrent_clients, .fini = teardown, .timeout = 90) {
    start(NULL, NULL);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, hammer, (void *)(intptr_t)srv.port);
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (int)(intptr_t)r;
    }
    cr_expect_eq(ok, 80);
    free(get("/metrics", 200));
}

/* ------------------------------------------------------------ metrics */

static bool metric_name(const char **p) {
    const char *s = *p;
    if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return false;
    while (isalnum((unsigned char)*s) || *s == '_' || *s == ':')
        s++;
    *p = s;
    return true;
}

/* Checks the text exposition format 0.0.4 line by line; returns the value
 * of `want` (a full series, e.g. `x{a="b"}`) or -1. */
static double check_prom(const char *body, const char *want) {
    char typed[64][128];
    int ntyped = 0;
    double found = -1;
    char *copy = strdup(body), *save = NULL;
    int line = 0;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        if (l[0] == '#') {
            const char *p = l + 2;
            cr_assert(!strncmp(l, "# HELP ", 7) || !strncmp(l, "# TYPE ", 7),
                      "line %d: %s", line, l);
            p = l + 7;
            const char *name = p;
            cr_assert(metric_name(&p) && *p == ' ', "line %d: bad name: %s", line, l);
            if (!strncmp(l, "# TYPE ", 7)) {
                cr_assert(!strcmp(p + 1, "gauge") || !strcmp(p + 1, "counter"),
                          "line %d: %s", line, l);
                cr_assert(ntyped < 64);
                snprintf(typed[ntyped++], 128, "%.*s", (int)(p - name), name);
            }
            continue;
        }
        const char *p = l;
        cr_assert(metric_name(&p), "line %d: bad sample: %s", line, l);
        size_t nl = (size_t)(p - l);
        bool known = false;
        for (int i = 0; i < ntyped; i++)
            known |= strlen(typed[i]) == nl && !strncmp(typed[i], l, nl);
        cr_assert(known, "line %d: sample without TYPE: %s", line, l);
        if (*p == '{') {
            p++;
            while (*p != '}') {
                cr_assert(metric_name(&p) && *p == '=' && p[1] == '"',
                          "line %d: bad label: %s", line, l);
                p += 2;
                while (*p && *p != '"') {
                    if (*p == '\\') {
                        cr_assert(p[1] == '\\' || p[1] == '"' || p[1] == 'n',
                                  "line %d: bad escape", line);
                        p++;
                    }
                    p++;
                }
                cr_assert(*p == '"', "line %d: unterminated label", line);
                p++;
                if (*p == ',')
                    p++;
                else
                    cr_assert(*p == '}', "line %d: %s", line, l);
            }
            p++;
        }
        cr_assert(*p == ' ', "line %d: %s", line, l);
        char *end;
        double v = strtod(p + 1, &end);
        cr_assert(end != p + 1 && *end == 0, "line %d: bad value: %s", line, l);
        if (want && (size_t)(p - l) == strlen(want) && !strncmp(l, want, strlen(want)))
            found = v;
    }
    free(copy);
    return found;
}

static double metric(const char *series) {
    char *r = get("/metrics", 200);
    double v = check_prom(dbg_http_body(r), series);
    free(r);
    return v;
}

Test(http, metrics_format, .fini = teardown, .timeout = 60) {
    const char *args[] = {"--leaks", "4", "--crowd", "6", NULL};
    /* A crowd is one only once most of it waited LEASH_SUSPECT_WAIT_MS
     * (or it keeps growing): a count alone is no suspect. */
    const char *env[] = {"LEASH_SUSPECT_CROWD=6", "LEASH_SUSPECT_WAIT_MS=200",
                         NULL};
    start(args, env);
    cr_assert_eq(srv.leaked, 9);
    cr_expect_eq(metric("leash_coroutines_leaked"), 9);
    cr_expect_eq(metric("leash_orphans_total"), 4);
    cr_expect_eq(metric("leash_coroutines_suspect{kind=\"io_no_deadline\"}"), 1);
    int64_t until = leash_now() + 5000000000LL;
    while (metric("leash_coroutines_suspect{kind=\"crowd\"}") != 6 &&
           leash_now() < until)
        leash_sleep(50000000);
    cr_expect_eq(metric("leash_coroutines_suspect{kind=\"crowd\"}"), 6);
    cr_expect_eq(metric("leash_coroutines_waiting{reason=\"chan send\"}"), 8);
    cr_expect_eq(metric("leash_coroutines_waiting{reason=\"chan receive (nil chan)\"}"), 1);
    cr_expect_geq(metric("leash_coroutines"), 9 + 6 + 4);
    cr_expect_geq(metric("leash_workers"), 1);
    cr_expect_geq(metric("leash_os_threads"), 2);
    cr_expect_geq(metric("leash_objects{type=\"channel\"}"), 1);
    cr_expect_geq(metric("leash_uptime_seconds"), 0);
    cr_expect_gt(metric("process_resident_memory_bytes"), 0);
    char *r = get("/metrics", 200);
    cr_expect(strstr(r, "leash_coroutines_spawn_site{site=\""), "%s", r);
    cr_expect(strstr(r, "dbg_server.c:"));
    free(r);
}

/* ------------------------------------------------------------ go tool pprof */

Test(http, go_tool_pprof, .fini = teardown, .timeout = 120) {
    char *go = dbg_which("go");
    if (!go)
        cr_skip_test("go not found (Debian: golang-go): skipping go tool pprof");
    start(NULL, NULL);
    tmp = dbg_tmpdir();
    char home[300], cache[300], pp[300], url[128];
    snprintf(home, sizeof home, "HOME=%s", tmp);
    snprintf(cache, sizeof cache, "GOCACHE=%s/gocache", tmp);
    snprintf(pp, sizeof pp, "PPROF_TMPDIR=%s", tmp);
    const char *env[] = {home, cache, pp, "GOFLAGS=", "PPROF_BINARY_PATH=/nonexistent", NULL};
    for (int leak = 0; leak < 2; leak++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/pprof/%s", srv.port,
                 leak ? "goroutineleak" : "goroutine");
        const char *argv[] = {go, "tool", "pprof", "-top", url, NULL};
        char *out, *err;
        int rc = dbg_run(argv, env, 90, &out, &err);
        cr_assert_eq(rc, 0, "go tool pprof -top %s: %s\n%s", url, out, err);
        cr_expect(strstr(out, "Type: goroutine"), "%s", out);
        cr_expect(strstr(out, "leash_send_n") && strstr(out, "query"), "%s", out);
        if (leak) {
            char want[64];
            snprintf(want, sizeof want, "of %d total", srv.leaked);
            cr_expect(strstr(out, want), "want '%s': %s", want, out);
        } else {
            cr_expect(strstr(out, "accept_loop") && strstr(out, "app"), "%s", out);
        }
        free(out);
        free(err);
    }
    free(go);
}

/* ------------------------------------------------------------ Prometheus */

static pid_t prom_pid;

static void prom_teardown(void) {
    if (prom_pid > 0) {
        kill(prom_pid, SIGTERM);
        int64_t end = dbg_ms() + 5000;
        while (waitpid(prom_pid, NULL, WNOHANG) == 0 && dbg_ms() < end)
            usleep(20000);
        kill(prom_pid, SIGKILL);
        waitpid(prom_pid, NULL, 0);
        prom_pid = 0;
    }
    teardown();
}

/* The first sample value of a Prometheus instant query, or NULL. */
static char *prom_query(int port, const char *q, char *val, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "/api/v1/query?query=%s", q);
    char *r = dbg_http_get(port, path, NULL);
    const char *v = r ? strstr(r, "\"value\":[") : NULL;
    const char *s = v ? strchr(v, ',') : NULL;
    char *res = NULL;
    if (s && s[1] == '"') {
        snprintf(val, n, "%.*s", (int)strcspn(s + 2, "\""), s + 2);
        res = val;
    }
    free(r);
    return res;
}

Test(http, prometheus_scrapes, .fini = prom_teardown, .timeout = 120) {
    char *prom = dbg_which("prometheus");
    if (!prom)
        cr_skip_test("prometheus not found (Debian: prometheus): skipping the "
                     "real scrape");
    start(NULL, NULL);
    tmp = dbg_tmpdir();
    int pport = dbg_free_port();
    char cfg[300], data[300], flag_cfg[400], flag_data[400], flag_web[128],
        logp[300];
    snprintf(cfg, sizeof cfg, "%s/prometheus.yml", tmp);
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(logp, sizeof logp, "%s/prometheus.log", tmp);
    char yml[512];
    int yn = snprintf(yml, sizeof yml,
                      "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                      "  evaluation_interval: 1s\n"
                      "scrape_configs:\n  - job_name: leash\n"
                      "    static_configs:\n      - targets: ['127.0.0.1:%d']\n",
                      srv.port);
    dbg_write_file(cfg, yml, (size_t)yn);
    snprintf(flag_cfg, sizeof flag_cfg, "--config.file=%s", cfg);
    snprintf(flag_data, sizeof flag_data, "--storage.tsdb.path=%s", data);
    snprintf(flag_web, sizeof flag_web, "--web.listen-address=127.0.0.1:%d", pport);
    const char *argv[] = {prom, flag_cfg, flag_data, flag_web,
                          "--log.level=warn", NULL};
    int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    prom_pid = dbg_spawn(argv, NULL, logfd, logfd, NULL);
    close(logfd);
    free(prom);
    /* Scraped once (up == 1), then the leaked-coroutine count. */
    char val[64], up[64] = "", leaked[64] = "";
    int64_t end = dbg_ms() + 60000;
    while (dbg_ms() < end) {
        if (prom_query(pport, "up%7Bjob%3D%22leash%22%7D", val, sizeof val))
            snprintf(up, sizeof up, "%s", val);
        if (!strcmp(up, "1") &&
            prom_query(pport, "leash_coroutines_leaked%7Bjob%3D%22leash%22%7D",
                       val, sizeof val)) {
            snprintf(leaked, sizeof leaked, "%s", val);
            break;
        }
        usleep(250000);
    }
    cr_assert_str_eq(up, "1", "prometheus never scraped the endpoint (see %s)", logp);
    cr_assert_eq(atoi(leaked), srv.leaked, "leash_coroutines_leaked = '%s'", leaked);
    cr_log_info("prometheus: leash_coroutines_leaked{job=\"leash\"} = %s", leaked);
    /* A labelled series and a counter made it too. */
    cr_expect(prom_query(pport,
                         "leash_coroutines_waiting%7Breason%3D%22chan%20send%22%7D",
                         val, sizeof val) && atoi(val) == srv.leaked - 1, "%s", val);
    cr_expect(prom_query(pport, "leash_orphans_total", val, sizeof val) &&
              atoi(val) == (srv.leaked - 1) / 2);
}

/* ------------------------------------------------------------ the API */

Test(http, listen_addresses, .timeout = 30) {
    unsetenv("LEASH_DEBUG_ALLOW_REMOTE");
    cr_expect_eq(leash_debug_listen("0.0.0.0:0"), -EACCES);
    cr_expect_eq(leash_debug_listen("192.0.2.1:0"), -EACCES);
    cr_expect_eq(leash_debug_listen("[::]:0"), -EACCES);
    const char *bad[] = {"nonsense", "127.0.0.1:", "127.0.0.1:99999", ":-1",
                         "::1:80", "[::1", "example.com:80", "127.0.0.1:80x",
                         "[::1]80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(leash_debug_listen(bad[i]), LEASH_EINVAL, "%s", bad[i]);
    int p1 = leash_debug_listen(NULL);
    cr_assert_gt(p1, 0);
    int p2 = leash_debug_listen("localhost:0");
    cr_assert_gt(p2, 0);
    cr_expect_neq(p1, p2);
    int p3 = leash_debug_listen(":0");
    cr_assert_gt(p3, 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", p1);
    cr_expect_eq(leash_debug_listen(addr), -EADDRINUSE);
    int p6 = leash_debug_listen("[::1]:0");
    cr_expect(p6 > 0 || p6 == -EADDRNOTAVAIL || p6 == -EAFNOSUPPORT, "%d", p6);
    setenv("LEASH_DEBUG_ALLOW_REMOTE", "1", 1);
    int p4 = leash_debug_listen("0.0.0.0:0");
    cr_expect_gt(p4, 0);
    unsetenv("LEASH_DEBUG_ALLOW_REMOTE");
    /* Served by this process's runtime, from a plain thread's call. */
    char *r = dbg_http_get(p2, "/debug/pprof/goroutine?debug=2", NULL);
    cr_assert_eq(dbg_http_status(r), 200, "%s", r);
    cr_expect(strstr(r, "accept_loop"), "%s", r);
    free(r);
}

/* LEASH_DEBUG_ADDR starts the endpoint at runtime start, no code change. */
Test(http, env_addr, .fini = teardown, .timeout = 30) {
    const char *argv[] = {LEASH_TEST_BINDIR "/testprog_dbg_server", "--no-http",
                          "--lifetime", "1", NULL};
    const char *env[] = {"LEASH_DEBUG_ADDR=127.0.0.1:0", NULL};
    char *out, *err;
    int rc = dbg_run(argv, env, 20, &out, &err);
    cr_expect_eq(rc, 0, "%s", err);
    cr_expect(strstr(err, "leash: debug endpoint on http://127.0.0.1:"),
              "LEASH_DEBUG_ADDR not honoured (is debug_env_start() called at "
              "runtime start?): stderr: %s", err);
    free(out);
    free(err);
    const char *env2[] = {"LEASH_DEBUG_ADDR=0.0.0.0:0", NULL};
    rc = dbg_run(argv, env2, 20, &out, &err);
    cr_expect_eq(rc, 0);
    cr_expect(strstr(err, "not a loopback address"), "stderr: %s", err);
    free(out);
    free(err);
}
