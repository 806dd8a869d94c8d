/* SPDX-License-Identifier: MIT */
/*
 * env.c — the one place that reads leash's environment variables.
 *
 * Every LEASH_* variable is read through env_bool, env_u64 or env_str, so
 * that every one is parsed by the same strict rules (docs/TUNING.md):
 *
 *   booleans  exactly 1/0, true/false, yes/no, on/off, any case;
 *   numbers   decimal digits, optionally one suffix k, m or g (x1024^n),
 *             nothing else: no sign, no space, no 0x, no overflow;
 *   unset or empty: the default, silently.
 *
 * Anything else is rejected with one line on stderr naming the variable,
 * its value and what is accepted, and the default is used. The defaults of
 * the security-relevant switches are their safe side (LEASH_DEBUG_ALLOW_
 * REMOTE off), so a typo never opens anything. A variable is reported once
 * per process however often it is read (some are read per request).
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>

/* Reports `name` once: true the first time. */
static bool first_complaint(const char *name) {
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static const char *seen[64];
    static int nseen;
    bool first = true;
    rmutex_lock(&mu, LR_ENV);
    for (int i = 0; i < nseen && first; i++)
        first = strcmp(seen[i], name) != 0;
    if (first && nseen < (int)(sizeof seen / sizeof seen[0]))
        seen[nseen++] = name; /* names are string literals */
    rmutex_unlock(&mu);
    return first;
}

void env_reject(const char *name, const char *value, const char *want,
                const char *using) {
    if (!first_complaint(name))
        return;
    fprintf(stderr, "leash: ignoring %s=%s (want %s); using %s\n", name,
            value, want, using);
}

const char *env_str(const char *name) {
    const char *s = getenv(name);
    return s && *s ? s : NULL;
}

bool env_bool(const char *name, bool dflt) {
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    const char *s = env_str(name);
    if (!s)
        return dflt;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!strcasecmp(s, yes[i]))
            return true;
        if (!strcasecmp(s, no[i]))
            return false;
    }
    env_reject(name, s, "1/0/true/false/yes/no/on/off", dflt ? "on" : "off");
    return dflt;
}

/* Parses decimal digits with an optional k/m/g suffix into *out; false
 * for anything else, including a value that does not fit in 64 bits. */
static bool parse_u64(const char *s, uint64_t *out) {
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (p == s) /* no digits: a sign, a space, empty */
        return false;
    int shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    default: break;
    }
    if (*p || v > UINT64_MAX >> shift) /* junk, or the suffix overflows */
        return false;
    *out = v << shift;
    return true;
}

uint64_t env_u64(const char *name, uint64_t dflt, uint64_t lo, uint64_t hi) {
    const char *s = env_str(name);
    uint64_t v;
    if (!s)
        return dflt;
    if (parse_u64(s, &v) && v >= lo && v <= hi)
        return v;
    char want[96], using[24];
    snprintf(want, sizeof want, "%llu..%llu, optional suffix k/m/g",
             (unsigned long long)lo, (unsigned long long)hi);
    snprintf(using, sizeof using, "%llu", (unsigned long long)dflt);
    env_reject(name, s, want, using);
    return dflt;
}
