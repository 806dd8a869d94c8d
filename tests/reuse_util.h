/* SPDX-License-Identifier: MIT */
/*
 * reuse_util.h — the fd reuse race of issue 18, staged for both plain fds
 * (test_fdreuse.c) and connections (test_conn.c): a reader loops on a
 * socket while another coroutine closes it, and a new socketpair takes
 * the same number at once and carries "N". The reader must never read
 * that "N". Uses the plain fd API only, so test_fdreuse.c also builds
 * (and fails) against the netpoller before leash_conn.
 */
#ifndef LEASH_TESTS_REUSE_UTIL_H
#define LEASH_TESTS_REUSE_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core_util.h"

#define REUSE_ITERS 3000
#define REUSE_HANG_MS 5000

typedef struct {
    int fd;               /* the reader's socket */
    void *conn;           /* ... or its connection (test_conn.c) */
    atomic_int entering;  /* set just before each read */
    atomic_int bad;       /* bytes the reader got from the new socket */
    atomic_int done;      /* the reader returned */
} reuse_st;

static inline uint32_t reuse_rand(void) {
    static uint32_t x = 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

static inline void reuse_spin(uint32_t loops) {
    for (volatile uint32_t i = 0; i < loops; i++)
        ;
}

/* The reader: reads one byte at a time with read1 (which also marks the
 * call as entered, for plain fds) until the socket ends, counting the
 * bytes that came from the new socket ("N"). */
static inline void reuse_read_loop(reuse_st *st,
                                   ssize_t (*read1)(reuse_st *, char *)) {
    char ch;
    while (read1(st, &ch) > 0)
        if (ch == 'N')
            atomic_fetch_add(&st->bad, 1);
    atomic_store(&st->done, 1);
}

/* Closes the reader's socket with close_old, takes a new socketpair,
 * writes "N" into the end whose peer got the old number (if one did),
 * and waits for the reader to finish (one gone astray to the new socket
 * is ended by closing that). Returns whether the number was reused. */
static inline bool reuse_close_and_check(reuse_st *st,
                                         int (*close_old)(reuse_st *),
                                         int old_peer) {
    CU_CHECK_EQ(close_old(st), 0);
    int nv[2];
    CU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, nv), 0);
    int peer = nv[0] == st->fd ? nv[1] : nv[1] == st->fd ? nv[0] : -1;
    if (peer >= 0)
        CU_CHECK_EQ(write(peer, "N", 1), 1);
    CU_WAIT_UNTIL(atomic_load(&st->done), 50);
    leash_fd_close(nv[0]);
    leash_fd_close(nv[1]);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&st->done), REUSE_HANG_MS));
    close(old_peer);
    return peer >= 0;
}

#endif
