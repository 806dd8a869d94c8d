/* SPDX-License-Identifier: MIT */
/*
 * agent.c — the gops-style agent (leash_agent_start, LEASH_AGENT=1): a
 * Unix socket the `leash` CLI talks to (protocol: proto.h).
 *
 * Where: <dir>/<pid>.sock, dir = $XDG_RUNTIME_DIR/leash (else
 * /tmp/leash-<euid>), created 0700; an existing dir must be a real
 * directory of ours with no group/other access, or the agent refuses to
 * start (-EPERM). The socket is 0600, and every client's credentials
 * (SO_PEERCRED) must be our uid or root: others get an ERR reply and are
 * disconnected. The socket is removed at exit (atexit; by the process
 * that created it only, not by a forked child) and by leash_agent_stop.
 *
 * Threads, not coroutines: one thread accepts and one serves each client
 * (at most MAX_CLIENTS at once; more get an ERR "busy"). The agent must
 * answer when the scheduler cannot — every worker stuck in a loop, or a
 * deadlock — which is exactly when one looks. The threads block every
 * signal, touch no coroutine's wait object and are counted by
 * agent_threads() for the deadlock detector. A client may send several
 * requests on one connection; it is dropped after IDLE_MS without one,
 * or after PARTIAL_MS in the middle of one.
 */
#define _GNU_SOURCE 1
#include "debug.h"
#include "proto.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 16
#define IDLE_MS 30000
#define PARTIAL_MS 5000
#define SEND_TIMEOUT_S 10

static struct {
    pthread_mutex_t mu;
    bool running;
    int lfd;
    pid_t pid;
    pthread_t thread;
    char path[sizeof ((struct sockaddr_un *)0)->sun_path];
    bool atexit_set;
} A = {.mu = PTHREAD_MUTEX_INITIALIZER, .lfd = -1};

static _Atomic int nthreads, nclients;

int agent_threads(void) { return atomic_load(&nthreads); }

/* ------------------------------------------------------------ replies */

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int reply(int fd, bool ok, const char *body, size_t n) {
    char head[AGENT_MAX_HEAD];
    int hn = snprintf(head, sizeof head, AGENT_MAGIC " %s %zu\n",
                      ok ? "OK" : "ERR", n);
    if (send_all(fd, head, (size_t)hn) < 0)
        return -1;
    return send_all(fd, body, n);
}

static int reply_err(int fd, const char *msg) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s\n", msg);
    return reply(fd, false, buf, (size_t)n);
}

static int handle(int fd, const agent_req *r) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return reply_err(fd, "out of memory");
    int rc = 0;
    switch (r->cmd) {
    case AC_PS_INFO: rc = dbg_write_vitals(f, true); break;
    case AC_STATS: rc = dbg_write_vitals(f, false); break;
    case AC_STACK: rc = leash_dump(f, r->arg[0] ? r->arg[0] - '0' : 2); break;
    case AC_DUMP: rc = leash_dump(f, LEASH_DUMP_LEASH); break;
    case AC_JSON: rc = leash_dump(f, LEASH_DUMP_JSON); break;
    case AC_LEAKS: rc = dbg_write_leaks(f, !strcmp(r->arg, "json")); break;
    case AC_PROFILE:
        if (agent_cpu_seconds(r->arg) > 0) {
            rc = leash_cpu_profile(f, agent_cpu_seconds(r->arg) *
                                          INT64_C(1000000000));
            if (rc == -EBUSY || rc == -ENOTSUP) {
                fclose(f);
                free(buf);
                return reply_err(fd, rc == -EBUSY
                                         ? "cpu profiling already in use"
                                         : "cpu profiling is not available "
                                           "in ThreadSanitizer builds");
            }
        } else if (!strcmp(r->arg, "block") || !strcmp(r->arg, "mutex")) {
            rc = leash_profile_write(f, r->arg, 0);
        } else {
            rc = !strcmp(r->arg, "leak") ? leash_leak_dump(f, LEASH_DUMP_PPROF)
                                         : leash_dump(f, LEASH_DUMP_PPROF);
        }
        break;
    case AC_TOP: rc = dbg_write_top(f); break;
    case AC_TRACE:
        rc = leash_trace(f, agent_trace_seconds(r->arg) * INT64_C(1000000000));
        if (rc == -EBUSY) {
            fclose(f);
            free(buf);
            return reply_err(fd, "a trace is already running");
        }
        break;
    case AC_VERSION:
        fprintf(f, "leash %d.%d.%d protocol 1\n", LEASH_VERSION_MAJOR,
                LEASH_VERSION_MINOR, LEASH_VERSION_PATCH);
        break;
    default: rc = LEASH_EINVAL; break;
    }
    if (fclose(f) != 0 && rc >= 0)
        rc = LEASH_ENOMEM;
    int out = rc < 0 ? reply_err(fd, leash_strerror(rc))
                     : reply(fd, true, buf, n);
    free(buf);
    return out;
}

/* ------------------------------------------------------------ clients */

static bool peer_allowed(int fd) {
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
        return false;
    return cr.uid == geteuid() || cr.uid == 0;
}

static void *client_main(void *p) {
    int fd = (int)(intptr_t)p;
    struct timeval tv = {SEND_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char buf[AGENT_MAX_REQ];
    size_t len = 0;
    for (;;) {
        agent_req req;
        int rc = agent_parse_request(buf, len, &req);
        if (rc == 0) {
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            int pr = poll(&pf, 1, len ? PARTIAL_MS : IDLE_MS);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr <= 0)
                break;
            ssize_t r = recv(fd, buf + len, sizeof buf - len, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            len += (size_t)r;
            continue;
        }
        size_t used = rc > 0 ? (size_t)rc : 0;
        if (rc < 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s", agent_strerror(rc));
            if (reply_err(fd, msg) < 0 || rc == AGENT_E_TOOLONG)
                break;
            const char *nl = memchr(buf, '\n', len);
            used = nl ? (size_t)(nl - buf) + 1 : len;
        } else if (handle(fd, &req) < 0) {
            break;
        }
        memmove(buf, buf + used, len - used);
        len -= used;
    }
    close(fd);
    atomic_fetch_sub(&nclients, 1);
    atomic_fetch_sub(&nthreads, 1);
    return NULL;
}

/* Starts fn on a detached (or joinable) thread with every signal blocked. */
static int start_thread(pthread_t *t, bool detached, void *(*fn)(void *),
                        void *arg) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (detached)
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&nthreads, 1);
    int rc = pthread_create(t, &attr, fn, arg);
    if (rc)
        atomic_fetch_sub(&nthreads, 1);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc ? -rc : 0;
}

static void *accept_main(void *p) {
    int lfd = (int)(intptr_t)p;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                usleep(100000);
                continue;
            }
            break; /* closed by leash_agent_stop */
        }
        if (!peer_allowed(fd)) {
            reply_err(fd, "permission denied: not the same user");
            close(fd);
            continue;
        }
        if (atomic_fetch_add(&nclients, 1) >= MAX_CLIENTS) {
            atomic_fetch_sub(&nclients, 1);
            reply_err(fd, "busy: too many clients");
            close(fd);
            continue;
        }
        pthread_t t;
        if (start_thread(&t, true, client_main, (void *)(intptr_t)fd) < 0) {
            atomic_fetch_sub(&nclients, 1);
            reply_err(fd, "out of threads");
            close(fd);
        }
    }
    atomic_fetch_sub(&nthreads, 1);
    return NULL;
}

/* ------------------------------------------------------------ lifetime */

static void agent_atexit(void) {
    if (in_forked_child())
        return; /* the socket is the parent's (and A.mu may be held) */
    rmutex_lock(&A.mu, LR_AGENT);
    if (A.running && A.pid == getpid())
        unlink(A.path);
    rmutex_unlock(&A.mu);
}

/* Creates dir 0700, or checks that an existing one is safe to use. */
static int ensure_dir(const char *dir) {
    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    struct stat st;
    if (lstat(dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077))
        return -EPERM;
    return 0;
}

int leash_agent_start(void) {
    if (fork_refuse("leash_agent_start"))
        return LEASH_EINVAL;
    rmutex_lock(&A.mu, LR_AGENT);
    if (A.running && A.pid == getpid()) {
        rmutex_unlock(&A.mu);
        return 0;
    }
    A.running = false; /* a forked child starts its own */
    char dir[sizeof A.path];
    int rc = agent_socket_dir(dir, sizeof dir) < 0 ? -ENAMETOOLONG : 0;
    if (!rc)
        rc = ensure_dir(dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = rc ? 0 : snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%d.sock",
                              dir, (int)getpid());
    if (!rc && (n < 0 || (size_t)n >= sizeof sa.sun_path))
        rc = -ENAMETOOLONG;
    int fd = -1;
    if (!rc) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            rc = -errno;
    }
    if (!rc) {
        unlink(sa.sun_path); /* a stale one of a dead process with our pid */
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
            chmod(sa.sun_path, 0600) < 0 || listen(fd, 16) < 0) {
            rc = -errno;
            unlink(sa.sun_path);
        }
    }
    if (!rc) {
        memcpy(A.path, sa.sun_path, sizeof A.path);
        A.lfd = fd;
        A.pid = getpid();
        rc = start_thread(&A.thread, false, accept_main, (void *)(intptr_t)fd);
        if (rc < 0)
            unlink(sa.sun_path);
    }
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        A.lfd = -1;
        rmutex_unlock(&A.mu);
        return rc;
    }
    A.running = true;
    if (!A.atexit_set) {
        A.atexit_set = true;
        atexit(agent_atexit);
    }
    rmutex_unlock(&A.mu);
    return 0;
}

void leash_agent_stop(void) {
    rmutex_lock(&A.mu, LR_AGENT);
    if (!A.running || A.pid != getpid()) {
        rmutex_unlock(&A.mu);
        return;
    }
    A.running = false;
    unlink(A.path);
    shutdown(A.lfd, SHUT_RDWR); /* wakes accept4 */
    pthread_t t = A.thread;
    int fd = A.lfd;
    A.lfd = -1;
    rmutex_unlock(&A.mu);
    pthread_join(t, NULL);
    close(fd);
}

int leash_agent_path(char *buf, size_t n) {
    rmutex_lock(&A.mu, LR_AGENT);
    int rc = LEASH_EINVAL;
    if (A.running && A.pid == getpid() && buf) {
        size_t len = strlen(A.path);
        rc = len < n ? (int)len : LEASH_EINVAL;
        if (len < n)
            memcpy(buf, A.path, len + 1);
    }
    rmutex_unlock(&A.mu);
    return rc;
}

/* ------------------------------------------------------------ env */

void debug_env_start(void) {
    static _Atomic int done;
    if (atomic_exchange(&done, 1))
        return;
    const char *addr = env_str("LEASH_DEBUG_ADDR");
    if (addr) {
        int port = leash_debug_listen(addr);
        if (port < 0) {
            fprintf(stderr, "leash: LEASH_DEBUG_ADDR=%s: %s\n", addr,
                    port == -EACCES ? "not a loopback address (set "
                                      "LEASH_DEBUG_ALLOW_REMOTE=1 to allow it)"
                    : port == LEASH_EINVAL ? "bad address (want host:port)"
                                           : strerror(-port));
        } else {
            const char *colon = strrchr(addr, ':');
            int hn = colon ? (int)(colon - addr) : 0;
            fprintf(stderr, "leash: debug endpoint on http://%.*s:%d/debug/pprof/\n",
                    hn ? hn : 9, hn ? addr : "127.0.0.1", port);
        }
    }
    if ((addr = env_str("LEASH_METRICS_ADDR"))) {
        int port = leash_metrics_listen(addr);
        if (port < 0)
            fprintf(stderr, "leash: LEASH_METRICS_ADDR=%s: %s\n", addr,
                    port == LEASH_EINVAL ? "bad address (want host:port)"
                                         : strerror(-port));
        else
            fprintf(stderr, "leash: metrics on port %d (/metrics)\n", port);
    }
    if (env_bool("LEASH_AGENT", false)) {
        int rc = leash_agent_start();
        if (rc < 0)
            fprintf(stderr, "leash: LEASH_AGENT: cannot start the agent: %s\n",
                    strerror(-rc));
    }
}
