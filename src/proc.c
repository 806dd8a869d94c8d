/* SPDX-License-Identifier: MIT */
/*
 * proc.c — the runtime's life: starting the workers and sysmon (lazily,
 * on the first call that needs them, or by leash_run), coroutine ids, and
 * leash_shutdown.
 *
 * Start and shutdown are serialised by start_mu; S.state is 2 while the
 * runtime runs, and the fast path of sched_ensure_started reads only it.
 * Shutdown refuses (LEASH_EAGAIN) while anything still needs the workers:
 * live coroutines, pending timers, I/O waits.
 *
 * fork. The child of a fork() gets one thread: the caller's. The
 * workers, sysmon and the coroutines they ran do not exist there, and any
 * lock one of them held stays held for ever. So a child forked while the
 * runtime runs is a plain process to leash (as in Go, where only
 * fork+exec is offered): its thread is no worker, every object is dead
 * (LEASH_EINVAL), new objects, coroutines and diagnostics are refused
 * with LEASH_EINVAL and a one-line message naming fork(), blocking on a
 * leash object is a fatal error instead of a hang, and exit-time checks
 * stay silent. Plain code, leash_now, leash_sleep (a plain sleep), I/O on
 * the thread (poll(2)) and exec work. pthread_atfork holds start_mu and
 * the object registry's lock across the fork, so the child's view of
 * both is consistent. A child forked while the runtime is stopped may
 * start its own.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <pthread.h>
#include <unistd.h>

static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------ fork */

static void fork_prepare(void) {
    rmutex_lock(&start_mu, LR_START);
    obj_fork_prepare();
    stack_fork_prepare();
}

static void fork_parent(void) {
    stack_fork_parent();
    obj_fork_parent();
    rmutex_unlock(&start_mu);
}

static void fork_child(void) {
    stack_fork_child();
    if (atomic_load(&S.state) == 2) {
        atomic_store(&S.state, SCHED_FORKED);
        sched_forget_thread();
        obj_fork_child();
    } else {
        obj_fork_parent();
    }
    rmutex_unlock(&start_mu);
}

#if defined(LEASH_ASAN)
/* LeakSanitizer's exit-time check, in a child forked while the runtime
 * ran, would report as leaked everything only the parent's threads (gone
 * in the child) pointed to: the runtime the child abandoned on purpose.
 * LSan asks this hook before its check. */
__attribute__((weak, visibility("default"))) int __lsan_is_turned_off(void) {
    return in_forked_child();
}
#endif

static void fork_handlers_install(void) {
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void fork_message(const char *what) {
    static _Atomic bool said;
    if (atomic_exchange(&said, true))
        return;
    fprintf(stderr,
            "leash: %s in a child process after fork(): the runtime does "
            "not survive fork (its threads are gone); exec or _exit in the "
            "child\n", what);
}

int fork_refuse(const char *what) {
    if (!in_forked_child())
        return 0;
    fork_message(what);
    return LEASH_EINVAL;
}

_Noreturn void fork_refuse_fatal(const char *what) {
    fork_message(what);
    rt_fatal("leash: %s after fork() would wait for ever", what);
}

/* Ids come from S.next_id in batches of 16 per worker, so spawns on
 * different workers do not contend on one counter. */
int64_t sched_new_id(worker *w) {
    if (!w)
        return atomic_fetch_add(&S.next_id, 1);
    if (w->id_next == w->id_end) {
        w->id_next = atomic_fetch_add(&S.next_id, 16);
        w->id_end = w->id_next + 16;
    }
    return w->id_next++;
}

static void free_workers(int n) {
    for (int i = 0; i < n; i++) {
        lfree(S.workers[i].altstack);
        timer_heap_free(&S.workers[i].timers);
    }
    free(S.workers);
    S.workers = NULL;
    lfree(S.gq_ring);
    S.gq_ring = NULL;
    S.gq_cap = S.gq_head = S.gq_nring = 0;
}

static int sched_start_slow(void) {
    static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
    if (in_forked_child())
        return fork_refuse("starting leash");
    pthread_once(&atfork_once, fork_handlers_install);
    rmutex_lock(&start_mu, LR_START);
    if (atomic_load(&S.state) == 2) {
        rmutex_unlock(&start_mu);
        return 0;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    int n = (int)env_u64("LEASH_PROCS", (uint64_t)ncpu, 1, 1024);
    stack_config();
    size_t bytes = sizeof(worker) * (size_t)n;
    S.workers = lalloc_should_fail() ? NULL : aligned_alloc(CACHELINE, bytes);
    if (!S.workers) {
        rmutex_unlock(&start_mu);
        return LEASH_ENOMEM;
    }
    memset(S.workers, 0, bytes);
    S.nprocs = n;
    S.idle = NULL;
    atomic_store(&S.nidle, 0);
    atomic_store(&S.nspinning, 0);
    atomic_store(&S.sleep_until, T_INF);
    S.timed_sleeper = NULL;
    atomic_store(&S.shutting_down, 0);
    if (atomic_load(&S.next_id) == 0)
        atomic_store(&S.next_id, 1);
    for (int i = 0; i < n; i++) {
        worker *w = &S.workers[i];
        llock_init(&w->timers.lock, LR_THEAP);
        w->idx = i;
        w->rng = 0x2545f4914f6cdd1dull * (uint64_t)(i + 1) | 1;
        atomic_store(&w->timers.next_when, T_INF);
        w->altstack = lmalloc(64 << 10);
        if (!w->altstack) {
            free_workers(i + 1);
            rmutex_unlock(&start_mu);
            return LEASH_ENOMEM;
        }
    }
    stack_install_overflow_handler();
    observer_impl.install();
    if (netpoll_init() < 0) {
        free_workers(n);
        rmutex_unlock(&start_mu);
        return LEASH_ENOMEM;
    }
    atomic_store(&S.state, 2);
    if (sysmon_start() < 0) {
        free_workers(n);
        atomic_store(&S.state, 0);
        rmutex_unlock(&start_mu);
        return LEASH_ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        if (pthread_create(&S.workers[i].thread, NULL, sched_worker_main,
                           &S.workers[i]) != 0) {
            atomic_store(&S.shutting_down, 1);
            sysmon_stop();
            for (int j = 0; j < i; j++) {
                sched_worker_wake(&S.workers[j]);
                pthread_join(S.workers[j].thread, NULL);
            }
            free_workers(n);
            atomic_store(&S.state, 0);
            rmutex_unlock(&start_mu);
            return LEASH_ENOMEM;
        }
    }
    rmutex_unlock(&start_mu);
    return 0;
}

int sched_ensure_started(void) {
    if (likely(atomic_load_explicit(&S.state, memory_order_acquire) == 2))
        return 0;
    int rc = sched_start_slow();
    if (rc == 0)
        observer_impl.started(); /* LEASH_DEBUG_ADDR, LEASH_AGENT: once */
    return rc;
}

int leash_num_workers(void) {
    return atomic_load(&S.state) == 2 ? S.nprocs : 0;
}

int leash_shutdown(void) {
    if (sched_worker())
        return LEASH_EAGAIN; /* a coroutine cannot stop its own runtime */
    rmutex_lock(&start_mu, LR_START);
    if (atomic_load(&S.state) != 2) {
        rmutex_unlock(&start_mu);
        return 0;
    }
    /* Coroutines, pending timers (leash_after, tickers, deadlines) and
     * I/O waits all need the workers: refuse rather than lose them. */
    if (leash_num_coroutines() != 0 || timer_next_all() != T_INF ||
        atomic_load(&S.io_waiters) != 0) {
        rmutex_unlock(&start_mu);
        return LEASH_EAGAIN;
    }
    atomic_store(&S.shutting_down, 1);
    sysmon_stop();
    for (int i = 0; i < S.nprocs; i++)
        sched_worker_wake(&S.workers[i]);
    for (int i = 0; i < S.nprocs; i++)
        pthread_join(S.workers[i].thread, NULL);
    for (int i = 0; i < S.nprocs; i++) {
        worker *w = &S.workers[i];
        sched_worker_finish(w); /* a last exit may still be pending */
        stack_drain_cache(w);
        obj_drain_cache(w);
    }
    free_workers(S.nprocs);
    S.nprocs = 0;
    stack_release_all();
    netpoll_fini();
    atomic_store(&S.state, 0);
    rmutex_unlock(&start_mu);
    return 0;
}
