/* SPDX-License-Identifier: MIT */
/*
 * common.h — what every module of the core shares: the public API's
 * section (LEASH_API) and leash.h, the build's feature macros (sanitizers,
 * LEASH_TRACKING, the architectures with a context switch), the frame
 * attributes the dumps rely on (API_FRAME, ENTRY_FRAME), INTERNAL,
 * likely/unlikely, the saturating time arithmetic (T_INF, time_add), the
 * runtime's main types by name, and the helpers every module calls: the
 * environment (env.c), fatal errors and strict mode (error.c).
 *
 * The runtime includes it through internal.h, first.
 */
#ifndef LEASH_COMMON_H
#define LEASH_COMMON_H

/* Inside the library every public function is also placed in the section
 * leash_api: the declarations in leash.h carry this LEASH_API, and a
 * definition takes its section from them. Dumps recognise "the public
 * call that blocked" by that address range (rt_pc_is_api), not by the
 * leash_ prefix a user's own function may have too. */
#undef LEASH_API
#define LEASH_API __attribute__((visibility("default"), section("leash_api")))
#include "leash.h"

#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define LEASH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LEASH_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define LEASH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LEASH_TSAN 1
#endif
#endif

#ifndef LEASH_TRACKING
#define LEASH_TRACKING 1
#endif

/* Architectures with a context switch in src/arch/ (switch_<arch>.S and
 * ctx_<arch>.c, chosen by CMakeLists.txt). */
#if !defined(__x86_64__) && !defined(__aarch64__)
#error "leash: only x86-64 (System V) and aarch64 (Linux) have a context switch (src/arch/)"
#endif

/* A public entry point that may park keeps its own frame (no tail call
 * out of it), so dumps show the leash_* call that blocked on top of the
 * caller's frame; the rest of the library keeps its tail calls. */
#if defined(__clang__)
#define API_FRAME __attribute__((disable_tail_calls))
#else
#define API_FRAME __attribute__((optimize("no-optimize-sibling-calls")))
#endif

/* A coroutine's entry frames (the trampoline, sched.c's g_entry,
 * coro_body, and the bodies of coroutines the runtime itself starts:
 * leash_run's main, a group's members) lie in the section leash_entry;
 * dumps end a stack there (rt_pc_is_entry). Noinline: an entry must stay
 * a frame of its own; a section also keeps GCC from splitting it. */
#define ENTRY_FRAME __attribute__((section("leash_entry"), noinline))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define INTERNAL __attribute__((visibility("hidden")))

/* errno, read afresh on the thread that runs now. glibc declares
 * __errno_location() const, so a compiler may reuse, within a function,
 * the errno address it computed before a park -- another thread's errno
 * once the coroutine has moved (clang does, in a retry loop). A function
 * that parks reads errno through this, out of line in error.c. */
INTERNAL int errno_now(void) __attribute__((noinline));
#define CACHELINE 64
#define T_INF INT64_MAX

/* Time arithmetic saturates: a deadline past the end of int64_t is
 * "never" (T_INF), one before its start is "long ago" (0). Every `now +
 * d` of the runtime goes through this (signed overflow is undefined, and
 * a wrapped deadline fires at once, for ever). */
static inline int64_t time_add(int64_t t, int64_t d) {
    int64_t r;
    if (__builtin_add_overflow(t, d, &r))
        return d > 0 ? T_INF : 0;
    return r < 0 ? 0 : r;
}
/* An I/O deadline (absolute; -1: none): T_INF for none, or
 * LEASH_EINVAL for a negative value other than -1. */
static inline int64_t io_deadline(int64_t d) {
    return d == -1 ? T_INF : d < 0 ? LEASH_EINVAL : d;
}

typedef struct coroutine coroutine;
typedef struct worker worker;
typedef struct lobj lobj;
typedef struct rtimer rtimer;

/* ------------------------------------------------------------- misc */
/* Environment variables (env.c; the rules are in docs/TUNING.md). Each
 * returns dflt, with one line on stderr, for a value it rejects. */
INTERNAL bool env_bool(const char *name, bool dflt);
/* Decimal, optional k/m/g suffix (x1024^n), within lo..hi. */
INTERNAL uint64_t env_u64(const char *name, uint64_t dflt, uint64_t lo,
                          uint64_t hi);
/* The raw value of a string-valued variable, NULL when unset or empty;
 * its reader rejects unknown values with env_reject. */
INTERNAL const char *env_str(const char *name);
/* "leash: ignoring NAME=value (want WANT); using USING", once per name. */
INTERNAL void env_reject(const char *name, const char *value,
                         const char *want, const char *using);
INTERNAL _Noreturn void rt_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Misuse Go panics on: returns err, or under LEASH_STRICT=1 prints Go's
 * panic message with a dump of every coroutine and aborts. */
INTERNAL int strict_fail(int err, const char *go_message);
INTERNAL bool strict_mode(void); /* LEASH_STRICT=1 */

#endif /* LEASH_COMMON_H */
