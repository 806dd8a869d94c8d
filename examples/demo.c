/*
 * demo.c — a first look at leash: spawn 1000 sleeping coroutines and a few
 * that yield, watch leash_num_coroutines() rise and fall back to 1.
 *
 * Run: make demo   (or ./build/example_demo)
 */
#include <leash.h>

#include <stdio.h>

enum { SLEEPERS = 1000, YIELDERS = 4 };

static void sleeper(void *arg)
{
    (void)arg;
    leash_sleep(10 * 1000 * 1000); /* 10 ms */
}

static void yielder(void *arg)
{
    int rounds = (int)(intptr_t)arg;
    for (int i = 0; i < rounds; i++)
        leash_yield();
}

static int demo_main(void *arg)
{
    (void)arg;
    printf("leash %d.%d.%d, %d worker(s)\n", LEASH_VERSION_MAJOR,
           LEASH_VERSION_MINOR, LEASH_VERSION_PATCH, leash_num_workers());
    printf("before: %zu coroutine(s)\n", leash_num_coroutines());

    int64_t t0 = leash_now();
    for (int i = 0; i < SLEEPERS; i++) {
        int64_t id = leash_go(sleeper, NULL);
        if (id < 0) {
            fprintf(stderr, "leash_go: %s\n", leash_strerror((int)id));
            return 1;
        }
    }
    for (int i = 0; i < YIELDERS; i++)
        leash_go(yielder, (void *)(intptr_t)1000);
    printf("while: %zu coroutine(s)\n", leash_num_coroutines());

    /* Wait (bounded) until only this coroutine is left. */
    int64_t deadline = leash_now() + 5LL * 1000 * 1000 * 1000;
    while (leash_num_coroutines() > 1 && leash_now() < deadline)
        leash_sleep(1000 * 1000);

    size_t left = leash_num_coroutines();
    printf("after: %zu coroutine(s), %.1f ms\n", left,
           (double)(leash_now() - t0) / 1e6);
    if (left != 1) {
        printf("FAIL: %zu coroutine(s) still alive\n", left - 1);
        return 1;
    }
    printf("OK: all %d coroutines finished, nothing leaked\n",
           SLEEPERS + YIELDERS);
    return 0;
}

int main(void)
{
    return leash_run(demo_main, NULL);
}
