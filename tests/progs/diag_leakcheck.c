/* SPDX-License-Identifier: MIT */
/*
 * diag_leakcheck.c — testprog_diag_leakcheck: LEASH_LEAKCHECK=1 at exit
 * (tests/test_leakcheck.c).
 *
 *   leaky        leash_run's main leaves a coroutine blocked on a channel,
 *                objects never released (a channel, context, ticker and
 *                group made on the plain main thread, so nobody's return
 *                drops them) and objects dropped only because their owner
 *                returned (a channel and a context made by a coroutine that
 *                returns without releasing them, and a ticker the main
 *                coroutine never stops); returns 0.
 *   clean        the same work, everything released (the thread's objects
 *                by the main coroutine) and joined; returns 7.
 *   norun-leaky  never calls leash_run: the plain main thread starts a
 *                coroutine that blocks for good and keeps a channel; main
 *                returns 0 (the check runs at process exit).
 *   norun-clean  never calls leash_run, releases and joins; returns 5.
 *
 * In the leaky modes every creation site it will leak is printed first as
 * "site KIND FILE:LINE" (KIND: coroutine, channel, context, ticker, group,
 * dropped-channel, dropped-context, dropped-ticker; main-run: the
 * leash_run call, the main coroutine's spawn site).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leash.h"

#define MS 1000000LL
static int verbose; /* print sites: the leaky modes only */
#define SITE(kind) \
    (verbose ? printf("site %s %s:%d\n", kind, __FILE__, __LINE__ + 1) : 0)

static void stuck(void *arg) {
    int v;
    leash_recv((leash_chan *)arg, &v); /* nobody ever sends */
}

static void dropper(void *arg) {
    leash_waitgroup *wg = arg;
    SITE("dropped-channel");
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    SITE("dropped-context");
    leash_ctx *x = leash_ctx_with_cancel(leash_ctx_background());
    (void)c;
    (void)x; /* never released: dropped as dropper returns */
    leash_waitgroup_done(wg);
}

static void tidy(void *arg) {
    leash_waitgroup *wg = arg;
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    leash_ctx *x = leash_ctx_with_cancel(leash_ctx_background());
    leash_ctx_cancel(x);
    leash_release(x);
    leash_release(c);
    leash_waitgroup_done(wg);
}

static int member(void *arg) {
    (void)arg;
    return 0;
}

/* Objects made on the plain main thread: held by it for good. */
static leash_chan *g_ch;
static leash_ctx *g_ctx;
static leash_ticker *g_tk;
static leash_group *g_grp;

static void make_thread_objects(void) {
    SITE("channel");
    g_ch = leash_chan_make(sizeof(int), 0);
    SITE("context");
    g_ctx = leash_ctx_with_cancel(leash_ctx_background());
    SITE("ticker");
    g_tk = leash_ticker_start(3600LL * 1000 * MS);
    SITE("group");
    g_grp = leash_group_new(leash_ctx_background());
}

static void free_thread_objects(void) {
    leash_release(g_ch);
    leash_ctx_cancel(g_ctx);
    leash_release(g_ctx);
    leash_ticker_stop(g_tk);
    leash_group_wait(g_grp);
    leash_release(g_grp);
}

static int leaky_main(void *arg) {
    (void)arg;
    SITE("coroutine");
    leash_go(stuck, g_ch);
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&wg, 1);
    leash_go(dropper, &wg);
    leash_waitgroup_wait(&wg);
    SITE("dropped-ticker");
    leash_ticker *tk = leash_ticker_start(3600LL * 1000 * MS);
    (void)tk; /* never stopped: dropped as the main coroutine returns */
    leash_sleep(20 * MS);
    return 0;
}

static int clean_main(void *arg) {
    (void)arg;
    free_thread_objects();
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    leash_go(stuck, ch, ch);
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_waitgroup_add(&wg, 2);
    leash_go(tidy, &wg);
    leash_go(tidy, &wg);
    leash_waitgroup_wait(&wg);
    leash_group *g = leash_group_new(leash_ctx_background());
    leash_group_go(g, member, NULL);
    leash_group_wait(g);
    leash_release(g);
    int v = 1;
    leash_send(ch, &v); /* stuck gets its value and returns */
    leash_release(ch);
    /* Wait until stuck has returned. */
    while (leash_num_coroutines() > 1)
        leash_sleep(MS);
    return 7;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "leaky";
    verbose = strstr(mode, "leaky") != NULL;
    if (!strcmp(mode, "leaky")) {
        make_thread_objects();
        fflush(stdout);
        SITE("main-run"); /* flushed at exit */
        return leash_run(leaky_main, NULL);
    }
    if (!strcmp(mode, "clean")) {
        /* Thread objects are released before leash_run returns, when the
         * check runs: the main coroutine releases them. */
        make_thread_objects();
        fflush(stdout);
        return leash_run(clean_main, NULL);
    }
    if (!strcmp(mode, "norun-leaky")) {
        SITE("channel");
        leash_chan *ch = leash_chan_make(sizeof(int), 0);
        SITE("coroutine");
        leash_go(stuck, ch);
        leash_sleep(20 * MS);
        fflush(stdout);
        return 0;
    }
    if (!strcmp(mode, "norun-clean")) {
        leash_chan *ch = leash_chan_make(sizeof(int), 0);
        leash_go(stuck, ch, ch);
        int v = 1;
        leash_send(ch, &v);
        leash_release(ch);
        while (leash_num_coroutines() > 0)
            leash_sleep(MS);
        fflush(stdout);
        return 5;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 64;
}
