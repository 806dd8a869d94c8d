/* SPDX-License-Identifier: MIT */
/*
 * falseproof.c — testprog_falseproof PATTERN [N]: legal borrowing that a
 * leak proof must never break (tests/test_falseproof.c runs it under
 * LEASH_ORPHANS=wake at several LEASH_PROCS).
 *
 * Each pattern runs N instances (default 200), BATCH at a time. In every
 * one, a coroutine waits on a channel whose only reference it holds, the
 * other holders release theirs, and a coroutine that holds none delivers
 * the value later. A wrong proof shows as LEASH_EORPHANED for the waiter
 * and then LEASH_EINVAL for the borrower (the channel is gone).
 *
 *   arg    holder A lends the channel to a worker through its argument
 *          (leash_go(worker, &job)) and waits; B releases before the
 *          worker, asleep, has touched it (issue 14's false proof);
 *   global an unrelated coroutine, started before the channel existed,
 *          finds it in a global later;
 *   reply  a request carries its reply channel through a buffered queue
 *          to a server that answers after a while;
 *   table  a finder started before the channels scans a table of them;
 *   lender a lender hands a borrower the channel, releases its own
 *          reference and returns while the borrower sleeps;
 *   late-reply
 *          as reply, but the server is started by main after it released
 *          the reply channel: the request waits in the queue's buffer;
 *   back   main releases the channel, then gets it back in a message from
 *          the waiter (through a buffered channel) and sends on it;
 *   own    nothing is released: the waiter makes its own channel, puts
 *          it in a global and waits; a finder started before it sends.
 *
 * Prints "ok PATTERN N" and exits 0 when every operation succeeded, every
 * value arrived and nothing was proven orphaned; else "FAIL ..." lines and
 * exit 1.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leash.h"

#define MS 1000000LL
#define BATCH 20
#define BORROWER_SLEEP (3 * MS) /* long enough for a proof to be acted on */
/* Patterns whose waiter would be proven only if it is the one coroutine
 * stuck (other instances' waiters, blocked on live channels, could act)
 * run one instance at a time, with a shorter sleep. */
#define LONE_SLEEP (MS / 2)

extern _Atomic int64_t orphans_total; /* the runtime's counter */

static _Atomic int failures;
static _Atomic int64_t sum_got, sum_want;
static leash_waitgroup wg = LEASH_WAITGROUP_INIT;

static void check_rc(const char *who, int slot, int rc) {
    if (rc == 0)
        return;
    if (atomic_fetch_add(&failures, 1) < 10)
        printf("FAIL %s (instance %d): %s\n", who, slot, leash_strerror(rc));
}

/* Per instance: its channel (for the waiter, and where a pattern lends it
 * through shared memory) and a job for argument borrowers. */
typedef struct {
    leash_chan *ch;
    int slot;
} job_t;
static leash_chan *_Atomic chans[BATCH];
static job_t jobs[BATCH];

/* A value unique to the instance; every delivered one is summed. */
static int value_of(int slot) { return slot * 7 + 1; }

/* The waiter of every pattern: receives one value on its channel. */
static void waiter(void *arg) {
    int slot = (int)(intptr_t)arg;
    int v = -1;
    check_rc("waiter recv", slot, leash_recv(atomic_load(&chans[slot]), &v));
    atomic_fetch_add(&sum_got, v);
    leash_waitgroup_done(&wg);
}

/* Sleeps, then sends the instance's value on the channel it borrows. */
static void borrower(void *arg) {
    job_t *j = arg; /* may be gone once the value is taken: copy it */
    int slot = j->slot;
    leash_chan *ch = j->ch;
    leash_sleep(BORROWER_SLEEP);
    int v = value_of(slot);
    check_rc("borrower send", slot, leash_send(ch, &v));
    leash_waitgroup_done(&wg);
}

/* ------------------------------------------------------------ arg */

/* Holder A: lends its channel to a worker, no reference handed, and
 * waits on it (the job lives on A's stack until the value arrives). */
static void holder_lends(void *arg) {
    int slot = (int)(intptr_t)arg;
    job_t job = {atomic_load(&chans[slot]), slot};
    leash_go(borrower, &job);
    int v = -1;
    check_rc("holder recv", slot, leash_recv(job.ch, &v));
    atomic_fetch_add(&sum_got, v);
    leash_waitgroup_done(&wg);
}

static void start_arg(int slot, leash_chan *ch) {
    leash_waitgroup_add(&wg, 2);
    leash_go(holder_lends, (void *)(intptr_t)slot, ch);
}

/* --------------------------------------------------------- global */

static void finder_one(void *arg) {
    int slot = (int)(intptr_t)arg;
    leash_sleep(BORROWER_SLEEP);
    jobs[slot] = (job_t){atomic_load(&chans[slot]), slot};
    int v = value_of(slot);
    check_rc("global send", slot, leash_send(jobs[slot].ch, &v));
    leash_waitgroup_done(&wg);
}

/* The finder starts before the channel exists: it is no descendant of
 * a holder, and finds the channel in chans[] (a global) later. */
static void before_global(int slot) {
    leash_waitgroup_add(&wg, 1);
    leash_go(finder_one, (void *)(intptr_t)slot);
}

static void start_waiter(int slot, leash_chan *ch) {
    leash_waitgroup_add(&wg, 1);
    leash_go(waiter, (void *)(intptr_t)slot, ch);
}

/* ---------------------------------------------------------- reply */

typedef struct {
    leash_chan *reply;
    int v;
    int slot;
} request;
static leash_chan *queue; /* buffered; the server holds it */

static void serve(const request *rq) {
    leash_sleep(MS / 2); /* the clients block on their replies */
    check_rc("server reply", rq->slot, leash_send(rq->reply, &rq->v));
}

static void server(void *arg) {
    (void)arg;
    request rq;
    while (leash_recv(queue, &rq) == 0)
        serve(&rq);
}

/* Serves one request (late-reply): started after the reply's release
 * and once the client waits on it. */
static void server_one(void *arg) {
    (void)arg;
    request rq;
    check_rc("late server recv", -1, leash_recv(queue, &rq));
    serve(&rq);
    leash_waitgroup_done(&wg);
}

static void batch_end_reply(int n) {
    leash_sleep(LONE_SLEEP);
    for (int i = 0; i < n; i++) {
        leash_waitgroup_add(&wg, 1);
        leash_go(server_one, NULL);
    }
}

static void client(void *arg) {
    int slot = (int)(intptr_t)arg;
    request rq = {atomic_load(&chans[slot]), value_of(slot), slot};
    check_rc("client request", slot, leash_send(queue, &rq));
    int v = -1;
    check_rc("client recv", slot, leash_recv(rq.reply, &v));
    atomic_fetch_add(&sum_got, v);
    leash_waitgroup_done(&wg);
}

static void start_reply(int slot, leash_chan *ch) {
    leash_waitgroup_add(&wg, 1);
    leash_go(client, (void *)(intptr_t)slot, ch);
}

/* ---------------------------------------------------------- table */

static leash_chan *_Atomic table[BATCH];
static int table_n; /* instances of this batch */

/* Started before the batch's channels: takes each from the table. */
static void table_finder(void *arg) {
    (void)arg;
    leash_sleep(BORROWER_SLEEP);
    int left = table_n;
    while (left > 0) {
        for (int i = 0; i < BATCH; i++) {
            leash_chan *ch = atomic_exchange(&table[i], NULL);
            if (!ch)
                continue;
            int v = value_of(i);
            check_rc("table send", i, leash_send(ch, &v));
            left--;
        }
        leash_yield();
    }
    leash_waitgroup_done(&wg);
}

static void batch_table(int n) {
    table_n = n;
    leash_waitgroup_add(&wg, 1);
    leash_go(table_finder, NULL);
}

static void start_table(int slot, leash_chan *ch) {
    atomic_store(&table[slot], ch);
    start_waiter(slot, ch);
}

/* --------------------------------------------------------- lender */

/* Hands the borrower the channel, releases its own reference and returns
 * while the borrower sleeps (the waiter still holds one). */
static void lender(void *arg) {
    int slot = (int)(intptr_t)arg;
    jobs[slot] = (job_t){atomic_load(&chans[slot]), slot};
    leash_go(borrower, &jobs[slot]);
    leash_release(jobs[slot].ch);
}

static void start_lender(int slot, leash_chan *ch) {
    leash_waitgroup_add(&wg, 1); /* the borrower */
    start_waiter(slot, ch);
    leash_go(lender, (void *)(intptr_t)slot, ch);
}

/* ----------------------------------------------------------- back */

static leash_chan *mailbox; /* buffered: the waiters post their channels */

/* Posts its channel to main, which released its own reference, then
 * waits on it. */
static void poster(void *arg) {
    int slot = (int)(intptr_t)arg;
    job_t j = {atomic_load(&chans[slot]), slot};
    check_rc("post", slot, leash_send(mailbox, &j));
    int v = -1;
    check_rc("poster recv", slot, leash_recv(j.ch, &v));
    atomic_fetch_add(&sum_got, v);
    leash_waitgroup_done(&wg);
}

static void start_back(int slot, leash_chan *ch) {
    leash_waitgroup_add(&wg, 1);
    leash_go(poster, (void *)(intptr_t)slot, ch);
}

/* After the batch: main takes each channel back and sends on it. */
static void batch_end_back(int n) {
    leash_sleep(LONE_SLEEP);
    for (int i = 0; i < n; i++) {
        job_t j;
        check_rc("mailbox recv", -1, leash_recv(mailbox, &j));
        int v = value_of(j.slot);
        check_rc("send back", j.slot, leash_send(j.ch, &v));
    }
}

/* ------------------------------------------------------------ own */

/* Nothing is ever released: the waiter makes its own channel (its only
 * holder), publishes it in a global and waits; a finder started before
 * it finds it there later. The park of the lone holder must not prove
 * it (chan.c's park proof). */
static leash_chan *_Atomic own_chans[BATCH];

static void own_finder(void *arg) {
    int slot = (int)(intptr_t)arg;
    leash_sleep(BORROWER_SLEEP);
    leash_chan *ch;
    while (!(ch = atomic_load(&own_chans[slot])))
        leash_sleep(MS / 10);
    int v = value_of(slot);
    check_rc("own send", slot, leash_send(ch, &v));
    leash_waitgroup_done(&wg);
}

static void own_waiter(void *arg) {
    int slot = (int)(intptr_t)arg;
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    atomic_store(&own_chans[slot], ch);
    int v = -1;
    check_rc("own recv", slot, leash_recv(ch, &v));
    atomic_store(&own_chans[slot], NULL);
    atomic_fetch_add(&sum_got, v);
    leash_release(ch);
    leash_waitgroup_done(&wg);
}

static void before_own(int slot) {
    leash_waitgroup_add(&wg, 1);
    leash_go(own_finder, (void *)(intptr_t)slot);
}

static void start_own(int slot, leash_chan *ch) {
    (void)ch; /* unused: the waiter makes its own */
    leash_waitgroup_add(&wg, 1);
    leash_go(own_waiter, (void *)(intptr_t)slot);
}

/* ------------------------------------------------------------ main */

typedef struct {
    const char *name;
    void (*batch)(int n);                    /* before a batch */
    void (*before)(int slot);                /* before the channel exists */
    void (*start)(int slot, leash_chan *ch); /* hands ch as it needs */
    void (*batch_end)(int n);                /* before waiting for it */
    leash_chan **buffered;                   /* a queue it needs */
    int per_batch;                           /* instances at a time */
} pattern;

static void start_global(int slot, leash_chan *ch) { start_waiter(slot, ch); }

static const pattern PATTERNS[] = {
    {"arg", NULL, NULL, start_arg, NULL, NULL, BATCH},
    {"global", NULL, before_global, start_global, NULL, NULL, BATCH},
    {"reply", NULL, NULL, start_reply, NULL, &queue, BATCH},
    {"table", batch_table, NULL, start_table, NULL, NULL, BATCH},
    {"lender", NULL, NULL, start_lender, NULL, NULL, BATCH},
    {"late-reply", NULL, NULL, start_reply, batch_end_reply, &queue, 1},
    {"back", NULL, NULL, start_back, batch_end_back, &mailbox, 1},
    {"own", NULL, before_own, start_own, NULL, NULL, BATCH},
};

/* One batch: each instance's channel is made, handed, published and
 * released by main, which then only waits. */
static void run_batch(const pattern *p, int n) {
    if (p->batch)
        p->batch(n);
    for (int i = 0; i < n; i++) {
        if (p->before)
            p->before(i);
        leash_chan *ch = leash_chan_make(sizeof(int), 0);
        atomic_store(&chans[i], ch);
        atomic_fetch_add(&sum_want, value_of(i));
        p->start(i, ch);
        leash_release(ch); /* the other holder goes: only the waiter holds */
    }
    if (p->batch_end)
        p->batch_end(n);
    leash_waitgroup_wait(&wg);
}

static int run(void *arg) {
    const pattern *p = arg;
    int n = atoi(getenv("FP_N") ? getenv("FP_N") : "200");
    if (p->buffered == &queue) {
        queue = leash_chan_make(sizeof(request), BATCH);
        if (!p->batch_end) /* late-reply starts its servers late */
            leash_go(server, NULL, queue);
    } else if (p->buffered) {
        *p->buffered = leash_chan_make(sizeof(job_t), BATCH);
    }
    for (int done = 0; done < n; done += p->per_batch)
        run_batch(p, n - done < p->per_batch ? n - done : p->per_batch);
    if (p->buffered) {
        leash_close(*p->buffered);
        leash_release(*p->buffered);
    }
    int64_t orphans = atomic_load(&orphans_total);
    if (orphans)
        printf("FAIL %s: %lld channel(s) proven orphaned\n", p->name,
               (long long)orphans);
    if (atomic_load(&sum_got) != atomic_load(&sum_want))
        printf("FAIL %s: values %lld of %lld\n", p->name,
               (long long)atomic_load(&sum_got), (long long)atomic_load(&sum_want));
    bool ok = !orphans && !atomic_load(&failures) &&
              atomic_load(&sum_got) == atomic_load(&sum_want);
    if (ok)
        printf("ok %s %d\n", p->name, n);
    fflush(stdout);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    for (size_t i = 0; argc > 1 && i < sizeof PATTERNS / sizeof *PATTERNS; i++)
        if (!strcmp(argv[1], PATTERNS[i].name)) {
            if (argc > 2)
                setenv("FP_N", argv[2], 1);
            return leash_run(run, (void *)&PATTERNS[i]);
        }
    fprintf(stderr, "usage: %s arg|global|reply|table|lender|late-reply|own|"
                    "back [N]\n", argv[0]);
    return 2;
}
