/* SPDX-License-Identifier: MIT */
/*
 * test_fleet.c — `leash analyze` over many dumps (issue 16, item 6):
 * three leaky processes (tests/progs/dbg_server.c, each leaking in
 * query() at a different rate, one with a bigger but local pile-up) read
 * over HTTP, from files and from a directory; their leaky site must rank
 * first, by the share of instances affected (LeakProf), ahead of a site
 * with more goroutines on one instance. Bad sources (refused, silent,
 * malformed URLs, garbage files) are reported and skipped, never hang.
 *
 * LEASH_TEST_TIMEOUT 120
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include "dbg_util.h"

#define CLI LEASH_TEST_BINDIR "/leash"

static dbg_proc srv[3];
static char *tmp;
static char query_site[64]; /* "dbg_server.c:N" of query's send */

static void teardown(void) {
    for (int i = 0; i < 3; i++)
        dbg_stop(&srv[i]);
    dbg_rmrf(tmp);
    free(tmp);
    tmp = NULL;
}

/* "dbg_server.c:N" of the first line holding needle (found by text). */
static void site_of_line(char *buf, size_t n, const char *needle) {
    FILE *f = fopen(LEASH_SOURCE_DIR "/tests/progs/dbg_server.c", "r");
    cr_assert(f);
    char line[512];
    int no = 0, found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        no++;
        found = strstr(line, needle) != NULL;
    }
    fclose(f);
    cr_assert(found, "no \"%s\" in dbg_server.c", needle);
    snprintf(buf, n, "dbg_server.c:%d", no);
}

/* Three instances: 2*6, 2*8 and 2*10 proven leaks in query(); the second
 * also parks 60 coroutines at one site (more than the leak's total, on
 * one instance only). queryAll's three leash_go lines share the leaks
 * (which query wins varies), so a spawn site may be below the threshold
 * and leak-free on an instance: the spawn-site ranking is checked by
 * function only. */
static void start3(void) {
    static const char *const args[3][8] = {
        {"--leaks", "6", "--no-io", "--no-nil", NULL},
        {"--leaks", "8", "--crowd", "60", "--no-io", "--no-nil", NULL},
        {"--leaks", "10", "--no-io", "--no-nil", NULL},
    };
    for (int i = 0; i < 3; i++)
        cr_assert(dbg_start(&srv[i], args[i], NULL) && srv[i].port > 0,
                  "dbg_server %d: %s", i, srv[i].log);
    site_of_line(query_site, sizeof query_site, "leash_send(ch, &v)");
    tmp = dbg_tmpdir();
    cr_assert(tmp);
}

static int cli(char **out, char **err, const char *const *args) {
    const char *argv[16] = {CLI, "analyze"};
    int n = 2;
    for (; args[n - 2] && n < 15; n++)
        argv[n] = args[n - 2];
    argv[n] = NULL;
    return dbg_run(argv, NULL, 60, out, err);
}

/* The JSON object of rank 1 in the array named key, up to its end. */
static char *rank1(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":[", key);
    const char *a = strstr(json, pat);
    cr_assert(a, "no %s: %s", key, json);
    const char *r = strstr(a, "{\"rank\":1,");
    cr_assert(r, "no rank 1 in %s: %s", key, json);
    const char *e = strstr(r, "\n{\"rank\":2,");
    size_t n = e ? (size_t)(e - r) : strlen(r);
    return strndup(r, n);
}

static void check_ranking(const char *out) {
    cr_expect(strstr(out, "{\"format\":\"leash-analyze-fleet/1\""), "%s", out);
    char *b = rank1(out, "blocked_sites");
    cr_expect(strstr(b, "\"state\":\"chan send\",\"func\":\"query\""), "%s", b);
    cr_expect(strstr(b, query_site), "want %s: %s", query_site, b);
    cr_expect(strstr(b, "\"instances_affected\":3,\"share\":1.0000,\"total\":48,"
                        "\"max\":20"), "%s", b);
    cr_expect(strstr(b, "\"per_instance\":[12,16,20]"), "%s", b);
    cr_expect(strstr(b, "\"spawned_by\":[{\"func\":\"query_all\""), "%s", b);
    free(b);
    char *s = rank1(out, "spawn_sites");
    cr_expect(strstr(s, "\"func\":\"query_all\""), "%s", s);
    free(s);
    /* The pile-up: more goroutines, one instance of three. */
    const char *crowd = strstr(out, "\"func\":\"crowd_member\"");
    cr_expect(crowd && crowd > strstr(out, "\"func\":\"query\""), "%s", out);
    cr_expect(crowd && strstr(crowd, "\"instances_affected\":1,\"share\":0.3333,"
                                     "\"total\":60"), "%s", out);
}

Test(fleet, endpoints_rank_the_leaky_site_first, .fini = teardown, .timeout = 90) {
    start3();
    char u[3][64];
    for (int i = 0; i < 3; i++)
        snprintf(u[i], sizeof u[i], "http://127.0.0.1:%d", srv[i].port);
    char *out, *err;
    const char *json[] = {u[0], u[1], u[2], "--json", NULL};
    int rc = cli(&out, &err, json);
    cr_expect_eq(rc, 4, "rc %d: %s\n%s", rc, out, err);
    check_ranking(out);
    cr_expect(strstr(out, "\"kind\":\"leash3\""), "leash's dump: %s", out);
    free(out);
    free(err);

    /* Text: the same first line; a refused endpoint and a missing file
     * are reported and skipped. */
    const char *text[] = {u[0], u[1], "http://127.0.0.1:1", u[2],
                          "/nonexistent/dump", NULL};
    rc = cli(&out, &err, text);
    cr_expect_eq(rc, 4, "rc %d: %s\n%s", rc, out, err);
    cr_expect(strstr(out, "leash analyze: 3 instance(s), 2 source(s) skipped"),
              "%s", out);
    const char *first = strstr(out, "\n     1  3/3  ");
    cr_expect(first && strstr(first, "[chan send] query (") &&
              strstr(first, query_site) < strchr(first + 1, '\n'), "%s", out);
    cr_expect(strstr(err, "http://127.0.0.1:1: cannot connect"), "%s", err);
    cr_expect(strstr(err, "/nonexistent/dump: cannot read"), "%s", err);
    free(out);
    free(err);

    /* A path on the URL is fetched as it is: Go's debug=2 stacks. */
    char p0[128];
    snprintf(p0, sizeof p0, "%s/debug/pprof/goroutine?debug=2", u[0]);
    const char *paths[] = {p0, u[1], u[2], "--json", NULL};
    rc = cli(&out, &err, paths);
    cr_expect_eq(rc, 4, "%s", err);
    cr_expect(strstr(out, "\"kind\":\"debug2\""), "%s", out);
    check_ranking(out);
    free(out);
    free(err);
}

Test(fleet, files_and_directories, .fini = teardown, .timeout = 90) {
    start3();
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/dumps", tmp);
    cr_assert(mkdir(dir, 0700) == 0);
    /* Go's debug=2 text, leash's debug=3 text and Go's debug=1 profile. */
    static const char *const routes[3] = {"/debug/pprof/goroutine?debug=2",
                                          "/debug/leash",
                                          "/debug/pprof/goroutine?debug=1"};
    for (int i = 0; i < 3; i++) {
        char *r = dbg_http_get(srv[i].port, routes[i], NULL);
        cr_assert_eq(dbg_http_status(r), 200, "%.200s", r);
        snprintf(path, sizeof path, "%s/instance-%d.txt", dir, i);
        dbg_write_file(path, dbg_http_body(r), strlen(dbg_http_body(r)));
        free(r);
    }
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    dbg_write_file(path, "not a dump\n", 11);
    snprintf(path, sizeof path, "%s/.hidden", dir);
    dbg_write_file(path, "ignored\n", 8);
    snprintf(path, sizeof path, "%s/profile.pb.gz", dir);
    dbg_write_file(path, "\x1f\x8b\x08\0\0\0\0\0", 8);
    char *out, *err;
    const char *args[] = {dir, "--json", NULL};
    int rc = cli(&out, &err, args);
    cr_expect_eq(rc, 4, "rc %d: %s\n%s", rc, out, err);
    /* debug=1 has no states: its stacks count as waits at their site. */
    cr_expect(strstr(out, "\"kind\":\"debug1\"") && strstr(out, "\"kind\":\"leash3\""),
              "%s", out);
    char *b = rank1(out, "blocked_sites");
    cr_expect(strstr(b, "\"func\":\"query\"") && strstr(b, query_site), "%s", b);
    cr_expect(strstr(b, "\"instances_affected\":3"), "%s", b);
    free(b);
    cr_expect(strstr(out, "notes.txt\",\"error\":\"not a goroutine dump\""), "%s", out);
    cr_expect(strstr(out, "profile.pb.gz\",\"error\":\"a gzipped"), "%s", out);
    cr_expect(!strstr(out, ".hidden"), "%s", out);
    free(out);
    free(err);

    /* Files named one by one, and a directory with nothing to read. */
    char f0[500], f2[500], empty[400];
    snprintf(f0, sizeof f0, "%s/instance-0.txt", dir);
    snprintf(f2, sizeof f2, "%s/instance-2.txt", dir);
    snprintf(empty, sizeof empty, "%s/empty", tmp);
    cr_assert(mkdir(empty, 0700) == 0);
    const char *files[] = {f0, f2, empty, NULL};
    rc = cli(&out, &err, files);
    cr_expect_eq(rc, 4, "%s", err);
    cr_expect(strstr(out, "2 instance(s), 1 source(s) skipped"), "%s", out);
    cr_expect(strstr(err, "a directory with no files"), "%s", err);
    free(out);
    free(err);
}

Test(fleet, bad_sources, .timeout = 60) {
    /* A listener that never answers: the timeout, not a hang. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert(bind(l, (struct sockaddr *)&a, al) == 0 && listen(l, 8) == 0 &&
              getsockname(l, (struct sockaddr *)&a, &al) == 0);
    char silent[64];
    snprintf(silent, sizeof silent, "http://127.0.0.1:%d", ntohs(a.sin_port));
    static const struct { const char *a[6]; int rc; const char *msg; } cases[] = {
        {{"http://127.0.0.1:1", "/nonexistent", NULL}, 2, "no goroutine dump"},
        {{"https://127.0.0.1:1", "http://[::1", NULL}, 2, "https is not supported"},
        {{"http://127.0.0.1:99999", "http://", NULL}, 2, "malformed URL"},
        {{"http://u@127.0.0.1:1/", "http://127.0.0.1:1x", NULL}, 2, "malformed URL"},
        {{"http://127.0.0.1:0", "http://[::1]x", NULL}, 2, "malformed URL"},
        {{"-", "-", NULL}, 1, "more than once"},
        {{"a", "b", "--timeout", "0", NULL}, 1, "--timeout"},
        {{"a", "b", "--crowd", "1", NULL}, 1, "--crowd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out, *err;
        int rc = cli(&out, &err, cases[i].a);
        cr_expect_eq(rc, cases[i].rc, "case %zu: rc %d: %s", i, rc, err);
        cr_expect(strstr(err, cases[i].msg), "case %zu: %s", i, err);
        free(out);
        free(err);
    }
    char *out, *err;
    const char *slow[] = {silent, silent, "--timeout", "300", NULL};
    int64_t t0 = dbg_ms();
    int rc = cli(&out, &err, slow);
    cr_expect_eq(rc, 2, "%s", err);
    cr_expect(strstr(err, "timed out"), "%s", err);
    cr_expect_lt(dbg_ms() - t0, 10000);
    free(out);
    free(err);
    close(l);
}
