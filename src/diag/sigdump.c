/*
 * sigdump.c — a dump on a signal that does not end the process.
 *
 * LEASH_DUMP_SIGNAL names the signal (USR1, USR2, QUIT, ... or a number);
 * LEASH_DUMP_FORMAT picks the format (default 2, Go's text; 3 leash's;
 * 4 JSON) and LEASH_DUMP_FILE a file to append to (default stderr). The
 * handler only sets a flag and wakes sysmon, which writes the dump: the
 * handler itself must stay async-signal-safe.
 */
#include "diag.h"

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
    const char *e = getenv("LEASH_DUMP_SIGNAL");
    if (!e || !*e)
        return;
    int sig = parse_signal(e);
    if (sig < 0 || sig == SIGURG || sig == SIGSEGV || sig == SIGKILL ||
        sig == SIGSTOP) {
        fprintf(stderr, "leash: ignoring LEASH_DUMP_SIGNAL=%s\n", e);
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* sysmon: writes the requested dump. */
void sigdump_process(void) {
    if (!atomic_exchange(&requested, 0))
        return;
    int fmt = (int)env_u64("LEASH_DUMP_FORMAT", 2, 0, 4);
    const char *path = getenv("LEASH_DUMP_FILE");
    FILE *out = path && *path ? fopen(path, "a") : stderr;
    if (!out)
        out = stderr;
    leash_dump(out, fmt);
    if (out != stderr)
        fclose(out);
}
