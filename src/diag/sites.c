/*
 * sites.c — live coroutine counts per spawn site, with growth detection.
 *
 * Once a second sysmon counts the live coroutines per spawn site (the
 * file:line of the leash_go call) and keeps the last SITE_HISTORY counts
 * of each site. A site whose count rose at every one of the last
 * SITE_GROWTH samples is "growing": the signature of a leak in a loop
 * (queryAll called again and again), caught long before memory runs out.
 * Counting walks the registry under its shard locks, off the hot paths;
 * spawn and exit pay nothing for it.
 */
#include "diag.h"

#define SITE_MAX 256
#define SITE_HISTORY 8
#define SITE_GROWTH 4

typedef struct {
    const char *file; /* NULL: free slot */
    int line;
    int64_t hist[SITE_HISTORY]; /* hist[0] newest */
    int nhist;
} site;

static struct {
    llock lock;
    site s[SITE_MAX];
    int64_t last;
} T = {.lock = LLOCK_INIT};

static site *site_get(const char *file, int line) {
    uint32_t h = (uint32_t)((uintptr_t)file >> 3) * 31u + (uint32_t)line;
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

/* sysmon, about once a second. */
void sites_sample(int64_t now) {
    if (now - T.last < 1000000000)
        return;
    T.last = now;
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
    for (int sh = 0; sh < NSHARDS; sh++) {
        llock_acquire(&G_shards[sh].lock);
        SHARD_FOR_EACH(&G_shards[sh], g) {
            if (!g->spawn_file)
                continue;
            site *x = site_get(g->spawn_file, g->spawn_line);
            if (x) {
                if (x->nhist == 0)
                    x->nhist = 1;
                x->hist[0]++;
            }
        }
        llock_release(&G_shards[sh].lock);
    }
    llock_release(&T.lock);
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
