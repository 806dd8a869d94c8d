/* SPDX-License-Identifier: MIT */
/*
 * generator.c — a generator whose consumer stops early (rakyll.org/leakingctx).
 *
 * gen() starts a coroutine that sends 0, 1, 2, ... forever on an
 * unbuffered channel and returns the channel. The caller ranges over it
 * and breaks at 5: nobody receives again, and the generator stays blocked
 * in leash_send for good. Every call of consume() leaks one coroutine, so
 * the count goes 2, 3, 4.
 *
 * leash proves it: the generator holds the only reference left to its
 * channel (handed by leash_go) and waits on it, so when the consumer
 * releases its own reference the channel is orphaned. leash_leak_dump
 * names the leash_go line, the channel's creation line and the release.
 *
 * Fixes: generator_ctx.c (a context), generator_done.c (a done channel).
 *
 * Run:   make demo SCENARIO=generator
 * Exit:  0 (23 under LEASH_LEAKCHECK=1)
 */
#include <leash.h>

#include <stdio.h>

/* go func() { var n int; for { ch <- n; n++ } }() */
static void generate(void *arg)
{
    leash_chan *ch = arg;
    for (int n = 0;; n++)
        if (leash_send(ch, &n) < 0)
            return;
}

/* gen is a broken generator that will leak a coroutine. */
static leash_chan *gen(void)
{
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    leash_go(generate, ch, ch);
    return ch;
}

static void consume(void)
{
    leash_chan *ch = gen();
    int n;
    while (leash_recv(ch, &n) == 0) { /* for n := range gen() */
        printf("%d ", n);
        if (n == 5)
            break;
    }
    printf("\n");
    leash_release(ch); /* we are done with it; the generator is not */
}

static int run(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        consume();
        leash_sleep(50 * 1000 * 1000); /* let the generator reach its send */
        printf("#goroutines: %zu\n", leash_num_coroutines());
    }

    printf("\nleash_leak_dump(stdout, LEASH_DUMP_LEASH):\n\n");
    int n = leash_leak_dump(stdout, LEASH_DUMP_LEASH);
    printf("%d coroutine(s) proven leaked\n", n);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
