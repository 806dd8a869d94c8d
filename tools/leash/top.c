/* SPDX-License-Identifier: MIT */
/*
 * top.c — `leash top PID`: a live view of a process's coroutines grouped
 * by spawn site and state, refreshed every second (like tokio-console),
 * drawn with ANSI escape codes on the alternate screen. Keys: c w l s t
 * sort (again: reverse), r refresh, q quit. Without a terminal (output
 * piped) it prints plain tables.
 *
 * One connection to the agent for the whole session (reopened once if the
 * agent dropped it); each refresh asks `stats` and `top`.
 */
#define _GNU_SOURCE 1
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

typedef struct {
    char *site, *func, *state;
    long long count, leaked, suspects, max_wait_ms;
} row;

enum { S_COUNT, S_WAIT, S_LEAKED, S_SITE, S_STATE };
static const char *const sort_names[] = {"count", "wait", "leaked", "site",
                                         "state"};

static int sort_key;
static bool sort_rev;
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static int cmp_rows(const void *a, const void *b) {
    const row *x = a, *y = b;
    int c = 0;
    switch (sort_key) {
    case S_COUNT: c = (y->count > x->count) - (y->count < x->count); break;
    case S_WAIT:
        c = (y->max_wait_ms > x->max_wait_ms) - (y->max_wait_ms < x->max_wait_ms);
        break;
    case S_LEAKED: c = (y->leaked > x->leaked) - (y->leaked < x->leaked); break;
    case S_SITE: c = strcmp(x->site, y->site); break;
    case S_STATE: c = strcmp(x->state, y->state); break;
    }
    if (!c)
        c = (y->count > x->count) - (y->count < x->count);
    if (!c)
        c = strcmp(x->site, y->site);
    return sort_rev ? -c : c;
}

/* Parses the agent's tab-separated groups (the header line first). */
static int parse_rows(char *body, row **out) {
    int n = 0, cap = 0;
    row *rows = NULL;
    char *save = NULL;
    bool header = true;
    for (char *l = strtok_r(body, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (header) {
            header = false;
            continue;
        }
        char *f[7];
        int k = 0;
        for (char *p = l; k < 7; k++) {
            f[k] = p;
            char *t = strchr(p, '\t');
            if (!t) {
                k++;
                break;
            }
            *t = 0;
            p = t + 1;
        }
        if (k != 7)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            row *v = realloc(rows, sizeof *v * (size_t)cap);
            if (!v)
                break;
            rows = v;
        }
        rows[n++] = (row){f[0], f[1], f[2], atoll(f[3]), atoll(f[4]),
                          atoll(f[5]), atoll(f[6])};
    }
    *out = rows;
    return n;
}

static void fmt_wait(char *buf, size_t n, long long ms) {
    if (ms <= 0)
        snprintf(buf, n, "-");
    else if (ms < 60000)
        snprintf(buf, n, "%.1fs", (double)ms / 1000);
    else if (ms < 3600000)
        snprintf(buf, n, "%lldm%02llds", ms / 60000, ms / 1000 % 60);
    else
        snprintf(buf, n, "%lldh%02lldm", ms / 3600000, ms / 60000 % 60);
}

static const char *short_site(const char *site) {
    const char *slash = strrchr(site, '/');
    return slash ? slash + 1 : site;
}

static void draw(FILE *o, bool tty, pid_t pid, const char *stats, row *rows,
                 int n) {
    int cols = 120, lines = 40;
    struct winsize ws;
    if (tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col) {
        cols = ws.ws_col;
        lines = ws.ws_row;
    }
    char name[64] = "?";
    kv_get(stats, "name", name, sizeof name);
    char line[1024];
    if (tty)
        fputs("\033[H\033[2J", o);
    snprintf(line, sizeof line,
             "leash top - pid %d (%s)  coroutines %lld  leaked %lld  "
             "suspects %lld  threads %lld  workers %lld",
             (int)pid, name, kv_num(stats, "coroutines", 0),
             kv_num(stats, "leaked", 0), kv_num(stats, "suspects", 0),
             kv_num(stats, "os_threads", 0), kv_num(stats, "workers", 0));
    fprintf(o, "%.*s\n", cols, line);
    snprintf(line, sizeof line,
             "sort: %s %s   keys: c count  w wait  l leaked  s site  "
             "t state  r refresh  q quit",
             sort_names[sort_key], sort_rev ? "(reversed)" : "");
    fprintf(o, "%.*s\n\n", cols, line);
    snprintf(line, sizeof line, "%7s %6s %5s %9s  %-24s %-20s %s", "COUNT",
             "LEAKED", "SUSP", "MAX WAIT", "STATE", "FUNC", "SITE");
    fprintf(o, "%s%.*s%s\n", tty ? "\033[7m" : "", cols, line,
            tty ? "\033[0m" : "");
    int room = tty ? lines - 5 : n;
    for (int i = 0; i < n && i < room; i++) {
        char w[32];
        fmt_wait(w, sizeof w, rows[i].max_wait_ms);
        snprintf(line, sizeof line, "%7lld %6lld %5lld %9s  %-24.24s %-20.20s %s",
                 rows[i].count, rows[i].leaked, rows[i].suspects, w,
                 cli_cell(rows[i].state), cli_cell(rows[i].func),
                 cli_cell(short_site(rows[i].site)));
        bool red = tty && rows[i].leaked;
        fprintf(o, "%s%.*s%s\n", red ? "\033[31m" : "", cols, line,
                red ? "\033[0m" : "");
    }
    if (n > room)
        fprintf(o, "... %d more group(s)", n - room);
    fflush(o);
}

static void print_json(pid_t pid, const char *stats, row *rows, int n) {
    printf("{\"pid\":%d,\"stats\":", (int)pid);
    kv_json(stdout, stats);
    printf(",\"groups\":[");
    for (int i = 0; i < n; i++) {
        printf("%s\n{\"site\":", i ? "," : "");
        cli_json_str(stdout, rows[i].site);
        printf(",\"func\":");
        cli_json_str(stdout, rows[i].func);
        printf(",\"state\":");
        cli_json_str(stdout, rows[i].state);
        printf(",\"count\":%lld,\"leaked\":%lld,\"suspects\":%lld,"
               "\"max_wait_ms\":%lld}",
               rows[i].count, rows[i].leaked, rows[i].suspects,
               rows[i].max_wait_ms);
    }
    printf("\n]}\n");
}

/* One refresh: stats and groups; reconnects once if the agent dropped us. */
static int fetch(agent_conn *c, char **stats, char **top) {
    size_t len;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt) {
            agent_close(c);
            if (agent_open(c, c->pid, 10000, true))
                break;
        }
        if (agent_call(c, AC_STATS, NULL, stats, &len, true))
            continue;
        if (agent_call(c, AC_TOP, NULL, top, &len, true)) {
            free(*stats);
            continue;
        }
        return EXIT_OK;
    }
    if (cli_proc_gone(c->pid))
        cli_err("top: process %d exited", (int)c->pid);
    else
        cli_err("top: lost the agent of process %d", (int)c->pid);
    return EXIT_NOPROC;
}

int cmd_top(int argc, char **argv) {
    static const char *const known[] = {"--sort=", "--interval=", "-n=",
                                        "--json", NULL};
    cli_opts o;
    int rc = cli_parse(argc, argv, known, true, &o);
    if (rc)
        return rc;
    pid_t pid = o.pid;
    sort_key = S_COUNT;
    if (o.set[0]) {
        int k = 0;
        while (k < 5 && strcmp(sort_names[k], o.val[0]))
            k++;
        if (k == 5) {
            cli_err("top: --sort must be count, wait, leaked, site or state");
            return EXIT_USAGE;
        }
        sort_key = k;
    }
    long interval = 1000, count = -1;
    char *end;
    if (o.set[1] && ((interval = strtol(o.val[1], &end, 10)) < 100 || *end ||
                   interval > 3600000)) {
        cli_err("top: --interval must be 100 to 3600000 milliseconds");
        return EXIT_USAGE;
    }
    if (o.set[2] && ((count = strtol(o.val[2], &end, 10)) < 1 || *end)) {
        cli_err("top: -n must be a positive count");
        return EXIT_USAGE;
    }
    agent_conn c;
    if ((rc = agent_open(&c, pid, 10000, false)))
        return rc;
    bool tty = isatty(STDOUT_FILENO) && !o.set[3];
    bool keys = tty && isatty(STDIN_FILENO);
    struct termios saved;
    if (keys && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios raw = saved;
        raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    } else {
        keys = false;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (tty)
        fputs("\033[?1049h\033[?25l", stdout);
    rc = EXIT_OK;
    for (long iter = 0; !stop && (count < 0 || iter < count); iter++) {
        char *stats, *top;
        if ((rc = fetch(&c, &stats, &top)))
            break;
        row *rows;
        int n = parse_rows(top, &rows);
        qsort(rows, (size_t)n, sizeof *rows, cmp_rows);
        if (o.set[3]) {
            print_json(pid, stats, rows, n);
            free(rows);
            free(stats);
            free(top);
            break;
        }
        draw(stdout, tty, pid, stats, rows, n);
        if (!tty)
            fputc('\n', stdout);
        free(rows);
        free(stats);
        free(top);
        if (count >= 0 && iter + 1 >= count)
            break;
        /* Wait for the next refresh, handling keys meanwhile. */
        int64_t left = interval;
        while (left > 0 && !stop) {
            struct pollfd pf = {.fd = STDIN_FILENO, .events = POLLIN};
            int pr = poll(&pf, keys ? 1 : 0, (int)(left < 100 ? left : 100));
            left -= 100;
            if (pr <= 0 || !keys)
                continue;
            char ch;
            if (read(STDIN_FILENO, &ch, 1) != 1)
                continue;
            int k = -1;
            switch (ch) {
            case 'q': case 'Q': stop = 1; break;
            case 'c': k = S_COUNT; break;
            case 'w': k = S_WAIT; break;
            case 'l': k = S_LEAKED; break;
            case 's': k = S_SITE; break;
            case 't': k = S_STATE; break;
            case 'r': left = 0; break;
            default: break;
            }
            if (k >= 0) {
                sort_rev = k == sort_key ? !sort_rev : false;
                sort_key = k;
                left = 0;
            }
        }
    }
    if (tty)
        fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
    if (keys)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    agent_close(&c);
    return rc;
}
