/* SPDX-License-Identifier: MIT */
/*
 * diag_util.h — helpers for the diagnostics tests (test_diag.c,
 * test_leakcheck.c, test_proofs.c): capturing dumps into strings, a small
 * JSON reader for the debug=4 format, line and regex helpers, and polling
 * a coroutine's state through the JSON dump.
 *
 * Header-only (static functions): each test file includes it once.
 * Nothing here asserts; callers decide (cr_assert on the test thread,
 * CU_CHECK on coroutines).
 */
#ifndef LEASH_TESTS_DIAG_UTIL_H
#define LEASH_TESTS_DIAG_UTIL_H

#define _GNU_SOURCE 1
#include <ctype.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "leash.h"

/* Every helper is static; a file need not use them all. */
#define DU_FN static __attribute__((unused))

/* ------------------------------------------------------------- capture */

/* The output of leash_dump / leash_leak_dump (leaked != 0) in `debug`
 * format as a malloc'd string (binary-safe: *len gets its length); *rc
 * gets the function's result. */
DU_FN char *du_dump_ex(int debug, bool leaked, int *rc, size_t *len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    int r = leaked ? leash_leak_dump(f, debug) : leash_dump(f, debug);
    fclose(f);
    if (rc)
        *rc = r;
    if (len)
        *len = n;
    return buf;
}
DU_FN char *du_dump(int debug) { return du_dump_ex(debug, false, NULL, NULL); }
DU_FN char *du_leak_dump(int debug, int *rc) {
    return du_dump_ex(debug, true, rc, NULL);
}

/* Number of (non-overlapping) occurrences of needle in s. */
DU_FN int du_count(const char *s, const char *needle) {
    int n = 0;
    size_t k = strlen(needle);
    if (!s || !k)
        return 0;
    for (const char *p = s; (p = strstr(p, needle)); p += k)
        n++;
    return n;
}

/* POSIX extended regex match of the whole string (anchors are the
 * caller's). Invalid patterns never match. */
DU_FN bool du_match(const char *s, const char *ere) {
    regex_t re;
    if (regcomp(&re, ere, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    bool ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* The same, with capture groups copied into caps[i] (malloc'd; NULL for
 * a group that did not take part); returns false on no match. */
DU_FN bool du_match_caps(const char *s, const char *ere, char **caps,
                          int ncaps) {
    regex_t re;
    regmatch_t m[16];
    if (ncaps > 15 || regcomp(&re, ere, REG_EXTENDED) != 0)
        return false;
    bool ok = regexec(&re, s, 16, m, 0) == 0;
    for (int i = 0; ok && i < ncaps; i++)
        caps[i] = m[i + 1].rm_so < 0
                      ? NULL
                      : strndup(s + m[i + 1].rm_so,
                                (size_t)(m[i + 1].rm_eo - m[i + 1].rm_so));
    regfree(&re);
    return ok;
}

/* Splits a copy of s into lines (no '\n'); *n gets the count. Free with
 * du_free_lines. */
DU_FN char **du_lines(const char *s, int *n) {
    int cap = 64, k = 0;
    char **v = malloc(sizeof *v * (size_t)cap);
    const char *p = s ? s : "";
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (k + 1 >= cap)
            v = realloc(v, sizeof *v * (size_t)(cap *= 2));
        v[k++] = strndup(p, len);
        p += len + (e ? 1 : 0);
    }
    v[k] = NULL;
    *n = k;
    return v;
}
DU_FN void du_free_lines(char **v) {
    for (int i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* The block of a text dump (formats 2 and 3) that starts with
 * "goroutine <id> " and ends at the next empty line, as a malloc'd
 * string, or NULL. */
DU_FN char *du_block(const char *dump, int64_t id) {
    char key[48];
    snprintf(key, sizeof key, "goroutine %lld ", (long long)id);
    for (const char *p = dump; p && (p = strstr(p, key)); p++) {
        if (p != dump && p[-1] != '\n')
            continue;
        const char *e = strstr(p, "\n\n");
        return strndup(p, e ? (size_t)(e - p + 1) : strlen(p));
    }
    return NULL;
}

/* Whether the dump has a block for goroutine id. */
DU_FN bool du_has_block(const char *dump, int64_t id) {
    char *b = du_block(dump, id);
    free(b);
    return b != NULL;
}

/* Runs a shell command, returns its stdout+stderr (malloc'd) and puts
 * its exit status (or -1) in *status. */
DU_FN char *du_run_cmd(const char *cmd, int *status) {
    char *full = NULL;
    if (asprintf(&full, "( %s ) 2>&1", cmd) < 0)
        return NULL;
    FILE *p = popen(full, "r");
    free(full);
    if (!p) {
        *status = -1;
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (size_t r; (r = fread(buf + len, 1, cap - len - 1, p)) > 0;) {
        len += r;
        if (cap - len < 1024)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

/* ---------------------------------------------------------------- JSON */

/* A tiny, strict JSON reader (RFC 8259 minus \u surrogate pairing,
 * which the dumps never produce), enough to validate debug=4 and read it. */
typedef enum { DJ_NULL, DJ_BOOL, DJ_NUM, DJ_STR, DJ_ARR, DJ_OBJ } dj_type;

typedef struct dj {
    dj_type type;
    bool b;
    double num;
    long long inum; /* num as an integer (ids, lines, ns) */
    char *str;
    int n;             /* array / object size */
    struct dj **items; /* array items / object values */
    char **keys;       /* object keys */
} dj;

typedef struct {
    const char *p;
    const char *err;
    int depth;
} dj_parser;

DU_FN void dj_ws(dj_parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
           *ps->p == '\r')
        ps->p++;
}

DU_FN dj *dj_value(dj_parser *ps);

DU_FN char *dj_string_raw(dj_parser *ps) {
    if (*ps->p != '"') {
        ps->err = "expected string";
        return NULL;
    }
    ps->p++;
    size_t cap = 32, len = 0;
    char *s = malloc(cap);
    for (;;) {
        unsigned char c = (unsigned char)*ps->p;
        if (len + 8 > cap)
            s = realloc(s, cap *= 2);
        if (c == 0 || c < 0x20) {
            ps->err = "bad character in string";
            free(s);
            return NULL;
        }
        ps->p++;
        if (c == '"')
            break;
        if (c != '\\') {
            s[len++] = (char)c;
            continue;
        }
        char e = *ps->p++;
        switch (e) {
        case '"': s[len++] = '"'; break;
        case '\\': s[len++] = '\\'; break;
        case '/': s[len++] = '/'; break;
        case 'b': s[len++] = '\b'; break;
        case 'f': s[len++] = '\f'; break;
        case 'n': s[len++] = '\n'; break;
        case 'r': s[len++] = '\r'; break;
        case 't': s[len++] = '\t'; break;
        case 'u': {
            unsigned v = 0;
            for (int i = 0; i < 4; i++) {
                char h = *ps->p++;
                if (!isxdigit((unsigned char)h)) {
                    ps->err = "bad \\u escape";
                    free(s);
                    return NULL;
                }
                v = v * 16 + (unsigned)(isdigit((unsigned char)h)
                                            ? h - '0'
                                            : (tolower((unsigned char)h) - 'a' + 10));
            }
            if (v < 0x80) {
                s[len++] = (char)v;
            } else if (v < 0x800) {
                s[len++] = (char)(0xc0 | (v >> 6));
                s[len++] = (char)(0x80 | (v & 0x3f));
            } else {
                s[len++] = (char)(0xe0 | (v >> 12));
                s[len++] = (char)(0x80 | ((v >> 6) & 0x3f));
                s[len++] = (char)(0x80 | (v & 0x3f));
            }
            break;
        }
        default:
            ps->err = "bad escape";
            free(s);
            return NULL;
        }
    }
    s[len] = 0;
    return s;
}

DU_FN dj *dj_new(dj_type t) {
    dj *v = calloc(1, sizeof *v);
    v->type = t;
    return v;
}

DU_FN void dj_free(dj *v) {
    if (!v)
        return;
    for (int i = 0; i < v->n; i++) {
        dj_free(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

DU_FN void dj_push(dj *v, char *key, dj *item) {
    v->items = realloc(v->items, sizeof *v->items * (size_t)(v->n + 1));
    if (v->type == DJ_OBJ) {
        v->keys = realloc(v->keys, sizeof *v->keys * (size_t)(v->n + 1));
        v->keys[v->n] = key;
    }
    v->items[v->n++] = item;
}

/* An object's members or an array's items, from its opening bracket on:
 * in an object, each value comes after "key":. */
DU_FN dj *dj_container(dj_parser *ps, bool obj) {
    char close = obj ? '}' : ']';
    dj *v = dj_new(obj ? DJ_OBJ : DJ_ARR);
    ps->p++;
    dj_ws(ps);
    if (*ps->p == close) {
        ps->p++;
        return v;
    }
    for (;;) {
        char *k = NULL;
        if (obj) {
            dj_ws(ps);
            if (!(k = dj_string_raw(ps)))
                break;
            dj_ws(ps);
            if (*ps->p++ != ':') {
                free(k);
                ps->err = "expected ':'";
                break;
            }
        }
        dj *item = dj_value(ps);
        if (!item) {
            free(k);
            break;
        }
        dj_push(v, k, item);
        dj_ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p++ == close)
            return v;
        ps->err = obj ? "expected ',' or '}'" : "expected ',' or ']'";
        break;
    }
    dj_free(v);
    return NULL;
}

DU_FN dj *dj_value(dj_parser *ps) {
    if (++ps->depth > 64) {
        ps->err = "too deep";
        return NULL;
    }
    dj_ws(ps);
    dj *v = NULL;
    const char *p = ps->p;
    if (*p == '{' || *p == '[') {
        if (!(v = dj_container(ps, *p == '{')))
            return NULL;
    } else if (*p == '"') {
        v = dj_new(DJ_STR);
        if (!(v->str = dj_string_raw(ps)))
            goto fail;
    } else if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
        v = dj_new(DJ_BOOL);
        v->b = *p == 't';
        ps->p += v->b ? 4 : 5;
    } else if (!strncmp(p, "null", 4)) {
        v = dj_new(DJ_NULL);
        ps->p += 4;
    } else if (*p == '-' || isdigit((unsigned char)*p)) {
        /* JSON numbers: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
        const char *q = p;
        if (*q == '-')
            q++;
        if (*q == '0')
            q++;
        else if (isdigit((unsigned char)*q))
            while (isdigit((unsigned char)*q))
                q++;
        else {
            ps->err = "bad number";
            return NULL;
        }
        if (*q == '.') {
            q++;
            if (!isdigit((unsigned char)*q)) {
                ps->err = "bad number";
                return NULL;
            }
            while (isdigit((unsigned char)*q))
                q++;
        }
        if (*q == 'e' || *q == 'E') {
            q++;
            if (*q == '+' || *q == '-')
                q++;
            if (!isdigit((unsigned char)*q)) {
                ps->err = "bad number";
                return NULL;
            }
            while (isdigit((unsigned char)*q))
                q++;
        }
        v = dj_new(DJ_NUM);
        v->num = strtod(p, NULL);
        v->inum = strtoll(p, NULL, 10);
        ps->p = q;
    } else {
        ps->err = "unexpected character";
        return NULL;
    }
    ps->depth--;
    return v;
fail:
    dj_free(v);
    return NULL;
}

/* Parses a whole document (trailing white space only); NULL on error,
 * with *err set to a message and *at to the offset. */
DU_FN dj *dj_parse(const char *s, const char **err, long *at) {
    dj_parser ps = {s, NULL, 0};
    dj *v = dj_value(&ps);
    if (v) {
        dj_ws(&ps);
        if (*ps.p) {
            ps.err = "trailing garbage";
            dj_free(v);
            v = NULL;
        }
    }
    if (err)
        *err = ps.err;
    if (at)
        *at = (long)(ps.p - s);
    return v;
}

DU_FN const dj *dj_get(const dj *o, const char *key) {
    if (!o || o->type != DJ_OBJ)
        return NULL;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key))
            return o->items[i];
    return NULL;
}
DU_FN const char *dj_str(const dj *v) {
    return v && v->type == DJ_STR ? v->str : NULL;
}
DU_FN long long dj_int(const dj *v, long long dflt) {
    return v && v->type == DJ_NUM ? v->inum : dflt;
}

/* The coroutine with this id in a parsed debug=4 document, or NULL. */
DU_FN const dj *dj_coroutine(const dj *doc, int64_t id) {
    const dj *a = dj_get(doc, "coroutines");
    for (int i = 0; a && a->type == DJ_ARR && i < a->n; i++)
        if (dj_int(dj_get(a->items[i], "id"), -1) == id)
            return a->items[i];
    return NULL;
}

/* -------------------------------------------------------------- states */

/* "waiting:<reason>", "running", "runnable", or "" (gone) for coroutine
 * id, read from a fresh JSON dump; into buf. */
DU_FN const char *du_state(int64_t id, char *buf, size_t n) {
    char *s = du_dump(LEASH_DUMP_JSON);
    dj *doc = s ? dj_parse(s, NULL, NULL) : NULL;
    const dj *g = dj_coroutine(doc, id);
    buf[0] = 0;
    if (g) {
        const char *st = dj_str(dj_get(g, "state"));
        const char *wr = dj_str(dj_get(g, "wait_reason"));
        if (st && !strcmp(st, "waiting"))
            snprintf(buf, n, "waiting:%s", wr ? wr : "?");
        else
            snprintf(buf, n, "%s", st ? st : "?");
    }
    dj_free(doc);
    free(s);
    return buf;
}

/* Polls until coroutine id's state (as du_state words it) equals want,
 * for up to timeout_ms; true if it did. A bound against hangs only. */
DU_FN bool du_wait_state(int64_t id, const char *want, int timeout_ms) {
    int64_t until = leash_now() + (int64_t)timeout_ms * 1000000;
    char buf[128];
    for (;;) {
        if (!strcmp(du_state(id, buf, sizeof buf), want))
            return true;
        if (leash_now() >= until)
            return false;
        leash_sleep(2 * 1000000);
    }
}

/* Go's toolchain, for reading pprof files and running Go programs: the
 * path of `go`, or NULL if there is none. */
DU_FN const char *du_go(void) {
    static const char *const cands[] = {"/usr/bin/go", "/usr/lib/go/bin/go",
                                        "/usr/local/go/bin/go", NULL};
    for (int i = 0; cands[i]; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return NULL;
}

/* Shell commands that give go a private HOME, GOCACHE and GOPATH under
 * dir (created): run them before the go command, joined with "&&". */
DU_FN void du_go_env(char *buf, size_t n, const char *dir) {
    snprintf(buf, n,
             "mkdir -p '%s/home' '%s/cache' && export HOME='%s/home' "
             "GOCACHE='%s/cache' GOPATH='%s/gopath' GOFLAGS= GO111MODULE=auto "
             "GOTOOLCHAIN=local",
             dir, dir, dir, dir, dir);
}

/* s with the ERE metacharacters escaped, into buf. */
DU_FN const char *du_re_escape(const char *s, char *buf, size_t n) {
    size_t k = 0;
    for (; *s && k + 3 < n; s++) {
        if (strchr(".[]()*+?{}|^$\\", *s))
            buf[k++] = '\\';
        buf[k++] = *s;
    }
    buf[k] = 0;
    return buf;
}

/* The FILE:LINE of a "site KIND FILE:LINE" line that a helper program
 * printed (tests/progs/), or NULL; free() it. */
static inline char *site_of(const char *out, const char *kind) {
    char key[64];
    snprintf(key, sizeof key, "site %s ", kind);
    const char *p = strstr(out, key);
    if (!p)
        return NULL;
    p += strlen(key);
    return strndup(p, strcspn(p, "\n"));
}

#endif
