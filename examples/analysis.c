/* SPDX-License-Identifier: MIT */
/*
 * analysis.c — the write-up's five ways to find a goroutine leak, each
 * shown on the leaky queryAll (queryall.c):
 *
 *   1. the count:        leash_num_coroutines()      runtime.NumGoroutine
 *   2. an HTTP endpoint: leash_debug_listen()         net/http/pprof
 *        curl 'http://127.0.0.1:PORT/debug/pprof/goroutine?debug=1'
 *   3. a dump to stdout: leash_dump(stdout, 1)        pprof.Lookup("goroutine").WriteTo(os.Stdout, 1)
 *   4. an agent:         leash_agent_start()          gops agent.Start()
 *        leash ps; leash stats PID                     gops; gops vitals -p=PID
 *   5. a leak check:     leash_snapshot_take() +      leaktest / goleak
 *                        leash_leak_verify()
 *      (in a test: tests/test_examples.c, "leaktest" tests)
 *
 * The example fetches its own endpoint and runs the `leash` CLI built
 * beside it (build/leash), so that one run shows every method. With
 * `--serve SECONDS` it then stays up that long, for you to try:
 *
 *     ./build/example_analysis --serve 60 &
 *     curl 'http://127.0.0.1:6060/debug/pprof/goroutine?debug=1'
 *     ./build/leash ps
 *     ./build/leash stats <pid>
 *     ./build/leash leaks <pid>
 *
 * Run:   make demo SCENARIO=analysis
 * Exit:  0 (23 under LEASH_LEAKCHECK=1: the queries leak by design)
 */
#include <leash.h>

#include "example.h"

#include <arpa/inet.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------- the leak (queryall.c) */

static void ask(void *arg)
{
    leash_chan *ch = arg;
    int v = rand_intn(100);
    leash_sleep(v * MS);
    leash_send(ch, &v);
}

static int query_all(void)
{
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    leash_go(ask, ch, ch);
    leash_go(ask, ch, ch);
    leash_go(ask, ch, ch);
    int v = 0;
    leash_recv(ch, &v);
    leash_release(ch);
    return v;
}

/* ------------------------------------------------------------- helpers */

/* GET path from 127.0.0.1:port with leash's I/O; prints the body. */
static void http_get(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int64_t deadline = leash_now() + 5000 * MS;
    if (leash_connect(fd, (struct sockaddr *)&a, sizeof a, deadline) < 0) {
        printf("connect failed\n");
        leash_fd_close(fd);
        return;
    }
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Connection: close\r\n\r\n", path, port);
    leash_write(fd, req, (size_t)n, deadline);
    static char resp[1 << 16];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof resp - 1 &&
           (r = leash_read(fd, resp + len, sizeof resp - 1 - len, deadline)) > 0)
        len += (size_t)r;
    resp[len] = 0;
    leash_fd_close(fd);
    char *body = strstr(resp, "\r\n\r\n");
    fputs(body ? body + 4 : resp, stdout);
}

static char cli_path[PATH_MAX];

typedef struct {
    const char *args;
} cli_job;

/* Runs `leash ARGS` (the CLI beside this program) on a helper thread. */
static intptr_t run_cli_blocking(void *p)
{
    cli_job *j = p;
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", cli_path, j->args);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, f))
        fputs(line, stdout);
    return pclose(f);
}

static void run_cli(const char *args)
{
    printf("$ leash %s\n", args);
    fflush(stdout);
    cli_job j = {args};
    leash_blocking(run_cli_blocking, &j);
}

/* ---------------------------------------------------------------- main */

static int serve_seconds;

static int run(void *arg)
{
    (void)arg;
    leash_snapshot *snap = leash_snapshot_take(); /* method 5, see below */
    for (int i = 0; i < 4; i++) {
        query_all();
        leash_sleep(150 * MS);
    }

    printf("== 1. the count (runtime.NumGoroutine)\n\n");
    printf("leash_num_coroutines() = %zu\n\n", leash_num_coroutines());

    printf("== 2. the HTTP endpoint (net/http/pprof)\n\n");
    int port = leash_debug_listen(serve_seconds ? "127.0.0.1:6060" : NULL);
    if (port < 0)
        port = leash_debug_listen(NULL); /* 6060 taken: any free port */
    if (port < 0) {
        printf("leash_debug_listen: %s\n\n", leash_strerror(port));
    } else {
        printf("$ curl 'http://127.0.0.1:%d/debug/pprof/goroutine?debug=1'\n",
               port);
        fflush(stdout);
        http_get(port, "/debug/pprof/goroutine?debug=1");
        printf("\n");
    }

    printf("== 3. a dump to stdout (pprof.Lookup(\"goroutine\").WriteTo(os.Stdout, 1))\n\n");
    printf("leash_dump(stdout, LEASH_DUMP_COUNTS):\n");
    fflush(stdout);
    leash_dump(stdout, LEASH_DUMP_COUNTS);

    printf("== 4. the agent (gops)\n\n");
    int rc = leash_agent_start();
    if (rc < 0) {
        printf("leash_agent_start: %s\n\n", strerror(-rc));
    } else if (access(cli_path, X_OK) == 0) {
        char args[64];
        run_cli("ps");
        snprintf(args, sizeof args, "stats %d", (int)getpid());
        run_cli(args);
        printf("\n");
    } else {
        printf("agent started; run `leash ps` and `leash stats %d`\n\n",
               (int)getpid());
    }

    printf("== 5. a leak check (leaktest / goleak)\n\n");
    leash_leak_opts opts = {.timeout_ns = 500 * MS, .out = stdout};
    int n = leash_leak_verify(snap, &opts);
    printf("leash_leak_verify: %d coroutine(s) leaked\n", n);
    leash_snapshot_free(snap);

    if (serve_seconds > 0) {
        printf("\nserving for %d s: pid %d, "
               "http://127.0.0.1:%d/debug/pprof/\n",
               serve_seconds, (int)getpid(), port);
        fflush(stdout);
        leash_sleep(serve_seconds * 1000 * MS);
    }
    leash_agent_stop();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--serve"))
        serve_seconds = atoi(argv[2]);
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(cli_path, sizeof cli_path, "%s/leash", dirname(self));
    return leash_run(run, NULL);
}
