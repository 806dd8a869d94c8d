/* SPDX-License-Identifier: MIT */
/*
 * dbg_server.c — testprog_dbg_server: a live process for the tools' tests
 * (test_http.c, test_agent.c, test_cli.c).
 *
 *   testprog_dbg_server [--leaks N] [--crowd N] [--no-http] [--agent]
 *                       [--no-nil] [--no-io] [--addr ADDR] [--lifetime S]
 *
 * It starts the HTTP debug endpoint (leash_debug_listen(ADDR), default
 * "127.0.0.1:0") unless --no-http, the agent if --agent (LEASH_AGENT=1
 * starts it too), then leaks coroutines the way the classic write-up
 * shows:
 *   - queryAll N times (default 3): three queries race on an unbuffered
 *     channel, the first answer wins, the two losers block forever on
 *     their send (orphaned: 2 proven leaks per call, each call settled
 *     before the next starts);
 *   - one receive on a nil channel (1 proven leak; not with --no-nil);
 *   - one read on a pipe with no deadline (a suspect, not a proof; not
 *     with --no-io);
 *   - --crowd N coroutines waiting on a channel main keeps (a "crowd"
 *     with LEASH_SUSPECT_CROWD <= N once they waited LEASH_SUSPECT_WAIT_MS);
 *   - one healthy ticker loop (sleeping).
 * Proven leaks: 2*N + 1 (2*N with --no-nil). It prints "pid=P", "port=PORT" (with the HTTP
 * endpoint), "agent=PATH" (with the agent), "leaked=L", then "ready", and
 * lives LIFETIME seconds (default 60) unless killed.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leash.h"

#define MS 1000000LL

static int n_leaks = 3, n_crowd = 0, lifetime_s = 60;
static int want_http = 1, want_agent = 0, want_nil = 1, want_io = 1;
static const char *addr = "127.0.0.1:0";
static int pipefd[2];

/* A query that takes 0, 30 or 60 ms (by start order): the losers reach
 * their send after queryAll has returned. */
static void query(void *arg) {
    static _Atomic int seq;
    leash_chan *ch = arg;
    leash_set_name("query");
    int v = atomic_fetch_add(&seq, 1) % 3;
    if (v)
        leash_sleep(v * 30 * MS);
    leash_send(ch, &v); /* the two losers block here forever */
}

static int query_all(void) {
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    leash_go(query, ch, ch);
    leash_go(query, ch, ch);
    leash_go(query, ch, ch);
    int v = 0;
    leash_recv(ch, &v);
    leash_release(ch); /* orphans the two losers */
    return v;
}

static void nil_receiver(void *arg) {
    (void)arg;
    leash_recv_n(NULL, NULL, 0); /* a nil channel: blocks forever */
}

static void pipe_reader(void *arg) {
    (void)arg;
    char c;
    leash_read(pipefd[0], &c, 1, -1); /* no deadline: a suspect */
}

static void crowd_member(void *arg) {
    leash_chan *ch = arg;
    int v;
    leash_recv(ch, &v);
}

static void ticker_loop(void *arg) {
    (void)arg;
    leash_set_name("ticker");
    for (;;)
        leash_sleep(50 * MS);
}

/* Waits (10 s at most) until the leaks are proven and every other
 * coroutine is parked, so that what the tests read is settled. */
static void settle(int want_leaked) {
    int64_t end = leash_now() + 10000 * MS;
    while (leash_now() < end) {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);
        int leaked = leash_leak_dump(f, 2);
        int all = f ? leash_dump(f, 2) : 0;
        fclose(f);
        /* The caller itself shows as [running] in each of the 2 dumps. */
        int running = 0;
        for (const char *p = buf; (p = strstr(p, "[running")); p++)
            running++;
        bool busy = strstr(buf, "[runnable") || running > 2;
        free(buf);
        if (leaked == want_leaked && all > 0 && !busy)
            return;
        leash_sleep(5 * MS);
    }
}

static int app(void *arg) {
    (void)arg;
    printf("pid=%d\n", (int)getpid());
    if (want_http) {
        int port = leash_debug_listen(addr);
        if (port < 0) {
            printf("listen-error=%d\n", port);
            fflush(stdout);
            return 1;
        }
        printf("port=%d\n", port);
    }
    const char *ag = getenv("LEASH_AGENT");
    if (want_agent || (ag && !strcmp(ag, "1"))) {
        char path[256];
        int rc = leash_agent_start();
        if (rc < 0 || leash_agent_path(path, sizeof path) < 0) {
            printf("agent-error=%d\n", rc);
            fflush(stdout);
            return 1;
        }
        printf("agent=%s\n", path);
    }
    /* Each queryAll's losers are proven before anything else starts:
     * while another coroutine can still run (the next queries, the
     * ticker), it could borrow the channel, so no proof is made
     * (docs/DESIGN-NOTES.md, "Why leaks can be proven"). */
    for (int i = 0; i < n_leaks; i++) {
        query_all();
        settle(2 * (i + 1));
    }
    if (want_nil)
        leash_go(nil_receiver, NULL);
    if (want_io && pipe(pipefd) == 0)
        leash_go(pipe_reader, NULL);
    leash_chan *crowd = leash_chan_make(sizeof(int), 0);
    for (int i = 0; i < n_crowd; i++)
        leash_go(crowd_member, crowd, crowd);
    leash_go(ticker_loop, NULL);
    settle(2 * n_leaks + want_nil);
    printf("leaked=%d\nready\n", 2 * n_leaks + want_nil);
    fflush(stdout);
    int64_t end = leash_now() + (int64_t)lifetime_s * 1000 * MS;
    while (leash_now() < end)
        leash_sleep(100 * MS);
    leash_release(crowd);
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--leaks") && v)
            n_leaks = atoi(argv[++i]);
        else if (!strcmp(a, "--crowd") && v)
            n_crowd = atoi(argv[++i]);
        else if (!strcmp(a, "--lifetime") && v)
            lifetime_s = atoi(argv[++i]);
        else if (!strcmp(a, "--addr") && v)
            addr = argv[++i];
        else if (!strcmp(a, "--no-http"))
            want_http = 0;
        else if (!strcmp(a, "--agent"))
            want_agent = 1;
        else if (!strcmp(a, "--no-nil"))
            want_nil = 0;
        else if (!strcmp(a, "--no-io"))
            want_io = 0;
        else {
            fprintf(stderr, "usage: %s [--leaks N] [--crowd N] [--no-http] "
                            "[--agent] [--no-nil] [--no-io] [--addr ADDR] "
                            "[--lifetime S]\n",
                    argv[0]);
            return 2;
        }
    }
    return leash_run(app, NULL);
}
