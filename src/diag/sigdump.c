/* SPDX-License-Identifier: MIT */
/*
 * sigdump.c — a dump on a signal that does not end the process.
 *
 * LEASH_DUMP_SIGNAL names the signal (USR1, USR2, QUIT, ... or a number);
 * LEASH_DUMP_FORMAT picks the format (default 2, Go's text; 3 leash's;
 * 4 JSON) and LEASH_DUMP_FILE a file to append to (default stderr; one
 * that cannot be opened or written is an error message, not a silent
 * fallback, which would send the dump where nobody looks). The
 * handler only sets a flag and wakes sysmon, which writes the dump: the
 * handler itself must stay async-signal-safe.
 */
#include "diag.h"

#include <errno.h>
#include <signal.h>

static _Atomic int requested;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&requested, 1);
    sysmon_kick(); /* a futex wake: async-signal-safe */
}

static int parse_signal(const char *s) {
    static const struct { const char *name; int sig; } names[] = {
        {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"QUIT", SIGQUIT},
        {"HUP", SIGHUP},   {"PWR", SIGPWR},   {"WINCH", SIGWINCH},
    };
    if (!strncmp(s, "SIG", 3))
        s += 3;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name))
            return names[i].sig;
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v > 0 && v < NSIG ? (int)v : -1;
}

void sigdump_install(void) {
    const char *e = env_str("LEASH_DUMP_SIGNAL");
    if (!e)
        return;
    int sig = parse_signal(e);
    if (sig < 0 || sig == SIGURG || sig == SIGSEGV || sig == SIGKILL ||
        sig == SIGSTOP || sig == SIGPROF) { /* PROF: the CPU profile's */
        env_reject("LEASH_DUMP_SIGNAL", e,
                   "USR1/USR2/QUIT/HUP/PWR/WINCH or a signal number "
                   "other than URG, SEGV, KILL, STOP, PROF", "no dump signal");
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* Appends a dump to LEASH_DUMP_FILE; a failure is reported on stderr
 * with the reason, and the dump is not written anywhere else. */
static void dump_to_file(const char *path, int fmt) {
    FILE *out = fopen(path, "a");
    if (!out) {
        fprintf(stderr, "leash: LEASH_DUMP_FILE=%s: cannot open: %s; "
                        "dump not written\n", path, strerror(errno));
        return;
    }
    errno = 0;
    int rc = leash_dump(out, fmt);
    bool failed = rc < 0 || fflush(out) != 0 || ferror(out);
    int err = errno;
    if (fclose(out) != 0 && !failed) {
        failed = true;
        err = errno;
    }
    if (failed)
        fprintf(stderr, "leash: LEASH_DUMP_FILE=%s: dump not written: %s\n",
                path, err ? strerror(err) : leash_strerror(rc));
}

/* sysmon: writes the requested dump. */
void sigdump_process(void) {
    if (!atomic_exchange(&requested, 0))
        return;
    int fmt = (int)env_u64("LEASH_DUMP_FORMAT", 2, 0, 4);
    const char *path = env_str("LEASH_DUMP_FILE");
    if (path)
        dump_to_file(path, fmt);
    else
        leash_dump(stderr, fmt);
}
