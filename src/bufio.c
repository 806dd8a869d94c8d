/* SPDX-License-Identifier: MIT */
/*
 * bufio.c — Go's bufio.Reader / bufio.Writer over a connection or an fd.
 *
 * The reader's buffer is also its line limit: a line must fit in it.
 * That keeps line reads allocation-free and makes the bound explicit: a
 * peer sending a 1 MB line costs max_line bytes, not a megabyte, and
 * gets LEASH_E2BIG instead of a truncated line that would parse as a
 * different one. Errors never hand out a partial line either: a reset in
 * the middle of a line is the error, and the fragment is dropped. End of
 * stream is the one place Go returns data with its error (io.EOF); here
 * the fragment comes back as a final line (the missing delimiter tells)
 * and the next call returns 0, so every call has one meaning.
 *
 * Neither owns its source, and neither is shared between coroutines at
 * once (as in Go); the magic only turns a freed or foreign pointer into
 * LEASH_EINVAL where the memory still says so.
 */
#include "internal.h"

#define BUFIO_DEFAULT 4096
#define READER_MAGIC 0x52444552u /* "RDER" */
#define WRITER_MAGIC 0x57524954u /* "WRIT" */
#define R_EOF 1                  /* r->err: end of stream seen */

typedef struct { /* where the bytes go or come from */
    leash_conn *conn;
    int fd;
    int64_t deadline; /* fd only; -1: none */
    leash_ctx *ctx;   /* reader only, borrowed; NULL: none */
} bufsrc;

struct leash_reader {
    uint32_t magic;
    bufsrc src;
    int err;          /* sticky: R_EOF or an error (not a timeout) */
    bool skipping;    /* dropping the rest of an over-long line */
    size_t r, w, cap; /* buf[r, w) is unread */
    char buf[];
};

struct leash_writer {
    uint32_t magic;
    bufsrc src;
    int err;          /* sticky, like Go's */
    size_t n, cap;    /* buf[0, n) is waiting */
    char buf[];
};

static int src_init(bufsrc *s, leash_conn *c, int fd) {
    if (c ? !obj_check(c, OBJ_CONN) : fd < 0)
        return LEASH_EINVAL;
    *s = (bufsrc){.conn = c, .fd = fd, .deadline = -1};
    return 0;
}

static ssize_t src_read(bufsrc *s, void *p, size_t n) {
    if (s->conn)
        return leash_conn_read_ctx(s->conn, s->ctx, p, n);
    return s->ctx ? fd_read_ctx(s->fd, p, n, s->deadline, s->ctx)
                  : leash_read(s->fd, p, n, s->deadline);
}

/* A read error that leaves the reader usable: a deadline or a context
 * ended the wait, and a later call (with a new one) may go on. */
static bool retryable(ssize_t e) {
    return e == LEASH_ETIMEDOUT || e == LEASH_ECANCELED;
}

static ssize_t src_write(bufsrc *s, const void *p, size_t n) {
    return s->conn ? leash_conn_write(s->conn, p, n)
                   : leash_write(s->fd, p, n, s->deadline);
}

static int src_set_deadline(bufsrc *s, int64_t deadline) {
    if (s->conn || (deadline < 0 && deadline != -1))
        return LEASH_EINVAL; /* a connection has its own deadlines */
    s->deadline = deadline;
    return 0;
}

/* ------------------------------------------------------------- reader */

/* A reader or a writer: a zeroed header of hdr bytes that starts with
 * its magic and its source, then a buffer of `size` bytes (0: the
 * default), whose size goes to *cap; NULL on a bad source or size. */
_Static_assert(offsetof(struct leash_reader, src) ==
                   offsetof(struct leash_writer, src),
               "reader and writer start alike");
static void *bufio_new(size_t hdr, uint32_t magic, leash_conn *c, int fd,
                       size_t size, size_t *cap) {
    *cap = size ? size : BUFIO_DEFAULT;
    if (*cap > SIZE_MAX / 2)
        return NULL;
    char *p = lmalloc(hdr + *cap);
    if (!p)
        return NULL;
    memset(p, 0, hdr);
    *(uint32_t *)p = magic;
    if (src_init((bufsrc *)(p + offsetof(struct leash_reader, src)), c, fd) < 0) {
        lfree(p);
        return NULL;
    }
    return p;
}

static leash_reader *reader_new(leash_conn *c, int fd, size_t max_line) {
    size_t cap;
    leash_reader *r = bufio_new(sizeof *r, READER_MAGIC, c, fd, max_line, &cap);
    if (r)
        r->cap = cap;
    return r;
}

leash_reader *leash_reader_new(leash_conn *c, size_t max_line) {
    return c ? reader_new(c, -1, max_line) : NULL;
}

leash_reader *leash_reader_new_fd(int fd, size_t max_line) {
    return reader_new(NULL, fd, max_line);
}

static leash_reader *reader_check(leash_reader *r) {
    return r && r->magic == READER_MAGIC ? r : NULL;
}

void leash_reader_free(leash_reader *r) {
    if (!reader_check(r))
        return;
    r->magic = 0;
    lfree(r);
}

int leash_reader_set_deadline(leash_reader *r, int64_t deadline) {
    return reader_check(r) ? src_set_deadline(&r->src, deadline)
                           : LEASH_EINVAL;
}

int leash_reader_set_ctx(leash_reader *r, leash_ctx *ctx) {
    if (!reader_check(r) || (ctx && !obj_check(ctx, OBJ_CTX)))
        return LEASH_EINVAL;
    r->src.ctx = ctx;
    return 0;
}

/* Reads more into the buffer (compacting it first): > 0, or 0 with
 * r->err set, or a retryable error (nothing lost: the call may be
 * retried). */
static ssize_t reader_fill(leash_reader *r) {
    if (r->r > 0) {
        memmove(r->buf, r->buf + r->r, r->w - r->r);
        r->w -= r->r;
        r->r = 0;
    }
    ssize_t n = src_read(&r->src, r->buf + r->w, r->cap - r->w);
    if (n > 0)
        r->w += (size_t)n;
    else if (n == 0)
        r->err = R_EOF;
    else if (!retryable(n))
        r->err = (int)n;
    return n > 0 || retryable(n) ? n : 0;
}

API_FRAME ssize_t leash_reader_read_until(leash_reader *r, int delim,
                                          const char **line) {
    if (line)
        *line = NULL;
    if (!reader_check(r) || !line || delim < 0 || delim > 255)
        return LEASH_EINVAL;
    size_t scanned = 0; /* of buf[r->r, r->w): no delimiter there */
    for (;;) {
        if (r->skipping) {
            char *d = memchr(r->buf + r->r, delim, r->w - r->r);
            r->r = d ? (size_t)(d - r->buf) + 1 : r->w;
            r->skipping = !d;
        }
        if (!r->skipping) {
            char *start = r->buf + r->r;
            char *d = memchr(start + scanned, delim, r->w - r->r - scanned);
            if (d) {
                size_t len = (size_t)(d - start) + 1;
                r->r += len;
                *line = start;
                return (ssize_t)len;
            }
            scanned = r->w - r->r;
            if (scanned == r->cap) { /* full, and no delimiter in it */
                r->r = r->w = 0;
                r->skipping = true;
                return LEASH_E2BIG;
            }
        }
        if (r->err == R_EOF) {
            size_t len = r->skipping ? 0 : r->w - r->r;
            *line = len ? r->buf + r->r : NULL;
            r->r = r->w = 0;
            r->skipping = false;
            return (ssize_t)len; /* the final line, then 0 */
        }
        if (r->err) {
            r->r = r->w = 0; /* never a partial line */
            return r->err;
        }
        ssize_t got = reader_fill(r);
        if (retryable(got))
            return got; /* compacting kept `scanned` valid */
    }
}

ssize_t leash_reader_read_line(leash_reader *r, const char **line) {
    return leash_reader_read_until(r, '\n', line);
}

API_FRAME ssize_t leash_reader_read(leash_reader *r, void *buf, size_t n) {
    if (!reader_check(r) || (!buf && n))
        return LEASH_EINVAL;
    r->skipping = false; /* raw bytes: no line to skip the rest of */
    if (n == 0)
        return 0;
    if (r->r == r->w) {
        if (r->err)
            return r->err == R_EOF ? 0 : r->err;
        if (n >= r->cap) { /* big read, empty buffer: straight through */
            ssize_t got = src_read(&r->src, buf, n);
            if (got <= 0 && !retryable(got))
                r->err = got == 0 ? R_EOF : (int)got;
            return got;
        }
        ssize_t got = reader_fill(r);
        if (got <= 0)
            return got < 0 ? got : r->err == R_EOF ? 0 : r->err;
    }
    size_t k = r->w - r->r < n ? r->w - r->r : n;
    memcpy(buf, r->buf + r->r, k);
    r->r += k;
    return (ssize_t)k;
}

/* ------------------------------------------------------------- writer */

static leash_writer *writer_new(leash_conn *c, int fd, size_t size) {
    size_t cap;
    leash_writer *w = bufio_new(sizeof *w, WRITER_MAGIC, c, fd, size, &cap);
    if (w)
        w->cap = cap;
    return w;
}

leash_writer *leash_writer_new(leash_conn *c, size_t size) {
    return c ? writer_new(c, -1, size) : NULL;
}

leash_writer *leash_writer_new_fd(int fd, size_t size) {
    return writer_new(NULL, fd, size);
}

static leash_writer *writer_check(leash_writer *w) {
    return w && w->magic == WRITER_MAGIC ? w : NULL;
}

int leash_writer_set_deadline(leash_writer *w, int64_t deadline) {
    return writer_check(w) ? src_set_deadline(&w->src, deadline)
                           : LEASH_EINVAL;
}

/* Writes p[0, n) through: 0 or the error (then sticky). */
static int writer_put(leash_writer *w, const char *p, size_t n) {
    for (size_t off = 0; off < n;) {
        ssize_t k = src_write(&w->src, p + off, n - off);
        if (k <= 0) /* a short write's error shows on the next try */
            return w->err = k < 0 ? (int)k : LEASH_EAGAIN;
        off += (size_t)k;
    }
    return 0;
}

API_FRAME int leash_writer_flush(leash_writer *w) {
    if (!writer_check(w))
        return LEASH_EINVAL;
    if (w->err || w->n == 0)
        return w->err;
    int e = writer_put(w, w->buf, w->n);
    if (e == 0)
        w->n = 0;
    return e;
}

API_FRAME ssize_t leash_writer_write(leash_writer *w, const void *buf,
                                     size_t n) {
    if (!writer_check(w) || (!buf && n) || n > SSIZE_MAX)
        return LEASH_EINVAL;
    if (w->err)
        return w->err;
    const char *p = buf;
    size_t left = n;
    while (left > w->cap - w->n) {
        if (w->n == 0) { /* larger than the buffer: no copy */
            int e = writer_put(w, p, left);
            return e ? e : (ssize_t)n;
        }
        size_t k = w->cap - w->n;
        memcpy(w->buf + w->n, p, k);
        w->n += k;
        p += k;
        left -= k;
        int e = leash_writer_flush(w);
        if (e)
            return e;
    }
    memcpy(w->buf + w->n, p, left);
    w->n += left;
    return (ssize_t)n;
}

int leash_writer_close(leash_writer *w) {
    if (!w)
        return 0;
    if (!writer_check(w))
        return LEASH_EINVAL;
    int e = leash_writer_flush(w);
    w->magic = 0;
    lfree(w);
    return e;
}
