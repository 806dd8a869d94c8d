/* SPDX-License-Identifier: MIT */
/*
 * test_profiles.c — the block, mutex and CPU profiles
 * (leash_set_block_profile_rate, leash_set_mutex_profile_fraction,
 * leash_profile_write, leash_cpu_profile) and their HTTP routes.
 *
 *   block/mutex  a receive blocked on a channel and a contended mutex:
 *                the waiter's receive site and lock site in the block
 *                profile, the holder's unlock site in the mutex profile,
 *                with plausible delays; Go's debug=1 text; the pprof
 *                protos read back with `go tool pprof -raw` and `-top`;
 *                rates off: empty profiles; the env variables;
 *   cpu          a labelled coroutine burning CPU is the top of `go tool
 *                pprof -top`, with its label; a second profile meanwhile
 *                is refused (-EBUSY), bad durations are LEASH_EINVAL;
 *   http         /debug/pprof/block, /mutex, /profile in-process: bad
 *                debug and seconds values are 400, a concurrent CPU
 *                profile 409, the index lists the profiles.
 *
 * go is skipped with a message when absent (Debian: golang-go). Each
 * Criterion test runs in its own process, so rates start off in each.
 *
 * LEASH_TEST_TIMEOUT 240
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core_util.h"
#include "dbg_util.h"
#include "diag_util.h"

#define MS CU_MS
#define NOINLINE __attribute__((noinline))

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/* ------------------------------------------------------------ helpers */

static char go_tmp[64];

static char *pprof_run(const char *args, const char *data, size_t len,
                       int *st) {
    if (!go_tmp[0]) {
        strcpy(go_tmp, "/tmp/leash-prof-XXXXXX");
        cr_assert(mkdtemp(go_tmp));
    }
    char file[128];
    snprintf(file, sizeof file, "%s/p.pb.gz", go_tmp);
    dbg_write_file(file, data, len);
    char env[1024], *cmd = NULL;
    du_go_env(env, sizeof env, go_tmp);
    if (asprintf(&cmd, "%s && %s tool pprof -symbolize=none %s '%s'", env,
                 du_go(), args, file) < 0)
        return NULL;
    char *out = du_run_cmd(cmd, st);
    free(cmd);
    return out;
}

static void cleanup(void) {
    if (go_tmp[0])
        dbg_rmrf(go_tmp);
}

/* A profile written into memory by leash_profile_write. */
typedef struct {
    char *buf;
    size_t len;
    int rc;
} blob;

static blob write_profile(const char *name, int debug) {
    blob b = {0};
    FILE *f = open_memstream(&b.buf, &b.len);
    b.rc = leash_profile_write(f, name, debug);
    fclose(f);
    return b;
}

/* The sum of the delay values (second column) of -raw's samples, and the
 * number of samples. */
static int64_t raw_delay(const char *raw, int *nsamples) {
    const char *s = strstr(raw, "Samples:\n");
    const char *loc = strstr(raw, "\nLocations\n");
    int64_t sum = 0;
    *nsamples = 0;
    if (!s || !loc)
        return -1;
    s = strchr(s + 9, '\n'); /* the sample types' line */
    while (s && s < loc) {
        long long c, d;
        if (sscanf(s + 1, " %lld %lld:", &c, &d) == 2) {
            sum += d;
            (*nsamples)++;
        }
        s = strchr(s + 1, '\n');
    }
    return sum;
}

/* ------------------------------------------------------------ contention */

typedef struct {
    leash_chan *ch;
    leash_mutex mu;
    leash_waitgroup wg;
    _Atomic int held;
} scene;

static NOINLINE void recv_waiter(void *p) {
    scene *s = p;
    int v;
    leash_recv(s->ch, &v); /* blocks until main sends */
    leash_waitgroup_done(&s->wg);
}

static NOINLINE void mutex_holder(void *p) {
    scene *s = p;
    leash_mutex_lock(&s->mu);
    atomic_store(&s->held, 1);
    leash_sleep(30 * MS);
    leash_mutex_unlock(&s->mu); /* the mutex profile's site */
    leash_waitgroup_done(&s->wg);
}

static NOINLINE void mutex_waiter(void *p) {
    scene *s = p;
    leash_mutex_lock(&s->mu); /* the block profile's site */
    leash_mutex_unlock(&s->mu);
    leash_waitgroup_done(&s->wg);
}

/* Three blocked receives of ~30 ms and three contended locks. */
static void play_scene(void) {
    scene s = {.mu = LEASH_MUTEX_INIT, .wg = LEASH_WAITGROUP_INIT};
    s.ch = leash_chan_make(sizeof(int), 0);
    for (int i = 0; i < 3; i++) {
        leash_waitgroup_add(&s.wg, 3);
        atomic_store(&s.held, 0);
        leash_go(recv_waiter, &s, s.ch);
        leash_go(mutex_holder, &s);
        CU_CHECK(CU_WAIT_UNTIL(atomic_load(&s.held), 5000));
        leash_go(mutex_waiter, &s);
        leash_sleep(30 * MS);
        int v = i;
        leash_send(s.ch, &v);
        leash_waitgroup_wait(&s.wg);
    }
    leash_release(s.ch);
}

static blob pb[2][2]; /* [block, mutex][debug 0, 1] */

static int contention_main(void *arg) {
    (void)arg;
    play_scene();
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < 2; d++)
            pb[k][d] = write_profile(k ? "mutex" : "block", d);
    return 0;
}

/* A "#" line of frame fn, laid out by tabs. */
static bool text_has_frame(const char *text, const char *fn) {
    char re[256];
    snprintf(re, sizeof re,
             "\n#\t+0x[0-9a-f]+\t+%s\\+0x[0-9a-f]+\t+[^\t\n]+\\.[ch]:"
             "[0-9]+\n", fn);
    return du_match(text, re);
}

Test(profiles, block_and_mutex, .fini = cleanup, .timeout = 180) {
    setenv("LEASH_PROCS", "2", 1);
    cr_expect_eq(leash_set_mutex_profile_fraction(-1), 0);
    leash_set_block_profile_rate(1);
    cr_expect_eq(leash_set_mutex_profile_fraction(1), 0);
    cr_expect_eq(leash_set_mutex_profile_fraction(-1), 1);
    cu_run(contention_main, NULL);
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < 2; d++)
            cr_assert(pb[k][d].rc > 0, "%s debug=%d: rc %d", k ? "mutex" : "block",
                      d, pb[k][d].rc);

    /* Go's text. */
    const char *bt = pb[0][1].buf, *mt = pb[1][1].buf;
    cr_expect(!strncmp(bt, "--- contention:\ncycles/second=1000000000\n", 41),
              "%s", bt);
    cr_expect(!strncmp(mt, "--- mutex:\ncycles/second=1000000000\n"
                           "sampling period=1\n", 54), "%s", mt);
    cr_expect(du_match(bt, "\n[0-9]+ [0-9]+ @( 0x[0-9a-f]+)+\n#\t"), "%s", bt);
    cr_expect(text_has_frame(bt, "recv_waiter"), "no recv_waiter:\n%s", bt);
    cr_expect(text_has_frame(bt, "mutex_waiter"), "no mutex_waiter:\n%s", bt);
    cr_expect(text_has_frame(bt, "leash_recv_n"), "no leash_recv_n:\n%s", bt);
    cr_expect(text_has_frame(mt, "mutex_holder"), "no mutex_holder:\n%s", mt);
    cr_expect(text_has_frame(mt, "leash_mutex_unlock"), "%s", mt);
    cr_expect(!text_has_frame(mt, "mutex_waiter"),
              "the waiter's stack is in the mutex profile:\n%s", mt);
    /* The receive's record: three waits of >= 30 ms. */
    const char *r = strstr(bt, "recv_waiter+");
    cr_assert(r);
    while (r > bt && !(r[-1] == '\n' && r[0] != '#'))
        r--;
    long long cycles, count;
    cr_assert_eq(sscanf(r, "%lld %lld @", &cycles, &count), 2, "%.200s", r);
    cr_expect_eq(count, 3, "%s", bt);
    cr_expect(cycles >= 3 * 25 * MS && cycles < 3 * 2000 * MS, "cycles %lld",
              cycles);

    /* pprof protos. */
    if (!du_go()) {
        cr_log_warn("Go is not installed: pprof protos not read back");
        return;
    }
    for (int k = 0; k < 2; k++) {
        int st, n;
        char *raw = pprof_run("-raw", pb[k][0].buf, pb[k][0].len, &st);
        cr_assert(raw && st == 0, "go tool pprof -raw failed:\n%s", raw);
        cr_expect(strstr(raw, "PeriodType: contentions count\nPeriod: 1\n"),
                  "%s", raw);
        cr_expect(strstr(raw, "Samples:\ncontentions/count delay/nanoseconds"),
                  "%s", raw);
        int64_t delay = raw_delay(raw, &n);
        cr_expect(n >= 1 && delay >= (k ? 3 : 6) * 25 * MS, "delay %lld in %d:\n%s",
                  (long long)delay, n, raw);
        const char *want = k ? "mutex_holder" : "recv_waiter";
        char re[128];
        snprintf(re, sizeof re, "\n +[0-9]+: 0x[0-9a-f]+ M=[0-9]+ %s ", want);
        cr_expect(du_match(raw, re), "no %s:\n%s", want, raw);
        free(raw);
        char *top = pprof_run("-top", pb[k][0].buf, pb[k][0].len, &st);
        cr_assert(top && st == 0, "go tool pprof -top failed:\n%s", top);
        cr_expect(strstr(top, "Type: delay"), "%s", top);
        cr_expect(strstr(top, want), "%s", top);
        free(top);
    }
}

static int off_main(void *arg) {
    (void)arg;
    play_scene();
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < 2; d++)
            pb[k][d] = write_profile(k ? "mutex" : "block", d);
    return 0;
}

Test(profiles, off_means_empty, .fini = cleanup, .timeout = 120) {
    cu_run(off_main, NULL);
    cr_expect_eq(pb[0][1].rc, 0);
    cr_expect_str_eq(pb[0][1].buf, "--- contention:\ncycles/second=1000000000\n");
    cr_expect_str_eq(pb[1][1].buf, "--- mutex:\ncycles/second=1000000000\n"
                                   "sampling period=0\n");
    /* Bad arguments. */
    FILE *f = fopen("/dev/null", "w");
    cr_expect_eq(leash_profile_write(f, "heap", 0), LEASH_EINVAL);
    cr_expect_eq(leash_profile_write(f, "block", 2), LEASH_EINVAL);
    cr_expect_eq(leash_profile_write(f, NULL, 0), LEASH_EINVAL);
    cr_expect_eq(leash_profile_write(NULL, "block", 0), LEASH_EINVAL);
    cr_expect_eq(leash_cpu_profile(f, 0), LEASH_EINVAL);
    cr_expect_eq(leash_cpu_profile(f, -5), LEASH_EINVAL);
    cr_expect_eq(leash_cpu_profile(f, INT64_MAX), LEASH_EINVAL);
    cr_expect_eq(leash_cpu_profile(NULL, MS), LEASH_EINVAL);
    fclose(f);
    if (!du_go())
        return;
    int st, n;
    char *raw = pprof_run("-raw", pb[0][0].buf, pb[0][0].len, &st);
    cr_assert(raw && st == 0, "go tool pprof -raw failed:\n%s", raw);
    raw_delay(raw, &n);
    cr_expect_eq(n, 0, "samples with the rate off:\n%s", raw);
    free(raw);
}

static int env_main(void *arg) {
    (void)arg;
    play_scene();
    pb[0][1] = write_profile("block", 1);
    pb[1][1] = write_profile("mutex", 1);
    return 0;
}

Test(profiles, env_rates, .timeout = 120) {
    setenv("LEASH_BLOCKPROFILERATE", "1000", 1);
    setenv("LEASH_MUTEXPROFILEFRACTION", "1", 1);
    cu_run(env_main, NULL);
    cr_expect_eq(leash_set_mutex_profile_fraction(-1), 1);
    cr_expect(text_has_frame(pb[0][1].buf, "recv_waiter"), "%s", pb[0][1].buf);
    cr_expect(text_has_frame(pb[1][1].buf, "mutex_holder"), "%s", pb[1][1].buf);
}

/* ------------------------------------------------------------ CPU */

static _Atomic int burning;
static volatile uint64_t sink;

static NOINLINE uint64_t burn_cpu(uint64_t x) {
    for (int i = 0; i < 1000000; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

static void burner(void *arg) {
    (void)arg;
    leash_label_set("team", "cpu");
    uint64_t x = 1;
    while (atomic_load(&burning)) {
        x = burn_cpu(x);
        sink = x;
        leash_yield();
    }
}

static int second_rc;
static void second_profile(void *arg) {
    (void)arg;
    FILE *f = fopen("/dev/null", "w");
    second_rc = leash_cpu_profile(f, 100 * MS);
    fclose(f);
}

static blob cpu;

static int cpu_main(void *arg) {
    (void)arg;
    atomic_store(&burning, 1);
    leash_go(burner, NULL);
    leash_go(second_profile, NULL); /* while ours runs, or before */
    FILE *f = open_memstream(&cpu.buf, &cpu.len);
    cpu.rc = leash_cpu_profile(f, 1500 * MS);
    fclose(f);
    atomic_store(&burning, 0);
    leash_sleep(200 * MS);
    return 0;
}

Test(profiles, cpu, .fini = cleanup, .timeout = 180) {
    setenv("LEASH_PROCS", "2", 1);
    cu_run(cpu_main, NULL);
#ifdef UNDER_TSAN
    cr_expect_eq(cpu.rc, -ENOTSUP);
    return;
#endif
    cr_assert(cpu.rc > 0, "leash_cpu_profile: %d", cpu.rc);
    /* Exactly one of the two got the profiler. */
    cr_expect_eq(second_rc, -EBUSY, "second profile: %d", second_rc);
    cr_expect(cpu.len > 2 && (unsigned char)cpu.buf[0] == 0x1f, "not gzipped");
    if (!du_go()) {
        cr_log_warn("Go is not installed: the CPU profile is not read back");
        return;
    }
    int st;
    char *raw = pprof_run("-raw", cpu.buf, cpu.len, &st);
    cr_assert(raw && st == 0, "go tool pprof -raw failed:\n%s", raw);
    cr_expect(strstr(raw, "PeriodType: cpu nanoseconds\nPeriod: 10000000\n"),
              "%s", raw);
    cr_expect(strstr(raw, "Samples:\nsamples/count cpu/nanoseconds"), "%s", raw);
    cr_expect(strstr(raw, "team:[cpu]"), "no label:\n%s", raw);
    cr_expect(du_match(raw, "\n +[0-9]+: 0x[0-9a-f]+ M=[0-9]+ burn_cpu "),
              "no burn_cpu:\n%s", raw);
    free(raw);
    char *top = pprof_run("-top", cpu.buf, cpu.len, &st);
    cr_assert(top && st == 0, "go tool pprof -top failed:\n%s", top);
    cr_expect(strstr(top, "Type: cpu"), "%s", top);
    /* burn_cpu: the most flat time, ~1.5 s of one worker. */
    const char *hdr = strstr(top, "flat%");
    cr_assert(hdr, "%s", top);
    const char *first = strchr(hdr, '\n');
    cr_assert(first);
    const char *eol = strchr(first + 1, '\n');
    cr_expect(eol && memmem(first, (size_t)(eol - first), "burn_cpu", 8),
              "burn_cpu not on top:\n%s", top);
    cr_expect(du_match(top, "Duration: 1\\.[0-9]+s, Total samples = [0-9.]+(ms|s) "),
              "%s", top);
    free(top);
}

/* ------------------------------------------------------------ HTTP */

static int port;
static _Atomic int http_done;
static char *resp_a, *resp_b;
static size_t len_a;

static void *get_a(void *arg) {
    (void)arg;
    resp_a = dbg_http_get(port, "/debug/pprof/profile?seconds=2", &len_a);
    return NULL;
}

static void *http_client(void *arg) {
    (void)arg;
    static const struct {
        const char *path;
        int status;
        const char *body;
    } cases[] = {
        {"/debug/pprof/block?debug=1", 200, "--- contention:\ncycles/second="},
        {"/debug/pprof/mutex?debug=1", 200, "--- mutex:\ncycles/second="},
        {"/debug/pprof/block", 200, "\x1f\x8b"},
        {"/debug/pprof/mutex?debug=0", 200, "\x1f\x8b"},
        {"/debug/pprof/block?debug=2", 400, "debug must be 0 or 1"},
        {"/debug/pprof/mutex?debug=x", 400, "debug must be 0 or 1"},
        {"/debug/pprof/block?seconds=5", 400, "not supported"},
        {"/debug/pprof/profile?seconds=abc", 400, "seconds must be"},
        {"/debug/pprof/profile?seconds=0", 400, "seconds must be"},
        {"/debug/pprof/profile?seconds=-1", 400, "seconds must be"},
        {"/debug/pprof/profile?seconds=601", 400, "seconds must be"},
        {"/debug/pprof/profile?seconds=99999999999999999999", 400,
         "seconds must be"},
        {"/debug/pprof/profile?seconds=", 400, "seconds must be"},
        {"/debug/pprof/", 200, "/debug/pprof/mutex?debug=1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *r = dbg_http_get(port, cases[i].path, NULL);
        if (dbg_http_status(r) != cases[i].status ||
            !strstr(dbg_http_body(r), cases[i].body))
            cu_fail(__FILE__, __LINE__, "GET %s: want %d '%s', got: %.300s",
                    cases[i].path, cases[i].status, cases[i].body,
                    r ? r : "(no answer)");
        free(r);
    }
    /* Two CPU profiles at once: the second gets 409. */
    pthread_t t;
    pthread_create(&t, NULL, get_a, NULL);
    usleep(500 * 1000);
    resp_b = dbg_http_get(port, "/debug/pprof/profile?seconds=1", NULL);
    pthread_join(t, NULL);
    atomic_store(&http_done, 1);
    return NULL;
}

static int http_main(void *arg) {
    (void)arg;
    port = leash_debug_listen("127.0.0.1:0");
    CU_CHECK(port > 0);
    pthread_t t;
    pthread_create(&t, NULL, http_client, NULL);
    while (!atomic_load(&http_done))
        leash_sleep(10 * MS);
    pthread_join(t, NULL);
    leash_debug_stop();
    return 0;
}

Test(profiles, http, .fini = cleanup, .timeout = 120) {
    setenv("LEASH_PROCS", "2", 1);
    cu_run(http_main, NULL);
#ifdef UNDER_TSAN
    cr_expect_eq(dbg_http_status(resp_a), 501, "%.300s", resp_a);
    return;
#endif
    cr_assert_eq(dbg_http_status(resp_a), 200, "%.300s", resp_a);
    cr_expect_eq(dbg_http_status(resp_b), 409, "%.300s", resp_b);
    cr_expect(strstr(dbg_http_body(resp_b), "cpu profiling already in use"),
              "%s", resp_b);
    const char *body = dbg_http_body(resp_a);
    size_t blen = len_a - (size_t)(body - resp_a);
    cr_expect(blen > 2 && (unsigned char)body[0] == 0x1f, "not gzipped");
    if (!du_go())
        return;
    int st;
    char *top = pprof_run("-top", body, blen, &st);
    cr_expect(top && st == 0, "go tool pprof -top failed:\n%s", top);
    cr_expect(strstr(top, "Type: cpu"), "%s", top);
    free(top);
}
