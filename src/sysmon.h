/* SPDX-License-Identifier: MIT */
/*
 * sysmon.h — the watchdog thread (Go's sysmon, sysmon.c) and the coarse
 * clock it keeps.
 */
#ifndef LEASH_SYSMON_H
#define LEASH_SYSMON_H

#include "common.h"
#include "scheduler.h"

INTERNAL int sysmon_start(void);
INTERNAL void sysmon_stop(void);
INTERNAL void sysmon_worker_awake(void);
INTERNAL void sysmon_kick(void);

/* The clock park times are taken from: refreshed every millisecond by
 * sysmon while any worker runs (sysmon.c explains why). */
static inline int64_t coarse_now(void) {
    return atomic_load_explicit(&S.coarse_now, memory_order_relaxed);
}

#endif /* LEASH_SYSMON_H */
