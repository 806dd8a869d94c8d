/* SPDX-License-Identifier: MIT */
/*
 * example.h — what the examples share, so that each file shows only its
 * scenario: the write-up's query() (a request that takes a while) and the
 * check every fixed version ends with.
 */
#ifndef LEASH_EXAMPLE_H
#define LEASH_EXAMPLE_H

#include <leash.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define MS (1000 * 1000LL)

/* rand.Intn(n), thread-safe and reproducible. */
static inline int rand_intn(int n)
{
    static _Atomic uint64_t state = 0x2545F4914F6CDD1DULL;
    uint64_t x = atomic_fetch_add(&state, 0x9E3779B97F4A7C15ULL);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return (int)((x ^ (x >> 31)) % (uint64_t)n);
}

/* func query() int: a request that takes 0-99 ms. */
static inline int query(void)
{
    int n = rand_intn(100);
    leash_sleep(n * MS);
    return n;
}

/* How a fixed version ends: leash_leak_verify against the snapshot taken
 * when it started (up to 1 s for coroutines that are finishing), then the
 * count and the proven leaks, each on a line of its own:
 *
 *     leash_leak_verify: N coroutine(s) left
 *     #goroutines: N<note>
 *     leash_leak_dump: N coroutine(s) proven leaked
 *
 * A leftover coroutine is reported with its stack by leash_leak_verify.
 * Frees snap; returns what leash_leak_verify found. */
static inline int report_fixed(leash_snapshot *snap, const char *note)
{
    leash_leak_opts opts = {.timeout_ns = 1000 * MS, .out = stdout};
    int left = leash_leak_verify(snap, &opts);
    leash_snapshot_free(snap);
    printf("\nleash_leak_verify: %d coroutine(s) left\n", left);
    printf("#goroutines: %zu%s\n", leash_num_coroutines(), note ? note : "");
    printf("leash_leak_dump: %d coroutine(s) proven leaked\n",
           leash_leak_dump(stdout, LEASH_DUMP_LEASH));
    return left;
}

#endif /* LEASH_EXAMPLE_H */
