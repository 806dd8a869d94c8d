/* SPDX-License-Identifier: MIT */
/*
 * quote.h — user strings (coroutine names, label keys and values, paths
 * read from a dump) written into text and JSON so that they cannot forge
 * a line, a record or a field: one quoting function for every text
 * writer (Go's %q) and one JSON string writer, for the library and the
 * CLI alike.
 */
#ifndef LEASH_DIAG_QUOTE_H
#define LEASH_DIAG_QUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define QUOTE_API __attribute__((visibility("hidden")))

/* s as Go's strconv.Quote (fmt's %q) writes it, quotes included:
 * \" \\ \a \b \f \n \r \t \v, \xNN for other control bytes and for bytes
 * that are not UTF-8, \uNNNN / \UNNNNNNNN for code points that are not
 * printable; printable UTF-8 as is. NULL is written as "". */
QUOTE_API void quote_go(FILE *out, const char *s);
/* The same into dst (at most n bytes with the NUL; cut short, never
 * mid-escape, if it does not fit); returns dst. */
QUOTE_API char *quote_go_buf(char *dst, size_t n, const char *s);

/* Whether s would be written by quote_go as itself (every code point
 * printable, no backslash) and holds none of the bytes in `delims`. */
QUOTE_API bool quote_plain(const char *s, const char *delims);

/* A token of a `k=v` list (leash's own text): as is when plain and
 * non-empty (no space, quote or '='), else quote_go. */
QUOTE_API void quote_token(FILE *out, const char *s);
/* A table cell: s itself when plain, else quote_go's form; returns dst. */
QUOTE_API char *quote_cell(char *dst, size_t n, const char *s);

/* A JSON string (RFC 8259), quotes included; NULL is written as null.
 * Control characters, U+2028 and U+2029 are escaped; bytes that are not
 * UTF-8 become U+FFFD, so the output is always valid UTF-8. */
QUOTE_API void quote_json(FILE *out, const char *s);

#endif
