/* SPDX-License-Identifier: MIT */
/*
 * fuzz_agent.c — libFuzzer target for the agent protocol's parsers
 * (src/diag/agent_proto.c): requests (as the agent reads them) and reply
 * heads (as the CLI reads them). A request that parses must format back
 * to a line that parses to the same command and argument.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *         tests/fuzz_agent.c src/diag/agent_proto.c -o fuzz_agent
 *   ./fuzz_agent -max_total_time=20 corpus/ tests/fuzz/agent/
 */
#include <stdint.h>
#include <string.h>

#include "diag/proto.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *buf = (const char *)data;
    agent_req req;
    int rc = agent_parse_request(buf, size, &req);
    if (rc > 0) {
        CHECK((size_t)rc <= size && rc <= AGENT_MAX_REQ);
        CHECK(req.cmd > AC_NONE && req.cmd < AC__COUNT);
        CHECK(strlen(req.arg) <= AGENT_MAX_ARG);
        char line[AGENT_MAX_REQ + 1];
        int n = agent_format_request(line, sizeof line, req.cmd, req.arg);
        CHECK(n > 0);
        agent_req again;
        CHECK(agent_parse_request(line, (size_t)n, &again) == n);
        CHECK(again.cmd == req.cmd && !strcmp(again.arg, req.arg));
    } else if (rc == 0) {
        CHECK(size < AGENT_MAX_REQ);
    } else {
        CHECK(rc >= AGENT_E_ARG && rc <= AGENT_E_SYNTAX);
        CHECK(agent_strerror(rc) != NULL);
    }
    agent_reply rep;
    rc = agent_parse_reply(buf, size, &rep);
    if (rc > 0)
        CHECK((size_t)rc <= size && rc <= AGENT_MAX_HEAD && rep.length >= 0 &&
              rep.length <= AGENT_MAX_BODY);
    else if (rc == 0)
        CHECK(size < AGENT_MAX_HEAD);
    return 0;
}
