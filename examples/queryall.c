/* SPDX-License-Identifier: MIT */
/*
 * queryall.c — scenario 1 of the write-up: a send with no receiver left.
 *
 * queryAll starts three queries that race on an unbuffered channel and
 * returns the first answer. The two slower queries then block forever in
 * leash_send: nobody will ever receive again. Go's version prints
 * "#goroutines: 3, 5, 7, 9"; so does this one (leash_num_coroutines counts
 * main, coroutine 1, like runtime.NumGoroutine).
 *
 * At the end it shows leash catching the leak: leash_leak_dump lists the
 * eight stuck coroutines ("chan send"), the leash_go line that spawned each,
 * the channel they wait on and the leash_release line that orphaned it.
 *
 * Fixes: queryall_buffered.c (capacity 3), queryall_ctx.c (cancel the
 * losers with a context).
 *
 * Run:   make demo SCENARIO=queryall    (or ./build/example_queryall)
 * Exit:  0 (23 under LEASH_LEAKCHECK=1, which reports the leaks at exit)
 */
#include <leash.h>

#include "example.h"

#include <stdio.h>

/* go func() { ch <- query() }() */
static void ask(void *arg)
{
    leash_chan *ch = arg;
    int v = query();
    leash_send(ch, &v); /* the two losers block here forever */
}

static int query_all(void)
{
    leash_chan *ch = leash_chan_make(sizeof(int), 0); /* make(chan int) */
    leash_go(ask, ch, ch); /* each query holds a reference to ch */
    leash_go(ask, ch, ch);
    leash_go(ask, ch, ch);
    int v = 0;
    leash_recv(ch, &v);   /* return <-ch */
    leash_release(ch);    /* our reference: the losers are orphaned now */
    return v;
}

static int run(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++) {
        query_all();
        /* Give the slower queries time to finish if they can (each takes
         * < 100 ms), so the count shows only what stays for good. */
        leash_sleep(150 * MS);
        printf("#goroutines: %zu\n", leash_num_coroutines());
    }

    /* Method 3 of the write-up, with proof: the coroutines that can
     * never run again, in leash's format. */
    printf("\nleash_leak_dump(stdout, LEASH_DUMP_LEASH):\n\n");
    int n = leash_leak_dump(stdout, LEASH_DUMP_LEASH);
    printf("%d coroutine(s) proven leaked\n", n);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
