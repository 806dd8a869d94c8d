/* SPDX-License-Identifier: MIT */
/*
 * overflow.c — testprog_overflow: overflows a coroutine's stack, for
 * tests/test_stack.c.
 *
 *   testprog_overflow guard         infinite recursion in a coroutine whose
 *                                   stack has a guard page (the default)
 *   testprog_overflow canary-yield  the same in canary mode (more than
 *                                   max_map_count/4 stacks exist), yielding
 *                                   in every frame so the canary is checked
 *   testprog_overflow canary        canary mode, recursion without yields
 *   testprog_overflow deep KIB      recurse through KIB KiB of frames in a
 *                                   coroutine, print "deep-ok", exit 0
 *
 * Before the overflowing coroutine is spawned, the program prints
 * "spawn-site=FILE:LINE" (the leash_go call's __FILE__ and __LINE__).
 * Canary mode is reached by first spawning PARKED coroutines that block
 * forever: with the default vm.max_map_count of 65530, only the first
 * 16382 stacks get guard pages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leash.h"

#define FRAME 256
static volatile int stop_depth = -1; /* never reached: keeps it finite */
static volatile int do_yield;

static __attribute__((noinline)) long recurse(int depth) {
    volatile char buf[FRAME];
    for (int i = 0; i < FRAME; i++)
        buf[i] = (char)depth;
    if (depth == stop_depth)
        return 0;
    if (do_yield)
        leash_yield();
    return recurse(depth + 1) + buf[depth % FRAME];
}

static __attribute__((noinline)) long recurse_to(int depth) {
    volatile char buf[FRAME];
    for (int i = 0; i < FRAME; i++)
        buf[i] = (char)depth;
    if (depth <= 0)
        return 0;
    return recurse_to(depth - 1) + buf[depth % FRAME];
}

/* Waits for main to have printed its id: with another worker free, it
 * would otherwise run, overflow and end the process first. */
static void overflow_co(void *arg) {
    leash_set_name("overflower");
    (void)leash_recv_n((leash_chan *)arg, NULL, 0);
    printf("result %ld\n", recurse(0)); /* not reached */
}

static long deep_kib;

static void deep_co(void *arg) {
    leash_chan *done = arg;
    long r = recurse_to((int)(deep_kib * 1024 / FRAME));
    printf("deep-ok %ld\n", r & 1);
    fflush(stdout);
    leash_close(done);
}

static void park_forever(void *arg) {
    (void)leash_recv_n((leash_chan *)arg, NULL, 0);
}

static int main_co(void *arg) {
    const char *mode = arg;
    leash_chan *gate = leash_chan_make(0, 0);
    if (strcmp(mode, "deep") == 0) {
        leash_chan *done = leash_chan_make(0, 0);
        if (leash_go(deep_co, done) <= 0)
            return 3;
        (void)leash_recv_n(done, NULL, 0);
        return 0;
    }
    if (strncmp(mode, "canary", 6) == 0) {
        long parked = 17000;
        const char *e = getenv("PARKED");
        if (e)
            parked = atol(e);
        for (long i = 0; i < parked; i++)
            if (leash_go(park_forever, gate) <= 0) {
                fprintf(stderr, "leash_go failed at %ld\n", i);
                return 3;
            }
        leash_sleep(10 * 1000000); /* let them park */
        do_yield = strcmp(mode, "canary-yield") == 0;
    } else if (strcmp(mode, "guard") != 0) {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    leash_chan *go = leash_chan_make(0, 0);
    printf("spawn-site=%s:%d\n", __FILE__, __LINE__ + 2);
    fflush(stdout);
    int64_t id = leash_go(overflow_co, go, go);
    if (id <= 0)
        return 3;
    printf("overflow-id=%lld\n", (long long)id);
    fflush(stdout);
    leash_close(go);
    (void)leash_recv_n(gate, NULL, 0); /* the process dies first */
    return 4;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: %s guard|canary|canary-yield|deep KIB\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "deep") == 0)
        deep_kib = argc > 2 ? atol(argv[2]) : 32;
    return leash_run(main_co, argv[1]);
}
