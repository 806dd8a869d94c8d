/* SPDX-License-Identifier: MIT */
/*
 * embed_server.c — testprog_embed_server: an application's own HTTP
 * server, written on leash connections, that mounts leash's debug routes
 * (tests/test_embed.c).
 *
 *   testprog_embed_server [--leaks N] [--grow MS] [--metrics ADDR]
 *                         [--lifetime S]
 *
 * Its server (port=PORT) keeps connections open (HTTP/1.1 keep-alive,
 * one coroutine per connection, reading with a leash_reader) and answers
 *   /                     its own page ("hello from the app");
 *   /debug/..., /metrics  leash_debug_handle (the target as it came);
 *   /app/metrics          leash_metrics_write into a memory stream,
 *                         served by the application itself;
 * anything else 404, by the application. A second listener
 * (conn_port=PORT) hands every connection to leash_debug_serve_conn.
 * With --metrics ADDR, leash_metrics_listen(ADDR) (metrics_port=PORT).
 * It leaks N coroutines (default 3) on a nil channel in leaky_worker
 * (proven leaks), prints "leaked=N" and "ready", and lives S seconds
 * (default 60). With --grow MS it leaks one more there every MS ms after
 * "ready" (a site that keeps growing, for the live page's chart).
 */
#define _GNU_SOURCE 1
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "leash.h"

#define MS 1000000LL

static int n_leaks = 3, lifetime_s = 60, grow_ms = 0;
static const char *metrics_addr;

static void leaky_worker(void *arg) {
    (void)arg;
    leash_set_name("leaky_worker");
    leash_recv_n(NULL, NULL, 0); /* a nil channel: blocks forever */
}

static int conn_write(void *arg, const void *buf, size_t n) {
    ssize_t w = leash_conn_write(arg, buf, n);
    return w == (ssize_t)n ? 0 : w < 0 ? (int)w : LEASH_ECLOSED;
}

static void answer(leash_conn *c, int status, const char *reason,
                   const char *ctype, const char *body, size_t n) {
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      status, reason, ctype, n);
    conn_write(c, head, (size_t)hn);
    conn_write(c, body, n);
}

/* One connection: requests until the client closes or asks to. */
static void serve(void *arg) {
    leash_conn *c = arg;
    leash_set_name("app/conn");
    leash_reader *r = leash_reader_new(c, 16384);
    for (bool more = r != NULL; more;) {
        leash_conn_set_read_deadline(c, leash_now() + 10000 * MS);
        const char *line;
        ssize_t n = leash_reader_read_line(r, &line);
        if (n <= 0)
            break;
        char *req = strndup(line, (size_t)n);
        req[strcspn(req, "\r\n")] = 0;
        char *sp1 = strchr(req, ' '), *sp2 = sp1 ? strrchr(req, ' ') : NULL;
        bool bad = !sp1 || sp2 == sp1;
        /* Headers, up to the blank line. */
        bool close_after = bad;
        while ((n = leash_reader_read_line(r, &line)) > 0 && line[0] != '\r' &&
               line[0] != '\n')
            if (!strncasecmp(line, "Connection:", 11) &&
                strcasestr(line, "close"))
                close_after = true;
        if (n <= 0)
            close_after = true;
        if (bad) {
            const char msg[] = "the app: bad request line\n";
            answer(c, 400, "Bad Request", "text/plain", msg, sizeof msg - 1);
        } else {
            *sp1 = 0;
            *sp2 = 0;
            const char *method = req, *target = sp1 + 1;
            if (!strcmp(target, "/")) {
                const char msg[] = "hello from the app\n";
                answer(c, 200, "OK", "text/plain", msg, sizeof msg - 1);
            } else if (!strcmp(target, "/app/metrics")) {
                char *buf = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&buf, &len);
                int rc = f ? leash_metrics_write(f) : -1;
                if (f)
                    fclose(f);
                if (rc == 0)
                    answer(c, 200, "OK", "text/plain; version=0.0.4", buf, len);
                else
                    answer(c, 500, "Internal Server Error", "text/plain", "", 0);
                free(buf);
            } else if (!strncmp(target, "/debug/", 7) ||
                       !strncmp(target, "/metrics", 8)) {
                int st = leash_debug_handle(method, target, 0, conn_write, c);
                if (st < 0)
                    close_after = true;
            } else {
                const char msg[] = "the app: not found\n";
                answer(c, 404, "Not Found", "text/plain", msg, sizeof msg - 1);
            }
        }
        free(req);
        more = !close_after;
    }
    leash_reader_free(r);
    leash_conn_close(c);
}

static void accept_loop(void *arg) {
    leash_conn *l = arg, *c;
    leash_set_name("app/accept");
    while (leash_conn_accept(l, &c) == 0) {
        leash_go(serve, c, c);
        leash_release(c);
    }
}

static void handed_over(void *arg) {
    leash_conn *c = arg;
    leash_debug_serve_conn(c, 0);
    leash_conn_close(c);
}

static void handover_loop(void *arg) {
    leash_conn *l = arg, *c;
    while (leash_conn_accept(l, &c) == 0) {
        leash_go(handed_over, c, c);
        leash_release(c);
    }
}

static int app(void *arg) {
    (void)arg;
    leash_conn *l, *l2;
    if (leash_listen(&l, "tcp", "127.0.0.1:0") != 0 ||
        leash_listen(&l2, "tcp", "127.0.0.1:0") != 0) {
        printf("listen-error\n");
        return 1;
    }
    printf("port=%d\nconn_port=%d\n", leash_conn_local_port(l),
           leash_conn_local_port(l2));
    if (metrics_addr) {
        int mp = leash_metrics_listen(metrics_addr);
        printf("metrics_port=%d\n", mp);
    }
    leash_go(accept_loop, l, l);
    leash_go(handover_loop, l2, l2);
    for (int i = 0; i < n_leaks; i++)
        leash_go(leaky_worker, NULL);
    int64_t end = leash_now() + 10000 * MS;
    FILE *nul = fopen("/dev/null", "w");
    while (nul && leash_leak_dump(nul, 1) < n_leaks && leash_now() < end)
        leash_sleep(10 * MS);
    if (nul)
        fclose(nul);
    printf("leaked=%d\nready\n", n_leaks);
    fflush(stdout);
    end = leash_now() + (int64_t)lifetime_s * 1000 * MS;
    while (leash_now() < end) {
        leash_sleep((grow_ms ? grow_ms : 100) * MS);
        if (grow_ms)
            leash_go(leaky_worker, NULL);
    }
    leash_conn_close(l);
    leash_conn_close(l2);
    leash_release(l);
    leash_release(l2);
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--leaks") && v)
            n_leaks = atoi(argv[++i]);
        else if (!strcmp(a, "--lifetime") && v)
            lifetime_s = atoi(argv[++i]);
        else if (!strcmp(a, "--grow") && v)
            grow_ms = atoi(argv[++i]);
        else if (!strcmp(a, "--metrics") && v)
            metrics_addr = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--leaks N] [--grow MS] [--metrics ADDR] "
                            "[--lifetime S]\n", argv[0]);
            return 2;
        }
    }
    return leash_run(app, NULL);
}
