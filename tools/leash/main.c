/* SPDX-License-Identifier: MIT */
/*
 * main.c — `leash`: look at live leash processes (through their agent)
 * and at goroutine dumps. See docs/CLI.md.
 */
#include "cli.h"
#include "diag/quote.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "leash.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
    const char *help;
} command;

static const command commands[] = {
    {"ps", cmd_ps, "list the processes that run a leash agent",
     "usage: leash ps [--json]\n\n"
     "Lists the processes whose leash agent answers (LEASH_AGENT=1 or\n"
     "leash_agent_start()): PID, parent PID, name, live coroutines and\n"
     "coroutines proven leaked. Sockets of processes that are gone are\n"
     "skipped.\n\n"
     "  --json   one JSON array of {pid, ppid, name, coroutines, leaked}\n"},
    {"stack", cmd_stack, "print every coroutine's stack",
     "usage: leash stack PID [--debug 1|2|3|4] [--json]\n\n"
     "Prints the stack of every coroutine of PID. The default is Go's\n"
     "runtime.Stack(all) format (debug=2); --debug 3 is leash's own format\n"
     "(exact wait times, wait objects, spawn sites), 1 Go's counted\n"
     "profile text, 4 (or --json) the JSON dump.\n"},
    {"stats", cmd_stats, "print the process's vitals",
     "usage: leash stats PID [--json]     (alias: leash vitals PID)\n\n"
     "Prints coroutines (running, runnable, waiting, by wait reason), OS\n"
     "threads, workers, CPUs, coroutines proven leaked, suspects (by kind),\n"
     "live channels/contexts/tickers/groups, orphaned channels, the longest\n"
     "wait, uptime and resident memory.\n\n"
     "  --json   one JSON object\n"},
    {"vitals", cmd_stats, "alias of stats", NULL},
    {"leaks", cmd_leaks, "print proven leaks, then suspects",
     "usage: leash leaks PID [--json] [--strict]\n\n"
     "Prints the coroutines of PID proven leaked (blocked forever on a nil\n"
     "or orphaned channel, or deadlocked), then the suspects (I/O with no\n"
     "deadline, running without yielding, canceled but still blocked, many\n"
     "parked at one site, parked for long), each with its stack, what it\n"
     "waits on and where it was spawned.\n\n"
     "  --json     a JSON document (leaked and suspect dumps)\n"
     "  --strict   suspects count as leaks for the exit status\n\n"
     "Exit status 4 when leaks were found, 0 when none.\n"},
    {"profile", cmd_profile, "write a pprof profile (goroutine, block, mutex, CPU)",
     "usage: leash profile PID -o FILE [--leak | --block | --mutex |\n"
     "                                   --cpu [--seconds N]]\n\n"
     "Writes one of PID's profiles (gzipped pprof profile.proto, for\n"
     "`go tool pprof FILE`) to FILE (\"-\": standard output, refused on a\n"
     "terminal); the goroutine profile by default.\n\n"
     "  -o FILE       where to write it\n"
     "  --leak        the goroutineleak profile: proven leaks only\n"
     "  --block       the block profile (LEASH_BLOCKPROFILERATE or\n"
     "                leash_set_block_profile_rate turns it on)\n"
     "  --mutex       the mutex profile (LEASH_MUTEXPROFILEFRACTION or\n"
     "                leash_set_mutex_profile_fraction turns it on)\n"
     "  --cpu         a CPU profile, sampled for --seconds N (default 30,\n"
     "                1 to 600); one at a time per process\n"},
    {"trace", cmd_trace, "write an execution trace (Chrome/Perfetto JSON)",
     "usage: leash trace PID -o FILE [--seconds N]\n\n"
     "Records PID's scheduler events (spawn, run, park with its reason,\n"
     "unpark with the waker, yield, exit, netpoll waits) for N seconds\n"
     "(default 5, 1 to 60) and writes them to FILE (\"-\": standard\n"
     "output) as Chrome trace-event JSON: one track per worker, one per\n"
     "coroutine, flow arrows from waker to woken. Open it in\n"
     "https://ui.perfetto.dev or chrome://tracing. One trace at a time\n"
     "per process.\n\n"
     "  -o FILE       where to write it\n"
     "  --seconds N   how long to trace (default 5)\n"},
    {"top", cmd_top, "live view of coroutines by spawn site and state",
     "usage: leash top PID [--sort count|wait|leaked|site|state]\n"
     "                     [--interval MS] [-n COUNT] [--json]\n\n"
     "Shows PID's coroutines grouped by spawn site and state, refreshed\n"
     "every second, like tokio-console. Keys: c count, w longest wait,\n"
     "l leaked, s site, t state (pressing the same key again reverses the\n"
     "order), r refresh now, q quit.\n\n"
     "  --sort KEY      initial order (default count)\n"
     "  --interval MS   refresh period (default 1000, at least 100)\n"
     "  -n COUNT        stop after COUNT refreshes\n"
     "  --json          print the groups once as JSON and exit\n"},
    {"analyze", cmd_analyze, "summarise goroutine dumps (Go's or leash's), one or a fleet",
     "usage: leash analyze SOURCE [--json] [--crowd N] [--long MINUTES]\n"
     "                            [--top N] [--timeout MS]\n"
     "       leash analyze SOURCE SOURCE... | DIR [--json] [--crowd N]\n"
     "                            [--timeout MS]\n\n"
     "SOURCE is a file, - (standard input) or http://HOST:PORT[/PATH] (a\n"
     "debug endpoint: without a path, leash's /debug/leash dump, else Go's\n"
     "/debug/pprof/goroutine?debug=2). Reads a goroutine dump: Go's\n"
     "runtime.Stack(all) / pprof debug=2 text (also from a panic or\n"
     "SIGQUIT), Go's debug=1 profile text, or leash's debug=2 and debug=3\n"
     "dumps. Prints counts by state and wait reason, by creating location,\n"
     "the groups of identical stacks (most first), and flags:\n"
     "  leak     blocked forever: nil-channel waits, select with no cases,\n"
     "           coroutines leash marked LEAKED;\n"
     "  suspect  I/O waits (no deadline known), N or more parked at one\n"
     "           site (--crowd, default 10), parked MINUTES or more\n"
     "           (--long, default 1).\n\n"
     "With several sources or a directory (its files), one dump per\n"
     "instance of a service: ranks the sites where goroutines wait (first\n"
     "frame outside the runtime) and the sites that spawned them across\n"
     "instances, like LeakProf: an instance counts at a site when N or more\n"
     "wait there (--crowd) or one is a proven leak; most instances first,\n"
     "then most goroutines. Sources that cannot be read are reported and\n"
     "skipped.\n\n"
     "  --json        the summary (or the ranking) as JSON\n"
     "  --top N       groups to show (default 20; 0: all)\n"
     "  --timeout MS  for each http:// source (default 10000)\n\n"
     "Exit status 4 when a leak was flagged (a fleet: a site ranked), 3\n"
     "when the input is not a goroutine dump, 2 when no source can be\n"
     "read.\n"},
};

#define NCOMMANDS (sizeof commands / sizeof *commands)

void cli_err(const char *fmt, ...) {
    va_list ap;
    fputs("leash: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

pid_t cli_pid(const char *s) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v <= 0 || v > INT_MAX) {
        cli_err("bad PID '%s': want a positive process id", s ? s : "");
        return -1;
    }
    return (pid_t)v;
}

/* The one JSON string writer, shared with the library (diag/quote.c);
 * the CLI writes "" for a missing string. */
void cli_json_str(FILE *out, const char *s) { quote_json(out, s ? s : ""); }

const char *cli_cell(const char *s) {
    static char ring[8][1024];
    static unsigned next;
    char *b = ring[next++ % 8];
    return quote_cell(b, sizeof ring[0], s ? s : "?");
}

bool cli_is_help(const char *a) {
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

int cli_parse(int argc, char **argv, const char *const *known, bool want_pid,
              cli_opts *o) {
    memset(o, 0, sizeof *o);
    const char *pid_s = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            if (pid_s) {
                cli_err("%s: unexpected argument '%s'", argv[0], a);
                return EXIT_USAGE;
            }
            pid_s = a;
            continue;
        }
        int k = 0;
        for (; known[k]; k++) {
            size_t n = strcspn(known[k], "=");
            if (strlen(a) == n && !strncmp(a, known[k], n))
                break;
        }
        if (!known[k]) {
            cli_err("%s: unknown option '%s' (see leash %s --help)", argv[0],
                    a, argv[0]);
            return EXIT_USAGE;
        }
        o->set[k] = true;
        if (strchr(known[k], '=')) {
            if (i + 1 >= argc) {
                cli_err("%s: option %s needs a value", argv[0], a);
                return EXIT_USAGE;
            }
            o->val[k] = argv[++i];
        }
    }
    if (want_pid) {
        if (!pid_s) {
            cli_err("%s: missing PID (see leash %s --help)", argv[0], argv[0]);
            return EXIT_USAGE;
        }
        if ((o->pid = cli_pid(pid_s)) < 0)
            return EXIT_USAGE;
    } else if (pid_s) {
        cli_err("%s: unexpected argument '%s'", argv[0], pid_s);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static void usage(FILE *out) {
    fprintf(out, "usage: leash <command> [arguments]\n\n"
                 "Looks at live leash processes through their agent "
                 "(LEASH_AGENT=1) and at\ngoroutine dumps.\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-9s %s\n  %-9s %s\n", "help", "help on a command",
            "version", "print the version");
    fprintf(out, "\n`leash <command> --help` tells more. Exit status: 0 ok, "
                 "1 usage error,\n2 no such process/agent/file, 3 protocol "
                 "or format error, 4 leaks found.\n");
}

/* `leash help CMD` for the two commands main handles itself; false for
 * any other name. */
static bool help_builtin(const char *name) {
    if (!strcmp(name, "help")) {
        puts("usage: leash help [COMMAND]\n\n"
             "Without COMMAND, lists the commands; with one, prints its help\n"
             "(the same as `leash COMMAND --help`).");
        return true;
    }
    if (!strcmp(name, "version")) {
        puts("usage: leash version     (also: leash --version)\n\n"
             "Prints the version of leash and of the agent protocol it speaks.");
        return true;
    }
    return false;
}

static const command *find(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static int help_for(const command *c, FILE *out) {
    if (!c->help)
        c = find("stats");
    fputs(c->help, out);
    return EXIT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (cli_is_help(name)) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(name, "version") || !strcmp(name, "--version")) {
        printf("leash %d.%d.%d (agent protocol 1)\n", LEASH_VERSION_MAJOR,
               LEASH_VERSION_MINOR, LEASH_VERSION_PATCH);
        return EXIT_OK;
    }
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            usage(stdout);
            return EXIT_OK;
        }
        const command *c = find(argv[2]);
        if (!c && help_builtin(argv[2]))
            return EXIT_OK;
        if (!c) {
            cli_err("no such command: %s", argv[2]);
            return EXIT_USAGE;
        }
        return help_for(c, stdout);
    }
    const command *c = find(name);
    if (!c) {
        cli_err("no such command: %s (see leash --help)", name);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++)
        if (cli_is_help(argv[i]))
            return help_for(c, stdout);
    return c->fn(argc - 1, argv + 1);
}
