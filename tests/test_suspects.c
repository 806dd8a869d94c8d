/* SPDX-License-Identifier: MIT */
/*
 * test_suspects.c — suspects a healthy server can live with (issue 18):
 *
 *   - a server-like program (150 "writers" parked on their channels and
 *     150 "readers" parked in leash_read with a deadline, each woken
 *     every few milliseconds, in steady numbers) has no suspect at all,
 *     though 150 wait at one site (the old rule called that a crowd);
 *   - a leaking one (a site whose parked coroutines keep growing) is
 *     still called a crowd.
 *
 * LEASH_TEST_TIMEOUT 60
 */
#define _GNU_SOURCE 1
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core_util.h"
#include "diag/debug.h"

#define MS CU_MS
#define N 150

static void setup(void) { setenv("LEASH_PROCS", "2", 1); }

static leash_chan *inbox[N];
static int fds[N][2];
static _Atomic int stop;

static void writer(void *arg) {
    leash_chan *c = arg;
    int v;
    while (leash_recv(c, &v) == 0) {
    }
}

static void reader(void *arg) {
    int fd = (int)(intptr_t)arg;
    char b;
    while (leash_read(fd, &b, 1, leash_now() + 10000 * MS) == 1) {
    }
}

static void feeder(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        for (int i = 0; i < N; i++) {
            int v = i;
            leash_send(inbox[i], &v);
            leash_write(fds[i][1], "x", 1, -1);
        }
        leash_sleep(5 * MS);
    }
}

static int healthy(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++) {
        inbox[i] = leash_chan_make(sizeof(int), 0);
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds[i]), 0);
        leash_go(writer, inbox[i], inbox[i]);
        leash_go(reader, (void *)(intptr_t)fds[i][0]);
    }
    leash_go(feeder, NULL);
    leash_sleep(3000 * MS); /* three growth samples: steady */
    dbg_vitals v;
    CU_CHECK_EQ(dbg_vitals_get(&v), 0);
    CU_CHECK_EQ(v.suspects, 0);
    CU_CHECK_EQ(v.suspect_kind[DBG_SUS_CROWD], 0);
    CU_CHECK(v.coroutines >= 2 * N);
    atomic_store(&stop, 1);
    leash_sleep(20 * MS);
    for (int i = 0; i < N; i++) {
        leash_close(inbox[i]);
        leash_release(inbox[i]);
        close(fds[i][1]);
    }
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 5000));
    for (int i = 0; i < N; i++)
        close(fds[i][0]);
    return 0;
}

Test(suspects, a_healthy_server_has_none, .init = setup, .timeout = 30) {
    cr_assert_eq(leash_run(healthy, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* A request handler that forgets to answer: each one blocks for good on
 * a channel the (sleeping, so able to act) dispatcher holds. */
static leash_chan *never;

static void stuck_handler(void *arg) {
    (void)arg;
    int v;
    leash_recv(never, &v);
}

static int leaking(void *arg) {
    (void)arg;
    never = leash_chan_make(sizeof(int), 0);
    bool flagged = false;
    dbg_vitals v = {0};
    int64_t until = leash_now() + 12000 * MS;
    while (!flagged && leash_now() < until) {
        for (int i = 0; i < 10; i++)
            leash_go(stuck_handler, NULL);
        leash_sleep(100 * MS);
        CU_CHECK_EQ(dbg_vitals_get(&v), 0);
        flagged = v.suspect_kind[DBG_SUS_CROWD] > 0;
    }
    CU_CHECK(flagged);
    CU_CHECK(v.suspect_kind[DBG_SUS_CROWD] >= 100);
    leash_close(never);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 5000));
    leash_release(never);
    return 0;
}

Test(suspects, a_growing_site_is_still_a_crowd, .init = setup, .timeout = 30) {
    cr_assert_eq(leash_run(leaking, NULL), 0);
    CU_ASSERT_CLEAN();
}
