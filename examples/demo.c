/* SPDX-License-Identifier: MIT */
/*
 * demo.c — what `make demo` runs: the write-up's first scenario, queryAll,
 * from the leak to the fixes, with what leash shows at each step.
 *
 *   1. queryAll leaks: three queries race on an unbuffered channel and the
 *      first answer wins; the two slower ones block forever in their send.
 *      The count after each of 4 calls is 3, 5, 7, 9, as in Go.
 *   2. leash_leak_dump in leash's format: each stuck coroutine with its
 *      exact wait, the channel it waits on (and where it was made), the
 *      leash_release that orphaned the channel, and the leash_go line that
 *      spawned it.
 *   3. fix 1, a buffered channel of capacity 3, and
 *   4. fix 2, a context that cancels the losers: the count stays flat and
 *      a scoped leak check (leash_snapshot_take + leash_leak_verify) finds
 *      nothing new.
 *
 * The same programs one by one: make demo SCENARIO=queryall (and
 * queryall_buffered, queryall_ctx); the other scenarios: see README.md.
 *
 * Run:   make demo          (or ./build/example_demo)
 * Exit:  0 (23 under LEASH_LEAKCHECK=1: part 1 leaks by design)
 */
#include <leash.h>

#include "example.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------- 1. the leak */

/* go func() { ch <- query() }() */
static void ask(void *arg)
{
    leash_chan *ch = arg;
    int v = query();
    leash_send(ch, &v); /* the two losers block here forever */
}

static int query_all(void)
{
    leash_chan *ch = leash_chan_make(sizeof(int), 0); /* make(chan int) */
    leash_go(ask, ch, ch); /* each query holds a reference to ch */
    leash_go(ask, ch, ch);
    leash_go(ask, ch, ch);
    int v = 0;
    leash_recv(ch, &v);   /* return <-ch */
    leash_release(ch);    /* our reference: the losers are orphaned now */
    return v;
}

/* --------------------------------------------- 3. fix 1: buffered channel */

static int query_all_buffered(void)
{
    leash_chan *ch = leash_chan_make(sizeof(int), 3); /* make(chan int, 3) */
    leash_go(ask, ch, ch);
    leash_go(ask, ch, ch);
    leash_go(ask, ch, ch);
    int v = 0;
    leash_recv(ch, &v);
    leash_release(ch);
    return v;
}

/* ----------------------------------------------------- 4. fix 2: context */

typedef struct {
    leash_chan *ch;
    leash_ctx *ctx;
} ask_args;

/* The query and the send both give up when ctx is cancelled. */
static void ask_ctx(void *arg)
{
    ask_args a = *(ask_args *)arg;
    free(arg);
    int v = rand_intn(100);
    leash_chan *timer = leash_after(v * MS);
    leash_case wait[2] = {
        LEASH_RECV_CASE(timer, (int64_t *)NULL),
        LEASH_RECV_CASE(leash_ctx_done(a.ctx), (char *)NULL),
    };
    wait[1].size = 0; /* done carries no value */
    int which = leash_select(wait, 2);
    leash_release(timer);
    if (which != 0)
        return; /* cancelled while querying */
    leash_case send[2] = {
        LEASH_SEND_CASE(a.ch, &v),                         /* ch <- v      */
        LEASH_RECV_CASE(leash_ctx_done(a.ctx), (char *)NULL), /* <-ctx.Done() */
    };
    send[1].size = 0;
    leash_select(send, 2);
}

static int query_all_ctx(void)
{
    leash_ctx *ctx = leash_ctx_with_cancel(leash_ctx_background());
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    for (int i = 0; i < 3; i++) {
        ask_args *a = malloc(sizeof *a);
        *a = (ask_args){ch, ctx};
        leash_go(ask_ctx, a, ch, ctx);
    }
    int v = 0;
    leash_recv(ch, &v);
    leash_ctx_cancel(ctx); /* the losers return */
    leash_release(ctx);
    leash_release(ch);
    return v;
}

/* -------------------------------------------------------------- driver */

static void four_calls(int (*fn)(void))
{
    for (int i = 0; i < 4; i++) {
        fn();
        /* Give the slower queries time to finish if they can (each takes
         * < 100 ms), so the count shows only what stays for good. */
        leash_sleep(150 * MS);
        printf("#goroutines: %zu\n", leash_num_coroutines());
    }
}

static void check_fix(const char *title, int (*fn)(void))
{
    printf("\n== %s\n\n", title);
    leash_snapshot *snap = leash_snapshot_take();
    four_calls(fn);
    leash_leak_opts opts = {.timeout_ns = 1000 * MS, .out = stdout};
    int left = leash_leak_verify(snap, &opts);
    leash_snapshot_free(snap);
    printf("leash_leak_verify since this part began: %d coroutine(s) "
           "left%s\n", left, left ? "" : ", clean");
}

static int demo(void *arg)
{
    (void)arg;
    printf("== 1. queryAll: three queries race on an unbuffered channel, "
           "the first answer wins\n\n");
    four_calls(query_all);

    printf("\n== 2. leash_leak_dump(stdout, LEASH_DUMP_LEASH): the coroutines "
           "that can never run again\n\n");
    int n = leash_leak_dump(stdout, LEASH_DUMP_LEASH);
    printf("%d coroutine(s) proven leaked\n", n);

    printf("\nThe 8 leaked above stay blocked for the rest of the process: "
           "the count\nbelow starts at 9 and must not grow.\n");
    check_fix("3. fix 1: a buffered channel, make(chan int, 3)",
              query_all_buffered);
    check_fix("4. fix 2: cancel the losers with a context", query_all_ctx);
    return 0;
}

int main(void)
{
    return leash_run(demo, NULL);
}
