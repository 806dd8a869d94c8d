/* SPDX-License-Identifier: MIT */
/*
 * observer.c — the diagnostics as the core's observer: observer_impl
 * (src/observer.h), the one table through which the core reaches
 * src/diag/. It is what links the diagnostics into a program: the core
 * references the table, the table references the rest.
 */
#include "diag.h"

static void obs_install(void) {
    leakcheck_install();
    sigdump_install();
    contention_env_init();
}

static void obs_tick(int64_t now) {
    sigdump_process();
    sites_sample(now);
}

static void obs_fatal_dump(FILE *out) {
    leash_dump(out, LEASH_DUMP_STACKS);
}

const observer observer_impl = {
    .name = "diag",
    .install = obs_install,
    .started = debug_env_start,
    .tick = obs_tick,
    .all_idle = deadlock_check,
    .orphaned = orphan_act,
    .run_returned = leakcheck_after_run,
    .fatal_dump = obs_fatal_dump,
    .wait_end = contention_wait_end,
    .unlock = contention_unlock,
    .trace_event = trace_event,
    .trace_switch = trace_switch,
    .trace_label = trace_label,
};
