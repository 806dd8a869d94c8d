/* SPDX-License-Identifier: MIT */
/*
 * test_cli.c — the `leash` CLI against live processes (dbg_server with
 * LEASH_AGENT=1): ps, stack, stats/vitals, leaks, profile, top (under
 * tmux, read back with capture-pane), analyze on dumps written by real Go
 * programs (go run) and by leash; and bad input to every command: bad
 * PIDs and arguments, no agent, a fake agent that speaks garbage, garbage
 * files — each with its documented exit status (0 ok, 1 usage, 2 no such
 * process/agent/file, 3 protocol or format error, 4 leaks found).
 *
 * go and tmux are skipped with a message when absent.
 *
 * LEASH_TEST_TIMEOUT 300
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <pthread.h>

#include "dbg_util.h"

#define CLI LEASH_TEST_BINDIR "/leash"

static dbg_fixture fx;

static void teardown(void) { dbg_fixture_stop(&fx); }

static void setup_dir(void) { cr_assert(dbg_fixture_dir(&fx)); }

/* "dbg_server.c:N" for the first line of tests/progs/dbg_server.c holding
 * `needle`: found by text, so that edits above it (a licence line) do not
 * break the test. */
/* The line of the nth (from 1) line of dbg_server.c containing needle,
 * as "dbg_server.c:LINE". */
static void dbg_server_site(char *buf, size_t n, const char *needle, int nth) {
    FILE *f = fopen(LEASH_SOURCE_DIR "/tests/progs/dbg_server.c", "r");
    cr_assert(f);
    char line[512];
    int no = 0, found = 0;
    while (found < nth && fgets(line, sizeof line, f)) {
        no++;
        found += strstr(line, needle) != NULL;
    }
    fclose(f);
    cr_assert(found == nth, "no \"%s\" #%d in dbg_server.c", needle, nth);
    snprintf(buf, n, "dbg_server.c:%d", no);
}

/* The coroutines "By creator" attributes to query_all, summed over the
 * lines, checking each line is one of query_all's three leash_go calls:
 * which of the three queries wins the race is up to the scheduler. */
static int query_all_creations(const char *out) {
    char site[3][64];
    for (int i = 0; i < 3; i++)
        dbg_server_site(site[i], sizeof site[i], "leash_go(query, ch, ch);", i + 1);
    int sum = 0;
    for (const char *p = out; (p = strstr(p, "  query_all  ")); p++) {
        const char *bol = p;
        while (bol > out && bol[-1] != '\n')
            bol--;
        const char *eol = strchr(p, '\n');
        int len = eol ? (int)(eol - p) : (int)strlen(p);
        bool ok = false;
        for (int i = 0; i < 3; i++) {
            size_t sl = strlen(site[i]);
            ok |= len >= (int)sl && strncmp(p + len - sl, site[i], sl) == 0;
        }
        cr_expect(ok, "query_all line outside its leash_go calls: %.*s", len, p);
        sum += atoi(bol);
    }
    return sum;
}

static void start(const char *const *args) {
    cr_assert(dbg_fixture_start(&fx, NULL, args, "LEASH_AGENT=1"),
              "dbg_server: %s", fx.srv.log);
}

/* Runs the CLI with up to 6 arguments (NULL-terminated). */
static int cli(char **out, char **err, const char *a1, const char *a2,
               const char *a3, const char *a4, const char *a5) {
    const char *argv[] = {CLI, a1, a2, a3, a4, a5, NULL};
    const char *env[] = {fx.xdg[0] ? fx.xdg : "XDG_RUNTIME_DIR=/nonexistent-leash-test",
                         NULL};
    return dbg_run(argv, env, 60, out, err);
}

static char pidbuf[32];
static const char *spid(void) {
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)fx.srv.pid);
    return pidbuf;
}

/* ------------------------------------------------------------ help, usage */

Test(cli, help_and_usage, .timeout = 60) {
    char *out, *err;
    cr_expect_eq(cli(&out, &err, "--help", NULL, NULL, NULL, NULL), 0);
    const char *cmds[] = {"ps", "stack", "stats", "vitals", "leaks", "profile",
                          "top", "analyze"};
    for (size_t i = 0; i < 8; i++)
        cr_expect(strstr(out, cmds[i]), "%s missing from --help", cmds[i]);
    free(out);
    free(err);
    for (size_t i = 0; i < 8; i++) {
        cr_expect_eq(cli(&out, &err, cmds[i], "--help", NULL, NULL, NULL), 0, "%s", cmds[i]);
        char want[64];
        snprintf(want, sizeof want, "usage: leash %s",
                 strcmp(cmds[i], "vitals") ? cmds[i] : "stats");
        cr_expect(strstr(out, want), "%s --help: %s", cmds[i], out);
        free(out);
        free(err);
        cr_expect_eq(cli(&out, &err, "help", cmds[i], NULL, NULL, NULL), 0);
        free(out);
        free(err);
    }
    cr_expect_eq(cli(&out, &err, NULL, NULL, NULL, NULL, NULL), 1);
    cr_expect(strstr(err, "usage: leash"));
    free(out);
    free(err);
    cr_expect_eq(cli(&out, &err, "frobnicate", NULL, NULL, NULL, NULL), 1);
    cr_expect(strstr(err, "no such command"), "%s", err);
    free(out);
    free(err);
    cr_expect_eq(cli(&out, &err, "help", "frobnicate", NULL, NULL, NULL), 1);
    free(out);
    free(err);
    /* The two commands main handles itself have help too. */
    const char *builtin[] = {"help", "version"};
    for (size_t i = 0; i < 2; i++) {
        cr_expect_eq(cli(&out, &err, "help", builtin[i], NULL, NULL, NULL), 0,
                     "help %s: %s", builtin[i], err);
        char want[64];
        snprintf(want, sizeof want, "usage: leash %s", builtin[i]);
        cr_expect(strstr(out, want), "help %s: %s", builtin[i], out);
        cr_expect(!strstr(err, "no such command"), "%s", err);
        free(out);
        free(err);
    }
    cr_expect_eq(cli(&out, &err, "version", NULL, NULL, NULL, NULL), 0);
    cr_expect(strstr(out, "leash 0."), "%s", out);
    free(out);
    free(err);
}

/* ------------------------------------------------------------ live process */

Test(cli, ps_lists_agents, .fini = teardown, .timeout = 60) {
    start(NULL);
    /* A stale socket (its process is gone) is skipped. */
    char stale[400];
    snprintf(stale, sizeof stale, "%s/leash/999999999.sock", fx.tmp);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa;
    cr_assert(dbg_sun(&sa, stale));
    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    close(fd);
    char *out, *err;
    cr_assert_eq(cli(&out, &err, "ps", NULL, NULL, NULL, NULL), 0, "%s", err);
    char want[128];
    snprintf(want, sizeof want, "%-8d %-8d %-20s", (int)fx.srv.pid, (int)getpid(),
             "testprog_dbg_server");
    cr_expect(strstr(out, want), "want '%s' in:\n%s", want, out);
    snprintf(want, sizeof want, " %7d\n", fx.srv.leaked);
    cr_expect(strstr(out, want), "%s", out);
    cr_expect(!strstr(out, "999999999"), "stale socket listed: %s", out);
    free(out);
    free(err);
    cr_assert_eq(cli(&out, &err, "ps", "--json", NULL, NULL, NULL), 0);
    snprintf(want, sizeof want, "{\"pid\":%d,\"ppid\":%d,\"name\":\"testprog_dbg_server\"",
             (int)fx.srv.pid, (int)getpid());
    cr_expect(strstr(out, want) && out[0] == '[', "%s", out);
    snprintf(want, sizeof want, "\"leaked\":%d", fx.srv.leaked);
    cr_expect(strstr(out, want), "%s", out);
    free(out);
    free(err);
    cr_expect_eq(cli(&out, &err, "ps", "extra", NULL, NULL, NULL), 1);
    free(out);
    free(err);
}

Test(cli, stack_stats_leaks_profile, .fini = teardown, .timeout = 120) {
    start(NULL);
    char *out, *err;
    cr_assert_eq(cli(&out, &err, "stack", spid(), NULL, NULL, NULL), 0, "%s", err);
    cr_expect(strstr(out, "goroutine 1 [") && strstr(out, "created by app in goroutine 1"),
              "%s", out);
    free(out);
    free(err);
    cr_assert_eq(cli(&out, &err, "stack", spid(), "--debug", "3", NULL), 0);
    cr_expect_eq(dbg_count(out, "LEAKED"), fx.srv.leaked, "%s", out);
    free(out);
    free(err);
    cr_assert_eq(cli(&out, &err, "stack", "--json", spid(), NULL, NULL), 0);
    cr_expect(!strncmp(out, "{\"format\":\"leash-dump/1\"", 24));
    free(out);
    free(err);
    cr_expect_eq(cli(&out, &err, "stack", spid(), "--debug", "0", NULL), 1);
    free(out);
    free(err);

    const char *names[] = {"stats", "vitals"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(cli(&out, &err, names[i], spid(), NULL, NULL, NULL), 0, "%s", err);
        const char *lines[] = {"coroutines:", "OS threads:", "workers:", "CPUs:",
                               "leaked:         7", "suspects:       1 (io_no_deadline 1)",
                               "uptime:", "RSS:", "waiting on:     chan_send 6"};
        for (size_t k = 0; k < sizeof lines / sizeof *lines; k++)
            cr_expect(strstr(out, lines[k]), "%s: '%s' missing:\n%s", names[i],
                      lines[k], out);
        free(out);
        free(err);
    }
    cr_assert_eq(cli(&out, &err, "stats", spid(), "--json", NULL, NULL), 0);
    cr_expect(strstr(out, "\"leaked\":7") && strstr(out, "\"cpus\":") &&
              strstr(out, "\"version\":\"0."), "%s", out);
    free(out);
    free(err);

    cr_expect_eq(cli(&out, &err, "leaks", spid(), NULL, NULL, NULL), 4, "%s", err);
    cr_expect(strstr(out, "leash: 7 coroutine(s) proven leaked"), "%s", out);
    cr_expect(strstr(out, "orphaned by goroutine") && strstr(out, "waiting on chan#"));
    cr_expect(strstr(out, "waits for I/O with no deadline") ||
              strstr(out, "waiting for I/O with no deadline"), "%s", out);
    free(out);
    free(err);
    cr_expect_eq(cli(&out, &err, "leaks", spid(), "--json", NULL, NULL), 4);
    cr_expect(strstr(out, "\"leaked\":7,\"suspects\":1"), "%s", out);
    free(out);
    free(err);

    char file[400];
    snprintf(file, sizeof file, "%s/goroutine.pb.gz", fx.tmp);
    cr_assert_eq(cli(&out, &err, "profile", spid(), "-o", file, NULL), 0, "%s", err);
    FILE *f = fopen(file, "rb");
    cr_assert(f);
    unsigned char magic[2] = {0};
    cr_expect_eq(fread(magic, 1, 2, f), 2);
    fclose(f);
    cr_expect(magic[0] == 0x1f && magic[1] == 0x8b);
    free(out);
    free(err);
    cr_expect_eq(cli(&out, &err, "profile", spid(), "--leak", "-o", file), 0);
    free(out);
    free(err);
    char *go = dbg_which("go");
    if (go) {
        char home[400];
        snprintf(home, sizeof home, "HOME=%s", fx.tmp);
        const char *argv[] = {go, "tool", "pprof", "-top", file, NULL};
        const char *env[] = {home, NULL};
        cr_expect_eq(dbg_run(argv, env, 60, &out, &err), 0, "%s", err);
        cr_expect(strstr(out, "of 7 total"), "%s", out);
        free(out);
        free(err);
        free(go);
    }
    cr_expect_eq(cli(&out, &err, "profile", spid(), NULL, NULL, NULL), 1);
    cr_expect(strstr(err, "-o FILE"), "%s", err);
    free(out);
    free(err);
    cr_expect_eq(cli(&out, &err, "profile", spid(), "-o", "/nonexistent/x/y", NULL), 2);
    free(out);
    free(err);

    /* leash trace: the execution trace as JSON; bad --seconds refused. */
    snprintf(file, sizeof file, "%s/trace.json", fx.tmp);
    cr_expect_eq(cli(&out, &err, "trace", spid(), "-o", file, NULL), 0, "%s",
                 err); /* 5 s, the default */
    free(out);
    free(err);
    f = fopen(file, "r");
    cr_assert(f);
    char head[64] = "";
    cr_expect(fread(head, 1, sizeof head - 1, f) > 0);
    fclose(f);
    cr_expect(strstr(head, "\"otherData\""), "%s", head);
    cr_expect_eq(cli(&out, &err, "trace", spid(), "--seconds", "61", NULL),
                 1, "%s", err);
    free(out);
    free(err);
}

/* leash profile --block / --mutex / --cpu: gzipped profiles that go tool
 * pprof reads; bad combinations and durations are usage errors. */
Test(cli, profile_block_mutex_cpu, .fini = teardown, .timeout = 120) {
    setenv("LEASH_BLOCKPROFILERATE", "1", 1); /* the server inherits them */
    setenv("LEASH_MUTEXPROFILEFRACTION", "1", 1);
    start(NULL);
    char *out, *err, file[400];
    snprintf(file, sizeof file, "%s/p.pb.gz", fx.tmp);
    const char *env[] = {fx.xdg, NULL};
    const char *kinds[] = {"--block", "--mutex", "--cpu"};
    char *go = dbg_which("go");
    for (int k = 0; k < 3; k++) {
        const char *argv[] = {CLI, "profile", spid(), kinds[k], "-o", file,
                              k == 2 ? "--seconds" : NULL, "1", NULL};
        cr_assert_eq(dbg_run(argv, env, 60, &out, &err), 0, "%s: %s",
                     kinds[k], err);
        free(out);
        free(err);
        FILE *f = fopen(file, "rb");
        cr_assert(f);
        unsigned char magic[2] = {0};
        cr_expect_eq(fread(magic, 1, 2, f), 2);
        fclose(f);
        cr_expect(magic[0] == 0x1f && magic[1] == 0x8b, "%s", kinds[k]);
        if (!go)
            continue;
        char home[400];
        snprintf(home, sizeof home, "HOME=%s", fx.tmp);
        const char *pv[] = {go, "tool", "pprof", "-raw", file, NULL};
        const char *penv[] = {home, NULL};
        cr_expect_eq(dbg_run(pv, penv, 60, &out, &err), 0, "%s", err);
        cr_expect(strstr(out, k == 2 ? "PeriodType: cpu nanoseconds"
                                     : "PeriodType: contentions count"),
                  "%s: %s", kinds[k], out);
        free(out);
        free(err);
    }
    free(go);
    static const char *const bad[][4] = {
        {"--cpu", "--seconds", "0", NULL},
        {"--cpu", "--seconds", "abc", NULL},
        {"--cpu", "--seconds", "601", NULL},
        {"--seconds", "5", NULL, NULL},
        {"--block", "--mutex", NULL, NULL},
        {"--cpu", "--leak", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *argv[] = {CLI, "profile", spid(), "-o", file, bad[i][0],
                              bad[i][1], bad[i][2], NULL};
        cr_expect_eq(dbg_run(argv, env, 30, &out, &err), 1, "%s %s: %s",
                     bad[i][0], bad[i][1], err);
        free(out);
        free(err);
    }
}

Test(cli, leaks_exit_status, .fini = teardown, .timeout = 60) {
    const char *clean[] = {"--leaks", "0", "--no-nil", "--no-io", NULL};
    start(clean);
    char *out, *err;
    cr_expect_eq(cli(&out, &err, "leaks", spid(), NULL, NULL, NULL), 0, "%s", out);
    cr_expect(strstr(out, "leash: 0 coroutine(s) proven leaked"));
    free(out);
    free(err);
    cr_expect_eq(cli(&out, &err, "leaks", spid(), "--strict", NULL, NULL), 0);
    free(out);
    free(err);
    dbg_stop(&fx.srv);
    const char *io[] = {"--leaks", "0", "--no-nil", NULL};
    start(io);
    cr_expect_eq(cli(&out, &err, "leaks", spid(), NULL, NULL, NULL), 0);
    free(out);
    free(err);
    cr_expect_eq(cli(&out, &err, "leaks", spid(), "--strict", NULL, NULL), 4);
    free(out);
    free(err);
}

/* ------------------------------------------------------------ bad input */

/* A fake agent at <dir>/<pid>.sock that answers each connection with
 * `reply` (one connection per reply). */
typedef struct {
    int lfd;
    const char *reply;
    int n;
} fake_agent;

static void *fake_main(void *p) {
    fake_agent *f = p;
    for (int i = 0; i < f->n; i++) {
        int c = accept(f->lfd, NULL, NULL);
        if (c < 0)
            break;
        char buf[256];
        if (recv(c, buf, sizeof buf, 0) > 0)
            send(c, f->reply, strlen(f->reply), MSG_NOSIGNAL);
        close(c);
    }
    return NULL;
}

Test(cli, bad_input, .fini = teardown, .timeout = 60) {
    setup_dir();
    char *out, *err;
    static const struct { const char *a[4]; int status; const char *msg; } cases[] = {
        {{"stack", NULL}, 1, "missing PID"},
        {{"stack", "abc"}, 1, "bad PID"},
        {{"stack", "0"}, 1, "bad PID"},
        {{"stack", "-5"}, 1, "unknown option"},
        {{"stack", "12x"}, 1, "bad PID"},
        {{"stack", "99999999999"}, 1, "bad PID"},
        {{"stack", "1", "2"}, 1, "unexpected argument"},
        {{"stats", "1", "--frob"}, 1, "unknown option"},
        {{"stack", "1", "--debug"}, 1, "needs a value"},
        {{"top", "1", "--sort", "x"}, 1, "--sort"},
        {{"top", "1", "--interval", "5"}, 1, "--interval"},
        {{"top", "1", "-n", "0"}, 1, "-n"},
        {{"stats", "999999999"}, 2, "no such process"},
        {{"leaks", "999999999"}, 2, "no such process"},
        {{"analyze", NULL}, 1, "missing FILE"},
        {{"analyze", "/nonexistent/dump.txt"}, 2, "cannot read"},
        {{"analyze", "-", "--crowd", "1"}, 1, "--crowd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *const *a = cases[i].a;
        int rc = cli(&out, &err, a[0], a[1], a[2], a[3], NULL);
        cr_expect_eq(rc, cases[i].status, "case %zu (%s %s): rc %d, %s", i, a[0],
                     a[1] ? a[1] : "", rc, err);
        cr_expect(strstr(err, cases[i].msg), "case %zu: want '%s' in: %s", i,
                  cases[i].msg, err);
        free(out);
        free(err);
    }
    /* A live process without an agent: this test itself. */
    char me[32];
    snprintf(me, sizeof me, "%d", (int)getpid());
    cr_expect_eq(cli(&out, &err, "stack", me, NULL, NULL, NULL), 2);
    cr_expect(strstr(err, "has no leash agent"), "%s", err);
    free(out);
    free(err);

    /* A "socket" that speaks something else: protocol error (3). */
    char dir[400], path[420];
    snprintf(dir, sizeof dir, "%s/leash", fx.tmp);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%d.sock", dir, (int)getpid());
    const char *replies[] = {"HTTP/1.1 200 OK\r\n\r\nhello", "LEASH1 ERR 5\noops\n",
                             "LEASH9 OK 3\nabc", "LEASH1 OK 100\nshort", ""};
    const char *msgs[] = {"bad reply", "agent: oops", "bad reply", "truncated",
                          "closed the connection"};
    for (int i = 0; i < 5; i++) {
        unlink(path);
        int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa;
        cr_assert(dbg_sun(&sa, path));
        cr_assert(bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0);
        listen(lfd, 4);
        fake_agent f = {lfd, replies[i], 1};
        pthread_t t;
        pthread_create(&t, NULL, fake_main, &f);
        int rc = cli(&out, &err, "stats", me, NULL, NULL, NULL);
        cr_expect_eq(rc, 3, "reply %d: rc %d: %s", i, rc, err);
        cr_expect(strstr(err, msgs[i]), "reply %d: want '%s' in %s", i, msgs[i], err);
        free(out);
        free(err);
        shutdown(lfd, SHUT_RDWR);
        pthread_join(t, NULL);
        close(lfd);
    }
    unlink(path);
}

/* ------------------------------------------------------------ top */

static char *tmux;
static char tsock[64];

static void tmux_teardown(void) {
    if (tmux) {
        const char *argv[] = {tmux, "-L", tsock, "kill-server", NULL};
        dbg_run(argv, NULL, 10, NULL, NULL);
        free(tmux);
        tmux = NULL;
    }
    teardown();
}

static char *capture(void) {
    const char *argv[] = {tmux, "-L", tsock, "capture-pane", "-p", "-t", "top", NULL};
    char *out;
    dbg_run(argv, NULL, 10, &out, NULL);
    return out;
}

static char *wait_screen(const char *want, int ms) {
    int64_t end = dbg_ms() + ms;
    char *s = NULL;
    do {
        free(s);
        s = capture();
        if (strstr(s, want))
            return s;
        usleep(100000);
    } while (dbg_ms() < end);
    return s;
}

static void keys(const char *k) {
    const char *argv[] = {tmux, "-L", tsock, "send-keys", "-t", "top", k, NULL};
    dbg_run(argv, NULL, 10, NULL, NULL);
}

Test(cli, top_under_tmux, .fini = tmux_teardown, .timeout = 90) {
    tmux = dbg_which("tmux");
    if (!tmux)
        cr_skip_test("tmux not found (Debian: tmux): skipping leash top");
    start(NULL);
    snprintf(tsock, sizeof tsock, "leash-test-%d", (int)getpid());
    char cmd[1024], done[420];
    snprintf(done, sizeof done, "%s/top.exit", fx.tmp);
    snprintf(cmd, sizeof cmd, "env %s %s top %d; echo $? > %s; sleep 30", fx.xdg, CLI,
             (int)fx.srv.pid, done);
    const char *argv[] = {tmux, "-L", tsock, "-f", "/dev/null", "new-session", "-d",
                          "-x", "120", "-y", "40", "-s", "top", cmd, NULL};
    const char *env[] = {"TMUX", "TERM=xterm-256color", NULL};
    char *out, *err;
    cr_assert_eq(dbg_run(argv, env, 20, &out, &err), 0, "tmux: %s", err);
    free(out);
    free(err);
    char want[64];
    snprintf(want, sizeof want, "leash top - pid %d", (int)fx.srv.pid);
    char *s = wait_screen(want, 15000);
    cr_assert(strstr(s, want), "screen:\n%s", s);
    cr_expect(strstr(s, "COUNT") && strstr(s, "chan send") &&
              strstr(s, "dbg_server.c:") && strstr(s, "sort: count"), "%s", s);
    cr_expect(strstr(s, "leaked 7"), "%s", s);
    free(s);
    /* Sort keys re-sort at once: by state, then the same key reverses. */
    keys("t");
    s = wait_screen("sort: state", 5000);
    cr_expect(strstr(s, "sort: state"), "%s", s);
    const char *a = strstr(s, "IO wait"), *b = strstr(s, "sleep");
    cr_expect(a && b && a < b, "not sorted by state:\n%s", s);
    free(s);
    keys("t");
    s = wait_screen("(reversed)", 5000);
    a = strstr(s, "IO wait");
    b = strstr(s, "sleep");
    cr_expect(a && b && b < a, "not reversed:\n%s", s);
    free(s);
    keys("l");
    s = wait_screen("sort: leaked", 5000);
    cr_expect(strstr(s, "sort: leaked"), "%s", s);
    free(s);
    /* Refreshes by itself: the longest wait grows. */
    keys("q");
    int64_t end = dbg_ms() + 5000;
    while (access(done, F_OK) != 0 && dbg_ms() < end)
        usleep(50000);
    usleep(100000);
    FILE *f = fopen(done, "r");
    cr_assert(f, "leash top did not quit on 'q'");
    int rc = -1;
    cr_expect_eq(fscanf(f, "%d", &rc), 1);
    fclose(f);
    cr_expect_eq(rc, 0);
    /* The terminal is restored (the alternate screen left). */
    s = capture();
    cr_expect(!strstr(s, "COUNT"), "screen after quit:\n%s", s);
    free(s);
}

Test(cli, top_plain_and_json, .fini = teardown, .timeout = 60) {
    start(NULL);
    char *out, *err;
    cr_assert_eq(cli(&out, &err, "top", spid(), "-n", "2", "--interval"), 1);
    free(out);
    free(err);
    const char *argv[] = {CLI, "top", spid(), "-n", "2", "--interval", "100", NULL};
    const char *env[] = {fx.xdg, NULL};
    cr_assert_eq(dbg_run(argv, env, 30, &out, &err), 0, "%s", err);
    cr_expect_eq(dbg_count(out, "leash top - pid"), 2, "%s", out);
    cr_expect(!strchr(out, '\033'), "escape codes without a terminal");
    free(out);
    free(err);
    cr_assert_eq(cli(&out, &err, "top", spid(), "--json", "--sort", "leaked"), 0);
    cr_expect(strstr(out, "\"groups\":[") && strstr(out, "\"state\":\"chan send\""),
              "%s", out);
    free(out);
    free(err);
    /* The process goes away: top says so and exits 2. */
    const char *argv2[] = {CLI, "top", spid(), "--interval", "100", NULL};
    pid_t victim = fx.srv.pid;
    int po[2];
    cr_assert(pipe(po) == 0);
    pid_t top = dbg_spawn(argv2, env, po[1], po[1], NULL);
    close(po[1]);
    usleep(500000);
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    fx.srv.pid = 0;
    int st = 0;
    int64_t end = dbg_ms() + 10000;
    while (waitpid(top, &st, WNOHANG) == 0 && dbg_ms() < end)
        usleep(50000);
    if (dbg_ms() >= end) {
        kill(top, SIGKILL);
        waitpid(top, &st, 0);
    }
    char *o = dbg_read_all(po[0], 1000, NULL);
    close(po[0]);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d: %s", st, o);
    cr_expect(strstr(o, "exited"), "%s", o);
    free(o);
}

/* ------------------------------------------------------------ analyze */

/* A Go program that leaks like the write-up (queryAll, a nil channel, an
 * empty select, a read with no deadline) and prints its goroutines in
 * the format asked for. */
static const char go_src[] =
    "package main\n\n"
    "import (\n\t\"net\"\n\t\"os\"\n\t\"runtime\"\n\t\"runtime/pprof\"\n\t\"time\"\n)\n\n"
    "func queryAll() int {\n\tch := make(chan int)\n"
    "\tfor i := 0; i < 3; i++ {\n\t\tgo func(i int) { ch <- i }(i)\n\t}\n"
    "\treturn <-ch\n}\n\n"
    "func main() {\n\tfor i := 0; i < 5; i++ {\n\t\tqueryAll()\n\t}\n"
    "\tvar nilch chan int\n\tgo func() { <-nilch }()\n\tgo func() { select {} }()\n"
    "\tln, _ := net.Listen(\"tcp\", \"127.0.0.1:0\")\n"
    "\tc, _ := net.Dial(\"tcp\", ln.Addr().String())\n"
    "\tgo func() { b := make([]byte, 1); c.Read(b) }()\n"
    "\tfor i := 0; i < 3; i++ {\n\t\tgo func() { time.Sleep(time.Hour) }()\n\t}\n"
    "\ttime.Sleep(200 * time.Millisecond)\n"
    "\tswitch os.Args[1] {\n"
    "\tcase \"stack\":\n\t\tbuf := make([]byte, 1<<20)\n"
    "\t\tos.Stdout.Write(buf[:runtime.Stack(buf, true)])\n"
    "\tcase \"pprof1\":\n\t\tpprof.Lookup(\"goroutine\").WriteTo(os.Stdout, 1)\n"
    "\tcase \"pprof2\":\n\t\tpprof.Lookup(\"goroutine\").WriteTo(os.Stdout, 2)\n"
    "\tcase \"panic\":\n\t\tpanic(\"boom\")\n\t}\n}\n";

static char *go;

static void go_teardown(void) {
    free(go);
    go = NULL;
    teardown();
}

/* Runs the Go program in `mode`, writes what it printed (stdout, or
 * stderr for a panic) to fx.tmp/<mode>.txt; returns that path. */
static char *go_dump(const char *mode) {
    char src[400], home[400], cache[400], gopath[400];
    snprintf(src, sizeof src, "%s/leak.go", fx.tmp);
    if (access(src, F_OK) != 0)
        dbg_write_file(src, go_src, sizeof go_src - 1);
    snprintf(home, sizeof home, "HOME=%s", fx.tmp);
    snprintf(cache, sizeof cache, "GOCACHE=%s/gocache", fx.tmp);
    snprintf(gopath, sizeof gopath, "GOPATH=%s/gopath", fx.tmp);
    const char *env[] = {home, cache, gopath, "GOFLAGS=", "GO111MODULE=auto",
                         "GOTRACEBACK=all", "GOTOOLCHAIN=local", NULL};
    const char *argv[] = {go, "run", src, mode, NULL};
    char *out, *err;
    int rc = dbg_run(argv, env, 120, &out, &err);
    bool panic = !strcmp(mode, "panic");
    cr_assert(panic ? rc != 0 : rc == 0, "go run %s: rc %d: %s", mode, rc, err);
    const char *text = panic ? err : out;
    cr_assert(strstr(text, "goroutine "), "go run %s printed: %s", mode, text);
    char *path = malloc(400);
    snprintf(path, 400, "%s/%s.txt", fx.tmp, mode);
    dbg_write_file(path, text, strlen(text));
    free(out);
    free(err);
    return path;
}

static int analyze(char **out, const char *file, const char *a1, const char *a2,
                   const char *a3) {
    char *err;
    int rc = cli(out, &err, "analyze", file, a1, a2, a3);
    cr_log_info("analyze %s: rc %d %s", file, rc, err);
    free(err);
    return rc;
}

Test(cli, analyze_go_dumps, .fini = go_teardown, .timeout = 240) {
    go = dbg_which("go");
    if (!go)
        cr_skip_test("go not found (Debian: golang-go): skipping Go dumps");
    setup_dir();
    const char *modes[] = {"stack", "pprof2", "panic"};
    for (int m = 0; m < 3; m++) {
        char *file = go_dump(modes[m]), *out;
        cr_expect_eq(analyze(&out, file, NULL, NULL, NULL), 4, "%s:\n%s", modes[m], out);
        cr_expect(strstr(out, "goroutine stacks (debug=2)"), "%s", out);
        cr_expect(strstr(out, "LEAK     1 x [chan receive (nil chan)] in main.main.func1"),
                  "%s: %s", modes[m], out);
        cr_expect(strstr(out, "LEAK     1 x [select (no cases)] in main.main.func2"),
                  "%s", out);
        cr_expect(strstr(out, "SUSPECT  10 x [chan send] in main.queryAll.func1") &&
                  strstr(out, "10 parked at one site"), "%s", out);
        cr_expect(strstr(out, "SUSPECT  1 x [IO wait]"), "%s", out);
        cr_expect(strstr(out, "      10  main.queryAll  "), "%s", out);
        cr_expect(strstr(out, "3 goroutine(s) [sleep]"), "%s", out);
        free(out);
        if (m == 0) {
            cr_expect_eq(analyze(&out, file, "--json", NULL, NULL), 4);
            cr_expect(strstr(out, "\"kind\":\"debug2\"") && strstr(out, "\"leaks\":2") &&
                      strstr(out, "\"suspects\":11"), "%s", out);
            free(out);
            /* Thresholds: no crowd at 20; long waits from Go's minutes. */
            cr_expect_eq(analyze(&out, file, "--crowd", "20", NULL), 4);
            cr_expect(!strstr(out, "parked at one site"), "%s", out);
            free(out);
            FILE *f = fopen(file, "r");
            char *text = dbg_read_all(fileno(f), 1000, NULL);
            fclose(f);
            char *mod = malloc(strlen(text) * 2 + 1), *o = mod;
            for (const char *p = text; *p;) {
                if (!strncmp(p, "[chan send]:", 12)) {
                    o += sprintf(o, "[chan send, 7 minutes]:");
                    p += 12;
                } else {
                    *o++ = *p++;
                }
            }
            *o = 0;
            char mfile[400];
            snprintf(mfile, sizeof mfile, "%s/minutes.txt", fx.tmp);
            dbg_write_file(mfile, mod, strlen(mod));
            cr_expect_eq(analyze(&out, mfile, "--crowd", "20", "--top"), 1);
            free(out);
            cr_expect_eq(analyze(&out, mfile, "--crowd", "20", NULL), 4);
            cr_expect(strstr(out, "parked for 7 minute(s) or more") &&
                      strstr(out, "[chan send, up to 7.0 minutes]"), "%s", out);
            free(out);
            free(mod);
            free(text);
            /* From standard input. */
            const char *argv[] = {CLI, "analyze", "-", NULL};
            cr_expect_eq(dbg_run_in(argv, NULL, 30, &out, NULL, file), 4);
            cr_expect(strstr(out, "(stdin)") && strstr(out, "main.queryAll"), "%s", out);
            free(out);
        }
        free(file);
    }
    char *file = go_dump("pprof1"), *out;
    cr_expect_eq(analyze(&out, file, NULL, NULL, NULL), 0, "%s", out);
    cr_expect(strstr(out, "goroutine profile (debug=1)"), "%s", out);
    cr_expect(strstr(out, "10 goroutine(s) [unknown]") && strstr(out, "main.queryAll.func1"),
              "%s", out);
    free(out);
    free(file);
}

Test(cli, analyze_leash_dumps, .fini = teardown, .timeout = 60) {
    start(NULL);
    char *out, *err, file[400];
    const char *dbg[] = {"2", "3", "1"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(cli(&out, &err, "stack", spid(), "--debug", dbg[i], NULL), 0);
        snprintf(file, sizeof file, "%s/leash%s.txt", fx.tmp, dbg[i]);
        dbg_write_file(file, out, strlen(out));
        free(out);
        free(err);
        int rc = analyze(&out, file, NULL, NULL, NULL);
        if (i == 0) {
            cr_expect_eq(rc, 4);
            cr_expect(strstr(out, "LEAK     1 x [chan receive (nil chan)] in nil_receiver"),
                      "%s", out);
            cr_expect(strstr(out, "6 goroutine(s) [chan send]"), "%s", out);
        } else if (i == 1) {
            cr_expect_eq(rc, 4);
            cr_expect(strstr(out, "leash dump (debug=3)"), "%s", out);
            cr_expect(strstr(out, "LEAK     6 x [chan send] in leash_send_n"), "%s", out);
            cr_expect(strstr(out, "orphaned"), "%s", out);
            cr_expect(strstr(out, "SUSPECT  1 x [IO wait] in leash_read") &&
                      strstr(out, "no deadline"), "%s", out);
            /* query_all's leash_go lines, whether or not the compiler
             * inlined query_all into app (dumps name inlined functions) */
            cr_expect_eq(query_all_creations(out), 6, "%s", out);
        } else {
            cr_expect_eq(rc, 0);
            cr_expect(strstr(out, "goroutine profile (debug=1)"), "%s", out);
        }
        free(out);
    }
}

Test(cli, analyze_garbage, .fini = teardown, .timeout = 30) {
    setup_dir();
    static const struct { const char *name, *data; size_t n; const char *msg; } f[] = {
        {"text", "hello world\nthis is not a dump\n", 32, "not a goroutine dump"},
        {"empty", "", 0, "not a goroutine dump"},
        {"binary", "\x7f" "ELF\x02\x01\x01\0\0\0goroutine 1 [x]:\n", 28, "binary"},
        {"gzip", "\x1f\x8b\x08\0\0\0\0\0", 8, "gzipped"},
        {"halfhead", "goroutine 1 [running\nmain.main()\n", 33, "not a goroutine dump"},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s", fx.tmp, f[i].name);
        dbg_write_file(path, f[i].data, f[i].n);
        char *out, *err;
        int rc = cli(&out, &err, "analyze", path, NULL, NULL, NULL);
        cr_expect_eq(rc, 3, "%s: rc %d: %s", f[i].name, rc, err);
        cr_expect(strstr(err, f[i].msg), "%s: %s", f[i].name, err);
        free(out);
        free(err);
    }
    /* A directory is a fleet of dumps (tests/test_fleet.c): here none is
     * one (3); sources that cannot be read at all (2). */
    char *out, *err;
    cr_expect_eq(cli(&out, &err, "analyze", fx.tmp, NULL, NULL, NULL), 3, "%s", err);
    cr_expect(strstr(err, "no goroutine dump among the sources"), "%s", err);
    free(out);
    free(err);
    cr_expect_eq(cli(&out, &err, "analyze", "a", "b", NULL, NULL), 2);
    free(out);
    free(err);
}

/* Another user's process: "permission denied", not "has no leash agent"
 * (its socket is in that user's directory, which only root searches).
 * As root, the CLI runs as nobody against this test's own process; as
 * another user, against pid 1 when root owns it. */
Test(cli, other_users_process, .fini = teardown, .timeout = 60) {
    setup_dir();
    char *out, *err, me[32];
    int rc;
    if (geteuid() == 0) {
        if (access("/usr/bin/setpriv", X_OK) != 0)
            cr_skip_test("no setpriv to drop root");
        snprintf(me, sizeof me, "%d", (int)getpid());
        const char *argv[] = {"/usr/bin/setpriv", "--reuid=65534",
                              "--regid=65534", "--clear-groups", CLI,
                              "stack", me, NULL};
        const char *env[] = {"XDG_RUNTIME_DIR=/nonexistent-leash-test", NULL};
        rc = dbg_run(argv, env, 60, &out, &err);
        if (strstr(err, "setpriv:") || strstr(err, "ermission denied") == NULL)
            cr_log_info("setpriv run: rc %d, %s", rc, err);
    } else {
        struct stat st;
        if (stat("/proc/1", &st) != 0 || st.st_uid == geteuid())
            cr_skip_test("no process of another user to try");
        rc = cli(&out, &err, "stack", "1", NULL, NULL, NULL);
    }
    cr_expect_eq(rc, 2, "rc %d: %s", rc, err);
    cr_expect(strstr(err, "permission denied"), "%s", err);
    cr_expect(!strstr(err, "has no leash agent"), "%s", err);
    free(out);
    free(err);
}
