/* SPDX-License-Identifier: MIT */
/*
 * embed.c — the debug routes inside an application's own HTTP server:
 *
 *   leash_debug_handle(method, target, flags, write, arg)
 *       answers one request whose head the application has parsed: a
 *       complete HTTP/1.1 response (status line, headers, body) through
 *       its write function; returns the status;
 *   leash_debug_serve_conn(conn, flags)
 *       reads one request head from a leash_conn and answers it (the
 *       application hands over a connection, e.g. from a port of its own);
 *   leash_metrics_write(FILE *)
 *       the /metrics text, for an application that serves it its own way.
 *
 * Both request paths use the endpoint's own parser and routes (http.c),
 * so a target is checked the same strict way wherever it comes from: a
 * malformed one is 400, one longer than HTTP_MAX_TARGET 414, an unknown
 * path 404, a method other than GET or HEAD 405.
 *
 * Who may see what: leash_debug_handle trusts its caller (it cannot see
 * the peer; the application mounts the routes behind its own access
 * control, or passes LEASH_DEBUG_METRICS_ONLY). leash_debug_serve_conn
 * can see the peer: every route but /metrics needs a loopback (or Unix
 * socket) peer and a loopback Host header, unless
 * LEASH_DEBUG_ALLOW_REMOTE=1, as the standalone endpoint does.
 */
#define _GNU_SOURCE 1
#include "debug.h"
#include "http_serve.h"

#include <errno.h>
#include <sys/socket.h>

#define WRITE_TIMEOUT_NS (30 * INT64_C(1000000000))

typedef struct {
    leash_debug_write_fn fn;
    void *arg;
} user_writer;

static int user_write(void *arg, const void *p, size_t n) {
    user_writer *w = arg;
    int rc = w->fn(w->arg, p, n);
    return rc < 0 ? rc : 0;
}

static bool token_ok(const char *m) {
    if (!*m)
        return false;
    for (; *m; m++) {
        unsigned char c = (unsigned char)*m;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
            return false;
    }
    return true;
}

int leash_debug_handle(const char *method, const char *target, unsigned flags,
                       leash_debug_write_fn write, void *arg) {
    if (!method || !target || !write || (flags & ~LEASH_DEBUG_METRICS_ONLY))
        return LEASH_EINVAL;
    user_writer w = {write, arg};
    http_conn c = {.fd = -1, .write = user_write, .arg = &w,
                   .metrics_only = flags & LEASH_DEBUG_METRICS_ONLY};
    size_t mlen = strnlen(method, 16), tlen = strnlen(target, HTTP_MAX_TARGET);
    if (mlen >= 16 || !token_ok(method)) {
        http_serve_error(&c, 400, "malformed method");
        return c.err < 0 ? c.err : c.status;
    }
    if (tlen >= HTTP_MAX_TARGET) {
        http_serve_error(&c, 414, http_parse_error_text(-414));
        return c.err < 0 ? c.err : c.status;
    }
    /* The target goes through the endpoint's own parser, as a request
     * line: a space or a control byte in it makes the line malformed. */
    size_t cap = mlen + tlen + 16;
    char *line = malloc(cap);
    http_request *req = malloc(sizeof *req);
    if (!line || !req) {
        free(line);
        free(req);
        http_serve_error(&c, 503, "out of memory");
        return c.err < 0 ? c.err : c.status;
    }
    int n = snprintf(line, cap, "%s %s HTTP/1.0\r\n\r\n", method, target);
    int rc = n > 0 && (size_t)n < cap
                 ? http_parse_request(line, (size_t)n, req) : -400;
    if (rc == 0)
        rc = -400; /* cannot be: the line is complete */
    if (rc < 0)
        http_serve_error(&c, -rc, http_parse_error_text(rc));
    else
        http_serve(&c, req, true);
    free(line);
    free(req);
    return c.err < 0 ? c.err : c.status;
}

/* ------------------------------------------------------------ a connection */

static int lconn_write(void *arg, const void *p, size_t n) {
    ssize_t w = leash_conn_write(arg, p, n);
    if (w < 0)
        return (int)w;
    return (size_t)w == n ? 0 : -EPIPE;
}

/* Whether the peer may see more than /metrics: a loopback or Unix
 * socket peer (or not a socket: a pipe, a tty). */
static bool peer_local(leash_conn *lc) {
    int fd = leash_conn_fd(lc);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return true;
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        return true;
    return http_is_loopback(&ss);
}

int leash_debug_serve_conn(leash_conn *lc, unsigned flags) {
    if (!lc || (flags & ~LEASH_DEBUG_METRICS_ONLY))
        return LEASH_EINVAL;
    int fd = leash_conn_fd(lc);
    if (fd < 0)
        return fd;
    struct {
        http_request req;
        char buf[HTTP_MAX_HEAD];
    } *st = malloc(sizeof *st);
    if (!st)
        return LEASH_ENOMEM;
    bool allow_remote = env_bool("LEASH_DEBUG_ALLOW_REMOTE", false);
    http_conn c = {.fd = -1, .write = lconn_write, .arg = lc, .close = true,
                   .metrics_only = (flags & LEASH_DEBUG_METRICS_ONLY) ||
                                   (!allow_remote && !peer_local(lc))};
    leash_conn_set_read_deadline(lc, leash_now() + http_header_timeout_ns());
    size_t len = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = leash_conn_read(lc, st->buf + len, HTTP_MAX_HEAD - len);
        if (r == LEASH_ETIMEDOUT) {
            leash_conn_set_write_deadline(lc, leash_now() + 1000000000);
            http_serve_error(&c, 408, "request head not received in time");
            goto out;
        }
        if (r <= 0) { /* the client went away */
            c.err = r < 0 ? (int)r : LEASH_ECLOSED;
            goto out;
        }
        len += (size_t)r;
        if ((rc = http_parse_request(st->buf, len, &st->req)) != 0)
            break;
    }
    leash_conn_set_write_deadline(lc, leash_now() + WRITE_TIMEOUT_NS);
    if (rc < 0)
        http_serve_error(&c, -rc, http_parse_error_text(rc));
    else if (c.metrics_only && !(flags & LEASH_DEBUG_METRICS_ONLY) &&
             strcmp(st->req.path, "/metrics"))
        http_serve_error(&c, 403, "only /metrics is served to a "
                                  "non-loopback peer "
                                  "(LEASH_DEBUG_ALLOW_REMOTE=1 allows more)");
    else
        http_serve(&c, &st->req, allow_remote);
out:
    leash_conn_set_deadline(lc, -1);
    free(st);
    return c.err < 0 ? c.err : c.status;
}

/* ------------------------------------------------------------ metrics */

int leash_metrics_write(FILE *out) {
    if (!out)
        return LEASH_EINVAL;
    return dbg_write_metrics(out);
}
