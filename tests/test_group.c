/* SPDX-License-Identifier: MIT */
/*
 * test_group.c — leash_group, Go's errgroup with a context: results, the
 * first error cancelling the group's context, joining every member,
 * references handed to members, bad arguments.
 *
 * Assertions on coroutines and other threads go through CU_CHECK*; the
 * test thread turns them into a verdict with CU_ASSERT_CLEAN().
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core_util.h"

/* --------------------------------------------------------------- success */

static atomic_int ok_ran;

static int ok_member(void *p) {
    int i = (int)(intptr_t)p;
    if (i % 3 == 0)
        leash_sleep((i % 5) * CU_MS);
    else
        leash_yield();
    atomic_fetch_add(&ok_ran, 1);
    return 0;
}

static int all_ok_main(void *arg) {
    (void)arg;
    leash_group *g = leash_group_new(leash_ctx_background());
    CU_CHECK(g != NULL);
    if (!g)
        return 1;
    leash_ctx *gc = leash_group_ctx(g);
    CU_CHECK(gc != NULL);
    CU_CHECK_EQ(leash_ctx_err(gc), 0);
    for (int i = 0; i < 50; i++)
        CU_CHECK(leash_group_go(g, ok_member, (void *)(intptr_t)i) > 0);
    CU_CHECK_EQ(leash_group_wait(g), 0);
    CU_CHECK_EQ(atomic_load(&ok_ran), 50);
    /* wait's return cancels the group's context. */
    CU_CHECK_EQ(leash_ctx_err(leash_group_ctx(g)), LEASH_ECANCELED);
    /* A second wait returns the same result at once. */
    CU_CHECK_EQ(leash_group_wait(g), 0);
    leash_release(g);

    /* No members: wait returns 0 at once. */
    g = leash_group_new(leash_ctx_background());
    CU_CHECK_EQ(leash_group_wait(g), 0);
    leash_release(g);
    return 0;
}

Test(group, all_succeed_returns_zero, .timeout = 30) {
    cr_assert_eq(cu_run(all_ok_main, NULL), 0);
}

/* ----------------------------------------------------------- first error */

static atomic_int saw_cancel, finished_normally;

static int fail_fast(void *p) {
    (void)p;
    leash_sleep(5 * CU_MS);
    return -5;
}

/* Watches the group's context: returns when it is cancelled (or after 10
 * s, which would be a failure) with another error, which must not win. */
static int watcher(void *p) {
    leash_group *g = p;
    leash_chan *done = leash_ctx_done(leash_group_ctx(g));
    leash_chan *timeout = leash_after(10000 * CU_MS);
    int64_t v;
    leash_case cs[2] = {
        {.ch = done, .dir = LEASH_RECV, .elem = NULL, .size = 0},
        LEASH_RECV_CASE(timeout, &v),
    };
    int r = leash_select(cs, 2);
    leash_release(timeout);
    if (r == 0) {
        atomic_fetch_add(&saw_cancel, 1);
        CU_CHECK_EQ(leash_ctx_err(leash_group_ctx(g)), LEASH_ECANCELED);
        return -7;
    }
    atomic_fetch_add(&finished_normally, 1);
    return 0;
}

/* Blocks on the done channel directly. */
static int recv_watcher(void *p) {
    leash_group *g = p;
    CU_CHECK_EQ(leash_recv_n(leash_ctx_done(leash_group_ctx(g)), NULL, 0),
                LEASH_ECLOSED);
    atomic_fetch_add(&saw_cancel, 1);
    return 0;
}

static int first_error_main(void *arg) {
    (void)arg;
    leash_ctx *parent = leash_ctx_with_cancel(leash_ctx_background());
    leash_group *g = leash_group_new(parent);
    for (int i = 0; i < 10; i++)
        CU_CHECK(leash_group_go(g, watcher, g) > 0);
    for (int i = 0; i < 10; i++)
        CU_CHECK(leash_group_go(g, recv_watcher, g) > 0);
    CU_CHECK(leash_group_go(g, fail_fast, NULL) > 0);
    int64_t t0 = leash_now();
    CU_CHECK_EQ(leash_group_wait(g), -5); /* the first, not a later -7 */
    CU_CHECK(leash_now() - t0 < 5000 * CU_MS);
    CU_CHECK_EQ(atomic_load(&saw_cancel), 20);
    CU_CHECK_EQ(atomic_load(&finished_normally), 0);
    /* The group's cancel does not reach the parent. */
    CU_CHECK_EQ(leash_ctx_err(parent), 0);
    CU_CHECK_EQ(leash_group_wait(g), -5);
    leash_release(g);
    leash_release(parent);
    return 0;
}

Test(group, first_error_wins_and_cancels, .timeout = 30) {
    cr_assert_eq(cu_run(first_error_main, NULL), 0);
}

/* Many members fail at about the same time: wait returns exactly one of
 * their results. */
static int fail_with(void *p) {
    leash_yield();
    return (int)(intptr_t)p;
}

static int many_errors_main(void *arg) {
    (void)arg;
    for (int round = 0; round < 50; round++) {
        leash_group *g = leash_group_new(leash_ctx_background());
        for (int i = 1; i <= 16; i++)
            CU_CHECK(leash_group_go(g, fail_with, (void *)(intptr_t)-i) > 0);
        int r = leash_group_wait(g);
        CU_CHECK(r <= -1 && r >= -16);
        CU_CHECK_EQ(leash_group_wait(g), r);
        leash_release(g);
    }
    /* Positive results count as errors too (non-zero). */
    leash_group *g = leash_group_new(leash_ctx_background());
    CU_CHECK(leash_group_go(g, fail_with, (void *)(intptr_t)3) > 0);
    CU_CHECK_EQ(leash_group_wait(g), 3);
    leash_release(g);
    return 0;
}

Test(group, concurrent_errors_one_result, .timeout = 30) {
    cr_assert_eq(cu_run(many_errors_main, NULL), 0);
}

/* Cancelling the parent cancels the group's context. */
static int parent_cancel_main(void *arg) {
    (void)arg;
    leash_ctx *parent = leash_ctx_with_cancel(leash_ctx_background());
    leash_group *g = leash_group_new(parent);
    atomic_store(&saw_cancel, 0);
    for (int i = 0; i < 5; i++)
        CU_CHECK(leash_group_go(g, recv_watcher, g) > 0);
    leash_sleep(5 * CU_MS);
    CU_CHECK_EQ(atomic_load(&saw_cancel), 0);
    leash_ctx_cancel(parent);
    CU_CHECK_EQ(leash_group_wait(g), 0); /* members returned 0 */
    CU_CHECK_EQ(atomic_load(&saw_cancel), 5);
    leash_release(g);
    leash_release(parent);
    return 0;
}

Test(group, parent_cancel_reaches_members, .timeout = 30) {
    cr_assert_eq(cu_run(parent_cancel_main, NULL), 0);
}

/* ------------------------------------------------------------------ join */

static atomic_int join_exited;

static int trivial_member(void *p) {
    (void)p;
    return 0;
}

static int join_member(void *p) {
    int i = (int)(intptr_t)p;
    if (i % 4 == 0)
        leash_sleep((1 + i % 7) * CU_MS);
    for (int k = 0; k < i % 5; k++)
        leash_yield();
    atomic_fetch_add(&join_exited, 1);
    return i == 13 ? -1 : 0;
}

/* One group round: n members, then wait; false (and a recorded failure)
 * if any member is still counted right after wait returned. */
static int join_trial;

static bool join_round(int round, int n, int (*fn)(void *), size_t base) {
    leash_group *g = leash_group_new(leash_ctx_background());
    for (int i = 0; i < n; i++)
        CU_CHECK(leash_group_go(g, fn, (void *)(intptr_t)i) > 0);
    int r = leash_group_wait(g);
    /* Every member has returned and is gone: nothing outlives wait. */
    size_t now = leash_num_coroutines();
    leash_release(g);
    if (now != base) {
        cu_fail(__FILE__, __LINE__,
                "trial %d round %d: %zu coroutines right after "
                "leash_group_wait, %zu before the group started",
                join_trial, round, now, base);
        return false;
    }
    CU_CHECK_EQ(r, fn == join_member && n > 13 ? -1 : 0);
    return true;
}

static int join_main(void *arg) {
    int trial = (int)(intptr_t)arg;
    join_trial = trial;
    size_t base = leash_num_coroutines();
    /* Members that return at once, back to back: the tightest race
     * between a member's exit and the waiter's return. */
    int rounds = cu_sanitized() ? 1000 : 3000;
    for (int round = 0; round < rounds; round++)
        if (!join_round(round, 4, trivial_member, base))
            return 0;
    /* Members that sleep and yield a varied amount. */
    if (trial == 0)
        for (int round = 0; round < 60; round++)
            if (!join_round(round, 1 + round % 20, join_member, base))
                return 0;
    return 0;
}

/* Whether a member's exit overlaps the waiter's return depends on how the
 * scheduler happened to spread the work when it started, so the check
 * runs in several freshly started runtimes. */
Test(group, wait_joins_every_member, .timeout = 60) {
    for (int trial = 0; trial < 16 && cu_failures() == 0; trial++) {
        cr_assert_eq(leash_run(join_main, (void *)(intptr_t)trial), 0);
        cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 5000));
        cr_assert_eq(leash_shutdown(), 0, "trial %d", trial);
    }
    CU_ASSERT_CLEAN();
}

/* ------------------------------------------------- handed references */

static int uses_chan(void *p) {
    leash_chan *ch = p;
    leash_sleep(10 * CU_MS); /* the creator released its reference */
    CU_CHECK_EQ(leash_chan_cap(ch), 4);
    int v = 42;
    CU_CHECK_EQ(leash_send(ch, &v), 0);
    CU_CHECK_EQ(leash_chan_len(ch), 1);
    return 0;
}

static int uses_ctx(void *p) {
    leash_ctx *c = p;
    leash_sleep(10 * CU_MS);
    CU_CHECK_EQ(leash_ctx_err(c), 0);
    CU_CHECK(leash_ctx_done(c) != NULL);
    return 0;
}

static int handed_main(void *arg) {
    (void)arg;
    leash_group *g = leash_group_new(leash_ctx_background());
    leash_chan *ch = leash_chan_make(sizeof(int), 4);
    leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
    leash_chan *cdone = leash_retain(leash_ctx_done(c));
    CU_CHECK(leash_group_go(g, uses_chan, ch, ch) > 0);
    CU_CHECK(leash_group_go(g, uses_ctx, c, c, ch) > 0);
    leash_release(ch);
    leash_release(c);
    CU_CHECK_EQ(leash_group_wait(g), 0);
    /* The members' references went with them: the context is gone (and
     * was cancelled on the way). */
    CU_CHECK_EQ(leash_recv_n(cdone, NULL, 0), LEASH_ECLOSED);
    leash_release(cdone);
    leash_release(g);
    return 0;
}

Test(group, members_get_handed_references, .timeout = 30) {
    cr_assert_eq(cu_run(handed_main, NULL), 0);
}

/* The creator may release the group while members still run: they keep
 * it alive; a member may spawn more members before it returns. */
static leash_chan *late_sig;

static int late_member(void *p) {
    (void)p;
    leash_sleep(10 * CU_MS);
    CU_CHECK_EQ(leash_send_n(late_sig, NULL, 0), 0);
    return 0;
}

static int spawner_member(void *p) {
    leash_group *g = p;
    for (int i = 0; i < 3; i++)
        CU_CHECK(leash_group_go(g, late_member, NULL) > 0);
    return 0;
}

static int release_early_main(void *arg) {
    (void)arg;
    late_sig = leash_chan_make(0, 16);
    leash_group *g = leash_group_new(leash_ctx_background());
    CU_CHECK(leash_group_go(g, late_member, NULL) > 0);
    leash_release(g); /* members keep the group alive */
    for (int i = 0; i < 1; i++)
        CU_CHECK_EQ(leash_recv_n(late_sig, NULL, 0), 0);

    g = leash_group_new(leash_ctx_background());
    CU_CHECK(leash_group_go(g, spawner_member, g) > 0);
    CU_CHECK_EQ(leash_group_wait(g), 0);
    /* The members spawned by a member before it returned were joined. */
    CU_CHECK_EQ(leash_chan_len(late_sig), 3);
    leash_release(g);
    leash_release(late_sig);
    return 0;
}

Test(group, members_keep_group_alive, .timeout = 30) {
    cr_assert_eq(cu_run(release_early_main, NULL), 0);
}

/* --------------------------------------------------------------- bad args */

static int noop_member(void *p) {
    (void)p;
    return 0;
}

static int bad_args_main(void *arg) {
    (void)arg;
    CU_CHECK(leash_group_new(NULL) == NULL);
    CU_CHECK(leash_group_ctx(NULL) == NULL);
    CU_CHECK_EQ(leash_group_go(NULL, noop_member, NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_group_wait(NULL), LEASH_EINVAL);

    leash_group *g = leash_group_new(leash_ctx_background());
    CU_CHECK(g != NULL);
    CU_CHECK_EQ(leash_group_go(g, NULL, NULL), LEASH_EINVAL);
    /* A handed pointer that is not a live leash object. */
    uint64_t junk[8];
    memset(junk, 0x5a, sizeof junk);
    CU_CHECK_EQ(leash_group_go(g, noop_member, NULL, (void *)junk), LEASH_EINVAL);
    CU_CHECK_EQ(leash_group_wait(g), 0); /* nothing was started */

    /* Objects of other types where a group or a context is expected. */
    leash_chan *ch = leash_chan_make(0, 0);
    leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
    CU_CHECK(leash_group_new((leash_ctx *)ch) == NULL);
    CU_CHECK(leash_group_ctx((leash_group *)c) == NULL);
    CU_CHECK_EQ(leash_group_go((leash_group *)ch, noop_member, NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_group_wait((leash_group *)c), LEASH_EINVAL);
    CU_CHECK(leash_group_ctx((leash_group *)junk) == NULL);
    CU_CHECK_EQ(leash_group_wait((leash_group *)junk), LEASH_EINVAL);
    CU_CHECK_EQ(leash_group_go((leash_group *)((char *)junk + 1), noop_member,
                               NULL), LEASH_EINVAL);

    /* A released group is not live. */
    leash_release(g);
    CU_CHECK_EQ(leash_group_wait(g), LEASH_EINVAL);
    CU_CHECK_EQ(leash_group_go(g, noop_member, NULL), LEASH_EINVAL);
    CU_CHECK(leash_group_ctx(g) == NULL);

    /* A group on a cancelled parent: members run, their context is done. */
    leash_ctx_cancel(c);
    g = leash_group_new(c);
    CU_CHECK(g != NULL);
    CU_CHECK_EQ(leash_ctx_err(leash_group_ctx(g)), LEASH_ECANCELED);
    CU_CHECK(leash_group_go(g, noop_member, NULL) > 0);
    CU_CHECK_EQ(leash_group_wait(g), 0);
    leash_release(g);
    leash_release(c);
    leash_release(ch);
    return 0;
}

Test(group, bad_args_einval, .timeout = 30) {
    cr_assert_eq(cu_run(bad_args_main, NULL), 0);
}

/* ------------------------------------------------------- plain threads */

static atomic_int thread_members_ran;

static int thread_member(void *p) {
    (void)p;
    leash_sleep(CU_MS);
    atomic_fetch_add(&thread_members_ran, 1);
    return 0;
}

static void *group_from_thread(void *p) {
    (void)p;
    for (int round = 0; round < 20; round++) {
        leash_group *g = leash_group_new(leash_ctx_background());
        CU_CHECK(g != NULL);
        for (int i = 0; i < 5; i++)
            CU_CHECK(leash_group_go(g, thread_member, NULL) > 0);
        CU_CHECK_EQ(leash_group_wait(g), 0);
        leash_release(g);
    }
    return NULL;
}

Test(group, used_from_plain_threads, .timeout = 30) {
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, group_from_thread, NULL), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&thread_members_ran), 2 * 20 * 5);
    CU_ASSERT_CLEAN();
}
