/* SPDX-License-Identifier: MIT */
/*
 * test_rwsync.c — leash_rwmutex, leash_cond and leash_once with Go's
 * semantics (issue 9):
 *
 *   rwmutex  many readers at once or one writer; a waiting writer keeps
 *            new readers out; a writer's unlock lets every waiting reader
 *            in together; unlocking what is not locked is LEASH_EINVAL;
 *   cond     signal wakes one waiter, broadcast all; a signal with no
 *            waiter is not remembered; wait returns with the mutex held;
 *   once     exactly one call, and every caller waits for it;
 *   all      static initialisers, plain values in structs, usable from
 *            plain threads.
 *
 * Checks on coroutines go through CU_CHECK*. States ("waiting:...") are
 * read from the JSON dump (diag_util.h) to know that a coroutine is
 * really blocked, not merely slow.
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_util.h"
#include "diag_util.h"

#define MS CU_MS

static void setup(void) { setenv("LEASH_PROCS", "2", 1); }

/* ======================================================== initialisers */

static leash_rwmutex s_rw = LEASH_RWMUTEX_INIT;
static leash_cond s_cv = LEASH_COND_INIT;
static leash_once s_once = LEASH_ONCE_INIT;
static struct {
    int tag;
    leash_rwmutex rw;
    leash_cond cv;
    leash_mutex mu;
    leash_once once;
} s_box = {42, LEASH_RWMUTEX_INIT, LEASH_COND_INIT, LEASH_MUTEX_INIT,
           LEASH_ONCE_INIT};

static int once_calls;
static void count_call(void *a) {
    (void)a;
    once_calls++;
}

Test(init, static_values_work_from_a_plain_thread, .timeout = 30) {
    cr_assert_eq(leash_rwmutex_rlock(&s_rw), 0);
    cr_assert_eq(leash_rwmutex_rlock(&s_rw), 0);
    cr_assert_eq(leash_rwmutex_runlock(&s_rw), 0);
    cr_assert_eq(leash_rwmutex_runlock(&s_rw), 0);
    cr_assert_eq(leash_rwmutex_lock(&s_rw), 0);
    cr_assert_eq(leash_rwmutex_unlock(&s_rw), 0);
    cr_assert_eq(leash_cond_signal(&s_cv), 0);
    cr_assert_eq(leash_cond_broadcast(&s_cv), 0);
    cr_assert_eq(leash_once_do(&s_once, count_call, NULL), 0);
    cr_assert_eq(leash_once_do(&s_once, count_call, NULL), 0);
    cr_assert_eq(once_calls, 1);
    cr_assert_eq(leash_rwmutex_lock(&s_box.rw), 0);
    cr_assert_eq(leash_rwmutex_unlock(&s_box.rw), 0);
    cr_assert_eq(leash_once_do(&s_box.once, count_call, NULL), 0);
    cr_assert_eq(once_calls, 2);
    cr_assert_eq(s_box.tag, 42);
    /* Automatic storage, zero-initialised by the macros too. */
    leash_rwmutex rw = LEASH_RWMUTEX_INIT;
    leash_cond cv = LEASH_COND_INIT;
    leash_once o = LEASH_ONCE_INIT;
    cr_assert_eq(leash_rwmutex_lock(&rw), 0);
    cr_assert_eq(leash_rwmutex_unlock(&rw), 0);
    cr_assert_eq(leash_cond_signal(&cv), 0);
    cr_assert_eq(leash_once_do(&o, count_call, NULL), 0);
    cr_assert_eq(once_calls, 3);
}

Test(errors, bad_arguments_and_unlocked_unlocks, .timeout = 30) {
    leash_rwmutex rw = LEASH_RWMUTEX_INIT;
    leash_mutex mu = LEASH_MUTEX_INIT;
    leash_cond cv = LEASH_COND_INIT;
    leash_once o = LEASH_ONCE_INIT;
    cr_expect_eq(leash_rwmutex_unlock(&rw), LEASH_EINVAL);
    cr_expect_eq(leash_rwmutex_runlock(&rw), LEASH_EINVAL);
    /* Read-locked: a write unlock is still an error, and so is a second
     * read unlock. */
    cr_assert_eq(leash_rwmutex_rlock(&rw), 0);
    cr_expect_eq(leash_rwmutex_unlock(&rw), LEASH_EINVAL);
    cr_expect_eq(leash_rwmutex_runlock(&rw), 0);
    cr_expect_eq(leash_rwmutex_runlock(&rw), LEASH_EINVAL);
    /* Write-locked: a read unlock is an error. */
    cr_assert_eq(leash_rwmutex_lock(&rw), 0);
    cr_expect_eq(leash_rwmutex_runlock(&rw), LEASH_EINVAL);
    cr_expect_eq(leash_rwmutex_unlock(&rw), 0);
    cr_expect_eq(leash_rwmutex_unlock(&rw), LEASH_EINVAL);
    /* The errors changed nothing: it still works. */
    cr_expect_eq(leash_rwmutex_lock(&rw), 0);
    cr_expect_eq(leash_rwmutex_unlock(&rw), 0);
    cr_expect_eq(leash_rwmutex_rlock(&rw), 0);
    cr_expect_eq(leash_rwmutex_runlock(&rw), 0);
    /* NULL */
    cr_expect_eq(leash_rwmutex_rlock(NULL), LEASH_EINVAL);
    cr_expect_eq(leash_rwmutex_runlock(NULL), LEASH_EINVAL);
    cr_expect_eq(leash_rwmutex_lock(NULL), LEASH_EINVAL);
    cr_expect_eq(leash_rwmutex_unlock(NULL), LEASH_EINVAL);
    cr_expect_eq(leash_cond_wait(NULL, &mu), LEASH_EINVAL);
    cr_expect_eq(leash_cond_wait(&cv, NULL), LEASH_EINVAL);
    cr_expect_eq(leash_cond_signal(NULL), LEASH_EINVAL);
    cr_expect_eq(leash_cond_broadcast(NULL), LEASH_EINVAL);
    cr_expect_eq(leash_once_do(NULL, count_call, NULL), LEASH_EINVAL);
    cr_expect_eq(leash_once_do(&o, NULL, NULL), LEASH_EINVAL);
    /* Waiting with a mutex that is not locked: EINVAL, no wait. */
    cr_expect_eq(leash_cond_wait(&cv, &mu), LEASH_EINVAL);
    /* ...and the cond is still usable (nobody left queued on it). */
    cr_expect_eq(leash_cond_signal(&cv), 0);
}

/* ============================================================ rwmutex */

static leash_rwmutex rw = LEASH_RWMUTEX_INIT;
static atomic_int inside_r, inside_w, max_r, bad;
static leash_chan *gate;
static char order[64];
static atomic_int norder;

static void log_order(char c) { order[atomic_fetch_add(&norder, 1)] = c; }

static void reader_in(void) {
    int n = atomic_fetch_add(&inside_r, 1) + 1;
    int m = atomic_load(&max_r);
    while (n > m && !atomic_compare_exchange_weak(&max_r, &m, n))
        ;
    if (atomic_load(&inside_w))
        atomic_fetch_add(&bad, 1);
}

static void writer_in(void) {
    if (atomic_fetch_add(&inside_w, 1) != 0 || atomic_load(&inside_r) != 0)
        atomic_fetch_add(&bad, 1);
}

/* Reads until the gate closes. */
static void gated_reader(void *a) {
    (void)a;
    CU_CHECK_EQ(leash_rwmutex_rlock(&rw), 0);
    reader_in();
    log_order('r');
    int v;
    leash_recv(gate, &v);
    atomic_fetch_sub(&inside_r, 1);
    CU_CHECK_EQ(leash_rwmutex_runlock(&rw), 0);
}

/* Writes for 20 ms. */
static void writer(void *a) {
    (void)a;
    CU_CHECK_EQ(leash_rwmutex_lock(&rw), 0);
    writer_in();
    log_order('W');
    leash_sleep(20 * MS);
    atomic_fetch_sub(&inside_w, 1);
    CU_CHECK_EQ(leash_rwmutex_unlock(&rw), 0);
}

static bool blocked(int64_t id, const char *what) {
    char want[64];
    snprintf(want, sizeof want, "waiting:%s", what);
    return du_wait_state(id, want, 10000);
}

Test(rwmutex, readers_share_and_exclude_a_writer, .timeout = 30) {
    setup();
    gate = leash_chan_make(sizeof(int), 0);
    for (int i = 0; i < 4; i++)
        leash_go(gated_reader, NULL);
    /* All four inside at once: they would deadlock here if readers
     * excluded each other. */
    cr_assert(CU_WAIT_UNTIL(atomic_load(&inside_r) == 4, 10000),
              "only %d readers inside at once", atomic_load(&inside_r));
    int64_t w = leash_go(writer, NULL);
    cr_assert(blocked(w, "sync.RWMutex.Lock"), "the writer got in with readers");
    leash_close(gate);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_expect_eq(atomic_load(&max_r), 4);
    cr_expect_eq(atomic_load(&bad), 0, "a reader and a writer were inside "
                 "together");
    cr_expect_str_eq(order, "rrrrW");
}

Test(rwmutex, writers_exclude_each_other_and_readers, .timeout = 30) {
    setup();
    gate = leash_chan_make(sizeof(int), 0);
    cr_assert_eq(leash_rwmutex_lock(&rw), 0); /* the test thread writes */
    writer_in();
    int64_t w = leash_go(writer, NULL);
    int64_t r = leash_go(gated_reader, NULL);
    cr_assert(blocked(w, "sync.RWMutex.Lock"));
    cr_assert(blocked(r, "sync.RWMutex.RLock"));
    atomic_fetch_sub(&inside_w, 1);
    cr_assert_eq(leash_rwmutex_unlock(&rw), 0);
    /* Go's order: a writer's unlock lets the waiting readers in first. */
    cr_assert(CU_WAIT_UNTIL(atomic_load(&inside_r) == 1, 10000));
    cr_assert(blocked(w, "sync.RWMutex.Lock"));
    leash_close(gate);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_expect_eq(atomic_load(&bad), 0);
    cr_expect_str_eq(order, "rW");
}

/* A waiting writer keeps new readers out (no writer starvation): reader 1
 * is inside, the writer waits, reader 2 must wait behind the writer. */
Test(rwmutex, waiting_writer_blocks_new_readers, .timeout = 30) {
    setup();
    gate = leash_chan_make(sizeof(int), 0);
    int64_t r1 = leash_go(gated_reader, NULL);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&inside_r) == 1, 10000));
    int64_t w = leash_go(writer, NULL);
    cr_assert(blocked(w, "sync.RWMutex.Lock"));
    int64_t r2 = leash_go(gated_reader, NULL);
    cr_expect(blocked(r2, "sync.RWMutex.RLock"),
              "a new reader got in past a waiting writer");
    cr_expect_eq(atomic_load(&inside_r), 1);
    leash_close(gate); /* r1 leaves: the writer, then r2 */
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_expect_str_eq(order, "rWr", "order of entry: %s", order);
    cr_expect_eq(atomic_load(&bad), 0);
    (void)r1;
}

/* A writer's unlock admits every waiting reader together, ahead of the
 * next writer; that writer gets in when the last of them leaves. */
Test(rwmutex, writer_unlock_admits_all_waiting_readers, .timeout = 30) {
    setup();
    gate = leash_chan_make(sizeof(int), 0);
    cr_assert_eq(leash_rwmutex_lock(&rw), 0);
    int64_t r[3];
    for (int i = 0; i < 3; i++) {
        r[i] = leash_go(gated_reader, NULL);
        cr_assert(blocked(r[i], "sync.RWMutex.RLock"));
    }
    int64_t w = leash_go(writer, NULL);
    cr_assert(blocked(w, "sync.RWMutex.Lock"));
    cr_assert_eq(leash_rwmutex_unlock(&rw), 0);
    cr_expect(CU_WAIT_UNTIL(atomic_load(&inside_r) == 3, 10000),
              "%d of the 3 waiting readers got in", atomic_load(&inside_r));
    cr_expect(blocked(w, "sync.RWMutex.Lock"));
    leash_close(gate);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_expect_str_eq(order, "rrrW");
    cr_expect_eq(atomic_load(&bad), 0);
}

/* Plain threads and coroutines on one rwmutex: a thread's lock blocks a
 * coroutine (which parks), and a coroutine's lock blocks a thread (which
 * waits on the OS). */
static atomic_int th_stage;
static void *thread_reader(void *a) {
    (void)a;
    atomic_store(&th_stage, 1);
    CU_CHECK_EQ(leash_rwmutex_rlock(&rw), 0); /* blocks: a coroutine writes */
    atomic_store(&th_stage, 2);
    CU_CHECK(atomic_load(&inside_w) == 0);
    CU_CHECK_EQ(leash_rwmutex_runlock(&rw), 0);
    return NULL;
}
static leash_chan *hold;
static void holding_writer(void *a) {
    (void)a;
    CU_CHECK_EQ(leash_rwmutex_lock(&rw), 0);
    atomic_store(&inside_w, 1);
    int v;
    leash_recv(hold, &v);
    atomic_store(&inside_w, 0);
    CU_CHECK_EQ(leash_rwmutex_unlock(&rw), 0);
}

/* A writer (the caller) in, and a gated reader queued behind it. */
static void reader_queued_behind_writer(void) {
    gate = leash_chan_make(sizeof(int), 0);
    cr_assert_eq(leash_rwmutex_lock(&rw), 0);
    int64_t r = leash_go(gated_reader, NULL);
    cr_assert(blocked(r, "sync.RWMutex.RLock"));
}

/* The writer leaves: the queued reader gets in, is let go, and ends. */
static void writer_leaves_reader_enters(void) {
    cr_assert_eq(leash_rwmutex_unlock(&rw), 0);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&inside_r) == 1, 10000));
    leash_close(gate);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
}

Test(rwmutex, plain_threads_and_coroutines, .timeout = 30) {
    setup();
    /* Thread holds, coroutine waits. */
    reader_queued_behind_writer();
    writer_leaves_reader_enters();
    /* Coroutine holds, thread waits. */
    hold = leash_chan_make(sizeof(int), 0);
    int64_t w = leash_go(holding_writer, NULL);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&inside_w) == 1, 10000));
    pthread_t t;
    pthread_create(&t, NULL, thread_reader, NULL);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&th_stage) == 1, 10000));
    usleep(50 * 1000);
    cr_expect_eq(atomic_load(&th_stage), 1, "the thread read while a "
                 "coroutine wrote");
    int v = 1;
    leash_send(hold, &v);
    pthread_join(t, NULL);
    cr_expect_eq(atomic_load(&th_stage), 2);
    CU_ASSERT_CLEAN();
    (void)w;
}

/* An RUnlock while a writer is in is the caller's bug even with readers
 * counted (they are all queued behind the writer): EINVAL, and nothing
 * changes, so the queued reader still gets in after the writer. */
Test(errors, runlock_while_a_writer_is_in_with_readers_queued, .timeout = 30) {
    setup();
    reader_queued_behind_writer();
    cr_expect_eq(leash_rwmutex_runlock(&rw), LEASH_EINVAL);
    cr_expect_eq(atomic_load(&inside_r), 0, "the bad RUnlock let a reader in");
    writer_leaves_reader_enters();
    cr_expect_eq(rw.readers_, 0);
    cr_expect_eq(rw.writer_, 0);
    /* and it still works both ways */
    cr_expect_eq(leash_rwmutex_lock(&rw), 0);
    cr_expect_eq(leash_rwmutex_unlock(&rw), 0);
    cr_expect_eq(leash_rwmutex_rlock(&rw), 0);
    cr_expect_eq(leash_rwmutex_runlock(&rw), 0);
}

/* A reader that counted itself in while a writer was in, and is still on
 * its way to the queue when the writer leaves, must get in (a permit),
 * not queue behind a writer that has gone. The value's spinlock, held
 * here, stops the reader on its way and the writer's unlock at once;
 * which of them goes first then varies over the rounds: both orders must
 * end with the reader in and the value back at rest. */
static leash_rwmutex race_rw = LEASH_RWMUTEX_INIT;
static atomic_int race_in;

static void *race_reader(void *a) {
    (void)a;
    if (leash_rwmutex_rlock(&race_rw) == 0) {
        atomic_fetch_add(&race_in, 1);
        leash_rwmutex_runlock(&race_rw);
    }
    return NULL;
}

static void *race_unlocker(void *a) {
    (void)a;
    leash_rwmutex_unlock(&race_rw);
    return NULL;
}

static void spin_lock(unsigned *l) {
    unsigned z = 0;
    while (!__atomic_compare_exchange_n(l, &z, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
        z = 0;
}

Test(rwmutex, reader_on_its_way_when_the_writer_leaves, .timeout = 60) {
    setup();
    for (int round = 0; round < 200; round++) {
        cr_assert_eq(leash_rwmutex_lock(&race_rw), 0);
        int counted = __atomic_load_n(&race_rw.readers_, __ATOMIC_RELAXED) + 1;
        spin_lock(&race_rw.lock_);
        pthread_t r, u;
        pthread_create(&r, NULL, race_reader, NULL);
        /* the reader has counted itself in and waits for the spinlock */
        while (__atomic_load_n(&race_rw.readers_, __ATOMIC_RELAXED) != counted)
            sched_yield();
        pthread_create(&u, NULL, race_unlocker, NULL);
        for (int i = 0; i < round % 7; i++)
            sched_yield();
        __atomic_store_n(&race_rw.lock_, 0, __ATOMIC_RELEASE);
        pthread_join(u, NULL);
        pthread_join(r, NULL);
        cr_assert_eq(atomic_load(&race_in), round + 1, "round %d", round);
        cr_assert_eq(race_rw.readers_, 0, "round %d", round);
        cr_assert_eq(race_rw.rperm_, 0, "round %d", round);
        cr_assert_eq(race_rw.writer_, 0, "round %d", round);
    }
}

/* Writer W1 is in; reader R and writer W2 wait. W1's unlock lets R in and
 * starts W2's turn at once: W2 gets in when R leaves, and a reader that
 * comes after the unlock waits behind W2. */
Test(rwmutex, next_writer_waits_for_the_readers_let_in, .timeout = 30) {
    setup();
    gate = leash_chan_make(sizeof(int), 0);
    cr_assert_eq(leash_rwmutex_lock(&rw), 0);
    int64_t r1 = leash_go(gated_reader, NULL);
    cr_assert(blocked(r1, "sync.RWMutex.RLock"));
    int64_t w = leash_go(writer, NULL);
    cr_assert(blocked(w, "sync.RWMutex.Lock"));
    cr_assert_eq(leash_rwmutex_unlock(&rw), 0);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&inside_r) == 1, 10000));
    int64_t r2 = leash_go(gated_reader, NULL);
    cr_expect(blocked(r2, "sync.RWMutex.RLock"),
              "a new reader got in past the writer whose turn had begun");
    cr_expect(blocked(w, "sync.RWMutex.Lock"));
    leash_close(gate);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_expect_str_eq(order, "rWr", "order of entry: %s", order);
    cr_expect_eq(atomic_load(&bad), 0);
    cr_expect_eq(rw.readers_, 0);
}

/* =============================================================== cond */

static leash_mutex cmu = LEASH_MUTEX_INIT;
static leash_cond cv = LEASH_COND_INIT;
static atomic_int woken, held_after_wait, cond_rc;

static void cond_waiter(void *a) {
    (void)a;
    CU_CHECK_EQ(leash_mutex_lock(&cmu), 0);
    int rc = leash_cond_wait(&cv, &cmu);
    if (rc)
        atomic_store(&cond_rc, rc);
    /* Wait returns with the mutex held (by us). */
    if (leash_mutex_trylock(&cmu) == LEASH_EAGAIN)
        atomic_fetch_add(&held_after_wait, 1);
    atomic_fetch_add(&woken, 1);
    CU_CHECK_EQ(leash_mutex_unlock(&cmu), 0);
}

Test(cond, signal_wakes_one_broadcast_wakes_all, .timeout = 30) {
    setup();
    int64_t id[4];
    for (int i = 0; i < 4; i++)
        id[i] = leash_go(cond_waiter, NULL);
    for (int i = 0; i < 4; i++)
        cr_assert(blocked(id[i], "sync.Cond.Wait"));
    cr_assert_eq(leash_cond_signal(&cv), 0);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&woken) == 1, 10000));
    leash_sleep(50 * MS);
    cr_expect_eq(atomic_load(&woken), 1, "one signal woke %d",
                 atomic_load(&woken));
    cr_assert_eq(leash_cond_signal(&cv), 0);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&woken) == 2, 10000));
    leash_sleep(50 * MS);
    cr_expect_eq(atomic_load(&woken), 2);
    cr_assert_eq(leash_cond_broadcast(&cv), 0);
    cr_expect(CU_WAIT_UNTIL(atomic_load(&woken) == 4, 10000),
              "broadcast woke %d of 2", atomic_load(&woken) - 2);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_expect_eq(atomic_load(&held_after_wait), 4, "wait returned without "
                 "the mutex %d time(s)", 4 - atomic_load(&held_after_wait));
    cr_expect_eq(atomic_load(&cond_rc), 0);
    /* Broadcast with nobody waiting is fine. */
    cr_expect_eq(leash_cond_broadcast(&cv), 0);
}

Test(cond, a_signal_with_no_waiter_is_not_remembered, .timeout = 30) {
    setup();
    cr_assert_eq(leash_cond_signal(&cv), 0);
    cr_assert_eq(leash_cond_broadcast(&cv), 0);
    int64_t id = leash_go(cond_waiter, NULL);
    cr_assert(blocked(id, "sync.Cond.Wait"));
    leash_sleep(50 * MS);
    cr_expect_eq(atomic_load(&woken), 0, "an earlier signal woke it");
    cr_assert_eq(leash_cond_signal(&cv), 0);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&woken) == 1, 10000));
}

/* No lost wake-up: the waiter marks itself ready under the mutex and
 * waits; the signaller takes the mutex (free only once the waiter is
 * queued) and signals. A plain thread waits, a coroutine signals, and
 * the other way round. */
static int ready;
static atomic_int thread_woken;
static void *thread_cond_waiter(void *a) {
    (void)a;
    CU_CHECK_EQ(leash_mutex_lock(&cmu), 0);
    ready = 1;
    CU_CHECK_EQ(leash_cond_wait(&cv, &cmu), 0);
    atomic_store(&thread_woken, 1);
    CU_CHECK_EQ(leash_mutex_unlock(&cmu), 0);
    return NULL;
}
static void coro_signaller(void *a) {
    (void)a;
    for (;;) {
        CU_CHECK_EQ(leash_mutex_lock(&cmu), 0);
        if (ready) {
            ready = 0;
            leash_cond_signal(&cv);
            leash_mutex_unlock(&cmu);
            return;
        }
        leash_mutex_unlock(&cmu);
        leash_sleep(MS);
    }
}

Test(cond, plain_thread_and_coroutine, .timeout = 30) {
    setup();
    for (int round = 0; round < 20; round++) {
        atomic_store(&thread_woken, 0);
        pthread_t t;
        pthread_create(&t, NULL, thread_cond_waiter, NULL);
        leash_go(coro_signaller, NULL);
        pthread_join(t, NULL);
        cr_assert_eq(atomic_load(&thread_woken), 1);
        cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    }
    /* A coroutine waits, the plain test thread signals. */
    int64_t id = leash_go(cond_waiter, NULL);
    cr_assert(blocked(id, "sync.Cond.Wait"));
    cr_assert_eq(leash_mutex_lock(&cmu), 0);
    cr_assert_eq(leash_cond_signal(&cv), 0);
    cr_assert_eq(leash_mutex_unlock(&cmu), 0);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&woken) == 1, 10000));
    CU_ASSERT_CLEAN();
}

/* =============================================================== once */

static leash_once once = LEASH_ONCE_INIT;
static atomic_int calls, finished, early;

static void slow_init(void *a) {
    (void)a;
    atomic_fetch_add(&calls, 1);
    leash_sleep(50 * MS); /* parks a coroutine, sleeps a thread */
    atomic_store(&finished, 1);
}

static void once_caller(void *a) {
    (void)a;
    CU_CHECK_EQ(leash_once_do(&once, slow_init, NULL), 0);
    if (!atomic_load(&finished))
        atomic_fetch_add(&early, 1); /* returned before the call ended */
}
static void *once_thread(void *a) {
    once_caller(a);
    return NULL;
}

Test(once, exactly_one_call_and_everyone_waits_for_it, .timeout = 30) {
    setup();
    pthread_t t[2];
    for (int i = 0; i < 8; i++)
        leash_go(once_caller, NULL);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, once_thread, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
    cr_expect_eq(atomic_load(&calls), 1, "fn ran %d times", atomic_load(&calls));
    cr_expect_eq(atomic_load(&early), 0, "%d caller(s) returned before the "
                 "call ended", atomic_load(&early));
    /* Later calls return at once, without calling. */
    cr_expect_eq(leash_once_do(&once, slow_init, NULL), 0);
    cr_expect_eq(atomic_load(&calls), 1);
    CU_ASSERT_CLEAN();
}

/* Onces are independent: fn may use another once. */
static leash_once o_outer = LEASH_ONCE_INIT, o_inner = LEASH_ONCE_INIT;
static int inner_calls;
static void inner_fn(void *a) {
    (void)a;
    inner_calls++;
}
static void outer_fn(void *a) {
    (void)a;
    leash_once_do(&o_inner, inner_fn, NULL);
}
Test(once, nested_onces_are_independent, .timeout = 30) {
    cr_assert_eq(leash_once_do(&o_outer, outer_fn, NULL), 0);
    cr_assert_eq(leash_once_do(&o_inner, inner_fn, NULL), 0);
    cr_expect_eq(inner_calls, 1);
}
