/* SPDX-License-Identifier: MIT */
/*
 * test_fdreuse.c — leash_fd_close's guarantee on plain fds (issue 18):
 * a reader inside leash_read when another coroutine closes its fd never
 * reads the data of a new socket that takes the same number. Before the
 * fix the close(2) happened at once, and a reader between its recv and
 * its wait (or woken but not yet run) read the new socket ~250 times in
 * 3,000. Now the close(2) waits for the last call out.
 * LEASH_TEST_TIMEOUT 120
 */
#define _GNU_SOURCE 1
#include "reuse_util.h"

/* "The reader is inside leash_read": exact with this library (a test
 * hook), else a flag set just before the call, so that the file also
 * builds, and fails, against the netpoller before the fix. */
extern int fd_calls_inside(int fd) __attribute__((weak));

static bool reader_inside(reuse_st *st) {
    if (fd_calls_inside)
        return fd_calls_inside(st->fd) > 0;
    return atomic_load(&st->entering) != 0;
}

static ssize_t plain_read1(reuse_st *st, char *ch) {
    atomic_store(&st->entering, 1);
    return leash_read(st->fd, ch, 1, leash_now() + 2000 * CU_MS);
}

static void plain_reader(void *p) { reuse_read_loop(p, plain_read1); }

static int close_plain(reuse_st *st) { return leash_fd_close(st->fd); }

static int reuse_plain_main(void *arg) {
    (void)arg;
    int reused = 0, bad = 0;
    for (int i = 0; i < REUSE_ITERS; i++) {
        int sv[2];
        CU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        reuse_st st = {.fd = sv[0]};
        CU_CHECK(leash_go(plain_reader, &st) > 0);
        /* Spin rather than yield at first, so that another worker takes
         * the reader and the close can land anywhere in its call; yield
         * in the end (one worker only). */
        int64_t until = leash_now() + REUSE_HANG_MS * CU_MS;
        for (long spins = 0; !reader_inside(&st) && leash_now() < until;)
            if (++spins > 100000)
                leash_yield();
        reuse_spin(reuse_rand() % 4000); /* anywhere in its call */
        reused += reuse_close_and_check(&st, close_plain, sv[1]);
        bad += atomic_load(&st.bad);
    }
    /* While the reader is inside, the close waits and the number stays
     * taken: it is reused (and read) only without the fix. */
    if (bad)
        cu_fail(__FILE__, __LINE__,
                "the reader read the new socket's data in %d of %d "
                "iterations (the number was reused %d times)",
                bad, REUSE_ITERS, reused);
    return 0;
}

Test(fdreuse, fd_close_never_lets_a_reader_read_the_new_socket,
     .timeout = 120) {
    int rc = leash_run(reuse_plain_main, NULL);
    (void)rc;
    CU_ASSERT_CLEAN();
}
