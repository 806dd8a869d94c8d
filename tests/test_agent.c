/* SPDX-License-Identifier: MIT */
/*
 * test_agent.c — the agent (leash_agent_start, LEASH_AGENT=1): where its
 * socket lives and with which permissions, removal at exit, every command
 * of the protocol (src/diag/proto.h) over a raw Unix socket, garbage
 * input, several clients at once, peer credentials, and start/stop in
 * this process. The live process is tests/progs/dbg_server.c.
 *
 * LEASH_TEST_TIMEOUT 180
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <pthread.h>
#include <pwd.h>

#include "dbg_util.h"
#include "leash.h"

static dbg_fixture fx;

static void teardown(void) { dbg_fixture_stop(&fx); }

/* dbg_server with its agent, XDG_RUNTIME_DIR in a fresh temporary dir. */
static void start(const char *const *extra_args) {
    cr_assert(dbg_fixture_start(&fx, "--agent", extra_args, NULL),
              "dbg_server: %s", fx.srv.log);
}

/* One request on fd: the reply's status ("OK"/"ERR") and body. */
static char *call(int fd, const char *req, bool *ok) {
    cr_assert(dbg_send(fd, req, strlen(req)));
    char head[64];
    size_t hn = 0;
    int64_t end = dbg_ms() + 15000;
    while (hn < sizeof head - 1 && dbg_ms() < end) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        if (recv(fd, head + hn, 1, 0) != 1)
            break;
        if (head[hn++] == '\n')
            break;
    }
    head[hn] = 0;
    long long len = -1;
    char st[8] = "";
    cr_assert(sscanf(head, "LEASH1 %7s %lld\n", st, &len) == 2,
              "bad reply head to %s: '%s'", req, head);
    *ok = !strcmp(st, "OK");
    char *body = malloc((size_t)len + 1);
    size_t got = 0;
    while (got < (size_t)len && dbg_ms() < end) {
        ssize_t r = recv(fd, body + got, (size_t)len - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    cr_assert_eq(got, (size_t)len, "short body for %s", req);
    body[len] = 0;
    return body;
}

static char *call_ok(int fd, const char *req) {
    bool ok;
    char *b = call(fd, req, &ok);
    cr_assert(ok, "%s -> ERR %s", req, b);
    return b;
}

static char *call_err(int fd, const char *req) {
    bool ok;
    char *b = call(fd, req, &ok);
    cr_assert(!ok, "%s -> OK, want ERR", req);
    return b;
}

/* ------------------------------------------------------------ the socket */

Test(agent, socket_place_and_modes, .fini = teardown, .timeout = 30) {
    const char *args[] = {"--lifetime", "2", NULL};
    start(args);
    char dir[400], want[420];
    snprintf(dir, sizeof dir, "%s/leash", fx.tmp);
    snprintf(want, sizeof want, "%s/%d.sock", dir, (int)fx.srv.pid);
    cr_assert_str_eq(fx.srv.agent, want);
    struct stat st;
    cr_assert(lstat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    cr_expect_eq(st.st_mode & 0777, 0700, "dir mode %o", st.st_mode & 0777);
    cr_assert(lstat(want, &st) == 0 && S_ISSOCK(st.st_mode));
    cr_expect_eq(st.st_mode & 0777, 0600, "socket mode %o", st.st_mode & 0777);
    cr_expect_eq(st.st_uid, geteuid());
    /* Removed when the process exits. */
    cr_assert_eq(dbg_wait_exit(&fx.srv, 10000), 0);
    cr_expect(access(want, F_OK) != 0, "socket left behind after exit");
}

Test(agent, fallback_dir_without_xdg, .fini = teardown, .timeout = 30) {
    for (int variant = 0; variant < 2; variant++) {
        const char *args[] = {"--no-http", "--agent", "--lifetime", "1", NULL};
        const char *env[] = {variant ? "XDG_RUNTIME_DIR=relative/dir"
                                     : "XDG_RUNTIME_DIR", NULL};
        cr_assert(dbg_start(&fx.srv, args, env), "%s", fx.srv.log);
        char want[128];
        snprintf(want, sizeof want, "/tmp/leash-%u/%d.sock", (unsigned)geteuid(),
                 (int)fx.srv.pid);
        cr_expect_str_eq(fx.srv.agent, want);
        struct stat st;
        cr_expect(stat(want, &st) == 0 && (st.st_mode & 0777) == 0600);
        cr_assert_eq(dbg_wait_exit(&fx.srv, 10000), 0);
        cr_expect(access(want, F_OK) != 0);
    }
}

Test(agent, refuses_unsafe_dir, .fini = teardown, .timeout = 30) {
    cr_assert(dbg_fixture_dir(&fx));
    char dir[400];
    snprintf(dir, sizeof dir, "%s/leash", fx.tmp);
    cr_assert(mkdir(dir, 0755) == 0);
    chmod(dir, 0755);
    const char *argv[] = {LEASH_TEST_BINDIR "/testprog_dbg_server", "--no-http",
                          "--agent", "--lifetime", "1", NULL};
    const char *env[] = {fx.xdg, NULL};
    char *out;
    int rc = dbg_run(argv, env, 20, &out, NULL);
    cr_expect_eq(rc, 1, "%s", out);
    char want[32];
    snprintf(want, sizeof want, "agent-error=%d", -EPERM);
    cr_expect(strstr(out, want), "%s", out);
    free(out);
    /* A symlink in its place is refused too. */
    rmdir(dir);
    cr_assert(symlink("/tmp", dir) == 0);
    rc = dbg_run(argv, env, 20, &out, NULL);
    cr_expect_eq(rc, 1, "%s", out);
    free(out);
}

/* ------------------------------------------------------------ commands */

Test(agent, commands, .fini = teardown, .timeout = 60) {
    start(NULL);
    int fd = dbg_unix(fx.srv.agent);
    cr_assert(fd >= 0);
    char *b = call_ok(fd, "LEASH1 ps-info\n");
    char want[64];
    snprintf(want, sizeof want, "pid %d\n", (int)fx.srv.pid);
    cr_expect(strstr(b, want), "%s", b);
    snprintf(want, sizeof want, "leaked %d\n", fx.srv.leaked);
    cr_expect(strstr(b, want), "%s", b);
    cr_expect(strstr(b, "name testprog_dbg_server\n"), "%s", b);
    snprintf(want, sizeof want, "ppid %d\n", (int)getpid());
    cr_expect(strstr(b, want), "%s", b);
    free(b);
    const char *keys[] = {"coroutines ", "os_threads ", "workers ", "cpus ",
                          "running ", "runnable ", "waiting ", "suspects 1\n",
                          "uptime_s ", "rss_bytes ", "orphans_total 3\n",
                          "wait.chan_send 6\n", "suspect.io_no_deadline 1\n",
                          "objects.channel "};
    for (int v = 0; v < 2; v++) {
        b = call_ok(fd, v ? "LEASH1 vitals\n" : "LEASH1 stats\r\n");
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            cr_expect(strstr(b, keys[i]), "'%s' missing: %s", keys[i], b);
        free(b);
    }
    b = call_ok(fd, "LEASH1 stack\n");
    cr_expect(strstr(b, "goroutine 1 [") && strstr(b, "created by"), "%s", b);
    free(b);
    b = call_ok(fd, "LEASH1 stack 1\n");
    cr_expect(strstr(b, "goroutine profile: total"), "%s", b);
    free(b);
    b = call_ok(fd, "LEASH1 dump\n");
    cr_expect_eq(dbg_count(b, "LEAKED"), fx.srv.leaked, "%s", b);
    free(b);
    b = call_ok(fd, "LEASH1 stack 3\n");
    cr_expect(strstr(b, "LEAKED"));
    free(b);
    b = call_ok(fd, "LEASH1 json\n");
    cr_expect(!strncmp(b, "{\"format\":\"leash-dump/1\"", 24), "%.80s", b);
    free(b);
    b = call_ok(fd, "LEASH1 leaks\n");
    snprintf(want, sizeof want, "leash: %d coroutine(s) proven leaked", fx.srv.leaked);
    cr_expect(strstr(b, want), "%s", b);
    cr_expect(strstr(b, "1 suspect(s)") && strstr(b, "io_no_deadline"), "%s", b);
    cr_expect(strstr(b, "waiting on chan#") && strstr(b, "orphaned by"), "%s", b);
    free(b);
    b = call_ok(fd, "LEASH1 leaks json\n");
    snprintf(want, sizeof want, "\"leaked\":%d,\"suspects\":1", fx.srv.leaked);
    cr_expect(strstr(b, "{\"format\":\"leash-leaks/1\"") && strstr(b, want), "%s", b);
    free(b);
    for (int leak = 0; leak < 2; leak++) {
        b = call_ok(fd, leak ? "LEASH1 profile leak\n" : "LEASH1 profile\n");
        cr_expect((unsigned char)b[0] == 0x1f && (unsigned char)b[1] == 0x8b);
        free(b);
    }
    b = call_ok(fd, "LEASH1 top\n");
    cr_expect(!strncmp(b, "site\tfunc\tstate\tcount\tleaked\tsuspects\tmax_wait_ms\n", 50));
    /* Which query wins each round depends on timing under load, so the
     * losers' sites vary: count the leaked senders over every site. */
    int senders = 0, leaked_senders = 0;
    for (const char *p = b; (p = strstr(p, "\tchan send\t")); p++) {
        int c = 0, l = 0;
        if (sscanf(p, "\tchan send\t%d\t%d\t", &c, &l) == 2) {
            senders += c;
            leaked_senders += l;
        }
    }
    cr_expect(senders == 6 && leaked_senders == 6,
              "want 6 leaked senders over the query sites:\n%s", b);
    cr_expect(strstr(b, "\tchan receive (nil chan)\t1\t1\t0\t"), "%s", b);
    free(b);
    b = call_ok(fd, "LEASH1 version\n");
    cr_expect(strstr(b, "protocol 1"));
    free(b);
    close(fd);
}

Test(agent, garbage_input, .fini = teardown, .timeout = 60) {
    start(NULL);
    int fd = dbg_unix(fx.srv.agent);
    cr_assert(fd >= 0);
    static const struct { const char *req, *msg; } bad[] = {
        {"hello\n", "malformed"},
        {"\n", "malformed"},
        {"LEASH1\n", "malformed"},
        {"LEASH1 \n", "malformed"},
        {"LEASH1  stack\n", "malformed"},
        {"LEASH2 ps-info\n", "version"},
        {"LEASH10 ps-info\n", "version"},
        {"LEASH1 nope\n", "unknown command"},
        {"LEASH1 PS-INFO\n", "unknown command"},
        {"LEASH1 stack 0\n", "bad argument"},
        {"LEASH1 stack 22\n", "bad argument"},
        {"LEASH1 ps-info now\n", "bad argument"},
        {"LEASH1 leaks xml\n", "bad argument"},
        {"LEASH1 stack a b\n", "bad argument"},
        {"LEASH1 st\x01ck\n", "malformed"},
        {"GET / HTTP/1.1\n", "malformed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *b = call_err(fd, bad[i].req);
        cr_expect(strstr(b, bad[i].msg), "%s -> %s", bad[i].req, b);
        free(b);
    }
    /* Still usable on the same connection. */
    free(call_ok(fd, "LEASH1 version\n"));
    /* NUL bytes, then a line too long: ERR and the connection closes. */
    char nul[] = "LEASH1 \0\0\0\n";
    cr_assert(dbg_send(fd, nul, sizeof nul - 1));
    bool ok;
    free(call(fd, "", &ok));
    cr_expect(!ok);
    char big[600];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = 0;
    char *b = call_err(fd, big);
    cr_expect(strstr(b, "too long"), "%s", b);
    free(b);
    /* Closed: EOF, or a reset since it left our excess input unread. */
    char c;
    cr_expect_leq(recv(fd, &c, 1, 0), 0, "connection not closed");
    close(fd);
    /* A client that connects and leaves, or sends half a line and leaves. */
    for (int i = 0; i < 10; i++) {
        fd = dbg_unix(fx.srv.agent);
        cr_assert(fd >= 0);
        if (i % 2)
            dbg_send(fd, "LEASH1 sta", 10);
        close(fd);
    }
    fd = dbg_unix(fx.srv.agent);
    free(call_ok(fd, "LEASH1 ps-info\n"));
    close(fd);
}

static const char *agent_path;

static void *client(void *arg) {
    (void)arg;
    int ok = 0;
    for (int i = 0; i < 5; i++) {
        int fd = dbg_unix(agent_path);
        if (fd < 0)
            continue;
        const char *reqs[] = {"LEASH1 stack\n", "LEASH1 stats\n", "LEASH1 top\n"};
        for (int k = 0; k < 3; k++) {
            send(fd, reqs[k], strlen(reqs[k]), MSG_NOSIGNAL);
            size_t n;
            /* read the head, then the body by its length */
            char head[64];
            size_t hn = 0;
            while (hn < 63 && recv(fd, head + hn, 1, 0) == 1 && head[hn++] != '\n')
                ;
            head[hn] = 0;
            long long len = -1;
            if (sscanf(head, "LEASH1 OK %lld", &len) != 1)
                break;
            char *body = malloc((size_t)len + 1);
            for (n = 0; n < (size_t)len;) {
                ssize_t r = recv(fd, body + n, (size_t)len - n, 0);
                if (r <= 0)
                    break;
                n += (size_t)r;
            }
            ok += n == (size_t)len;
            free(body);
        }
        close(fd);
    }
    return (void *)(intptr_t)ok;
}

Test(agent, several_clients, .fini = teardown, .timeout = 90) {
    start(NULL);
    agent_path = fx.srv.agent;
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, client, NULL);
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (int)(intptr_t)r;
    }
    cr_expect_eq(ok, 8 * 5 * 3);
}

/* A client of another uid is refused, even when the modes would let it
 * connect (the check is on the peer's credentials). */
Test(agent, peer_credentials, .fini = teardown, .timeout = 30) {
    if (geteuid() != 0)
        cr_skip_test("needs root to connect as another user");
    start(NULL);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/leash", fx.tmp);
    chmod(fx.tmp, 0711);
    chmod(dir, 0711);
    chmod(fx.srv.agent, 0666);
    int sv[2];
    cr_assert(pipe(sv) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        struct passwd *pw = getpwnam("nobody");
        uid_t uid = pw ? pw->pw_uid : 65534;
        if (setgid(uid) < 0 || setuid(uid) < 0)
            _exit(2);
        int fd = dbg_unix(fx.srv.agent);
        if (fd < 0)
            _exit(3);
        send(fd, "LEASH1 stack\n", 13, MSG_NOSIGNAL);
        size_t n;
        char *r = dbg_read_all(fd, 5000, &n);
        if (write(sv[1], r, n) < 0)
            _exit(4);
        _exit(0);
    }
    close(sv[1]);
    char buf[512] = "";
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(sv[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = 0;
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    cr_expect(!strncmp(buf, "LEASH1 ERR", 10) && strstr(buf, "permission denied"),
              "got: %s", buf);
    cr_expect(!strstr(buf, "goroutine"), "a stranger got a dump: %s", buf);
    /* The owner still gets in. */
    int fd = dbg_unix(fx.srv.agent);
    free(call_ok(fd, "LEASH1 version\n"));
    close(fd);
}

/* ------------------------------------------------------------ in process */

Test(agent, start_stop_in_process, .fini = teardown, .timeout = 30) {
    fx.tmp = dbg_tmpdir();
    setenv("XDG_RUNTIME_DIR", fx.tmp, 1);
    char path[256];
    cr_expect_eq(leash_agent_path(path, sizeof path), LEASH_EINVAL);
    cr_assert_eq(leash_agent_start(), 0);
    cr_assert_eq(leash_agent_start(), 0); /* idempotent */
    int n = leash_agent_path(path, sizeof path);
    cr_assert_gt(n, 0);
    char want[400];
    snprintf(want, sizeof want, "%s/leash/%d.sock", fx.tmp, (int)getpid());
    cr_expect_str_eq(path, want);
    cr_expect_eq(leash_agent_path(path, 4), LEASH_EINVAL);
    n = leash_agent_path(path, sizeof path);
    int fd = dbg_unix(path);
    cr_assert(fd >= 0);
    char *b = call_ok(fd, "LEASH1 ps-info\n");
    char pid[32];
    snprintf(pid, sizeof pid, "pid %d\n", (int)getpid());
    cr_expect(strstr(b, pid), "%s", b);
    free(b);
    close(fd);
    leash_agent_stop();
    cr_expect(access(path, F_OK) != 0, "socket left after stop");
    cr_expect(dbg_unix(path) < 0);
    leash_agent_stop(); /* no-op */
    cr_assert_eq(leash_agent_start(), 0); /* and again */
    cr_expect(access(path, F_OK) == 0);
    leash_agent_stop();
    unsetenv("XDG_RUNTIME_DIR");
}
