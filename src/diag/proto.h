/* SPDX-License-Identifier: MIT */
/*
 * proto.h — the agent's wire protocol, shared by the agent (agent.c) and
 * the `leash` CLI (tools/leash/). Version 1.
 *
 * A client connects to the agent's Unix socket and sends requests, one per
 * line, each answered before the next is read:
 *
 *     LEASH1 <command>[ <arg>]\n              (at most AGENT_MAX_REQ bytes)
 *
 * <command> is one of the names below; <arg>, where a command takes one,
 * is 1-32 characters of [A-Za-z0-9_.-]. A '\r' before the '\n' is allowed.
 * Every reply is a head line and a body of exactly <length> bytes:
 *
 *     LEASH1 OK <length>\n<body>
 *     LEASH1 ERR <length>\n<message>
 *
 * Garbage, an unknown command, a bad argument or another version gets an
 * ERR reply; a line that is too long gets an ERR reply and the connection
 * is closed. Bodies (see docs/CLI.md for each):
 *
 *   ps-info          "key value" lines: pid ppid name coroutines leaked ...
 *   stats            the same, with every figure `leash stats` shows
 *   stack [1|2|3|4]  leash_dump text (default 2: Go's runtime.Stack(all))
 *   dump             leash_dump debug=3 (leash's text)
 *   json             leash_dump debug=4
 *   leaks [json]     proven leaks, then suspects, with stacks and wait objects
 *   profile [leak|block|mutex|cpu|cpu-N]
 *                    gzipped pprof goroutine (goroutineleak, block, mutex)
 *                    profile, or a CPU profile of N seconds (default 30,
 *                    1..600; the reply comes after them)
 *   top              tab-separated groups by spawn site and state
 *   trace [N]        the execution trace of N seconds (default 5, 1..60),
 *                    Chrome trace-event JSON; the reply comes after them
 *   version          "leash <version> protocol 1"
 *
 * The parsers are pure (no allocation, no I/O) and fuzzed by
 * tests/fuzz_agent.c.
 */
#ifndef LEASH_PROTO_H
#define LEASH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef INTERNAL
#define INTERNAL __attribute__((visibility("hidden")))
#endif

#define AGENT_MAGIC "LEASH1"
#define AGENT_MAX_REQ 256       /* a request line, '\n' included */
#define AGENT_MAX_ARG 32
#define AGENT_MAX_HEAD 64       /* a reply head line, '\n' included */
#define AGENT_MAX_BODY (INT64_C(1) << 32)

enum agent_cmd {
    AC_NONE = 0,
    AC_PS_INFO,
    AC_STATS,
    AC_STACK,
    AC_DUMP,
    AC_JSON,
    AC_LEAKS,
    AC_PROFILE,
    AC_TOP,
    AC_VERSION,
    AC_TRACE,
    AC__COUNT
};

enum agent_err {
    AGENT_E_SYNTAX = -1,   /* not "LEASH<n> <command>[ <arg>]" */
    AGENT_E_VERSION = -2,  /* another protocol version */
    AGENT_E_COMMAND = -3,  /* unknown command */
    AGENT_E_TOOLONG = -4,  /* line longer than AGENT_MAX_REQ / _HEAD */
    AGENT_E_ARG = -5,      /* bad argument */
};

typedef struct {
    int cmd;                      /* enum agent_cmd */
    char arg[AGENT_MAX_ARG + 1];  /* "" if none */
} agent_req;

typedef struct {
    bool ok;                      /* OK or ERR */
    int64_t length;               /* body bytes that follow the head */
} agent_reply;

/* Parses one request line from buf[0, len): > 0 bytes consumed (the line
 * and its '\n'), 0 incomplete (read more), < 0 an AGENT_E_* code. The
 * argument is checked per command (a command that takes none refuses
 * one). */
INTERNAL int agent_parse_request(const char *buf, size_t len, agent_req *out);

/* Parses a reply head: > 0 bytes consumed, 0 incomplete, < 0 AGENT_E_*. */
INTERNAL int agent_parse_reply(const char *buf, size_t len, agent_reply *out);

/* Writes a request line into buf (NUL-terminated): its length, or -1 if
 * the command or argument is invalid or buf is too small. */
INTERNAL int agent_format_request(char *buf, size_t n, int cmd,
                                  const char *arg);

/* The directory of the agents' sockets: $XDG_RUNTIME_DIR/leash if that
 * variable holds an absolute path, else /tmp/leash-<euid>. 0, or -1 if
 * buf is too small. Sockets are <dir>/<pid>.sock. */
INTERNAL int agent_socket_dir(char *buf, size_t n);

/* The seconds of a CPU profile argument ("cpu": 30, "cpu-N": N in
 * 1..AGENT_CPU_MAX_S), or 0 if it is not one. */
#define AGENT_CPU_MAX_S 600
INTERNAL int agent_cpu_seconds(const char *arg);
/* The seconds of a trace argument ("": 5, "N": N in 1..AGENT_TRACE_MAX_S),
 * or 0 if it is not one. */
#define AGENT_TRACE_MAX_S 60
INTERNAL int agent_trace_seconds(const char *arg);

INTERNAL const char *agent_cmd_name(int cmd);   /* "ps-info", ... or NULL */
INTERNAL int agent_cmd_lookup(const char *name, size_t n); /* AC_* or 0 */
INTERNAL const char *agent_strerror(int err);

#endif /* LEASH_PROTO_H */
