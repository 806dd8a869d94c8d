/* SPDX-License-Identifier: MIT */
/*
 * test_examples.c — the write-up's scenarios, end to end: every example
 * program under examples/ is run as a child process (build/example_<name>)
 * and checked against what leash must show.
 *
 *   - every leaky example is caught by every method that applies: its
 *     coroutine count grows; its leak report (leash_leak_dump or
 *     leash_leak_verify, in the program's output) gives the right wait
 *     reason and the file:line of the leash_go call that spawned each
 *     stuck coroutine; LEASH_LEAKCHECK=1 makes it exit 23 naming them;
 *     LEASH_ORPHANS=report names the release that orphaned a channel;
 *     the deadlock example exits 2 with Go's message;
 *   - no fixed example is flagged by any method: LEASH_LEAKCHECK=1 exits
 *     0, the count stays flat, the leak dump is empty;
 *   - the five analysis methods (examples/analysis.c): the count, the HTTP
 *     endpoint, a dump to stdout, the agent with `leash ps` / `leash
 *     stats`, and a leak check;
 *   - method 5 in a test, in process: a Criterion test that checks for
 *     leaks the way a user's test would (the leaktest_demo suite), run in a child
 *     test process: it fails, with the report, on the leaky queryAll and
 *     passes on the fixed ones.
 *
 * Line numbers are not hard-coded: they are looked up in the example's
 * source (LEASH_SOURCE_DIR) by the text of the line.
 *
 * LEASH_TEST_TIMEOUT 300
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "leash.h"

#ifndef LEASH_TEST_BINDIR
#error "LEASH_TEST_BINDIR must name the build directory"
#endif
#ifndef LEASH_SOURCE_DIR
#error "LEASH_SOURCE_DIR must name the source directory"
#endif

/* ------------------------------------------------------------ running */

typedef struct {
    char *out;   /* stdout */
    char *err;   /* stderr */
    int status;  /* exit status, or 128 + signal */
    bool timed_out;
    double secs;
} result;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (len + 2 > cap) {
            cap = cap ? 2 * cap : 4096;
            buf = realloc(buf, cap);
        }
        buf[len++] = (char)c;
    }
    fclose(f);
    if (!buf)
        return strdup("");
    buf[len] = 0;
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs `path args...` with the leash variables cleared, then `env`
 * ("NAME=value" strings, NULL-terminated) set; kills it after
 * timeout_s. */
static result run_path(const char *path, const char *const *env,
                       const char *const *args, double timeout_s)
{
    char outp[] = "/tmp/leash-ex-out-XXXXXX";
    char errp[] = "/tmp/leash-ex-err-XXXXXX";
    int ofd = mkstemp(outp), efd = mkstemp(errp);
    cr_assert(ofd >= 0 && efd >= 0, "mkstemp: %s", strerror(errno));
    double t0 = now_s();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        static const char *const clear[] = {
            "LEASH_LEAKCHECK", "LEASH_LEAKCHECK_TIMEOUT_MS", "LEASH_ORPHANS",
            "LEASH_STRICT", "LEASH_DEADLOCK", "LEASH_PROCS", "LEASH_AGENT",
            "LEASH_DEBUG_ADDR", "LEASH_HOG_MS", "LEASH_STACK_SIZE", NULL};
        for (int i = 0; clear[i]; i++)
            unsetenv(clear[i]);
        /* Criterion's sandbox marks its workers by environment: a test
         * binary run from a test must not believe it is one. */
        extern char **environ;
        for (char **e = environ; *e;) {
            if (!strncmp(*e, "BXFI_", 5)) {
                char name[64];
                size_t k = strcspn(*e, "=");
                snprintf(name, sizeof name, "%.*s", (int)k, *e);
                unsetenv(name);
            } else {
                e++;
            }
        }
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        const char *argv[16] = {path};
        int n = 1;
        for (int i = 0; args && args[i] && n < 15; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(ofd);
    close(efd);
    result r = {0};
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (now_s() - t0 > timeout_s) {
            r.timed_out = true;
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        usleep(5000);
    }
    r.secs = now_s() - t0;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = slurp(outp);
    r.err = slurp(errp);
    unlink(outp);
    unlink(errp);
    return r;
}

static char *example_path(const char *name)
{
    char *p;
    if (asprintf(&p, "%s/example_%s", LEASH_TEST_BINDIR, name) < 0)
        abort();
    return p;
}

static result run_ex(const char *name, const char *const *env)
{
    char *p = example_path(name);
    struct stat sb;
    cr_assert(stat(p, &sb) == 0, "%s is not built", p);
    result r = run_path(p, env, NULL, 30);
    free(p);
    cr_assert(!r.timed_out, "example_%s did not finish in 30 s\n--- stdout\n"
              "%s\n--- stderr\n%s", name, r.out, r.err);
    return r;
}

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
}

#define SHOWF "\n--- stdout\n%s\n--- stderr\n%s"
#define SHOWA(r) (r).out, (r).err
/* SHOW(r) ends a message with no other arguments; with some, write
 * "fmt" SHOWF, args..., SHOWA(r). */
#define SHOW(r) SHOWF, SHOWA(r)

/* ------------------------------------------------------ source lines */

/* The line number of the nth (1-based) line of examples/<file> that
 * contains `needle`. */
static int src_line(const char *file, const char *needle, int nth)
{
    char *path;
    if (asprintf(&path, "%s/examples/%s", LEASH_SOURCE_DIR, file) < 0)
        abort();
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    char line[1024];
    int no = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        no++;
        if (strstr(line, needle) && ++found == nth) {
            fclose(f);
            free(path);
            return no;
        }
    }
    fclose(f);
    cr_assert_fail("no line %d with \"%s\" in %s", nth, needle, path);
    return 0;
}

/* "examples/<file>:<line>" for that line. */
static char *site(const char *file, const char *needle, int nth)
{
    char *s;
    if (asprintf(&s, "examples/%s:%d", file, src_line(file, needle, nth)) < 0)
        abort();
    return s;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    size_t k = strlen(needle);
    for (const char *p = s; (p = strstr(p, needle)); p += k)
        n++;
    return n;
}

/* The numbers after each "#goroutines: " in s, in order. */
static int counts(const char *s, long *v, int max)
{
    int n = 0;
    for (const char *p = s; n < max && (p = strstr(p, "#goroutines: "));) {
        p += strlen("#goroutines: ");
        v[n++] = strtol(p, NULL, 10);
    }
    return n;
}

/* A fixed example's count stays at 1 (main alone) every time it prints;
 * want_n >= 0 also checks how many times it printed. */
static void expect_flat(const result *r, int want_n)
{
    long v[8];
    int n = counts(r->out, v, 8);
    if (want_n >= 0)
        cr_expect_eq(n, want_n, SHOW(*r));
    for (int i = 0; i < n; i++)
        cr_expect_eq(v[i], 1, "count %d is %ld" SHOWF, i, v[i], SHOWA(*r));
}

/* Every record ("goroutine N [...]:" up to the blank line) of a leash
 * report that contains `reason` must also contain one of the sites. */
static void each_record_has(const char *report, const char *reason,
                            char *const *sites, int nsites, int want)
{
    int seen = 0;
    for (const char *p = report; (p = strstr(p, "goroutine "));) {
        const char *end = strstr(p, "\n\n");
        if (!end)
            end = p + strlen(p);
        size_t len = (size_t)(end - p);
        char *rec = strndup(p, len);
        if (strstr(rec, reason) && strstr(rec, "]:")) {
            seen++;
            bool ok = false;
            for (int i = 0; i < nsites; i++)
                if (strstr(rec, sites[i]))
                    ok = true;
            cr_expect(ok, "record without its spawn site:\n%s", rec);
        }
        free(rec);
        p = end;
    }
    cr_expect_eq(seen, want, "%d record(s) waiting in \"%s\", want %d:\n%s",
                 seen, reason, want, report);
}

/* ----------------------------------------- common checks, leaky/fixed */

static const char *const LEAKCHECK[] = {"LEASH_LEAKCHECK=1", NULL};
static const char *const ORPHANS_REPORT[] = {"LEASH_ORPHANS=report", NULL};

/* LEASH_LEAKCHECK=1: exit 23, and the report names `want` coroutines
 * with the wait reason and their spawn sites. */
static void leakcheck_catches(const char *name, const char *reason,
                              char *const *sites, int nsites, int want)
{
    result r = run_ex(name, LEAKCHECK);
    cr_expect_eq(r.status, 23, "LEASH_LEAKCHECK=1 %s: exit %d" SHOWF, name,
                 r.status, SHOWA(r));
    cr_expect(strstr(r.err, "leash: LEASH_LEAKCHECK: "),
              "no LEASH_LEAKCHECK summary" SHOW(r));
    each_record_has(r.err, reason, sites, nsites, want);
    result_free(&r);
}

/* A fixed example: exit 0 alone and under LEASH_LEAKCHECK=1 and
 * LEASH_ORPHANS=report; clean checks; the count ends at 1. */
static result fixed_is_clean(const char *name)
{
    result r = run_ex(name, LEAKCHECK);
    cr_expect_eq(r.status, 0, "LEASH_LEAKCHECK=1 %s: exit %d" SHOWF, name,
                 r.status, SHOWA(r));
    cr_expect(!strstr(r.err, "LEASH_LEAKCHECK"), "flagged" SHOW(r));
    result_free(&r);

    r = run_ex(name, ORPHANS_REPORT);
    cr_expect_eq(r.status, 0, "exit %d" SHOWF, r.status, SHOWA(r));
    cr_expect(!strstr(r.err, "orphaned"), "orphan reported" SHOW(r));
    result_free(&r);

    r = run_ex(name, NULL);
    cr_expect_eq(r.status, 0, "%s: exit %d" SHOWF, name, r.status, SHOWA(r));
    cr_expect(strstr(r.out, "leash_leak_verify: 0 coroutine(s) left"),
              "leak check not clean" SHOW(r));
    cr_expect(strstr(r.out, "leash_leak_dump: 0 coroutine(s) proven leaked"),
              "leak dump not empty" SHOW(r));
    cr_expect(!strstr(r.out, "LEAKED") && !strstr(r.out, "SUSPECT"),
              "something flagged" SHOW(r));
    long v[32];
    int n = counts(r.out, v, 32);
    cr_expect(n >= 1 && v[n - 1] == 1, "count does not end at 1" SHOW(r));
    cr_expect(r.err[0] == 0, "unexpected stderr" SHOW(r));
    return r;
}

/* Runs example `name` (no extra environment): it must exit 0 and print
 * exactly the "#goroutines: N" counts in `want`, comma-separated. */
static result run_leaky(const char *name, const char *want)
{
    result r = run_ex(name, NULL);
    cr_assert_eq(r.status, 0, "%s: exit %d" SHOWF, name, r.status,
                 SHOWA(r));
    long v[32];
    int n = counts(r.out, v, 32);
    char got[256] = "";
    for (int i = 0; i < n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%ld",
                 i ? "," : "", v[i]);
    cr_expect_str_eq(got, want, "%s: #goroutines" SHOWF, name, SHOWA(r));
    return r;
}

/* --------------------------------------------------------- queryAll */

Test(queryall, leaky_count_grows_and_leak_dump_names_the_lines)
{
    result r = run_leaky("queryall", "3,5,7,9");
    char *sites[3] = {site("queryall.c", "leash_go(ask", 1),
                      site("queryall.c", "leash_go(ask", 2),
                      site("queryall.c", "leash_go(ask", 3)};
    each_record_has(r.out, "[chan send, ", sites, 3, 8);
    cr_expect_eq(count(r.out, "LEAKED (orphaned"), 8, SHOW(r));
    char *made = site("queryall.c", "leash_chan_make(", 1);
    char *rel = site("queryall.c", "leash_release(ch)", 1);
    cr_expect_eq(count(r.out, made), 8, "channel site %s" SHOWF, made, SHOWA(r));
    cr_expect_eq(count(r.out, rel), 8, "release site %s" SHOWF, rel, SHOWA(r));
    cr_expect(strstr(r.out, "8 coroutine(s) proven leaked"), SHOW(r));
    result_free(&r);
}

Test(queryall, leaky_leakcheck_exits_23)
{
    char *sites[3] = {site("queryall.c", "leash_go(ask", 1),
                      site("queryall.c", "leash_go(ask", 2),
                      site("queryall.c", "leash_go(ask", 3)};
    leakcheck_catches("queryall", "[chan send, ", sites, 3, 8);
}

Test(queryall, leaky_orphans_report_names_the_release)
{
    result r = run_ex("queryall", ORPHANS_REPORT);
    cr_expect_eq(r.status, 0, SHOW(r));
    char *rel = site("queryall.c", "leash_release(ch)", 1);
    /* one report per call: 4 channels, 2 senders stranded on each */
    cr_expect_eq(count(r.err, "leash: orphaned channel chan#"), 4, SHOW(r));
    cr_expect_eq(count(r.err, "2 goroutine(s) blocked on it forever"), 4,
                 SHOW(r));
    cr_expect(strstr(r.err, rel), "release site %s" SHOWF, rel, SHOWA(r));
    result_free(&r);
}

Test(queryall, buffered_fix_is_clean)
{
    result r = fixed_is_clean("queryall_buffered");
    expect_flat(&r, 5);
    result_free(&r);
}

Test(queryall, ctx_fix_is_clean)
{
    result r = fixed_is_clean("queryall_ctx");
    expect_flat(&r, 5);
    result_free(&r);
}

/* -------------------------------------------------------- generator */

Test(generator, leaky_count_grows_and_leak_dump_names_the_lines)
{
    result r = run_leaky("generator", "2,3,4");
    cr_expect_eq(count(r.out, "0 1 2 3 4 5 \n"), 3, SHOW(r));
    char *sites[1] = {site("generator.c", "leash_go(generate", 1)};
    each_record_has(r.out, "[chan send, ", sites, 1, 3);
    cr_expect_eq(count(r.out, "LEAKED (orphaned"), 3, SHOW(r));
    cr_expect_eq(count(r.out, site("generator.c", "leash_release(ch)", 1)), 3,
                 SHOW(r));
    result_free(&r);
}

Test(generator, leaky_leakcheck_exits_23)
{
    char *sites[1] = {site("generator.c", "leash_go(generate", 1)};
    leakcheck_catches("generator", "[chan send, ", sites, 1, 3);
}

Test(generator, ctx_fix_is_clean)
{
    result r = fixed_is_clean("generator_ctx");
    cr_expect_eq(count(r.out, "0 1 2 3 4 5 \n"), 3, SHOW(r));
    expect_flat(&r, -1);
    result_free(&r);
}

Test(generator, done_fix_is_clean_and_says_it_exited)
{
    result r = fixed_is_clean("generator_done");
    cr_expect(strstr(r.out, "3 random ints:\n1: "), SHOW(r));
    cr_expect_eq(count(r.out, "newRandStream closure exited.\n"), 1, SHOW(r));
    long v[8];
    int n = counts(r.out, v, 8);
    cr_expect(n == 3 && v[0] == 2 && v[1] == 1 && v[2] == 1,
              "want 2 then 1" SHOW(r));
    /* the generator's message comes between the two counts */
    const char *exited = strstr(r.out, "newRandStream closure exited.");
    const char *first = strstr(r.out, "#goroutines: ");
    const char *second = first ? strstr(first + 1, "#goroutines: ") : NULL;
    cr_expect(exited && second && exited < second, SHOW(r));
    result_free(&r);
}

/* ---------------------------------------------------- no sender */

Test(recv_nosender, leaky_count_grows_and_leak_dump_names_the_lines)
{
    result r = run_leaky("recv_nosender", "1,2,2,3");
    char *sites[1] = {site("recv_nosender.c", "leash_go(logger", 1)};
    each_record_has(r.out, "[chan receive, ", sites, 1, 2);
    cr_expect_eq(count(r.out, "LEAKED (orphaned"), 2, SHOW(r));
    /* handle()'s release after the failed search orphaned them */
    cr_expect_eq(count(r.out, site("recv_nosender.c", "leash_release(results)", 1)),
                 2, SHOW(r));
    result_free(&r);
}

Test(recv_nosender, leaky_leakcheck_exits_23)
{
    char *sites[1] = {site("recv_nosender.c", "leash_go(logger", 1)};
    leakcheck_catches("recv_nosender", "[chan receive, ", sites, 1, 2);
}

Test(recv_nosender, fix_is_clean)
{
    result r = fixed_is_clean("recv_nosender_fixed");
    cr_expect_eq(count(r.out, "logger: no result (channel closed)"), 2,
                 SHOW(r));
    expect_flat(&r, -1);
    result_free(&r);
}

/* ----------------------------------------------------- nil channels */

Test(nilchan, send_and_receive_on_null_are_proven_leaks)
{
    result r = run_leaky("nilchan", "1,3");
    char *send_site[1] = {site("nilchan.c", "leash_go(send_nil", 1)};
    char *recv_site[1] = {site("nilchan.c", "leash_go(recv_nil", 1)};
    each_record_has(r.out, "[chan send (nil chan), ", send_site, 1, 1);
    each_record_has(r.out, "[chan receive (nil chan), ", recv_site, 1, 1);
    cr_expect_eq(count(r.out, "LEAKED (blocked forever on a nil channel)"), 2,
                 SHOW(r));
    result_free(&r);
}

Test(nilchan, leakcheck_exits_23)
{
    char *send_site[1] = {site("nilchan.c", "leash_go(send_nil", 1)};
    char *recv_site[1] = {site("nilchan.c", "leash_go(recv_nil", 1)};
    result r = run_ex("nilchan", LEAKCHECK);
    cr_expect_eq(r.status, 23, SHOW(r));
    each_record_has(r.err, "[chan send (nil chan), ", send_site, 1, 1);
    each_record_has(r.err, "[chan receive (nil chan), ", recv_site, 1, 1);
    result_free(&r);
}

Test(nilchan, if0_channel_counts_flat_at_2_and_is_proven_leaked)
{
    result r = run_ex("nilchan_tick", LEAKCHECK);
    cr_expect_eq(r.status, 23, SHOW(r));
    long v[8];
    int n = counts(r.out, v, 8);
    cr_expect_eq(n, 3, "three ticks" SHOW(r));
    for (int i = 0; i < n; i++)
        cr_expect_eq(v[i], 2, SHOW(r));
    cr_expect(r.secs > 2.5, "ticks every second: %.2f s", r.secs);
    char *sites[1] = {site("nilchan_tick.c", "leash_go(wait_one", 1)};
    each_record_has(r.out, "[chan receive (nil chan), ", sites, 1, 1);
    each_record_has(r.err, "[chan receive (nil chan), ", sites, 1, 1);
    /* the ticker was stopped: only the coroutine is reported */
    cr_expect(!strstr(r.err, "ticker#"), SHOW(r));
    result_free(&r);
}

Test(nilchan, main_on_null_is_gos_deadlock)
{
    result r = run_ex("nilchan_main", NULL);
    cr_expect_eq(r.status, 2, "exit %d" SHOWF, r.status, SHOWA(r));
    cr_expect(!strncmp(r.err, "fatal error: all goroutines are asleep - "
                              "deadlock!\n\ngoroutine 1 [chan send (nil chan)]:\n",
                       strlen("fatal error: all goroutines are asleep - "
                              "deadlock!\n\ngoroutine 1 [chan send (nil chan)]:\n")),
              SHOW(r));
    char *line = site("nilchan_main.c", "leash_send_n(ch, NULL, 0)", 1);
    cr_expect(strstr(r.err, line), "%s" SHOWF, line, SHOWA(r));
    cr_expect(!strstr(r.out, "unreachable"), SHOW(r));
    result_free(&r);
}

Test(nilchan, deadlock_detector_off_with_LEASH_DEADLOCK_0)
{
    static const char *const env[] = {"LEASH_DEADLOCK=0", NULL};
    char *p = example_path("nilchan_main");
    result r = run_path(p, env, NULL, 1.0);
    cr_expect(r.timed_out, "should hang without the detector" SHOW(r));
    cr_expect(!strstr(r.err, "fatal error"), SHOW(r));
    result_free(&r);
    free(p);
}

/* ---------------------------------------------------- endless loop */

Test(endless_loop, leaky_is_a_suspect_and_still_alive)
{
    result r = run_leaky("endless_loop", "2");
    char *sites[1] = {site("endless_loop.c", "leash_go(spin", 1)};
    /* the dump and the leak_verify report both show it, with its stack */
    each_record_has(r.out, "[running, ", sites, 1, 2);
    cr_expect_eq(count(r.out, "without yielding]: SUSPECT (runs without "
                              "yielding (endless loop?))"), 2, SHOW(r));
    cr_expect(strstr(r.out, "  spin\n"), "its stack" SHOW(r));
    cr_expect(strstr(r.out, "1 coroutine(s) still running"), SHOW(r));
    result_free(&r);
}

Test(endless_loop, leaky_leakcheck_exits_23)
{
    char *sites[1] = {site("endless_loop.c", "leash_go(spin", 1)};
    leakcheck_catches("endless_loop", "[running, ", sites, 1, 1);
}

Test(endless_loop, fix_is_clean)
{
    result r = fixed_is_clean("endless_loop_fixed");
    cr_expect(strstr(r.out, "#goroutines: 2 (working)"), SHOW(r));
    cr_expect(strstr(r.out, "#goroutines: 1 (cancelled)"), SHOW(r));
    result_free(&r);
}

/* ----------------------------------------------- read, no deadline */

Test(read_nodeadline, leaky_is_a_suspect_in_io_wait)
{
    result r = run_leaky("read_nodeadline", "2");
    char *sites[1] = {site("read_nodeadline.c", "leash_go(fetch", 1)};
    each_record_has(r.out, "[IO wait, ", sites, 1, 2);
    cr_expect_eq(count(r.out, "SUSPECT (waits for I/O with no deadline)"), 2,
                 SHOW(r));
    cr_expect(strstr(r.out, "  leash_read\n"), SHOW(r));
    cr_expect(strstr(r.out, "1 coroutine(s) still waiting"), SHOW(r));
    /* not a proof: the peer could still answer */
    cr_expect(strstr(r.out, "leash_leak_dump: 0 coroutine(s) proven leaked"),
              SHOW(r));
    result_free(&r);
}

Test(read_nodeadline, leaky_leakcheck_exits_23)
{
    char *sites[1] = {site("read_nodeadline.c", "leash_go(fetch", 1)};
    leakcheck_catches("read_nodeadline", "[IO wait, ", sites, 1, 1);
}

Test(read_nodeadline, deadline_fix_is_clean)
{
    result r = fixed_is_clean("read_nodeadline_fixed");
    cr_expect(strstr(r.out, "#goroutines: 2 (waiting for the reply)"),
              SHOW(r));
    cr_expect(strstr(r.out, "fetch: deadline exceeded after "), SHOW(r));
    result_free(&r);
}

/* ------------------------------------------------------------ demo */

Test(demo, shows_the_leak_then_the_fixes_flat)
{
    /* the leak grows, then both fixes stay flat at 9 */
    result r = run_leaky("demo", "3,5,7,9,9,9,9,9,9,9,9,9");
    char *sites[3] = {site("demo.c", "leash_go(ask, ch, ch)", 1),
                      site("demo.c", "leash_go(ask, ch, ch)", 2),
                      site("demo.c", "leash_go(ask, ch, ch)", 3)};
    each_record_has(r.out, "[chan send, ", sites, 3, 8);
    cr_expect_eq(count(r.out, site("demo.c", "leash_release(ch);", 1)), 8,
                 SHOW(r));
    cr_expect_eq(count(r.out, "left, clean"), 2, SHOW(r));
    /* in order: counts, the report, the fixes */
    const char *a = strstr(r.out, "#goroutines: 9");
    const char *b = strstr(r.out, "LEAKED");
    const char *c = strstr(r.out, "== 3. fix 1");
    const char *d = strstr(r.out, "== 4. fix 2");
    cr_expect(a && b && c && d && a < b && b < c && c < d, SHOW(r));
    result_free(&r);
}

/* ------------------------------------- the five analysis methods */

Test(analysis, five_methods_on_queryall)
{
    result r = run_ex("analysis", NULL);
    cr_assert_eq(r.status, 0, "exit %d" SHOWF, r.status, SHOWA(r));
    char *ask = site("analysis.c", "leash_send(ch, &v)", 1);
    /* 1. the count */
    cr_expect(strstr(r.out, "leash_num_coroutines() = 9\n"), SHOW(r));
    /* 2. the HTTP endpoint, Go's debug=1 text: 8 identical stacks */
    const char *http = strstr(r.out, "== 2.");
    const char *dump = strstr(r.out, "== 3.");
    const char *agent = strstr(r.out, "== 4.");
    const char *check = strstr(r.out, "== 5.");
    cr_assert(http && dump && agent && check, SHOW(r));
    char *h = strndup(http, (size_t)(dump - http));
    cr_expect(strstr(h, "$ curl 'http://127.0.0.1:"), "%s", h);
    cr_expect(strstr(h, "goroutine profile: total "), "%s", h);
    cr_expect(strstr(h, "\n8 @ 0x"), "%s", h);
    cr_expect(strstr(h, ask), "%s in %s", ask, h);
    /* 3. the same text written to stdout */
    char *d = strndup(dump, (size_t)(agent - dump));
    cr_expect(strstr(d, "goroutine profile: total "), "%s", d);
    cr_expect(strstr(d, "\n8 @ 0x"), "%s", d);
    cr_expect(strstr(d, "leash_send_n+0x"), "%s", d);
    cr_expect(strstr(d, ask), "%s in %s", ask, d);
    /* 4. the agent: leash ps lists us with 8 leaked; stats */
    char *a = strndup(agent, (size_t)(check - agent));
    cr_expect(strstr(a, "$ leash ps\n"), "%s", a);
    cr_expect(strstr(a, "example_analysi"), "%s", a);
    cr_expect(strstr(a, "$ leash stats "), "%s", a);
    cr_expect(strstr(a, "leaked:         8"), "%s", a);
    cr_expect(strstr(a, "workers:"), "%s", a);
    cr_expect(strstr(a, "OS threads:"), "%s", a);
    /* 5. the leak check */
    char *sites[3] = {site("analysis.c", "leash_go(ask", 1),
                      site("analysis.c", "leash_go(ask", 2),
                      site("analysis.c", "leash_go(ask", 3)};
    each_record_has(check, "[chan send, ", sites, 3, 8);
    cr_expect(strstr(check, "leash_leak_verify: 8 coroutine(s) leaked"),
              SHOW(r));
    free(h);
    free(d);
    free(a);
    result_free(&r);
}

/* ------------------------- method 5, in a test: leaktest / goleak */

/*
 * How a test checks for leaks: take a snapshot (it opens a leak scope:
 * only what this test starts counts), run the code, and verify that
 * nothing the test started is left.
 */
#define EXPECT_NO_LEAKS(snap)                                               \
    do {                                                                    \
        leash_leak_opts o_ = {.timeout_ns = 2000000000};                    \
        int n_ = leash_leak_verify((snap), &o_);                            \
        cr_expect_eq(n_, 0, "%d coroutine(s) leaked (report above)", n_);   \
    } while (0)

static void lt_ask(void *arg)
{
    leash_chan *ch = arg;
    static _Atomic int k;
    int v = atomic_fetch_add(&k, 1) % 3;
    leash_sleep(v * 10 * 1000 * 1000LL); /* 0, 10, 20 ms */
    leash_send(ch, &v);
}

static int lt_query_all(size_t cap)
{
    leash_chan *ch = leash_chan_make(sizeof(int), cap);
    leash_go(lt_ask, ch, ch); /* LT_SPAWN_1 */
    leash_go(lt_ask, ch, ch); /* LT_SPAWN_2 */
    leash_go(lt_ask, ch, ch); /* LT_SPAWN_3 */
    int v = -1;
    leash_recv(ch, &v);
    leash_release(ch);
    return v;
}

/* Run only when the parent test below asks (they fail on purpose). */
static void only_when_asked(void)
{
    if (!getenv("LEASH_EXAMPLES_LEAKTEST_DEMO"))
        cr_skip_test("run by leaktest/fails_on_leaky_passes_on_fixed");
}

Test(leaktest_demo, leaky)
{
    only_when_asked();
    leash_snapshot *snap = leash_snapshot_take();
    lt_query_all(0);
    EXPECT_NO_LEAKS(snap); /* fails: two senders are stuck */
    leash_snapshot_free(snap);
}

Test(leaktest_demo, buffered)
{
    only_when_asked();
    leash_snapshot *snap = leash_snapshot_take();
    lt_query_all(3);
    EXPECT_NO_LEAKS(snap);
    leash_snapshot_free(snap);
}

static int test_src_line(const char *needle)
{
    FILE *f = fopen(LEASH_SOURCE_DIR "/tests/test_examples.c", "r");
    cr_assert(f);
    char line[1024];
    int no = 0;
    while (fgets(line, sizeof line, f)) {
        no++;
        if (strstr(line, needle) && !strstr(line, "test_src_line")) {
            fclose(f);
            return no;
        }
    }
    fclose(f);
    cr_assert_fail("no line with %s", needle);
    return 0;
}

static result run_self(const char *filter)
{
    char arg[128];
    snprintf(arg, sizeof arg, "--filter=%s", filter);
    static const char *const env[] = {"LEASH_EXAMPLES_LEAKTEST_DEMO=1", NULL};
    const char *const args[] = {arg, "-j1", "--verbose", NULL};
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert(n > 0);
    self[n] = 0;
    result r = run_path(self, env, args, 60);
    cr_assert(!r.timed_out, SHOW(r));
    return r;
}

Test(leaktest, fails_on_leaky_passes_on_fixed)
{
    result r = run_self("leaktest_demo/leaky");
    cr_expect_neq(r.status, 0, "the leaky test must fail" SHOW(r));
    /* Criterion prints the assertion; leash's report went to stderr */
    cr_expect(strstr(r.err, "2 coroutine(s) leaked (report above)"), SHOW(r));
    cr_expect(strstr(r.err, "leash: found 2 unexpected goroutine(s), all "
                            "provably stuck"), SHOW(r));
    char s1[64], s2[64], s3[64];
    snprintf(s1, sizeof s1, "tests/test_examples.c:%d",
             test_src_line("/* LT_SPAWN_1 */"));
    snprintf(s2, sizeof s2, "tests/test_examples.c:%d",
             test_src_line("/* LT_SPAWN_2 */"));
    snprintf(s3, sizeof s3, "tests/test_examples.c:%d",
             test_src_line("/* LT_SPAWN_3 */"));
    int spawned = !!strstr(r.err, s1) + !!strstr(r.err, s2) +
                  !!strstr(r.err, s3);
    cr_expect_eq(spawned, 2, "two of the three spawn sites" SHOW(r));
    cr_expect_eq(count(r.err, "[chan send, "), 2, SHOW(r));
    result_free(&r);

    r = run_self("leaktest_demo/buffered");
    cr_expect_eq(r.status, 0, "the fixed test must pass" SHOW(r));
    cr_expect(!strstr(r.err, "unexpected goroutine"), SHOW(r));
    result_free(&r);
}

/* The same check in this process, on the count API (method 1). */
Test(leaktest, count_api_in_process)
{
    size_t base = leash_num_coroutines();
    for (int i = 1; i <= 4; i++) {
        lt_query_all(0);
        leash_sleep(40 * 1000 * 1000LL); /* every loser reaches its send */
        cr_expect_eq(leash_num_coroutines(), base + 2 * (size_t)i);
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int n = leash_leak_dump(f, LEASH_DUMP_JSON);
    fclose(f);
    cr_expect_eq(n, 8, "%s", buf);
    cr_expect_eq(count(buf, "\"leak\":\"orphan\""), 8, "%s", buf);
    cr_expect_eq(count(buf, "\"wait_reason\":\"chan send\""), 8, "%s", buf);
    free(buf);
}
