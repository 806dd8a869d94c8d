/* SPDX-License-Identifier: MIT */
/*
 * diag_deadlock.c — testprog_diag_deadlock: the global deadlock detector
 * (tests/test_proofs.c). Go's "fatal error: all goroutines are asleep -
 * deadlock!" and exit 2 where every coroutine is blocked for good; a
 * normal end where a timer, an I/O deadline, a leash_blocking call or a
 * plain thread will wake someone.
 *
 *   nilchan    main receives from a NULL channel
 *   norecv     main receives from a channel nobody sends to (a worker
 *              coroutine holds it too, blocked receiving as well)
 *   mutex      main and a coroutine lock two mutexes in opposite orders
 *   timer      main waits on a channel a coroutine sends to after sleeping
 *              300 ms
 *   iodeadline main waits on a channel a coroutine sends to when its read
 *              of an idle pipe times out (300 ms deadline)
 *   blocking   main waits on a channel a coroutine sends to after a
 *              leash_blocking call that sleeps 300 ms on its helper thread
 *   thread     main waits on a channel that a plain pthread, sleeping
 *              300 ms in usleep (not parked in leash), sends to
 *   thread-parked  the same, but the plain thread first waits in
 *              leash_recv on a channel nobody sends to: parked inside
 *              leash, it can wake nobody, so this is a deadlock
 *   ticker     main waits on a channel nobody sends to while a 5 ms ticker
 *              nobody reads keeps firing: it wakes nobody, a deadlock
 *   after      the same with a pending one-hour leash_after nobody reads
 *   ctxtimeout the same with a one-hour context deadline whose done
 *              channel (and a child's) nobody waits on
 *   debug      the same while the debug endpoint serves (its coroutines
 *              wait in accept but can wake no user coroutine)
 *   tickerwait main waits on a channel a coroutine sends to after three
 *              ticks of a 20 ms ticker
 *   afterwait  ... after receiving from a 300 ms leash_after
 *   ctxwait    ... after the done channel of the child of a context with a
 *              300 ms timeout is closed
 * The normal cases print "ok <mode>" and exit 0. A deadlocked case that is
 * not detected hangs (the test kills it).
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "leash.h"

#define MS 1000000LL

static leash_chan *ch;
static leash_mutex m1 = LEASH_MUTEX_INIT, m2 = LEASH_MUTEX_INIT;
static leash_chan *step;

static void recv_forever(void *arg) {
    int v;
    leash_recv((leash_chan *)arg, &v);
}

static void lock_b_then_a(void *arg) {
    (void)arg;
    leash_mutex_lock(&m2);
    int v = 1;
    leash_send(step, &v);
    leash_mutex_lock(&m1);
}

static void send_after_sleep(void *arg) {
    (void)arg;
    leash_sleep(300 * MS);
    int v = 1;
    leash_send(ch, &v);
}

static void send_after_io(void *arg) {
    (void)arg;
    int fds[2];
    if (pipe(fds) != 0)
        return;
    char b;
    ssize_t r = leash_read(fds[0], &b, 1, leash_now() + 300 * MS);
    int v = (int)r;
    leash_send(ch, &v);
}

static intptr_t slow(void *arg) {
    (void)arg;
    usleep(300 * 1000);
    return 1;
}

static void send_after_blocking(void *arg) {
    (void)arg;
    int v = (int)leash_blocking(slow, NULL);
    leash_send(ch, &v);
}

static void *plain_thread(void *arg) {
    (void)arg;
    usleep(300 * 1000);
    int v = 1;
    leash_send(ch, &v);
    return NULL;
}

static leash_chan *never;

static void *parked_thread(void *arg) {
    (void)arg;
    int v = 0;
    leash_recv(never, &v); /* parked in leash for good */
    leash_send(ch, &v);
    return NULL;
}

static void send_after_ticks(void *arg) {
    (void)arg;
    leash_ticker *tk = leash_ticker_start(20 * MS);
    int64_t t;
    for (int i = 0; i < 3; i++)
        leash_recv(leash_ticker_chan(tk), &t);
    leash_ticker_stop(tk);
    int v = 1;
    leash_send(ch, &v);
}

static void send_after_after(void *arg) {
    (void)arg;
    leash_chan *a = leash_after(300 * MS);
    int64_t t;
    leash_recv(a, &t);
    leash_release(a);
    int v = 1;
    leash_send(ch, &v);
}

static void send_after_done(void *arg) {
    leash_ctx *child = arg;
    char z;
    leash_recv_n(leash_ctx_done(child), &z, 0);
    int v = leash_ctx_err(child);
    leash_send(ch, &v);
}

static const char *mode;

static int run(void *arg) {
    (void)arg;
    int v = 0;
    ch = leash_chan_make(sizeof(int), 0);
    if (!strcmp(mode, "nilchan")) {
        leash_recv_n(NULL, &v, sizeof v);
    } else if (!strcmp(mode, "norecv")) {
        leash_go(recv_forever, ch, ch);
        leash_recv(ch, &v);
    } else if (!strcmp(mode, "mutex")) {
        step = leash_chan_make(sizeof(int), 0);
        leash_mutex_lock(&m1);
        leash_go(lock_b_then_a, NULL, step);
        leash_recv(step, &v);
        leash_mutex_lock(&m2);
    } else if (!strcmp(mode, "timer")) {
        leash_go(send_after_sleep, NULL, ch);
        leash_recv(ch, &v);
    } else if (!strcmp(mode, "iodeadline")) {
        leash_go(send_after_io, NULL, ch);
        leash_recv(ch, &v);
    } else if (!strcmp(mode, "blocking")) {
        leash_go(send_after_blocking, NULL, ch);
        leash_recv(ch, &v);
    } else if (!strcmp(mode, "thread")) {
        pthread_t t;
        pthread_create(&t, NULL, plain_thread, NULL);
        leash_recv(ch, &v);
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "thread-parked")) {
        never = leash_chan_make(sizeof(int), 0);
        pthread_t t;
        pthread_create(&t, NULL, parked_thread, NULL);
        leash_recv(ch, &v);
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "ticker")) {
        leash_ticker *tk = leash_ticker_start(5 * MS);
        leash_recv(ch, &v);
        leash_ticker_stop(tk);
    } else if (!strcmp(mode, "after")) {
        leash_chan *a = leash_after(3600000 * MS);
        leash_recv(ch, &v);
        leash_release(a);
    } else if (!strcmp(mode, "ctxtimeout")) {
        leash_ctx *c = leash_ctx_with_timeout(leash_ctx_background(),
                                              3600000 * MS);
        leash_ctx *child = leash_ctx_with_cancel(c);
        (void)leash_ctx_done(child); /* a done channel nobody waits on */
        leash_recv(ch, &v);
        leash_release(child);
        leash_release(c);
    } else if (!strcmp(mode, "debug")) {
        if (leash_debug_listen("127.0.0.1:0") <= 0)
            return 1;
        leash_recv(ch, &v);
    } else if (!strcmp(mode, "tickerwait")) {
        leash_go(send_after_ticks, NULL, ch);
        leash_recv(ch, &v);
    } else if (!strcmp(mode, "afterwait")) {
        leash_go(send_after_after, NULL, ch);
        leash_recv(ch, &v);
    } else if (!strcmp(mode, "ctxwait")) {
        leash_ctx *c = leash_ctx_with_timeout(leash_ctx_background(),
                                              300 * MS);
        leash_ctx *child = leash_ctx_with_cancel(c);
        leash_go(send_after_done, child, ch, child);
        leash_release(child);
        leash_recv(ch, &v);
        leash_release(c);
    } else {
        printf("unknown mode %s\n", mode);
        return 64;
    }
    printf("ok %s\n", mode);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    mode = argc > 1 ? argv[1] : "nilchan";
    return leash_run(run, NULL);
}
