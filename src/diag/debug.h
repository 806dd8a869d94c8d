/* SPDX-License-Identifier: MIT */
/*
 * debug.h — the live-process tools' internal interfaces: figures and
 * reports computed from a snapshot (metrics.c), served over HTTP (http.c)
 * and the agent's Unix socket (agent.c).
 *
 * Every dbg_write_* takes a snapshot and symbolises, which needs a big
 * stack: each runs its work through diag_on_thread, so it may be called
 * from a coroutine (which parks meanwhile) or from a plain thread.
 */
#ifndef LEASH_DIAG_DEBUG_H
#define LEASH_DIAG_DEBUG_H

#include "diag.h"

/* Suspect kinds as the tools show them: the core's per-coroutine ones
 * (diag_classify) and two per-site ones computed here. */
enum dbg_suspect {
    DBG_SUS_NONE = 0,
    DBG_SUS_HOG,            /* runs without yielding (core) */
    DBG_SUS_IO_NO_DEADLINE, /* I/O wait with no deadline (core) */
    DBG_SUS_CANCELED,       /* context done, still blocked (core) */
    DBG_SUS_CROWD,          /* >= LEASH_SUSPECT_CROWD (100) waiting at one
                             * site (same spawn site and wait reason),
                             * growing or waiting long (metrics.c) */
    DBG_SUS_LONG_WAIT,      /* parked >= LEASH_SUSPECT_WAIT_MS (60000) on
                             * a channel, select or sync primitive */
    DBG_SUS_OTHER,          /* a core kind this file does not know */
    DBG_SUS__COUNT
};

INTERNAL const char *dbg_suspect_key(int k);  /* "io_no_deadline", ... */
INTERNAL const char *dbg_suspect_text(int k); /* a sentence */
/* Fills kind[i] for every record of a classified snapshot. */
INTERNAL void dbg_suspects(const dsnap *s, int *kind);

/* Process figures: the ones gops shows and more. */
typedef struct {
    int64_t coroutines, running, runnable, waiting;
    int64_t by_reason[WR__COUNT];
    int64_t leaked, suspects;
    int64_t suspect_kind[DBG_SUS__COUNT];
    int64_t objects[OBJ__COUNT];   /* live channels, contexts, ... */
    int64_t orphans_total;
    int64_t max_wait_ns;
    /* Scheduling latency: the longest a coroutine waited runnable over
     * the last SCHED_LAT_WINDOW seconds; slices sysmon ended (sched.c's
     * "Fairness"). */
    int64_t sched_latency_ns;
    uint64_t slices_forced;
    int workers, cpus, threads;
    double uptime_s;
    int64_t rss_bytes;
} dbg_vitals;

/* Writers: 0 or a negative LEASH_E*. */
INTERNAL int dbg_write_vitals(FILE *out, bool ps_only); /* "key value" lines */
INTERNAL int dbg_write_metrics(FILE *out);  /* Prometheus text 0.0.4 */
INTERNAL int dbg_write_top(FILE *out);      /* groups, tab-separated */
INTERNAL int dbg_write_leaks(FILE *out, bool json);
INTERNAL int dbg_vitals_get(dbg_vitals *v);
/* Prometheus' standard process_* series (procmetrics.c), read from
 * /proc/self: part of dbg_write_metrics. */
INTERNAL void dbg_write_process_metrics(FILE *out);
/* The live page, /debug/leash/ (livepage.c): malloc'd HTML; 0 or
 * LEASH_E*. */
INTERNAL int live_page(char **buf, size_t *len);

/* Small process facts (no snapshot). */
INTERNAL int dbg_os_threads(void);
INTERNAL int64_t dbg_rss_bytes(void);
INTERNAL double dbg_uptime_s(void);
INTERNAL void dbg_proc_name(char *buf, size_t n);

/* A coroutine of the tools themselves (g->system: the debug endpoint's;
 * its name, "leash/...", is only for people). */
INTERNAL bool dbg_internal_g(const dgor *d);

/* OS threads the agent runs (the deadlock detector may count them as
 * known: they never touch a coroutine's wait object). */
INTERNAL int agent_threads(void);

#endif /* LEASH_DIAG_DEBUG_H */
