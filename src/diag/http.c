/* SPDX-License-Identifier: MIT */
/*
 * http.c — the HTTP debug endpoint (leash_debug_listen, LEASH_DEBUG_ADDR),
 * served by the runtime's own coroutines on its netpoller.
 *
 *   /debug/pprof/                     index page (like Go's)
 *   /debug/pprof/goroutine?debug=N    0: gzipped pprof, 1: counts, 2: stacks
 *   /debug/pprof/goroutineleak?debug=N  the same for proven leaks only
 *   /debug/pprof/block?debug=N        0: gzipped pprof, 1: Go's text
 *   /debug/pprof/mutex?debug=N        the same (contention.c)
 *   /debug/pprof/profile?seconds=N    CPU profile, N in 1..600 (cpuprof.c)
 *   /debug/leash/trace?seconds=N      execution trace, N in 1..60 (trace.c)
 *   /debug/leash?format=text|json     leash's dump (formats 3 and 4)
 *   /debug/leash/                     the live page (livepage.c)
 *   /metrics                          Prometheus text format 0.0.4
 *
 * The same routes are served to an application's own HTTP server by
 * embed.c (leash_debug_handle, leash_debug_serve_conn): route() writes
 * through the connection's write function, never to a socket directly.
 * A metrics-only listener (leash_metrics_listen, LEASH_METRICS_ADDR)
 * serves /metrics alone and may bind any address.
 *
 * One coroutine ("leash/http") accepts; each connection gets its own
 * ("leash/http-conn"), at most LEASH_DEBUG_MAX_CONNS at once (default
 * 32). Slow clients must not starve real ones (slowloris): at the cap,
 * the connection that has waited longest for its request head is closed
 * to make room (one being answered is never cut); if every connection
 * is being answered, the new one is closed at once. A connection carries
 * one request: the head (request line and headers, at most HTTP_MAX_HEAD
 * bytes) must arrive within LEASH_DEBUG_HEADER_TIMEOUT_MS (default 5000;
 * LEASH_DEBUG_TIMEOUT_MS is its older name) or the answer is 408; a malformed
 * head gets 400 (413 too large, 414 target too long, 505 other version),
 * an unknown path 404, a method other than GET or HEAD 405. Every answer
 * carries `Connection: close`; the connection is then closed (after
 * draining what the client still sends, briefly, so that it reads the
 * answer rather than a reset).
 *
 * Bodies are built in memory (open_memstream) by the dump and metrics
 * writers, which run on a helper thread (diag_on_thread): symbolising
 * needs more stack than a coroutine has. Writes use send(MSG_NOSIGNAL)
 * and leash_fd_wait, so a client that goes away never raises SIGPIPE.
 *
 * Security: binds 127.0.0.1 unless told otherwise, refuses a non-loopback
 * address (-EACCES) unless LEASH_DEBUG_ALLOW_REMOTE=1, and answers 403 to
 * a request whose Host header is not a loopback name (DNS rebinding).
 */
#define _GNU_SOURCE 1
#include "debug.h"
#include "http_parse.h"
#include "http_serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS_DEFAULT 32
#define WRITE_TIMEOUT_NS (30 * INT64_C(1000000000))
#define ACCEPT_SLICE_NS (3600 * INT64_C(1000000000))

/* Servers and connections are linked into lists reachable from here:
 * their coroutines' stacks are not scanned by leak checkers (LSan), and
 * the tools should not look leaky themselves. */
typedef struct server {
    int fd;
    bool allow_remote;
    bool metrics_only;
    int max_conns;
    struct server *next;
} server;

/* reg_lock guards the list and `reading`: a connection is evicted only
 * while it still waits for its head, and its fd stays open while it is
 * listed (conn_free comes before the close). */
typedef struct conn_state {
    struct conn_state *next, *prev;
    int fd;
    int64_t since;  /* accepted at (leash_now) */
    bool reading;   /* still waiting for its request head */
    http_request req;
    char buf[HTTP_MAX_HEAD];
} conn_state;

static llock reg_lock = LLOCK_INIT(LR_HTTP);
static server *servers;
static conn_state *conns;
static _Atomic int active_conns;
static _Atomic int listening; /* listening fds not closed yet */

static void server_free(server *sv) {
    llock_acquire(&reg_lock);
    for (server **p = &servers; *p; p = &(*p)->next)
        if (*p == sv) {
            *p = sv->next;
            break;
        }
    llock_release(&reg_lock);
    free(sv);
}

static conn_state *conn_new(int fd) {
    conn_state *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->since = leash_now();
    c->reading = true;
    llock_acquire(&reg_lock);
    c->prev = NULL;
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    llock_release(&reg_lock);
    return c;
}

static void conn_free(conn_state *c) {
    if (!c)
        return;
    llock_acquire(&reg_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    llock_release(&reg_lock);
    free(c);
}

/* The head has arrived: from now on the connection is not evictable. */
static void conn_head_done(conn_state *c) {
    llock_acquire(&reg_lock);
    c->reading = false;
    llock_release(&reg_lock);
}

/* Makes room at the cap: shuts down the connection that has waited
 * longest for its head (its read then ends at once, and it leaves);
 * false if every connection is being answered. */
static bool conn_evict_slowest(void) {
    llock_acquire(&reg_lock);
    conn_state *victim = NULL;
    for (conn_state *c = conns; c; c = c->next)
        if (c->reading && (!victim || c->since < victim->since))
            victim = c;
    if (victim) {
        victim->reading = false; /* evicted once */
        shutdown(victim->fd, SHUT_RDWR);
    }
    llock_release(&reg_lock);
    return victim != NULL;
}

/* ------------------------------------------------------------ addresses */

bool http_is_loopback(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) &&
               a->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

/* "host:port", ":port", "[v6]:port", "port", NULL or "" (127.0.0.1:0). */
static int parse_addr(const char *addr, struct sockaddr_storage *ss,
                      socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    char host[128] = "";
    const char *port = addr ? addr : "";
    if (addr && *addr) {
        const char *colon;
        if (addr[0] == '[') {
            const char *rb = strchr(addr, ']');
            if (!rb || rb[1] != ':' || (size_t)(rb - addr - 1) >= sizeof host)
                return LEASH_EINVAL;
            memcpy(host, addr + 1, (size_t)(rb - addr - 1));
            host[rb - addr - 1] = 0;
            port = rb + 2;
        } else if ((colon = strrchr(addr, ':'))) {
            if (memchr(addr, ':', (size_t)(colon - addr)) ||
                (size_t)(colon - addr) >= sizeof host)
                return LEASH_EINVAL; /* a bare IPv6 address needs [] */
            memcpy(host, addr, (size_t)(colon - addr));
            host[colon - addr] = 0;
            port = colon + 1;
        }
    }
    long p = 0;
    if (*port) {
        if (strlen(port) > 5)
            return LEASH_EINVAL;
        for (const char *c = port; *c; c++) {
            if (*c < '0' || *c > '9')
                return LEASH_EINVAL;
            p = p * 10 + (*c - '0');
        }
        if (p > 65535)
            return LEASH_EINVAL;
    } else if (addr && *addr) {
        return LEASH_EINVAL; /* "host:" */
    }
    struct sockaddr_in *a4 = (void *)ss;
    struct sockaddr_in6 *a6 = (void *)ss;
    if (!host[0] || !strcmp(host, "localhost")) {
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a4->sin_port = htons((uint16_t)p);
        *len = sizeof *a4;
    } else if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)p);
        *len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)p);
        *len = sizeof *a6;
    } else {
        return LEASH_EINVAL; /* names other than localhost: not resolved */
    }
    return 0;
}

/* Host header of a request to a loopback listener: a loopback name. */
bool http_host_ok(const char *h) {
    char name[256];
    snprintf(name, sizeof name, "%s", h);
    if (name[0] == '[') {
        char *rb = strchr(name, ']');
        if (!rb)
            return false;
        *rb = 0;
        memmove(name, name + 1, strlen(name + 1) + 1);
    } else {
        char *colon = strrchr(name, ':');
        if (colon && !memchr(name, ':', (size_t)(colon - name)))
            *colon = 0;
    }
    if (!strcasecmp(name, "localhost"))
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, name, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, name, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/* ------------------------------------------------------------ writing */

static int send_all(int fd, const char *p, size_t n, int64_t deadline) {
    while (n) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        int e = r < 0 ? errno_now() : EAGAIN; /* this loop parks */
        if (e == EINTR)
            continue;
        if (e != EAGAIN)
            return -e;
        int rc = leash_fd_wait(fd, LEASH_POLLOUT, deadline);
        if (rc < 0)
            return rc;
    }
    return 0;
}

typedef http_conn conn;

/* The standalone server's write function: c->fd, bounded by c->deadline. */
static int fd_write(void *arg, const void *p, size_t n) {
    conn *c = arg;
    return send_all(c->fd, p, n, c->deadline);
}

static int conn_write(conn *c, const void *p, size_t n) {
    if (c->err < 0)
        return c->err;
    int rc = c->write(c->arg, p, n);
    if (rc < 0)
        c->err = rc;
    return rc < 0 ? rc : 0;
}

static void respond(conn *c, int status, const char *ctype,
                    const char *extra, const char *body, size_t n) {
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\n"
                      "Content-Type: %s\r\n"
                      "Content-Length: %zu\r\n"
                      "X-Content-Type-Options: nosniff\r\n"
                      "%s%s\r\n",
                      status, http_status_text(status), ctype, n,
                      extra ? extra : "",
                      c->close ? "Connection: close\r\n" : "");
    if (hn < 0 || (size_t)hn >= sizeof head)
        return;
    c->status = status;
    if (conn_write(c, head, (size_t)hn) < 0)
        return;
    if (!c->head_only && n)
        conn_write(c, body, n);
}

static void respond_error(conn *c, int status, const char *detail) {
    char body[256];
    int n = snprintf(body, sizeof body, "%d %s%s%s\n", status,
                     http_status_text(status), detail ? ": " : "",
                     detail ? detail : "");
    const char *extra = status == 405 ? "Allow: GET, HEAD\r\n" : NULL;
    respond(c, status, "text/plain; charset=utf-8", extra, body,
            n > 0 && (size_t)n < sizeof body ? (size_t)n : 0);
}

/* ------------------------------------------------------------ routes */

enum { B_DUMP, B_LEAK_DUMP, B_METRICS, B_BLOCK, B_MUTEX };

/* Builds a body in memory; 0 or LEASH_E*. */
static int build(int what, int debug, char **buf, size_t *n) {
    *buf = NULL;
    *n = 0;
    FILE *f = open_memstream(buf, n);
    if (!f)
        return LEASH_ENOMEM;
    int rc;
    switch (what) {
    case B_DUMP: rc = leash_dump(f, debug); break;
    case B_LEAK_DUMP: rc = leash_leak_dump(f, debug); break;
    case B_BLOCK: rc = leash_profile_write(f, "block", debug); break;
    case B_MUTEX: rc = leash_profile_write(f, "mutex", debug); break;
    default: rc = dbg_write_metrics(f); break;
    }
    if (fclose(f) != 0 && rc >= 0)
        rc = LEASH_ENOMEM;
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
        return rc;
    }
    return 0;
}

static void serve_built(conn *c, int what, int debug, const char *ctype,
                        const char *extra) {
    char *buf;
    size_t n;
    int rc = build(what, debug, &buf, &n);
    if (rc < 0) {
        respond_error(c, 500, leash_strerror(rc));
        return;
    }
    respond(c, 200, ctype, extra, buf, n);
    free(buf);
}

static void serve_profile(conn *c, const http_request *r, bool leak) {
    char v[16];
    int debug = 0;
    int q = http_query_get(r->query, "debug", v, sizeof v);
    if (q < 0 || (q == 1 && (strlen(v) != 1 || v[0] < '0' || v[0] > '2'))) {
        respond_error(c, 400, "debug must be 0, 1 or 2");
        return;
    }
    if (q == 1)
        debug = v[0] - '0';
    int what = leak ? B_LEAK_DUMP : B_DUMP;
    if (debug == 0)
        serve_built(c, what, 0, "application/octet-stream",
                    leak ? "Content-Disposition: attachment; "
                           "filename=\"goroutineleak\"\r\n"
                         : "Content-Disposition: attachment; "
                           "filename=\"goroutine\"\r\n");
    else
        serve_built(c, what, debug, "text/plain; charset=utf-8", NULL);
}

/* /debug/pprof/block and /mutex: debug=0 (pprof) or 1 (Go's text). */
static void serve_contention(conn *c, const http_request *r, bool mutex) {
    char v[16];
    int q = http_query_get(r->query, "debug", v, sizeof v);
    if (q < 0 || (q == 1 && strcmp(v, "0") && strcmp(v, "1"))) {
        respond_error(c, 400, "debug must be 0 or 1");
        return;
    }
    char sv[16];
    if (http_query_get(r->query, "seconds", sv, sizeof sv) != 0) {
        respond_error(c, 400, "seconds (a delta profile) is not supported: "
                              "the profile is cumulative");
        return;
    }
    if (q == 1 && v[0] == '1')
        serve_built(c, mutex ? B_MUTEX : B_BLOCK, 1,
                    "text/plain; charset=utf-8", NULL);
    else
        serve_built(c, mutex ? B_MUTEX : B_BLOCK, 0,
                    "application/octet-stream",
                    mutex ? "Content-Disposition: attachment; "
                            "filename=\"mutex\"\r\n"
                          : "Content-Disposition: attachment; "
                            "filename=\"block\"\r\n");
}

/* /debug/pprof/profile?seconds=N: N in 1..CPU_MAX_S (default 30). */
#define CPU_MAX_S 600
/* The `seconds` query parameter: def when absent, -1 when malformed or
 * outside 1..max. */
static long query_seconds(const http_request *r, long def, long max) {
    char v[16];
    long sec = def;
    int q = http_query_get(r->query, "seconds", v, sizeof v);
    if (q == 1) {
        char *end;
        errno = 0;
        sec = strtol(v, &end, 10);
        if (!v[0] || *end || errno || v[0] == '-' || v[0] == '+')
            sec = -1;
    }
    return q < 0 || sec < 1 || sec > max ? -1 : sec;
}

/* A route that records for `seconds` (query, default dflt, 1..max) with
 * record(out, ns) and answers what it wrote: the CPU profile, the trace. */
typedef struct {
    long dflt, max;
    int (*record)(FILE *out, int64_t ns);
    const char *bad_seconds, *busy, *type, *headers;
} timed_route;

static void serve_timed(conn *c, const http_request *r, const timed_route *t) {
    long sec = query_seconds(r, t->dflt, t->max);
    if (sec < 0) {
        respond_error(c, 400, t->bad_seconds);
        return;
    }
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) {
        respond_error(c, 500, "out of memory");
        return;
    }
    int rc = t->record(f, sec * INT64_C(1000000000));
    if (fclose(f) != 0 && rc >= 0)
        rc = LEASH_ENOMEM;
    c->deadline = leash_now() + WRITE_TIMEOUT_NS; /* it took `sec` */
    if (rc == -EBUSY)
        respond_error(c, 409, t->busy);
    else if (rc == -ENOTSUP)
        respond_error(c, 501, "not available in ThreadSanitizer builds");
    else if (rc < 0)
        respond_error(c, 500, leash_strerror(rc));
    else
        respond(c, 200, t->type, t->headers, buf, n);
    free(buf);
}

/* /debug/pprof/profile?seconds=N: the CPU profile (cpuprof.c). */
static const timed_route cpu_route = {
    30, CPU_MAX_S, leash_cpu_profile,
    "seconds must be a whole number from 1 to 600",
    "cpu profiling already in use", "application/octet-stream",
    "Content-Disposition: attachment; filename=\"profile\"\r\n"};

/* /debug/leash/trace?seconds=N: the execution trace (trace.c), N in
 * 1..60 (default 5). */
static const timed_route trace_route = {
    5, 60, leash_trace, "seconds must be a whole number from 1 to 60",
    "a trace is already running", "application/json",
    "Content-Disposition: attachment; filename=\"trace.json\"\r\n"};

static void serve_leash(conn *c, const http_request *r) {
    char v[16];
    int q = http_query_get(r->query, "format", v, sizeof v);
    bool json = q == 1 && !strcmp(v, "json");
    if (q < 0 || (q == 1 && !json && strcmp(v, "text"))) {
        respond_error(c, 400, "format must be text or json");
        return;
    }
    if (json)
        serve_built(c, B_DUMP, LEASH_DUMP_JSON, "application/json", NULL);
    else
        serve_built(c, B_DUMP, LEASH_DUMP_LEASH, "text/plain; charset=utf-8",
                    NULL);
}

static void serve_index(conn *c) {
    dbg_vitals v;
    if (dbg_vitals_get(&v) < 0)
        memset(&v, 0, sizeof v);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) {
        respond_error(c, 500, "out of memory");
        return;
    }
    fprintf(f,
        "<html>\n<head>\n<title>/debug/pprof/</title>\n"
        "<style>.profile-name{display:inline-block; width:8rem;}</style>\n"
        "</head>\n<body>\n/debug/pprof/\n<br>\n"
        "<p>Set debug=1 as a query parameter to export in legacy text "
        "format</p>\n<br>\nTypes of profiles available:\n<table>\n"
        "<thead><td>Count</td><td>Profile</td></thead>\n"
        "<tr><td>%" PRId64 "</td><td><a href='/debug/pprof/goroutine?debug=1'>"
        "goroutine</a></td></tr>\n"
        "<tr><td>%" PRId64 "</td><td><a href='/debug/pprof/goroutineleak?debug=1'>"
        "goroutineleak</a></td></tr>\n"
        "<tr><td></td><td><a href='/debug/pprof/block?debug=1'>block</a></td></tr>\n"
        "<tr><td></td><td><a href='/debug/pprof/mutex?debug=1'>mutex</a></td></tr>\n"
        "<tr><td></td><td><a href='/debug/pprof/profile'>profile</a></td></tr>\n"
        "</table>\n"
        "<a href='/debug/pprof/goroutine?debug=2'>full goroutine stack dump</a>\n"
        "<br>\n<p>\nProfile Descriptions:\n<ul>\n"
        "<li><div class=profile-name>goroutine: </div> Stack traces of all "
        "current coroutines. Use debug=2 as a query parameter to export in "
        "the same format as an unrecovered panic.</li>\n"
        "<li><div class=profile-name>goroutineleak: </div> Stack traces of "
        "the coroutines proven leaked: blocked forever on a nil or orphaned "
        "channel, or deadlocked.</li>\n"
        "<li><div class=profile-name>block: </div> Stack traces that led to "
        "blocking on synchronization primitives (leash_set_block_profile_rate "
        "or LEASH_BLOCKPROFILERATE turns it on).</li>\n"
        "<li><div class=profile-name>mutex: </div> Stack traces of holders of "
        "contended mutexes (leash_set_mutex_profile_fraction or "
        "LEASH_MUTEXPROFILEFRACTION turns it on).</li>\n"
        "<li><div class=profile-name>profile: </div> CPU profile. You can "
        "specify the duration in the seconds GET parameter (default 30, at "
        "most 600). After you get the profile file, use the go tool pprof "
        "command to investigate the profile.</li>\n</ul>\n</p>\n"
        "<p>leash: <a href='/debug/leash/'>live page</a>, "
        "<a href='/debug/leash'>leash dump</a> (exact waits, wait "
        "objects, spawn sites; <a href='/debug/leash?format=json'>JSON</a>), "
        "<a href='/metrics'>metrics</a> (Prometheus).</p>\n"
        "</body>\n</html>\n",
        v.coroutines, v.leaked);
    if (fclose(f) != 0) {
        free(buf);
        respond_error(c, 500, "out of memory");
        return;
    }
    respond(c, 200, "text/html; charset=utf-8", NULL, buf, n);
    free(buf);
}

static void serve_live(conn *c) {
    char *buf;
    size_t n;
    int rc = live_page(&buf, &n);
    if (rc < 0) {
        respond_error(c, 500, leash_strerror(rc));
        return;
    }
    respond(c, 200, "text/html; charset=utf-8", NULL, buf, n);
    free(buf);
}

static void route(conn *c, const http_request *r, bool allow_remote) {
    bool get = !strcmp(r->method, "GET");
    c->head_only = !strcmp(r->method, "HEAD");
    if (!get && !c->head_only) {
        respond_error(c, 405, "only GET and HEAD");
        return;
    }
    const char *p = r->path;
    if (c->metrics_only && strcmp(p, "/metrics")) {
        respond_error(c, 404, "this listener serves /metrics only");
        return;
    }
    if (!allow_remote && !c->metrics_only && r->has_host &&
        !http_host_ok(r->host)) {
        respond_error(c, 403, "Host is not a loopback name "
                              "(LEASH_DEBUG_ALLOW_REMOTE=1 allows it)");
        return;
    }
    if (!strcmp(p, "/debug/pprof/") || !strcmp(p, "/debug/pprof"))
        serve_index(c);
    else if (!strcmp(p, "/debug/pprof/goroutine"))
        serve_profile(c, r, false);
    else if (!strcmp(p, "/debug/pprof/goroutineleak"))
        serve_profile(c, r, true);
    else if (!strcmp(p, "/debug/pprof/block") ||
             !strcmp(p, "/debug/pprof/mutex"))
        serve_contention(c, r, p[13] == 'm');
    else if (!strcmp(p, "/debug/pprof/profile"))
        serve_timed(c, r, &cpu_route);
    else if (!strcmp(p, "/debug/leash"))
        serve_leash(c, r);
    else if (!strcmp(p, "/debug/leash/"))
        serve_live(c);
    else if (!strcmp(p, "/debug/leash/trace"))
        serve_timed(c, r, &trace_route);
    else if (!strcmp(p, "/metrics"))
        serve_built(c, B_METRICS, 0, "text/plain; version=0.0.4; charset=utf-8",
                    NULL);
    else
        respond_error(c, 404, "see /debug/pprof/");
}

void http_serve(http_conn *c, const http_request *r, bool allow_remote) {
    route(c, r, allow_remote);
}

void http_serve_error(http_conn *c, int status, const char *detail) {
    respond_error(c, status, detail);
}

const char *http_parse_error_text(int rc) {
    return rc == -413 ? "request head too large"
           : rc == -414 ? "request target too long"
           : rc == -505 ? "only HTTP/1.0 and 1.1"
                        : "malformed request";
}

int64_t http_header_timeout_ns(void) {
    const char *name = env_str("LEASH_DEBUG_HEADER_TIMEOUT_MS")
                           ? "LEASH_DEBUG_HEADER_TIMEOUT_MS"
                           : "LEASH_DEBUG_TIMEOUT_MS";
    return (int64_t)env_u64(name, 5000, 1, 3600000) * 1000000;
}

/* ------------------------------------------------------------ connections */

/* After answering: stop sending, and read (bounded) until the client
 * closes, so that unread input does not turn our close into a reset
 * that could destroy the answer in flight. */
static void linger_close(int fd) {
    shutdown(fd, SHUT_WR);
    char sink[1024];
    int64_t until = leash_now() + 500000000;
    for (int i = 0; i < 64; i++)
        if (leash_read(fd, sink, sizeof sink, until) <= 0)
            break;
    leash_fd_close(fd);
}

typedef struct {
    int fd;
    bool allow_remote;
    bool metrics_only;
} conn_arg;

static void serve_conn(void *p) {
    conn_arg a = *(conn_arg *)p;
    free(p);
    leash_set_name("leash/http-conn");
    conn_state *st = conn_new(a.fd);
    conn c = {.fd = a.fd, .deadline = leash_now() + http_header_timeout_ns(),
              .write = fd_write, .close = true, .metrics_only = a.metrics_only};
    c.arg = &c;
    if (!st) {
        respond_error(&c, 503, "out of memory");
        goto out;
    }
    char *buf = st->buf;
    http_request *req = &st->req;
    size_t len = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = leash_read(a.fd, buf + len, HTTP_MAX_HEAD - len,
                               c.deadline);
        if (r == LEASH_ETIMEDOUT) {
            c.deadline = leash_now() + 1000000000;
            respond_error(&c, 408, "request head not received in time");
            goto out;
        }
        if (r <= 0)
            goto out; /* the client went away */
        len += (size_t)r;
        rc = http_parse_request(buf, len, req);
        if (rc != 0)
            break;
    }
    conn_head_done(st);
    c.deadline = leash_now() + WRITE_TIMEOUT_NS;
    if (rc < 0)
        respond_error(&c, -rc, http_parse_error_text(rc));
    else
        route(&c, req, a.allow_remote);
out:
    conn_free(st);
    linger_close(a.fd);
    atomic_fetch_sub(&active_conns, 1);
}

static void accept_loop(void *p) {
    /* It and the connections it serves wake no user coroutine. */
    atomic_store(&sched_getg()->system, true);
    server *sv = p;
    leash_set_name("leash/http");
    for (;;) {
        /* A deadline, renewed: waiting for clients is not a suspect. */
        int c = leash_accept(sv->fd, NULL, NULL, leash_now() + ACCEPT_SLICE_NS);
        if (c == LEASH_ETIMEDOUT)
            continue;
        /* -EINVAL: leash_debug_stop shut the socket down. */
        if (c == LEASH_ECLOSED || c == -EBADF || c == -EINVAL ||
            c == -ENOTSOCK)
            break;
        if (c < 0) { /* EMFILE and the like: back off */
            leash_sleep(100000000);
            continue;
        }
        conn_arg *a = malloc(sizeof *a);
        if (!a) {
            close(c);
            continue;
        }
        /* At the cap, an evicted connection leaves within moments: the
         * new one may run alongside it meanwhile. */
        if (atomic_fetch_add(&active_conns, 1) >= sv->max_conns &&
            !conn_evict_slowest()) {
            atomic_fetch_sub(&active_conns, 1);
            free(a);
            close(c);
            continue;
        }
        *a = (conn_arg){c, sv->allow_remote, sv->metrics_only};
        if (leash_go(serve_conn, a) < 0) {
            atomic_fetch_sub(&active_conns, 1);
            free(a);
            close(c);
        }
    }
    /* The loop owns the listening fd: closed here, after its last use,
     * so no accept can ever touch a reused number. */
    int fd = sv->fd;
    server_free(sv); /* unlisted first: leash_debug_stop no longer uses fd */
    leash_fd_close(fd);
    atomic_fetch_sub(&listening, 1);
}

/* Stops every endpoint: shutdown(2) on a listening socket wakes its
 * accept with EINVAL, and its loop closes it and leaves. Connections
 * being served finish on their own (they have deadlines). Returns once
 * every listening socket is closed (or after 5 s): how many there were. */
int leash_debug_stop(void) {
    if (fork_refuse("leash_debug_stop"))
        return LEASH_EINVAL;
    int n = 0;
    llock_acquire(&reg_lock);
    for (server *sv = servers; sv; sv = sv->next, n++)
        shutdown(sv->fd, SHUT_RDWR);
    llock_release(&reg_lock);
    int64_t until = leash_now() + 5 * INT64_C(1000000000);
    while (n > 0 && leash_now() < until) {
        if (atomic_load(&listening) == 0)
            break;
        leash_sleep(1000000);
    }
    return n;
}

/* A metrics-only listener may bind any address: /metrics tells nothing
 * a scraper on another host should not know, and nothing else is served. */
static int listen_on(const char *addr, bool metrics_only) {
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = parse_addr(addr, &ss, &sl);
    if (rc < 0)
        return rc;
    bool allow_remote = env_bool("LEASH_DEBUG_ALLOW_REMOTE", false);
    if (!http_is_loopback(&ss) && !allow_remote && !metrics_only)
        return -EACCES;
    if ((rc = sched_ensure_started()) < 0)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* A deep backlog: a burst of clients waits to be accepted (and
     * evicted, if slow) rather than being refused by the kernel. */
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &bl) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    int port = ntohs(bound.ss_family == AF_INET
                         ? ((struct sockaddr_in *)&bound)->sin_port
                         : ((struct sockaddr_in6 *)&bound)->sin6_port);
    server *sv = malloc(sizeof *sv);
    if (!sv) {
        close(fd);
        return LEASH_ENOMEM;
    }
    *sv = (server){fd, allow_remote, metrics_only,
                   (int)env_u64("LEASH_DEBUG_MAX_CONNS", MAX_CONNS_DEFAULT, 1,
                                65536),
                   NULL};
    atomic_fetch_add(&listening, 1);
    llock_acquire(&reg_lock);
    sv->next = servers;
    servers = sv;
    llock_release(&reg_lock);
    /* The server belongs to no test's leak scope. */
    coroutine *g = sched_getg();
    int64_t scope = g ? g->scope : 0;
    if (g)
        __atomic_store_n(&g->scope, 0, __ATOMIC_RELAXED); /* dumps read it */
    int64_t id = leash_go(accept_loop, sv);
    if (g)
        __atomic_store_n(&g->scope, scope, __ATOMIC_RELAXED);
    if (id < 0) {
        server_free(sv);
        close(fd);
        atomic_fetch_sub(&listening, 1);
        return (int)id;
    }
    return port;
}

int leash_debug_listen(const char *addr) {
    if (fork_refuse("leash_debug_listen"))
        return LEASH_EINVAL;
    return listen_on(addr, false);
}

int leash_metrics_listen(const char *addr) {
    if (fork_refuse("leash_metrics_listen"))
        return LEASH_EINVAL;
    return listen_on(addr, true);
}
