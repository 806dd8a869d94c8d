/* SPDX-License-Identifier: MIT */
/*
 * proc.c — the commands that ask a live process's agent: ps, stack,
 * stats (vitals), leaks, profile.
 */
#define _GNU_SOURCE 1
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ ps */

typedef struct {
    int pid;
    char *info;
} psrow;

static int cmp_row(const void *a, const void *b) {
    return ((const psrow *)a)->pid - ((const psrow *)b)->pid;
}

int cmd_ps(int argc, char **argv) {
    static const char *const known[] = {"--json", NULL};
    cli_opts o;
    int rc = cli_parse(argc, argv, known, false, &o);
    if (rc)
        return rc;
    char *dirs[64];
    int nd = agent_dirs(dirs, 64);
    psrow *rows = NULL;
    int nrows = 0, cap = 0;
    for (int i = 0; i < nd; i++) {
        DIR *d = opendir(dirs[i]);
        for (struct dirent *e; d && (e = readdir(d));) {
            char *end;
            long pid = strtol(e->d_name, &end, 10);
            if (end == e->d_name || strcmp(end, ".sock") || pid <= 0)
                continue;
            bool dup = false;
            for (int k = 0; k < nrows; k++)
                dup |= rows[k].pid == pid;
            if (dup)
                continue;
            agent_conn c;
            if (agent_open(&c, (pid_t)pid, 2000, true))
                continue; /* stale: its process is gone */
            char *body;
            size_t len;
            int r = agent_call(&c, AC_PS_INFO, NULL, &body, &len, true);
            agent_close(&c);
            if (r)
                continue;
            if (nrows == cap) {
                cap = cap ? cap * 2 : 16;
                psrow *v = realloc(rows, sizeof *v * (size_t)cap);
                if (!v) {
                    free(body);
                    break;
                }
                rows = v;
            }
            rows[nrows++] = (psrow){(int)pid, body};
        }
        if (d)
            closedir(d);
        free(dirs[i]);
    }
    if (nrows)
        qsort(rows, (size_t)nrows, sizeof *rows, cmp_row);
    if (o.set[0]) {
        fputc('[', stdout);
        for (int i = 0; i < nrows; i++) {
            fputs(i ? ",\n" : "\n", stdout);
            kv_json(stdout, rows[i].info);
        }
        fputs(nrows ? "\n]\n" : "]\n", stdout);
    } else {
        printf("%-8s %-8s %-20s %11s %7s\n", "PID", "PPID", "NAME",
               "COROUTINES", "LEAKED");
        for (int i = 0; i < nrows; i++) {
            char name[256];
            if (!kv_get(rows[i].info, "name", name, sizeof name))
                snprintf(name, sizeof name, "?");
            printf("%-8d %-8lld %-20s %11lld %7lld\n", rows[i].pid,
                   kv_num(rows[i].info, "ppid", 0), cli_cell(name),
                   kv_num(rows[i].info, "coroutines", 0),
                   kv_num(rows[i].info, "leaked", 0));
        }
    }
    for (int i = 0; i < nrows; i++)
        free(rows[i].info);
    free(rows);
    return EXIT_OK;
}

/* ------------------------------------------------------------ stack */

int cmd_stack(int argc, char **argv) {
    static const char *const known[] = {"--debug=", "--json", NULL};
    cli_opts o;
    int rc = cli_parse(argc, argv, known, true, &o);
    if (rc)
        return rc;
    pid_t pid = o.pid;
    const char *debug = o.set[1] ? "4" : "2";
    if (o.set[0]) {
        if (strlen(o.val[0]) != 1 || o.val[0][0] < '1' || o.val[0][0] > '4') {
            cli_err("stack: --debug must be 1, 2, 3 or 4 (0 is `leash "
                    "profile`)");
            return EXIT_USAGE;
        }
        debug = o.val[0];
    }
    char *body;
    size_t len;
    if ((rc = agent_query(pid, AC_STACK, debug, &body, &len)))
        return rc;
    fwrite(body, 1, len, stdout);
    free(body);
    return EXIT_OK;
}

/* ------------------------------------------------------------ stats */

static void human_bytes(char *buf, size_t n, long long b) {
    if (b < 0)
        snprintf(buf, n, "?");
    else if (b >= 1 << 30)
        snprintf(buf, n, "%.1f GiB", (double)b / (1 << 30));
    else if (b >= 1 << 20)
        snprintf(buf, n, "%.1f MiB", (double)b / (1 << 20));
    else
        snprintf(buf, n, "%.1f KiB", (double)b / 1024);
}

static void human_secs(char *buf, size_t n, double s) {
    long long t = (long long)s;
    if (s < 0)
        snprintf(buf, n, "?");
    else if (t >= 86400)
        snprintf(buf, n, "%lldd%lldh%lldm", t / 86400, t / 3600 % 24, t / 60 % 60);
    else if (t >= 3600)
        snprintf(buf, n, "%lldh%lldm%llds", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60)
        snprintf(buf, n, "%lldm%llds", t / 60, t % 60);
    else
        snprintf(buf, n, "%.1fs", s);
}

/* Writes an agent's reply (b, len; freed here) to file or stdout: 0, or
 * EXIT_NOPROC with a message naming `what`. */
static int write_reply(const char *what, char *b, size_t len,
                       const char *file, bool to_stdout) {
    int fd = to_stdout ? STDOUT_FILENO
                       : open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                              0644);
    if (fd < 0) {
        cli_err("%s: cannot write %s: %s", what, file, strerror(errno));
        free(b);
        return EXIT_NOPROC;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, b + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (!to_stdout && close(fd) < 0)
        off = 0;
    free(b);
    if (off != len) {
        cli_err("%s: cannot write %s: %s", what, file, strerror(errno));
        return EXIT_NOPROC;
    }
    return 0;
}

/* Prints "prefix.key value" lines as "key N, key N". */
static void print_group(const char *body, const char *prefix) {
    size_t pn = strlen(prefix);
    bool first = true;
    for (const char *l = body; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t ln = e ? (size_t)(e - l) : strlen(l);
        if (ln > pn && !strncmp(l, prefix, pn)) {
            printf("%s%.*s", first ? "" : ", ", (int)(ln - pn), l + pn);
            first = false;
        }
        l = e ? e + 1 : NULL;
    }
    if (first)
        printf("none");
}

int cmd_stats(int argc, char **argv) {
    static const char *const known[] = {"--json", NULL};
    cli_opts o;
    int rc = cli_parse(argc, argv, known, true, &o);
    if (rc)
        return rc;
    pid_t pid = o.pid;
    char *b;
    size_t len;
    if ((rc = agent_query(pid, AC_STATS, NULL, &b, &len)))
        return rc;
    if (o.set[0]) {
        kv_json(stdout, b);
        fputc('\n', stdout);
        free(b);
        return EXIT_OK;
    }
    char name[256] = "?", ver[32] = "?", up[32], rss[32], tmp[64];
    kv_get(b, "name", name, sizeof name);
    kv_get(b, "version", ver, sizeof ver);
    human_secs(up, sizeof up, kv_get(b, "uptime_s", tmp, sizeof tmp)
                                  ? strtod(tmp, NULL) : -1);
    human_bytes(rss, sizeof rss, kv_num(b, "rss_bytes", -1));
    printf("pid:            %lld\n", kv_num(b, "pid", 0));
    printf("ppid:           %lld\n", kv_num(b, "ppid", 0));
    printf("name:           %s\n", cli_cell(name));
    printf("leash version:  %s\n", ver);
    printf("coroutines:     %lld (running %lld, runnable %lld, waiting %lld)\n",
           kv_num(b, "coroutines", 0), kv_num(b, "running", 0),
           kv_num(b, "runnable", 0), kv_num(b, "waiting", 0));
    printf("waiting on:     ");
    print_group(b, "wait.");
    printf("\nleaked:         %lld (proven: blocked forever)\n",
           kv_num(b, "leaked", 0));
    printf("suspects:       %lld (", kv_num(b, "suspects", 0));
    print_group(b, "suspect.");
    printf(")\nlongest wait:   %lld ms\n", kv_num(b, "max_wait_ms", 0));
    printf("sched latency:  %.3f ms (longest runnable wait, last 10 s)\n",
           kv_num(b, "sched_latency_us", 0) / 1000.0);
    printf("OS threads:     %lld\n", kv_num(b, "os_threads", 0));
    printf("workers:        %lld\n", kv_num(b, "workers", 0));
    printf("CPUs:           %lld\n", kv_num(b, "cpus", 0));
    printf("objects:        ");
    print_group(b, "objects.");
    printf("\norphaned chans: %lld (since start)\n", kv_num(b, "orphans_total", 0));
    printf("uptime:         %s\n", up);
    printf("RSS:            %s\n", rss);
    free(b);
    return EXIT_OK;
}

/* ------------------------------------------------------------ leaks */

int cmd_leaks(int argc, char **argv) {
    static const char *const known[] = {"--json", "--strict", NULL};
    cli_opts o;
    int rc = cli_parse(argc, argv, known, true, &o);
    if (rc)
        return rc;
    pid_t pid = o.pid;
    char *b;
    size_t len;
    if ((rc = agent_query(pid, AC_LEAKS, o.set[0] ? "json" : NULL, &b, &len)))
        return rc;
    fwrite(b, 1, len, stdout);
    long long leaked = -1, suspects = 0;
    const char *p;
    if (o.set[0]) {
        if ((p = strstr(b, "\"leaked\":")))
            leaked = strtoll(p + 9, NULL, 10);
        if ((p = strstr(b, "\"suspects\":")))
            suspects = strtoll(p + 11, NULL, 10);
    } else {
        if (sscanf(b, "leash: %lld coroutine", &leaked) != 1)
            leaked = -1;
        if ((p = strstr(b, "\nleash: ")) &&
            sscanf(p, "\nleash: %lld suspect", &suspects) != 1)
            suspects = 0;
    }
    free(b);
    if (leaked < 0) {
        cli_err("leaks: unexpected reply from the agent");
        return EXIT_PROTO;
    }
    return leaked > 0 || (o.set[1] && suspects > 0) ? EXIT_LEAKS : EXIT_OK;
}

/* ------------------------------------------------------------ profile */

int cmd_profile(int argc, char **argv) {
    static const char *const known[] = {"-o=", "--output=", "--leak",
                                        "--block", "--mutex", "--cpu",
                                        "--seconds=", NULL};
    cli_opts o;
    int rc = cli_parse(argc, argv, known, true, &o);
    if (rc)
        return rc;
    pid_t pid = o.pid;
    const char *file = o.set[0] ? o.val[0] : o.set[1] ? o.val[1] : NULL;
    if (o.set[2] + o.set[3] + o.set[4] + o.set[5] > 1) {
        cli_err("profile: --leak, --block, --mutex and --cpu exclude each "
                "other");
        return EXIT_USAGE;
    }
    long sec = 30;
    if (o.set[6]) {
        char *end;
        errno = 0;
        sec = strtol(o.val[6], &end, 10);
        if (!o.set[5]) {
            cli_err("profile: --seconds goes with --cpu");
            return EXIT_USAGE;
        }
        if (!*o.val[6] || *end || errno || sec < 1 || sec > AGENT_CPU_MAX_S) {
            cli_err("profile: bad --seconds '%s': want 1 to %d", o.val[6],
                    AGENT_CPU_MAX_S);
            return EXIT_USAGE;
        }
    }
    if (!file) {
        cli_err("profile: missing -o FILE (\"-o -\" for standard output)");
        return EXIT_USAGE;
    }
    bool to_stdout = !strcmp(file, "-");
    if (to_stdout && isatty(STDOUT_FILENO)) {
        cli_err("profile: refusing to write a binary profile to a terminal");
        return EXIT_USAGE;
    }
    char arg[AGENT_MAX_ARG + 1];
    snprintf(arg, sizeof arg, "%s",
             o.set[2] ? "leak" : o.set[3] ? "block" : o.set[4] ? "mutex" : "");
    if (o.set[5])
        snprintf(arg, sizeof arg, "cpu-%ld", sec);
    char *b;
    size_t len;
    agent_conn c;
    /* A CPU profile answers after its seconds: wait that much longer. */
    if ((rc = agent_open(&c, pid, 30000 + (o.set[5] ? (int)sec * 1000 : 0),
                         false)))
        return rc;
    if (o.set[5])
        fprintf(stderr, "leash: profiling the CPU of %d for %ld s\n",
                (int)pid, sec);
    rc = agent_call(&c, AC_PROFILE, arg[0] ? arg : NULL, &b, &len, false);
    agent_close(&c);
    if (rc)
        return rc;
    if (len < 2 || (unsigned char)b[0] != 0x1f || (unsigned char)b[1] != 0x8b) {
        free(b);
        cli_err("profile: the agent's reply is not a gzipped profile");
        return EXIT_PROTO;
    }
    rc = write_reply("profile", b, len, file, to_stdout);
    if (rc)
        return rc;
    if (!to_stdout)
        fprintf(stderr, "leash: wrote %zu bytes to %s (go tool pprof %s)\n",
                len, file, file);
    return EXIT_OK;
}

/* -------------------------------------------------------------- trace */

int cmd_trace(int argc, char **argv) {
    static const char *const known[] = {"-o=", "--output=", "--seconds=",
                                        NULL};
    cli_opts o;
    int rc = cli_parse(argc, argv, known, true, &o);
    if (rc)
        return rc;
    pid_t pid = o.pid;
    const char *file = o.set[0] ? o.val[0] : o.set[1] ? o.val[1] : NULL;
    long sec = 5;
    if (o.set[2]) {
        char *end;
        errno = 0;
        sec = strtol(o.val[2], &end, 10);
        if (!*o.val[2] || *end || errno || sec < 1 ||
            sec > AGENT_TRACE_MAX_S) {
            cli_err("trace: bad --seconds '%s': want 1 to %d", o.val[2],
                    AGENT_TRACE_MAX_S);
            return EXIT_USAGE;
        }
    }
    if (!file) {
        cli_err("trace: missing -o FILE (\"-o -\" for standard output)");
        return EXIT_USAGE;
    }
    bool to_stdout = !strcmp(file, "-");
    char arg[16];
    snprintf(arg, sizeof arg, "%ld", sec);
    char *b;
    size_t len;
    agent_conn c;
    /* The reply comes after the trace's seconds: wait that much longer. */
    if ((rc = agent_open(&c, pid, 30000 + (int)sec * 1000, false)))
        return rc;
    fprintf(stderr, "leash: tracing %d for %ld s\n", (int)pid, sec);
    rc = agent_call(&c, AC_TRACE, arg, &b, &len, false);
    agent_close(&c);
    if (rc)
        return rc;
    if (len < 16 || b[0] != '{') {
        free(b);
        cli_err("trace: the agent's reply is not a JSON trace");
        return EXIT_PROTO;
    }
    rc = write_reply("trace", b, len, file, to_stdout);
    if (rc)
        return rc;
    if (!to_stdout)
        fprintf(stderr, "leash: wrote %zu bytes to %s (open it in "
                        "https://ui.perfetto.dev or chrome://tracing)\n",
                len, file);
    return EXIT_OK;
}
