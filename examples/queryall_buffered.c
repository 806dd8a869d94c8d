/* SPDX-License-Identifier: MIT */
/*
 * queryall_buffered.c — fix 1 for queryall.c: a buffered channel.
 *
 * The number of senders is known (3), so the channel gets room for all of
 * them: the slower queries drop their answers into the buffer and return.
 * The only change from queryall.c is the capacity, `make(chan int, 3)`.
 * The count stays at 1 (main), and the leak checks come back clean.
 *
 * Run:   make demo SCENARIO=queryall_buffered
 * Exit:  0 (also under LEASH_LEAKCHECK=1: nothing is left at exit)
 */
#include <leash.h>

#include "example.h"

#include <stdio.h>

static void ask(void *arg)
{
    leash_chan *ch = arg;
    int v = query();
    leash_send(ch, &v); /* never blocks: there is room for every answer */
}

static int query_all(void)
{
    leash_chan *ch = leash_chan_make(sizeof(int), 3); /* make(chan int, 3) */
    leash_go(ask, ch, ch);
    leash_go(ask, ch, ch);
    leash_go(ask, ch, ch);
    int v = 0;
    leash_recv(ch, &v);
    leash_release(ch); /* the last query to return frees the channel */
    return v;
}

static int run(void *arg)
{
    (void)arg;
    leash_snapshot *snap = leash_snapshot_take();
    for (int i = 0; i < 4; i++) {
        query_all();
        leash_sleep(150 * MS); /* as in queryall.c */
        printf("#goroutines: %zu\n", leash_num_coroutines());
    }

    report_fixed(snap, NULL);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
