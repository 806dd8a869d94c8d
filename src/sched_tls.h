/* SPDX-License-Identifier: MIT */
/*
 * sched_tls.h — the running coroutine, read inline on the channel hot
 * paths (chan.c, select.c): sched_getg's body without the call.
 *
 * Rule: a function may read these only before anything in it that can
 * switch coroutines (sched_park, leash_yield, ...). A coroutine may
 * resume on another thread, and the compiler, which does not know that,
 * may reuse a thread-local address computed before the switch. Anything
 * that needs the current coroutine after a switch calls sched_getg()
 * (never inlined) instead.
 */
#ifndef LEASH_SCHED_TLS_H
#define LEASH_SCHED_TLS_H

#include "internal.h"

extern INTERNAL __thread worker *sched_tls_w
    __attribute__((tls_model("initial-exec")));
extern INTERNAL __thread coroutine *sched_tls_foreign
    __attribute__((tls_model("initial-exec")));

/* sched_getg(), inline: see the rule above. */
static inline coroutine *sched_getg_entry(void) {
    worker *w = sched_tls_w;
    return w ? w->cur : sched_tls_foreign;
}

#endif
