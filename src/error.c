/* SPDX-License-Identifier: MIT */
/*
 * error.c — error texts, fatal errors, wait reasons and strict mode.
 */
#define _GNU_SOURCE 1 /* strerrordesc_np */
#include "internal.h"

#include <errno.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *leash_strerror(int err) {
    switch (err) {
    case 0: return "success";
    case LEASH_EAGAIN: return "operation would block";
    case LEASH_ECLOSED: return "channel or connection closed";
    case LEASH_E2BIG: return "line too long";
    case LEASH_ECANCELED: return "context canceled";
    case LEASH_ETIMEDOUT: return "deadline exceeded";
    case LEASH_EINVAL: return "invalid argument or not a live leash object";
    case LEASH_ENOMEM: return "out of memory";
    case LEASH_EORPHANED: return "channel orphaned: no other holder is left";
    default: break;
    }
    /* An OS error an I/O call passed on (-errno): its own text, which
     * glibc keeps constant (strerror's buffer is not thread-safe). */
    const char *os = err < 0 && err > -4096 ? strerrordesc_np(-err) : NULL;
    return os ? os : "unknown error";
}

void rt_fatal(const char *fmt, ...) {
    va_list ap;
    fputs("fatal error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

static const char *const reasons[WR__COUNT] = {
    [WR_NONE] = "running",
    [WR_CHAN_SEND] = "chan send",
    [WR_CHAN_RECV] = "chan receive",
    [WR_CHAN_SEND_NIL] = "chan send (nil chan)",
    [WR_CHAN_RECV_NIL] = "chan receive (nil chan)",
    [WR_SELECT] = "select",
    [WR_SELECT_NO_CASES] = "select (no cases)",
    [WR_SLEEP] = "sleep",
    [WR_IO_WAIT] = "IO wait",
    [WR_MUTEX] = "sync.Mutex.Lock",
    [WR_RWMUTEX_R] = "sync.RWMutex.RLock",
    [WR_RWMUTEX_W] = "sync.RWMutex.Lock",
    [WR_COND] = "sync.Cond.Wait",
    [WR_WAITGROUP] = "sync.WaitGroup.Wait",
    [WR_ONCE] = "sync.Once.Do",
    [WR_GROUP_WAIT] = "leash.Group.Wait",
    [WR_JOIN] = "leash.Run",
    [WR_PREEMPTED] = "runnable",
    [WR_SYSCALL] = "syscall",
};

const char *wait_reason_str(int wr) {
    return (wr >= 0 && wr < WR__COUNT && reasons[wr]) ? reasons[wr] : "unknown";
}

bool strict_mode(void) {
    static _Atomic int strict = -1;
    int on = atomic_load_explicit(&strict, memory_order_relaxed);
    if (on < 0) {
        on = env_bool("LEASH_STRICT", false);
        atomic_store(&strict, on);
    }
    return on;
}

int strict_fail(int err, const char *msg) {
    if (!strict_mode())
        return err;
    fflush(stdout);
    fprintf(stderr, "panic: %s\n\n", msg);
    observer_impl.fatal_dump(stderr);
    fflush(stderr);
    abort();
}

int errno_now(void) { return errno; }
