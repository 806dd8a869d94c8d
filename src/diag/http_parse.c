/* SPDX-License-Identifier: MIT */
/*
 * http_parse.c — a strict, bounded HTTP/1.x request-head parser for the
 * debug endpoint (http.c). See http_parse.h for the contract; fuzzed by
 * tests/fuzz_http.c.
 *
 * Strictness follows RFC 9112 where it matters for safety: single spaces
 * in the request line, token method and header names, no whitespace
 * before a header's colon, no obsolete line folding, no control bytes in
 * values, one Host, consistent Content-Length, not both Content-Length and
 * Transfer-Encoding, and a Host header in HTTP/1.1.
 */
#include "http_parse.h"

#include <string.h>

static bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static bool ieq(const char *a, size_t an, const char *b) {
    size_t bn = strlen(b);
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes %XX (and '+' as a space when `plus`) from s[0, n) into out,
 * NUL-terminated: the decoded length, or -1 (bad escape, a NUL byte, or
 * out too small). */
static int pct_decode(const char *s, size_t n, char *out, size_t cap,
                      bool plus) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval((unsigned char)s[i + 1]),
                l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -1;
    out[o] = 0;
    return (int)o;
}

/* ------------------------------------------------------- request line */

static int parse_version(const char *v, size_t n, http_request *req) {
    if (n != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[5] < '0' ||
        v[5] > '9' || v[7] < '0' || v[7] > '9')
        return -400;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return -505;
    req->minor = v[7] - '0';
    return 0;
}

static int parse_target(const char *t, size_t n, http_request *req) {
    if (n >= HTTP_MAX_TARGET)
        return -414;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= 0x20 || c >= 0x7f)
            return -400;
    }
    /* absolute-form (http://host/path): keep the path. */
    size_t skip = 0;
    if (n >= 7 && ieq(t, 7, "http://"))
        skip = 7;
    else if (n >= 8 && ieq(t, 8, "https://"))
        skip = 8;
    if (skip) {
        const char *slash = memchr(t + skip, '/', n - skip);
        const char *q = memchr(t + skip, '?', n - skip);
        if (q && (!slash || q < slash))
            return -400;
        if (!slash) {
            t = "/";
            n = 1;
        } else {
            n -= (size_t)(slash - t);
            t = slash;
        }
    }
    if (n == 0 || t[0] != '/')
        return -400;
    const char *hash = memchr(t, '#', n);
    if (hash)
        n = (size_t)(hash - t);
    const char *q = memchr(t, '?', n);
    size_t pn = q ? (size_t)(q - t) : n;
    if (pct_decode(t, pn, req->path, sizeof req->path, false) < 0)
        return -400;
    size_t qn = q ? n - pn - 1 : 0;
    memcpy(req->query, q ? q + 1 : "", qn);
    req->query[qn] = 0;
    return 0;
}

static int parse_request_line(const char *l, size_t n, http_request *req) {
    const char *sp1 = memchr(l, ' ', n);
    if (!sp1 || sp1 == l || (size_t)(sp1 - l) >= sizeof req->method)
        return -400;
    for (const char *p = l; p < sp1; p++)
        if (!is_tchar((unsigned char)*p))
            return -400;
    memcpy(req->method, l, (size_t)(sp1 - l));
    req->method[sp1 - l] = 0;
    const char *t = sp1 + 1, *end = l + n;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || sp2 == t)
        return -400;
    int rc = parse_version(sp2 + 1, (size_t)(end - sp2 - 1), req);
    if (rc < 0)
        return rc;
    return parse_target(t, (size_t)(sp2 - t), req);
}

/* A request line still arriving: reject what cannot become valid. */
#define METHOD_MAX (sizeof ((http_request *)0)->method)
static int check_partial_line(const char *buf, size_t len) {
    size_t i = 0;
    for (; i < len && buf[i] != ' '; i++)
        if (!is_tchar((unsigned char)buf[i]) || i + 1 >= METHOD_MAX)
            return -400;
    if (i == 0 && len > 0)
        return -400;
    if (len > METHOD_MAX + HTTP_MAX_TARGET + 16)
        return -414;
    return 0;
}

/* ------------------------------------------------------------ headers */

static bool list_has(const char *v, size_t n, const char *tok) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && ieq(v + s, e - s, tok))
            return true;
    }
    return false;
}

static int parse_header(const char *l, size_t n, http_request *req) {
    if (n && (l[0] == ' ' || l[0] == '\t'))
        return -400; /* obsolete line folding */
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l)
        return -400;
    size_t nn = (size_t)(colon - l);
    for (size_t i = 0; i < nn; i++)
        if (!is_tchar((unsigned char)l[i]))
            return -400;
    const char *v = colon + 1, *end = l + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vn = (size_t)(end - v);
    for (size_t i = 0; i < vn; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -400;
    }
    if (++req->nheaders > HTTP_MAX_HEADERS)
        return -413;
    if (ieq(l, nn, "host")) {
        if (req->has_host || vn >= sizeof req->host)
            return -400;
        memcpy(req->host, v, vn);
        req->host[vn] = 0;
        req->has_host = true;
    } else if (ieq(l, nn, "content-length")) {
        if (vn == 0 || vn > 15)
            return -400;
        int64_t x = 0;
        for (size_t i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9')
                return -400;
            x = x * 10 + (v[i] - '0');
        }
        if (req->content_length >= 0 && req->content_length != x)
            return -400;
        req->content_length = x;
    } else if (ieq(l, nn, "transfer-encoding")) {
        req->chunked = true; /* any coding: we never read a body */
    } else if (ieq(l, nn, "connection")) {
        if (list_has(v, vn, "close"))
            req->conn_close = true;
    }
    return 0;
}

/* ------------------------------------------------------------ the head */

int http_parse_request(const char *buf, size_t len, http_request *req) {
    memset(req, 0, sizeof *req);
    req->content_length = -1;
    size_t lim = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
    const char *nl = memchr(buf, '\n', lim);
    if (!nl) {
        int rc = check_partial_line(buf, lim);
        if (rc < 0)
            return rc;
        return len >= HTTP_MAX_HEAD ? -413 : 0;
    }
    size_t ln = (size_t)(nl - buf);
    if (ln && buf[ln - 1] == '\r')
        ln--;
    int rc = parse_request_line(buf, ln, req);
    if (rc < 0)
        return rc;
    size_t p = (size_t)(nl - buf) + 1;
    for (;;) {
        const char *e = p < lim ? memchr(buf + p, '\n', lim - p) : NULL;
        if (!e)
            return len >= HTTP_MAX_HEAD ? -413 : 0;
        size_t n = (size_t)(e - (buf + p));
        if (n && buf[p + n - 1] == '\r')
            n--;
        if (n == 0) {
            if (req->minor == 1 && !req->has_host)
                return -400;
            if (req->chunked && req->content_length >= 0)
                return -400;
            return (int)((size_t)(e - buf) + 1);
        }
        rc = parse_header(buf + p, n, req);
        if (rc < 0)
            return rc;
        p = (size_t)(e - buf) + 1;
    }
}

/* ------------------------------------------------------------ queries */

int http_query_get(const char *query, const char *key, char *out, size_t n) {
    if (!query || !key || !out || n == 0)
        return -1;
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t pn = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', pn);
        size_t kn = eq ? (size_t)(eq - p) : pn;
        char k[128];
        if (kn > 0) {
            int r = pct_decode(p, kn, k, sizeof k, true);
            if (r < 0 && kn < sizeof k)
                return -1; /* a bad escape (a long key just never matches) */
            if (r >= 0 && !strcmp(k, key)) {
                const char *v = eq ? eq + 1 : p + pn;
                size_t vn = eq ? pn - kn - 1 : 0;
                return pct_decode(v, vn, out, n, true) < 0 ? -1 : 1;
            }
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return 0;
}

const char *http_status_text(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
