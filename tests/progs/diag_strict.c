/* SPDX-License-Identifier: MIT */
/*
 * diag_strict.c — testprog_diag_strict: misuse that Go panics on
 * (tests/test_proofs.c). Under LEASH_STRICT=1 each aborts with
 * "panic: ..." and a dump; without it the call returns an error code,
 * printed as "rc=N", and the program exits 0.
 *
 *   send-closed  send on a closed channel
 *   close-closed close a closed channel
 *   close-nil    close(NULL)
 *   wg-negative  a WaitGroup counter going negative
 *   unlock       unlock of an unlocked mutex
 *   rw-unlock    Unlock of an unlocked RWMutex
 *   rw-runlock   RUnlock of an unlocked RWMutex
 *   double-release  a second leash_release of a channel by a coroutine
 *                whose only reference went with the first (the bystander
 *                still holds one of its own)
 * A coroutine named "bystander" is blocked on a channel meanwhile, so the
 * dump shows more than the culprit.
 */
#include <stdio.h>
#include <string.h>

#include "leash.h"

static const char *mode;

static void bystander(void *arg) {
    leash_set_name("bystander");
    int v;
    leash_recv((leash_chan *)arg, &v);
}

static int run(void *arg) {
    (void)arg;
    leash_chan *by = leash_chan_make(sizeof(int), 0);
    leash_go(bystander, by, by);
    while (leash_chan_len(by) >= 0 && leash_num_coroutines() < 2)
        leash_yield();
    leash_sleep(20 * 1000000LL);
    int rc = 0, v = 1;
    leash_chan *ch = leash_chan_make(sizeof(int), 1);
    if (!strcmp(mode, "send-closed")) {
        leash_close(ch);
        rc = leash_send(ch, &v);
    } else if (!strcmp(mode, "close-closed")) {
        leash_close(ch);
        rc = leash_close(ch);
    } else if (!strcmp(mode, "close-nil")) {
        rc = leash_close(NULL);
    } else if (!strcmp(mode, "wg-negative")) {
        leash_waitgroup wg = LEASH_WAITGROUP_INIT;
        rc = leash_waitgroup_done(&wg);
    } else if (!strcmp(mode, "unlock")) {
        leash_mutex mu = LEASH_MUTEX_INIT;
        rc = leash_mutex_unlock(&mu);
    } else if (!strcmp(mode, "rw-unlock")) {
        leash_rwmutex rw = LEASH_RWMUTEX_INIT;
        rc = leash_rwmutex_unlock(&rw);
    } else if (!strcmp(mode, "double-release")) {
        leash_release_checked(by);
        rc = leash_release_checked(by);
    } else if (!strcmp(mode, "rw-runlock")) {
        leash_rwmutex rw = LEASH_RWMUTEX_INIT;
        rc = leash_rwmutex_runlock(&rw);
    } else {
        printf("unknown mode %s\n", mode);
        return 64;
    }
    printf("rc=%d\n", rc);
    fflush(stdout);
    leash_send(by, &v);
    leash_release(by);
    leash_release(ch);
    return 0;
}

int main(int argc, char **argv) {
    mode = argc > 1 ? argv[1] : "send-closed";
    return leash_run(run, NULL);
}
