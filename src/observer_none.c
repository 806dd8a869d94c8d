/* SPDX-License-Identifier: MIT */
/*
 * observer_none.c — the observer of a build without diagnostics
 * (-DLEASH_DIAGNOSTICS=OFF: src/diag/ is not compiled, this file is
 * compiled instead of it): observer_impl does nothing the core cannot do
 * alone, and the public diagnostics API still links, each call refusing
 * with -ENOTSUP (leash_strerror: "Operation not supported").
 *
 * What the core keeps: orphan proofs and their policy (LEASH_ORPHANS=wake
 * wakes, abort aborts; report and abort print one line, not a report),
 * lock ranks, strict mode (its panic message, without the dump).
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>

static const char *const ignored_env[] = {
    "LEASH_DEBUG_ADDR", "LEASH_AGENT", "LEASH_METRICS_ADDR",
    "LEASH_LEAKCHECK", "LEASH_BLOCK_PROFILE_RATE",
    "LEASH_MUTEX_PROFILE_FRACTION",
};

static void none_install(void) {
    for (size_t i = 0; i < sizeof ignored_env / sizeof *ignored_env; i++)
        if (env_str(ignored_env[i]))
            fprintf(stderr, "leash: ignoring %s: built without diagnostics "
                            "(LEASH_DIAGNOSTICS=OFF)\n", ignored_env[i]);
}

static void none_void(void) {}
static void none_tick(int64_t now) { (void)now; }
static bool none_all_idle(void) { return false; }

static void none_orphaned(leash_chan *c, int64_t id, int policy) {
    if (policy == ORPHANS_WAKE) {
        orphan_wake(c, id);
        return;
    }
    fprintf(stderr, "leash: orphaned channel chan#%" PRId64
                    ": its waiters are blocked on it forever\n", id);
    if (policy == ORPHANS_ABORT) {
        fflush(stderr);
        abort();
    }
}

static void none_fatal_dump(FILE *out) {
    fprintf(out, "(no dump: leash built without diagnostics, "
                 "LEASH_DIAGNOSTICS=OFF)\n");
}

static void none_wait_end(coroutine *g) { g->prof_t0 = 0; }
static void none_unlock(coroutine *waiter) { (void)waiter; }
static void none_trace_event(worker *w, int kind, coroutine *g) {
    (void)w, (void)kind, (void)g;
}
static void none_trace_switch(worker *w, coroutine *g, coroutine *to) {
    (void)w, (void)g, (void)to;
}
static void none_trace_label(worker *w, coroutine *g, const char *key,
                             const char *val) {
    (void)w, (void)g, (void)key, (void)val;
}

const observer observer_impl = {
    .name = "none",
    .install = none_install,
    .started = none_void,
    .tick = none_tick,
    .all_idle = none_all_idle,
    .orphaned = none_orphaned,
    .run_returned = none_void,
    .fatal_dump = none_fatal_dump,
    .wait_end = none_wait_end,
    .unlock = none_unlock,
    .trace_event = none_trace_event,
    .trace_switch = none_trace_switch,
    .trace_label = none_trace_label,
};

/* ------------------------------------------ the public diagnostics API */
#define NOSYS (-ENOTSUP)

int leash_dump(FILE *out, int debug) {
    (void)out, (void)debug;
    return NOSYS;
}
int leash_leak_dump(FILE *out, int debug) {
    (void)out, (void)debug;
    return NOSYS;
}
int leash_profile_write(FILE *out, const char *name, int debug) {
    (void)out, (void)name, (void)debug;
    return NOSYS;
}
void leash_set_block_profile_rate(int rate_ns) { (void)rate_ns; }
int leash_set_mutex_profile_fraction(int rate) {
    (void)rate;
    return NOSYS;
}
int leash_cpu_profile(FILE *out, int64_t duration_ns) {
    (void)out, (void)duration_ns;
    return NOSYS;
}
int leash_trace_start(size_t events_per_worker) {
    (void)events_per_worker;
    return NOSYS;
}
int leash_trace_stop(FILE *out) {
    (void)out;
    return NOSYS;
}
int leash_trace(FILE *out, int64_t duration_ns) {
    (void)out, (void)duration_ns;
    return NOSYS;
}
leash_snapshot *leash_snapshot_take(void) {
    errno = ENOTSUP;
    return NULL;
}
void leash_snapshot_free(leash_snapshot *s) { (void)s; }
int leash_leak_verify(const leash_snapshot *baseline,
                      const leash_leak_opts *opts) {
    (void)baseline, (void)opts;
    return NOSYS;
}
int leash_debug_listen(const char *addr) {
    (void)addr;
    return NOSYS;
}
int leash_debug_stop(void) { return 0; }
int leash_debug_handle(const char *method, const char *target,
                       unsigned flags, leash_debug_write_fn write,
                       void *arg) {
    (void)method, (void)target, (void)flags, (void)write, (void)arg;
    return NOSYS;
}
int leash_debug_serve_conn(leash_conn *c, unsigned flags) {
    (void)c, (void)flags;
    return NOSYS;
}
int leash_metrics_write(FILE *out) {
    (void)out;
    return NOSYS;
}
int leash_metrics_listen(const char *addr) {
    (void)addr;
    return NOSYS;
}
int leash_agent_start(void) { return NOSYS; }
void leash_agent_stop(void) {}
int leash_agent_path(char *buf, size_t n) {
    (void)buf, (void)n;
    return NOSYS;
}
