/* SPDX-License-Identifier: MIT */
/*
 * diag_sigdump.c — testprog_diag_sigdump: a dump on a signal does not end
 * the process (tests/test_diag.c).
 *
 * Run with LEASH_DUMP_SIGNAL=USR1 and LEASH_DUMP_FILE=PATH (and optionally
 * LEASH_DUMP_FORMAT). It starts a coroutine named "sig-waiter" blocked on
 * a channel (spawn site printed as "spawn-site=FILE:LINE"), sends itself
 * SIGUSR1 twice with kill(2), waiting each time until PATH has grown, then
 * prints "alive after N dump(s)", unblocks the waiter and exits 0. If a
 * dump never comes it prints "no dump" and exits 3.
 */
#define _GNU_SOURCE 1
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "leash.h"

#define MS 1000000LL

static void waiter(void *arg) {
    leash_set_name("sig-waiter");
    int v;
    leash_recv((leash_chan *)arg, &v);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static int run(void *arg) {
    (void)arg;
    const char *path = getenv("LEASH_DUMP_FILE");
    if (!path) {
        fprintf(stderr, "LEASH_DUMP_FILE not set\n");
        return 4;
    }
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    printf("spawn-site=%s:%d\n", __FILE__, __LINE__ + 1);
    leash_go(waiter, ch, ch);
    leash_sleep(50 * MS); /* let it block */
    int dumps = 0;
    for (int i = 0; i < 2; i++) {
        long before = file_size(path);
        kill(getpid(), SIGUSR1);
        int64_t until = leash_now() + 10000 * MS;
        while (file_size(path) == before && leash_now() < until)
            leash_sleep(5 * MS);
        /* Let the writer finish this dump. */
        long sz;
        do {
            sz = file_size(path);
            leash_sleep(50 * MS);
        } while (file_size(path) != sz);
        if (sz == before) {
            printf("no dump\n");
            fflush(stdout);
            return 3;
        }
        dumps++;
    }
    printf("alive after %d dump(s)\n", dumps);
    fflush(stdout);
    int v = 1;
    leash_send(ch, &v);
    leash_release(ch);
    return 0;
}

int main(void) { return leash_run(run, NULL); }
