/* SPDX-License-Identifier: MIT */
/*
 * blocking.c — leash_blocking: run a blocking call on a helper thread.
 *
 * A coroutine that must call something that blocks its OS thread (a
 * library without non-blocking mode, getaddrinfo, a disk read) hands it to
 * a pool of helper threads and parks ("syscall" in dumps), so its worker
 * keeps running other coroutines. Helpers are started on demand up to
 * BLOCKING_MAX and exit after BLOCKING_IDLE_S seconds without work. The
 * job lives on the waiting coroutine's stack; the helper reads everything
 * it needs before readying the coroutine and touches nothing after.
 */
#include "internal.h"

#include <errno.h>

#define BLOCKING_MAX 64
#define BLOCKING_IDLE_S 10

typedef struct bjob {
    intptr_t (*fn)(void *);
    void *arg;
    intptr_t result;
    coroutine *g;
    struct bjob *next;
} bjob;

static struct {
    llock lock;
    _Atomic uint32_t seq; /* futex: bumped for every new job */
    bjob *head, *tail;
    int nthreads, nidle;
} B = {.lock = LLOCK_INIT(LR_BLOCKING)};

static void *helper_main(void *arg) {
    (void)arg;
    llock_acquire(&B.lock);
    for (;;) {
        while (!B.head) {
            uint32_t seq = atomic_load(&B.seq);
            B.nidle++;
            llock_release(&B.lock);
            int rc = futex_wait(&B.seq, seq,
                                time_add(leash_now(), BLOCKING_IDLE_S * 1000000000LL));
            llock_acquire(&B.lock);
            B.nidle--;
            if (rc == -ETIMEDOUT && !B.head) {
                B.nthreads--;
                llock_release(&B.lock);
                return NULL;
            }
        }
        bjob *j = B.head;
        B.head = j->next;
        if (!B.head)
            B.tail = NULL;
        llock_release(&B.lock);
        j->result = j->fn(j->arg);
        sched_ready(j->g, false); /* j is gone once g runs */
        llock_acquire(&B.lock);
    }
}

API_FRAME intptr_t leash_blocking(intptr_t (*fn)(void *), void *arg) {
    if (!fn)
        return LEASH_EINVAL;
    coroutine *g = sched_getg();
    if (!g || g->foreign)
        return fn(arg); /* a plain thread may block itself */
    bjob job = {.fn = fn, .arg = arg, .g = sched_prepare_park()};
    llock_acquire(&B.lock);
    if (B.nidle == 0 && B.nthreads < BLOCKING_MAX) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        bool ok = !lalloc_should_fail() &&
                  pthread_create(&t, &attr, helper_main, NULL) == 0;
        pthread_attr_destroy(&attr);
        if (ok) {
            B.nthreads++;
        } else if (B.nthreads == 0) {
            llock_release(&B.lock);
            return LEASH_ENOMEM;
        }
    }
    if (B.tail)
        B.tail->next = &job;
    else
        B.head = &job;
    B.tail = &job;
    atomic_fetch_add(&B.seq, 1);
    if (B.nidle > 0)
        futex_wake(&B.seq, 1);
    g_wait_begin(g, WR_SYSCALL, (void *)fn);
    sched_park(llock_release_fn, &B.lock);
    g_wait_end(g);
    return job.result;
}

/* Helper threads alive (the deadlock detector accounts for every thread). */
int blocking_threads(void) {
    llock_acquire(&B.lock);
    int n = B.nthreads;
    llock_release(&B.lock);
    return n;
}
