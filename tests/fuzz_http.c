/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http.c — libFuzzer target for the debug endpoint's request parser
 * (src/diag/http_parse.c): http_parse_request on the input, then
 * http_query_get on the parsed query and on the raw input. Checks the
 * parser's contract: a bounded head length, a path starting with '/',
 * NUL-terminated fields, only the documented error statuses.
 *
 * Built by hand or by CMake (see docs/CLI.md, "Fuzzing"):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *         tests/fuzz_http.c src/diag/http_parse.c -o fuzz_http
 *   ./fuzz_http -max_total_time=20 corpus/ tests/fuzz/http/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag/http_parse.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    http_request req;
    int rc = http_parse_request((const char *)data, size, &req);
    char v[64];
    if (rc > 0) {
        CHECK((size_t)rc <= size && rc <= HTTP_MAX_HEAD);
        CHECK(req.path[0] == '/');
        CHECK(strlen(req.path) < sizeof req.path);
        CHECK(strlen(req.query) < sizeof req.query);
        CHECK(strlen(req.method) > 0 && strlen(req.method) < sizeof req.method);
        CHECK(strlen(req.host) < sizeof req.host);
        CHECK(req.minor == 0 || req.minor == 1);
        int q = http_query_get(req.query, "debug", v, sizeof v);
        CHECK(q >= -1 && q <= 1);
        if (q == 1)
            CHECK(strlen(v) < sizeof v);
    } else if (rc == 0) {
        CHECK(size < HTTP_MAX_HEAD);
    } else {
        CHECK(rc == -400 || rc == -413 || rc == -414 || rc == -505);
    }
    /* The query parser on arbitrary text. */
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    int q = http_query_get(s, "format", v, sizeof v);
    CHECK(q >= -1 && q <= 1);
    q = http_query_get(s, "", v, 1);
    CHECK(q >= -1 && q <= 1);
    free(s);
    return 0;
}
