/* SPDX-License-Identifier: MIT */
/*
 * leakshapes.c — testprog_leakshapes SHAPE leaky|fixed: the leak shapes
 * of issue 14, each a small program with the bug and its fixed twin
 * (tests/test_leakshapes.c runs them at LEASH_PROCS=1, 2 and 4).
 *
 * The shapes are written after the bug kinds the literature reports
 * (GoBench's GoKer blocking bugs, the LeakProf paper's common patterns,
 * Go's own issue tracker): a lone holder of a channel waiting on it, a
 * result channel whose workers returned early, two loops sending to each
 * other, both holders waiting on one channel, a select whose every case
 * is dead, a lost context cancel, RWMutex self-deadlocks, a lock whose
 * owner returned, waiters behind a cycle, a cycle through a lock and a
 * channel, and WaitGroup/Cond waits nobody will end.
 *
 * The main thread (a plain thread, which holds nothing once it has
 * released what it made) starts the shape, then:
 *   leaky  waits until leash_leak_dump (debug=2) lists the expected
 *          coroutines, each as `goroutine N [REASON (leaked)]:` with
 *          FUNC as its first frame; for the shapes that cannot be proven
 *          (WaitGroup, Cond: see docs/DESIGN-NOTES.md), that nothing is
 *          proven and leash_leak_verify reports them instead;
 *   fixed  waits until every coroutine has returned, checking all along
 *          that nothing is proven, and that leash_leak_verify is clean.
 * Prints "ok SHAPE MODE" and exits 0, or "FAIL ..." and exits 1.
 */
#define _GNU_SOURCE 1
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leash.h"

#define MS 1000000LL
#define NOINLINE __attribute__((noinline))

static bool leaky;
static _Atomic int step;

static void wait_step(int n) {
    while (atomic_load(&step) < n)
        leash_sleep(MS);
}

/* ---------------------------------------------- a lone holder waits */

static NOINLINE void lone_wait(void *a) {
    (void)a;
    leash_chan *ch = leash_chan_make(sizeof(int), leaky ? 0 : 1);
    int v = 1;
    if (!leaky)
        leash_send(ch, &v); /* fixed: the value it waits for is there */
    leash_recv(ch, &v);
    leash_release(ch);
}
static void shape_lone(void) { leash_go(lone_wait, NULL); }

/* ----------------------------- workers returned early on zero items */

typedef struct {
    leash_chan *res;
    int nitems;
} batch;
static batch batches[2];

static NOINLINE void batch_worker(void *a) {
    batch *b = a;
    if (leaky && b->nitems == 0)
        return; /* the bug: nothing to do, so no result either */
    int n = b->nitems;
    leash_send(b->res, &n);
}
static NOINLINE void gather(void *a) {
    (void)a;
    leash_chan *res = leash_chan_make(sizeof(int), 0);
    for (int i = 0; i < 2; i++) {
        batches[i] = (batch){res, 0}; /* the zero-item path */
        leash_go(batch_worker, &batches[i], res);
    }
    for (int i = 0; i < 2; i++) {
        int v;
        leash_recv(res, &v);
    }
    leash_release(res);
}
static void shape_zero_items(void) { leash_go(gather, NULL); }

/* --------------- a temporary result channel lent through an argument */

typedef struct {
    leash_chan *reply;
    int key;
} lookup_req;
static lookup_req req;

static NOINLINE void lookup(void *a) {
    lookup_req *r = a;
    int v = -1;
    if (r->key < 0 && leaky)
        return; /* the bug: the error path forgets to answer */
    leash_send(r->reply, &v);
}
static NOINLINE void fetch(void *a) {
    (void)a;
    leash_chan *reply = leash_chan_make(sizeof(int), 0);
    req = (lookup_req){reply, -1};
    leash_go(lookup, &req); /* borrowed: no reference handed */
    int v;
    leash_recv(reply, &v);
    leash_release(reply);
}
static void shape_temp_result(void) { leash_go(fetch, NULL); }

/* ------------------------------ two loops each sending to the other */

static leash_chan *a_in, *b_in;
static NOINLINE void loop_a(void *x) {
    (void)x;
    for (int i = 0; i < 3; i++) {
        int v = i;
        leash_send(b_in, &v);
        leash_recv(a_in, &v);
    }
}
static NOINLINE void loop_b(void *x) {
    (void)x;
    for (int i = 0; i < 3; i++) {
        int v = i;
        if (leaky) { /* the bug: both send first */
            leash_send(a_in, &v);
            leash_recv(b_in, &v);
        } else {
            leash_recv(b_in, &v);
            leash_send(a_in, &v);
        }
    }
}
static void shape_send_cycle(void) {
    a_in = leash_chan_make(sizeof(int), 0);
    b_in = leash_chan_make(sizeof(int), 0);
    leash_go(loop_a, NULL, a_in, b_in);
    leash_go(loop_b, NULL, a_in, b_in);
    leash_release(a_in);
    leash_release(b_in);
}

/* ------------------------------- both holders wait on one channel */

static leash_chan *both_ch;
static NOINLINE void both_wait(void *x) {
    int v = 1;
    if (!leaky && x) /* fixed: the second one answers */
        leash_send(both_ch, &v);
    else
        leash_recv(both_ch, &v);
}
static void shape_both_holders(void) {
    both_ch = leash_chan_make(sizeof(int), 0);
    leash_go(both_wait, NULL, both_ch);
    leash_go(both_wait, (void *)1, both_ch);
    leash_release(both_ch);
}

/* ------------------------- a select whose every case is dead */

static leash_chan *data_ch, *quit_ch;
static NOINLINE void watch(void *x) {
    (void)x;
    int v;
    leash_case cs[2] = {LEASH_RECV_CASE(data_ch, &v),
                        LEASH_RECV_CASE(quit_ch, &v)};
    leash_select(cs, 2);
}
static void shape_select(void) {
    data_ch = leash_chan_make(sizeof(int), 0);
    quit_ch = leash_chan_make(sizeof(int), 0);
    leash_go(watch, NULL, data_ch, quit_ch);
    if (!leaky)
        leash_close(quit_ch); /* the fix: tell it to stop */
    leash_release(data_ch);
    leash_release(quit_ch); /* the bug: gone without a word */
}

/* ----------------- a lost cancel: the waiter holds the last reference */

static NOINLINE void ctx_wait(void *x) {
    leash_ctx *ctx = x;
    leash_recv_n(leash_ctx_done(ctx), NULL, 0);
}
static void shape_ctx(void) {
    leash_ctx *ctx = leash_ctx_with_cancel(leash_ctx_background());
    leash_go(ctx_wait, ctx, ctx);
    if (!leaky)
        leash_ctx_cancel(ctx); /* the fix: cancel before letting go */
    leash_release(ctx); /* the waiter's is the last reference now */
}

/* ---------------------------- RWMutex: RLock then Lock, one coroutine */

static leash_rwmutex rw1 = LEASH_RWMUTEX_INIT;
static NOINLINE void rw_upgrade(void *x) {
    (void)x;
    leash_rwmutex_rlock(&rw1);
    if (!leaky)
        leash_rwmutex_runlock(&rw1); /* the fix: let go, then lock */
    leash_rwmutex_lock(&rw1);
    leash_rwmutex_unlock(&rw1);
    if (leaky)
        leash_rwmutex_runlock(&rw1);
}
static void shape_rw_self(void) { leash_go(rw_upgrade, NULL); }

/* ------------------- RWMutex: a recursive RLock behind a waiting writer */

static leash_rwmutex rw2 = LEASH_RWMUTEX_INIT;
static NOINLINE void rw_writer(void *x) {
    (void)x;
    atomic_store(&step, 1);
    leash_rwmutex_lock(&rw2);
    leash_rwmutex_unlock(&rw2);
}
static NOINLINE void rw_reader(void *x) {
    (void)x;
    leash_rwmutex_rlock(&rw2);
    leash_go(rw_writer, NULL);
    wait_step(1);
    leash_sleep(50 * MS); /* the writer queues behind our read lock */
    if (leaky) { /* the bug: a nested call takes the read lock again */
        leash_rwmutex_rlock(&rw2);
        leash_rwmutex_runlock(&rw2);
    }
    leash_rwmutex_runlock(&rw2);
}
static void shape_rw_recursive(void) { leash_go(rw_reader, NULL); }

/* --------------------------- a mutex held by a coroutine that returned */

static leash_mutex mu1 = LEASH_MUTEX_INIT;
static NOINLINE void mu_waiter(void *x) {
    (void)x;
    atomic_store(&step, 1);
    leash_mutex_lock(&mu1);
    leash_mutex_unlock(&mu1);
}
static NOINLINE void mu_owner(void *x) {
    (void)x;
    leash_mutex_lock(&mu1);
    leash_go(mu_waiter, NULL); /* started while the owner lives */
    wait_step(1);
    leash_sleep(20 * MS);
    if (!leaky)
        leash_mutex_unlock(&mu1); /* the bug: an early return skips it */
}
static void shape_mutex_returned(void) { leash_go(mu_owner, NULL); }

/* ----------------------- a read lock held by a coroutine that returned */

static leash_rwmutex rw3 = LEASH_RWMUTEX_INIT;
static NOINLINE void rw3_writer(void *x) {
    (void)x;
    atomic_store(&step, 1);
    leash_rwmutex_lock(&rw3);
    leash_rwmutex_unlock(&rw3);
}
static NOINLINE void rw3_reader(void *x) {
    (void)x;
    leash_rwmutex_rlock(&rw3);
    leash_go(rw3_writer, NULL);
    wait_step(1);
    leash_sleep(20 * MS);
    if (!leaky)
        leash_rwmutex_runlock(&rw3);
}
static void shape_rlock_returned(void) { leash_go(rw3_reader, NULL); }

/* ----------------------------- waiters stuck behind a proven cycle */

static leash_mutex m1 = LEASH_MUTEX_INIT, m2 = LEASH_MUTEX_INIT;
static NOINLINE void cyc_a(void *x) {
    (void)x;
    leash_mutex_lock(&m1);
    atomic_fetch_add(&step, 1);
    wait_step(2);
    leash_mutex_lock(&m2);
    leash_mutex_unlock(&m2);
    leash_mutex_unlock(&m1);
}
static NOINLINE void cyc_b(void *x) {
    (void)x;
    leash_mutex *first = leaky ? &m2 : &m1, *second = leaky ? &m1 : &m2;
    if (!leaky) /* the fix: one lock order */
        wait_step(3);
    leash_mutex_lock(first);
    if (leaky)
        atomic_fetch_add(&step, 1);
    wait_step(2);
    leash_mutex_lock(second);
    leash_mutex_unlock(second);
    leash_mutex_unlock(first);
}
static NOINLINE void behind(void *x) {
    (void)x;
    leash_mutex_lock(&m1);
    leash_mutex_unlock(&m1);
}
static NOINLINE void cycle_starter(void *x) {
    (void)x;
    leash_go(cyc_a, NULL);
    leash_go(cyc_b, NULL);
    if (!leaky)
        atomic_fetch_add(&step, 1);
    wait_step(2);
    leash_sleep(20 * MS);
    if (!leaky)
        atomic_store(&step, 3);
    leash_go(behind, NULL);
}
static void shape_behind_cycle(void) { leash_go(cycle_starter, NULL); }

/* ------------------------- a cycle through a mutex and a channel */

static leash_mutex mc_mu = LEASH_MUTEX_INIT;
static leash_chan *mc_ch;
static NOINLINE void mc_a(void *x) {
    (void)x;
    leash_mutex_lock(&mc_mu);
    atomic_store(&step, 1);
    int v;
    leash_recv(mc_ch, &v); /* waits for b, holding the lock */
    leash_mutex_unlock(&mc_mu);
}
static NOINLINE void mc_b(void *x) {
    (void)x;
    wait_step(1);
    int v = 1;
    if (!leaky) /* the fix: send before taking the lock */
        leash_send(mc_ch, &v);
    leash_mutex_lock(&mc_mu); /* the bug: b needs the lock first */
    leash_mutex_unlock(&mc_mu);
    if (leaky)
        leash_send(mc_ch, &v);
}
static void shape_mutex_chan(void) {
    mc_ch = leash_chan_make(sizeof(int), 0);
    leash_go(mc_a, NULL, mc_ch);
    leash_go(mc_b, NULL, mc_ch);
    leash_release(mc_ch);
}

/* ------------------------------ a WaitGroup nobody will bring to 0 */

static leash_waitgroup wg1 = LEASH_WAITGROUP_INIT;
static NOINLINE void wg_worker(void *x) {
    (void)x;
    if (!leaky)
        leash_waitgroup_done(&wg1); /* the bug: an early return skips it */
}
static NOINLINE void wg_waiter(void *x) {
    (void)x;
    leash_waitgroup_add(&wg1, 1);
    leash_go(wg_worker, NULL);
    leash_waitgroup_wait(&wg1);
}
static void shape_waitgroup(void) { leash_go(wg_waiter, NULL); }

/* ------------------------------------- a Cond nobody will signal */

static leash_mutex cmu = LEASH_MUTEX_INIT;
static leash_cond cnd = LEASH_COND_INIT;
static bool ready_flag;
static NOINLINE void cond_signaler(void *x) {
    (void)x;
    leash_mutex_lock(&cmu);
    if (!leaky) { /* the bug: the state changes, nobody is told */
        ready_flag = true;
        leash_cond_signal(&cnd);
    }
    leash_mutex_unlock(&cmu);
}
static NOINLINE void cond_waiter(void *x) {
    (void)x;
    leash_mutex_lock(&cmu);
    leash_go(cond_signaler, NULL);
    while (!ready_flag)
        leash_cond_wait(&cnd, &cmu);
    leash_mutex_unlock(&cmu);
}
static void shape_cond(void) { leash_go(cond_waiter, NULL); }

/* ----------------------------------------------------------- driver */

typedef struct {
    const char *reason, *func;
} want_t;

static const struct shape {
    const char *name;
    void (*start)(void);
    bool provable; /* else: reported by leash_leak_verify only */
    int n;
    want_t want[3];
} shapes[] = {
    {"lone", shape_lone, true, 1, {{"chan receive", "lone_wait"}}},
    {"zero-items", shape_zero_items, true, 1, {{"chan receive", "gather"}}},
    {"temp-result", shape_temp_result, true, 1, {{"chan receive", "fetch"}}},
    {"send-cycle", shape_send_cycle, true, 2,
     {{"chan send", "loop_a"}, {"chan send", "loop_b"}}},
    {"both-holders", shape_both_holders, true, 2,
     {{"chan receive", "both_wait"}, {"chan receive", "both_wait"}}},
    {"select", shape_select, true, 1, {{"select", "watch"}}},
    {"ctx", shape_ctx, true, 1, {{"chan receive", "ctx_wait"}}},
    {"rw-self", shape_rw_self, true, 1,
     {{"sync.RWMutex.Lock", "rw_upgrade"}}},
    {"rw-recursive", shape_rw_recursive, true, 2,
     {{"sync.RWMutex.RLock", "rw_reader"}, {"sync.RWMutex.Lock", "rw_writer"}}},
    {"mutex-returned", shape_mutex_returned, true, 1,
     {{"sync.Mutex.Lock", "mu_waiter"}}},
    {"rlock-returned", shape_rlock_returned, true, 1,
     {{"sync.RWMutex.Lock", "rw3_writer"}}},
    {"behind-cycle", shape_behind_cycle, true, 3,
     {{"sync.Mutex.Lock", "cyc_a"}, {"sync.Mutex.Lock", "cyc_b"},
      {"sync.Mutex.Lock", "behind"}}},
    {"mutex-chan", shape_mutex_chan, true, 2,
     {{"chan receive", "mc_a"}, {"sync.Mutex.Lock", "mc_b"}}},
    {"waitgroup", shape_waitgroup, false, 1,
     {{"sync.WaitGroup.Wait", "wg_waiter"}}},
    {"cond", shape_cond, false, 1, {{"sync.Cond.Wait", "cond_waiter"}}},
};

static char *leak_text(int *count) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = leash_leak_dump(f, LEASH_DUMP_STACKS);
    fclose(f);
    *count = rc;
    return buf;
}

/* Occurrences of `goroutine N [REASON (leaked)]:\nFUNC(` in t. */
static int count_block(const char *t, const want_t *w) {
    char head[128], frame[128];
    snprintf(head, sizeof head, " [%s (leaked)", w->reason);
    snprintf(frame, sizeof frame, "]:\n%s(", w->func);
    int n = 0;
    for (const char *p = t; (p = strstr(p, head)); p++) {
        const char *e = strstr(p, "]:\n");
        if (e && !strncmp(e, frame, strlen(frame)) &&
            !memchr(p, '\n', (size_t)(e - p)))
            n++;
    }
    return n;
}

static int fail(const char *what, const char *text) {
    printf("FAIL %s\n%s\n", what, text ? text : "");
    return 1;
}

static int run_leaky(const struct shape *sh, leash_snapshot *base) {
    int64_t until = leash_now() + 10000 * MS;
    int count = 0;
    char *t = NULL;
    if (!sh->provable) {
        /* Give it time to block, then: nothing proven, verify reports. */
        while (leash_num_coroutines() != 1 && leash_now() < until)
            leash_sleep(MS);
        leash_sleep(50 * MS);
        t = leak_text(&count);
        if (count != 0)
            return fail("proven, but it cannot be soundly", t);
        free(t);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        leash_leak_opts o = {.timeout_ns = 200 * MS, .out = f};
        int n = leash_leak_verify(base, &o);
        fclose(f);
        char want[128];
        snprintf(want, sizeof want, "[%s", sh->want[0].reason);
        if (n != sh->n || !strstr(buf, want) || !strstr(buf, sh->want[0].func))
            return fail("leash_leak_verify did not report it", buf);
        free(buf);
        return 0;
    }
    for (;;) {
        free(t);
        t = leak_text(&count);
        if (count == sh->n || leash_now() > until)
            break;
        leash_sleep(2 * MS);
    }
    if (count != sh->n) {
        printf("want %d proven, got %d\n", sh->n, count);
        return fail("not proven", t);
    }
    for (int i = 0; i < sh->n; i++) {
        int want = 0;
        for (int k = 0; k < sh->n; k++)
            want += !strcmp(sh->want[k].reason, sh->want[i].reason) &&
                    !strcmp(sh->want[k].func, sh->want[i].func);
        if (count_block(t, &sh->want[i]) != want) {
            printf("want %d x [%s (leaked)] in %s\n", want,
                   sh->want[i].reason, sh->want[i].func);
            return fail("wrong wait reason or function", t);
        }
    }
    free(t);
    return 0;
}

static int run_fixed(leash_snapshot *base) {
    int64_t until = leash_now() + 10000 * MS;
    for (;;) {
        int count;
        char *t = leak_text(&count);
        if (count != 0)
            return fail("the fixed version was proven leaked", t);
        free(t);
        if (leash_num_coroutines() == 0)
            break;
        if (leash_now() > until)
            return fail("the fixed version did not finish", NULL);
        leash_sleep(MS);
    }
    leash_leak_opts o = {.timeout_ns = 100 * MS};
    int n = leash_leak_verify(base, &o);
    return n ? fail("leash_leak_verify found leaks in the fixed version", NULL)
             : 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: leakshapes SHAPE leaky|fixed\n");
        return 2;
    }
    leaky = !strcmp(argv[2], "leaky");
    const struct shape *sh = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, argv[1]))
            sh = &shapes[i];
    if (!sh) {
        fprintf(stderr, "leakshapes: no shape %s\n", argv[1]);
        return 2;
    }
    leash_snapshot *base = leash_snapshot_take();
    sh->start();
    int rc = leaky ? run_leaky(sh, base) : run_fixed(base);
    leash_snapshot_free(base);
    if (rc)
        return 1;
    printf("ok %s %s\n", argv[1], argv[2]);
    fflush(stdout);
    _Exit(0); /* the leaky coroutines stay blocked: no exit checks */
}
