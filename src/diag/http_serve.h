/* SPDX-License-Identifier: MIT */
/*
 * http_serve.h — the debug routes, answered through a write function:
 * shared by the standalone endpoint (http.c: its own port) and the
 * embedding API (embed.c: leash_debug_handle, leash_debug_serve_conn).
 */
#ifndef LEASH_HTTP_SERVE_H
#define LEASH_HTTP_SERVE_H

#include "http_parse.h"

#include <sys/socket.h>

/* Writes all n bytes: 0, or a negative error (the answer then stops). */
typedef int (*http_write_fn)(void *arg, const void *p, size_t n);

/* One request being answered. */
typedef struct {
    int fd;            /* the standalone server's socket; -1 if embedded */
    bool head_only;    /* HEAD: no body (set by the router) */
    int64_t deadline;  /* the standalone server's write deadline */
    http_write_fn write;
    void *arg;
    bool close;        /* the answer says "Connection: close" */
    bool metrics_only; /* every path but /metrics is 404 */
    int status;        /* out: the status answered (0: none yet) */
    int err;           /* out: the first write error (0: none) */
} http_conn;

/* Answers r: the routes of http.c. With allow_remote false, a request
 * whose Host is not a loopback name gets 403 (not on metrics_only). */
INTERNAL void http_serve(http_conn *c, const http_request *r,
                         bool allow_remote);
/* Answers `status` with a one-line text body. */
INTERNAL void http_serve_error(http_conn *c, int status, const char *detail);
/* The detail for http_parse_request's negative result. */
INTERNAL const char *http_parse_error_text(int rc);
/* LEASH_DEBUG_HEADER_TIMEOUT_MS (or its older name) in ns. */
INTERNAL int64_t http_header_timeout_ns(void);
INTERNAL bool http_is_loopback(const struct sockaddr_storage *ss);
INTERNAL bool http_host_ok(const char *h); /* a loopback name or address */

#endif /* LEASH_HTTP_SERVE_H */
