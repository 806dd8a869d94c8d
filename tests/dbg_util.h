/* SPDX-License-Identifier: MIT */
/*
 * dbg_util.h — helpers for the live-process tools' tests (test_http.c,
 * test_agent.c, test_cli.c): run the testprog_dbg_server helper in the
 * background, run commands with a time bound capturing their output, talk
 * raw HTTP and agent protocol, temporary directories.
 *
 * Everything is bounded in time and loopback only. Child processes get
 * PR_SET_PDEATHSIG so a failed (or killed) test never leaves them behind.
 */
#ifndef LEASH_TESTS_DBG_UTIL_H
#define LEASH_TESTS_DBG_UTIL_H

#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static inline int64_t dbg_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* environ with `add` applied ("K=V" sets K, a bare "K" removes it): a
 * malloc'd array of borrowed strings. */
static inline char **dbg_envp(const char *const *add) {
    size_t n = 0, na = 0;
    while (environ[n])
        n++;
    while (add && add[na])
        na++;
    char **e = calloc(n + na + 1, sizeof *e);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strcspn(environ[i], "=");
        bool over = false;
        for (size_t k = 0; k < na; k++)
            over |= strcspn(add[k], "=") == kl && !strncmp(add[k], environ[i], kl);
        if (!over)
            e[m++] = environ[i];
    }
    for (size_t k = 0; k < na; k++)
        if (strchr(add[k], '='))
            e[m++] = (char *)add[k];
    e[m] = NULL;
    return e;
}

/* Forks argv with env additions; stdout/stderr to the given fds (-1:
 * /dev/null), stdin from in_path (NULL: /dev/null). Returns the pid. */
static inline pid_t dbg_spawn(const char *const *argv, const char *const *env,
                              int out_fd, int err_fd, const char *in_path) {
    char **envp = dbg_envp(env);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0);
        int nul = open("/dev/null", O_RDWR);
        int in = in_path ? open(in_path, O_RDONLY) : nul;
        dup2(in < 0 ? nul : in, 0);
        dup2(out_fd >= 0 ? out_fd : nul, 1);
        dup2(err_fd >= 0 ? err_fd : nul, 2);
        execve(argv[0], (char *const *)argv, envp);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(envp);
    return pid;
}

/* Runs argv to completion (killed after timeout_s): returns its exit
 * status (128+sig if killed by a signal, -1 on timeout); *out and *err
 * (if non-NULL) get its output (malloc'd, NUL-terminated). */
static inline int dbg_run_in(const char *const *argv, const char *const *env,
                             int timeout_s, char **out, char **err,
                             const char *in_path) {
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = dbg_spawn(argv, env, po[1], pe[1], in_path);
    close(po[1]);
    close(pe[1]);
    char *buf[2] = {malloc(1), malloc(1)};
    size_t len[2] = {0, 0};
    int fds[2] = {po[0], pe[0]};
    int64_t end = dbg_ms() + (int64_t)timeout_s * 1000;
    bool timed_out = false;
    while (fds[0] >= 0 || fds[1] >= 0) {
        struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        int64_t left = end - dbg_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (poll(p, 2, (int)left) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || !p[i].revents)
                continue;
            char tmp[65536];
            ssize_t r = read(fds[i], tmp, sizeof tmp);
            if (r <= 0) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            buf[i] = realloc(buf[i], len[i] + (size_t)r + 1);
            memcpy(buf[i] + len[i], tmp, (size_t)r);
            len[i] += (size_t)r;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        buf[i][len[i]] = 0;
    }
    if (timed_out)
        kill(-pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    if (out)
        *out = buf[0];
    else
        free(buf[0]);
    if (err)
        *err = buf[1];
    else
        free(buf[1]);
    if (timed_out)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static inline int dbg_run(const char *const *argv, const char *const *env,
                          int timeout_s, char **out, char **err) {
    return dbg_run_in(argv, env, timeout_s, out, err, NULL);
}

/* A program on PATH (or an absolute path that exists): malloc'd or NULL. */
static inline char *dbg_which(const char *name) {
    const char *path = getenv("PATH");
    char buf[4096];
    if (!path)
        path = "/usr/bin:/bin";
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name);
        if (access(buf, X_OK) == 0)
            return strdup(buf);
        p += n + (p[n] == ':');
    }
    return NULL;
}

static inline char *dbg_tmpdir(void) {
    char tmpl[] = "/tmp/leash-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline void dbg_rmrf(const char *dir) {
    if (!dir || strncmp(dir, "/tmp/leash-test-", 16))
        return; /* only what dbg_tmpdir made */
    const char *argv[] = {"/bin/rm", "-rf", dir, NULL};
    dbg_run(argv, NULL, 30, NULL, NULL);
}

static inline void dbg_write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* A free TCP port on 127.0.0.1 (bound, then released). */
static inline int dbg_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ------------------------------------------------------------ dbg_server */

typedef struct {
    pid_t pid;
    int out;          /* its stdout */
    int port;         /* HTTP port, 0 if none */
    int leaked;
    char agent[256];  /* socket path, "" if none */
    char log[4096];   /* what it printed up to "ready" */
} dbg_proc;

/* Starts testprog_dbg_server with args and env; waits (10 s at most) for
 * its "ready" line. */
static inline bool dbg_start(dbg_proc *p, const char *const *args,
                             const char *const *env) {
    memset(p, 0, sizeof *p);
    const char *argv[32] = {LEASH_TEST_BINDIR "/testprog_dbg_server"};
    int n = 1;
    for (; args && args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int po[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return false;
    p->pid = dbg_spawn(argv, env, po[1], 2, NULL);
    close(po[1]);
    p->out = po[0];
    size_t len = 0;
    int64_t end = dbg_ms() + 10000;
    while (!strstr(p->log, "ready\n") && dbg_ms() < end &&
           len + 1 < sizeof p->log) {
        struct pollfd pf = {p->out, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t r = read(p->out, p->log + len, sizeof p->log - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        p->log[len] = 0;
    }
    const char *s;
    if ((s = strstr(p->log, "port=")))
        p->port = atoi(s + 5);
    if ((s = strstr(p->log, "leaked=")))
        p->leaked = atoi(s + 7);
    if ((s = strstr(p->log, "agent=")))
        sscanf(s + 6, "%255s", p->agent);
    return strstr(p->log, "ready\n") != NULL;
}

static inline void dbg_stop(dbg_proc *p) {
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    if (p->out > 0)
        close(p->out);
    p->out = -1;
}

/* ------------------------------------------------------------ fixture */

/* What the agent and CLI tests run against: a dbg_server (with its agent)
 * whose XDG_RUNTIME_DIR is a fresh temporary directory. */
typedef struct {
    dbg_proc srv;
    char *tmp;     /* the directory; NULL until dbg_fixture_dir */
    char xdg[320]; /* "XDG_RUNTIME_DIR=<tmp>" */
} dbg_fixture;

static inline bool dbg_fixture_dir(dbg_fixture *f) {
    f->tmp = dbg_tmpdir();
    if (!f->tmp)
        return false;
    snprintf(f->xdg, sizeof f->xdg, "XDG_RUNTIME_DIR=%s", f->tmp);
    return true;
}

/* Starts the server with "--no-http", opt (if any) and more (NULL-ended),
 * in the fixture's XDG_RUNTIME_DIR (made first if need be) plus env1 (if
 * any); true once it is ready with an agent socket. */
static inline bool dbg_fixture_start(dbg_fixture *f, const char *opt,
                                     const char *const *more,
                                     const char *env1) {
    if (!f->tmp && !dbg_fixture_dir(f))
        return false;
    const char *args[16] = {"--no-http"};
    int n = 1;
    if (opt)
        args[n++] = opt;
    for (int i = 0; more && more[i] && n < 15; i++)
        args[n++] = more[i];
    args[n] = NULL;
    const char *env[] = {f->xdg, env1, NULL};
    return dbg_start(&f->srv, args, env) && f->srv.agent[0];
}

static inline void dbg_fixture_stop(dbg_fixture *f) {
    dbg_stop(&f->srv);
    dbg_rmrf(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
}

/* Waits (bounded) for p to exit by itself: its exit status or -1. */
static inline int dbg_wait_exit(dbg_proc *p, int timeout_ms) {
    int64_t end = dbg_ms() + timeout_ms;
    int st;
    while (dbg_ms() < end) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    return -1;
}

/* ------------------------------------------------------------ sockets */

static inline int dbg_tcp(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Fills a Unix socket address; false if path does not fit. */
static inline bool dbg_sun(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof a->sun_path)
        return false;
    memcpy(a->sun_path, path, n + 1);
    return true;
}

static inline int dbg_unix(const char *path) {
    struct sockaddr_un a;
    if (!dbg_sun(&a, path))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline bool dbg_send(int fd, const void *p, size_t n) {
    return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* Reads until EOF or timeout: malloc'd, NUL-terminated; *n its length. */
static inline char *dbg_read_all(int fd, int timeout_ms, size_t *n) {
    size_t len = 0;
    char *buf = malloc(1);
    int64_t end = dbg_ms() + timeout_ms;
    for (;;) {
        int64_t left = end - dbg_ms();
        struct pollfd pf = {fd, POLLIN, 0};
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            break;
        char tmp[65536];
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r <= 0)
            break;
        buf = realloc(buf, len + (size_t)r + 1);
        memcpy(buf + len, tmp, (size_t)r);
        len += (size_t)r;
    }
    buf[len] = 0;
    if (n)
        *n = len;
    return buf;
}

/* Sends a raw request and reads the whole answer (the server closes). */
static inline char *dbg_http_raw(int port, const char *req, size_t reqlen,
                                 size_t *n) {
    int fd = dbg_tcp(port);
    if (fd < 0)
        return NULL;
    dbg_send(fd, req, reqlen);
    char *r = dbg_read_all(fd, 15000, n);
    close(fd);
    return r;
}

static inline char *dbg_http_get(int port, const char *path, size_t *n) {
    char req[1024];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
             path, port);
    return dbg_http_raw(port, req, strlen(req), n);
}

static inline int dbg_http_status(const char *resp) {
    int st = 0;
    if (!resp || sscanf(resp, "HTTP/1.%*d %d", &st) != 1)
        return 0;
    return st;
}

/* The body of a raw response (after the blank line), or "". */
static inline const char *dbg_http_body(const char *resp) {
    const char *b = resp ? strstr(resp, "\r\n\r\n") : NULL;
    return b ? b + 4 : "";
}

static inline int dbg_count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

#endif /* LEASH_TESTS_DBG_UTIL_H */
