/* SPDX-License-Identifier: MIT */
/*
 * client.c — talking to a process's agent over its Unix socket
 * (protocol: src/diag/proto.h), and the "key value" bodies it returns.
 *
 * Sockets are looked up in the agent's directory for this environment
 * ($XDG_RUNTIME_DIR/leash, else /tmp/leash-<euid>) and then in
 * /tmp/leash-<euid> (a process started without XDG_RUNTIME_DIR, e.g. by a
 * service manager); root also looks in every user's directories.
 */
#define _GNU_SOURCE 1
#include "cli.h"

#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int agent_dirs(char **dirs, int max) {
    int n = 0;
    char buf[256];
    if (agent_socket_dir(buf, sizeof buf) == 0 && n < max)
        dirs[n++] = strdup(buf);
    snprintf(buf, sizeof buf, "/tmp/leash-%u", (unsigned)geteuid());
    if (n < max && (!n || strcmp(dirs[0], buf)))
        dirs[n++] = strdup(buf);
    if (geteuid() == 0) {
        static const char *const pats[] = {"/tmp/leash-*", "/run/user/*/leash"};
        for (size_t p = 0; p < sizeof pats / sizeof *pats; p++) {
            glob_t g;
            if (glob(pats[p], GLOB_ONLYDIR, NULL, &g) != 0)
                continue;
            for (size_t i = 0; i < g.gl_pathc && n < max; i++) {
                bool dup = false;
                for (int k = 0; k < n; k++)
                    dup |= dirs[k] && !strcmp(dirs[k], g.gl_pathv[i]);
                if (!dup)
                    dirs[n++] = strdup(g.gl_pathv[i]);
            }
            globfree(&g);
        }
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (dirs[i])
            dirs[m++] = dirs[i];
    return m;
}

static int connect_path(const char *path, int timeout_ms) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

bool cli_proc_gone(pid_t pid) {
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false; /* another namespace, or no /proc: assume alive */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

int agent_open(agent_conn *c, pid_t pid, int timeout_ms, bool quiet) {
    c->fd = -1;
    c->pid = pid;
    char *dirs[64];
    int nd = agent_dirs(dirs, 64);
    int err = ENOENT;
    for (int i = 0; i < nd && c->fd < 0; i++) {
        snprintf(c->path, sizeof c->path, "%s/%d.sock", dirs[i], (int)pid);
        int fd = connect_path(c->path, timeout_ms);
        if (fd >= 0)
            c->fd = fd;
        else if (errno != ENOENT)
            err = errno;
    }
    for (int i = 0; i < nd; i++)
        free(dirs[i]);
    if (c->fd >= 0)
        return EXIT_OK;
    if (!quiet) {
        struct stat st;
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/%d", (int)pid);
        /* Another user's process: its socket is in that user's directory,
         * which only root searches (agent_dirs). */
        bool other = geteuid() != 0 &&
                     ((kill(pid, 0) < 0 && errno == EPERM) ||
                      (stat(proc, &st) == 0 && st.st_uid != geteuid()));
        if (cli_proc_gone(pid))
            cli_err("no such process: %d", (int)pid);
        else if (err == EACCES || err == EPERM || (err == ENOENT && other))
            cli_err("permission denied: process %d belongs to another user; "
                    "run leash as that user or as root", (int)pid);
        else if (err == ENOENT)
            cli_err("process %d has no leash agent (start it with "
                    "LEASH_AGENT=1, or call leash_agent_start())", (int)pid);
        else
            cli_err("cannot connect to the agent of process %d: %s",
                    (int)pid, strerror(err));
    }
    return EXIT_NOPROC;
}

void agent_close(agent_conn *c) {
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int read_full(int fd, char *p, size_t n) {
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? -2 : -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int agent_call(agent_conn *c, int cmd, const char *arg, char **body,
               size_t *len, bool quiet) {
    *body = NULL;
    *len = 0;
    char req[AGENT_MAX_REQ];
    int rn = agent_format_request(req, sizeof req, cmd, arg);
    if (rn < 0) {
        if (!quiet)
            cli_err("internal error: bad request");
        return EXIT_PROTO;
    }
    if (send(c->fd, req, (size_t)rn, MSG_NOSIGNAL) != rn) {
        if (!quiet)
            cli_err("process %d: cannot send to the agent: %s", (int)c->pid,
                    strerror(errno));
        return EXIT_PROTO;
    }
    char head[AGENT_MAX_HEAD];
    size_t hn = 0;
    agent_reply rep;
    int rc = 0;
    while ((rc = agent_parse_reply(head, hn, &rep)) == 0) {
        if (read_full(c->fd, head + hn, 1) < 0) {
            if (!quiet)
                cli_err("process %d: the agent closed the connection or "
                        "timed out", (int)c->pid);
            return EXIT_PROTO;
        }
        hn++;
    }
    if (rc < 0) {
        if (!quiet)
            cli_err("process %d: bad reply from the agent: %s", (int)c->pid,
                    agent_strerror(rc));
        return EXIT_PROTO;
    }
    char *b = malloc((size_t)rep.length + 1);
    if (!b) {
        if (!quiet)
            cli_err("out of memory for a %lld-byte reply",
                    (long long)rep.length);
        return EXIT_PROTO;
    }
    if (read_full(c->fd, b, (size_t)rep.length) < 0) {
        free(b);
        if (!quiet)
            cli_err("process %d: truncated reply from the agent", (int)c->pid);
        return EXIT_PROTO;
    }
    b[rep.length] = 0;
    if (!rep.ok) {
        if (!quiet) {
            b[strcspn(b, "\n")] = 0;
            cli_err("process %d: agent: %s", (int)c->pid, b);
        }
        free(b);
        return EXIT_PROTO;
    }
    *body = b;
    *len = (size_t)rep.length;
    return EXIT_OK;
}

int agent_query(pid_t pid, int cmd, const char *arg, char **body,
                size_t *len) {
    agent_conn c;
    int rc = agent_open(&c, pid, 30000, false);
    if (rc)
        return rc;
    rc = agent_call(&c, cmd, arg, body, len, false);
    agent_close(&c);
    return rc;
}

/* ------------------------------------------------------------ key value */

const char *kv_get(const char *body, const char *key, char *buf, size_t n) {
    size_t kn = strlen(key);
    for (const char *l = body; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t ln = e ? (size_t)(e - l) : strlen(l);
        if (ln > kn && !strncmp(l, key, kn) && l[kn] == ' ') {
            size_t vn = ln - kn - 1;
            if (vn >= n)
                vn = n - 1;
            memcpy(buf, l + kn + 1, vn);
            buf[vn] = 0;
            return buf;
        }
        l = e ? e + 1 : NULL;
    }
    return NULL;
}

long long kv_num(const char *body, const char *key, long long dflt) {
    char buf[64], *end;
    if (!kv_get(body, key, buf, sizeof buf))
        return dflt;
    long long v = strtoll(buf, &end, 10);
    return end != buf ? v : dflt;
}

/* A JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)? */
static bool is_number(const char *s) {
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == 0;
}

void kv_json(FILE *out, const char *body) {
    fputc('{', out);
    bool first = true;
    for (const char *l = body; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t ln = e ? (size_t)(e - l) : strlen(l);
        const char *sp = memchr(l, ' ', ln);
        if (sp) {
            char key[128], val[512];
            snprintf(key, sizeof key, "%.*s", (int)(sp - l), l);
            snprintf(val, sizeof val, "%.*s", (int)(ln - (size_t)(sp - l) - 1),
                     sp + 1);
            fputs(first ? "" : ",", out);
            first = false;
            cli_json_str(out, key);
            fputc(':', out);
            if (is_number(val))
                fputs(val, out);
            else
                cli_json_str(out, val);
        }
        l = e ? e + 1 : NULL;
    }
    fputs("}", out);
}
