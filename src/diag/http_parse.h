/* SPDX-License-Identifier: MIT */
/*
 * http_parse.h — the debug endpoint's HTTP/1.x request parser.
 *
 * Pure functions over a byte buffer: no allocation, no runtime, no I/O,
 * so that tests/fuzz_http.c can compile http_parse.c on its own under
 * libFuzzer. Everything is bounded: the request line and headers together
 * may not exceed HTTP_MAX_HEAD bytes, the target HTTP_MAX_TARGET, and at
 * most HTTP_MAX_HEADERS header fields are accepted.
 */
#ifndef LEASH_HTTP_PARSE_H
#define LEASH_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef INTERNAL
#define INTERNAL __attribute__((visibility("hidden")))
#endif

#define HTTP_MAX_HEAD 8192    /* request line + headers + blank line */
#define HTTP_MAX_TARGET 2048  /* request-target */
#define HTTP_MAX_HEADERS 64

typedef struct {
    char method[16];
    char path[HTTP_MAX_TARGET];  /* percent-decoded, starts with '/' */
    char query[HTTP_MAX_TARGET]; /* raw, after '?' (may be empty) */
    int minor;                   /* HTTP/1.<minor>: 0 or 1 */
    char host[256];              /* Host header ("" if none) */
    bool has_host;
    bool conn_close;             /* Connection: close */
    int64_t content_length;      /* -1: none */
    bool chunked;                /* Transfer-Encoding: chunked */
    int nheaders;
} http_request;

/* Parses the head of a request in buf[0, len).
 *   > 0  the head is complete and valid: its length in bytes (the body,
 *        if any, follows);
 *   0    incomplete so far: read more (never when len >= HTTP_MAX_HEAD);
 *   < 0  -status of the error to answer: -400 malformed, -413 head too
 *        large or too many fields, -414 target too long, -505 HTTP
 *        version not supported.
 * A request line that is complete and invalid is rejected at once, even
 * before the headers arrive. Both CRLF and bare LF end lines. */
INTERNAL int http_parse_request(const char *buf, size_t len, http_request *req);

/* Looks `key` up in a raw query string ("a=1&b=%32"), decoding '+' and
 * %XX in keys and values: 1 and the decoded value in out[0, n) if found,
 * 0 if absent, -1 if malformed or the value does not fit. */
INTERNAL int http_query_get(const char *query, const char *key, char *out,
                            size_t n);

/* Reason phrase of a status code ("Bad Request"), "Unknown" if unknown. */
INTERNAL const char *http_status_text(int status);

#endif /* LEASH_HTTP_PARSE_H */
