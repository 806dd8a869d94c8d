/* SPDX-License-Identifier: MIT */
/*
 * labels.c — key=value labels on coroutines, and on contexts.
 *
 * Labels are few and read by dumps, so they are arrays of interned
 * strings in the g: copying them to a child at spawn is two memcpys, and
 * a dump can print them without chasing anything freed. Interned strings
 * live for the life of the process (a label vocabulary is small; a
 * program that makes unbounded distinct labels is misusing them, as in
 * Go's pprof).
 */
#include "internal.h"

#define INTERN_BUCKETS 256

typedef struct istr {
    struct istr *next;
    char s[];
} istr;

static struct {
    llock lock;
    istr *b[INTERN_BUCKETS];
} I = {.lock = LLOCK_INIT(LR_LABELS)};

const char *label_intern(const char *s) {
    uint32_t h = 2166136261u;
    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h %= INTERN_BUCKETS;
    llock_acquire(&I.lock);
    for (istr *x = I.b[h]; x; x = x->next)
        if (!strcmp(x->s, s)) {
            llock_release(&I.lock);
            return x->s;
        }
    size_t n = strlen(s);
    istr *x = lmalloc(sizeof *x + n + 1);
    if (x) {
        memcpy(x->s, s, n + 1);
        x->next = I.b[h];
        I.b[h] = x;
    }
    llock_release(&I.lock);
    return x ? x->s : NULL;
}

/* Sets key=value (value NULL: removes key) on g. */
static int g_label_set(coroutine *g, const char *key, const char *value) {
    const char *k = label_intern(key);
    const char *v = value ? label_intern(value) : NULL;
    if (!k || (value && !v))
        return LEASH_ENOMEM;
    llock *lk = g->foreign ? NULL : &G_shards[g->shard].lock;
    if (lk)
        llock_acquire(lk);
    int rc = 0, i = 0;
    while (i < g->nlabels && g->label_key[i] != k)
        i++;
    if (!v) {
        if (i < g->nlabels) {
            g->nlabels--;
            g->label_key[i] = g->label_key[g->nlabels];
            g->label_val[i] = g->label_val[g->nlabels];
        }
    } else if (i < g->nlabels) {
        g->label_val[i] = v;
    } else if (g->nlabels < LEASH_MAX_LABELS) {
        g->label_key[i] = k;
        g->label_val[i] = v;
        g->nlabels++;
    } else {
        rc = LEASH_EINVAL; /* full: the API's limit, not a lack of memory */
    }
    if (lk)
        llock_release(lk);
    if (rc == 0 && !g->foreign)
        observer_impl.trace_label(NULL, g, k, v);
    return rc;
}

int leash_label_set(const char *key, const char *value) {
    if (!key || !*key)
        return LEASH_EINVAL;
    coroutine *g = sched_getg_or_foreign();
    if (!g)
        return LEASH_ENOMEM;
    return g_label_set(g, key, value);
}

const char *leash_label_get(const char *key) {
    coroutine *g = sched_getg();
    if (!g || !key)
        return NULL;
    for (int i = 0; i < g->nlabels; i++)
        if (!strcmp(g->label_key[i], key))
            return g->label_val[i];
    return NULL;
}

/* Label contexts are value contexts whose key is a tagged interned
 * string, so ordinary values and labels never collide. */
static const char label_tag[] = "leash.label";

typedef struct {
    const char *key, *val;
} ctx_label;

leash_ctx *leash_ctx_with_label_at(const char *file, int line,
                                   leash_ctx *parent, const char *key,
                                   const char *value) {
    if (!key || !*key || !value)
        return NULL;
    const char *k = label_intern(key), *v = label_intern(value);
    if (!k || !v)
        return NULL;
    ctx_label *l = lmalloc(sizeof *l); /* lives as long as the process */
    if (!l)
        return NULL;
    l->key = k;
    l->val = v;
    leash_ctx *c = leash_ctx_with_value_at(file, line, parent, label_tag, l);
    if (!c)
        lfree(l);
    return c;
}

int leash_label_apply(leash_ctx *ctx) {
    if (!obj_check(ctx, OBJ_CTX))
        return LEASH_EINVAL;
    coroutine *g = sched_getg_or_foreign();
    if (!g)
        return LEASH_ENOMEM;
    /* Ancestors first, so the nearest label for a key wins. */
    const ctx_label *ls[64];
    int n = ctx_values(ctx, label_tag, (const void **)ls, 64);
    for (int i = n - 1; i >= 0; i--) {
        int rc = g_label_set(g, ls[i]->key, ls[i]->val);
        if (rc < 0)
            return rc;
    }
    return 0;
}
