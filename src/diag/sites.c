/* SPDX-License-Identifier: MIT */
/*
 * sites.c — live coroutine counts per spawn site, with growth detection.
 *
 * Now and then sysmon counts the live coroutines per spawn site (the
 * file:line of the leash_go call) and keeps the last SITE_HISTORY counts
 * of each site. A site whose count rose at every one of the last
 * SITE_GROWTH samples is "growing": the signature of a leak in a loop
 * (queryAll called again and again), caught long before memory runs out.
 *
 * Counting walks the registry (registry_walk: one shard lock at a time,
 * a batch of slots per hold), into a table of sysmon's own, and merges it
 * under T.lock, so neither spawn and exit nor a reader of the sites waits
 * for a walk. Spawn and exit pay nothing. A walk touches every coroutine
 * (a cache miss each: ~0.1 s for a million), so samples are at least a
 * second apart and at least SITE_COST_FACTOR times the last walk's
 * duration: sysmon spends at most ~1/SITE_COST_FACTOR of a CPU on it.
 */
#include "diag.h"

#define SITE_MAX 256
#define SITE_HISTORY 8
#define SITE_GROWTH 4
#define SITE_COST_FACTOR 50

typedef struct {
    const char *file; /* NULL: free slot */
    int line;
    int64_t hist[SITE_HISTORY]; /* hist[0] newest */
    int nhist;
} site;

typedef struct {
    const char *file;
    int line;
    int64_t n;
} site_count;

static struct {
    llock lock;
    site s[SITE_MAX];
    int64_t next;         /* sysmon's: the next sample is due then */
    site_count c[SITE_MAX]; /* sysmon's: the walk's counts */
    int64_t states[3];    /* sysmon's: running, runnable, waiting (the
                           * user's coroutines), for livepage.c */
} T = {.lock = LLOCK_INIT(LR_SITES)};

static uint32_t site_hash(const char *file, int line) {
    return (uint32_t)((uintptr_t)file >> 3) * 31u + (uint32_t)line;
}

/* T.lock held. */
static site *site_get(const char *file, int line) {
    uint32_t h = site_hash(file, line);
    for (int k = 0; k < SITE_MAX; k++) {
        site *x = &T.s[(h + (uint32_t)k) % SITE_MAX];
        if (x->file == file && x->line == line)
            return x;
        if (!x->file) {
            x->file = file;
            x->line = line;
            return x;
        }
    }
    return NULL; /* table full: that site goes uncounted */
}

/* registry_walk's callback: one coroutine into T.c (no lock taken). */
static bool count_one(coroutine *g, void *arg) {
    (void)arg;
    if (!atomic_load_explicit(&g->system, memory_order_relaxed)) {
        int st = atomic_load_explicit(&g->state, memory_order_relaxed);
        if (st == G_RUNNING || st == G_RUNNABLE || st == G_WAITING)
            T.states[st == G_RUNNING ? 0 : st == G_RUNNABLE ? 1 : 2]++;
    }
    if (!g->spawn_file)
        return true;
    uint32_t h = site_hash(g->spawn_file, g->spawn_line);
    for (int k = 0; k < SITE_MAX; k++) {
        site_count *x = &T.c[(h + (uint32_t)k) % SITE_MAX];
        if (!x->file) {
            *x = (site_count){g->spawn_file, g->spawn_line, 0};
        } else if (x->file != g->spawn_file || x->line != g->spawn_line) {
            continue;
        }
        x->n++;
        break;
    }
    return true;
}

/* sysmon: a new sample when one is due (see the top of the file). */
void sites_sample(int64_t now) {
    if (now < T.next)
        return;
    memset(T.c, 0, sizeof T.c);
    memset(T.states, 0, sizeof T.states);
    registry_walk(count_one, NULL);
    int64_t end = leash_now();
    int64_t gap = (end - now) * SITE_COST_FACTOR;
    T.next = now + (gap > 1000000000 ? gap : 1000000000);
    llock_acquire(&T.lock);
    for (int i = 0; i < SITE_MAX; i++) {
        site *x = &T.s[i];
        if (!x->file)
            continue;
        memmove(x->hist + 1, x->hist, sizeof x->hist[0] * (SITE_HISTORY - 1));
        x->hist[0] = 0;
        if (x->nhist < SITE_HISTORY)
            x->nhist++;
    }
    for (int i = 0; i < SITE_MAX; i++) {
        site *x = T.c[i].file ? site_get(T.c[i].file, T.c[i].line) : NULL;
        if (x) {
            if (x->nhist == 0)
                x->nhist = 1;
            x->hist[0] = T.c[i].n;
        }
    }
    llock_release(&T.lock);
    /* The live page's ring (livepage.c): the busiest sites of this walk. */
    dsite top[LIVE_SITES];
    int ntop = 0;
    for (int i = 0; i < SITE_MAX; i++) {
        if (!T.c[i].file || !T.c[i].n)
            continue;
        int k;
        if (ntop < LIVE_SITES)
            k = ntop++;
        else if (top[LIVE_SITES - 1].live < T.c[i].n)
            k = LIVE_SITES - 1;
        else
            continue;
        while (k > 0 && top[k - 1].live < T.c[i].n) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = (dsite){T.c[i].file, T.c[i].line, T.c[i].n, false};
    }
    live_sample(now, T.states, top, ntop);
}

static bool growing(const site *x) {
    if (x->nhist < SITE_GROWTH + 1)
        return false;
    for (int i = 0; i < SITE_GROWTH; i++)
        if (x->hist[i] <= x->hist[i + 1])
            return false;
    return true;
}

/* The busiest sites (most live coroutines at the last sample) first;
 * returns how many were written. */
int diag_sites(dsite *out, int max) {
    dsite all[SITE_MAX];
    int n = 0;
    llock_acquire(&T.lock);
    for (int i = 0; i < SITE_MAX; i++) {
        const site *x = &T.s[i];
        if (x->file && x->hist[0])
            all[n++] = (dsite){x->file, x->line, x->hist[0], growing(x)};
    }
    llock_release(&T.lock);
    for (int i = 1; i < n; i++) { /* insertion sort, by count descending */
        dsite v = all[i];
        int j = i - 1;
        while (j >= 0 && all[j].live < v.live) {
            all[j + 1] = all[j];
            j--;
        }
        all[j + 1] = v;
    }
    if (n > max)
        n = max;
    memcpy(out, all, sizeof *out * (size_t)(n > 0 ? n : 0));
    return n;
}

/* Whether the site file:line (the pointer leash_go recorded) is growing
 * now: the crowd rule's sign of a leak (metrics.c). */
bool diag_site_growing(const char *file, int line) {
    if (!file)
        return false;
    bool g = false;
    llock_acquire(&T.lock);
    uint32_t h = site_hash(file, line);
    for (int k = 0; k < SITE_MAX; k++) {
        const site *x = &T.s[(h + (uint32_t)k) % SITE_MAX];
        if (!x->file)
            break;
        if (x->file == file && x->line == line) {
            g = growing(x);
            break;
        }
    }
    llock_release(&T.lock);
    return g;
}
