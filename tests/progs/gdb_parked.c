/* SPDX-License-Identifier: MIT */
/*
 * gdb_parked.c — testprog_gdb_parked: coroutines parked in known places,
 * for tools/gdb/leash-gdb.py's test (tests/debug/gdb.sh).
 *
 * Spawns four coroutines that block and stay blocked:
 *   "sender"    in park_sender:   leash_send on an unbuffered channel
 *   "receiver"  in park_receiver: leash_recv on another channel
 *   "sleeper"   in park_sleeper:  leash_sleep for an hour
 *   "locker"    in park_locker:   leash_mutex_lock on a held mutex
 * then, once all four wait, calls gdb_parked_stop() (a breakpoint for
 * gdb) and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "leash.h"

static leash_chan *to_nobody, *from_nobody;
static leash_mutex mu = LEASH_MUTEX_INIT;

__attribute__((noinline)) static void park_sender(void *arg) {
    (void)arg;
    leash_set_name("sender");
    int v = 1;
    leash_send(to_nobody, &v);
}

__attribute__((noinline)) static void park_receiver(void *arg) {
    (void)arg;
    leash_set_name("receiver");
    int v;
    leash_recv(from_nobody, &v);
}

__attribute__((noinline)) static void park_sleeper(void *arg) {
    (void)arg;
    leash_set_name("sleeper");
    leash_sleep(3600LL * 1000000000);
}

__attribute__((noinline)) static void park_locker(void *arg) {
    (void)arg;
    leash_set_name("locker");
    leash_mutex_lock(&mu);
}

/* Where gdb stops. */
__attribute__((noinline)) void gdb_parked_stop(void);
void gdb_parked_stop(void) { __asm__ volatile("" ::: "memory"); }

static int run(void *arg) {
    (void)arg;
    to_nobody = leash_chan_make(sizeof(int), 0);
    from_nobody = leash_chan_make(sizeof(int), 0);
    leash_mutex_lock(&mu);
    leash_go(park_sender, NULL);
    leash_go(park_receiver, NULL);
    leash_go(park_sleeper, NULL);
    leash_go(park_locker, NULL);
    /* Let them all park (each is switched out once it waits). */
    for (int i = 0; i < 200; i++)
        leash_sleep(5 * 1000000);
    gdb_parked_stop();
    printf("stopped\n");
    fflush(stdout);
    _exit(0); /* the four stay blocked: no leak check at exit */
}

int main(void) { return leash_run(run, NULL); }
