/* SPDX-License-Identifier: MIT */
/*
 * generator_done.c — fix for generator.c: a done channel closed by the
 * consumer (the write-up's newRandStream).
 *
 * The generator selects between sending a random number and receiving
 * from `done`. The consumer takes three numbers, then closes `done`
 * (closing wakes every receiver, so it also works for many generators;
 * sending one value would stop only one). The generator returns, closing
 * its stream on the way out, and prints that it exited, as in the Go
 * original (its `defer fmt.Println(...)`).
 *
 * Run:   make demo SCENARIO=generator_done
 * Exit:  0 (also under LEASH_LEAKCHECK=1)
 */
#include <leash.h>

#include "example.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    leash_chan *done;
    leash_chan *stream;
} stream_args;

static void rand_stream(void *arg)
{
    stream_args a = *(stream_args *)arg;
    free(arg);
    unsigned seed = 42;
    for (;;) {
        int v = rand_r(&seed);
        leash_case cs[2] = {
            LEASH_SEND_CASE(a.stream, &v), /* case randStream <- rand.Int(): */
            LEASH_RECV_CASE(a.done, (char *)NULL), /* case <-done: return */
        };
        cs[1].size = 0;
        if (leash_select(cs, 2) != 0)
            break;
    }
    /* the deferred calls, in Go's order */
    leash_close(a.stream);
    printf("newRandStream closure exited.\n");
}

/* newRandStream := func(done <-chan interface{}) <-chan int */
static leash_chan *new_rand_stream(leash_chan *done)
{
    leash_chan *stream = leash_chan_make(sizeof(int), 0);
    stream_args *a = malloc(sizeof *a);
    *a = (stream_args){done, stream};
    leash_go(rand_stream, a, done, stream);
    return stream;
}

static int run(void *arg)
{
    (void)arg;
    leash_snapshot *snap = leash_snapshot_take();
    leash_chan *done = leash_chan_make(0, 0); /* make(chan interface{}) */
    leash_chan *rand_stream_ch = new_rand_stream(done);
    printf("3 random ints:\n");
    for (int i = 1; i <= 3; i++) {
        int v;
        leash_recv(rand_stream_ch, &v);
        printf("%d: %d\n", i, v);
    }
    printf("#goroutines: %zu\n", leash_num_coroutines());

    leash_close(done); /* tell the generator to stop */
    /* Simulate ongoing work (1 s in the original). */
    leash_sleep(100 * 1000 * 1000);
    printf("#goroutines: %zu\n", leash_num_coroutines());

    leash_release(rand_stream_ch);
    leash_release(done);
    report_fixed(snap, NULL);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
