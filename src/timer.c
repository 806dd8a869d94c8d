/* SPDX-License-Identifier: MIT */
/*
 * timer.c — timers: sleep, after, tickers, on a 4-ary heap per worker.
 *
 * A timer goes on the heap of the worker that arms it (worker 0's for a
 * plain thread). Each heap has its own lock and publishes its earliest
 * deadline in next_when, so a worker can tell without locking whether any
 * heap has work; the scheduler runs expired timers of its own heap on
 * every pass and of other heaps when it is idle (sched.c).
 *
 * A timer's callback runs with the heap lock dropped. While it runs, a
 * slot of the heap's `running` table names it and its thread, and
 * timer_del waits for it to finish, so a ticker or a context can be
 * stopped and freed safely. Any worker runs any heap's due timers, so
 * several callbacks of one heap may run at once: one slot each (a single
 * field, cleared by whichever finished first, once let a context be freed
 * under its own running callback). A callback that deletes its own timer
 * (a context destroyed by its own deadline's cancel) does not wait for
 * itself. The timer struct itself is never touched after its callback
 * starts: a sleeping coroutine's timer lives on its stack and is gone as
 * soon as the coroutine resumes.
 *
 * Invariants: t->idx >= 0 iff t is queued on t->heap, and then
 * h->v[t->idx] == {t->when, t}; h->next_when equals the root's `when`
 * (T_INF when empty); all under h->lock.
 */
#include "internal.h"

#include <errno.h>
#include <time.h>

struct leash_ticker {
    lobj obj;
    rtimer t;
    leash_chan *c;
    _Atomic bool stopped;
};

int64_t leash_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ heap */

/* A 4-ary heap whose entries carry `when`, so sifting compares without
 * touching the timers themselves (each may sit on a different coroutine's
 * stack page); only a moved timer's idx is written. */
typedef struct theap_ent ent;

static inline void heap_set(struct theap *h, int i, ent e) {
    h->v[i] = e;
    e.t->idx = i;
}

static void heap_up(struct theap *h, int i) {
    ent e = h->v[i];
    while (i > 0) {
        int p = (i - 1) / 4;
        if (h->v[p].when <= e.when)
            break;
        heap_set(h, i, h->v[p]);
        i = p;
    }
    heap_set(h, i, e);
}

static void heap_down(struct theap *h, int i) {
    ent e = h->v[i];
    for (;;) {
        int c = 4 * i + 1;
        if (c >= h->n)
            break;
        int m = c;
        int end = c + 4 < h->n ? c + 4 : h->n;
        for (int k = c + 1; k < end; k++)
            if (h->v[k].when < h->v[m].when)
                m = k;
        if (e.when <= h->v[m].when)
            break;
        heap_set(h, i, h->v[m]);
        i = m;
    }
    heap_set(h, i, e);
}

static void heap_publish(struct theap *h) {
    atomic_store_explicit(&h->next_when, h->n ? h->v[0].when : T_INF,
                          memory_order_release);
}

static void heap_remove_at(struct theap *h, int i) {
    rtimer *t = h->v[i].t;
    h->n--;
    if (i != h->n) {
        heap_set(h, i, h->v[h->n]);
        heap_down(h, i);
        heap_up(h, h->v[i].t->idx);
    }
    t->idx = -1;
}

/* Queues t on h (h->lock held). LEASH_ENOMEM if the heap cannot grow. */
int timer_add_locked(struct theap *h, rtimer *t) {
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        ent *v = lrealloc(h->v, sizeof *v * (size_t)cap);
        if (!v)
            return LEASH_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    atomic_store_explicit(&t->heap, h, memory_order_relaxed);
    heap_set(h, h->n++, (ent){t->when, t});
    heap_up(h, t->idx);
    if (h->v[0].t == t) {
        heap_publish(h);
        timer_kick(t->when);
    }
    return 0;
}

struct theap *timer_heap_lock_for_add(void) {
    worker *w = sched_worker();
    struct theap *h = w ? &w->timers : &S.workers[0].timers;
    llock_acquire(&h->lock);
    return h;
}

int timer_add(rtimer *t) {
    struct theap *h = timer_heap_lock_for_add();
    int rc = timer_add_locked(h, t);
    llock_release(&h->lock);
    return rc;
}

/* Identifies the calling thread in a heap's running table. */
static _Thread_local char timer_thread;

/* The slot of h->running whose callback is t's, or -1 (h->lock held). */
static int running_slot(struct theap *h, const rtimer *t) {
    for (int i = 0; i < THEAP_RUNNERS; i++)
        if (h->running[i].t == t)
            return i;
    return -1;
}

bool timer_del(rtimer *t) {
    for (;;) {
        struct theap *h = atomic_load_explicit(&t->heap, memory_order_acquire);
        if (!h)
            return false;
        llock_acquire(&h->lock);
        if (atomic_load_explicit(&t->heap, memory_order_relaxed) != h) {
            llock_release(&h->lock);
            continue;
        }
        int r = running_slot(h, t);
        if (r >= 0 && h->running[r].thread == &timer_thread) {
            llock_release(&h->lock); /* called from its own callback */
            return false;
        }
        if (r >= 0) { /* its callback runs now: let it finish */
            llock_release(&h->lock);
            leash_yield();
            continue;
        }
        bool queued = t->idx >= 0;
        if (queued) {
            heap_remove_at(h, t->idx);
            heap_publish(h);
        }
        llock_release(&h->lock);
        return queued;
    }
}

/* Fires up to max timers of h due at `now`; returns how many. */
int timer_heap_run(struct theap *h, int64_t now, int max) {
    int fired = 0;
    if (!llock_try(&h->lock))
        return 0; /* somebody else is on it */
    int slot = running_slot(h, NULL);
    if (slot < 0) { /* THEAP_RUNNERS callbacks run already */
        llock_release(&h->lock);
        return 0;
    }
    while (fired < max && h->n && h->v[0].when <= now) {
        rtimer *t = h->v[0].t;
        if (t->period > 0) {
            t->when = time_add(t->when, t->period);
            if (t->when <= now) /* missed ticks are dropped, as in Go */
                t->when = time_add(now, t->period);
            h->v[0].when = t->when;
            heap_down(h, 0);
        } else {
            heap_remove_at(h, 0);
        }
        heap_publish(h);
        h->running[slot].t = t;
        h->running[slot].thread = &timer_thread;
        void (*fn)(rtimer *, int64_t) = t->fn;
        llock_release(&h->lock);
        fn(t, now); /* t may be gone once this returns */
        fired++;
        llock_acquire(&h->lock);
        h->running[slot].t = NULL;
    }
    heap_publish(h);
    llock_release(&h->lock);
    return fired;
}

/* Fires every timer due at `now`, on every worker's heap, earliest
 * first across heaps: one worker delayed (preempted by the OS) must not
 * let a later timer of another heap overtake its earlier one. */
int timers_run_due(int64_t now) {
    int fired = 0;
    for (;;) {
        struct theap *best = NULL;
        int64_t bw = now + 1;
        for (int i = 0; i < S.nprocs; i++) {
            struct theap *h = &S.workers[i].timers;
            int64_t nw = atomic_load_explicit(&h->next_when,
                                              memory_order_acquire);
            if (nw < bw) {
                bw = nw;
                best = h;
            }
        }
        if (!best || timer_heap_run(best, now, 1) == 0)
            return fired; /* none due, or another worker is at it */
        fired++;
    }
}

int64_t timer_next_all(void) {
    int64_t m = T_INF;
    for (int i = 0; i < S.nprocs; i++) {
        int64_t v = atomic_load_explicit(&S.workers[i].timers.next_when,
                                         memory_order_acquire);
        if (v < m)
            m = v;
    }
    return m;
}

/* ------------------------------------------------- what timers can wake */

/* A timer that wakes a user coroutine decides at once; channels and
 * contexts are collected (each with a reference, under the heap lock,
 * while their timer keeps them alive) and looked at after the heap lock
 * is dropped: their locks come before heap locks in the lock order. */
typedef struct {
    lobj **v;
    int n, cap;
    bool unsure;
} objlist;

static void objlist_add(objlist *l, lobj *o) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        lobj **v = lrealloc(l->v, sizeof *v * (size_t)cap);
        if (!v) {
            l->unsure = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    if (obj_try_retain(o))
        l->v[l->n++] = o;
    else
        l->unsure = true; /* being destroyed: a context's destroy cancels */
}

static bool heap_collect(struct theap *h, objlist *l) {
    bool wakes_g = false;
    llock_acquire(&h->lock);
    for (int i = 0; i < THEAP_RUNNERS; i++)
        if (h->running[i].t)
            wakes_g = true; /* a callback in progress: anything may follow */
    for (int i = 0; i < h->n && !wakes_g && !l->unsure; i++) {
        rtimer *t = h->v[i].t;
        if (t->wakes == TW_G)
            wakes_g = !((coroutine *)t->target)->system;
        else
            objlist_add(l, t->target);
    }
    llock_release(&h->lock);
    return wakes_g;
}

bool timers_may_wake(void) {
    objlist l = {0};
    bool may = false;
    for (int i = 0; i < S.nprocs && !may; i++)
        may = heap_collect(&S.workers[i].timers, &l);
    may = may || l.unsure;
    for (int i = 0; i < l.n; i++) {
        lobj *o = l.v[i];
        if (!may)
            may = o->type == OBJ_CHAN ? chan_has_receivers((leash_chan *)o)
                                      : ctx_cancel_may_wake((leash_ctx *)o);
        obj_release_from(o, NULL);
    }
    lfree(l.v);
    return may;
}

void timer_heap_free(struct theap *h) {
    lfree(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

/* ----------------------------------------------------------------- sleep */

static void wake_sleeper(rtimer *t, int64_t now) {
    (void)now;
    sched_ready((coroutine *)t->arg, false);
}

static void os_sleep_until(int64_t deadline) {
    struct timespec ts = {.tv_sec = deadline / 1000000000,
                          .tv_nsec = deadline % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

API_FRAME void leash_sleep(int64_t ns) {
    coroutine *g = sched_getg();
    if (ns <= 0) {
        leash_yield();
        return;
    }
    int64_t deadline = time_add(leash_now(), ns);
    if (!g || g->foreign) {
        os_sleep_until(deadline);
        return;
    }
    rtimer t = {.when = deadline, .fn = wake_sleeper, .arg = g, .idx = -1,
                     .wakes = TW_G, .target = g};
    struct theap *h = timer_heap_lock_for_add();
    if (timer_add_locked(h, &t) < 0) {
        llock_release(&h->lock);
        while (leash_now() < deadline) /* out of memory: degrade, not fail */
            leash_yield();
        return;
    }
    g_wait_begin(g, WR_SLEEP, NULL);
    sched_park(llock_release_fn, &h->lock);
    g_wait_end(g);
}

/* ----------------------------------------------------------------- after */

typedef struct {
    rtimer t;
    leash_chan *c;
} after_timer;

static void after_fire(rtimer *t, int64_t now) {
    after_timer *a = (after_timer *)t;
    leash_try_send_n(a->c, &now, sizeof now);
    obj_release_from(&a->c->obj, NULL); /* the runtime's reference */
    lfree(a);
}

leash_chan *leash_after_at(const char *file, int line, int64_t ns) {
    if (sched_ensure_started() < 0)
        return NULL;
    leash_chan *c = leash_chan_make_at(file, line, sizeof(int64_t), 1);
    if (!c)
        return NULL;
    after_timer *a = lmalloc(sizeof *a);
    if (!a || obj_retain_for(&c->obj, NULL, false) < 0) {
        lfree(a);
        leash_release(c);
        return NULL;
    }
    if (ns < 0)
        ns = 0;
    *a = (after_timer){.t = {.when = time_add(leash_now(), ns),
                             .fn = after_fire, .idx = -1,
                             .wakes = TW_CHAN, .target = c},
                       .c = c};
    if (timer_add(&a->t) < 0) {
        obj_release_from(&c->obj, NULL);
        lfree(a);
        leash_release(c);
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------- ticker */

static void ticker_fire(rtimer *t, int64_t now) {
    leash_ticker *tk = t->arg;
    leash_try_send_n(tk->c, &now, sizeof now); /* full: the tick is dropped */
}

static void ticker_destroy(lobj *o) {
    leash_ticker *tk = (leash_ticker *)o;
    timer_del(&tk->t);
    obj_release_from(&tk->c->obj, NULL);
    obj_free_mem(o);
}

leash_ticker *leash_ticker_start_at(const char *file, int line,
                                    int64_t period_ns) {
    if (period_ns <= 0 || sched_ensure_started() < 0)
        return NULL;
    leash_ticker *tk = obj_alloc(OBJ_TICKER, sizeof *tk);
    if (!tk)
        return NULL;
    tk->c = chan_make(file, line, sizeof(int64_t), 1, NULL); /* the ticker's */
    if (!tk->c) {
        obj_free_mem_type(tk, OBJ_TICKER);
        return NULL;
    }
    if (obj_init(&tk->obj, OBJ_TICKER, file, line, ticker_destroy,
                 sched_getg_or_foreign()) < 0) {
        obj_release_from(&tk->c->obj, NULL);
        obj_free_mem_type(tk, OBJ_TICKER);
        return NULL;
    }
    tk->t = (rtimer){.when = time_add(leash_now(), period_ns),
                          .period = period_ns,
                          .fn = ticker_fire,
                          .arg = tk,
                          .idx = -1,
                          .wakes = TW_CHAN,
                          .target = tk->c};
    if (timer_add(&tk->t) < 0) {
        leash_release(tk);
        return NULL;
    }
    return tk;
}

leash_chan *leash_ticker_chan(leash_ticker *tk) {
    if (!obj_check(tk, OBJ_TICKER))
        return NULL;
    return tk->c;
}

void leash_ticker_stop(leash_ticker *tk) {
    if (!obj_check(tk, OBJ_TICKER))
        return;
    bool was = atomic_exchange(&tk->stopped, true);
    timer_del(&tk->t);
    if (!was)
        leash_release(tk);
}

