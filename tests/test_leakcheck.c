/* SPDX-License-Identifier: MIT */
/*
 * test_leakcheck.c — leash_snapshot_take / leash_leak_verify /
 * leash_snapshot_free with goleak's behaviour, leak scopes, and
 * LEASH_LEAKCHECK=1 at exit (testprog_diag_leakcheck).
 *
 *   - 0 for a clean test; retries with backoff until the timeout (a
 *     coroutine that exits after 50 ms is not reported with a 2 s
 *     timeout, one that lives on is, after about the timeout);
 *   - ignore lists by top function and by creating function;
 *   - the report: each leaked coroutine with its stack, wait object and
 *     spawn site;
 *   - scopes: parallel "tests" (threads or coroutines) see only their own
 *     coroutines, snapshots nest, children of children count;
 *   - returns at once when every coroutine left is provably stuck;
 *   - a NULL baseline means every coroutine but the caller.
 *
 * Timing checks only ever say "did not give up early" or "did not wait
 * for the whole (long) timeout"; they are bounds, not speed assertions.
 *
 * LEASH_TEST_TIMEOUT 300
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_util.h"
#include "diag_util.h"

#define MS CU_MS
#define NOINLINE __attribute__((noinline))

static void setup(void) { setenv("LEASH_PROCS", "2", 1); }

/* A report stream: a memstream the caller reads after fclose. */
typedef struct {
    char *buf;
    size_t len;
    FILE *f;
    const char *text; /* set by verify */
    int64_t ns;       /* how long verify took */
} report;

static void report_open(report *r) {
    r->buf = NULL;
    r->len = 0;
    r->f = open_memstream(&r->buf, &r->len);
}
static const char *report_close(report *r) {
    fclose(r->f);
    r->f = NULL;
    return r->buf ? r->buf : "";
}

/* leash_leak_verify; with r, its report is captured in r->text (free
 * r->buf after) and how long it took in r->ns. */
static int verify(const leash_snapshot *s, int64_t timeout_ns, report *r,
                  const char *const *top, const char *const *creator) {
    if (r)
        report_open(r);
    leash_leak_opts o = {.timeout_ns = timeout_ns,
                         .out = r ? r->f : NULL,
                         .ignore_top = top,
                         .ignore_creator = creator,
                         .quiet = r == NULL};
    int64_t t0 = leash_now();
    int n = leash_leak_verify(s, &o);
    if (r) {
        r->ns = leash_now() - t0;
        r->text = report_close(r);
    }
    return n;
}

/* ------------------------------------------------------------ workers */

static NOINLINE void quick(void *a) {
    (void)a;
    leash_yield();
}

static NOINLINE void exits_after_50ms(void *a) {
    (void)a;
    leash_sleep(50 * MS);
}

static NOINLINE void lives_on(void *a) {
    (void)a;
    leash_sleep(3600LL * 1000 * MS);
}

/* Blocks receiving on a channel somebody else holds: not provably stuck,
 * so a check waits for it until its timeout. */
static NOINLINE void leak_recv_fn(void *a) {
    int v;
    leash_recv((leash_chan *)a, &v);
}

static NOINLINE void nil_blocker(void *a) {
    (void)a;
    int v;
    leash_recv_n(NULL, &v, sizeof v);
}

static NOINLINE void orphan_sender(void *a) {
    int v = 1;
    leash_send((leash_chan *)a, &v);
}

/* ------------------------------------------------------------- basics */

Test(verify, clean_test_returns_zero, .timeout = 30) {
    setup();
    leash_snapshot *s = leash_snapshot_take();
    cr_assert_not_null(s);
    for (int i = 0; i < 20; i++)
        cr_assert_gt(leash_go(quick, NULL), 0);
    report r;
    int n = verify(s, 2000 * MS, &r, NULL, NULL);
    const char *text = r.text;
    cr_expect_eq(n, 0, "clean test: %d\n%s", n, text);
    cr_expect_str_empty(text, "a clean check writes nothing:\n%s", text);
    free(r.buf);
    leash_snapshot_free(s);
    leash_snapshot_free(NULL); /* ignored */
}

Test(verify, retries_until_the_coroutine_exits, .timeout = 30) {
    setup();
    leash_snapshot *s = leash_snapshot_take();
    for (int i = 0; i < 5; i++)
        leash_go(exits_after_50ms, NULL);
    report r;
    int n = verify(s, 2000 * MS, &r, NULL, NULL);
    int64_t t0 = 0, dt = r.ns;
    const char *text = r.text;
    cr_expect_eq(n, 0, "coroutines exiting after 50 ms reported with a 2 s "
                 "timeout: %d\n%s", n, text);
    cr_expect_str_empty(text);
    /* It returned when they were gone, not at the timeout. */
    cr_expect_lt(dt, 1900 * MS, "waited %.0f ms", cu_ms(t0, t0 + dt));
    free(r.buf);
    leash_snapshot_free(s);
}

static int lives_line;
Test(verify, reports_what_lives_on_after_the_timeout, .timeout = 30) {
    setup();
    leash_snapshot *s = leash_snapshot_take();
    int64_t id = (lives_line = __LINE__, leash_go(lives_on, NULL));
    leash_go(exits_after_50ms, NULL);
    report r;
    int n = verify(s, 400 * MS, &r, NULL, NULL);
    int64_t t0 = 0, dt = r.ns;
    const char *text = r.text;
    cr_expect_eq(n, 1, "%d\n%s", n, text);
    /* A sleeper may still wake: not provably stuck, so the check kept
     * trying for (about) the whole timeout. */
    cr_expect_geq(dt, 350 * MS, "gave up after %.0f ms of a 400 ms timeout",
                  cu_ms(t0, t0 + dt));
    char *b = du_block(text, id);
    cr_expect(b && du_match(b, "^goroutine [0-9]+ \\[sleep, [0-9]+\\.[0-9]{3}s\\]:"),
              "report:\n%s", text);
    char want[512];
    snprintf(want, sizeof want, "spawned at %s:%d in ", __FILE__, lives_line);
    cr_expect(b && strstr(b, want), "no '%s' in:\n%s", want, text);
    cr_expect(b && strstr(b, "\n  lives_on\n"), "no lives_on frame:\n%s", text);
    cr_expect(strstr(text, "found 1 unexpected goroutine(s)"), "%s", text);
    cr_expect(!strstr(text, "all provably stuck"), "%s", text);
    free(b);
    free(r.buf);
    leash_snapshot_free(s);
}

static int rep_spawn_line, rep_chan_line;
Test(verify, report_has_stack_wait_object_and_spawn_site, .timeout = 30) {
    setup();
    leash_snapshot *s = leash_snapshot_take();
    leash_chan *ch = (rep_chan_line = __LINE__, leash_chan_make(sizeof(int), 0));
    int64_t id = (rep_spawn_line = __LINE__, leash_go(leak_recv_fn, ch));
    cr_assert(du_wait_state(id, "waiting:chan receive", 10000));
    report r;
    int n = verify(s, 200 * MS, &r, NULL, NULL);
    const char *text = r.text;
    cr_expect_eq(n, 1, "%d\n%s", n, text);
    char *b = du_block(text, id);
    cr_assert_not_null(b, "no block for goroutine %lld:\n%s", (long long)id, text);
    cr_expect(du_match(b, "^goroutine [0-9]+ \\[chan receive, [0-9]+\\.[0-9]{3}s\\]:\n"),
              "%s", b);
    char want[600];
    snprintf(want, sizeof want,
             "    waiting on chan#%s made at %s:%d (unbuffered 0/0, 0 sender(s), "
             "1 receiver(s) waiting, open, 1 reference(s))\n", "", __FILE__,
             rep_chan_line);
    /* chan#<id>: match around the id. */
    char re[800], ef[512];
    snprintf(re, sizeof re,
             "\n    waiting on chan#[0-9]+ made at %s:%d \\(unbuffered 0/0, 0 "
             "sender\\(s\\), 1 receiver\\(s\\) waiting, open, 1 reference\\(s\\)\\)\n",
             du_re_escape(__FILE__, ef, sizeof ef), rep_chan_line);
    cr_expect(du_match(b, re), "wait object: want %s in:\n%s", want, b);
    snprintf(want, sizeof want, "\n    spawned at %s:%d in ", __FILE__,
             rep_spawn_line);
    cr_expect(strstr(b, want), "spawn site: want '%s' in:\n%s", want + 1, b);
    cr_expect(strstr(b, "\n  leash_recv_n\n\t") && strstr(b, "\n  leak_recv_fn\n\t"),
              "stack:\n%s", b);
    snprintf(re, sizeof re, "\n  leak_recv_fn\n\t%s:[0-9]+ \\+0x[0-9a-f]+\n",
             du_re_escape(__FILE__, ef, sizeof ef));
    cr_expect(du_match(b, re), "leak_recv_fn frame has no file:line:\n%s", b);
    free(b);
    free(r.buf);
    /* quiet: no report at all. */
    report_open(&r);
    leash_leak_opts o = {.timeout_ns = 50 * MS, .out = r.f, .quiet = 1};
    cr_expect_eq(leash_leak_verify(s, &o), 1);
    cr_expect_str_empty(report_close(&r), "quiet wrote a report");
    free(r.buf);
    leash_close(ch);
    leash_snapshot_free(s);
}

/* ------------------------------------------------------------ ignores */

static NOINLINE void ign_top_fn(void *a) {
    int v;
    leash_recv((leash_chan *)a, &v);
}

#if defined(__clang__)
#define NOIPA_ /* clang has no noipa and makes no such clones */
#else
#define NOIPA_ __attribute__((noipa))
#endif
static NOINLINE NOIPA_ int64_t ign_creator_fn(leash_chan *ch) {
    return leash_go(leak_recv_fn, ch);
}

Test(verify, ignore_top_function, .timeout = 30) {
    setup();
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    leash_snapshot *s = leash_snapshot_take();
    int64_t id = leash_go(ign_top_fn, ch);
    cr_assert(du_wait_state(id, "waiting:chan receive", 10000));
    const char *const by_caller[] = {"some_other_fn", "ign_top_fn", NULL};
    const char *const by_api[] = {"leash_recv_n", NULL};
    const char *const other[] = {"leak_recv_fn", NULL};
    cr_expect_eq(verify(s, 100 * MS, NULL, by_caller, NULL), 0,
                 "ignore_top by the function that called leash_recv");
    cr_expect_eq(verify(s, 100 * MS, NULL, by_api, NULL), 0,
                 "ignore_top by the blocking leash_* call");
    cr_expect_eq(verify(s, 100 * MS, NULL, other, NULL), 1,
                 "an unrelated name ignores nothing");
    cr_expect_eq(verify(s, 100 * MS, NULL, NULL, by_caller), 1,
                 "a top function is not a creator");
    leash_close(ch);
    leash_snapshot_free(s);
}

Test(verify, ignore_creator_function, .timeout = 30) {
    setup();
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    leash_snapshot *s = leash_snapshot_take();
    int64_t a = ign_creator_fn(ch);
    int64_t b = leash_go(leak_recv_fn, ch); /* created by the test itself */
    cr_assert(du_wait_state(a, "waiting:chan receive", 10000));
    cr_assert(du_wait_state(b, "waiting:chan receive", 10000));
    const char *const cr[] = {"ign_creator_fn", NULL};
    report r;
    int n = verify(s, 100 * MS, &r, NULL, cr);
    const char *text = r.text;
    cr_expect_eq(n, 1, "ignore_creator: %d\n%s", n, text);
    cr_expect(du_has_block(text, b) && !du_has_block(text, a), "%s", text);
    free(r.buf);
    leash_close(ch);
    leash_snapshot_free(s);
}

/* GCC may clone a function (IPA-SRA: "f.isra.0", "f.constprop.0",
 * "f.part.0"); a user names it as in the source. clone_spawner reads only
 * *cfg, which GCC turns into a by-value clone. If this compiler made no
 * clone the test checks nothing new. */
struct spawn_cfg {
    leash_chan *ch;
    char pad[64];
};
static NOINLINE int64_t clone_spawner(const struct spawn_cfg *cfg) {
    return leash_go(leak_recv_fn, cfg->ch);
}

Test(verify, ignore_creator_matches_compiler_clones, .timeout = 30) {
    setup();
    struct spawn_cfg cfg = {.ch = leash_chan_make(sizeof(int), 0)};
    leash_snapshot *s = leash_snapshot_take();
    int64_t a = clone_spawner(&cfg);
    cr_assert(du_wait_state(a, "waiting:chan receive", 10000));
    char *d = du_dump(LEASH_DUMP_STACKS);
    char *blk = du_block(d, a);
    cr_assert_not_null(blk);
    const char *const cr[] = {"clone_spawner", NULL};
    int n = verify(s, 100 * MS, NULL, NULL, cr);
    cr_expect_eq(n, 0, "ignore_creator \"clone_spawner\" does not match the "
                 "creator as dumps name it:\n%s", blk);
    cr_expect(strstr(blk, "created by clone_spawner in goroutine"),
              "Go names the creator as in the source:\n%s", blk);
    free(blk);
    free(d);
    leash_close(cfg.ch);
    leash_snapshot_free(s);
}

/* ------------------------------------------------------------- scopes */

/* Two "tests" on two plain threads at once: A leaks one coroutine, B's
 * coroutines all finish; each check sees only its own. */
static pthread_barrier_t bar;
typedef struct {
    bool leak;
    int result;
    int64_t leaked_id;
    char *text;
    leash_chan *ch;
} par_test;

static void *par_thread(void *p) {
    par_test *t = p;
    pthread_barrier_wait(&bar);
    leash_snapshot *s = leash_snapshot_take();
    pthread_barrier_wait(&bar); /* both scopes open before anyone spawns */
    for (int i = 0; i < 5; i++)
        leash_go(exits_after_50ms, NULL);
    if (t->leak)
        t->leaked_id = leash_go(leak_recv_fn, t->ch);
    pthread_barrier_wait(&bar);
    report r;
    t->result = verify(s, 500 * MS, &r, NULL, NULL);
    t->text = strdup(r.text);
    free(r.buf);
    leash_snapshot_free(s);
    return NULL;
}

Test(scopes, parallel_threads_see_only_their_own, .timeout = 30) {
    setup();
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    par_test a = {.leak = true, .ch = ch}, b = {.leak = false, .ch = ch};
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, par_thread, &a);
    pthread_create(&tb, NULL, par_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_expect_eq(a.result, 1, "leaky test: %d\n%s", a.result, a.text);
    cr_expect_eq(b.result, 0, "clean test sees the other's leak: %d\n%s",
                 b.result, b.text);
    cr_expect(du_has_block(a.text, a.leaked_id), "%s", a.text);
    cr_expect_str_empty(b.text);
    free(a.text);
    free(b.text);
    leash_close(ch);
}

/* The same with two coroutines as the tests, and a leak two levels down
 * (a coroutine started by a coroutine of the test). */
static leash_chan *pc_ch;
static NOINLINE void spawn_grandchild(void *a) {
    (void)a;
    *(int64_t *)a = leash_go(leak_recv_fn, pc_ch);
}
static par_test pc[2];
static leash_waitgroup pc_wg = LEASH_WAITGROUP_INIT;
static leash_chan *pc_gate;
static NOINLINE void par_coro(void *p) {
    par_test *t = p;
    leash_snapshot *s = leash_snapshot_take();
    leash_waitgroup_done(&pc_wg);
    int v;
    leash_recv(pc_gate, &v); /* both scopes open */
    for (int i = 0; i < 5; i++)
        leash_go(exits_after_50ms, NULL);
    if (t->leak) {
        leash_go(spawn_grandchild, &t->leaked_id);
        while (!__atomic_load_n(&t->leaked_id, __ATOMIC_ACQUIRE))
            leash_sleep(MS);
    }
    report r;
    t->result = verify(s, 500 * MS, &r, NULL, NULL);
    t->text = strdup(r.text);
    free(r.buf);
    leash_snapshot_free(s);
    leash_waitgroup_done(&pc_wg);
}
static int pc_main(void *a) {
    (void)a;
    pc_ch = leash_chan_make(sizeof(int), 0);
    pc_gate = leash_chan_make(0, 0);
    pc[0].leak = true;
    leash_waitgroup_add(&pc_wg, 2);
    leash_go(par_coro, &pc[0]);
    leash_go(par_coro, &pc[1]);
    leash_waitgroup_wait(&pc_wg);
    leash_waitgroup_add(&pc_wg, 2);
    leash_close(pc_gate);
    leash_waitgroup_wait(&pc_wg);
    leash_close(pc_ch);
    return 0;
}

Test(scopes, parallel_coroutines_and_grandchildren, .timeout = 30) {
    setup();
    cr_assert_eq(leash_run(pc_main, NULL), 0);
    cr_expect_eq(pc[0].result, 1, "leaky test (grandchild leak): %d\n%s",
                 pc[0].result, pc[0].text);
    cr_expect(du_has_block(pc[0].text, pc[0].leaked_id), "%s", pc[0].text);
    cr_expect_eq(pc[1].result, 0, "clean test: %d\n%s", pc[1].result,
                 pc[1].text);
    cr_expect_str_empty(pc[1].text);
}

Test(scopes, nested_snapshots, .timeout = 30) {
    setup();
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    leash_snapshot *outer = leash_snapshot_take();
    int64_t a = leash_go(leak_recv_fn, ch);
    leash_snapshot *inner = leash_snapshot_take();
    int64_t b = leash_go(leak_recv_fn, ch);
    cr_assert(du_wait_state(a, "waiting:chan receive", 10000));
    cr_assert(du_wait_state(b, "waiting:chan receive", 10000));
    report r;
    int n = verify(inner, 100 * MS, &r, NULL, NULL);
    const char *text = r.text;
    cr_expect_eq(n, 1, "inner scope: %d\n%s", n, text);
    cr_expect(du_has_block(text, b) && !du_has_block(text, a), "%s", text);
    free(r.buf);
    cr_expect_eq(verify(outer, 100 * MS, NULL, NULL, NULL), 2,
                 "the outer scope holds the inner one's coroutines too");
    leash_snapshot_free(inner);
    /* Back in the outer scope: new coroutines belong to it. */
    int64_t c = leash_go(leak_recv_fn, ch);
    cr_assert(du_wait_state(c, "waiting:chan receive", 10000));
    cr_expect_eq(verify(outer, 100 * MS, NULL, NULL, NULL), 3);
    leash_snapshot_free(outer);
    /* A NULL baseline: every coroutine but the caller (a plain thread
     * here, not a coroutine: all three). */
    cr_expect_eq(verify(NULL, 100 * MS, NULL, NULL, NULL), 3);
    leash_close(ch);
}

/* ---------------------------------------------------- provably stuck */

Test(stuck, returns_at_once_when_every_one_is_proven, .timeout = 60) {
    setup();
    leash_snapshot *s = leash_snapshot_take();
    int64_t a = leash_go(nil_blocker, NULL);
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    int64_t b = leash_go(orphan_sender, ch, ch);
    int64_t c = leash_go(orphan_sender, ch, ch);
    cr_assert(du_wait_state(a, "waiting:chan receive (nil chan)", 10000));
    cr_assert(du_wait_state(b, "waiting:chan send", 10000));
    cr_assert(du_wait_state(c, "waiting:chan send", 10000));
    leash_release(ch); /* b and c hold the only references: orphaned */
    report r;
    int n = verify(s, 20000 * MS, &r, NULL, NULL);
    int64_t t0 = 0, dt = r.ns;
    const char *text = r.text;
    cr_expect_eq(n, 3, "%d\n%s", n, text);
    cr_expect_lt(dt, 10000 * MS, "waited %.0f ms of a 20 s timeout for "
                 "coroutines proven stuck", cu_ms(t0, t0 + dt));
    cr_expect(strstr(text, "all provably stuck"), "%s", text);
    cr_expect(strstr(text, "LEAKED (blocked forever on a nil channel)") &&
                  strstr(text, "LEAKED (orphaned"),
              "%s", text);
    free(r.buf);
    leash_snapshot_free(s);
}

Test(stuck, one_not_proven_keeps_it_waiting, .timeout = 60) {
    setup();
    leash_chan *held = leash_chan_make(sizeof(int), 0);
    leash_snapshot *s = leash_snapshot_take();
    int64_t a = leash_go(nil_blocker, NULL);
    int64_t b = leash_go(leak_recv_fn, held); /* we still hold `held` */
    cr_assert(du_wait_state(a, "waiting:chan receive (nil chan)", 10000));
    cr_assert(du_wait_state(b, "waiting:chan receive", 10000));
    int64_t t0 = leash_now();
    int n = verify(s, 500 * MS, NULL, NULL, NULL);
    int64_t dt = leash_now() - t0;
    cr_expect_eq(n, 2);
    cr_expect_geq(dt, 450 * MS, "gave up after %.0f ms of 500 although one "
                  "coroutine can still be woken", cu_ms(t0, t0 + dt));
    leash_close(held);
    leash_snapshot_free(s);
}

/* ------------------------------------------------------ NULL baseline */

static int nb_result, nb_result_ignored;
static int nb_main(void *a) {
    (void)a;
    leash_go(nil_blocker, NULL);
    leash_go(nil_blocker, NULL);
    leash_go(quick, NULL);
    leash_leak_opts o = {.timeout_ns = 2000 * MS, .quiet = 1};
    nb_result = leash_leak_verify(NULL, &o);
    const char *const top[] = {"nil_blocker", NULL};
    o.ignore_top = top;
    nb_result_ignored = leash_leak_verify(NULL, &o);
    return 0;
}

Test(baseline, null_means_all_but_the_caller, .timeout = 30) {
    setup();
    cr_assert_eq(leash_run(nb_main, NULL), 0);
    cr_expect_eq(nb_result, 2, "NULL baseline from coroutine 1: %d (the two "
                 "blocked ones; not the caller, not the finished one)",
                 nb_result);
    cr_expect_eq(nb_result_ignored, 0);
}

/* ------------------------------------------------------ LEASH_LEAKCHECK */


static char *run_leakcheck(const char *mode, int *status) {
    const char *env[] = {"LEASH_LEAKCHECK=1", "LEASH_PROCS=2", NULL};
    const char *args[] = {mode, NULL};
    char *out = NULL;
    bool to = false;
    *status = cu_run_prog("diag_leakcheck", args, env, &out, 60, &to);
    cr_assert(!to, "%s timed out:\n%s", mode, out);
    return out;
}

Test(leakcheck_env, leaky_program_exits_23_with_the_report, .timeout = 90) {
    int st;
    char *out = run_leakcheck("leaky", &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 23, "status %#x:\n%s", st, out);
    /* The live coroutine, with its spawn site. */
    char *co = site_of(out, "coroutine");
    cr_assert_not_null(co, "%s", out);
    char want[600];
    snprintf(want, sizeof want, "spawned at %s in leaky_main by goroutine 1", co);
    cr_expect(strstr(out, want), "want '%s':\n%s", want, out);
    cr_expect(du_match(out, "\ngoroutine [0-9]+ \\[chan receive, [0-9.]+s\\]:"),
              "%s", out);
    /* Objects never released, each with its creation site. */
    const char *kinds[] = {"channel", "context", "ticker", "group"};
    for (int i = 0; i < 4; i++) {
        char *site = site_of(out, kinds[i]);
        cr_assert_not_null(site);
        char re[800], ef[600];
        snprintf(re, sizeof re,
                 "\n  %s#[0-9]+ created at %s in make_thread_objects by goroutine",
                 kinds[i], du_re_escape(site, ef, sizeof ef));
        cr_expect(du_match(out, re), "no unreleased %s from %s:\n%s", kinds[i],
                  site, out);
        free(site);
    }
    cr_expect(strstr(out, "leash: objects never released:\n"), "%s", out);
    /* Dropped only because their owner returned. */
    cr_expect(strstr(out, "objects dropped only because their owner returned"),
              "%s", out);
    /* Each names the function that made it, and its owner's spawn site
     * with the function it is in; the main coroutine's is the leash_run
     * call (not "?:0"). */
    char *run = site_of(out, "main-run");
    cr_assert_not_null(run, "%s", out);
    const char *dk[] = {"dropped-channel", "dropped-context", "dropped-ticker"};
    const char *dn[] = {"channel", "context", "ticker"};
    const char *df[] = {"dropper", "dropper", "leaky_main"};
    for (int i = 0; i < 3; i++) {
        char *site = site_of(out, dk[i]);
        cr_assert_not_null(site);
        char re[1600], ef[600], sp[700];
        if (i < 2)
            snprintf(sp, sizeof sp, "[^ )]*diag_leakcheck\\.c:[0-9]+ in leaky_main");
        else /* the leash_run call in main: clang merges the identical
              * calls of several modes, so only the function is sure */
            snprintf(sp, sizeof sp, "[^ )]*diag_leakcheck\\.c:[0-9]+ in main");
        snprintf(re, sizeof re, "\n  %s#[0-9]+ created at %s in %s, owned by goroutine [0-9]+ "
                 "\\(spawned at %s\\)\n",
                 dn[i], du_re_escape(site, ef, sizeof ef), df[i], sp);
        cr_expect(du_match(out, re), "no dropped %s from %s:\n%s", dn[i], site,
                  out);
        free(site);
    }
    cr_expect(du_match(out, "leash: LEASH_LEAKCHECK: [0-9]+ leak\\(s\\) found\n"),
              "%s", out);
    free(run);
    free(co);
    free(out);
}

Test(leakcheck_env, clean_program_keeps_its_status_and_says_nothing,
     .timeout = 90) {
    int st;
    char *out = run_leakcheck("clean", &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %#x:\n%s", st, out);
    cr_expect_str_empty(out, "a clean program prints nothing:\n%s", out);
    free(out);
}

Test(leakcheck_env, without_leash_run_checked_at_process_exit, .timeout = 90) {
    int st;
    char *out = run_leakcheck("norun-leaky", &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 23, "status %#x:\n%s", st, out);
    char *co = site_of(out, "coroutine"), *ch = site_of(out, "channel");
    cr_assert(co && ch, "%s", out);
    char want[600];
    snprintf(want, sizeof want, "spawned at %s in main by goroutine", co);
    cr_expect(strstr(out, want), "want '%s':\n%s", want, out);
    snprintf(want, sizeof want, "created at %s in main by goroutine", ch);
    cr_expect(strstr(out, want), "want channel '%s':\n%s", want, out);
    free(co);
    free(ch);
    free(out);
    out = run_leakcheck("norun-clean", &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 5, "status %#x:\n%s", st, out);
    cr_expect_str_empty(out, "%s", out);
    free(out);
}

Test(leakcheck_env, off_by_default, .timeout = 60) {
    const char *args[] = {"leaky", NULL};
    char *out = NULL;
    bool to = false;
    int st = cu_run_prog("diag_leakcheck", args, NULL, &out, 30, &to);
    cr_expect(!to && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x:\n%s",
              st, out);
    cr_expect(!strstr(out, "leash:"), "report without LEASH_LEAKCHECK:\n%s", out);
    free(out);
}

/* The runtime's own coroutines are told by g->system, not by a name: a
 * user coroutine calling itself "leash/..." is still reported. */
static void hides_behind_a_name(void *p) {
    (void)p;
    leash_set_name("leash/http");
    leash_sleep(3600 * 1000 * MS);
}

Test(verify, a_leash_slash_name_does_not_hide_a_leak, .timeout = 30) {
    setup();
    leash_snapshot *s = leash_snapshot_take();
    leash_go(hides_behind_a_name, NULL);
    report r;
    int n = verify(s, 100 * MS, &r, NULL, NULL);
    cr_expect_eq(n, 1, "a coroutine named leash/http was not reported: %d\n%s",
                 n, r.text);
    free(r.buf);
    leash_snapshot_free(s);
}
