/* SPDX-License-Identifier: MIT */
/*
 * stress_rwsync.c — leash_rwmutex, leash_cond and leash_once under load,
 * across workers and plain threads (also run under ASan+UBSan and TSan).
 *
 *   rwmutex  writers keep two plain fields equal under the write lock;
 *            readers check them under the read lock; counters of who is
 *            inside catch a reader beside a writer or two writers; the
 *            totals of operations must add up;
 *   cond     a bounded queue (one mutex, two conds) between producers and
 *            consumers, coroutines and plain threads: every item comes
 *            out exactly once;
 *   once     many rounds, many callers each: one call per round, nobody
 *            returns before it ends.
 *
 * The shared data are plain (non-atomic) fields: under TSan a missing
 * happens-before edge in the primitives shows as a data race.
 *
 * LEASH_TEST_TIMEOUT 300
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core_util.h"

static void setup(void) { setenv("LEASH_PROCS", "4", 1); }

static int scale(int n) { return cu_sanitized() ? n / 8 + 1 : n; }

/* ============================================================ rwmutex */

static leash_rwmutex rw = LEASH_RWMUTEX_INIT;
static long field_a, field_b;      /* plain: guarded by rw */
static atomic_int in_r, in_w;
static atomic_long reads, writes, torn, overlap;
static int iters;
static leash_waitgroup wg = LEASH_WAITGROUP_INIT;

static void do_read(void) {
    leash_rwmutex_rlock(&rw);
    atomic_fetch_add(&in_r, 1);
    if (atomic_load(&in_w))
        atomic_fetch_add(&overlap, 1);
    if (field_a != field_b)
        atomic_fetch_add(&torn, 1);
    atomic_fetch_sub(&in_r, 1);
    leash_rwmutex_runlock(&rw);
    atomic_fetch_add(&reads, 1);
}

static void do_write(void) {
    leash_rwmutex_lock(&rw);
    if (atomic_fetch_add(&in_w, 1) != 0 || atomic_load(&in_r) != 0)
        atomic_fetch_add(&overlap, 1);
    field_a++;
    if ((field_a & 7) == 0)
        leash_yield(); /* stay inside across a switch now and then */
    field_b++;
    atomic_fetch_sub(&in_w, 1);
    leash_rwmutex_unlock(&rw);
    atomic_fetch_add(&writes, 1);
}

static void reader_co(void *a) {
    (void)a;
    for (int i = 0; i < iters; i++) {
        do_read();
        if (i % 16 == 0)
            leash_yield();
    }
    leash_waitgroup_done(&wg);
}

static void writer_co(void *a) {
    (void)a;
    for (int i = 0; i < iters / 4; i++)
        do_write();
    leash_waitgroup_done(&wg);
}

static void *reader_thread(void *a) {
    (void)a;
    for (int i = 0; i < iters / 4; i++)
        do_read();
    return NULL;
}

static void *writer_thread(void *a) {
    (void)a;
    for (int i = 0; i < iters / 16; i++)
        do_write();
    return NULL;
}

Test(rwmutex, readers_and_writers_across_workers_and_threads, .timeout = 300) {
    setup();
    iters = scale(20000);
    const int NR = 16, NW = 4;
    leash_waitgroup_add(&wg, NR + NW);
    for (int i = 0; i < NR; i++)
        leash_go(reader_co, NULL);
    for (int i = 0; i < NW; i++)
        leash_go(writer_co, NULL);
    pthread_t t[4];
    pthread_create(&t[0], NULL, reader_thread, NULL);
    pthread_create(&t[1], NULL, reader_thread, NULL);
    pthread_create(&t[2], NULL, writer_thread, NULL);
    pthread_create(&t[3], NULL, writer_thread, NULL);
    cr_assert_eq(leash_waitgroup_wait(&wg), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    long want_w = (long)NW * (iters / 4) + 2L * (iters / 16);
    long want_r = (long)NR * iters + 2L * (iters / 4);
    cr_expect_eq(atomic_load(&writes), want_w);
    cr_expect_eq(atomic_load(&reads), want_r);
    cr_expect_eq(field_a, want_w, "lost updates: %ld of %ld", field_a, want_w);
    cr_expect_eq(field_b, want_w);
    cr_expect_eq(atomic_load(&torn), 0, "%ld torn reads", atomic_load(&torn));
    cr_expect_eq(atomic_load(&overlap), 0, "%ld overlaps of a writer with "
                 "anyone", atomic_load(&overlap));
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
}

/* ============================================================== cond */

#define QCAP 8
static leash_mutex qmu = LEASH_MUTEX_INIT;
static leash_cond not_full = LEASH_COND_INIT, not_empty = LEASH_COND_INIT;
static long q[QCAP];
static int qhead, qlen;           /* plain: guarded by qmu */
static long produced_sum, consumed_sum;
static int nitems, closed;
static long *seen;                /* seen[item]: how often it came out */
static atomic_long consumed;

static void put(long v) {
    leash_mutex_lock(&qmu);
    while (qlen == QCAP)
        leash_cond_wait(&not_full, &qmu);
    q[(qhead + qlen) % QCAP] = v;
    qlen++;
    produced_sum += v;
    /* Signal or broadcast, alternately: both must be enough. */
    if (v & 1)
        leash_cond_signal(&not_empty);
    else
        leash_cond_broadcast(&not_empty);
    leash_mutex_unlock(&qmu);
}

/* An item, or -1 when closed and drained. */
static long get(void) {
    leash_mutex_lock(&qmu);
    while (qlen == 0 && !closed)
        leash_cond_wait(&not_empty, &qmu);
    long v = -1;
    if (qlen) {
        v = q[qhead];
        qhead = (qhead + 1) % QCAP;
        qlen--;
        consumed_sum += v;
        seen[v]++;
        leash_cond_signal(&not_full);
    }
    leash_mutex_unlock(&qmu);
    return v;
}

static atomic_int next_item;
static void produce(void) {
    for (int v; (v = atomic_fetch_add(&next_item, 1)) < nitems;)
        put(v);
}
static void consume(void) {
    while (get() >= 0)
        atomic_fetch_add(&consumed, 1);
}
static leash_waitgroup pwg = LEASH_WAITGROUP_INIT, cwg = LEASH_WAITGROUP_INIT;
static void producer_co(void *a) {
    (void)a;
    produce();
    leash_waitgroup_done(&pwg);
}
static void consumer_co(void *a) {
    (void)a;
    consume();
    leash_waitgroup_done(&cwg);
}
static void *producer_thread(void *a) {
    (void)a;
    produce();
    return NULL;
}
static void *consumer_thread(void *a) {
    (void)a;
    consume();
    return NULL;
}

Test(cond, bounded_queue_across_workers_and_threads, .timeout = 300) {
    setup();
    nitems = scale(200000);
    seen = calloc((size_t)nitems, sizeof *seen);
    leash_waitgroup_add(&pwg, 6);
    leash_waitgroup_add(&cwg, 6);
    for (int i = 0; i < 6; i++) {
        leash_go(producer_co, NULL);
        leash_go(consumer_co, NULL);
    }
    pthread_t pt, ct;
    pthread_create(&pt, NULL, producer_thread, NULL);
    pthread_create(&ct, NULL, consumer_thread, NULL);
    cr_assert_eq(leash_waitgroup_wait(&pwg), 0);
    pthread_join(pt, NULL);
    leash_mutex_lock(&qmu);
    closed = 1;
    leash_cond_broadcast(&not_empty);
    leash_mutex_unlock(&qmu);
    cr_assert_eq(leash_waitgroup_wait(&cwg), 0);
    pthread_join(ct, NULL);
    cr_expect_eq(atomic_load(&consumed), nitems);
    cr_expect_eq(produced_sum, consumed_sum);
    cr_expect_eq(produced_sum, (long)nitems * (nitems - 1) / 2);
    long dup = 0, missing = 0;
    for (int i = 0; i < nitems; i++) {
        if (seen[i] == 0)
            missing++;
        else if (seen[i] > 1)
            dup++;
    }
    cr_expect_eq(missing, 0, "%ld items never came out", missing);
    cr_expect_eq(dup, 0, "%ld items came out twice", dup);
    free(seen);
}

/* ============================================================== once */

#define ROUNDS_MAX 400
#define CALLERS 12
static leash_once onces[ROUNDS_MAX];
static int once_value[ROUNDS_MAX]; /* plain: written by fn, read after */
static atomic_int once_calls[ROUNDS_MAX];
static atomic_long once_early;
static leash_waitgroup owg = LEASH_WAITGROUP_INIT;
static int rounds;

static void once_fn(void *a) {
    int r = (int)(intptr_t)a;
    atomic_fetch_add(&once_calls[r], 1);
    if (r % 8 == 0)
        leash_yield(); /* others pile up on it */
    once_value[r] = r + 1;
}

static void once_caller(void *a) {
    int r = (int)(intptr_t)a;
    leash_once_do(&onces[r], once_fn, (void *)(intptr_t)r);
    if (once_value[r] != r + 1)
        atomic_fetch_add(&once_early, 1);
    leash_waitgroup_done(&owg);
}

static void *once_thread(void *a) {
    (void)a;
    for (int r = 0; r < rounds; r++) {
        leash_once_do(&onces[r], once_fn, (void *)(intptr_t)r);
        if (once_value[r] != r + 1)
            atomic_fetch_add(&once_early, 1);
    }
    return NULL;
}

Test(once, many_rounds_many_callers, .timeout = 300) {
    setup();
    rounds = cu_sanitized() ? 60 : ROUNDS_MAX;
    for (int r = 0; r < rounds; r++)
        onces[r] = (leash_once)LEASH_ONCE_INIT;
    pthread_t t[2];
    pthread_create(&t[0], NULL, once_thread, NULL);
    pthread_create(&t[1], NULL, once_thread, NULL);
    leash_waitgroup_add(&owg, rounds * CALLERS);
    for (int r = 0; r < rounds; r++)
        for (int c = 0; c < CALLERS; c++)
            leash_go(once_caller, (void *)(intptr_t)r);
    cr_assert_eq(leash_waitgroup_wait(&owg), 0);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    int wrong = 0;
    for (int r = 0; r < rounds; r++)
        if (atomic_load(&once_calls[r]) != 1)
            wrong++;
    cr_expect_eq(wrong, 0, "%d round(s) called fn other than once", wrong);
    cr_expect_eq(atomic_load(&once_early), 0, "%ld caller(s) returned before "
                 "fn ended", atomic_load(&once_early));
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
}
