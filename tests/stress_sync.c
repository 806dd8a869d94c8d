/* SPDX-License-Identifier: MIT */
/*
 * stress_sync.c — mutexes, wait groups and context trees under load
 * across workers: exact counts under contention, wait groups on stacks
 * reused at once, a context tree cancelled while thousands of coroutines
 * (and some plain threads) wait on its done channels in different ways,
 * mass timeouts, and create/cancel/release churn below a shared parent.
 *
 * Loads scale down under ASan / TSan (cu_sanitized()).
 *
 * LEASH_TEST_TIMEOUT 300
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_util.h"

#if defined(__SANITIZE_THREAD__)
#define SYNC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SYNC_TSAN 1
#endif
#endif

/* The load: full, under ASan, under TSan (several times slower). */
static int scale3(int full, int asan, int tsan) {
#ifdef SYNC_TSAN
    (void)full, (void)asan;
    return tsan;
#else
    (void)tsan;
    return cu_sanitized() ? asan : full;
#endif
}

/* ================================================== mutex across workers */

static leash_mutex mu = LEASH_MUTEX_INIT;
static long counter;          /* plain: the mutex protects it */
static long per_owner[128];   /* plain too */
static atomic_int inside, overlap;
static int mx_iters;

static void crit(int who, int yield) {
    leash_mutex_lock(&mu);
    if (atomic_fetch_add_explicit(&inside, 1, memory_order_relaxed) != 0)
        atomic_fetch_add(&overlap, 1);
    long v = counter;
    if (yield)
        leash_yield();
    counter = v + 1;
    per_owner[who]++;
    atomic_fetch_sub_explicit(&inside, 1, memory_order_relaxed);
    leash_mutex_unlock(&mu);
}

static void mx_co(void *p) {
    int who = (int)(intptr_t)p;
    uint32_t x = (uint32_t)who * 2654435761u + 1;
    for (int i = 0; i < mx_iters; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        if (x % 16 == 0) {
            /* trylock path, retried with the blocking lock */
            if (leash_mutex_trylock(&mu) == 0) {
                counter++;
                per_owner[who]++;
                leash_mutex_unlock(&mu);
                continue;
            }
        }
        crit(who, x % 4 == 0);
        if (x % 8 == 1)
            leash_yield();
    }
}

static void *mx_thread(void *p) {
    int who = (int)(intptr_t)p;
    for (int i = 0; i < mx_iters; i++)
        crit(who, 0);
    return NULL;
}

#define MX_CO 64
#define MX_TH 2

static leash_waitgroup mx_wg = LEASH_WAITGROUP_INIT;

static void mx_co_done(void *p) {
    mx_co(p);
    leash_waitgroup_done(&mx_wg);
}

static int mx_main(void *arg) {
    (void)arg;
    CU_CHECK_EQ(leash_num_workers(), 4);
    mx_iters = scale3(20000, 5000, 1000);
    pthread_t th[MX_TH];
    for (int i = 0; i < MX_TH; i++)
        CU_CHECK_EQ(pthread_create(&th[i], NULL, mx_thread,
                                   (void *)(intptr_t)(MX_CO + i)), 0);
    leash_waitgroup_add(&mx_wg, MX_CO);
    for (int i = 0; i < MX_CO; i++)
        CU_CHECK(leash_go(mx_co_done, (void *)(intptr_t)i) > 0);
    leash_waitgroup_wait(&mx_wg);
    for (int i = 0; i < MX_TH; i++)
        pthread_join(th[i], NULL);
    CU_CHECK_EQ(counter, (long)(MX_CO + MX_TH) * mx_iters);
    for (int i = 0; i < MX_CO + MX_TH; i++)
        CU_CHECK_EQ(per_owner[i], mx_iters);
    CU_CHECK_EQ(atomic_load(&overlap), 0);
    CU_CHECK_EQ(leash_mutex_trylock(&mu), 0);
    CU_CHECK_EQ(leash_mutex_unlock(&mu), 0);
    return 0;
}

Test(stress_sync, mutex_four_workers, .timeout = 600) {
    setenv("LEASH_PROCS", "4", 1);
    cr_assert_eq(cu_run(mx_main, NULL), 0);
}

/* ============================================= wait groups on stacks */

static atomic_long wg_rounds_done, wg_late;

typedef struct {
    leash_waitgroup *wg;
    atomic_int *ran;
} wg_job;

static void wg_member(void *p) {
    wg_job *j = p;
    if ((uintptr_t)j->ran & 8)
        leash_yield();
    atomic_fetch_add(j->ran, 1);
    leash_waitgroup_done(j->wg);
}

typedef struct {
    leash_waitgroup *wg, *joined;
    atomic_int *ran;
    int n;
} wg_extra;

static void wg_extra_waiter(void *p) {
    wg_extra *e = p;
    leash_waitgroup_wait(e->wg);
    if (atomic_load(e->ran) != e->n)
        atomic_fetch_add(&wg_late, 1);
    leash_waitgroup_done(e->joined);
}

/* One round with everything on this coroutine's stack. */
static __attribute__((noinline)) void wg_round(int n, int extra) {
    leash_waitgroup wg = LEASH_WAITGROUP_INIT, joined = LEASH_WAITGROUP_INIT;
    atomic_int ran = 0;
    wg_job job = {&wg, &ran};
    wg_extra ex = {&wg, &joined, &ran, n};
    leash_waitgroup_add(&wg, n);
    leash_waitgroup_add(&joined, extra);
    for (int i = 0; i < extra; i++)
        CU_CHECK(leash_go(wg_extra_waiter, &ex) > 0);
    for (int i = 0; i < n; i++)
        CU_CHECK(leash_go(wg_member, &job) > 0);
    leash_waitgroup_wait(&wg);
    if (atomic_load(&ran) != n)
        atomic_fetch_add(&wg_late, 1);
    leash_waitgroup_wait(&joined); /* the extra waiters are out of wg */
    atomic_fetch_add(&wg_rounds_done, 1);
}

static void wg_owner(void *p) {
    int rounds = (int)(intptr_t)p;
    for (int r = 0; r < rounds; r++) {
        wg_round(1 + r % 40, r % 4);
        volatile char scratch[1024]; /* overwrite the dead frame */
        memset((char *)scratch, r & 0xff, sizeof scratch);
    }
}

static int wg_main(void *arg) {
    (void)arg;
    int owners = 8, rounds = scale3(2000, 500, 40);
    for (int i = 0; i < owners; i++)
        CU_CHECK(leash_go(wg_owner, (void *)(intptr_t)rounds) > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&wg_rounds_done) == owners * rounds, 120000));
    CU_CHECK_EQ(atomic_load(&wg_late), 0);
    return 0;
}

Test(stress_sync, waitgroups_on_stacks, .timeout = 600) {
    cr_assert_eq(cu_run(wg_main, NULL), 0);
}

/* ==================================== context tree cancelled under load */

#define FAN1 8
#define FAN2 8
#define FAN3 4
#define NNODES (1 + FAN1 + FAN1 * FAN2 + FAN1 * FAN2 * FAN3)

static leash_ctx *nodes[NNODES];
static int parent_of[NNODES];
static int nwaiters;
static atomic_int *woke;          /* per waiter: times woken */
static atomic_int started, finished, wrong_result;
static leash_chan *never;         /* a channel nobody sends on */

static int node_depth(int i) {
    int d = 0;
    while (i) {
        i = parent_of[i];
        d++;
    }
    return d;
}

static void build_tree(void) {
    int n = 0;
    nodes[n] = leash_ctx_with_cancel(leash_ctx_background());
    parent_of[n++] = -1;
    int l1 = n;
    for (int a = 0; a < FAN1; a++) {
        nodes[n] = a % 2 ? leash_ctx_with_value(nodes[0], &nodes, (void *)(intptr_t)a)
                         : leash_ctx_with_cancel(nodes[0]);
        parent_of[n++] = 0;
    }
    int l2 = n;
    for (int a = 0; a < FAN1; a++)
        for (int b = 0; b < FAN2; b++) {
            int p = l1 + a;
            nodes[n] = b % 3 == 0
                           ? leash_ctx_with_timeout(nodes[p], 3600LL * 1000 * CU_MS)
                           : leash_ctx_with_cancel(nodes[p]);
            parent_of[n++] = p;
        }
    for (int a = 0; a < FAN1 * FAN2; a++)
        for (int c = 0; c < FAN3; c++) {
            int p = l2 + a;
            nodes[n] = leash_ctx_with_cancel(nodes[p]);
            parent_of[n++] = p;
        }
    parent_of[0] = 0;
    for (int i = 0; i < NNODES; i++)
        CU_CHECK(nodes[i] != NULL);
}

/* Waiter modes: a blocking receive, a select with a channel that never
 * fires, a select on two nodes' done channels, a polling loop. */
static void tree_waiter(void *p) {
    int w = (int)(intptr_t)p;
    int node = (w * 7919) % NNODES;
    int fired = node; /* whose done channel woke us */
    leash_chan *done = leash_ctx_done(nodes[node]);
    atomic_fetch_add(&started, 1);
    int r;
    switch (w % 4) {
    case 0:
        r = leash_recv_n(done, NULL, 0);
        if (r != LEASH_ECLOSED)
            atomic_fetch_add(&wrong_result, 1);
        break;
    case 1: {
        int v;
        leash_case cs[2] = {
            LEASH_RECV_CASE(never, &v),
            {.ch = done, .dir = LEASH_RECV, .elem = NULL, .size = 0},
        };
        r = leash_select(cs, 2);
        if (r != 1 || cs[1].ok != 0)
            atomic_fetch_add(&wrong_result, 1);
        break;
    }
    case 2: {
        int other = (node * 31 + 5) % NNODES;
        leash_case cs[2] = {
            {.ch = done, .dir = LEASH_RECV, .elem = NULL, .size = 0},
            {.ch = leash_ctx_done(nodes[other]), .dir = LEASH_RECV, .elem = NULL,
             .size = 0},
        };
        r = leash_select(cs, 2);
        if (r < 0 || cs[r].ok != 0)
            atomic_fetch_add(&wrong_result, 1);
        if (r == 1)
            fired = other;
        break;
    }
    default:
        while ((r = leash_try_recv_n(done, NULL, 0)) == LEASH_EAGAIN)
            leash_sleep(CU_MS / 2);
        if (r != LEASH_ECLOSED)
            atomic_fetch_add(&wrong_result, 1);
        break;
    }
    /* Closed only after the error is set. */
    if (leash_ctx_err(nodes[fired]) != LEASH_ECANCELED)
        atomic_fetch_add(&wrong_result, 1);
    atomic_fetch_add(&woke[w], 1);
    atomic_fetch_add(&finished, 1);
}

static void *thread_waiter(void *p) {
    int node = (int)(intptr_t)p;
    if (leash_recv_n(leash_ctx_done(nodes[node]), NULL, 0) != LEASH_ECLOSED)
        atomic_fetch_add(&wrong_result, 1);
    return NULL;
}

static void mid_canceller(void *p) {
    leash_yield();
    leash_ctx_cancel(nodes[(int)(intptr_t)p]);
}

static void tree_round(void) {
    atomic_store(&started, 0);
    atomic_store(&finished, 0);
    memset(woke, 0, (size_t)nwaiters * sizeof *woke);
    build_tree();
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, thread_waiter, (void *)(intptr_t)(NNODES - 1 - i * 50));
    for (int w = 0; w < nwaiters; w++)
        CU_CHECK(leash_go(tree_waiter, (void *)(intptr_t)w) > 0);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&started) == nwaiters, 60000));
    leash_sleep(5 * CU_MS);
    CU_CHECK_EQ(atomic_load(&finished), 0);
    /* Root and some inner nodes at about the same time. */
    for (int i = 1; i <= FAN1; i += 3)
        CU_CHECK(leash_go(mid_canceller, (void *)(intptr_t)i) > 0);
    CU_CHECK(leash_go(mid_canceller, (void *)(intptr_t)(1 + FAN1 + 5)) > 0);
    leash_ctx_cancel(nodes[0]);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&finished) == nwaiters, 60000));
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 30000));
    CU_CHECK_EQ(atomic_load(&wrong_result), 0);
    int bad = 0;
    for (int w = 0; w < nwaiters; w++)
        if (atomic_load(&woke[w]) != 1)
            bad++;
    CU_CHECK_EQ(bad, 0);
    for (int i = 0; i < NNODES; i++) {
        CU_CHECK_EQ(leash_ctx_err(nodes[i]), LEASH_ECANCELED);
        CU_CHECK(node_depth(i) <= 3);
    }
    /* Release in a scrambled order: parents before children too. */
    for (int k = 0; k < NNODES; k++)
        leash_release(nodes[(k * 37) % NNODES]);
}

static int tree_main(void *arg) {
    (void)arg;
    nwaiters = scale3(4000, 2000, 600);
    woke = calloc((size_t)nwaiters, sizeof *woke);
    never = leash_chan_make(sizeof(int), 0);
    int rounds = scale3(10, 5, 3);
    for (int r = 0; r < rounds && cu_failures() == 0; r++)
        tree_round();
    leash_release(never);
    free(woke);
    return 0;
}

Test(stress_sync, ctx_tree_cancel_wakes_every_waiter_once, .timeout = 600) {
    cr_assert_eq(cu_run(tree_main, NULL), 0);
}

/* ============================================================ mass timeouts */

static atomic_int to_ok, to_bad, to_cancelled;

static void timeout_waiter(void *p) {
    int i = (int)(intptr_t)p;
    leash_ctx *c = leash_ctx_with_timeout(leash_ctx_background(),
                                          (1 + i % 50) * CU_MS);
    int64_t dl = leash_ctx_deadline(c);
    if (i % 5 == 0) {
        /* Cancelled before its deadline (most of the time). */
        leash_ctx_cancel(c);
        if (leash_ctx_err(c) != LEASH_ECANCELED && leash_ctx_err(c) != LEASH_ETIMEDOUT)
            atomic_fetch_add(&to_bad, 1);
        atomic_fetch_add(&to_cancelled, 1);
    } else {
        leash_recv_n(leash_ctx_done(c), NULL, 0);
        if (leash_ctx_err(c) == LEASH_ETIMEDOUT && leash_now() >= dl)
            atomic_fetch_add(&to_ok, 1);
        else
            atomic_fetch_add(&to_bad, 1);
    }
    leash_release(c);
}

static int timeouts_main(void *arg) {
    (void)arg;
    int n = scale3(20000, 5000, 1500);
    for (int i = 0; i < n; i++)
        CU_CHECK(leash_go(timeout_waiter, (void *)(intptr_t)i) > 0);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 120000));
    CU_CHECK_EQ(atomic_load(&to_bad), 0);
    CU_CHECK_EQ(atomic_load(&to_ok) + atomic_load(&to_cancelled), n);
    return 0;
}

Test(stress_sync, mass_timeouts, .timeout = 600) {
    cr_assert_eq(cu_run(timeouts_main, NULL), 0);
}

/* =================================================== create/cancel churn */

static leash_ctx *shared_parent;
static atomic_int churn_after_cancel_live;
static atomic_int parent_cancelled;

static void churner(void *p) {
    int iters = (int)(intptr_t)p;
    for (int i = 0; i < iters; i++) {
        int was_cancelled = atomic_load(&parent_cancelled);
        leash_ctx *c = leash_ctx_with_cancel(shared_parent);
        if (!c)
            continue;
        leash_ctx *gc = i % 3 ? leash_ctx_with_timeout(c, (i % 7) * CU_MS / 4) : NULL;
        if (was_cancelled && leash_ctx_err(c) == 0)
            atomic_fetch_add(&churn_after_cancel_live, 1);
        switch (i % 4) {
        case 0:
            leash_ctx_cancel(c);
            break;
        case 1:
            if (gc)
                leash_ctx_cancel(gc);
            break;
        default:
            break;
        }
        if (i % 16 == 0)
            leash_yield();
        /* Release in either order. */
        if (i % 2) {
            leash_release(c);
            leash_release(gc);
        } else {
            leash_release(gc);
            leash_release(c);
        }
    }
}

static int churn_main(void *arg) {
    (void)arg;
    int iters = scale3(20000, 5000, 2000);
    shared_parent = leash_ctx_with_cancel(leash_ctx_background());
    leash_chan *pdone = leash_retain(leash_ctx_done(shared_parent));
    for (int i = 0; i < 8; i++)
        CU_CHECK(leash_go(churner, (void *)(intptr_t)iters, shared_parent) > 0);
    leash_sleep(20 * CU_MS);
    leash_ctx_cancel(shared_parent);
    atomic_store(&parent_cancelled, 1);
    CU_CHECK_EQ(leash_recv_n(pdone, NULL, 0), LEASH_ECLOSED);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 120000));
    CU_CHECK_EQ(atomic_load(&churn_after_cancel_live), 0);
    leash_release(shared_parent);
    leash_release(pdone);
    return 0;
}

Test(stress_sync, ctx_create_cancel_release_churn, .timeout = 600) {
    cr_assert_eq(cu_run(churn_main, NULL), 0);
}

/* ================================= rwmutex and cond across four workers */
#if defined(LEASH_RWMUTEX_INIT) && defined(LEASH_COND_INIT)

static leash_rwmutex srw = LEASH_RWMUTEX_INIT;
static long srw_a, srw_b;
static atomic_int srw_bad, srw_writers_in, srw_readers_in;
static leash_mutex smu = LEASH_MUTEX_INIT;
static leash_cond scv = LEASH_COND_INIT;
static long tokens_passed;
static int turn;
static int srw_iters;

static void srw_worker(void *p) {
    int who = (int)(intptr_t)p;
    for (int i = 0; i < srw_iters; i++) {
        if ((i + who) % 8 == 0) {
            leash_rwmutex_lock(&srw);
            if (atomic_fetch_add(&srw_writers_in, 1) || atomic_load(&srw_readers_in))
                atomic_fetch_add(&srw_bad, 1);
            srw_a++;
            if (i % 3 == 0)
                leash_yield();
            srw_b++;
            atomic_fetch_sub(&srw_writers_in, 1);
            leash_rwmutex_unlock(&srw);
        } else {
            leash_rwmutex_rlock(&srw);
            atomic_fetch_add(&srw_readers_in, 1);
            if (atomic_load(&srw_writers_in))
                atomic_fetch_add(&srw_bad, 1);
            long a = srw_a;
            if (i % 5 == 0)
                leash_yield();
            if (srw_b != a)
                atomic_fetch_add(&srw_bad, 1);
            atomic_fetch_sub(&srw_readers_in, 1);
            leash_rwmutex_runlock(&srw);
        }
    }
}

/* Ring of N players passing a turn with one cond and broadcast: each
 * waits for its own turn, so every broadcast wakes all and one proceeds. */
#define RING 8
static void ring_player(void *p) {
    int me = (int)(intptr_t)p;
    int rounds = srw_iters / 20;
    for (int r = 0; r < rounds; r++) {
        leash_mutex_lock(&smu);
        while (turn != me)
            leash_cond_wait(&scv, &smu);
        tokens_passed++;
        turn = (turn + 1) % RING;
        leash_cond_broadcast(&scv);
        leash_mutex_unlock(&smu);
    }
}

static leash_waitgroup srw_wg = LEASH_WAITGROUP_INIT;

static void srw_run(void *p) {
    srw_worker(p);
    leash_waitgroup_done(&srw_wg);
}

static void ring_run(void *p) {
    ring_player(p);
    leash_waitgroup_done(&srw_wg);
}

static int srw_main(void *arg) {
    (void)arg;
    CU_CHECK_EQ(leash_num_workers(), 4);
    srw_iters = scale3(20000, 5000, 1000);
    leash_waitgroup_add(&srw_wg, 32 + RING);
    for (int i = 0; i < 32; i++)
        CU_CHECK(leash_go(srw_run, (void *)(intptr_t)i) > 0);
    for (int i = 0; i < RING; i++)
        CU_CHECK(leash_go(ring_run, (void *)(intptr_t)i) > 0);
    leash_waitgroup_wait(&srw_wg);
    CU_CHECK_EQ(atomic_load(&srw_bad), 0);
    CU_CHECK_EQ(srw_a, srw_b);
    CU_CHECK_EQ(srw_a, 32L * srw_iters / 8);
    CU_CHECK_EQ(tokens_passed, (long)RING * (srw_iters / 20));
    return 0;
}

Test(stress_sync, rwmutex_cond_four_workers, .timeout = 600) {
    setenv("LEASH_PROCS", "4", 1);
    cr_assert_eq(cu_run(srw_main, NULL), 0);
}

#endif
