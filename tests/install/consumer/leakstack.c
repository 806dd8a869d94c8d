/* SPDX-License-Identifier: MIT */
/* A user's program, built at -O2 against an installed leash with nothing
 * but what leash.pc / the CMake target pass on: a coroutine blocked on a
 * channel through consumer_worker -> consumer_a -> consumer_b, left
 * behind at exit. Its leak stack (LEASH_LEAKCHECK=1) must show every one
 * of those frames, which needs frame pointers in this file's code. */
#include <leash.h>
#include <stdio.h>

#if defined(__clang__)
#define KEEP __attribute__((noinline))
#else
#define KEEP __attribute__((noinline, noipa))
#endif

KEEP int consumer_b(leash_chan *ch) {
    int v = 0;
    leash_recv(ch, &v); /* nobody ever sends */
    return v + 1;
}

KEEP int consumer_a(leash_chan *ch) {
    return consumer_b(ch) * 3;
}

KEEP void consumer_worker(void *arg) {
    printf("never: %d\n", consumer_a(arg));
}

static int consumer_main(void *arg) {
    (void)arg;
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    leash_go(consumer_worker, ch);
    leash_sleep(20 * 1000 * 1000); /* let it block */
    return 0;                       /* ch kept: the coroutine is leaked */
}

int main(void) {
    return leash_run(consumer_main, NULL);
}
