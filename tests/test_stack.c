/* SPDX-License-Identifier: MIT */
/*
 * test_stack.c — coroutine stacks: an overflow is reported (not silent),
 * with the coroutine's spawn site, in guard-page and in canary mode; and
 * LEASH_STACK_SIZE changes the stack size.
 *
 * The overflows happen in a helper program (tests/progs/overflow.c, run
 * as testprog_overflow), since they end the process. Canary mode is what
 * the runtime uses once more than vm.max_map_count/4 stacks have guard
 * pages; the helper reaches it by first parking 17,000 coroutines (enough
 * for the default max_map_count of 65530; the canary tests are skipped if
 * the machine's limit is higher than that allows).
 *
 * Under ASan/TSan the runtime installs no SIGSEGV handler; this file is a
 * unit test, which runs in the normal build only.
 */
#define _GNU_SOURCE 1
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_util.h"
#include "internal.h" /* stack_max_map_count */

/* Output can be long; show its tail in failure messages. */
static const char *tail(const char *s) {
    size_t n = strlen(s);
    return n > 1500 ? s + n - 1500 : s;
}


/* Runs testprog_overflow MODE and checks it died reporting a stack
 * overflow of the overflowing coroutine, at its spawn site. */
static void expect_overflow(const char *mode, const char *how,
                            const char *const *env) {
    char *out = NULL;
    bool timed_out = false;
    const char *args[] = {mode, NULL};
    int st = cu_run_prog("overflow", args, env, &out, 60, &timed_out);
    cr_assert_neq(st, -1, "could not run testprog_overflow");
    cr_assert(!timed_out, "%s: hung; output:\n%s", mode, tail(out));
    cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0),
              "%s: exited 0 after an overflow; output:\n%s", mode, tail(out));
    cr_assert(!WIFEXITED(st) || WEXITSTATUS(st) < 2 || WEXITSTATUS(st) > 4,
              "%s: helper failed before the overflow (exit %d):\n%s", mode,
              WEXITSTATUS(st), tail(out));

    const char *site = strstr(out, "spawn-site=");
    cr_assert_not_null(site, "%s: no spawn-site line:\n%s", mode, tail(out));
    char want[600];
    int n = (int)strcspn(site + 11, "\n");
    snprintf(want, sizeof want, "%.*s", n, site + 11);
    const char *id = strstr(out, "overflow-id=");
    cr_assert_not_null(id, "%s: no overflow-id line:\n%s", mode, tail(out));
    char gor[64];
    snprintf(gor, sizeof gor, "goroutine %lld", atoll(id + 12));

    cr_assert_not_null(strstr(out, "stack overflow"),
                       "%s: the overflow was silent (status %s %d); output:\n%s",
                       mode, WIFSIGNALED(st) ? "signal" : "exit",
                       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
                       tail(out));
    cr_assert_not_null(strstr(out, "overflow.c"),
                       "%s: spawn file missing:\n%s", mode, tail(out));
    /* the report's own line, not the helper's spawn-site= line */
    char created[640];
    snprintf(created, sizeof created, "created at %s", want);
    cr_assert_not_null(strstr(out, created), "%s: \"%s\" missing:\n%s",
                       mode, created, tail(out));
    cr_assert_not_null(strstr(out, gor), "%s: \"%s\" missing:\n%s", mode, gor,
                       tail(out));
    if (how)
        cr_assert_not_null(strstr(out, how), "%s: \"%s\" missing:\n%s", mode,
                           how, tail(out));
    free(out);
}

Test(stack, overflow_reported_guard_page, .timeout = 60) {
    expect_overflow("guard", "guard page", NULL);
}

/* Canary mode, the overflowing coroutine yielding in every frame: the
 * canary below its stack is checked at each switch. */
Test(stack, overflow_reported_canary_yielding, .timeout = 120) {
    if (stack_max_map_count() / 4 >= 17000)
        cr_skip_test("vm.max_map_count too high to reach canary mode");
    expect_overflow("canary-yield", "canary", NULL);
}

/* Canary mode, plain infinite recursion: nothing switches, so the canary
 * is never checked; the recursion runs through the stacks below until it
 * faults outside any guard page. It must still be reported. */
Test(stack, overflow_reported_canary_no_yield, .timeout = 120) {
    if (stack_max_map_count() / 4 >= 17000)
        cr_skip_test("vm.max_map_count too high to reach canary mode");
    expect_overflow("canary", NULL, NULL);
}

/* An overflow with a bigger stack still names the spawn site. */
Test(stack, overflow_reported_bigger_stack, .timeout = 60) {
    const char *env[] = {"LEASH_STACK_SIZE=256k", NULL};
    expect_overflow("guard", "guard page", env);
}

/* ------------------------------------------------------ LEASH_STACK_SIZE */

static int run_deep(long kib, const char *stack_env, char **out) {
    char arg[32];
    snprintf(arg, sizeof arg, "%ld", kib);
    const char *args[] = {"deep", arg, NULL};
    const char *env[] = {stack_env, NULL};
    bool timed_out = false;
    int st = cu_run_prog("overflow", args, stack_env ? env : NULL, out, 60,
                         &timed_out);
    cr_assert(!timed_out, "deep %ld (%s) hung:\n%s", kib,
              stack_env ? stack_env : "default", tail(*out));
    return st;
}

Test(stack, stack_size_env_allows_deeper_recursion, .timeout = 60) {
    char *out = NULL;
    /* 32 KiB of frames fit the default 64 KiB stack. */
    int st = run_deep(32, NULL, &out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, "deep-ok"),
              "32 KiB deep on the default stack:\n%s", tail(out));
    free(out);
    /* 128 KiB do not... */
    st = run_deep(128, NULL, &out);
    cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0),
              "128 KiB of frames fit a 64 KiB stack?\n%s", tail(out));
    cr_assert_not_null(strstr(out, "stack overflow"), "%s", tail(out));
    free(out);
    /* ...but do with LEASH_STACK_SIZE=256k. */
    st = run_deep(128, "LEASH_STACK_SIZE=256k", &out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, "deep-ok"),
              "128 KiB deep with LEASH_STACK_SIZE=256k:\n%s", tail(out));
    free(out);
    /* Plain bytes work too. */
    st = run_deep(128, "LEASH_STACK_SIZE=262144", &out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, "deep-ok"),
              "128 KiB deep with LEASH_STACK_SIZE=262144:\n%s", tail(out));
    free(out);
}

Test(stack, stack_size_env_invalid_falls_back, .timeout = 60) {
    const char *bad[] = {"LEASH_STACK_SIZE=1k", "LEASH_STACK_SIZE=junk",
                         "LEASH_STACK_SIZE=-5", "LEASH_STACK_SIZE=4g"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *out = NULL;
        int st = run_deep(32, bad[i], &out);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
                      strstr(out, "deep-ok"),
                  "%s: default stack not used:\n%s", bad[i], tail(out));
        cr_assert_not_null(strstr(out, "LEASH_STACK_SIZE"),
                           "%s: no warning:\n%s", bad[i], tail(out));
        free(out);
    }
}

/* ------------------------------------------------------------- prefault */

/* A burst of fresh stacks wakes the prefault helper, which keeps at most
 * 256 fresh slots in the pool (bounded), those stacks still go to the cold
 * list when idle workers trim the pool, the helper exits when idle, and a
 * fork in the middle of a burst neither hangs the parent nor the child. */
#define PF_BURST 3000
#define PF_AHEAD 256 /* stack.c's PREFAULT_AHEAD */

static _Atomic long pf_started;

static void pf_park(void *arg) {
    atomic_fetch_add(&pf_started, 1);
    (void)leash_recv_n((leash_chan *)arg, NULL, 0);
}

/* Waits up to 10 s for cond(); false on timeout. */
#define PF_WAIT(cond)                                                         \
    ({                                                                        \
        int64_t _end = leash_now() + 10000000000LL;                           \
        while (!(cond) && leash_now() < _end)                                 \
            leash_sleep(1000000);                                             \
        (cond);                                                               \
    })

static int pf_main(void *arg) {
    (void)arg;
    leash_chan *gate = leash_chan_make(0, 0);
    atomic_store(&pf_started, 0);
    pid_t child = -1;
    for (long i = 0; i < PF_BURST; i++) {
        cr_assert_gt(leash_go(pf_park, gate), 0, "leash_go %ld", i);
        if (i == PF_BURST / 2 && (child = fork()) == 0)
            _exit(leash_go(pf_park, gate) == LEASH_EINVAL ? 0 : 1);
    }
    cr_assert(child > 0, "fork failed");
    int st = 0;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "forked child: %d", st);
    cr_assert(PF_WAIT(atomic_load(&pf_started) == PF_BURST));
    long pooled, pref;
    /* The helper filled the pool ahead of the spawns (the spawner may
     * have taken some since), up to the bound and no further. */
    cr_assert(PF_WAIT((stack_prefault_stats(&pooled, &pref), pref > 0)),
              "the helper never ran");
    leash_sleep(200 * 1000000);
    stack_prefault_stats(&pooled, &pref);
    cr_assert_leq(pooled, PF_AHEAD, "the helper pooled %ld stacks", pooled);
    leash_close(gate);
    /* All exited: their stacks pooled; idle workers trim the pool. */
    cr_assert(PF_WAIT((stack_prefault_stats(&pooled, &pref), pooled <= 1024)),
              "pool not trimmed: %ld", pooled);
    cr_assert(PF_WAIT(stack_threads() == 0), "prefault helper still alive");
    leash_release(gate);
    return 0;
}

static void pf_run(const char *stack_size) {
    if (stack_size)
        setenv("LEASH_STACK_SIZE", stack_size, 1);
    cr_assert_eq(leash_run(pf_main, NULL), 0);
    cr_assert_eq(leash_shutdown(), 0); /* unmaps every stack */
    /* Forked while stopped: the child runs its own runtime and bursts. */
    pid_t child = fork();
    if (child == 0)
        _exit(leash_run(pf_main, NULL) == 0 ? 0 : 1);
    int st = 0;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %d", st);
}

Test(stack, prefault_bounded_trimmed_fork_safe, .timeout = 120) {
    pf_run(NULL);
}

Test(stack, prefault_small_stacks, .timeout = 120) { pf_run("16k"); }

Test(stack, prefault_large_stacks, .timeout = 120) { pf_run("1m"); }
