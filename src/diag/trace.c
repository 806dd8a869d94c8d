/* SPDX-License-Identifier: MIT */
/*
 * trace.c — the execution trace (Go's runtime/trace, in Chrome's
 * trace-event JSON, which Perfetto and about:tracing read).
 *
 * While a trace runs, the scheduler records its events (spawn, run on a
 * worker, park with its wait reason and object, unpark with the waker,
 * yield, exit, the idle worker's netpoll wait, names and labels) into a
 * bounded ring per worker; threads that are no worker (the main thread
 * before leash_run, foreign threads, timers fired off a worker) share
 * one more ring. Nothing is allocated on the event path: a full ring
 * overwrites its oldest events, and the overwritten ones are counted
 * and reported in the trace's metadata (dropped_events).
 *
 * Off, every event site costs one relaxed load of trace_on and a branch
 * (TRACE() in tracking.h). On, an event costs a timestamp (the TSC on
 * x86-64, the virtual counter on AArch64, mapped to leash_now's clock
 * by two readings at start and stop) and a few plain stores into the
 * worker's own ring, written in place: no locked instruction (tring
 * says how stop still waits for writers inside a ring). A switch from
 * one coroutine to the next is one event (TR_SWITCH), read back as the
 * park, yield or exit of the one and the run of the other.
 *
 * leash_trace_stop writes: one track per worker (pid 1, what ran when,
 * "X" slices, and its netpoll waits), one track per coroutine (pid 2,
 * tid = its id: its states as "B"/"E" slices: runnable, running,
 * waiting with the reason), a "spawn" instant with the parent and spawn
 * site, and flow events ("s" on the waker, "f" where the woken one next
 * runs) from each waker to the coroutine it readied. Timestamps are in
 * microseconds from the start of the trace.
 */
#define _GNU_SOURCE 1
#include "diag.h"
#include "quote.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#define TRACE_DEFAULT_EVENTS 65536
#define TRACE_MAX_EVENTS (1u << 24)
#define TRACE_MAX_NS (INT64_C(3600) * 1000000000)

/* trace_on: the core's (src/observer.c). */

/* One ring slot. The worker that owns a ring writes its slots in place,
 * every field the kind uses (slots are reused, never cleared). */
typedef struct {
    uint64_t ts;    /* raw clock */
    uint8_t kind;
    uint8_t reason; /* TR_SWITCH, TR_PARK: wait reason */
    uint16_t widx;  /* read back: worker index + 1 (0: not on a worker);
                     * not written by the event path */
    int32_t line;   /* TR_SPAWN: spawn line; TR_SWITCH: the out-going
                     * g's kind (TR_PARK, TR_YIELD, TR_EXIT) */
    int64_t g;      /* the coroutine it is about (0: none) */
    union {
        struct {
            int64_t arg;    /* TR_SPAWN: parent; TR_UNPARK: waker;
                             * TR_SWITCH: the g switched to (0: none);
                             * TR_LABEL: value */
            uintptr_t ptr;  /* TR_SPAWN: file; TR_PARK, TR_SWITCH: wait
                             * object; TR_LABEL: key */
        };
        char name[16];      /* TR_NAME, TR_NAME2: 16 bytes of the name */
    };
} trace_ev;
_Static_assert(sizeof(trace_ev) == 40, "a small event");

/* Kinds only the ring holds: one switch (the out-going g's park, yield
 * or exit, and the next g's run) and a name's second half. */
enum { TR_SWITCH = 32, TR_NAME2 };

/* A worker's ring is written by its worker only: no locked operation.
 * busy (0 or 1) is set around each write; leash_trace_stop clears
 * trace_on, then a process-wide barrier (membarrier) makes every
 * worker's earlier busy store visible, and it waits for busy to drop:
 * a writer that set busy after the barrier sees trace_on clear. Where
 * membarrier is missing, writers fence instead (mb_fence). The shared
 * ring (threads that are no worker, rings added since the start) keeps
 * atomic counters. */
typedef struct {
    _Alignas(64) _Atomic uint64_t head; /* events ever written */
    _Atomic int busy;                   /* workers: 0/1; shared: count */
    uint32_t mask;                      /* cap - 1 */
    trace_ev *ev;
} tring;

/* Rings for workers [0, MAXW) and the shared one, at SHARED. The array
 * stays; only the events (ev) come and go, and only while no writer is
 * inside (busy). */
#define MAXW 256
#define SHARED MAXW

static struct {
    _Atomic int state; /* 0 idle, 1 running, 2 starting or stopping */
    int nw;            /* workers with a ring of their own this time */
    uint32_t cap;      /* events per ring, a power of two */
    int mb;            /* membarrier: 0 not tried, 1 registered, -1 none */
    tring rings[MAXW + 1];
    uint64_t raw0, raw1;
    int64_t mono0, mono1;
} T;

/* Set once, before the first start sets trace_on, when membarrier is
 * missing: writers then need a full fence between busy and trace_on. */
static _Atomic int mb_fence;

static inline uint64_t raw_clock(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return (uint64_t)leash_now();
#endif
}

/* The slot to write in w's own ring, with the ring marked busy and its
 * head in *hp; NULL if w has none (off a worker, a worker added since
 * the start) or the trace has stopped. */
static inline trace_ev *wslot(worker *w, tring **rp, uint64_t *hp) {
    if (!w || (unsigned)w->idx >= MAXW)
        return NULL;
    tring *r = &T.rings[w->idx];
    atomic_store_explicit(&r->busy, 1, memory_order_relaxed);
    if (unlikely(atomic_load_explicit(&mb_fence, memory_order_relaxed)))
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst); /* membarrier: stop */
    trace_ev *ev;
    if (likely(atomic_load_explicit(&trace_on, memory_order_acquire)) &&
        likely((ev = r->ev) != NULL)) {
        uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
        *rp = r;
        *hp = h;
        return &ev[h & r->mask];
    }
    atomic_store_explicit(&r->busy, 0, memory_order_release);
    return NULL;
}

static inline void wcommit(tring *r, trace_ev *d, uint64_t h) {
    d->ts = raw_clock();
    atomic_store_explicit(&r->head, h + 1, memory_order_relaxed);
    atomic_store_explicit(&r->busy, 0, memory_order_release);
}

/* The shared ring: any thread, atomics. */
static __attribute__((noinline)) void record_shared(int kind, int reason,
                                                    int32_t line, int64_t g,
                                                    int64_t arg,
                                                    uintptr_t ptr) {
    tring *r = &T.rings[SHARED];
    atomic_fetch_add(&r->busy, 1); /* seq_cst: pairs with stop */
    if (atomic_load(&trace_on) && r->ev) {
        uint64_t h = atomic_fetch_add_explicit(&r->head, 1,
                                               memory_order_relaxed);
        trace_ev *d = &r->ev[h & r->mask];
        *d = (trace_ev){.ts = raw_clock(), .kind = (uint8_t)kind,
                        .reason = (uint8_t)reason, .line = line, .g = g,
                        .arg = arg, .ptr = ptr};
    }
    atomic_fetch_sub_explicit(&r->busy, 1, memory_order_release);
}

/* One event of the caller's: in place in its worker's ring, or through
 * the shared one. */
static inline void emit(worker *w, int kind, int reason, int32_t line,
                        int64_t g, int64_t arg, uintptr_t ptr) {
    tring *r;
    uint64_t h;
    trace_ev *d = wslot(w, &r, &h);
    if (unlikely(!d)) {
        record_shared(kind, reason, line, g, arg, ptr);
        return;
    }
    d->kind = (uint8_t)kind;
    d->reason = (uint8_t)reason;
    d->line = line;
    d->g = g;
    d->arg = arg;
    d->ptr = ptr;
    wcommit(r, d, h);
}

static __attribute__((noinline)) void event_slow(worker *w, int kind,
                                                 coroutine *g) {
    if (!w)
        w = sched_worker();
    if (kind == TR_UNPARK) {
        coroutine *waker = w ? w->cur : NULL;
        emit(w, TR_UNPARK, 0, 0, g->id, waker ? waker->id : 0, 0);
        return;
    }
    int64_t id = g ? g->id : 0;
    switch (kind) {
    case TR_SPAWN:
        emit(w, TR_SPAWN, 0, g->spawn_line, id, g->parent_id,
             (uintptr_t)g->spawn_file);
        /* Labels inherited from the parent (set under the parent's
         * shard lock, and g does not run yet). */
        for (int i = 0; i < g->nlabels; i++)
            trace_label(w, g, g->label_key[i], g->label_val[i]);
        return;
    case TR_PARK:
        emit(w, TR_PARK,
             atomic_load_explicit(&g->wait_reason, memory_order_relaxed), 0,
             id, 0,
             (uintptr_t)atomic_load_explicit(&g->wait_obj,
                                             memory_order_relaxed));
        return;
    case TR_NAME: {
        char nm[32];
        int64_t part[4];
        snprintf(nm, sizeof nm, "%s", g->name);
        memcpy(part, nm, sizeof part);
        emit(w, TR_NAME, 0, 0, id, part[0], (uintptr_t)part[1]);
        emit(w, TR_NAME2, 0, 0, id, part[2], (uintptr_t)part[3]);
        return;
    }
    default:
        emit(w, kind, 0, 0, id, 0, 0);
        return;
    }
}

/* The hot one, a leaf: a wake-up on a worker. */
void trace_event(worker *w, int kind, coroutine *g) {
    tring *r;
    uint64_t h;
    trace_ev *d;
    if (likely(kind == TR_UNPARK) && likely((d = wslot(w, &r, &h)) != NULL)) {
        coroutine *waker = w->cur;
        d->kind = TR_UNPARK;
        d->g = g->id;
        d->arg = waker ? waker->id : 0;
        wcommit(r, d, h);
        return;
    }
    event_slow(w, kind, g);
}

static __attribute__((noinline)) void switch_slow(worker *w, coroutine *g,
                                                  coroutine *to) {
    int out, why = 0;
    uintptr_t obj = 0;
    switch (atomic_load_explicit(&g->state, memory_order_relaxed)) {
    case G_WAITING:
        out = TR_PARK;
        why = atomic_load_explicit(&g->wait_reason, memory_order_relaxed);
        obj = (uintptr_t)atomic_load_explicit(&g->wait_obj,
                                              memory_order_relaxed);
        break;
    case G_RUNNABLE: out = TR_YIELD; break;
    case G_DEAD: out = TR_EXIT; break;
    default:
        if (to)
            trace_event(w, TR_RUN, to);
        return;
    }
    emit(w, TR_SWITCH, why, out, g->id, to ? to->id : 0, obj);
}

/* The other hot one: a parking coroutine switches to the next. */
void trace_switch(worker *w, coroutine *g, coroutine *to) {
    tring *r;
    uint64_t h;
    trace_ev *d;
    if (likely(atomic_load_explicit(&g->state, memory_order_relaxed) ==
               G_WAITING) &&
        likely(to != NULL) && likely((d = wslot(w, &r, &h)) != NULL)) {
        d->kind = TR_SWITCH;
        d->line = TR_PARK;
        d->reason = (uint8_t)atomic_load_explicit(&g->wait_reason,
                                                  memory_order_relaxed);
        d->g = g->id;
        d->arg = to->id;
        d->ptr = (uintptr_t)atomic_load_explicit(&g->wait_obj,
                                                 memory_order_relaxed);
        wcommit(r, d, h);
        return;
    }
    switch_slow(w, g, to);
}

void trace_label(worker *w, coroutine *g, const char *key, const char *val) {
    if (!atomic_load_explicit(&trace_on, memory_order_relaxed))
        return;
    if (!w)
        w = sched_worker();
    /* interned: they live as long as the process */
    emit(w, TR_LABEL, 0, 0, g->id, (int64_t)(uintptr_t)val, (uintptr_t)key);
}

/* ----------------------------------------------------------- start, stop */

static void free_rings(void) {
    for (int i = 0; i <= MAXW; i++) {
        lfree(T.rings[i].ev);
        T.rings[i].ev = NULL;
    }
}

API_FRAME int leash_trace_start(size_t events_per_worker) {
    if (events_per_worker == 0)
        events_per_worker = TRACE_DEFAULT_EVENTS;
    if (events_per_worker > TRACE_MAX_EVENTS)
        return LEASH_EINVAL;
    if (fork_refuse("leash_trace_start"))
        return LEASH_EINVAL;
    int rc = sched_ensure_started();
    if (rc < 0)
        return rc;
    int idle = 0;
    if (!atomic_compare_exchange_strong(&T.state, &idle, 2))
        return -EBUSY;
    uint32_t cap = 16;
    while (cap < events_per_worker)
        cap <<= 1;
    int nw = S.nprocs < MAXW ? S.nprocs : MAXW;
    bool ok = (T.rings[SHARED].ev = lcalloc(cap, sizeof(trace_ev))) != NULL;
    for (int i = 0; ok && i < nw; i++)
        ok = (T.rings[i].ev = lcalloc(cap, sizeof(trace_ev))) != NULL;
    if (!ok) {
        free_rings();
        atomic_store(&T.state, 0);
        return LEASH_ENOMEM;
    }
    for (int i = 0; i <= MAXW; i++)
        atomic_store_explicit(&T.rings[i].head, 0, memory_order_relaxed);
    for (int i = 0; i <= MAXW; i++)
        T.rings[i].mask = cap - 1;
    if (T.mb == 0) {
        T.mb = syscall(SYS_membarrier,
                       MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0
                   ? 1 : -1;
        if (T.mb < 0)
            atomic_store(&mb_fence, 1);
    }
    T.nw = nw;
    T.cap = cap;
    T.mono0 = leash_now();
    T.raw0 = raw_clock();
    atomic_store(&trace_on, 1);
    atomic_store(&T.state, 1);
    return 0;
}

/* One event as read back, with where it came from. */
typedef struct {
    trace_ev e;    /* a switch is read back as its two events; a name's
                    * ptr points to the whole name */
    double us;     /* since the start */
    uint64_t seq;  /* ring index << 41 | position << 1 | half: a total
                    * order for ties */
} rev;

typedef struct {
    FILE *out;
    rev *v;
    size_t n;
    uint64_t dropped;
    double end_us;
    bool first;
} wctx;

static double to_us(uint64_t raw) {
    double span = (double)(T.raw1 - T.raw0);
    double ns = span > 0 ? (double)(int64_t)(raw - T.raw0) *
                               (double)(T.mono1 - T.mono0) / span
                         : 0;
    return ns < 0 ? 0 : ns / 1000.0;
}

static int by_time(const void *a, const void *b) {
    const rev *x = a, *y = b;
    if (x->us != y->us)
        return x->us < y->us ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int by_g(const void *a, const void *b) {
    const rev *x = a, *y = b;
    if (x->e.g != y->e.g)
        return x->e.g < y->e.g ? -1 : 1;
    return by_time(a, b);
}

static void sep(wctx *c) {
    fputs(c->first ? "\n" : ",\n", c->out);
    c->first = false;
}

static void meta(wctx *c, const char *what, int pid, int64_t tid,
                 const char *name) {
    sep(c);
    fprintf(c->out, "{\"ph\":\"M\",\"name\":\"%s\",\"pid\":%d,\"tid\":%lld,"
                    "\"ts\":0,\"args\":{\"name\":", what, pid, (long long)tid);
    quote_json(c->out, name);
    fputs("}}", c->out);
}

/* The worker tracks: what ran when ("X" slices), and netpoll waits. */
static void write_workers(wctx *c) {
    char buf[64];
    for (int i = 0; i < T.nw; i++) {
        snprintf(buf, sizeof buf, "worker %d", i);
        meta(c, "thread_name", 1, i + 1, buf);
    }
    meta(c, "thread_name", 1, 0, "other threads");
    /* c->v is sorted by time: follow each worker along it (track i is
     * worker i - 1; 0: the shared ring, where nothing runs). */
    int nw = T.nw + 1;
    int64_t *run_g = lcalloc((size_t)nw, sizeof *run_g);
    double *since = lcalloc((size_t)nw, sizeof *since);
    uint8_t *polling = lcalloc((size_t)nw, 1);
    if (!run_g || !since || !polling)
        goto out;
    for (size_t k = 0; k <= c->n; k++) {
        const trace_ev *e = k < c->n ? &c->v[k].e : NULL;
        double us = k < c->n ? c->v[k].us : c->end_us;
        for (int i = 0; i < nw; i++) {
            if (e && e->widx != i)
                continue;
            bool ends = !e || (run_g[i] && (e->kind == TR_RUN ||
                                            ((e->kind == TR_PARK ||
                                              e->kind == TR_YIELD ||
                                              e->kind == TR_EXIT) &&
                                             e->g == run_g[i])));
            if (ends && run_g[i]) {
                sep(c);
                fprintf(c->out,
                        "{\"ph\":\"X\",\"name\":\"g %lld\",\"cat\":\"run\","
                        "\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,"
                        "\"args\":{\"g\":%lld}}",
                        (long long)run_g[i], i, since[i], us - since[i],
                        (long long)run_g[i]);
                run_g[i] = 0;
            }
            if ((!e || e->kind == TR_POLL_END) && polling[i]) {
                sep(c);
                fprintf(c->out,
                        "{\"ph\":\"X\",\"name\":\"netpoll\",\"cat\":\"idle\","
                        "\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f}",
                        i, since[i], us - since[i]);
                polling[i] = 0;
            }
            if (e && e->kind == TR_RUN) {
                run_g[i] = e->g;
                since[i] = us;
            } else if (e && e->kind == TR_POLL_BEGIN && !run_g[i]) {
                polling[i] = 1;
                since[i] = us;
            }
        }
    }
out:
    lfree(run_g);
    lfree(since);
    lfree(polling);
}

static void state_begin(wctx *c, int64_t g, double us, const char *name,
                        const trace_ev *e) {
    sep(c);
    fprintf(c->out, "{\"ph\":\"B\",\"name\":");
    quote_json(c->out, name);
    fprintf(c->out, ",\"cat\":\"state\",\"pid\":2,\"tid\":%lld,\"ts\":%.3f",
            (long long)g, us);
    if (e && e->kind == TR_PARK)
        fprintf(c->out, ",\"args\":{\"object\":\"%#lx\"}",
                (unsigned long)e->ptr);
    else if (e && e->kind == TR_RUN)
        fprintf(c->out, ",\"args\":{\"worker\":%d}", e->widx - 1);
    fputs("}", c->out);
}

static void state_end(wctx *c, int64_t g, double us) {
    sep(c);
    fprintf(c->out, "{\"ph\":\"E\",\"pid\":2,\"tid\":%lld,\"ts\":%.3f}",
            (long long)g, us);
}

/* One coroutine's events, [a, b) of c->v sorted by coroutine. */
static void write_g(wctx *c, size_t a, size_t b, uint64_t *flow_id) {
    int64_t g = c->v[a].e.g;
    const char *name = NULL, *lk[LEASH_MAX_LABELS], *lv[LEASH_MAX_LABELS];
    int nl = 0;
    for (size_t k = a; k < b; k++) {
        const trace_ev *e = &c->v[k].e;
        if (e->kind == TR_NAME)
            name = (const char *)e->ptr;
        if (e->kind == TR_LABEL && e->ptr) {
            int i = 0;
            while (i < nl && lk[i] != (const char *)e->ptr)
                i++;
            if (i == nl && nl < LEASH_MAX_LABELS)
                nl++;
            if (i < nl) {
                lk[i] = (const char *)e->ptr;
                lv[i] = (const char *)(uintptr_t)e->arg;
            }
        }
    }
    char buf[160];
    int n = snprintf(buf, sizeof buf, "g %lld%s%s", (long long)g,
                     name && name[0] ? " " : "", name ? name : "");
    for (int i = 0; i < nl && n > 0 && (size_t)n < sizeof buf; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, " %s=%s", lk[i],
                      lv[i] ? lv[i] : "");
    meta(c, "thread_name", 2, g, buf);
    sep(c);
    fprintf(c->out, "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":2,"
                    "\"tid\":%lld,\"ts\":0,\"args\":{\"sort_index\":%lld}}",
            (long long)g, (long long)g);

    bool open = false;
    int64_t waker = 0;
    double woke = 0;
    for (size_t k = a; k < b; k++) {
        const trace_ev *e = &c->v[k].e;
        double us = c->v[k].us;
        const char *st = NULL;
        switch (e->kind) {
        case TR_SPAWN:
            sep(c);
            fprintf(c->out, "{\"ph\":\"i\",\"s\":\"t\",\"name\":\"spawn\","
                            "\"cat\":\"spawn\",\"pid\":2,\"tid\":%lld,"
                            "\"ts\":%.3f,\"args\":{\"parent\":%lld,"
                            "\"site\":",
                    (long long)g, us, (long long)e->arg);
            snprintf(buf, sizeof buf, "%s:%d",
                     e->ptr ? (const char *)e->ptr : "?", (int)e->line);
            quote_json(c->out, buf);
            fputs(",\"labels\":{", c->out);
            for (int i = 0; i < nl; i++) {
                if (i)
                    fputc(',', c->out);
                quote_json(c->out, lk[i]);
                fputc(':', c->out);
                quote_json(c->out, lv[i]);
            }
            fputs("}}}", c->out);
            st = "runnable";
            break;
        case TR_UNPARK:
            st = "runnable";
            waker = e->arg;
            woke = us;
            break;
        case TR_YIELD: st = "runnable"; break;
        case TR_RUN: st = "running"; break;
        case TR_PARK: st = wait_reason_str(e->reason); break;
        case TR_EXIT: st = ""; break;
        default: continue;
        }
        if (open)
            state_end(c, g, us);
        open = false;
        if (e->kind == TR_RUN && waker) {
            uint64_t id = ++*flow_id;
            sep(c);
            fprintf(c->out, "{\"ph\":\"s\",\"name\":\"wake\",\"cat\":\"wake\","
                            "\"id\":%llu,\"pid\":2,\"tid\":%lld,\"ts\":%.3f}",
                    (unsigned long long)id, (long long)waker, woke);
            sep(c);
            fprintf(c->out, "{\"ph\":\"f\",\"bp\":\"e\",\"name\":\"wake\","
                            "\"cat\":\"wake\",\"id\":%llu,\"pid\":2,"
                            "\"tid\":%lld,\"ts\":%.3f}",
                    (unsigned long long)id, (long long)g,
                    us < woke ? woke : us);
            waker = 0;
        }
        if (st[0]) {
            state_begin(c, g, us, st, e);
            open = true;
        }
    }
    if (open)
        state_end(c, g, c->end_us);
}

static intptr_t write_trace(void *arg) {
    wctx *c = arg;
    FILE *out = c->out;
    fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"leash\","
          "\"dropped_events\":", out);
    fprintf(out, "%llu,\"events\":%zu,\"events_per_worker\":%u},"
                 "\"traceEvents\":[",
            (unsigned long long)c->dropped, c->n, T.cap);
    c->first = true;
    meta(c, "process_name", 1, 0, "leash workers");
    meta(c, "process_name", 2, 0, "leash coroutines");
    sep(c);
    fprintf(out, "{\"ph\":\"M\",\"name\":\"leash_trace\",\"pid\":1,\"tid\":0,"
                 "\"ts\":0,\"args\":{\"dropped_events\":%llu,\"events\":%zu}}",
            (unsigned long long)c->dropped, c->n);
    qsort(c->v, c->n, sizeof *c->v, by_time);
    write_workers(c);
    qsort(c->v, c->n, sizeof *c->v, by_g);
    uint64_t flow = 0;
    size_t a = 0;
    while (a < c->n && c->v[a].e.g == 0)
        a++;
    for (size_t b = a; a < c->n; a = b) {
        while (b < c->n && c->v[b].e.g == c->v[a].e.g)
            b++;
        write_g(c, a, b, &flow);
    }
    fputs("\n]}\n", out);
    return ferror(out) ? LEASH_ENOMEM : 0;
}

API_FRAME int leash_trace_stop(FILE *out) {
    int running = 1;
    if (!atomic_compare_exchange_strong(&T.state, &running, 2))
        return LEASH_EINVAL;
    atomic_store(&trace_on, 0); /* seq_cst: pairs with record_shared */
    T.raw1 = raw_clock();
    T.mono1 = leash_now();
    /* Every worker's busy store before this is visible after it; one
     * after it is followed by a load of trace_on that sees 0. */
    if (T.mb > 0 &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        rt_fatal("leash: membarrier failed");
    for (int i = 0; i <= MAXW; i++)
        while (atomic_load_explicit(&T.rings[i].busy, memory_order_acquire))
            sched_yield();
    size_t total = 0, names = 0;
    uint64_t dropped = 0;
    for (int i = 0; i <= MAXW; i++) {
        if (!T.rings[i].ev)
            continue;
        uint64_t h = atomic_load_explicit(&T.rings[i].head,
                                          memory_order_relaxed);
        total += h < T.cap ? h : T.cap;
        dropped += h > T.cap ? h - T.cap : 0;
        for (uint64_t p = h > T.cap ? h - T.cap : 0; out && p < h; p++)
            names += T.rings[i].ev[p & (T.cap - 1)].kind == TR_NAME;
    }
    int rc = 0;
    /* Up to two events a slot (a switch). */
    rev *v = out ? lmalloc((total ? 2 * total : 1) * sizeof *v) : NULL;
    char (*nm)[33] = out ? lcalloc(names ? names : 1, sizeof *nm) : NULL;
    if (out && (!v || !nm))
        rc = LEASH_ENOMEM;
    if (v && nm) {
        size_t n = 0, nn = 0;
        for (int i = 0; i <= MAXW; i++) {
            const trace_ev *ev = T.rings[i].ev;
            if (!ev)
                continue;
            uint64_t h = atomic_load_explicit(&T.rings[i].head,
                                              memory_order_relaxed);
            uint64_t seq = (uint64_t)i << 41;
            for (uint64_t p = h > T.cap ? h - T.cap : 0; p < h; p++) {
                const trace_ev *e = &ev[p & (T.cap - 1)];
                rev r = {*e, to_us(e->ts), seq | p << 1};
                r.e.widx = (uint16_t)(i == SHARED ? 0 : i + 1);
                switch (e->kind) {
                case TR_NAME2: /* its first half was overwritten */
                    continue;
                case TR_NAME: {
                    const trace_ev *e2 = &ev[(p + 1) & (T.cap - 1)];
                    memcpy(nm[nn], e->name, 16);
                    if (p + 1 < h && e2->kind == TR_NAME2 && e2->g == e->g)
                        memcpy(nm[nn] + 16, e2->name, 16);
                    r.e.ptr = (uintptr_t)nm[nn++];
                    break;
                }
                case TR_SWITCH:
                    r.e.kind = (uint8_t)e->line;
                    v[n++] = r;
                    if (!e->arg)
                        continue;
                    r.e.kind = TR_RUN;
                    r.e.g = e->arg;
                    r.seq |= 1;
                    break;
                default:
                    break;
                }
                v[n++] = r;
            }
        }
        wctx c = {.out = out, .v = v, .n = n, .dropped = dropped,
                  .end_us = (double)(T.mono1 - T.mono0) / 1000.0};
        rc = (int)diag_on_thread(write_trace, &c);
    }
    lfree(v);
    lfree(nm);
    free_rings();
    atomic_store(&T.state, 0);
    return rc;
}

API_FRAME int leash_trace(FILE *out, int64_t duration_ns) {
    if (!out || duration_ns <= 0 || duration_ns > TRACE_MAX_NS)
        return LEASH_EINVAL;
    int rc = leash_trace_start(0);
    if (rc < 0)
        return rc;
    leash_sleep(duration_ns);
    return leash_trace_stop(out);
}
