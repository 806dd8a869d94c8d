/* SPDX-License-Identifier: MIT */
/*
 * test_env.c — strict parsing of the LEASH_* environment variables.
 *
 * The parsers (env_bool, env_u64) are checked in-process against a table
 * of valid, invalid and edge values. Then every variable the runtime reads
 * is set, one at a time, for a child process (testprog_env_probe) that
 * runs the code reading it: a rejected value must be named on stderr
 * ("NAME=value"), an accepted one must not. Last, the effects that made
 * loose parsing dangerous: LEASH_DEBUG_ALLOW_REMOTE=false must not open
 * the endpoint to the network, a negative LEASH_PROCS must not wrap.
 *
 * LEASH_TEST_TIMEOUT 120
 */
#define _GNU_SOURCE 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core_util.h"
#include "internal.h"

/* ------------------------------------------------------------ parsers */

static const struct {
    const char *value;
    int want; /* 1 true, 0 false, -1 rejected (the default) */
} bools[] = {
    {"1", 1},      {"true", 1},   {"yes", 1},    {"on", 1},   {"TRUE", 1},
    {"Yes", 1},    {"ON", 1},     {"0", 0},      {"false", 0}, {"no", 0},
    {"off", 0},    {"FALSE", 0},  {"No", 0},     {"OFF", 0},  {"00", -1},
    {" 0", -1},    {"0 ", -1},    {"abc", -1},   {"2", -1},   {"-1", -1},
    {"truee", -1}, {"y", -1},     {"enable", -1}, {"1 ", -1},
};

Test(env_parse, bool_table) {
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        setenv("LEASH_TEST_BOOL", bools[i].value, 1);
        for (int dflt = 0; dflt < 2; dflt++) {
            int want = bools[i].want < 0 ? dflt : bools[i].want;
            cr_expect_eq(env_bool("LEASH_TEST_BOOL", dflt), want,
                         "'%s' (default %d)", bools[i].value, dflt);
        }
    }
    unsetenv("LEASH_TEST_BOOL");
    cr_expect(env_bool("LEASH_TEST_BOOL", true));
    setenv("LEASH_TEST_BOOL", "", 1); /* empty: unset */
    cr_expect(!env_bool("LEASH_TEST_BOOL", false));
}

#define DFLT 77u
static const struct {
    const char *value;
    uint64_t lo, hi, want; /* DFLT: rejected */
} nums[] = {
    {"0", 0, 10, 0},
    {"10", 0, 10, 10},
    {"11", 0, 10, DFLT}, /* range */
    {"1k", 0, UINT64_MAX, 1024},
    {"2M", 0, UINT64_MAX, 2u << 20},
    {"3g", 0, UINT64_MAX, 3ull << 30},
    {"18446744073709551615", 0, UINT64_MAX, UINT64_MAX},
    {"18446744073709551616", 0, UINT64_MAX, DFLT}, /* overflow */
    {"17179869184g", 0, UINT64_MAX, DFLT},         /* 2^34 * 2^30 */
    {"17179869183g", 0, UINT64_MAX, 17179869183ull << 30},
    {"18014398509481984k", 0, UINT64_MAX, DFLT},   /* 2^54 * 2^10 */
    {"-18446744073709551613", 0, UINT64_MAX, DFLT}, /* strtoull took 3 */
    {"-1", 0, UINT64_MAX, DFLT},
    {"+1", 0, UINT64_MAX, DFLT},
    {" 1", 0, UINT64_MAX, DFLT},
    {"1 ", 0, UINT64_MAX, DFLT},
    {"0x10", 0, UINT64_MAX, DFLT},
    {"1.5", 0, UINT64_MAX, DFLT},
    {"1kb", 0, UINT64_MAX, DFLT},
    {"1t", 0, UINT64_MAX, DFLT},
    {"k", 0, UINT64_MAX, DFLT},
    {"abc", 0, UINT64_MAX, DFLT},
};

Test(env_parse, u64_table) {
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        setenv("LEASH_TEST_U64", nums[i].value, 1);
        cr_expect_eq(env_u64("LEASH_TEST_U64", DFLT, nums[i].lo, nums[i].hi),
                     nums[i].want, "'%s'", nums[i].value);
    }
    setenv("LEASH_TEST_U64", "", 1);
    cr_expect_eq(env_u64("LEASH_TEST_U64", DFLT, 0, 100), DFLT);
}

/* ------------------------------------------------- every variable read */

static char *probe(const char *mode, const char *const *env, int *status,
                   int timeout_s, bool *timed_out) {
    const char *args[] = {mode, NULL};
    char *out = NULL;
    *status = cu_run_prog("env_probe", args, env, &out, timeout_s, timed_out);
    cr_assert_neq(*status, -1, "cannot run testprog_env_probe");
    return out;
}

typedef struct {
    const char *name;
    const char *good[4];   /* accepted values */
    const char *bad[6];    /* rejected values */
    const char *extra;     /* another variable the reading path needs */
} var_row;

#define NUMBAD "-1", "+5", "1x", "18446744073709551616", " 5"
static const var_row vars[] = {
    {"LEASH_PROCS", {"1", "2", "1k"}, {NUMBAD, "0"}, NULL},
    {"LEASH_STACK_SIZE", {"65536", "128k", "1m"}, {NUMBAD, "2g"}, NULL},
    {"LEASH_HOG_MS", {"1", "1000"}, {NUMBAD, "0"}, NULL},
    {"LEASH_LEAKCHECK", {"0", "no", "OFF"}, {"abc", "00", " 0", "2"}, NULL},
    {"LEASH_LEAKCHECK_TIMEOUT_MS", {"0", "100"}, {NUMBAD}, "LEASH_LEAKCHECK=1"},
    {"LEASH_ORPHANS", {"record", "report", "wake"}, {"bogus", "Wake ", "1"},
     NULL},
    {"LEASH_STRICT", {"0", "false", "No", "off"}, {"abc", "00", "-1"}, NULL},
    {"LEASH_DEADLOCK", {"1", "0", "on", "false"}, {"abc", "nope"}, NULL},
    {"LEASH_DEBUG_ADDR", {"127.0.0.1:0", ":0"}, {"bogus", "127.0.0.1"}, NULL},
    {"LEASH_DEBUG_TIMEOUT_MS", {"1000", "5k"}, {NUMBAD, "0"}, NULL},
    {"LEASH_DEBUG_HEADER_TIMEOUT_MS", {"1000", "5k"}, {NUMBAD, "0"}, NULL},
    {"LEASH_DEBUG_MAX_CONNS", {"1", "64"}, {NUMBAD, "0"}, NULL},
    {"LEASH_DEBUG_ALLOW_REMOTE", {"0", "1", "off", "ON"},
     {"abc", "00", " 0", "f"}, NULL},
    {"LEASH_AGENT", {"0", "false", "off"}, {"abc", "00", "y"}, NULL},
    {"LEASH_SUSPECT_CROWD", {"2", "100"}, {NUMBAD, "1"}, NULL},
    {"LEASH_SUSPECT_WAIT_MS", {"1", "60000"}, {NUMBAD, "0"}, NULL},
    {"LEASH_METRICS_SITES", {"1", "1000"}, {NUMBAD, "0"}, NULL},
    {"LEASH_METRICS_ADDR", {"127.0.0.1:0", "0.0.0.0:0"}, {"bogus", "127.0.0.1"},
     NULL},
    {"LEASH_SYSTEM_DEBUGINFO", {"0", "1", "off"}, {"abc", "00"}, NULL},
    {"LEASH_DUMP_SIGNAL", {"USR2", "SIGUSR2", "12"},
     {"BOGUS", "SEGV", "0", "27"},
     NULL},
    {"LEASH_BLOCKPROFILERATE", {"0", "1", "10000", "1k"}, {NUMBAD, "4g"},
     NULL},
    {"LEASH_MUTEXPROFILEFRACTION", {"0", "1", "100"}, {NUMBAD, "4g"}, NULL},
    {"LEASH_DUMP_FORMAT", {"0", "4"}, {NUMBAD, "5"}, "LEASH_DUMP_SIGNAL=USR1"},
    {"LEASH_DUMP_FILE", {"/dev/null"}, {"/nonexistent/dir/dump", "/dev/full"},
     "LEASH_DUMP_SIGNAL=USR1"},
};

static void check_value(const var_row *v, const char *value, bool good) {
    char set[256];
    snprintf(set, sizeof set, "%s=%s", v->name, value);
    const char *env[] = {set, v->extra, NULL};
    int st;
    bool to;
    char *out = probe("all", env, &st, 30, &to);
    cr_expect(!to, "%s: timed out:\n%s", set, out);
    if (good)
        cr_expect(!strstr(out, set), "%s was rejected:\n%s", set, out);
    else
        cr_expect(strstr(out, set), "%s was not rejected:\n%s", set, out);
    free(out);
}

Test(env_vars, every_variable_rejects_bad_values, .timeout = 110) {
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        for (int j = 0; j < 4 && vars[i].good[j]; j++)
            check_value(&vars[i], vars[i].good[j], true);
        for (int j = 0; j < 6 && vars[i].bad[j]; j++)
            check_value(&vars[i], vars[i].bad[j], false);
    }
}

/* Every LEASH_ variable the sources read is in the table above. */
Test(env_vars, table_lists_every_variable_in_the_sources) {
    FILE *p = popen("grep -rhoE '(getenv|env_[a-z0-9]+)\\(\"LEASH_[A-Z_]+\"' "
                    LEASH_SOURCE_DIR "/src | sed 's/.*(\"//; s/\"$//' | "
                    "sort -u", "r");
    cr_assert_not_null(p);
    char line[128];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        bool found = false;
        for (size_t i = 0; i < sizeof vars / sizeof vars[0] && !found; i++)
            found = !strcmp(vars[i].name, line);
        cr_expect(found, "%s is read in src/ but not tested here", line);
        n++;
    }
    pclose(p);
    cr_expect_geq(n, 18, "the grep found only %d variables", n);
}

/* No plain getenv of a LEASH_ variable outside env.c. */
Test(env_vars, sources_read_leash_variables_through_env_c) {
    FILE *p = popen("grep -rn 'getenv(\"LEASH' " LEASH_SOURCE_DIR "/src",
                    "r");
    cr_assert_not_null(p);
    char line[512];
    bool any = fgets(line, sizeof line, p) != NULL;
    pclose(p);
    cr_expect(!any, "a getenv bypasses env.c: %s", line);
}

/* -------------------------------------------------------------- effects */

static char *probe_env(const char *a, const char *b, int *st) {
    const char *env[] = {a, b, NULL};
    bool to;
    char *out = probe("all", env, st, 30, &to);
    cr_expect(!to, "%s %s: timed out:\n%s", a, b ? b : "", out);
    return out;
}

Test(env_effects, allow_remote_false_keeps_the_endpoint_on_loopback,
     .timeout = 60) {
    const char *offs[] = {"false", "no", "off", "FALSE", "00", " 0", "abc"};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        char set[64];
        snprintf(set, sizeof set, "LEASH_DEBUG_ALLOW_REMOTE=%s", offs[i]);
        int st;
        char *out = probe_env(set, NULL, &st);
        cr_expect(strstr(out, "remote=0\n"), "%s bound 0.0.0.0:\n%s", set, out);
        free(out);
    }
    int st;
    char *out = probe_env("LEASH_DEBUG_ALLOW_REMOTE=yes", NULL, &st);
    cr_expect(strstr(out, "remote=1\n"), "%s", out);
    free(out);
}

static long workers(const char *out) {
    const char *p = strstr(out, "leash_workers ");
    return p ? strtol(p + 14, NULL, 10) : -1;
}

Test(env_effects, negative_procs_is_rejected_not_wrapped, .timeout = 30) {
    int st;
    char *dflt = probe_env(NULL, NULL, &st);
    char *out = probe_env("LEASH_PROCS=-18446744073709551613", NULL, &st);
    cr_expect_eq(workers(out), workers(dflt), "%s", out);
    cr_expect_gt(workers(out), 0, "%s", out);
    free(out);
    out = probe_env("LEASH_PROCS=3", NULL, &st);
    cr_expect_eq(workers(out), 3, "%s", out);
    free(out);
    free(dflt);
}

Test(env_effects, false_booleans_are_off, .timeout = 60) {
    const char *offs[] = {"false", "no", "off", "abc"};
    for (size_t i = 0; i < 4; i++) {
        char strict[64], leak[64];
        snprintf(strict, sizeof strict, "LEASH_STRICT=%s", offs[i]);
        snprintf(leak, sizeof leak, "LEASH_LEAKCHECK=%s", offs[i]);
        int st;
        char *out = probe_env(strict, leak, &st);
        cr_expect(strstr(out, "strict=") && !strstr(out, "panic:"), "%s", out);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s: status %#x\n%s",
                  strict, leak, st, out);
        free(out);
    }
    int st;
    char *out = probe_env("LEASH_LEAKCHECK=Yes", NULL, &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 23, "status %#x\n%s", st, out);
    free(out);
}

Test(env_effects, deadlock_detector_switch, .timeout = 60) {
    const char *on[] = {"LEASH_DEADLOCK=on", "LEASH_DEADLOCK=abc", NULL};
    for (int i = 0; on[i]; i++) {
        const char *env[] = {on[i], NULL};
        int st;
        bool to;
        char *out = probe("deadlock", env, &st, 20, &to);
        cr_expect(!to && WIFEXITED(st) && WEXITSTATUS(st) == 2,
                  "%s: status %#x\n%s", on[i], st, out);
        free(out);
    }
    const char *off[] = {"LEASH_DEADLOCK=false", "LEASH_DEADLOCK=no", NULL};
    for (int i = 0; off[i]; i++) {
        const char *env[] = {off[i], NULL};
        int st;
        bool to;
        char *out = probe("deadlock", env, &st, 1, &to);
        cr_expect(to, "%s: detector ran, status %#x\n%s", off[i], st, out);
        free(out);
    }
}

Test(env_effects, unusable_dump_file_is_an_error_not_a_fallback,
     .timeout = 30) {
    int st;
    char *out = probe_env("LEASH_DUMP_SIGNAL=USR1",
                          "LEASH_DUMP_FILE=/nonexistent/dir/dump", &st);
    cr_expect(strstr(out, "LEASH_DUMP_FILE=/nonexistent/dir/dump: cannot "
                          "open: No such file or directory"), "%s", out);
    cr_expect(!strstr(out, "goroutine 1 ["), "dumped to stderr:\n%s", out);
    free(out);
    out = probe_env("LEASH_DUMP_SIGNAL=USR1", "LEASH_DUMP_FILE=/dev/full", &st);
    cr_expect(strstr(out, "LEASH_DUMP_FILE=/dev/full: dump not written: No "
                          "space left on device"), "%s", out);
    free(out);
}
