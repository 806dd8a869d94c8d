/* SPDX-License-Identifier: MIT */
/*
 * quote.c — see quote.h. A name or a label is the user's: a newline in
 * it must not start a line of its own in a dump (it could forge a
 * `goroutine 999 [...]` record that `leash analyze` would then report),
 * an escape sequence must not reach a terminal, and JSON must stay valid
 * UTF-8. So every writer goes through here.
 *
 * Go's unicode.IsPrint needs Unicode's tables; the approximation below
 * treats as non-printable what matters for safety and readability: C0
 * and C1 controls, DEL, spaces other than U+0020, line and paragraph
 * separators, format characters (bidirectional overrides, zero-width
 * characters, the BOM...), private use and non-characters. Unassigned
 * code points are written as they are (Go would escape them).
 */
#include "quote.h"

#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------ output */

/* Where quoted text goes: a stream, or a buffer that takes whole pieces
 * only (an escape is never cut in two). */
typedef struct {
    FILE *f;
    char *buf;
    size_t cap, len; /* cap: bytes usable, the NUL excluded */
    bool full;
} sink;

static void put(sink *k, const void *p, size_t n) {
    if (k->f) {
        fwrite(p, 1, n, k->f);
        return;
    }
    if (k->full || k->len + n > k->cap) {
        k->full = true;
        return;
    }
    memcpy(k->buf + k->len, p, n);
    k->len += n;
    k->buf[k->len] = 0;
}

static void put_hex(sink *k, const char *prefix, uint32_t v, int digits) {
    char e[16];
    int n = snprintf(e, sizeof e, "%s%0*x", prefix, digits, (unsigned)v);
    put(k, e, (size_t)n);
}

/* ------------------------------------------------------------ UTF-8 */

/* The code point s starts with and its length in bytes, or 0 if s does
 * not start with one in valid UTF-8 (shortest form, no surrogates, at
 * most U+10FFFF). The NUL that ends s is never a continuation byte. */
static int utf8_decode(const unsigned char *s, uint32_t *cp) {
    unsigned c = s[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, v = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

typedef struct {
    uint32_t lo, hi;
} range;

/* Not printable, beyond C0, DEL and C1 (see the file's comment). */
static const range nonprint[] = {
    {0x00a0, 0x00a0}, {0x00ad, 0x00ad}, {0x0600, 0x0605}, {0x061c, 0x061c},
    {0x06dd, 0x06dd}, {0x070f, 0x070f}, {0x1680, 0x1680}, {0x180e, 0x180e},
    {0x2000, 0x200f}, {0x2028, 0x202f}, {0x205f, 0x206f}, {0x3000, 0x3000},
    {0xd800, 0xf8ff}, {0xfdd0, 0xfdef}, {0xfeff, 0xfeff}, {0xfff9, 0xfffb},
    {0x110bd, 0x110bd}, {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a},
    {0xe0001, 0xe007f}, {0xf0000, 0x10ffff},
};

static bool is_print(uint32_t cp) {
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
        return false;
    if ((cp & 0xfffe) == 0xfffe) /* U+xFFFE, U+xFFFF: non-characters */
        return false;
    for (size_t i = 0; i < sizeof nonprint / sizeof nonprint[0]; i++)
        if (cp >= nonprint[i].lo && cp <= nonprint[i].hi)
            return false;
    return true;
}

/* ------------------------------------------------------------ Go's %q */

/* The one-letter escape Go uses for cp, or 0. */
static char go_short_escape(uint32_t cp) {
    switch (cp) {
    case '"': return '"';
    case '\\': return '\\';
    case '\a': return 'a';
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    case '\v': return 'v';
    default: return 0;
    }
}

static void go_body(sink *k, const char *s) {
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        uint32_t cp;
        int len = utf8_decode(p, &cp);
        char c;
        if (len == 0) { /* not UTF-8: the byte itself */
            put_hex(k, "\\x", *p, 2);
            len = 1;
        } else if ((c = go_short_escape(cp))) {
            char e[2] = {'\\', c};
            put(k, e, 2);
        } else if (cp < 0x20 || cp == 0x7f) {
            put_hex(k, "\\x", cp, 2);
        } else if (!is_print(cp)) {
            put_hex(k, cp < 0x10000 ? "\\u" : "\\U", cp, cp < 0x10000 ? 4 : 8);
        } else {
            put(k, p, (size_t)len);
        }
        p += len;
    }
}

void quote_go(FILE *out, const char *s) {
    sink k = {.f = out};
    put(&k, "\"", 1);
    go_body(&k, s);
    put(&k, "\"", 1);
}

char *quote_go_buf(char *dst, size_t n, const char *s) {
    if (n < 3) {
        if (n)
            dst[0] = 0;
        return dst;
    }
    /* The closing quote's byte is kept back while the body goes in. */
    sink k = {.buf = dst, .cap = n - 2};
    dst[0] = 0;
    put(&k, "\"", 1);
    go_body(&k, s);
    k.cap++;
    k.full = false;
    put(&k, "\"", 1);
    return dst;
}

bool quote_plain(const char *s, const char *delims) {
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        uint32_t cp;
        int len = utf8_decode(p, &cp);
        if (len == 0 || !is_print(cp) || cp == '\\' ||
            (cp < 0x80 && strchr(delims, (int)cp)))
            return false;
        p += len;
    }
    return true;
}

void quote_token(FILE *out, const char *s) {
    if (s && *s && quote_plain(s, " \"="))
        fputs(s, out);
    else
        quote_go(out, s);
}

char *quote_cell(char *dst, size_t n, const char *s) {
    if (quote_plain(s, "")) {
        if (n)
            snprintf(dst, n, "%s", s ? s : "");
        return dst;
    }
    return quote_go_buf(dst, n, s);
}

/* ------------------------------------------------------------ JSON */

static void json_body(sink *k, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        int len = utf8_decode(p, &cp);
        char c = 0;
        if (len == 0) {
            put(k, "\\ufffd", 6);
            len = 1;
        } else if (cp == '"' || cp == '\\') {
            c = (char)cp;
        } else if (cp == '\n' || cp == '\r' || cp == '\t' || cp == '\b' ||
                   cp == '\f') {
            c = go_short_escape(cp);
        } else if (cp < 0x20 || cp == 0x7f || cp == 0x2028 || cp == 0x2029) {
            put_hex(k, "\\u", cp, 4);
        } else {
            put(k, p, (size_t)len);
        }
        if (c) {
            char e[2] = {'\\', c};
            put(k, e, 2);
        }
        p += len;
    }
}

void quote_json(FILE *out, const char *s) {
    if (!s) {
        fputs("null", out);
        return;
    }
    sink k = {.f = out};
    put(&k, "\"", 1);
    json_body(&k, s);
    put(&k, "\"", 1);
}
