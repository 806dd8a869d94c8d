/* SPDX-License-Identifier: MIT */
/*
 * test_timerheap.c — the timer heap's callback handshake (src/timer.c),
 * on a heap of the test's own, driven by hand.
 *
 * timer_del must not return while the timer's callback runs (the caller
 * frees the timer's owner next), whichever thread runs it and however
 * many callbacks of the same heap run at once; and a callback that
 * deletes its own timer must not wait for itself.
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core_util.h"
#include "internal.h"

static struct theap heap;

static void heap_setup(void) {
    heap = (struct theap){0};
    llock_init(&heap.lock, LR_THEAP);
    atomic_store(&heap.next_when, T_INF);
}

static void add(rtimer *t, int64_t when, void (*fn)(rtimer *, int64_t),
                void *arg) {
    *t = (rtimer){.when = when, .fn = fn, .arg = arg, .idx = -1};
    llock_acquire(&heap.lock);
    cr_assert_eq(timer_add_locked(&heap, t), 0);
    llock_release(&heap.lock);
}

/* A callback that blocks until its gate (t->arg) is opened, counting the
 * callbacks that started and finished. */
typedef struct {
    atomic_int started, open, finished;
} gate;
static void gated_fire(rtimer *t, int64_t now) {
    (void)now;
    gate *g = t->arg;
    atomic_fetch_add(&g->started, 1);
    while (!atomic_load(&g->open))
        usleep(1000);
    atomic_fetch_add(&g->finished, 1);
}
static void quick_fire(rtimer *t, int64_t now) { (void)t, (void)now; }

/* Fires one timer; llock_try fails while another runner holds the heap
 * lock for a moment, so it tries again. */
static void *run_one(void *arg) {
    (void)arg;
    while (timer_heap_run(&heap, leash_now(), 1) == 0)
        usleep(100);
    return NULL;
}

static atomic_int del_returned;
static void *del_slow(void *arg) {
    timer_del(arg);
    atomic_store(&del_returned, 1);
    return NULL;
}

/* Two threads run callbacks of one heap; the quick one finishing first
 * must not make timer_del believe the slow one has finished. (It did: a
 * single `running` field, cleared by whichever callback ended first, let
 * a context be freed and reused while its deadline's cancel ran.) */
Test(timerheap, del_waits_while_another_callback_of_the_heap_ends,
     .timeout = 30) {
    heap_setup();
    static gate g;
    rtimer slow, quick;
    int64_t now = leash_now();
    add(&slow, now - 2, gated_fire, &g);
    add(&quick, now - 1, quick_fire, NULL);

    pthread_t a, d;
    pthread_create(&a, NULL, run_one, NULL); /* fires slow (earliest) */
    while (!atomic_load(&g.started))
        usleep(1000);
    cr_assert_eq(timer_heap_run(&heap, leash_now(), 1), 1, "quick fires");

    pthread_create(&d, NULL, del_slow, &slow);
    usleep(100 * 1000); /* timer_del must still be waiting */
    cr_assert_eq(atomic_load(&del_returned), 0,
                 "timer_del returned while the callback was running");
    atomic_store(&g.open, 1);
    pthread_join(d, NULL);
    cr_assert(atomic_load(&g.finished),
              "timer_del returned before the callback finished");
    pthread_join(a, NULL);
    timer_heap_free(&heap);
}

/* A callback that deletes its own timer (a context destroyed by its own
 * deadline's cancel, when that cancel drops the last reference). */
static atomic_int self_del_done;
static void self_del_fire(rtimer *t, int64_t now) {
    (void)now;
    cr_assert_not(timer_del(t), "not queued any more");
    atomic_store(&self_del_done, 1);
}

Test(timerheap, callback_deleting_its_own_timer_does_not_wait_for_itself,
     .timeout = 30) {
    heap_setup();
    rtimer t;
    add(&t, leash_now() - 1, self_del_fire, NULL);
    cr_assert_eq(timer_heap_run(&heap, leash_now(), 1), 1);
    cr_assert(atomic_load(&self_del_done));
    timer_heap_free(&heap);
}

/* With every running slot taken, another runner leaves the heap alone
 * rather than run a callback timer_del could not see. */
Test(timerheap, runners_beyond_the_slots_leave_the_heap, .timeout = 30) {
    static gate g;
    heap_setup();
    rtimer t[THEAP_RUNNERS + 1];
    int64_t now = leash_now();
    for (int i = 0; i <= THEAP_RUNNERS; i++)
        add(&t[i], now - 10 + i, gated_fire, &g);
    pthread_t th[THEAP_RUNNERS];
    for (int i = 0; i < THEAP_RUNNERS; i++)
        pthread_create(&th[i], NULL, run_one, NULL);
    while (atomic_load(&g.started) < THEAP_RUNNERS)
        usleep(1000);
    cr_assert_eq(timer_heap_run(&heap, leash_now(), 1), 0,
                 "every slot is taken: this runner must leave");
    atomic_store(&g.open, 1);
    for (int i = 0; i < THEAP_RUNNERS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(timer_heap_run(&heap, leash_now(), 1), 1, "now it runs");
    cr_assert_eq(atomic_load(&g.finished), THEAP_RUNNERS + 1);
    cr_assert_eq(heap.n, 0);
    timer_heap_free(&heap);
}
