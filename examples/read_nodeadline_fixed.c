/* SPDX-License-Identifier: MIT */
/*
 * read_nodeadline_fixed.c — fix for read_nodeadline.c: bound the wait.
 *
 * The client takes its deadline from a context with a timeout
 * (leash_ctx_with_timeout, 200 ms), as Go code passes a ctx to
 * http.NewRequestWithContext: leash_read gives up at the deadline with
 * LEASH_ETIMEDOUT, the client closes its connection and returns. Any
 * other I/O call of the request (connect, write) gets the same deadline,
 * and cancelling the context early would not help a read already waiting
 * — it is the deadline that bounds it.
 *
 * Run:   make demo SCENARIO=read_nodeadline_fixed
 * Exit:  0 (also under LEASH_LEAKCHECK=1)
 */
#include <leash.h>

#include "example.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in server_addr;

static void fetch(void *arg)
{
    leash_ctx *ctx = arg;
    int64_t deadline = leash_ctx_deadline(ctx);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (leash_connect(fd, (struct sockaddr *)&server_addr,
                      sizeof server_addr, deadline) < 0) {
        leash_fd_close(fd);
        return;
    }
    const char req[] = "GET /slow HTTP/1.0\r\n\r\n";
    leash_write(fd, req, sizeof req - 1, deadline);
    char buf[512];
    int64_t t0 = leash_now();
    ssize_t n = leash_read(fd, buf, sizeof buf, deadline);
    if (n < 0)
        printf("fetch: %s after %lld ms\n", leash_strerror((int)n),
               (long long)((leash_now() - t0 + MS / 2) / MS));
    leash_fd_close(fd);
}

static int run(void *arg)
{
    (void)arg;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    server_addr.sin_family = AF_INET;
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof server_addr;
    if (bind(lfd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 ||
        listen(lfd, 8) < 0 ||
        getsockname(lfd, (struct sockaddr *)&server_addr, &len) < 0) {
        perror("listen");
        return 1;
    }

    leash_snapshot *snap = leash_snapshot_take();
    leash_ctx *ctx = leash_ctx_with_timeout(leash_ctx_background(), 200 * MS);
    leash_go(fetch, ctx, ctx);

    int cfd = leash_accept(lfd, NULL, NULL, leash_now() + 1000 * MS);
    char req[512];
    leash_read(cfd, req, sizeof req, leash_now() + 1000 * MS);
    /* ...and never answers. */

    leash_sleep(100 * MS);
    printf("#goroutines: %zu (waiting for the reply)\n",
           leash_num_coroutines());

    report_fixed(snap, NULL);
    leash_release(ctx);
    leash_fd_close(cfd);
    leash_fd_close(lfd);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
