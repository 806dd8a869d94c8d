/* SPDX-License-Identifier: MIT */
/*
 * read_nodeadline.c — scenario 4 of the write-up, the I/O kind: a request
 * to a server that never answers, with no timeout.
 *
 * A loopback TCP "API server" accepts the connection, reads the request
 * and never replies (nor closes). The client coroutine writes its request
 * and calls leash_read with deadline -1 (none): it waits in "IO wait"
 * for as long as the server keeps the connection open — forever.
 *
 * That is not provably a leak (the peer could still answer, so
 * leash_leak_dump does not list it), but leash knows the wait has no
 * deadline: dumps mark it "SUSPECT (waits for I/O with no deadline)", and
 * the leak checks report it as still alive with its stack and spawn site.
 *
 * Fix: read_nodeadline_fixed.c (a deadline from a context).
 *
 * Run:   make demo SCENARIO=read_nodeadline
 * Exit:  0 (23 under LEASH_LEAKCHECK=1)
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

/* The client: http.Get with no timeout. */
static void fetch(void *arg)
{
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (leash_connect(fd, (struct sockaddr *)&server_addr,
                      sizeof server_addr, -1) < 0)
        return;
    const char req[] = "GET /slow HTTP/1.0\r\n\r\n";
    leash_write(fd, req, sizeof req - 1, -1);
    char buf[512];
    ssize_t n = leash_read(fd, buf, sizeof buf, -1); /* no deadline */
    printf("fetch: read returned %zd\n", n);
    leash_fd_close(fd);
}

static int run(void *arg)
{
    (void)arg;
    /* The server: listens on 127.0.0.1, an ephemeral port. */
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
    leash_go(fetch, NULL);

    int cfd = leash_accept(lfd, NULL, NULL, leash_now() + 1000 * MS);
    char req[512];
    leash_read(cfd, req, sizeof req, leash_now() + 1000 * MS);
    /* ...and never answers. */

    leash_sleep(100 * MS);
    printf("#goroutines: %zu\n", leash_num_coroutines());

    printf("\nleash_dump(stdout, LEASH_DUMP_LEASH):\n\n");
    leash_dump(stdout, LEASH_DUMP_LEASH);

    printf("leash_leak_verify:\n");
    leash_leak_opts opts = {.timeout_ns = 200 * MS, .out = stdout};
    int n = leash_leak_verify(snap, &opts);
    printf("%d coroutine(s) still waiting\n", n);
    printf("leash_leak_dump: %d coroutine(s) proven leaked\n",
           leash_leak_dump(stdout, LEASH_DUMP_LEASH));
    leash_snapshot_free(snap);
    return 0; /* the server's connection is still open: fetch waits on */
}

int main(void)
{
    return leash_run(run, NULL);
}
