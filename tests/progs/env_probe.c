/* SPDX-License-Identifier: MIT */
/*
 * env_probe.c — testprog_env_probe: runs every code path that reads a
 * LEASH_* variable, so that tests/test_env.c can check each variable's
 * parsing in a child process with the variable set.
 *
 *   all       start the runtime (PROCS, STACK_SIZE, HOG_MS, DUMP_SIGNAL,
 *             LEAKCHECK, DEBUG_ADDR, AGENT); try to listen on 0.0.0.0
 *             (DEBUG_ALLOW_REMOTE, printed as "remote=0|1"); GET /metrics
 *             from the loopback endpoint (DEBUG_TIMEOUT_MS, SUSPECT_*,
 *             METRICS_SITES; its "leash_workers N" line is printed);
 *             orphan a receiver (ORPHANS); raise SIGUSR1 when
 *             LEASH_DUMP_SIGNAL=USR1 (DUMP_FORMAT, DUMP_FILE); close(NULL)
 *             (STRICT: "panic:" and abort, or "strict=rc"). The orphaned
 *             receiver is still alive at exit (LEAKCHECK,
 *             LEAKCHECK_TIMEOUT_MS: status 23).
 *   deadlock  main blocks on a nil channel (DEADLOCK).
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "leash.h"

#define MS 1000000LL

static void print_metric(const char *body, const char *name) {
    for (const char *p = body; (p = strstr(p, name)); p++)
        if (p == body || p[-1] == '\n') {
            printf("%.*s\n", (int)strcspn(p, "\n"), p);
            return;
        }
}

/* GET /metrics over loopback; prints the worker count. */
static void get_metrics(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int64_t dl = leash_now() + 5000 * MS;
    static char buf[1 << 16];
    size_t n = 0;
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (leash_connect(fd, (struct sockaddr *)&a, sizeof a, dl) == 0 &&
        leash_write(fd, req, sizeof req - 1, dl) > 0) {
        ssize_t r;
        while (n < sizeof buf - 1 &&
               (r = leash_read(fd, buf + n, sizeof buf - 1 - n, dl)) > 0)
            n += (size_t)r;
    }
    buf[n] = 0;
    leash_fd_close(fd);
    print_metric(buf, "leash_workers ");
}

static void receiver(void *arg) {
    int v;
    leash_recv((leash_chan *)arg, &v);
}

static int all(void *arg) {
    (void)arg;
    int remote = leash_debug_listen("0.0.0.0:0");
    printf("remote=%d\n", remote > 0);
    int port = leash_debug_listen("127.0.0.1:0");
    if (port > 0)
        get_metrics(port);
    leash_chan *c = leash_chan_make(sizeof(int), 0);
    leash_go(receiver, c, c);
    leash_sleep(20 * MS);
    leash_release(c); /* the receiver is the last holder: an orphan */
    leash_sleep(20 * MS);
    const char *sig = getenv("LEASH_DUMP_SIGNAL");
    if (sig && !strcmp(sig, "USR1")) {
        raise(SIGUSR1);
        leash_sleep(200 * MS); /* sysmon writes the dump */
    }
    fflush(stdout);
    printf("strict=%d\n", leash_close(NULL));
    fflush(stdout);
    return 0;
}

static int deadlock(void *arg) {
    (void)arg;
    int v;
    leash_recv((leash_chan *)NULL, &v);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && !strcmp(argv[1], "deadlock"))
        return leash_run(deadlock, NULL);
    return leash_run(all, NULL);
}
