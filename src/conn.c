/* SPDX-License-Identifier: MIT */
/*
 * conn.c — connections: Go's net.Conn and net.Listener over the netpoller.
 *
 * A plain fd is a number, and a number outlives nothing: once it is
 * closed, the next socket() may get it, and a coroutine still holding it
 * reads someone else's data. A leash_conn keeps the fd inside an object
 * and makes that impossible:
 *   - Every call counts itself in under c->lock, after checking the
 *     closed flag, and counts itself in on the fd's number (fd_enter) in
 *     the same critical section; leash_conn_close sets the flag under the
 *     same lock before it closes. So a call either saw the flag (and
 *     never touches the fd) or is counted in, and then leash_fd_close
 *     leaves the close(2) to the last call out (netpoll.c): the number is
 *     not free while any call could use it. This is Go's fdMutex.
 *   - Deadlines live in the object. Moving one bumps a generation and
 *     kicks the waiters that watch it (fd_kick); a waiter checks the
 *     generation under the descriptor's lock as it hangs itself, so a
 *     change can never slip between its reading the deadline and its
 *     waiting (netpoll.c, fd_wait_at).
 *   - The memory stays while a call is inside (c->users): the last
 *     release of a connection that a borrower still uses makes it a
 *     zombie, freed by the last call out, as channels do.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct leash_conn {
    lobj obj;
    llock lock;
    int fd;
    int users;            /* calls inside (c->lock) */
    bool closed;          /* leash_conn_close began (c->lock) */
    bool zombie;          /* released while calls were inside */
    _Atomic int64_t rdl, wdl;   /* read / write deadlines; T_INF: none */
    _Atomic uint32_t rgen, wgen; /* bumped when they move */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* a unix
                                   * listener's file, removed at close */
};

static leash_conn *conn_check(const void *p) {
    return (leash_conn *)obj_check(p, OBJ_CONN);
}

/* --------------------------------------------------------- calls inside */

/* Counts a call in: the fd, or LEASH_ECLOSED. */
static int conn_enter(leash_conn *c) {
    llock_acquire(&c->lock);
    int fd = c->closed ? LEASH_ECLOSED : c->fd;
    if (fd >= 0) {
        int r = fd_enter(fd);
        if (r < 0)
            fd = r; /* someone leash_fd_close'd our fd: closed as well */
        else
            c->users++;
    }
    llock_release(&c->lock);
    return fd;
}

static void conn_leave(leash_conn *c) {
    fd_leave(c->fd); /* may close(2) it: the last call out */
    llock_acquire(&c->lock);
    bool gone = --c->users == 0 && c->zombie;
    llock_release(&c->lock);
    if (gone)
        obj_free_mem(&c->obj);
}

int conn_enter_fd(leash_conn *c) { return conn_enter(c); }
void conn_leave_fd(leash_conn *c) { conn_leave(c); }

/* Marks c closed, wakes its waiters and closes the fd (now, or when the
 * last call is out). */
static int conn_shut(leash_conn *c) {
    llock_acquire(&c->lock);
    bool was = c->closed;
    c->closed = true;
    llock_release(&c->lock);
    if (was)
        return LEASH_ECLOSED;
    if (c->path[0])
        unlink(c->path);
    return leash_fd_close(c->fd);
}

static void conn_destroy(lobj *o) {
    leash_conn *c = (leash_conn *)o;
    conn_shut(c);
    llock_acquire(&c->lock);
    bool now = c->users == 0;
    c->zombie = !now;
    llock_release(&c->lock);
    if (now)
        obj_free_mem(o);
}

static int conn_new(const char *file, int line, int fd, leash_conn **out) {
    coroutine *owner = sched_ensure_started() < 0 ? NULL
                                                 : sched_getg_or_foreign();
    leash_conn *c = owner ? obj_alloc(OBJ_CONN, sizeof *c) : NULL;
    if (!c)
        return LEASH_ENOMEM;
    llock_init(&c->lock, LR_CONN);
    c->fd = fd;
    atomic_store(&c->rdl, T_INF);
    atomic_store(&c->wdl, T_INF);
    if (obj_init(&c->obj, OBJ_CONN, file, line, conn_destroy, owner) < 0) {
        obj_free_mem_type(c, OBJ_CONN);
        return LEASH_ENOMEM;
    }
    fd_adopt(fd);
    *out = c;
    return 0;
}

int leash_conn_from_fd_at(const char *file, int line, leash_conn **out,
                          int fd) {
    if (!out)
        return LEASH_EINVAL;
    *out = NULL;
    if (fd < 0)
        return LEASH_EINVAL;
    return conn_new(file, line, fd, out);
}

/* ------------------------------------------------------------ reading */

enum { OP_READ, OP_WRITE, OP_ACCEPT };

/* One call: counted in, bounded by the connection's deadline for its
 * direction (checked first, as Go does: past it, even ready data waits)
 * and by ctx. */
static ssize_t conn_call(leash_conn *c, leash_ctx *ctx, int op, void *buf,
                         size_t n, struct iovec *iov, int cnt) {
    if (ctx) {
        int e = leash_ctx_err(ctx);
        if (e)
            return e; /* LEASH_EINVAL for a bad pointer, too */
    }
    bool rd = op != OP_WRITE;
    iobound b = {.deadline = T_INF,
                 .settable = rd ? &c->rdl : &c->wdl,
                 .gen = rd ? &c->rgen : &c->wgen,
                 .ctx = ctx};
    int64_t dl = atomic_load(b.settable);
    if (dl != T_INF && dl <= leash_now())
        return LEASH_ETIMEDOUT;
    int fd = conn_enter(c);
    if (fd < 0)
        return fd;
    ssize_t r;
    if (op == OP_READ)
        r = io_read(fd, buf, n, &b);
    else if (op == OP_WRITE)
        r = io_writev(fd, iov, cnt, &b);
    else
        r = io_accept(fd, NULL, NULL, &b);
    conn_leave(c);
    return r;
}

API_FRAME ssize_t leash_conn_read_ctx(leash_conn *c, leash_ctx *ctx,
                                      void *buf, size_t n) {
    if (!conn_check(c) || (!buf && n))
        return LEASH_EINVAL;
    return conn_call(c, ctx, OP_READ, buf, n, NULL, 0);
}

API_FRAME ssize_t leash_conn_read(leash_conn *c, void *buf, size_t n) {
    return leash_conn_read_ctx(c, NULL, buf, n);
}

/* ------------------------------------------------------------ writing */

API_FRAME ssize_t leash_conn_writev(leash_conn *c, const struct iovec *iov,
                                    int iovcnt) {
    if (!conn_check(c) || iovcnt < 0 || (!iov && iovcnt))
        return LEASH_EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if ((!iov[i].iov_base && iov[i].iov_len) ||
            __builtin_add_overflow(total, iov[i].iov_len, &total) ||
            total > SSIZE_MAX)
            return LEASH_EINVAL;
    }
    struct iovec small[16], *v = small; /* consumed in place: a copy */
    if (iovcnt > 16 && !(v = lmalloc((size_t)iovcnt * sizeof *v)))
        return LEASH_ENOMEM;
    if (iovcnt)
        memcpy(v, iov, (size_t)iovcnt * sizeof *v);
    ssize_t r = conn_call(c, NULL, OP_WRITE, NULL, 0, v, iovcnt);
    if (v != small)
        lfree(v);
    return r;
}

API_FRAME ssize_t leash_conn_write_ctx(leash_conn *c, leash_ctx *ctx,
                                       const void *buf, size_t n) {
    if (!conn_check(c) || (!buf && n) || n > SSIZE_MAX)
        return LEASH_EINVAL;
    struct iovec v = {.iov_base = (void *)buf, .iov_len = n};
    return conn_call(c, ctx, OP_WRITE, NULL, 0, &v, 1);
}

API_FRAME ssize_t leash_conn_write(leash_conn *c, const void *buf, size_t n) {
    return leash_conn_write_ctx(c, NULL, buf, n);
}

/* ------------------------------------------------- closing, deadlines */

int leash_conn_close(leash_conn *c) {
    if (!conn_check(c))
        return LEASH_EINVAL;
    return conn_shut(c);
}

enum { DL_READ = 1, DL_WRITE = 2 };

static int set_deadline(leash_conn *c, int64_t deadline, int which) {
    int64_t dl = io_deadline(deadline);
    if (!conn_check(c) || dl < 0)
        return LEASH_EINVAL;
    int fd = conn_enter(c); /* the kick touches the fd's descriptor */
    if (fd < 0)
        return fd;
    int events = 0;
    if (which & DL_READ) {
        atomic_store(&c->rdl, dl);
        atomic_fetch_add(&c->rgen, 1);
        events |= LEASH_POLLIN;
    }
    if (which & DL_WRITE) {
        atomic_store(&c->wdl, dl);
        atomic_fetch_add(&c->wgen, 1);
        events |= LEASH_POLLOUT;
    }
    fd_kick(fd, events);
    conn_leave(c);
    return 0;
}

int leash_conn_set_deadline(leash_conn *c, int64_t deadline) {
    return set_deadline(c, deadline, DL_READ | DL_WRITE);
}
int leash_conn_set_read_deadline(leash_conn *c, int64_t deadline) {
    return set_deadline(c, deadline, DL_READ);
}
int leash_conn_set_write_deadline(leash_conn *c, int64_t deadline) {
    return set_deadline(c, deadline, DL_WRITE);
}

int leash_conn_fd(leash_conn *c) {
    if (!conn_check(c))
        return LEASH_EINVAL;
    llock_acquire(&c->lock);
    int fd = c->closed ? LEASH_ECLOSED : c->fd;
    llock_release(&c->lock);
    return fd;
}

/* ------------------------------------------------------------ addresses */

typedef struct {
    struct sockaddr_storage ss;
    socklen_t len;
} saddr;

/* Parses "host:port" for family hint (AF_UNSPEC: either); an empty host
 * is `any` (listening) or loopback (dialing). */
static int parse_inet(const char *address, int family, bool any, saddr *a) {
    const char *colon = strrchr(address, ':');
    if (!colon || !colon[1] || strlen(colon + 1) > 5)
        return LEASH_EINVAL;
    unsigned long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return LEASH_EINVAL;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
        return LEASH_EINVAL;
    char host[64];
    size_t hl = (size_t)(colon - address);
    if (hl >= 2 && address[0] == '[' && address[hl - 1] == ']') {
        address++, hl -= 2; /* [v6] */
        if (family == AF_INET)
            return LEASH_EINVAL;
        family = AF_INET6;
    }
    if (hl >= sizeof host)
        return LEASH_EINVAL;
    memcpy(host, address, hl);
    host[hl] = 0;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;
    memset(a, 0, sizeof *a);
    bool local = !strcmp(host, "localhost") || (!host[0] && !any);
    if (family != AF_INET6 &&
        (local || !host[0] || inet_pton(AF_INET, host, &v4->sin_addr) == 1)) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        if (local)
            v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (!host[0])
            v4->sin_addr.s_addr = htonl(INADDR_ANY);
        a->len = sizeof *v4;
        return 0;
    }
    if (family == AF_INET)
        return LEASH_EINVAL;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    if (local)
        v6->sin6_addr = in6addr_loopback;
    else if (host[0] && inet_pton(AF_INET6, host, &v6->sin6_addr) != 1)
        return LEASH_EINVAL;
    a->len = sizeof *v6;
    return 0;
}

static int parse_addr(const char *network, const char *address, bool any,
                      saddr *a) {
    if (!network || !address)
        return LEASH_EINVAL;
    if (!strcmp(network, "unix")) {
        struct sockaddr_un *u = (struct sockaddr_un *)&a->ss;
        size_t n = strlen(address);
        if (n == 0 || n >= sizeof u->sun_path)
            return LEASH_EINVAL;
        memset(a, 0, sizeof *a);
        u->sun_family = AF_UNIX;
        memcpy(u->sun_path, address, n + 1);
        a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
    }
    int family = !strcmp(network, "tcp")    ? AF_UNSPEC
                 : !strcmp(network, "tcp4") ? AF_INET
                 : !strcmp(network, "tcp6") ? AF_INET6
                                            : -1;
    return family < 0 ? LEASH_EINVAL : parse_inet(address, family, any, a);
}

static int fmt_addr(const saddr *a, char *buf, size_t n) {
    char host[INET6_ADDRSTRLEN];
    int len;
    const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const void *)&a->ss;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        len = snprintf(buf, n, "%s:%u", host, ntohs(v4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const void *)&a->ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        len = snprintf(buf, n, "[%s]:%u", host, ntohs(v6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *u = (const void *)&a->ss;
        size_t pl = a->len > offsetof(struct sockaddr_un, sun_path)
                        ? a->len - offsetof(struct sockaddr_un, sun_path)
                        : 0;
        len = snprintf(buf, n, "%.*s", (int)strnlen(u->sun_path, pl),
                       u->sun_path);
    } else {
        return LEASH_EINVAL;
    }
    return len < 0 || (size_t)len >= n ? LEASH_EINVAL : len;
}

static int conn_name(leash_conn *c, bool peer, saddr *a) {
    if (!conn_check(c))
        return LEASH_EINVAL;
    int fd = conn_enter(c);
    if (fd < 0)
        return fd;
    a->len = sizeof a->ss;
    int r = (peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a->ss,
                                                &a->len);
    r = r < 0 ? -errno : 0;
    conn_leave(c);
    return r;
}

int leash_conn_local_addr(leash_conn *c, char *buf, size_t n) {
    saddr a;
    int r = buf ? conn_name(c, false, &a) : LEASH_EINVAL;
    return r < 0 ? r : fmt_addr(&a, buf, n);
}

int leash_conn_remote_addr(leash_conn *c, char *buf, size_t n) {
    saddr a;
    int r = buf ? conn_name(c, true, &a) : LEASH_EINVAL;
    return r < 0 ? r : fmt_addr(&a, buf, n);
}

int leash_conn_local_port(leash_conn *c) {
    saddr a;
    int r = conn_name(c, false, &a);
    if (r < 0)
        return r;
    if (a.ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&a.ss)->sin_port);
    if (a.ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port);
    return LEASH_EINVAL;
}

/* ------------------------------------------------- listen, accept, dial */

/* TCP connections start with Nagle's algorithm off, as Go's do: a
 * service that writes a reply and waits for the next request must not
 * wait for the peer's delayed ACK. (A unix socket refuses: no matter.) */
static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int leash_listen_at(const char *file, int line, leash_conn **out,
                    const char *network, const char *address) {
    if (!out)
        return LEASH_EINVAL;
    *out = NULL;
    saddr a;
    int r = parse_addr(network, address, true, &a);
    if (r < 0)
        return r;
    int family = a.ss.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a.ss, a.len) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    if ((r = conn_new(file, line, fd, out)) < 0) {
        close(fd);
        if (family == AF_UNIX)
            unlink(((struct sockaddr_un *)&a.ss)->sun_path);
        return r;
    }
    if (family == AF_UNIX) /* Go removes the file it made at close */
        strcpy((*out)->path, ((struct sockaddr_un *)&a.ss)->sun_path);
    return 0;
}

API_FRAME int leash_conn_accept_at(const char *file, int line, leash_conn *l,
                                   leash_conn **out) {
    if (!out)
        return LEASH_EINVAL;
    *out = NULL;
    if (!conn_check(l))
        return LEASH_EINVAL;
    ssize_t fd = conn_call(l, NULL, OP_ACCEPT, NULL, 0, NULL, 0);
    if (fd < 0)
        return (int)fd;
    nodelay((int)fd);
    int r = conn_new(file, line, (int)fd, out);
    if (r < 0)
        close((int)fd);
    return r;
}

API_FRAME int leash_dial_at(const char *file, int line, leash_conn **out,
                            const char *network, const char *address,
                            int64_t deadline) {
    if (!out)
        return LEASH_EINVAL;
    *out = NULL;
    saddr a;
    iobound b = {.deadline = io_deadline(deadline)};
    int r = parse_addr(network, address, false, &a);
    if (r < 0 || b.deadline < 0)
        return r < 0 ? r : LEASH_EINVAL;
    int fd = socket(a.ss.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (a.ss.ss_family != AF_UNIX)
        nodelay(fd);
    /* The fd is nobody else's yet: no counting in. */
    if ((r = io_connect(fd, (struct sockaddr *)&a.ss, a.len, &b)) < 0 ||
        (r = conn_new(file, line, fd, out)) < 0) {
        leash_fd_close(fd); /* forgets what the netpoller knew of it */
        return r;
    }
    return 0;
}
