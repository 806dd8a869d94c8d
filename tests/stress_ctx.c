/* SPDX-License-Identifier: MIT */
/*
 * stress_ctx.c — contexts whose deadlines fire while they are cancelled
 * and released on other workers.
 *
 * Each round makes a parent with a deadline a few microseconds away and
 * children of it (some with deadlines of their own, as short), hands
 * each child to a coroutine that waits for it to be done, and drops its
 * own references at once: the parent then lives only through its
 * children. Its timer's cancel (on whichever worker runs the timer) and
 * the children's own timers wake the waiters, whose exits release the
 * children, whose destruction releases the parent, whose destruction
 * deletes a timer that may still be running: on another worker, or on
 * this very one (the cancel walk dropped the last reference).
 *
 * Checks: every waiter wakes once, with the error its context says; no
 * object is left (CU_ASSERT_CLEAN); nothing hangs.
 */
#define _GNU_SOURCE 1
#include <stdatomic.h>
#include <stdlib.h>

#include "core_util.h"

#define CHURNERS 4
#define CHILDREN 3
/* TSan makes each waiter a fiber, a few hundred KiB of fresh memory to
 * zero: 120,000 of them timed out (240 s) on a VM whose fresh pages cost
 * 15 us, and 12,000 took 230 s of make test's 15 minutes. TSan looks for
 * races, which 3,600 waiters racing cancels and deadlines show as well. */
#if defined(__SANITIZE_THREAD__)
#define ROUNDS 300
#else
#define ROUNDS 10000
#endif

/* Waiters alive at once, at most (TSan makes each coroutine a fiber, and
 * counts fibers against its limit of 8,128 threads). */
#define MAX_WAITING 512

static atomic_long spawned, woken, timed_out, cancelled;

static void child_waiter(void *p) {
    leash_ctx *c = p;
    CU_CHECK_EQ(leash_recv_n(leash_ctx_done(c), NULL, 0), LEASH_ECLOSED);
    int e = leash_ctx_err(c);
    CU_CHECK(e == LEASH_ETIMEDOUT || e == LEASH_ECANCELED);
    atomic_fetch_add(e == LEASH_ETIMEDOUT ? &timed_out : &cancelled, 1);
    atomic_fetch_add(&woken, 1);
} /* its reference to c goes with it (leash_go's hand-over) */

typedef struct {
    leash_waitgroup *wg;
    unsigned seed;
} churn_arg;

static void churner(void *p) {
    churn_arg *a = p;
    unsigned seed = a->seed;
    for (int r = 0; r < ROUNDS; r++) {
        int64_t d = (int64_t)(rand_r(&seed) % 50) * 1000; /* 0-49 us */
        leash_ctx *parent =
            leash_ctx_with_timeout(leash_ctx_background(), d);
        CU_CHECK(parent != NULL);
        for (int k = 0; k < CHILDREN; k++) {
            /* Odd children have a deadline of their own, as close. */
            leash_ctx *c =
                k % 2 ? leash_ctx_with_timeout(
                            parent, (int64_t)(rand_r(&seed) % 50) * 1000)
                      : leash_ctx_with_cancel(parent);
            CU_CHECK(c != NULL);
            while (atomic_load(&spawned) - atomic_load(&woken) >= MAX_WAITING)
                leash_yield();
            atomic_fetch_add(&spawned, 1);
            CU_CHECK(leash_go(child_waiter, c, c) > 0);
            leash_release(c);
        }
        if (r % 4 == 0)
            leash_ctx_cancel(parent); /* a cancel racing the deadline */
        leash_release(parent);
        if (r % 64 == 0)
            leash_yield();
    }
    leash_waitgroup_done(a->wg);
}

static int stress_main(void *arg) {
    (void)arg;
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&wg, CHURNERS);
    churn_arg args[CHURNERS];
    for (int i = 0; i < CHURNERS; i++) {
        args[i] = (churn_arg){&wg, 12345u + (unsigned)i};
        CU_CHECK(leash_go(churner, &args[i]) > 0);
    }
    leash_waitgroup_wait(&wg);
    const long want = (long)CHURNERS * ROUNDS * CHILDREN;
    CU_WAIT_UNTIL(atomic_load(&woken) == want, 60000);
    CU_CHECK_EQ(atomic_load(&woken), want);
    CU_CHECK(atomic_load(&timed_out) > 0);
    CU_CHECK(atomic_load(&cancelled) > 0);
    cr_log_info("%ld waiters: %ld timed out, %ld cancelled", want,
                atomic_load(&timed_out), atomic_load(&cancelled));
    return 0;
}

static void run(const char *procs) {
    atomic_store(&spawned, 0);
    atomic_store(&woken, 0);
    atomic_store(&timed_out, 0);
    atomic_store(&cancelled, 0);
    setenv("LEASH_PROCS", procs, 1);
    cr_assert_eq(cu_run(stress_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

Test(ctx_deadlines, fire_while_released_procs1, .timeout = 240) { run("1"); }
Test(ctx_deadlines, fire_while_released_procs2, .timeout = 240) { run("2"); }
Test(ctx_deadlines, fire_while_released_procs4, .timeout = 240) { run("4"); }
