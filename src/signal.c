/* SPDX-License-Identifier: MIT */
/*
 * signal.c — signals as channels, like Go's signal.Notify / signal.Stop.
 *
 * A process-wide handler (installed for a signal while some channel asks
 * for it) only records the signal in a pending mask and wakes one
 * delivery thread with a futex: both async-signal-safe, so the signal
 * may land on any thread -- a worker, sysmon, the user's own -- and that
 * thread's system call is restarted (SA_RESTART), not failed with EINTR.
 * The delivery thread (started at the first leash_signal_notify, with
 * every signal blocked) sends the signal number to each channel that
 * asked for it with a non-blocking send: dropped when the channel is
 * full, as in Go (a buffered channel of capacity 1 is enough for a
 * shutdown signal).
 *
 * The delivery thread sends as the runtime (it has no g, like a timer),
 * and the registration holds a runtime reference on the channel: the
 * channel stays alive while registered, and since a signal can arrive at
 * any time, the orphan proof (a holder that can act) and the deadlock
 * detector (a thread it does not account for) never call its waiters
 * stuck; the diagnostics do not count a coroutine waiting on it as a
 * long-wait suspect either (chan->signals).
 *
 * Under TSan, a handler runs only when the thread that took the signal
 * next enters an intercepted call; a worker parked in a raw futex
 * syscall may hold it back indefinitely (tests/test_signal.c fails
 * there; the project runs only stress tests under TSan).
 *
 * Lock order: SG.lock is outermost: delivery sends (channel locks) and
 * stop releases references (R.lock, maybe a destroy) under it, and
 * nothing in the runtime calls in here holding a lock.
 */
#define _GNU_SOURCE 1 /* pthread_setname_np */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>

#define SIG_WORDS ((NSIG + 63) / 64)

typedef struct {
    leash_chan *c;
    sigset_t set; /* the signals it asked for */
} sig_entry;

static struct {
    llock lock;
    sig_entry *v;
    int n, cap;
    int users[NSIG];               /* entries asking for each signal */
    struct sigaction old[NSIG];    /* restored when users drops to 0 */
    bool started;                  /* the delivery thread */
} SG = {.lock = LLOCK_INIT(LR_SIGNAL)};

static _Atomic uint64_t pending[SIG_WORDS];
static _Atomic uint32_t wake_seq; /* futex word of the delivery thread */

static void on_signal(int signo) {
    int saved = errno;
    atomic_fetch_or(&pending[signo / 64], 1ull << (signo % 64));
    atomic_fetch_add(&wake_seq, 1);
    futex_wake(&wake_seq, 1);
    errno = saved;
}

/* Signals leash cannot hand out: uncatchable, synchronous faults (a
 * handler that returns would re-fault for ever), SIGURG (the stack
 * sampler's), and those glibc keeps for itself below SIGRTMIN. */
static bool notifiable(int signo) {
    if (signo <= 0 || signo >= NSIG)
        return false;
    switch (signo) {
    case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE:
    case SIGILL: case SIGURG: case SIGTRAP: case SIGSYS:
        return false;
    default:
        return signo < 32 || signo >= SIGRTMIN;
    }
}

static void deliver(int signo) {
    llock_acquire(&SG.lock);
    for (int i = 0; i < SG.n; i++)
        if (sigismember(&SG.v[i].set, signo))
            (void)leash_try_send(SG.v[i].c, &signo); /* full: dropped */
    llock_release(&SG.lock);
}

static void *delivery_main(void *arg) {
    (void)arg;
    for (;;) {
        uint32_t seen = atomic_load(&wake_seq);
        for (int w = 0; w < SIG_WORDS; w++) {
            uint64_t m = atomic_exchange(&pending[w], 0);
            for (int b = 0; m; b++, m >>= 1)
                if (m & 1)
                    deliver(w * 64 + b);
        }
        futex_wait(&wake_seq, seen, T_INF);
    }
    return NULL;
}

/* SG.lock held. */
static int start_delivery(void) {
    if (SG.started)
        return 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the thread */
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 << 10);
    int rc = pthread_create(&t, &attr, delivery_main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return LEASH_ENOMEM;
    pthread_setname_np(t, "leash-signal");
    SG.started = true;
    return 0;
}

static sig_entry *find(leash_chan *c) {
    for (int i = 0; i < SG.n; i++)
        if (SG.v[i].c == c)
            return &SG.v[i];
    return NULL;
}

/* One more channel asks for signo (SG.lock held): install the handler
 * for the first. */
static void user_add(int signo) {
    if (SG.users[signo]++ == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigfillset(&sa.sa_mask); /* the handler runs alone */
        sigaction(signo, &sa, &SG.old[signo]);
    }
}

static void user_drop(int signo) {
    if (--SG.users[signo] == 0)
        sigaction(signo, &SG.old[signo], NULL);
}

int leash_signal_notify_list(leash_chan *ch, ...) {
    int rc = fork_refuse("leash_signal_notify");
    if (rc < 0)
        return rc;
    leash_chan *c = chan_check(ch);
    if (!c || c->elem_size != sizeof(int))
        return LEASH_EINVAL;
    sigset_t want;
    sigemptyset(&want);
    va_list ap;
    va_start(ap, ch);
    int n = 0;
    for (int s; (s = va_arg(ap, int)) != 0; n++) {
        if (!notifiable(s)) {
            va_end(ap);
            return LEASH_EINVAL;
        }
        sigaddset(&want, s);
    }
    va_end(ap);
    if (n == 0)
        return LEASH_EINVAL;
    llock_acquire(&SG.lock);
    sig_entry *e = find(c);
    if (!e) {
        if (SG.n == SG.cap) {
            int cap = SG.cap ? SG.cap * 2 : 8;
            sig_entry *v = lrealloc(SG.v, sizeof *v * (size_t)cap);
            if (!v) {
                llock_release(&SG.lock);
                return LEASH_ENOMEM;
            }
            SG.v = v;
            SG.cap = cap;
        }
        if ((rc = start_delivery()) < 0 ||
            (rc = obj_retain_for(&c->obj, NULL, false)) < 0) {
            llock_release(&SG.lock);
            return rc;
        }
        e = &SG.v[SG.n++];
        e->c = c;
        sigemptyset(&e->set);
        atomic_fetch_add(&c->signals, 1);
    }
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&want, s) == 1 && sigismember(&e->set, s) != 1) {
            sigaddset(&e->set, s);
            user_add(s);
        }
    llock_release(&SG.lock);
    return 0;
}

int leash_signal_stop(leash_chan *ch) {
    leash_chan *c = chan_check(ch);
    if (!c)
        return LEASH_EINVAL;
    llock_acquire(&SG.lock);
    sig_entry *e = find(c);
    if (e) {
        for (int s = 1; s < NSIG; s++)
            if (sigismember(&e->set, s) == 1)
                user_drop(s);
        *e = SG.v[--SG.n];
        atomic_fetch_sub(&c->signals, 1);
        /* Under SG.lock: once stop returns, no delivery can reach c. */
        obj_release_from(&c->obj, NULL);
    }
    llock_release(&SG.lock);
    return 0;
}
