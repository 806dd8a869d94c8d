/* SPDX-License-Identifier: MIT */
/*
 * stress_chan.c — channels and select under load, across all workers
 * (LEASH_PROCS: default here; one test oversubscribes with 4): many
 * producers and consumers, values tagged (producer, sequence) so that
 * every value is proven to arrive exactly once (and, on one channel, in
 * each producer's order); selects over several channels; channels closed
 * while senders and receivers are blocked, where every send either
 * succeeded — and was then received exactly once — or returned
 * LEASH_ECLOSED. Plain threads take part beside coroutines.
 *
 * Sizes shrink under ASan (/2) and TSan (/10); each test stays within a
 * few seconds on 2 cores in a normal build.
 *
 * LEASH_TEST_TIMEOUT 180
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leash.h"
#include "internal.h" /* struct leash_chan: waiter count (white-box) */

/* ------------------------------------------------------------ harness */

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#ifndef ASAN
#define ASAN 0
#endif
#ifndef TSAN
#define TSAN 0
#endif
#define SAN (ASAN || TSAN)
/* Work sizes: full in a normal build, smaller under the sanitizers. */
#define SCALE(n) ((TSAN ? (n) / 10 : ASAN ? (n) / 2 : (n)) > 0 \
                      ? (TSAN ? (n) / 10 : ASAN ? (n) / 2 : (n)) : 1)
#define TMO(s) ((double)(s) * (TSAN ? 5 : ASAN ? 3 : 1)) /* Criterion .timeout */
#define MS (1000000LL)
#define SEC (1000000000LL)

#include "chan_checks.h"

/* Watchdog on a plain thread with an OS sleep (independent of leash's
 * timers): if a test is still running long after it should have ended,
 * say where it is, dump what the test knows, and abort, rather than let
 * Criterion's timeout kill it silently. */
static const char *_Atomic g_phase = "start";
static void (*_Atomic g_dump)(void);

static void *watchdog_main(void *arg) {
    double secs = *(double *)arg;
    struct timespec ts = {(time_t)secs, 0};
    while (nanosleep(&ts, &ts) != 0)
        ;
    fprintf(stderr,
            "watchdog: test still running after %.0f s, phase '%s': "
            "a lost wake-up? %d check(s) failed so far%s%s\n",
            secs, atomic_load(&g_phase), atomic_load(&g_nfail),
            atomic_load(&g_nfail) ? "; first: " : "",
            atomic_load(&g_nfail) ? g_failmsg : "");
    void (*dump)(void) = atomic_load(&g_dump);
    if (dump)
        dump();
    fflush(stderr);
    abort();
    return NULL;
}

static void start_watchdog(void) {
    static double secs = TMO(45);
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog_main, &secs) == 0)
        pthread_detach(t);
}

static void run_main(int (*fn)(void *), void *arg) {
    start_watchdog();
#include "chan_waits.h"

/* Completion: every worker (coroutine or thread) signals `done` once.
 * Bounded: a lost wake-up fails the test (false) instead of hanging it. */
#define DONE_TIMEOUT ((int64_t)TMO(15) * SEC)
static void wait_done(leash_chan *done, int n) {
    for (int i = 0; i < n; i++) {
        leash_chan *to = leash_after(DONE_TIMEOUT);
        int64_t t;
        leash_case cs[2] = {{.ch = done, .dir = LEASH_RECV, .elem = NULL},
                            LEASH_RECV_CASE(to, &t)};
        int rc = leash_select(cs, 2);
        leash_release(to);
        if (rc != 0) {
            /* Workers still reference this test's stack: no way back. */
            note_fail(__FILE__, __LINE__, "workers never finished (hang)",
                      n - i, n);
            fprintf(stderr, "hang in phase '%s'\n", atomic_load(&g_phase));
            void (*dump)(void) = atomic_load(&g_dump);
            if (dump)
                dump();
            fflush(stderr);
            abort();
        }
    }
}

static inline uint64_t enc(int pid, int seq) {
    return ((uint64_t)(uint32_t)pid << 32) | (uint32_t)seq;
}

/* ============================================ many producers, consumers */

typedef struct mpmc mpmc;
typedef struct {
    mpmc *m;
    int id;
    pthread_t thread;
    bool is_thread;
} mpmc_worker;

struct mpmc {
    leash_chan *c, *done;
    int np, nc, per;
    _Atomic unsigned char *seen; /* np * per */
    _Atomic long received;
    mpmc_worker *w;
};

static void mpmc_producer(void *arg) {
    mpmc_worker *w = arg;
    mpmc *m = w->m;
    for (int seq = 0; seq < m->per; seq++) {
        uint64_t v = enc(w->id, seq);
        if (!CHECK_EQ(leash_send(m->c, &v), 0))
            break;
    }
    CHECK_EQ(leash_send_n(m->done, NULL, 0), 0);
}

static void mpmc_consumer(void *arg) {
    mpmc_worker *w = arg;
    mpmc *m = w->m;
    int *last = malloc(sizeof(int) * (size_t)m->np);
    if (!CHECK(last))
        return;
    for (int i = 0; i < m->np; i++)
        last[i] = -1;
    uint64_t v;
    int rc;
    long n = 0;
    while ((rc = leash_recv(m->c, &v)) == 0) {
        int pid = (int)(v >> 32), seq = (int)(uint32_t)v;
        if (!CHECK(pid >= 0 && pid < m->np && seq >= 0 && seq < m->per))
            continue;
        /* One channel is FIFO: a consumer sees each producer in order. */
        if (seq <= last[pid])
            note_fail(__FILE__, __LINE__, "producer order broken", seq,
                      last[pid]);
        last[pid] = seq;
        if (atomic_fetch_add(&m->seen[(size_t)pid * m->per + seq], 1) != 0)
            note_fail(__FILE__, __LINE__, "value received twice", pid, seq);
        n++;
    }
    CHECK_EQ(rc, LEASH_ECLOSED);
    CHECK_EQ(v, 0); /* zeroed on close */
    atomic_fetch_add(&m->received, n);
    free(last);
    CHECK_EQ(leash_send_n(m->done, NULL, 0), 0);
}

/* np producers and nc consumers, the first `thr` of each on threads. */
static void mpmc_run(size_t cap, int np, int nc, int per, int thr) {
    atomic_store(&g_phase, "mpmc");
    mpmc m = {.c = leash_chan_make(sizeof(uint64_t), cap),
              .done = leash_chan_make(0, (size_t)(np + nc)),
              .np = np, .nc = nc, .per = per};
    if (!CHECK(m.c && m.done))
        return;
    size_t total = (size_t)np * (size_t)per;
    m.seen = calloc(total, 1);
    m.w = calloc((size_t)(np + nc), sizeof *m.w);
    if (!CHECK(m.seen && m.w))
        return;
    for (int i = 0; i < nc; i++) {
        mpmc_worker *w = &m.w[np + i];
        *w = (mpmc_worker){&m, i, 0, i < thr};
        if (w->is_thread)
            w->thread = thread_go(mpmc_consumer, w);
        else
            go_ok(leash_go(mpmc_consumer, w, m.c, m.done));
    }
    for (int i = 0; i < np; i++) {
        mpmc_worker *w = &m.w[i];
        *w = (mpmc_worker){&m, i, 0, i < thr};
        if (w->is_thread)
            w->thread = thread_go(mpmc_producer, w);
        else
            go_ok(leash_go(mpmc_producer, w, m.c, m.done));
    }
    wait_done(m.done, np);
    CHECK_EQ(leash_close(m.c), 0);
    wait_done(m.done, nc);
    for (int i = 0; i < np + nc; i++)
        if (m.w[i].is_thread)
            pthread_join(m.w[i].thread, NULL);
    CHECK_EQ(atomic_load(&m.received), (long)total);
    size_t bad = 0;
    for (size_t i = 0; i < total; i++)
        bad += atomic_load(&m.seen[i]) != 1;
    CHECK_EQ(bad, 0);
    CHECK_EQ(leash_chan_len(m.c), 0);
    leash_release(m.c);
    leash_release(m.done);
    free((void *)m.seen);
    free(m.w);
}

static int mpmc_main(void *arg) {
    size_t cap = (size_t)(uintptr_t)arg;
    /* Coroutines only, then with threads on both sides; more producers
     * than consumers and the other way round. */
    mpmc_run(cap, 8, 8, SCALE(120000), 0);
    mpmc_run(cap, 6, 3, SCALE(80000), 2);
    mpmc_run(cap, 2, 10, SCALE(160000), 1);
    return 0;
}

Test(stress_chan, mpmc_unbuffered, .timeout = TMO(60)) {
    run_main(mpmc_main, (void *)(uintptr_t)0);
}

Test(stress_chan, mpmc_buffered_cap1, .timeout = TMO(60)) {
    run_main(mpmc_main, (void *)(uintptr_t)1);
}

Test(stress_chan, mpmc_buffered_cap64, .timeout = TMO(60)) {
    run_main(mpmc_main, (void *)(uintptr_t)64);
}

/* Orchestrated from the test's own thread (a foreign thread). */
Test(stress_chan, mpmc_from_plain_thread, .timeout = TMO(60)) {
    start_watchdog();
    mpmc_run(0, 4, 4, SCALE(100000), 2);
    mpmc_run(16, 4, 4, SCALE(100000), 2);
    finish();
}

/* =========================================== selects over several chans */

#define SK 4

typedef struct sel_fan sel_fan;
typedef struct {
    sel_fan *f;
    int id;
    int mode;
    pthread_t thread;
    bool is_thread;
} fan_worker;

struct sel_fan {
    leash_chan *c[SK], *done;
    /* Workers hold a reference to every channel (coroutines handed them
     * by leash_go, threads retaining them): their selects then take the
     * fast pass (select.c), which a borrower's skip. */
    bool hold;
    int np, per;
    _Atomic unsigned char *seen;
    _Atomic long received;
};

/* mode 0: select over all SK send cases; 1: plain send on a rotating
 * channel; 2: select with NULL cases mixed in. */
/* A thread worker of a `hold` run takes (and at the end drops) its own
 * references; a coroutine's were handed by leash_go. */
static void fan_hold(fan_worker *w, bool take) {
    if (!w->f->hold || !w->is_thread)
        return;
    for (int k = 0; k < SK; k++)
        if (take)
            CHECK(leash_retain(w->f->c[k]) != NULL);
        else
            leash_release(w->f->c[k]);
}

static void fan_producer(void *arg) {
    fan_worker *w = arg;
    sel_fan *f = w->f;
    fan_hold(w, true);
    for (int seq = 0; seq < f->per; seq++) {
        uint64_t v = enc(w->id, seq);
        if (w->mode == 1) {
            if (!CHECK_EQ(leash_send(f->c[seq % SK], &v), 0))
                break;
            continue;
        }
        leash_case cs[2 * SK];
        int n = 0;
        for (int k = 0; k < SK; k++) {
            if (w->mode == 2)
                cs[n++] = LEASH_SEND_CASE((leash_chan *)NULL, &v);
            cs[n++] = LEASH_SEND_CASE(f->c[k], &v);
        }
        int rc = leash_select(cs, (size_t)n);
        if (!CHECK(rc >= 0 && rc < n && cs[rc].ch != NULL))
            break;
    }
    fan_hold(w, false);
    CHECK_EQ(leash_send_n(f->done, NULL, 0), 0);
}

static void fan_record(sel_fan *f, uint64_t v, long *n) {
    int pid = (int)(v >> 32), seq = (int)(uint32_t)v;
    if (!CHECK(pid >= 0 && pid < f->np && seq >= 0 && seq < f->per))
        return;
    if (atomic_fetch_add(&f->seen[(size_t)pid * f->per + seq], 1) != 0)
        note_fail(__FILE__, __LINE__, "value received twice", pid, seq);
    (*n)++;
}

/* mode 0: blocking select, closed channels dropped (set to NULL) until
 * none is left; 1: try_select with yields; 2: plain receive on one
 * channel (id % SK) until it is closed. */
static void fan_consumer(void *arg) {
    fan_worker *w = arg;
    sel_fan *f = w->f;
    long n = 0;
    fan_hold(w, true);
    if (w->mode == 2) {
        uint64_t v;
        int rc;
        while ((rc = leash_recv(f->c[w->id % SK], &v)) == 0)
            fan_record(f, v, &n);
        CHECK_EQ(rc, LEASH_ECLOSED);
    } else {
        uint64_t vals[SK];
        leash_case cs[SK];
        int open = SK;
        for (int k = 0; k < SK; k++)
            cs[k] = LEASH_RECV_CASE(f->c[k], &vals[k]);
        while (open > 0) {
            int rc = w->mode == 0 ? leash_select(cs, SK)
                                  : leash_try_select(cs, SK);
            if (rc == LEASH_EAGAIN && w->mode == 1) {
                leash_yield();
                continue;
            }
            if (!CHECK(rc >= 0 && rc < SK))
                break;
            if (cs[rc].ok) {
                fan_record(f, vals[rc], &n);
            } else {
                CHECK_EQ(vals[rc], 0);
                cs[rc].ch = NULL; /* closed: never ready again */
                open--;
            }
        }
    }
    fan_hold(w, false);
    atomic_fetch_add(&f->received, n);
    CHECK_EQ(leash_send_n(f->done, NULL, 0), 0);
}

static int64_t fan_go(void (*fn)(void *), fan_worker *x) {
    sel_fan *f = x->f;
    return f->hold ? leash_go(fn, x, f->c[0], f->c[1], f->c[2], f->c[3])
                   : leash_go(fn, x);
}

static void fan_run(const size_t caps[SK], int np, int nc, int per, int thr,
                    bool hold) {
    _Static_assert(SK == 4, "fan_go hands SK channels");
    atomic_store(&g_phase, hold ? "select fan-in/fan-out (held: fast pass)"
                                : "select fan-in/fan-out");
    sel_fan f = {.done = leash_chan_make(0, (size_t)(np + nc)), .hold = hold,
                 .np = np, .per = per};
    for (int k = 0; k < SK; k++)
        f.c[k] = leash_chan_make(sizeof(uint64_t), caps[k]);
    size_t total = (size_t)np * (size_t)per;
    f.seen = calloc(total, 1);
    fan_worker *w = calloc((size_t)(np + nc), sizeof *w);
    if (!CHECK(f.seen && w))
        return;
    for (int i = 0; i < nc; i++) {
        fan_worker *x = &w[np + i];
        *x = (fan_worker){&f, i, i % 3, 0, i < thr};
        if (x->is_thread)
            x->thread = thread_go(fan_consumer, x);
        else
            go_ok(fan_go(fan_consumer, x));
    }
    for (int i = 0; i < np; i++) {
        fan_worker *x = &w[i];
        *x = (fan_worker){&f, i, i % 3, 0, i < thr};
        if (x->is_thread)
            x->thread = thread_go(fan_producer, x);
        else
            go_ok(fan_go(fan_producer, x));
    }
    wait_done(f.done, np);
    for (int k = 0; k < SK; k++)
        CHECK_EQ(leash_close(f.c[k]), 0);
    wait_done(f.done, nc);
    for (int i = 0; i < np + nc; i++)
        if (w[i].is_thread)
            pthread_join(w[i].thread, NULL);
    CHECK_EQ(atomic_load(&f.received), (long)total);
    size_t bad = 0;
    for (size_t i = 0; i < total; i++)
        bad += atomic_load(&f.seen[i]) != 1;
    CHECK_EQ(bad, 0);
    for (int k = 0; k < SK; k++)
        leash_release(f.c[k]);
    leash_release(f.done);
    free((void *)f.seen);
    free(w);
}

static int fan_main(void *arg) {
    (void)arg;
    static const size_t unbuf[SK] = {0, 0, 0, 0};
    static const size_t mixed[SK] = {0, 1, 8, 0};
    fan_run(unbuf, 6, 6, SCALE(50000), 0, false);
    fan_run(mixed, 6, 6, SCALE(50000), 0, false);
    fan_run(mixed, 5, 7, SCALE(40000), 2, false);
    /* The same with every worker holding the channels: their selects
     * try each case under its own lock first (select.c's fast pass). */
    fan_run(unbuf, 6, 6, SCALE(50000), 0, true);
    fan_run(mixed, 5, 7, SCALE(40000), 2, true);
    return 0;
}

Test(stress_chan, select_fan_in_fan_out, .timeout = TMO(60)) {
    run_main(fan_main, NULL);
}

/* ========================================== close while ops are blocked */

typedef struct cl_round cl_round;
typedef struct {
    cl_round *r;
    int id;
    int mode; /* 0 plain, 1 select (with an idle case), 2 try + yield */
    pthread_t thread;
    bool is_thread;
    _Atomic int stage; /* 0 started, 1 in an operation, 2 finished */
    _Atomic int nops;  /* completed operations */
} cl_worker;

#define CL_MAXSEQ 2000

struct cl_round {
    leash_chan *c, *idle, *done;
    int ns, nr;
    int limit;      /* values each sender tries (<= CL_MAXSEQ) */
    int recv_delay; /* µs the receivers wait before starting */
    _Atomic unsigned char *sent, *got;
    _Atomic long nsent, ngot;
};

static void cl_sender(void *arg) {
    cl_worker *w = arg;
    cl_round *r = w->r;
    int rc = 0, seq;
    for (seq = 0; seq < r->limit; seq++) {
        uint64_t v = enc(w->id, seq);
        atomic_store(&w->stage, 1);
        if (w->mode == 0) {
            rc = leash_send(r->c, &v);
        } else if (w->mode == 1) {
            uint64_t d;
            leash_case cs[2] = {LEASH_RECV_CASE(r->idle, &d),
                                LEASH_SEND_CASE(r->c, &v)};
            rc = leash_select(cs, 2);
            if (rc == 1)
                rc = 0;
            else if (rc == 0)
                note_fail(__FILE__, __LINE__, "idle case fired", rc, 0);
        } else {
            while ((rc = leash_try_send(r->c, &v)) == LEASH_EAGAIN)
                leash_yield();
        }
        atomic_store(&w->stage, 0);
        if (rc != 0)
            break;
        atomic_store(&r->sent[(size_t)w->id * CL_MAXSEQ + seq], 1);
        atomic_fetch_add(&r->nsent, 1);
        atomic_fetch_add(&w->nops, 1);
    }
    if (seq < r->limit)
        CHECK_EQ(rc, LEASH_ECLOSED);
    atomic_store(&w->stage, 2);
    CHECK_EQ(leash_send_n(r->done, NULL, 0), 0);
}

static void cl_receiver(void *arg) {
    cl_worker *w = arg;
    cl_round *r = w->r;
    if (r->recv_delay)
        leash_sleep(r->recv_delay * 1000LL);
    for (;;) {
        uint64_t v = 0xdeadbeef;
        int rc, ok;
        atomic_store(&w->stage, 1);
        if (w->mode == 0) {
            rc = leash_recv(r->c, &v);
            ok = rc == 0;
        } else if (w->mode == 1) {
            uint64_t d;
            leash_case cs[2] = {LEASH_RECV_CASE(r->c, &v),
                                LEASH_RECV_CASE(r->idle, &d)};
            rc = leash_select(cs, 2);
            CHECK_EQ(rc, 0);
            ok = cs[0].ok;
        } else {
            while ((rc = leash_try_recv(r->c, &v)) == LEASH_EAGAIN)
                leash_yield();
            ok = rc == 0;
            if (!ok)
                CHECK_EQ(rc, LEASH_ECLOSED);
        }
        atomic_store(&w->stage, 0);
        if (!ok) {
            CHECK_EQ(v, 0);
            break;
        }
        atomic_fetch_add(&w->nops, 1);
        int pid = (int)(v >> 32), seq = (int)(uint32_t)v;
        if (!CHECK(pid >= 0 && pid < r->ns && seq >= 0 && seq < r->limit))
            continue;
        if (atomic_fetch_add(&r->got[(size_t)pid * CL_MAXSEQ + seq], 1))
            note_fail(__FILE__, __LINE__, "value received twice", pid, seq);
        atomic_fetch_add(&r->ngot, 1);
    }
    atomic_store(&w->stage, 2);
    CHECK_EQ(leash_send_n(r->done, NULL, 0), 0);
}

static uint32_t rng_next(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* The round in progress, for the watchdog's dump. */
static struct {
    cl_round *_Atomic r;
    cl_worker *w;
    int nw, round;
} g_cl;

static void cl_dump(void) {
    cl_round *r = atomic_load(&g_cl.r);
    if (!r)
        return;
    cl_worker *w = g_cl.w;
    fprintf(stderr,
            "close round %d: cap %d, %d senders, %d receivers, limit %d, "
            "receiver delay %d us, sent %ld, received %ld, len %d, "
            "waiters %d\n",
            g_cl.round, leash_chan_cap(r->c), r->ns, r->nr, r->limit,
            r->recv_delay, atomic_load(&r->nsent), atomic_load(&r->ngot),
            leash_chan_len(r->c), chan_waiters(r->c));
    for (int i = 0; i < g_cl.nw; i++)
        fprintf(stderr, "  %s %d: %s, mode %d, stage %d, %d ops\n",
                i < r->ns ? "sender" : "receiver", w[i].id,
                w[i].is_thread ? "thread" : "coroutine", w[i].mode,
                atomic_load(&w[i].stage), atomic_load(&w[i].nops));
}

static void cl_one_round(int round, uint32_t *rng, bool use_threads) {
    static const size_t caps[] = {0, 1, 16};
    cl_round r = {.c = leash_chan_make(sizeof(uint64_t),
                                       caps[rng_next(rng) % 3]),
                  .idle = leash_chan_make(sizeof(uint64_t), 0),
                  .ns = 1 + (int)(rng_next(rng) % 5),
                  .nr = 1 + (int)(rng_next(rng) % 4)};
    r.done = leash_chan_make(0, (size_t)(r.ns + r.nr));
    /* Kinds of rounds: senders blocked at close (slow receivers),
     * receivers blocked at close (few values), or a race. */
    int kind = (int)(rng_next(rng) % 3);
    r.limit = kind == 1 ? 1 + (int)(rng_next(rng) % 8) : CL_MAXSEQ;
    r.recv_delay = kind == 0 ? 500 : 0;
    size_t slots = (size_t)r.ns * CL_MAXSEQ;
    r.sent = calloc(slots, 1);
    r.got = calloc(slots, 1);
    cl_worker w[16];
    if (!CHECK(r.sent && r.got))
        return;
    int nw = 0;
    for (int i = 0; i < r.ns + r.nr; i++) {
        cl_worker *x = &w[nw++];
        bool sender = i < r.ns;
        *x = (cl_worker){&r, sender ? i : i - r.ns,
                         (int)(rng_next(rng) % 3), 0,
                         use_threads && rng_next(rng) % 4 == 0, 0, 0};
        void (*fn)(void *) = sender ? cl_sender : cl_receiver;
        if (x->is_thread)
            x->thread = thread_go(fn, x);
        else
            go_ok(leash_go(fn, x));
    }
    g_cl.w = w;
    g_cl.nw = nw;
    g_cl.round = round;
    atomic_store(&g_cl.r, &r);
    atomic_store(&g_dump, cl_dump);
    atomic_store(&g_phase, "close round: before close");
    /* Close after a random moment: at once, after some traffic, or once
     * the senders are likely parked. */
    switch (rng_next(rng) % 4) {
    case 0:
        break;
    case 1:
        for (int i = (int)(rng_next(rng) % 50); i > 0; i--)
            leash_yield();
        break;
    case 2:
        WAIT_UNTIL(atomic_load(&r.ngot) >= (long)(rng_next(rng) % 200), 2);
        break;
    default:
        leash_sleep((int64_t)(rng_next(rng) % 2000) * 1000);
        break;
    }
    CHECK_EQ(leash_close(r.c), 0);
    atomic_store(&g_phase, "close round: waiting for senders/receivers");
    wait_done(r.done, r.ns + r.nr);
    for (int i = 0; i < nw; i++)
        if (w[i].is_thread)
            pthread_join(w[i].thread, NULL);
    /* Exactly the successful sends were received, once each; each
     * sender's successes are a prefix of its sequence. */
    CHECK_EQ(atomic_load(&r.ngot), atomic_load(&r.nsent));
    size_t mismatch = 0;
    for (size_t i = 0; i < slots; i++)
        mismatch += atomic_load(&r.sent[i]) != atomic_load(&r.got[i]);
    if (!CHECK_EQ(mismatch, 0))
        fprintf(stderr, "close round %d: %zu values differ\n", round,
                mismatch);
    for (int s = 0; s < r.ns; s++) {
        bool gap = false;
        for (int q = 0; q < r.limit; q++) {
            bool ok = atomic_load(&r.sent[(size_t)s * CL_MAXSEQ + q]);
            if (ok && gap)
                note_fail(__FILE__, __LINE__, "send succeeded after ECLOSED",
                          s, q);
            gap |= !ok;
        }
    }
    CHECK_EQ(leash_chan_len(r.c), 0);
    CHECK_EQ(chan_waiters(r.c), 0);
    CHECK_EQ(chan_waiters(r.idle), 0);
    atomic_store(&g_dump, NULL);
    atomic_store(&g_cl.r, NULL);
    leash_release(r.c);
    leash_release(r.idle);
    leash_release(r.done);
    free((void *)r.sent);
    free((void *)r.got);
}

static int close_main(void *arg) {
    int rounds = (int)(intptr_t)arg;
    uint32_t rng = 0x9e3779b9u;
    for (int i = 0; i < rounds; i++) {
        cl_one_round(i, &rng, i % 2 == 1);
        if (atomic_load(&g_nfail))
            break;
    }
    return 0;
}

Test(stress_chan, close_while_blocked, .timeout = TMO(60)) {
    run_main(close_main, (void *)(intptr_t)SCALE(1000));
}

/* ================================================ select with timeouts */

typedef struct {
    leash_chan *c, *done;
    int np, per;
    _Atomic unsigned char *seen;
    _Atomic long received, timeouts;
} to_state;

typedef struct {
    to_state *s;
    int id;
} to_worker;

static void to_producer(void *arg) {
    to_worker *w = arg;
    to_state *s = w->s;
    for (int seq = 0; seq < s->per; seq++) {
        if (seq % 64 == 63)
            leash_sleep(300 * 1000); /* let the timeouts fire */
        uint64_t v = enc(w->id, seq);
        if (!CHECK_EQ(leash_send(s->c, &v), 0))
            break;
    }
    CHECK_EQ(leash_send_n(s->done, NULL, 0), 0);
}

/* Receives with a fresh leash_after per attempt; a timeout must never
 * eat a value. Stops when the channel is closed. */
static void to_consumer(void *arg) {
    to_worker *w = arg;
    to_state *s = w->s;
    for (;;) {
        uint64_t v = 0;
        int64_t t = 0;
        leash_chan *to = leash_after(100 * 1000);
        if (!CHECK(to))
            break;
        leash_case cs[2] = {LEASH_RECV_CASE(s->c, &v),
                            LEASH_RECV_CASE(to, &t)};
        int rc = leash_select(cs, 2);
        leash_release(to);
        if (rc == 1) {
            CHECK(t > 0);
            atomic_fetch_add(&s->timeouts, 1);
            continue;
        }
        if (!CHECK_EQ(rc, 0) || !cs[0].ok)
            break;
        int pid = (int)(v >> 32), seq = (int)(uint32_t)v;
        if (!CHECK(pid >= 0 && pid < s->np && seq >= 0 && seq < s->per))
            continue;
        if (atomic_fetch_add(&s->seen[(size_t)pid * s->per + seq], 1))
            note_fail(__FILE__, __LINE__, "value received twice", pid, seq);
        atomic_fetch_add(&s->received, 1);
    }
    CHECK_EQ(leash_send_n(s->done, NULL, 0), 0);
}

static int timeout_main(void *arg) {
    (void)arg;
    atomic_store(&g_phase, "select with timeouts");
    enum { NP = 4, NC = 4 };
    for (size_t cap = 0; cap <= 4; cap += 4) {
        to_state s = {.c = leash_chan_make(sizeof(uint64_t), cap),
                      .done = leash_chan_make(0, NP + NC), .np = NP,
                      .per = SCALE(30000)};
        size_t total = (size_t)NP * (size_t)s.per;
        s.seen = calloc(total, 1);
        to_worker w[NP + NC];
        for (int i = 0; i < NC; i++) {
            w[NP + i] = (to_worker){&s, i};
            go_ok(leash_go(to_consumer, &w[NP + i]));
        }
        for (int i = 0; i < NP; i++) {
            w[i] = (to_worker){&s, i};
            go_ok(leash_go(to_producer, &w[i]));
        }
        wait_done(s.done, NP);
        CHECK_EQ(leash_close(s.c), 0);
        wait_done(s.done, NC);
        CHECK_EQ(atomic_load(&s.received), (long)total);
        size_t bad = 0;
        for (size_t i = 0; i < total; i++)
            bad += atomic_load(&s.seen[i]) != 1;
        CHECK_EQ(bad, 0);
        fprintf(stderr, "select timeouts (cap %zu): %ld timeouts, %zu values\n",
                cap, atomic_load(&s.timeouts), total);
        leash_release(s.c);
        leash_release(s.done);
        free((void *)s.seen);
    }
    return 0;
}

Test(stress_chan, select_timeouts_lose_nothing, .timeout = TMO(60)) {
    run_main(timeout_main, NULL);
}

/* ================================================== ping-pong pairs */

typedef struct {
    leash_chan *ping, *pong, *done;
    int rounds;
} pp_pair;

static void pp_ponger(void *arg) {
    pp_pair *p = arg;
    long v;
    int rc;
    while ((rc = leash_recv(p->ping, &v)) == 0)
        if (!CHECK_EQ(leash_send(p->pong, &v), 0))
            break;
    CHECK_EQ(rc, LEASH_ECLOSED);
}

static void pp_pinger(void *arg) {
    pp_pair *p = arg;
    for (long i = 0; i < p->rounds; i++) {
        long v = i * 3, r = -1;
        /* Alternate plain ops and selects. */
        if (i & 1) {
            leash_case s = LEASH_SEND_CASE(p->ping, &v);
            CHECK_EQ(leash_select(&s, 1), 0);
        } else {
            CHECK_EQ(leash_send(p->ping, &v), 0);
        }
        CHECK_EQ(leash_recv(p->pong, &r), 0);
        if (!CHECK_EQ(r, i * 3))
            break;
    }
    CHECK_EQ(leash_close(p->ping), 0);
    CHECK_EQ(leash_send_n(p->done, NULL, 0), 0);
}

static int pairs_main(void *arg) {
    (void)arg;
    atomic_store(&g_phase, "ping-pong pairs");
    enum { NPAIRS = 64 };
    static pp_pair pairs[NPAIRS];
    leash_chan *done = leash_chan_make(0, NPAIRS);
    for (int i = 0; i < NPAIRS; i++) {
        pairs[i] = (pp_pair){leash_chan_make(sizeof(long), 0),
                             leash_chan_make(sizeof(long), (size_t)(i % 2)),
                             /* TSan: 64 x 20,000 round trips took 24 s */
                             done, TSAN ? 5000 : SCALE(200000)};
        go_ok(leash_go(pp_ponger, &pairs[i], pairs[i].ping, pairs[i].pong));
        go_ok(leash_go(pp_pinger, &pairs[i], pairs[i].ping, pairs[i].pong,
                       done));
    }
    wait_done(done, NPAIRS);
    CHECK(WAIT_UNTIL(leash_num_coroutines() == 1, 30));
    for (int i = 0; i < NPAIRS; i++) {
        leash_release(pairs[i].ping);
        leash_release(pairs[i].pong);
    }
    leash_release(done);
    return 0;
}

Test(stress_chan, independent_ping_pong_pairs, .timeout = TMO(60)) {
    run_main(pairs_main, NULL);
}

/* ===================================================== oversubscribed */

static int oversub_main(void *arg) {
    (void)arg;
    CHECK_EQ(leash_num_workers(), 4);
    static const size_t mixed[SK] = {0, 1, 8, 0};
    mpmc_run(0, 6, 6, SCALE(60000), 2);
    mpmc_run(4, 6, 6, SCALE(60000), 0);
    fan_run(mixed, 6, 6, SCALE(40000), 2, false);
    fan_run(mixed, 6, 6, SCALE(20000), 2, true);
    uint32_t rng = 0x12345679u;
    for (int i = 0; i < SCALE(400) && !atomic_load(&g_nfail); i++)
        cl_one_round(i, &rng, i % 3 == 0);
    return 0;
}

Test(stress_chan, oversubscribed_four_workers, .timeout = TMO(90)) {
    /* Each test runs in its own process and the runtime starts lazily:
     * this sets the number of workers for this test only. */
    setenv("LEASH_PROCS", "4", 1);
    run_main(oversub_main, NULL);
}
