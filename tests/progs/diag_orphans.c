/* SPDX-License-Identifier: MIT */
/*
 * diag_orphans.c — testprog_diag_orphans: the queryAll leak under each
 * LEASH_ORPHANS policy (tests/test_proofs.c).
 *
 * Three senders, each handed a reference to an unbuffered channel: the
 * first sends at once, the two losers after 100 and 150 ms. Main receives
 * one value, waits for the winner to be gone, and releases its reference
 * (printed as "release-site=FILE:LINE" and "releaser=ID"): when the losers
 * block, they are proven orphaned (tests/test_proofs.c checks the proof
 * at the release itself separately). Then, by the policy in LEASH_ORPHANS:
 *   unset/record  prints "leaked N" (leash_leak_dump's count), exits 0;
 *   report        waits 500 ms for the report on stderr, exits 0;
 *   wake          waits for the losers, which print "sender I: EORPHANED"
 *                 when woken with LEASH_EORPHANED; prints "woken N", exits 0;
 *   abort         waits up to 10 s to be aborted; else "not aborted", exit 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leash.h"

#define MS 1000000LL

static leash_waitgroup wg = LEASH_WAITGROUP_INIT;
static int woken;
static leash_mutex mu = LEASH_MUTEX_INIT;

static void sender(void *arg) {
    static int next;
    leash_mutex_lock(&mu);
    int i = next++;
    leash_mutex_unlock(&mu);
    if (i > 0)
        leash_sleep((50 + 50 * i) * MS);
    int rc = leash_send((leash_chan *)arg, &i);
    if (rc < 0) {
        printf("sender %d: %s\n", i,
               rc == LEASH_EORPHANED ? "EORPHANED" : leash_strerror(rc));
        fflush(stdout);
        leash_mutex_lock(&mu);
        woken++;
        leash_mutex_unlock(&mu);
    }
    leash_waitgroup_done(&wg);
}

static int run(void *arg) {
    (void)arg;
    const char *pol = getenv("LEASH_ORPHANS");
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    leash_waitgroup_add(&wg, 3);
    for (int i = 0; i < 3; i++)
        leash_go(sender, ch, ch);
    int v;
    leash_recv(ch, &v);
    /* The winner still holds its reference until it has returned: wait
     * for it, so that main's release below is the last one before the
     * losers block and the report must name it (not the winner's exit). */
    while (leash_num_coroutines() > 3)
        leash_sleep(1 * MS);
    printf("releaser=%lld\n", (long long)leash_self());
    printf("release-site=%s:%d\n", __FILE__, __LINE__ + 2);
    fflush(stdout);
    leash_release(ch);
    if (pol && !strcmp(pol, "wake")) {
        leash_waitgroup_wait(&wg);
        printf("woken %d\n", woken);
    } else if (pol && !strcmp(pol, "abort")) {
        leash_sleep(10000 * MS);
        printf("not aborted\n");
    } else if (pol && !strcmp(pol, "report")) {
        leash_sleep(700 * MS);
        printf("done\n");
    } else {
        leash_sleep(400 * MS);
        printf("leaked %d\n", leash_leak_dump(fopen("/dev/null", "w"), 3));
    }
    fflush(stdout);
    return 0;
}

int main(void) { return leash_run(run, NULL); }
