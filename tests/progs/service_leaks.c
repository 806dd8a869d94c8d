/* SPDX-License-Identifier: MIT */
/*
 * service_leaks.c — testprog_service_leaks: what LEASH_LEAKCHECK=1 says
 * at exit about references held by data structures and about channels
 * several coroutines dropped (tests/test_detach.c).
 *
 *   detached   a coroutine detaches its channel into a global table and
 *              returns; nobody ever releases the detached reference.
 *              Prints "site detached FILE:LINE" (the creation site) and
 *              "site detach FILE:LINE" (the leash_ref_detach call).
 *   dropped    one channel, retained by three coroutines, none of which
 *              releases it, nor does its creator: one leak, to be listed
 *              once. Prints "site dropped FILE:LINE".
 *   tidy       the detached channel is adopted and released by the
 *              teardown: nothing to report; returns 0.
 */
#include <stdio.h>
#include <string.h>

#include "leash.h"

static struct {
    leash_chan *ch;
} table;

static void creator(void *arg) {
    (void)arg;
    printf("site detached %s:%d\n", __FILE__, __LINE__ + 1);
    table.ch = leash_chan_make(sizeof(int), 4);
    printf("site detach %s:%d\n", __FILE__, __LINE__ + 1);
    leash_ref_detach(table.ch);
}

static void holder(void *arg) {
    leash_retain(arg); /* never released: dropped as it returns */
}

static int run(void *arg) {
    const char *mode = arg;
    if (!strcmp(mode, "dropped")) {
        printf("site dropped %s:%d\n", __FILE__, __LINE__ + 1);
        leash_chan *c = leash_chan_make(sizeof(int), 1);
        for (int i = 0; i < 3; i++)
            leash_go(holder, c);
        leash_sleep(50 * 1000000LL);
        return 0; /* c dropped by this return too */
    }
    leash_go(creator, NULL);
    while (!table.ch || leash_ref_detached(table.ch) != 1)
        leash_sleep(1000000);
    int v = 7;
    leash_send(table.ch, &v);
    if (!strcmp(mode, "tidy")) {
        leash_ref_adopt(table.ch);
        leash_release(table.ch);
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    return leash_run(run, argc > 1 ? argv[1] : "tidy");
}
