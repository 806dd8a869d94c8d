/* SPDX-License-Identifier: MIT */
/*
 * test_livepage.c — the live page, /debug/leash/ (issue 16, item 5),
 * served by tests/progs/embed_server.c (through leash_debug_handle) while
 * it leaks one coroutine every 100 ms at one site: the HTML is
 * self-contained (no asset from elsewhere), its sampled history shows
 * that site growing, the proven leaks are listed, every profile is
 * linked; then headless Chromium renders it (--dump-dom: the charts and
 * the leak list are in the DOM; --screenshot: it paints). Chromium is
 * skipped with a message when absent (Debian: chromium, which `make test`
 * installs).
 *
 * LEASH_TEST_TIMEOUT 180
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dbg_util.h"

static pid_t app_pid;
static int app_out = -1, port;
static char *tmp;

static void stop(void) {
    if (app_pid > 0) {
        kill(app_pid, SIGKILL);
        waitpid(app_pid, NULL, 0);
        app_pid = 0;
    }
    if (app_out >= 0)
        close(app_out);
    app_out = -1;
    dbg_rmrf(tmp);
    free(tmp);
    tmp = NULL;
}

static void start(void) {
    const char *argv[] = {LEASH_TEST_BINDIR "/testprog_embed_server", "--grow",
                          "100", "--lifetime", "120", NULL};
    int po[2];
    cr_assert(pipe2(po, O_CLOEXEC) == 0);
    app_pid = dbg_spawn(argv, NULL, po[1], 2, NULL);
    close(po[1]);
    app_out = po[0];
    char log[1024] = "";
    size_t len = 0;
    int64_t end = dbg_ms() + 10000;
    while (!strstr(log, "ready\n") && dbg_ms() < end && len + 1 < sizeof log) {
        struct pollfd pf = {app_out, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t r = read(app_out, log + len, sizeof log - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        log[len] = 0;
    }
    cr_assert(strstr(log, "ready\n"), "embed_server: %s", log);
    port = atoi(strstr(log, "port=") + 5);
    tmp = dbg_tmpdir();
    cr_assert(tmp);
}

/* The spawn-site index (in the samples' "sites" list) of the growing
 * site, found by its line: the leash_go in embed_server's --grow loop. */
static int grow_index(const char *page, char *label, size_t n) {
    FILE *f = fopen(LEASH_SOURCE_DIR "/tests/progs/embed_server.c", "r");
    cr_assert(f);
    char line[512];
    int no = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        no++;
        if (strstr(line, "leash_go(leaky_worker, NULL);") && ++found == 2)
            break;
    }
    fclose(f);
    cr_assert_eq(found, 2);
    snprintf(label, n, "embed_server.c:%d", no);
    const char *sites = strstr(page, "\"sites\":[");
    cr_assert(sites, "no samples in the page");
    int idx = 0;
    for (const char *p = sites + 9; *p && *p != ']'; idx++) {
        const char *q = strchr(p + 1, '"');
        cr_assert(q);
        size_t ln = strlen(label);
        if ((size_t)(q - p - 1) >= ln && !strncmp(q - ln, label, ln) &&
            q[-(long)ln - 1] == '/')
            return idx;
        p = q + 1;
        if (*p == ',')
            p++;
    }
    return -1;
}

/* The growing site's counts over the samples, oldest first. */
static int counts(const char *page, int idx, long *out, int max) {
    char key[32];
    snprintf(key, sizeof key, "\"%d\":", idx);
    int n = 0;
    for (const char *p = strstr(page, "\"samples\":["); p && n < max;) {
        p = strstr(p, "{\"t\":");
        if (!p)
            break;
        const char *end = strstr(p, "}}");
        const char *k = strstr(p, key);
        out[n++] = k && k < end ? strtol(k + strlen(key), NULL, 10) : 0;
        p = end;
    }
    return n;
}

static char *page_when_grown(void) {
    /* A sample every 2 s: wait for 4. */
    int64_t end = dbg_ms() + 30000;
    char *r = NULL;
    while (dbg_ms() < end) {
        free(r);
        r = dbg_http_get(port, "/debug/leash/", NULL);
        cr_assert_eq(dbg_http_status(r), 200, "%.300s", r);
        if (dbg_count(r, "{\"t\":") >= 4)
            break;
        usleep(500000);
    }
    return r;
}

static void check_page(const char *page, bool dom) {
    char label[64];
    int idx = grow_index(page, label, sizeof label);
    cr_assert_geq(idx, 0, "%s not among the sampled sites: %.3000s", label, page);
    long c[400];
    int n = counts(page, idx, c, 400);
    cr_assert_geq(n, 3, "%d samples", n);
    cr_expect_gt(c[n - 1], c[0] + 5, "%s does not grow: %ld .. %ld", label, c[0],
                 c[n - 1]);
    for (int i = 1; i < n; i++)
        cr_expect_geq(c[i], c[i - 1], "sample %d: %ld < %ld", i, c[i], c[i - 1]);
    /* The charts: the growing site is a series of the spawn-site chart. */
    cr_expect(strstr(page, "<svg id=\"chart-states\""), "%.500s", page);
    const char *sites = strstr(page, "<svg id=\"chart-sites\"");
    cr_assert(sites, "%.2000s", page);
    char want[128];
    snprintf(want, sizeof want, "data-label=\"%s (app)\"", label);
    cr_expect(strstr(sites, want), "want %s", want);
    cr_expect(strstr(page, "data-label=\"waiting\""));
    /* The proven leaks, listed. */
    const char *leaked = strstr(page, "id=\"leaked\" class=\"leaked\">");
    cr_assert(leaked, "%.1000s", page);
    cr_expect_geq(atoi(strchr(leaked, '>') + 1), 3 + 5);
    const char *leaks = strstr(page, "<pre id=\"leaks\">");
    cr_expect(leaks && strstr(leaks, "goroutineleak profile: total") &&
              strstr(leaks, "leaky_worker"), "%.2000s", page);
    /* Every profile linked. */
    static const char *const hrefs[] = {
        "/debug/pprof/", "/debug/pprof/goroutine\"",
        "/debug/pprof/goroutine?debug=1", "/debug/pprof/goroutine?debug=2",
        "/debug/pprof/goroutineleak\"", "/debug/pprof/goroutineleak?debug=1",
        "/debug/pprof/goroutineleak?debug=2", "/debug/leash?format=text",
        "/debug/leash?format=json", "/metrics"};
    for (size_t i = 0; i < sizeof hrefs / sizeof *hrefs; i++) {
        char h[128];
        snprintf(h, sizeof h, "href=\"%s", hrefs[i]);
        cr_expect(strstr(page, h), "no link %s", h);
    }
    (void)dom;
}

Test(livepage, html_is_self_contained_and_grows, .fini = stop, .timeout = 90) {
    start();
    char *r = page_when_grown();
    cr_expect(strstr(r, "Content-Type: text/html; charset=utf-8"));
    const char *page = dbg_http_body(r);
    cr_expect(!strncmp(page, "<!DOCTYPE html>", 15), "%.100s", page);
    /* Nothing from elsewhere: no src=, no <link>, no url(), and "http"
     * only in the SVG namespace. */
    cr_expect(!strstr(page, "src=") && !strstr(page, "<link") &&
              !strstr(page, "url("), "%.500s", page);
    int http = dbg_count(page, "http://"), ns = dbg_count(page, "xmlns=\"http://");
    cr_expect_eq(http, ns, "a reference elsewhere: %d http:// for %d xmlns", http, ns);
    check_page(page, false);
    /* HEAD, and the pprof index links the page. */
    free(r);
    r = dbg_http_get(port, "/debug/pprof/", NULL);
    cr_expect(strstr(r, "href='/debug/leash/'"), "%.2000s", r);
    free(r);
}

Test(livepage, chromium_renders_it, .fini = stop, .timeout = 150) {
    /* The page is the same whatever compiled the server: make test's
     * clang stage leaves the browser (two launches, ~20 s) to test-fast. */
    const char *nob = getenv("LEASH_TEST_NO_BROWSER");
    if (nob && *nob && strcmp(nob, "0") != 0)
        cr_skip_test("LEASH_TEST_NO_BROWSER is set: skipping the headless "
                     "browser test");
    char *chromium = dbg_which("chromium");
    if (!chromium)
        chromium = dbg_which("chromium-browser");
    if (!chromium)
        cr_skip_test("chromium not found (Debian: chromium): skipping the "
                     "headless browser test");
    start();
    free(page_when_grown());
    char url[128], home[300], profile[320], shot[320], shotarg[340];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/leash/", port);
    snprintf(home, sizeof home, "HOME=%s", tmp);
    snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium", tmp);
    snprintf(shot, sizeof shot, "%s/live.png", tmp);
    snprintf(shotarg, sizeof shotarg, "--screenshot=%s", shot);
    const char *env[] = {home, NULL};
    const char *dump[] = {chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-dev-shm-usage", profile, "--dump-dom", url, NULL};
    char *out, *err;
    int rc = dbg_run(dump, env, 90, &out, &err);
    cr_assert_eq(rc, 0, "chromium --dump-dom: rc %d: %.2000s", rc, err);
    /* What the browser built: the same figures, in its DOM. */
    cr_expect(strstr(out, "<title>leash: testprog_embed_server"), "%.500s", out);
    check_page(out, true);
    free(out);
    free(err);
    const char *snap[] = {chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-dev-shm-usage", profile, "--window-size=900,1200",
                          shotarg, url, NULL};
    rc = dbg_run(snap, env, 90, &out, &err);
    cr_expect_eq(rc, 0, "chromium --screenshot: rc %d: %.2000s", rc, err);
    struct stat st;
    cr_expect(stat(shot, &st) == 0 && st.st_size > 10000, "no screenshot");
    free(out);
    free(err);
    free(chromium);
}
