/* SPDX-License-Identifier: MIT */
/*
 * cli.h — the `leash` command-line tool's shared declarations.
 *
 * Exit codes (docs/CLI.md):
 *   0  success
 *   1  usage error (unknown command or option, bad PID, bad value)
 *   2  no such process, agent or file
 *   3  protocol or format error (the agent's reply, a dump file that is
 *      not a goroutine dump, an agent error)
 *   4  leaks found (`leaks`, `analyze`)
 */
#ifndef LEASH_CLI_H
#define LEASH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "diag/proto.h"

enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,
    EXIT_NOPROC = 2,
    EXIT_PROTO = 3,
    EXIT_LEAKS = 4,
};

/* ------------------------------------------------------------ main.c */

/* Prints "leash: <msg>" to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parses a PID argument: > 0, or -1 after printing why. */
pid_t cli_pid(const char *s);
/* A JSON string literal of s on out (diag/quote.c's writer). */
void cli_json_str(FILE *out, const char *s);
/* s as a table cell or a field of a line of text: itself when every
 * character is printable, else Go-quoted (a name or a dump's text cannot
 * start a line or send a terminal escape). Valid until 8 more calls. */
const char *cli_cell(const char *s);
/* A command's parsed arguments: set[k] tells whether known[k] was given,
 * val[k] its value (for an entry ending in '='), pid the PID if wanted. */
#define CLI_MAX_OPTS 8
typedef struct {
    bool set[CLI_MAX_OPTS];
    const char *val[CLI_MAX_OPTS];
    pid_t pid;
} cli_opts;
/* Parses "[PID] [flags...]" (argv[0] is the command) into *o: every flag
 * must be in `known` (NULL-terminated, at most CLI_MAX_OPTS entries); a
 * PID is required when want_pid, refused otherwise. EXIT_OK or EXIT_USAGE
 * after printing why. */
int cli_parse(int argc, char **argv, const char *const *known, bool want_pid,
              cli_opts *o);
/* Whether argv[i] asks for help. */
bool cli_is_help(const char *a);

/* ------------------------------------------------------------ client.c */

/* Whether pid is gone (no such process, or a zombie). */
bool cli_proc_gone(pid_t pid);

typedef struct {
    int fd;
    pid_t pid;
    char path[108];
} agent_conn;

/* Connects to the agent of pid (searching the socket directories):
 * EXIT_OK, or EXIT_NOPROC after printing why. timeout_ms bounds every
 * read and write. */
int agent_open(agent_conn *c, pid_t pid, int timeout_ms, bool quiet);
void agent_close(agent_conn *c);
/* Sends one request and reads its reply body (malloc'd, NUL-terminated,
 * *len bytes). Returns EXIT_OK, or EXIT_PROTO after printing why (an ERR
 * reply's message is printed as "agent: ..."). */
int agent_call(agent_conn *c, int cmd, const char *arg, char **body,
               size_t *len, bool quiet);
/* One-shot: open, call, close. */
int agent_query(pid_t pid, int cmd, const char *arg, char **body,
                size_t *len);

/* The socket directories to search, in order (deduplicated): returns
 * how many (at most max), each a malloc'd string. */
int agent_dirs(char **dirs, int max);

/* "key value" lines (ps-info, stats) */
const char *kv_get(const char *body, const char *key, char *buf, size_t n);
long long kv_num(const char *body, const char *key, long long dflt);
/* Prints the lines as one JSON object (numbers stay numbers). */
void kv_json(FILE *out, const char *body);

/* ------------------------------------------------------------ commands */

int cmd_ps(int argc, char **argv);
int cmd_stack(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_leaks(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_analyze(int argc, char **argv);

#endif /* LEASH_CLI_H */
