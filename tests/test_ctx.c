/* SPDX-License-Identifier: MIT */
/*
 * test_ctx.c — Go's context: background, with_cancel, with_timeout /
 * with_deadline, with_value, propagation through a tree, deep chains,
 * release-cancels, handing a context to a coroutine, bad pointers, and a
 * select on a done channel woken by cancel.
 *
 * Assertions on coroutines and other threads go through CU_CHECK* (see
 * core_util.h); the test thread turns them into a verdict with
 * CU_ASSERT_CLEAN(). Timing checks are one-sided (never early) with
 * generous upper bounds that only catch hangs.
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core_util.h"
#include "internal.h" /* S.workers[].timers: pending timers */

/* A receive on a done channel: LEASH_ECLOSED once it is closed. */
static int done_recv(leash_ctx *c) { return leash_recv_n(leash_ctx_done(c), NULL, 0); }
/* A non-blocking look: LEASH_EAGAIN while open, LEASH_ECLOSED once closed. */
static int done_poll(leash_ctx *c) {
    return leash_try_recv_n(leash_ctx_done(c), NULL, 0);
}

/* ------------------------------------------------------------ background */

static int k_a, k_b, k_c, k_missing; /* value keys: their addresses */

static int background_main(void *arg) {
    (void)arg;
    leash_ctx *bg = leash_ctx_background();
    CU_CHECK(bg != NULL);
    CU_CHECK(leash_ctx_background() == bg); /* one background */
    CU_CHECK_EQ(leash_ctx_err(bg), 0);
    CU_CHECK(leash_ctx_done(bg) == NULL);
    CU_CHECK(leash_ctx_value(bg, &k_a) == NULL);
    CU_CHECK(leash_ctx_value(bg, NULL) == NULL);
    CU_CHECK_EQ(leash_ctx_deadline(bg), -1);
    leash_ctx_cancel(bg); /* a no-op */
    CU_CHECK_EQ(leash_ctx_err(bg), 0);
    CU_CHECK(leash_ctx_done(bg) == NULL);
    /* Retain/release of the immortal background change nothing. */
    CU_CHECK(leash_retain(bg) == bg);
    leash_release(bg);
    leash_release(bg);
    CU_CHECK_EQ(leash_ctx_err(bg), 0);
    return 0;
}

Test(ctx, background_never_cancelled, .timeout = 30) {
    cr_assert_eq(cu_run(background_main, NULL), 0);
    /* Also from the plain test thread. */
    cr_assert_eq(leash_ctx_err(leash_ctx_background()), 0);
    cr_assert_null(leash_ctx_done(leash_ctx_background()));
}

/* ----------------------------------------------------------- with_cancel */

static int cancel_basic_main(void *arg) {
    (void)arg;
    leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
    CU_CHECK(c != NULL);
    if (!c)
        return 1;
    leash_chan *done = leash_ctx_done(c);
    CU_CHECK(done != NULL);
    CU_CHECK(leash_ctx_done(c) == done); /* the same channel each time */
    CU_CHECK_EQ(leash_chan_cap(done), 0);
    CU_CHECK_EQ(leash_ctx_err(c), 0);
    CU_CHECK_EQ(leash_ctx_deadline(c), -1);
    CU_CHECK_EQ(done_poll(c), LEASH_EAGAIN);

    leash_ctx_cancel(c);
    CU_CHECK_EQ(leash_ctx_err(c), LEASH_ECANCELED);
    CU_CHECK_EQ(done_recv(c), LEASH_ECLOSED);
    CU_CHECK_EQ(done_poll(c), LEASH_ECLOSED);
    /* Idempotent: the error and the channel stay as they are. */
    leash_ctx_cancel(c);
    leash_ctx_cancel(c);
    CU_CHECK_EQ(leash_ctx_err(c), LEASH_ECANCELED);
    CU_CHECK(leash_ctx_done(c) == done);
    CU_CHECK_EQ(done_recv(c), LEASH_ECLOSED);
    /* Already closed by cancel: a second close reports it. */
    CU_CHECK_EQ(leash_close(done), LEASH_ECLOSED);
    leash_release(c);
    return 0;
}

Test(ctx, with_cancel_basic, .timeout = 30) {
    cr_assert_eq(cu_run(cancel_basic_main, NULL), 0);
}

/* Many coroutines block on the same done channel, several cancel at once:
 * every waiter wakes exactly once with LEASH_ECLOSED and nothing breaks. */
#define NWAIT 64
#define NCANCEL 8
static atomic_int woke[NWAIT];
static atomic_int woke_total;

typedef struct {
    leash_ctx *c;
    int idx;
    leash_waitgroup *started, *finished;
} waiter_arg;

static void done_waiter(void *p) {
    waiter_arg *a = p;
    leash_waitgroup_done(a->started);
    CU_CHECK_EQ(done_recv(a->c), LEASH_ECLOSED);
    atomic_fetch_add(&woke[a->idx], 1);
    atomic_fetch_add(&woke_total, 1);
    leash_waitgroup_done(a->finished);
}

static void canceller(void *p) {
    waiter_arg *a = p;
    leash_yield();
    leash_ctx_cancel(a->c);
    leash_waitgroup_done(a->finished);
}

static int cancel_wakes_all_main(void *arg) {
    (void)arg;
    leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
    CU_CHECK(c != NULL);
    leash_waitgroup started = LEASH_WAITGROUP_INIT,
                    finished = LEASH_WAITGROUP_INIT;
    static waiter_arg args[NWAIT + NCANCEL];
    leash_waitgroup_add(&started, NWAIT);
    leash_waitgroup_add(&finished, NWAIT + NCANCEL);
    for (int i = 0; i < NWAIT; i++) {
        args[i] = (waiter_arg){c, i, &started, &finished};
        CU_CHECK(leash_go(done_waiter, &args[i], c) > 0);
    }
    leash_waitgroup_wait(&started);
    leash_sleep(5 * CU_MS); /* most are parked by now (either way works) */
    CU_CHECK_EQ(atomic_load(&woke_total), 0);
    for (int i = 0; i < NCANCEL; i++) {
        args[NWAIT + i] = (waiter_arg){c, 0, NULL, &finished};
        CU_CHECK(leash_go(canceller, &args[NWAIT + i], c) > 0);
    }
    leash_waitgroup_wait(&finished);
    CU_CHECK_EQ(atomic_load(&woke_total), NWAIT);
    for (int i = 0; i < NWAIT; i++)
        CU_CHECK_EQ(atomic_load(&woke[i]), 1);
    CU_CHECK_EQ(leash_ctx_err(c), LEASH_ECANCELED);
    leash_release(c);
    return 0;
}

Test(ctx, cancel_wakes_every_waiter_once, .timeout = 30) {
    cr_assert_eq(cu_run(cancel_wakes_all_main, NULL), 0);
}

/* ------------------------------------------------------------ propagation */

static int tree_main(void *arg) {
    (void)arg;
    leash_ctx *bg = leash_ctx_background();
    /*            root
     *          /      \
     *         a        b
     *       /   \       \
     *      a1    a2      b1
     *      |
     *      a1x                      */
    leash_ctx *root = leash_ctx_with_cancel(bg);
    leash_ctx *a = leash_ctx_with_cancel(root);
    leash_ctx *b = leash_ctx_with_value(root, &k_b, "b");
    leash_ctx *a1 = leash_ctx_with_timeout(a, 3600LL * 1000 * CU_MS);
    leash_ctx *a2 = leash_ctx_with_cancel(a);
    leash_ctx *a1x = leash_ctx_with_value(a1, &k_a, "x");
    leash_ctx *b1 = leash_ctx_with_cancel(b);
    leash_ctx *all[] = {root, a, b, a1, a2, a1x, b1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        CU_CHECK(all[i] != NULL);
        if (!all[i])
            return 1;
        CU_CHECK_EQ(leash_ctx_err(all[i]), 0);
    }

    /* Cancelling a leaf reaches neither its parent nor its siblings. */
    leash_ctx_cancel(a2);
    CU_CHECK_EQ(leash_ctx_err(a2), LEASH_ECANCELED);
    CU_CHECK_EQ(leash_ctx_err(a), 0);
    CU_CHECK_EQ(leash_ctx_err(a1), 0);
    CU_CHECK_EQ(leash_ctx_err(a1x), 0);
    CU_CHECK_EQ(leash_ctx_err(root), 0);

    /* Cancelling a: its whole subtree, depth 2 below it included. */
    leash_ctx_cancel(a);
    CU_CHECK_EQ(leash_ctx_err(a), LEASH_ECANCELED);
    CU_CHECK_EQ(leash_ctx_err(a1), LEASH_ECANCELED);
    CU_CHECK_EQ(leash_ctx_err(a1x), LEASH_ECANCELED);
    CU_CHECK_EQ(done_recv(a1x), LEASH_ECLOSED);
    CU_CHECK_EQ(done_recv(a1), LEASH_ECLOSED);
    /* ... not the ancestors nor the sibling subtree. */
    CU_CHECK_EQ(leash_ctx_err(root), 0);
    CU_CHECK_EQ(leash_ctx_err(b), 0);
    CU_CHECK_EQ(leash_ctx_err(b1), 0);
    CU_CHECK_EQ(done_poll(root), LEASH_EAGAIN);
    CU_CHECK_EQ(done_poll(b1), LEASH_EAGAIN);

    /* Cancelling root: the rest, with root's error. */
    leash_ctx_cancel(root);
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        CU_CHECK_EQ(leash_ctx_err(all[i]), LEASH_ECANCELED);
        CU_CHECK_EQ(done_poll(all[i]), LEASH_ECLOSED);
    }
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        leash_release(all[i]);
    return 0;
}

Test(ctx, tree_propagation, .timeout = 30) {
    cr_assert_eq(cu_run(tree_main, NULL), 0);
}

#define CHAIN 10000
static leash_ctx **chain;

/* Builds a chain of CHAIN nested contexts below bg (keeping every
 * reference). */
static bool build_chain(void) {
    chain = calloc(CHAIN, sizeof *chain);
    CU_CHECK(chain != NULL);
    if (!chain)
        return false;
    leash_ctx *p = leash_ctx_background();
    for (int i = 0; i < CHAIN; i++) {
        /* Mix the kinds: values and far deadlines are cancel scopes too. */
        if (i % 3 == 1)
            chain[i] = leash_ctx_with_value(p, &k_c, (void *)(intptr_t)i);
        else if (i % 3 == 2)
            chain[i] = leash_ctx_with_timeout(p, 3600LL * 1000 * CU_MS);
        else
            chain[i] = leash_ctx_with_cancel(p);
        CU_CHECK(chain[i] != NULL);
        if (!chain[i])
            return false;
        p = chain[i];
    }
    return true;
}

/* Cancelling the root of a 10,000-deep chain on a coroutine's 64 KiB
 * stack: reaches the leaf, overflows nothing. */
static int chain_cancel_main(void *arg) {
    (void)arg;
    if (!build_chain())
        return 1;
    leash_ctx *leaf = chain[CHAIN - 1];
    int last_val = CHAIN - 1;
    while (last_val % 3 != 1)
        last_val--;
    CU_CHECK(leash_ctx_value(leaf, &k_c) == (void *)(intptr_t)last_val);
    CU_CHECK_EQ(leash_ctx_err(leaf), 0);
    leash_ctx_cancel(chain[0]);
    for (int i = 0; i < CHAIN; i++)
        if (leash_ctx_err(chain[i]) != LEASH_ECANCELED) {
            CU_CHECK_EQ(leash_ctx_err(chain[i]), LEASH_ECANCELED);
            break;
        }
    CU_CHECK_EQ(done_recv(leaf), LEASH_ECLOSED);
    /* Leaf first: each release frees one context. */
    for (int i = CHAIN - 1; i >= 0; i--)
        leash_release(chain[i]);
    free(chain);
    return 0;
}

Test(ctx, chain_10000_cancel_root, .timeout = 60) {
    cr_assert_eq(cu_run(chain_cancel_main, NULL), 0);
}

/* The same chain, cancelled from the middle: the upper half stays live. */
static int chain_mid_main(void *arg) {
    (void)arg;
    if (!build_chain())
        return 1;
    leash_ctx_cancel(chain[CHAIN / 2]);
    CU_CHECK_EQ(leash_ctx_err(chain[CHAIN / 2 - 1]), 0);
    CU_CHECK_EQ(leash_ctx_err(chain[0]), 0);
    CU_CHECK_EQ(leash_ctx_err(chain[CHAIN / 2]), LEASH_ECANCELED);
    CU_CHECK_EQ(leash_ctx_err(chain[CHAIN - 1]), LEASH_ECANCELED);
    for (int i = CHAIN - 1; i >= 0; i--)
        leash_release(chain[i]);
    free(chain);
    return 0;
}

Test(ctx, chain_10000_cancel_middle, .timeout = 60) {
    cr_assert_eq(cu_run(chain_mid_main, NULL), 0);
}

/* The user drops the references root first (the natural order of code
 * that creates a child and forgets the parent): only the leaf's reference
 * keeps the chain alive, and releasing it must tear down 10,000 contexts
 * without recursing 10,000 deep on a 64 KiB coroutine stack. */
static int chain_release_root_first_main(void *arg) {
    (void)arg;
    if (!build_chain())
        return 1;
    leash_chan *done = leash_retain(leash_ctx_done(chain[0]));
    for (int i = 0; i < CHAIN - 1; i++)
        leash_release(chain[i]);
    CU_CHECK_EQ(leash_ctx_err(chain[CHAIN - 1]), 0);
    CU_CHECK_EQ(leash_ctx_err(chain[0]), 0); /* kept alive by its child */
    leash_release(chain[CHAIN - 1]); /* the whole chain goes */
    /* The root went with it, so it was cancelled. */
    CU_CHECK_EQ(leash_recv_n(done, NULL, 0), LEASH_ECLOSED);
    leash_release(done);
    free(chain);
    return 0;
}

Test(ctx, chain_10000_release_root_first, .timeout = 60) {
    cr_assert_eq(cu_run(chain_release_root_first_main, NULL), 0);
}

/* A chain where each step keeps only the newest context (Go's
 * `ctx, cancel = context.WithCancel(ctx)` in a loop), released at once. */
static int chain_rolling_main(void *arg) {
    (void)arg;
    leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
    leash_chan *root_done = leash_retain(leash_ctx_done(c));
    for (int i = 1; i < CHAIN && c; i++) {
        leash_ctx *n = leash_ctx_with_cancel(c);
        CU_CHECK(n != NULL);
        leash_release(c);
        c = n;
    }
    CU_CHECK_EQ(leash_ctx_err(c), 0);
    CU_CHECK_EQ(leash_try_recv_n(root_done, NULL, 0), LEASH_EAGAIN);
    leash_release(c);
    CU_CHECK_EQ(leash_recv_n(root_done, NULL, 0), LEASH_ECLOSED);
    leash_release(root_done);
    return 0;
}

Test(ctx, chain_10000_rolling_release, .timeout = 60) {
    cr_assert_eq(cu_run(chain_rolling_main, NULL), 0);
}

static int child_of_cancelled_main(void *arg) {
    (void)arg;
    leash_ctx *p = leash_ctx_with_cancel(leash_ctx_background());
    leash_ctx_cancel(p);
    leash_ctx *kids[] = {
        leash_ctx_with_cancel(p),
        leash_ctx_with_timeout(p, 3600LL * 1000 * CU_MS),
        leash_ctx_with_deadline(p, leash_now() + 3600LL * 1000 * CU_MS),
        leash_ctx_with_value(p, &k_a, "v"),
    };
    for (size_t i = 0; i < sizeof kids / sizeof *kids; i++) {
        CU_CHECK(kids[i] != NULL);
        if (!kids[i])
            continue;
        CU_CHECK_EQ(leash_ctx_err(kids[i]), LEASH_ECANCELED);
        CU_CHECK_EQ(done_poll(kids[i]), LEASH_ECLOSED);
        /* Grandchildren too. */
        leash_ctx *gk = leash_ctx_with_cancel(kids[i]);
        CU_CHECK(gk != NULL);
        CU_CHECK_EQ(leash_ctx_err(gk), LEASH_ECANCELED);
        CU_CHECK_EQ(done_recv(gk), LEASH_ECLOSED);
        leash_release(gk);
    }
    CU_CHECK(leash_ctx_value(kids[3], &k_a) != NULL);
    for (size_t i = 0; i < sizeof kids / sizeof *kids; i++)
        leash_release(kids[i]);

    /* A timed-out parent hands its own error down. */
    leash_ctx *t = leash_ctx_with_timeout(leash_ctx_background(), 0);
    CU_CHECK_EQ(leash_ctx_err(t), LEASH_ETIMEDOUT);
    leash_ctx *tk = leash_ctx_with_cancel(t);
    CU_CHECK_EQ(leash_ctx_err(tk), LEASH_ETIMEDOUT);
    CU_CHECK_EQ(done_poll(tk), LEASH_ECLOSED);
    leash_release(tk);
    leash_release(t);
    leash_release(p);
    return 0;
}

Test(ctx, child_of_cancelled_parent_starts_cancelled, .timeout = 30) {
    cr_assert_eq(cu_run(child_of_cancelled_main, NULL), 0);
}

/* ------------------------------------------------------ timeouts, deadlines */

static int timeout_main(void *arg) {
    (void)arg;
    int64_t t0 = leash_now();
    leash_ctx *c = leash_ctx_with_timeout(leash_ctx_background(), 50 * CU_MS);
    int64_t t1 = leash_now();
    CU_CHECK(c != NULL);
    if (!c)
        return 1;
    int64_t d = leash_ctx_deadline(c);
    CU_CHECK(d >= t0 + 50 * CU_MS && d <= t1 + 50 * CU_MS);
    CU_CHECK_EQ(leash_ctx_err(c), 0);
    CU_CHECK_EQ(done_recv(c), LEASH_ECLOSED);
    int64_t t2 = leash_now();
    CU_CHECK(t2 >= d); /* never early */
    CU_CHECK(t2 - t0 < 5000 * CU_MS);
    CU_CHECK_EQ(leash_ctx_err(c), LEASH_ETIMEDOUT);
    /* A cancel after the deadline changes nothing. */
    leash_ctx_cancel(c);
    CU_CHECK_EQ(leash_ctx_err(c), LEASH_ETIMEDOUT);
    leash_release(c);
    return 0;
}

Test(ctx, with_timeout_fires, .timeout = 30) {
    cr_assert_eq(cu_run(timeout_main, NULL), 0);
}

static int deadline_main(void *arg) {
    (void)arg;
    leash_ctx *bg = leash_ctx_background();
    int64_t abs = leash_now() + 40 * CU_MS;
    leash_ctx *p = leash_ctx_with_deadline(bg, abs);
    CU_CHECK(p != NULL);
    if (!p)
        return 1;
    CU_CHECK_EQ(leash_ctx_deadline(p), abs);
    /* A later own deadline: the parent's (earlier) one wins. */
    leash_ctx *later = leash_ctx_with_timeout(p, 3600LL * 1000 * CU_MS);
    CU_CHECK_EQ(leash_ctx_deadline(later), abs);
    leash_ctx *later2 = leash_ctx_with_deadline(p, abs + 1000 * CU_MS);
    CU_CHECK_EQ(leash_ctx_deadline(later2), abs);
    /* A plain child inherits the deadline. */
    leash_ctx *plain = leash_ctx_with_cancel(p);
    CU_CHECK_EQ(leash_ctx_deadline(plain), abs);
    leash_ctx *val = leash_ctx_with_value(p, &k_a, NULL);
    CU_CHECK_EQ(leash_ctx_deadline(val), abs);
    /* An earlier own deadline wins, and fires first. */
    int64_t early = leash_now() + 10 * CU_MS;
    leash_ctx *sooner = leash_ctx_with_deadline(p, early);
    CU_CHECK_EQ(leash_ctx_deadline(sooner), early);

    CU_CHECK_EQ(done_recv(sooner), LEASH_ECLOSED);
    CU_CHECK(leash_now() >= early);
    CU_CHECK_EQ(leash_ctx_err(sooner), LEASH_ETIMEDOUT);
    /* The parent fires at its own time, not because of its child. */
    if (leash_now() < abs)
        CU_CHECK_EQ(leash_ctx_err(p), 0);

    CU_CHECK_EQ(done_recv(later), LEASH_ECLOSED);
    CU_CHECK(leash_now() >= abs);
    CU_CHECK(leash_now() - abs < 5000 * CU_MS);
    leash_ctx *fired[] = {p, later, later2, plain, val};
    for (size_t i = 0; i < sizeof fired / sizeof *fired; i++) {
        CU_CHECK_EQ(leash_ctx_err(fired[i]), LEASH_ETIMEDOUT);
        CU_CHECK_EQ(done_poll(fired[i]), LEASH_ECLOSED);
    }
    leash_release(sooner);
    for (size_t i = 0; i < sizeof fired / sizeof *fired; i++)
        leash_release(fired[i]);
    return 0;
}

Test(ctx, deadline_is_min_of_own_and_parent, .timeout = 30) {
    cr_assert_eq(cu_run(deadline_main, NULL), 0);
}

/* Timers queued on every worker's heap. */
static int pending_timers(void) {
    int n = 0;
    for (int i = 0; i < S.nprocs; i++) {
        llock_acquire(&S.workers[i].timers.lock);
        n += S.workers[i].timers.n;
        llock_release(&S.workers[i].timers.lock);
    }
    return n;
}

/* A child whose deadline is its parent's (WithCancel, WithValue, or a
 * later deadline of its own) arms no timer: the parent's cancels it, as
 * Go's WithDeadline returns WithCancel(parent) then. A timer of its own
 * at the same instant, on another worker's heap, could fire first and
 * show the child done while its parent is not (seen under qemu). */
static int inherited_main(void *arg) {
    (void)arg;
    leash_ctx *p = leash_ctx_with_timeout(leash_ctx_background(),
                                          3600000 * CU_MS);
    int64_t dl = leash_ctx_deadline(p);
    int base = pending_timers();
    leash_ctx *kids[30];
    for (int i = 0; i < 10; i++) {
        kids[3 * i] = leash_ctx_with_cancel(p);
        kids[3 * i + 1] = leash_ctx_with_value(p, &k_a, NULL);
        kids[3 * i + 2] = leash_ctx_with_deadline(p, dl + 1000 * CU_MS);
    }
    CU_CHECK_EQ(pending_timers(), base);
    for (int i = 0; i < 30; i++)
        CU_CHECK_EQ(leash_ctx_deadline(kids[i]), dl);
    leash_ctx *sooner = leash_ctx_with_deadline(p, dl - 1000 * CU_MS);
    CU_CHECK_EQ(pending_timers(), base + 1); /* its own, earlier */
    leash_ctx_cancel(p);
    for (int i = 0; i < 30; i++) {
        CU_CHECK_EQ(done_poll(kids[i]), LEASH_ECLOSED);
        CU_CHECK_EQ(leash_ctx_err(kids[i]), LEASH_ECANCELED);
        leash_release(kids[i]);
    }
    CU_CHECK_EQ(leash_ctx_err(sooner), LEASH_ECANCELED);
    leash_release(sooner);
    leash_release(p);
    CU_CHECK_EQ(pending_timers(), base - 1); /* p's timer went too */
    return 0;
}

Test(ctx, inherited_deadline_is_the_parents_timer, .timeout = 30) {
    cr_assert_eq(cu_run(inherited_main, NULL), 0);
}

static int past_deadline_main(void *arg) {
    (void)arg;
    leash_ctx *bg = leash_ctx_background();
    int64_t now = leash_now();
    leash_ctx *cs[] = {
        leash_ctx_with_deadline(bg, now - 1),
        leash_ctx_with_deadline(bg, now),
        leash_ctx_with_deadline(bg, 0),
        leash_ctx_with_deadline(bg, -12345),
        leash_ctx_with_timeout(bg, 0),
        leash_ctx_with_timeout(bg, -5 * CU_MS),
    };
    int64_t t = leash_now();
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        CU_CHECK(cs[i] != NULL);
        if (!cs[i])
            continue;
        CU_CHECK_EQ(leash_ctx_err(cs[i]), LEASH_ETIMEDOUT);
        CU_CHECK_EQ(done_poll(cs[i]), LEASH_ECLOSED);
        CU_CHECK(leash_ctx_deadline(cs[i]) >= 0);
        CU_CHECK(leash_ctx_deadline(cs[i]) <= t);
        leash_release(cs[i]);
    }
    /* A very far timeout does not overflow into the past. */
    leash_ctx *far = leash_ctx_with_timeout(bg, INT64_MAX);
    CU_CHECK(far != NULL);
    CU_CHECK_EQ(leash_ctx_err(far), 0);
    CU_CHECK(leash_ctx_deadline(far) == -1 || leash_ctx_deadline(far) > t);
    leash_release(far);
    return 0;
}

Test(ctx, deadline_in_past_cancels_at_once, .timeout = 30) {
    cr_assert_eq(cu_run(past_deadline_main, NULL), 0);
}

/* Cancelling (or releasing) a context with a pending deadline stops its
 * timer: nothing fires on it later. */
static int cancel_before_deadline_main(void *arg) {
    (void)arg;
    leash_ctx *bg = leash_ctx_background();
    leash_ctx *c = leash_ctx_with_timeout(bg, 20 * CU_MS);
    leash_ctx_cancel(c);
    CU_CHECK_EQ(leash_ctx_err(c), LEASH_ECANCELED);
    /* Released before the deadline, some cancelled and some not. */
    for (int i = 0; i < 100; i++) {
        leash_ctx *t = leash_ctx_with_timeout(bg, (i % 10 + 1) * CU_MS);
        CU_CHECK(t != NULL);
        if (i % 2)
            leash_ctx_cancel(t);
        leash_release(t);
    }
    leash_sleep(40 * CU_MS);
    CU_CHECK_EQ(leash_ctx_err(c), LEASH_ECANCELED); /* not ETIMEDOUT */
    leash_release(c);
    /* The runtime still works after those timers would have fired. */
    leash_ctx *d = leash_ctx_with_timeout(bg, 5 * CU_MS);
    CU_CHECK_EQ(done_recv(d), LEASH_ECLOSED);
    CU_CHECK_EQ(leash_ctx_err(d), LEASH_ETIMEDOUT);
    leash_release(d);
    return 0;
}

Test(ctx, cancel_or_release_stops_deadline, .timeout = 30) {
    cr_assert_eq(cu_run(cancel_before_deadline_main, NULL), 0);
}

/* ------------------------------------------------------------------ values */

static int values_main(void *arg) {
    (void)arg;
    leash_ctx *bg = leash_ctx_background();
    char *va = "a", *vb = "b", *vc = "c";
    leash_ctx *v1 = leash_ctx_with_value(bg, &k_a, va);
    leash_ctx *v2 = leash_ctx_with_value(v1, &k_b, vb);
    leash_ctx *v3 = leash_ctx_with_value(v2, &k_a, vc); /* shadows k_a */
    leash_ctx *c4 = leash_ctx_with_cancel(v3);
    leash_ctx *t5 = leash_ctx_with_timeout(c4, 3600LL * 1000 * CU_MS);
    CU_CHECK(v1 && v2 && v3 && c4 && t5);
    if (!(v1 && v2 && v3 && c4 && t5))
        return 1;
    CU_CHECK(leash_ctx_value(v1, &k_a) == va);
    CU_CHECK(leash_ctx_value(v2, &k_a) == va);
    CU_CHECK(leash_ctx_value(v2, &k_b) == vb);
    CU_CHECK(leash_ctx_value(v3, &k_a) == vc); /* nearest ancestor wins */
    CU_CHECK(leash_ctx_value(c4, &k_a) == vc);
    CU_CHECK(leash_ctx_value(t5, &k_a) == vc);
    CU_CHECK(leash_ctx_value(t5, &k_b) == vb);
    CU_CHECK(leash_ctx_value(v1, &k_b) == NULL); /* below, not above */
    CU_CHECK(leash_ctx_value(t5, &k_missing) == NULL);
    CU_CHECK(leash_ctx_value(t5, NULL) == NULL);
    /* Keys compare by address, not by what they point to. */
    int other_a = k_a;
    CU_CHECK(leash_ctx_value(t5, &other_a) == NULL);
    /* A NULL value is stored and found (as NULL). */
    leash_ctx *vn = leash_ctx_with_value(t5, &k_b, NULL);
    CU_CHECK(vn != NULL);
    CU_CHECK(leash_ctx_value(vn, &k_b) == NULL);
    CU_CHECK(leash_ctx_value(vn, &k_a) == vc);
    /* NULL key: no context. */
    CU_CHECK(leash_ctx_with_value(bg, NULL, va) == NULL);
    CU_CHECK(leash_ctx_with_value(v1, NULL, NULL) == NULL);
    /* A value context is a cancellation scope like the others. */
    CU_CHECK(leash_ctx_done(v1) != NULL);
    leash_ctx_cancel(v2);
    CU_CHECK_EQ(leash_ctx_err(v1), 0);
    CU_CHECK_EQ(leash_ctx_err(vn), LEASH_ECANCELED);
    /* Values survive cancellation. */
    CU_CHECK(leash_ctx_value(vn, &k_a) == vc);
    leash_ctx *list[] = {vn, t5, c4, v3, v2, v1};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++)
        leash_release(list[i]);
    return 0;
}

Test(ctx, values_nearest_ancestor_wins, .timeout = 30) {
    cr_assert_eq(cu_run(values_main, NULL), 0);
}

/* ---------------------------------------------------- references, lifetime */

static void wait_done_handed(void *p) {
    leash_chan *done = p;
    CU_CHECK_EQ(leash_recv_n(done, NULL, 0), LEASH_ECLOSED);
}

static int release_cancels_main(void *arg) {
    (void)arg;
    /* Observed through an extra reference on the done channel. */
    leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
    leash_chan *done = leash_retain(leash_ctx_done(c));
    CU_CHECK(done != NULL);
    CU_CHECK(leash_go(wait_done_handed, done, done) > 0);
    leash_sleep(5 * CU_MS);
    CU_CHECK_EQ(leash_try_recv_n(done, NULL, 0), LEASH_EAGAIN);
    leash_release(c); /* the last reference: cancels */
    CU_CHECK_EQ(leash_recv_n(done, NULL, 0), LEASH_ECLOSED);
    leash_release(done);
    return 0;
}

Test(ctx, release_last_reference_cancels, .timeout = 30) {
    cr_assert_eq(cu_run(release_cancels_main, NULL), 0);
}

/* A coroutine waits on the done channel it only borrows; the owner drops
 * the last reference to the context: the waiter wakes with LEASH_ECLOSED. */
static atomic_int borrowed_woke;
static void wait_done_counted(void *p) {
    CU_CHECK_EQ(leash_recv_n(p, NULL, 0), LEASH_ECLOSED);
    atomic_fetch_add(&borrowed_woke, 1);
}

static int release_wakes_borrower_main(void *arg) {
    (void)arg;
    leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
    size_t base = leash_num_coroutines();
    for (int i = 0; i < 4; i++)
        CU_CHECK(leash_go(wait_done_counted, leash_ctx_done(c)) > 0);
    leash_sleep(5 * CU_MS);
    CU_CHECK_EQ(atomic_load(&borrowed_woke), 0);
    leash_release(c);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&borrowed_woke) == 4, 5000));
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == base, 5000));
    return 0;
}

Test(ctx, release_wakes_waiter_on_done, .timeout = 30) {
    cr_assert_eq(cu_run(release_wakes_borrower_main, NULL), 0);
}

/* leash_go(fn, arg, ctx) hands a reference: the context outlives the
 * creator's release while the child runs, and goes when the child returns. */
static leash_chan *handed_sig;

static void uses_handed_ctx(void *p) {
    leash_ctx *c = p;
    leash_sleep(20 * CU_MS); /* the creator has released its reference */
    CU_CHECK_EQ(leash_ctx_err(c), 0);
    CU_CHECK(leash_ctx_done(c) != NULL);
    CU_CHECK_EQ(done_poll(c), LEASH_EAGAIN);
    CU_CHECK(leash_ctx_value(c, &k_a) == (void *)&k_b);
    /* Still usable as a parent. */
    leash_ctx *kid = leash_ctx_with_cancel(c);
    CU_CHECK(kid != NULL);
    CU_CHECK_EQ(leash_ctx_err(kid), 0);
    leash_release(kid);
    CU_CHECK_EQ(leash_send_n(handed_sig, NULL, 0), 0);
    leash_sleep(10 * CU_MS);
    CU_CHECK_EQ(leash_ctx_err(c), 0);
}

static int handed_main(void *arg) {
    (void)arg;
    handed_sig = leash_chan_make(0, 0);
    leash_ctx *c = leash_ctx_with_value(leash_ctx_background(), &k_a, &k_b);
    leash_chan *done = leash_retain(leash_ctx_done(c));
    CU_CHECK(leash_go(uses_handed_ctx, c, c) > 0);
    leash_release(c);
    CU_CHECK_EQ(leash_recv_n(handed_sig, NULL, 0), 0);
    CU_CHECK_EQ(leash_try_recv_n(done, NULL, 0), LEASH_EAGAIN);
    /* The child's return drops the last reference: cancelled. */
    CU_CHECK_EQ(leash_recv_n(done, NULL, 0), LEASH_ECLOSED);
    leash_release(done);
    leash_release(handed_sig);
    return 0;
}

Test(ctx, handed_context_lives_while_child_runs, .timeout = 30) {
    cr_assert_eq(cu_run(handed_main, NULL), 0);
}

/* ------------------------------------------------------- bad pointers */

static int bad_pointers_main(void *arg) {
    (void)arg;
    static const char *F = "x.c";
    /* NULL. */
    CU_CHECK(leash_ctx_with_cancel(NULL) == NULL);
    CU_CHECK(leash_ctx_with_timeout(NULL, CU_MS) == NULL);
    CU_CHECK(leash_ctx_with_deadline(NULL, leash_now() + CU_MS) == NULL);
    CU_CHECK(leash_ctx_with_value(NULL, &k_a, NULL) == NULL);
    CU_CHECK(leash_ctx_value(NULL, &k_a) == NULL);
    CU_CHECK(leash_ctx_done(NULL) == NULL);
    CU_CHECK_EQ(leash_ctx_err(NULL), LEASH_EINVAL);
    CU_CHECK(leash_ctx_deadline(NULL) < 0);
    leash_ctx_cancel(NULL);

    /* Garbage: mapped memory that is not a context, misaligned pointers,
     * an object of another type, a released context. */
    uint64_t *junk = malloc(256);
    memset(junk, 0xab, 256);
    void *bad[4];
    bad[0] = junk;
    bad[1] = (char *)junk + 3;
    bad[2] = leash_chan_make(sizeof(int), 1);
    leash_ctx *dead = leash_ctx_with_cancel_at(F, 1, leash_ctx_background());
    leash_release(dead);
    bad[3] = dead;
    for (int i = 0; i < 4; i++) {
        leash_ctx *b = bad[i];
        CU_CHECK(leash_ctx_with_cancel(b) == NULL);
        CU_CHECK(leash_ctx_with_timeout(b, CU_MS) == NULL);
        CU_CHECK(leash_ctx_with_value(b, &k_a, NULL) == NULL);
        CU_CHECK(leash_ctx_value(b, &k_a) == NULL);
        CU_CHECK(leash_ctx_done(b) == NULL);
        CU_CHECK_EQ(leash_ctx_err(b), LEASH_EINVAL);
        CU_CHECK(leash_ctx_deadline(b) < -1 || leash_ctx_deadline(b) == LEASH_EINVAL);
        leash_ctx_cancel(b);
    }
    /* The channel was not touched by leash_ctx_cancel. */
    CU_CHECK_EQ(leash_chan_cap(bad[2]), 1);
    int v = 7;
    CU_CHECK_EQ(leash_try_send(bad[2], &v), 0);
    leash_release(bad[2]);
    free(junk);
    return 0;
}

Test(ctx, bad_pointers_einval, .timeout = 30) {
    cr_assert_eq(cu_run(bad_pointers_main, NULL), 0);
}

/* --------------------------------------------------------------- select */

static leash_chan *sel_ch;
static atomic_int sel_idx = -1, sel_ok = -1;

static void select_waiter(void *p) {
    leash_ctx *c = p;
    int v = 0;
    leash_case cs[2] = {
        {.ch = leash_ctx_done(c), .dir = LEASH_RECV, .elem = NULL, .size = 0},
        LEASH_RECV_CASE(sel_ch, &v),
    };
    int r = leash_select(cs, 2);
    atomic_store(&sel_ok, r == 0 ? cs[0].ok : cs[1].ok);
    atomic_store(&sel_idx, r);
}

static int select_cancel_main(void *arg) {
    (void)arg;
    sel_ch = leash_chan_make(sizeof(int), 0);
    /* Cancel wins. */
    leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
    CU_CHECK(leash_go(select_waiter, c, c, sel_ch) > 0);
    leash_sleep(10 * CU_MS);
    CU_CHECK_EQ(atomic_load(&sel_idx), -1);
    leash_ctx_cancel(c);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&sel_idx) != -1, 5000));
    CU_CHECK_EQ(atomic_load(&sel_idx), 0);
    CU_CHECK_EQ(atomic_load(&sel_ok), 0); /* closed, no value */
    leash_release(c);

    /* The channel wins; the context stays live. */
    atomic_store(&sel_idx, -1);
    c = leash_ctx_with_cancel(leash_ctx_background());
    CU_CHECK(leash_go(select_waiter, c, c, sel_ch) > 0);
    int v = 5;
    CU_CHECK_EQ(leash_send(sel_ch, &v), 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&sel_idx) != -1, 5000));
    CU_CHECK_EQ(atomic_load(&sel_idx), 1);
    CU_CHECK_EQ(atomic_load(&sel_ok), 1);
    CU_CHECK_EQ(leash_ctx_err(c), 0);
    leash_ctx_cancel(c);
    leash_release(c);

    /* A timeout wakes the select too. */
    atomic_store(&sel_idx, -1);
    c = leash_ctx_with_timeout(leash_ctx_background(), 15 * CU_MS);
    CU_CHECK(leash_go(select_waiter, c, c, sel_ch) > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&sel_idx) != -1, 5000));
    CU_CHECK_EQ(atomic_load(&sel_idx), 0);
    CU_CHECK_EQ(leash_ctx_err(c), LEASH_ETIMEDOUT);
    leash_release(c);
    leash_release(sel_ch);
    return 0;
}

Test(ctx, select_on_done_woken_by_cancel, .timeout = 30) {
    cr_assert_eq(cu_run(select_cancel_main, NULL), 0);
}

/* ------------------------------------------------------- plain threads */

static void *thread_waits_done(void *p) {
    leash_ctx *c = p;
    /* A plain thread blocks on an OS wait. */
    CU_CHECK_EQ(leash_recv_n(leash_ctx_done(c), NULL, 0), LEASH_ECLOSED);
    CU_CHECK_EQ(leash_ctx_err(c), LEASH_ECANCELED);
    /* And creates contexts of its own. */
    leash_ctx *t = leash_ctx_with_timeout(leash_ctx_background(), 10 * CU_MS);
    CU_CHECK_EQ(leash_recv_n(leash_ctx_done(t), NULL, 0), LEASH_ECLOSED);
    CU_CHECK_EQ(leash_ctx_err(t), LEASH_ETIMEDOUT);
    leash_release(t);
    return NULL;
}

static void cancel_later(void *p) {
    leash_sleep(20 * CU_MS);
    leash_ctx_cancel(p);
}

Test(ctx, plain_thread_waits_and_creates, .timeout = 30) {
    leash_ctx *c = leash_ctx_with_cancel(leash_ctx_background());
    cr_assert_not_null(c);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, thread_waits_done, c), 0);
    cr_assert_gt(leash_go(cancel_later, c, c), 0);
    pthread_join(th, NULL);
    leash_release(c);
    CU_ASSERT_CLEAN();
}
