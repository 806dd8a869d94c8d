/* SPDX-License-Identifier: MIT */
/*
 * nilchan_tick.c — a channel left NULL by mistake (the write-up's
 * `if false { ch = make(chan int, 1) }`).
 *
 * The channel is only made in a branch that never runs, so the coroutine
 * started with it blocks forever receiving from NULL, while main prints
 * the count every second from a ticker: it stays at 2, the leaked
 * receiver included. The Go original loops forever; this one stops after
 * three ticks and shows leash's proof of the leak.
 *
 * Run:   make demo SCENARIO=nilchan_tick    (about 3 s)
 * Exit:  0 (23 under LEASH_LEAKCHECK=1)
 */
#include <leash.h>

#include <stdint.h>
#include <stdio.h>

/* go func(ch chan int) { <-ch }(ch) */
static void wait_one(void *arg)
{
    leash_chan *ch = arg;
    int v;
    leash_recv(ch, &v); /* ch is NULL: blocks forever */
}

static int run(void *arg)
{
    (void)arg;
    leash_chan *ch = NULL; /* var ch chan int */
    if (0) {
        ch = leash_chan_make(sizeof(int), 1);
        int one = 1;
        leash_send(ch, &one);
    }
    leash_go(wait_one, ch, ch); /* a NULL in the list ends it: nothing handed */

    leash_ticker *t = leash_ticker_start(1000 * 1000 * 1000LL); /* time.Tick(1 * time.Second) */
    for (int i = 0; i < 3; i++) {
        int64_t when;
        leash_recv(leash_ticker_chan(t), &when);
        printf("#goroutines: %zu\n", leash_num_coroutines());
    }
    leash_ticker_stop(t);
    leash_release(ch); /* NULL: a no-op, like the rest of this branch */

    printf("\nleash_leak_dump(stdout, LEASH_DUMP_LEASH):\n\n");
    int n = leash_leak_dump(stdout, LEASH_DUMP_LEASH);
    printf("%d coroutine(s) proven leaked\n", n);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
