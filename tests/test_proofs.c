/* SPDX-License-Identifier: MIT */
/*
 * test_proofs.c — leak proofs and suspects (docs/DESIGN-NOTES.md, "Leak rules"): each
 * proof fires for its case and for none of the fixed versions.
 *
 *   nil channels     send, receive, select with only NULL cases, select
 *                    with no cases: in leash_leak_dump at once;
 *   orphans          queryAll: proven when the release happens and when
 *                    the holders block after it, attributed to the release;
 *                    released while waited on; borrowers keep the proof
 *                    sound (test_falseproof: those that have not used it
 *                    yet); LEASH_ORPHANS=record|report|wake|abort
 *                    (testprog_diag_orphans); fixed versions (buffered,
 *                    context, done channel) prove nothing;
 *   deadlock         Go's fatal error and exit 2, not silenced by timers,
 *                    I/O deadlines, leash_blocking or plain threads that
 *                    can still wake someone, off with LEASH_DEADLOCK=0
 *                    (testprog_diag_deadlock);
 *   wait-for cycles  through mutexes and rwmutexes;
 *   suspects         a coroutine running without yielding (LEASH_HOG_MS),
 *                    I/O without a deadline, canceled but still blocked,
 *                    spawn sites that keep growing;
 *   LEASH_STRICT     misuse Go panics on aborts with a dump
 *                    (testprog_diag_strict).
 *
 * Dumps are taken from the plain test thread where a coroutine spins
 * (see test_diag.c, "spinning").
 *
 * LEASH_TEST_TIMEOUT 300
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_util.h"
#include "diag_util.h"

#define MS CU_MS
#define NOINLINE __attribute__((noinline))
#if defined(__clang__)
#define NOIPA __attribute__((noinline)) /* clang has no noipa */
#else
#define NOIPA __attribute__((noinline, noipa))
#endif

static void setup(void) { setenv("LEASH_PROCS", "2", 1); }

/* Number of coroutines leash_leak_dump lists, and its leash-format text
 * (*text, malloc'd; may be NULL). */
static int leaked(char **text) {
    int rc = -1;
    char *t = du_leak_dump(LEASH_DUMP_LEASH, &rc);
    if (text)
        *text = t;
    else
        free(t);
    return rc;
}

/* ========================================================= nil channels */

static NOINLINE void nil_send(void *a) {
    (void)a;
    int v = 1;
    leash_send_n(NULL, &v, sizeof v);
}
static NOINLINE void nil_recv(void *a) {
    (void)a;
    int v;
    leash_recv_n(NULL, &v, sizeof v);
}
static NOINLINE void nil_select(void *a) {
    (void)a;
    int v = 0, w;
    leash_case cs[2] = {LEASH_SEND_CASE(NULL, &v), LEASH_RECV_CASE(NULL, &w)};
    leash_select(cs, 2);
}
static NOINLINE void nil_select0(void *a) {
    (void)a;
    leash_select(NULL, 0);
}

Test(nil, blocks_are_proven_at_once, .timeout = 30) {
    setup();
    struct { void (*fn)(void *); const char *state; int64_t id; } c[] = {
        {nil_send, "waiting:chan send (nil chan)", 0},
        {nil_recv, "waiting:chan receive (nil chan)", 0},
        {nil_select, "waiting:select", 0},
        {nil_select0, "waiting:select (no cases)", 0},
    };
    for (int i = 0; i < 4; i++)
        c[i].id = leash_go(c[i].fn, NULL);
    for (int i = 0; i < 4; i++)
        cr_assert(du_wait_state(c[i].id, c[i].state, 10000), "%s", c[i].state);
    char *text;
    cr_expect_eq(leaked(&text), 4, "%s", text);
    for (int i = 0; i < 4; i++) {
        char *b = du_block(text, c[i].id);
        cr_expect(b && strstr(b, "LEAKED (blocked forever on a nil channel)"),
                  "%s:\n%s", c[i].state, b ? b : text);
        free(b);
    }
    free(text);
}

/* A select with a real channel among NULL ones is not a nil block. */
static leash_chan *half_ch;
static NOINLINE void half_nil_select(void *a) {
    (void)a;
    int v;
    leash_case cs[2] = {LEASH_RECV_CASE(NULL, &v), LEASH_RECV_CASE(half_ch, &v)};
    leash_select(cs, 2);
}
Test(nil, select_with_a_real_channel_is_not_proven, .timeout = 30) {
    setup();
    half_ch = leash_chan_make(sizeof(int), 0);
    int64_t id = leash_go(half_nil_select, NULL);
    cr_assert(du_wait_state(id, "waiting:select", 10000));
    char *text;
    cr_expect_eq(leaked(&text), 0, "%s", text);
    free(text);
    leash_close(half_ch);
}

/* ============================================================ orphans */

/* queryAll, as in examples/queryall.c: three senders each hold a handed
 * reference; the caller takes the first answer and releases. */
typedef struct {
    leash_chan *ch;
    int delay_ms;
} qarg;
static qarg qa[3];
static int64_t qa_ids[3];
static int qa_release_line;
static _Atomic int64_t qa_main_id;

static NOINLINE void q_send(void *a) {
    qarg *q = a;
    leash_sleep(q->delay_ms * MS);
    int v = q->delay_ms;
    leash_send(q->ch, &v);
}

/* The release to be named in the report. */
static NOIPA void query_all_release(leash_chan *ch) {
    qa_release_line = __LINE__ + 1;
    leash_release(ch);
}

/* Starts the three, takes one answer; losers_first: wait until both
 * losers are blocked before releasing (proof at the release), else
 * release while they still sleep (proof when they block). */
static void query_all(bool losers_first) {
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    int delays[3] = {0, losers_first ? 10 : 150, losers_first ? 20 : 200};
    for (int i = 0; i < 3; i++) {
        qa[i] = (qarg){ch, delays[i]};
        qa_ids[i] = leash_go(q_send, &qa[i], ch);
    }
    int v;
    CU_CHECK_EQ(leash_recv(ch, &v), 0);
    CU_CHECK_EQ(v, 0);
    /* The winner holds its reference until it has returned: wait for
     * that, or its exit may be the last release (and named instead). */
    CU_CHECK(du_wait_state(qa_ids[0], "", 10000));
    if (losers_first) {
        CU_CHECK(du_wait_state(qa_ids[1], "waiting:chan send", 10000));
        CU_CHECK(du_wait_state(qa_ids[2], "waiting:chan send", 10000));
    }
    query_all_release(ch);
}

static char *qa_text;
static int qa_count;
static int qa_main(void *a) {
    qa_main_id = leash_self();
    query_all(a != NULL);
    CU_CHECK(du_wait_state(qa_ids[1], "waiting:chan send", 10000));
    CU_CHECK(du_wait_state(qa_ids[2], "waiting:chan send", 10000));
    /* The proof is made when it becomes true; give a late one a moment
     * (a bound, not a requirement on speed). */
    int64_t until = leash_now() + 1000 * MS;
    while ((qa_count = leaked(NULL)) < 2 && leash_now() < until)
        leash_sleep(5 * MS);
    qa_count = leaked(&qa_text);
    return 0;
}

static void check_queryall(bool losers_first) {
    setup();
    cr_assert_eq(leash_run(qa_main, losers_first ? (void *)1 : NULL), 0);
    CU_ASSERT_CLEAN();
    cr_expect_eq(qa_count, 2, "%s: %d proven\n%s",
                 losers_first ? "released after the losers blocked"
                              : "losers blocked after the release",
                 qa_count, qa_text);
    char want[600];
    snprintf(want, sizeof want,
             "    orphaned by goroutine %lld releasing it in query_all_release at %s:%d\n",
             (long long)qa_main_id, __FILE__, qa_release_line);
    for (int i = 1; i < 3; i++) {
        char *b = du_block(qa_text, qa_ids[i]);
        cr_expect(b && strstr(b, "LEAKED (orphaned: nobody can ever use its channel)"),
                  "loser %d:\n%s", i, b ? b : qa_text);
        cr_expect(b && strstr(b, want), "loser %d: want '%s' in:\n%s", i, want,
                  b ? b : qa_text);
        free(b);
    }
    free(qa_text);
}

Test(orphans, proven_when_the_holders_block_after_the_release, .timeout = 30) {
    check_queryall(false);
}

Test(orphans, proven_at_the_release_when_the_holders_already_block,
     .timeout = 30) {
    check_queryall(true);
}

/* The last other holder is a coroutine that returns: its references are
 * released as it returns, and the report names it. */
static leash_chan *rt_ch;
static int64_t rt_holder, rt_sender;
static atomic_int rt_go;
static NOINLINE void rt_holder_fn(void *a) {
    (void)a;
    while (!atomic_load(&rt_go))
        leash_sleep(MS);
    /* returns holding its handed reference to rt_ch */
}
static NOINLINE void rt_sender_fn(void *a) {
    (void)a;
    while (atomic_load(&rt_go) < 2)
        leash_sleep(MS);
    int v = 1;
    leash_send(rt_ch, &v);
}

Test(orphans, attributed_to_a_coroutine_that_returned, .timeout = 30) {
    setup();
    rt_ch = leash_chan_make(sizeof(int), 0);
    rt_holder = leash_go(rt_holder_fn, NULL, rt_ch);
    rt_sender = leash_go(rt_sender_fn, NULL, rt_ch);
    int release_line = __LINE__ + 1;
    leash_release(rt_ch); /* the holder and the sender hold it now */
    atomic_store(&rt_go, 1);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 10000));
    atomic_store(&rt_go, 2); /* the sender blocks: nobody else holds it */
    cr_assert(du_wait_state(rt_sender, "waiting:chan send", 10000));
    char *text;
    cr_assert(CU_WAIT_UNTIL(leaked(NULL) == 1, 2000), "not proven");
    cr_expect_eq(leaked(&text), 1);
    char want[200];
    snprintf(want, sizeof want,
             "\n    orphaned by goroutine %lld (releasing it in|returning from) "
             "rt_holder_fn[ \n]", (long long)rt_holder);
    cr_expect(du_match(text, want), "want /%s/ (the coroutine whose return "
              "released it):\n%s", want, text);
    /* ... and the release before that return: which of the two came last
     * is often a race, the release is what the reader looks for. */
    snprintf(want, sizeof want,
             "\n    after goroutine 0 released it in [^ ]+ at [^ ]*test_proofs\\.c:%d\n",
             release_line);
    cr_expect(du_match(text, want), "want /%s/ in:\n%s", want, text);
    free(text);
    char *d = du_dump(LEASH_DUMP_JSON);
    dj *doc = dj_parse(d, NULL, NULL);
    const dj *g = dj_coroutine(doc, rt_sender);
    const dj *o = g ? dj_get(g, "wait_obj") : NULL;
    const dj *by = o ? dj_get(o, "orphaned_by") : NULL;
    const dj *after = by ? dj_get(by, "after_release") : NULL;
    cr_expect(after && dj_get(after, "line") &&
                  dj_get(after, "line")->num == release_line,
              "JSON orphaned_by.after_release.line:\n%s", d);
    dj_free(doc);
    free(d);
}

/* Released while waited on: a coroutine blocks on a channel it holds no
 * reference to; the last reference goes. */
static NOINLINE void borrow_recv(void *a) {
    int v;
    leash_recv((leash_chan *)a, &v);
}

Test(orphans, released_while_waited_on, .timeout = 30) {
    setup();
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    int64_t id = leash_go(borrow_recv, ch);
    cr_assert(du_wait_state(id, "waiting:chan receive", 10000));
    cr_expect_eq(leaked(NULL), 0, "proven while a holder lives");
    leash_release(ch);
    cr_assert(CU_WAIT_UNTIL(leaked(NULL) == 1, 2000), "not proven after the "
              "last release");
    char *d = du_dump(LEASH_DUMP_JSON);
    dj *doc = dj_parse(d, NULL, NULL);
    const dj *g = dj_coroutine(doc, id);
    const dj *o = g ? dj_get(g, "wait_obj") : NULL;
    cr_expect(o && dj_get(o, "released") && dj_get(o, "released")->b,
              "JSON wait_obj.released:\n%s", d);
    cr_expect_str_eq(dj_str(dj_get(g, "leak")), "orphan");
    dj_free(doc);
    free(d);
    char *t = du_dump(LEASH_DUMP_LEASH);
    char *b = du_block(t, id);
    cr_expect(b && strstr(b, ", released)\n"), "%s", b);
    free(b);
    free(t);
}

/* Borrowers: leash_go(worker, &job) with job.ch inside, no reference of
 * the worker's own. While the borrower lives, the holder blocked on the
 * channel is not proven orphaned; once it is gone, it is. */
typedef struct {
    leash_chan *ch;
    leash_chan *go2;
} job_t;
static job_t job;
static atomic_int hold_got;
static leash_chan *hold_step;
static NOINLINE void holder_loop(void *a) {
    (void)a;
    int v;
    for (;;) {
        if (leash_recv(job.ch, &v) != 0)
            return;
        int n = atomic_fetch_add(&hold_got, 1) + 1;
        if (n == 2) /* wait until told the borrower is gone */
            leash_recv(hold_step, &v);
    }
}
static NOINLINE void borrower(void *a) {
    job_t *j = a;
    int v = 1;
    leash_send(j->ch, &v); /* uses ch without a reference */
    leash_recv(j->go2, &v);
    leash_send(j->ch, &v);
}

Test(orphans, borrowers_keep_the_proof_sound, .timeout = 30) {
    setup();
    job.ch = leash_chan_make(sizeof(int), 0);
    job.go2 = leash_chan_make(sizeof(int), 0);
    hold_step = leash_chan_make(sizeof(int), 0);
    int64_t h = leash_go(holder_loop, NULL, job.ch, hold_step);
    int64_t b = leash_go(borrower, &job, job.go2);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&hold_got) == 1, 10000));
    cr_assert(du_wait_state(h, "waiting:chan receive", 10000));
    cr_assert(du_wait_state(b, "waiting:chan receive", 10000));
    leash_release(job.ch); /* h holds the only reference; b borrows it */
    leash_sleep(50 * MS);
    char *text;
    cr_expect_eq(leaked(&text), 0, "the holder was proven orphaned while a "
                 "borrower that used the channel lives:\n%s", text);
    free(text);
    int v = 2;
    leash_send(job.go2, &v); /* the borrower sends again and returns */
    cr_assert(CU_WAIT_UNTIL(atomic_load(&hold_got) == 2, 10000));
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 10000),
              "the borrower did not finish");
    leash_send(hold_step, &v); /* the holder blocks on ch again */
    cr_assert(du_wait_state(h, "waiting:chan receive", 10000));
    cr_expect(CU_WAIT_UNTIL(leaked(NULL) == 1, 2000),
              "borrower gone, the holder blocked on a channel nobody else "
              "holds: not proven");
    leash_release(job.go2);
    leash_release(hold_step);
}

/* ------------------------------------------------ the fixed versions */

static atomic_int fx_done;

/* Buffered, capacity 3: every sender completes. */
static NOINLINE void fx_send(void *a) {
    int v = 1;
    leash_send((leash_chan *)a, &v);
    atomic_fetch_add(&fx_done, 1);
}

/* Context: the losers give up when it is cancelled. */
typedef struct {
    leash_chan *ch;
    leash_ctx *ctx;
    int delay_ms;
} fx_arg;
static fx_arg fxa[3];
static NOINLINE void fx_send_ctx(void *a) {
    fx_arg *f = a;
    leash_sleep(f->delay_ms * MS);
    int v = 1;
    leash_case cs[2] = {LEASH_SEND_CASE(f->ch, &v),
                        LEASH_RECV_CASE(leash_ctx_done(f->ctx), (char *)NULL)};
    cs[1].size = 0;
    leash_select(cs, 2);
    atomic_fetch_add(&fx_done, 1);
}

/* Done channel: the losers give up when it is closed. */
typedef struct {
    leash_chan *ch, *done;
    int delay_ms;
} fx_darg;
static fx_darg fxd[3];
static NOINLINE void fx_send_done(void *a) {
    fx_darg *f = a;
    leash_sleep(f->delay_ms * MS);
    int v = 1;
    leash_case cs[2] = {LEASH_SEND_CASE(f->ch, &v), LEASH_RECV_CASE(f->done, (char *)NULL)};
    cs[1].size = 0;
    leash_select(cs, 2);
    atomic_fetch_add(&fx_done, 1);
}

extern _Atomic int64_t orphans_total;

static int fx_main(void *a) {
    int which = (int)(intptr_t)a;
    int64_t before = atomic_load(&orphans_total);
    for (int round = 0; round < 3; round++) {
        int v;
        if (which == 0) {
            leash_chan *ch = leash_chan_make(sizeof(int), 3);
            for (int i = 0; i < 3; i++)
                leash_go(fx_send, ch, ch);
            CU_CHECK_EQ(leash_recv(ch, &v), 0);
            leash_release(ch);
        } else if (which == 1) {
            leash_chan *ch = leash_chan_make(sizeof(int), 0);
            leash_ctx *ctx = leash_ctx_with_cancel(leash_ctx_background());
            for (int i = 0; i < 3; i++) {
                fxa[i] = (fx_arg){ch, ctx, i * 10};
                leash_go(fx_send_ctx, &fxa[i], ch, ctx);
            }
            CU_CHECK_EQ(leash_recv(ch, &v), 0);
            leash_ctx_cancel(ctx);
            leash_release(ctx);
            leash_release(ch);
        } else {
            leash_chan *ch = leash_chan_make(sizeof(int), 0);
            leash_chan *done = leash_chan_make(0, 0);
            for (int i = 0; i < 3; i++) {
                fxd[i] = (fx_darg){ch, done, i * 10};
                leash_go(fx_send_done, &fxd[i], ch, done);
            }
            CU_CHECK_EQ(leash_recv(ch, &v), 0);
            leash_close(done);
            leash_release(done);
            leash_release(ch);
        }
    }
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&fx_done) == 9, 10000));
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 10000));
    CU_CHECK_EQ(leaked(NULL), 0);
    CU_CHECK_EQ(atomic_load(&orphans_total), before);
    leash_leak_opts o = {.timeout_ns = 100 * MS, .quiet = 1};
    CU_CHECK_EQ(leash_leak_verify(NULL, &o), 0);
    return 0;
}

Test(fixed, buffered_channel_proves_nothing, .timeout = 30) {
    setup();
    cr_assert_eq(leash_run(fx_main, (void *)0), 0);
    CU_ASSERT_CLEAN();
}
Test(fixed, context_cancellation_proves_nothing, .timeout = 30) {
    setup();
    cr_assert_eq(leash_run(fx_main, (void *)1), 0);
    CU_ASSERT_CLEAN();
}
Test(fixed, done_channel_proves_nothing, .timeout = 30) {
    setup();
    cr_assert_eq(leash_run(fx_main, (void *)2), 0);
    CU_ASSERT_CLEAN();
}

/* ------------------------------------------------- LEASH_ORPHANS */

static char *run_orphans(const char *policy, int *st) {
    char env1[64];
    snprintf(env1, sizeof env1, "LEASH_ORPHANS=%s", policy);
    const char *env[] = {env1, "LEASH_PROCS=2", NULL};
    char *out = NULL;
    bool to = false;
    *st = cu_run_prog("diag_orphans", NULL, env, &out, 30, &to);
    cr_assert(!to, "LEASH_ORPHANS=%s timed out:\n%s", policy, out);
    return out;
}

static char *line_value(const char *out, const char *key) {
    const char *p = strstr(out, key);
    if (!p)
        return NULL;
    p += strlen(key);
    return strndup(p, strcspn(p, "\n"));
}

Test(orphans_env, record_is_quiet, .timeout = 60) {
    int st;
    char *out = run_orphans("record", &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%#x\n%s", st, out);
    cr_expect(strstr(out, "leaked 2\n"), "%s", out);
    cr_expect(!strstr(out, "leash:"), "record printed a report:\n%s", out);
    free(out);
}

Test(orphans_env, report_names_the_release, .timeout = 60) {
    int st;
    char *out = run_orphans("report", &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%#x\n%s", st, out);
    char *site = line_value(out, "release-site=");
    char *by = line_value(out, "releaser=");
    cr_assert(site && by, "%s", out);
    cr_expect(du_match(out, "\nleash: orphaned channel chan#[0-9]+ \\(made at [^)]*diag_orphans\\.c:[0-9]+\\): "
                            "2 goroutine\\(s\\) blocked on it forever\n"),
              "%s", out);
    char want[600];
    snprintf(want, sizeof want, "    orphaned by goroutine %s releasing it in run at %s\n",
             by, site);
    cr_expect(strstr(out, want), "want '%s' in:\n%s", want, out);
    cr_expect_eq(du_count(out, "LEAKED (orphaned"), 2, "%s", out);
    cr_expect(strstr(out, "done\n"), "%s", out);
    free(site);
    free(by);
    free(out);
}

Test(orphans_env, wake_returns_eorphaned, .timeout = 60) {
    int st;
    char *out = run_orphans("wake", &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%#x\n%s", st, out);
    cr_expect_eq(du_count(out, ": EORPHANED\n"), 2, "%s", out);
    cr_expect(strstr(out, "woken 2\n"), "%s", out);
    free(out);
}

Test(orphans_env, abort_dumps_and_aborts, .timeout = 60) {
    int st;
    char *out = run_orphans("abort", &st);
    cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
              "status %#x (want SIGABRT):\n%s", st, out);
    cr_expect(!strstr(out, "not aborted"), "%s", out);
    cr_expect(strstr(out, "leash: orphaned channel chan#"), "%s", out);
    cr_expect(du_match(out, "\ngoroutine [0-9]+ \\[chan send\\]:\nsender\\(\\.\\.\\.\\)\n"),
              "no Go-format dump:\n%s", out);
    free(out);
}

/* ============================================================ deadlock */

static char *run_deadlock(const char *mode, const char *extra_env, int timeout_s,
                          int *st, bool *to) {
    const char *env[] = {"LEASH_PROCS=2", extra_env, NULL};
    const char *args[] = {mode, NULL};
    char *out = NULL;
    *st = cu_run_prog("diag_deadlock", args, env, &out, timeout_s, to);
    return out;
}

static void expect_deadlock(const char *mode, const char *first_reason) {
    int st;
    bool to;
    char *out = run_deadlock(mode, NULL, 30, &st, &to);
    cr_expect(!to, "%s: not detected (killed after 30 s):\n%s", mode, out);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: status %#x:\n%s",
              mode, st, out);
    cr_expect(!strncmp(out, "fatal error: all goroutines are asleep - deadlock!\n\n", 52),
              "%s: no Go message first:\n%s", mode, out);
    char want[128];
    snprintf(want, sizeof want, "\ngoroutine 1 [%s]:\nrun(...)\n", first_reason);
    cr_expect(strstr(out, want), "%s: want '%s' in:\n%s", mode, want + 1, out);
    cr_expect(!strstr(out, "ok "), "%s", out);
    free(out);
}

static void expect_no_deadlock(const char *mode) {
    int st;
    bool to;
    char *out = run_deadlock(mode, NULL, 30, &st, &to);
    char want[64];
    snprintf(want, sizeof want, "ok %s\n", mode);
    cr_expect(!to && WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, want),
              "%s: status %#x%s:\n%s", mode, st, to ? " (killed)" : "", out);
    cr_expect(!strstr(out, "fatal error"), "%s: false deadlock:\n%s", mode, out);
    free(out);
}

Test(deadlock, main_on_a_nil_channel, .timeout = 60) {
    expect_deadlock("nilchan", "chan receive (nil chan)");
}
Test(deadlock, main_waits_for_a_sender_that_never_comes, .timeout = 60) {
    expect_deadlock("norecv", "chan receive");
}
Test(deadlock, mutexes_in_opposite_orders, .timeout = 60) {
    expect_deadlock("mutex", "sync.Mutex.Lock");
}
Test(deadlock, plain_thread_parked_in_leash_cannot_wake_anyone,
     .timeout = 60) {
    expect_deadlock("thread-parked", "chan receive");
}
Test(deadlock, not_while_a_timer_can_wake_someone, .timeout = 60) {
    expect_no_deadlock("timer");
}
Test(deadlock, a_ticker_nobody_reads_does_not_hide_it, .timeout = 60) {
    expect_deadlock("ticker", "chan receive");
}
Test(deadlock, a_pending_after_nobody_reads_does_not_hide_it, .timeout = 60) {
    expect_deadlock("after", "chan receive");
}
Test(deadlock, a_deadline_nobody_waits_for_does_not_hide_it, .timeout = 60) {
    expect_deadlock("ctxtimeout", "chan receive");
}
Test(deadlock, the_debug_endpoint_does_not_hide_it, .timeout = 60) {
    expect_deadlock("debug", "chan receive");
}
Test(deadlock, not_while_a_ticker_wakes_a_reader, .timeout = 60) {
    expect_no_deadlock("tickerwait");
}
Test(deadlock, not_while_an_after_wakes_a_reader, .timeout = 60) {
    expect_no_deadlock("afterwait");
}
Test(deadlock, not_while_a_deadline_closes_a_done_channel_waited_on,
     .timeout = 60) {
    expect_no_deadlock("ctxwait");
}
Test(deadlock, not_while_io_with_a_deadline_can_wake_someone,
     .timeout = 60) {
    expect_no_deadlock("iodeadline");
}
Test(deadlock, not_while_a_blocking_call_runs, .timeout = 60) {
    expect_no_deadlock("blocking");
}
Test(deadlock, not_while_a_plain_thread_can_send, .timeout = 60) {
    expect_no_deadlock("thread");
}
Test(deadlock, off_with_leash_deadlock_0, .timeout = 60) {
    int st;
    bool to;
    char *out = run_deadlock("nilchan", "LEASH_DEADLOCK=0", 3, &st, &to);
    cr_expect(to, "LEASH_DEADLOCK=0: the program ended (status %#x):\n%s", st,
              out);
    cr_expect(!strstr(out, "fatal error"), "%s", out);
    free(out);
}

/* ==================================================== wait-for cycles */

static leash_mutex cy_a = LEASH_MUTEX_INIT, cy_b = LEASH_MUTEX_INIT;
static leash_rwmutex cy_rw = LEASH_RWMUTEX_INIT;
static leash_chan *cy_step;
static int cy_kind; /* 0 mutexes, 1 rwmutex write-held, 2 rwmutex read-held */

static void step_sync(void) {
    /* Both have taken their first lock before either takes the second. */
    int v = 0;
    leash_case cs[2] = {LEASH_SEND_CASE(cy_step, &v), LEASH_RECV_CASE(cy_step, &v)};
    leash_select(cs, 2);
}

static NOINLINE void cy_first(void *a) {
    (void)a;
    if (cy_kind == 0)
        leash_mutex_lock(&cy_a);
    else if (cy_kind == 1)
        leash_rwmutex_lock(&cy_rw);
    else
        leash_rwmutex_rlock(&cy_rw);
    step_sync();
    leash_mutex_lock(&cy_b);
}
static NOINLINE void cy_second(void *a) {
    (void)a;
    leash_mutex_lock(&cy_b);
    step_sync();
    if (cy_kind == 0)
        leash_mutex_lock(&cy_a);
    else if (cy_kind == 1)
        leash_rwmutex_rlock(&cy_rw);
    else
        leash_rwmutex_lock(&cy_rw);
}

static void check_cycle(int kind, const char *second_state) {
    setup();
    cy_kind = kind;
    cy_step = leash_chan_make(sizeof(int), 0);
    int64_t a = leash_go(cy_first, NULL);
    int64_t b = leash_go(cy_second, NULL);
    cr_assert(du_wait_state(a, "waiting:sync.Mutex.Lock", 10000));
    cr_assert(du_wait_state(b, second_state, 10000));
    char *d = du_dump(LEASH_DUMP_LEASH);
    const char *lock2 = kind == 0 ? "mutex" : "rwmutex";
    char re[512];
    snprintf(re, sizeof re,
             "\n    wait-for cycle: goroutine %lld -> mutex 0x[0-9a-f]+ -> goroutine %lld -> %s 0x[0-9a-f]+ -> goroutine %lld\n",
             (long long)a, (long long)b, lock2, (long long)a);
    char *ba = du_block(d, a), *bb = du_block(d, b);
    cr_expect(ba && du_match(ba, re), "goroutine %lld: want %s in:\n%s",
              (long long)a, re, ba ? ba : d);
    snprintf(re, sizeof re,
             "\n    wait-for cycle: goroutine %lld -> %s 0x[0-9a-f]+ -> goroutine %lld -> mutex 0x[0-9a-f]+ -> goroutine %lld\n",
             (long long)b, lock2, (long long)a, (long long)b);
    cr_expect(bb && du_match(bb, re), "goroutine %lld: want %s in:\n%s",
              (long long)b, re, bb ? bb : d);
    cr_expect(ba && strstr(ba, "LEAKED (deadlocked: a wait-for cycle)"), "%s", ba);
    free(ba);
    free(bb);
    free(d);
    char *text;
    cr_expect_eq(leaked(&text), 2, "leash_leak_dump:\n%s", text);
    cr_expect(du_has_block(text, a) && du_has_block(text, b), "%s", text);
    free(text);
    d = du_dump(LEASH_DUMP_JSON);
    dj *doc = dj_parse(d, NULL, NULL);
    cr_expect_str_eq(dj_str(dj_get(dj_coroutine(doc, a), "leak")), "deadlock");
    cr_expect_str_eq(dj_str(dj_get(dj_coroutine(doc, b), "leak")), "deadlock");
    dj_free(doc);
    free(d);
}

Test(cycles, two_mutexes, .timeout = 30) {
    check_cycle(0, "waiting:sync.Mutex.Lock");
}
Test(cycles, rwmutex_held_for_writing, .timeout = 30) {
    check_cycle(1, "waiting:sync.RWMutex.RLock");
}
Test(cycles, rwmutex_held_for_reading, .timeout = 30) {
    check_cycle(2, "waiting:sync.RWMutex.Lock");
}

/* Not a cycle: the holder waits on a channel, not on the waiter. */
static leash_mutex nc_mu = LEASH_MUTEX_INIT;
static leash_chan *nc_ch;
static NOINLINE void nc_holder(void *a) {
    (void)a;
    int v;
    leash_mutex_lock(&nc_mu);
    leash_recv(nc_ch, &v);
    leash_mutex_unlock(&nc_mu);
}
static NOINLINE void nc_waiter(void *a) {
    (void)a;
    leash_mutex_lock(&nc_mu);
    leash_mutex_unlock(&nc_mu);
}
Test(cycles, a_plain_wait_is_not_a_cycle, .timeout = 30) {
    setup();
    nc_ch = leash_chan_make(sizeof(int), 0);
    int64_t h = leash_go(nc_holder, NULL);
    cr_assert(du_wait_state(h, "waiting:chan receive", 10000));
    int64_t w = leash_go(nc_waiter, NULL);
    cr_assert(du_wait_state(w, "waiting:sync.Mutex.Lock", 10000));
    char *d = du_dump(LEASH_DUMP_LEASH);
    cr_expect(!strstr(d, "wait-for cycle"), "%s", d);
    free(d);
    cr_expect_eq(leaked(NULL), 0);
    int v = 1;
    leash_send(nc_ch, &v);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
}

/* ============================================================ suspects */

static atomic_int hog_stop;
static NOINLINE void hog(void *a) {
    (void)a;
    volatile unsigned n = 0;
    while (!atomic_load_explicit(&hog_stop, memory_order_relaxed))
        n = n + 1u;
}

Test(suspects, running_without_yielding, .timeout = 60) {
    setup();
    setenv("LEASH_HOG_MS", "100", 1);
    int64_t id = leash_go(hog, NULL);
    cr_assert(du_wait_state(id, "running", 10000));
    char *d = NULL;
    int64_t until = leash_now() + 10000 * MS;
    for (;;) {
        d = du_dump(LEASH_DUMP_LEASH);
        if (strstr(d, "without yielding") || leash_now() > until)
            break;
        free(d);
        leash_sleep(20 * MS);
    }
    char *b = du_block(d, id);
    cr_expect(b && du_match(b, "^goroutine [0-9]+ \\[running, [0-9]+\\.[0-9]{3}s without yielding\\]: "
                               "SUSPECT \\(runs without yielding \\(endless loop\\?\\)\\)\n"),
              "%s", b ? b : d);
    cr_expect(b && strstr(b, "\n  hog\n\t"), "the hog's stack:\n%s", b);
    free(b);
    free(d);
    d = du_dump(LEASH_DUMP_JSON);
    dj *doc = dj_parse(d, NULL, NULL);
    cr_expect_str_eq(dj_str(dj_get(dj_coroutine(doc, id), "suspect")), "hog");
    dj_free(doc);
    free(d);
    cr_expect_eq(leaked(NULL), 0, "a suspect is not a proof");
    atomic_store(&hog_stop, 1);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
}

static int io_fd[2], io_fd2[2];
static NOINLINE void io_nodeadline(void *a) {
    (void)a;
    char c;
    leash_read(io_fd[0], &c, 1, -1);
}
static NOINLINE void io_deadline(void *a) {
    (void)a;
    char c;
    leash_read(io_fd2[0], &c, 1, leash_now() + 60000 * MS);
}

Test(suspects, io_without_a_deadline, .timeout = 30) {
    setup();
    cr_assert(pipe(io_fd) == 0 && pipe(io_fd2) == 0);
    int64_t a = leash_go(io_nodeadline, NULL);
    int64_t b = leash_go(io_deadline, NULL);
    cr_assert(du_wait_state(a, "waiting:IO wait", 10000));
    cr_assert(du_wait_state(b, "waiting:IO wait", 10000));
    char *d = du_dump(LEASH_DUMP_LEASH);
    char *ba = du_block(d, a), *bb = du_block(d, b);
    cr_expect(ba && strstr(ba, "SUSPECT (waits for I/O with no deadline)"), "%s", ba);
    cr_expect(ba && strstr(ba, "waiting for I/O with no deadline"), "%s", ba);
    cr_expect(bb && !strstr(bb, "SUSPECT"), "a deadline was set:\n%s", bb);
    cr_expect(bb && strstr(bb, "waiting for I/O with a deadline"), "%s", bb);
    free(ba);
    free(bb);
    free(d);
    cr_expect_eq(leaked(NULL), 0);
    cr_assert(write(io_fd[1], "x", 1) == 1 && write(io_fd2[1], "x", 1) == 1);
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000));
}

/* A coroutine holding a context that gets cancelled while it waits on
 * something that does not watch it; the fixed one selects on Done. */
static leash_chan *cb_ch;
static leash_ctx *cb_ctx;
static NOINLINE void cb_blind(void *a) {
    (void)a;
    int v;
    leash_recv(cb_ch, &v);
}
static NOINLINE void cb_watching(void *a) {
    (void)a;
    int v;
    leash_case cs[2] = {LEASH_RECV_CASE(cb_ch, &v),
                        LEASH_RECV_CASE(leash_ctx_done(cb_ctx), (char *)NULL)};
    cs[1].size = 0;
    leash_select(cs, 2);
}

Test(suspects, canceled_but_still_blocked, .timeout = 30) {
    setup();
    cb_ch = leash_chan_make(sizeof(int), 0);
    cb_ctx = leash_ctx_with_cancel(leash_ctx_background());
    int64_t a = leash_go(cb_blind, NULL, cb_ctx);
    int64_t b = leash_go(cb_watching, NULL, cb_ctx);
    cr_assert(du_wait_state(a, "waiting:chan receive", 10000));
    cr_assert(du_wait_state(b, "waiting:select", 10000));
    char *d = du_dump(LEASH_DUMP_LEASH);
    cr_expect(!strstr(d, "SUSPECT"), "before the cancel:\n%s", d);
    free(d);
    leash_ctx_cancel(cb_ctx);
    cr_assert(CU_WAIT_UNTIL(strcmp(du_state(b, (char[64]){0}, 64), "") == 0, 10000),
              "the watching coroutine did not return");
    d = du_dump(LEASH_DUMP_LEASH);
    char *ba = du_block(d, a);
    cr_expect(ba && strstr(ba, "SUSPECT (its context is canceled but it still waits on something else)"),
              "%s", ba ? ba : d);
    cr_expect(ba && du_match(ba, "\n    a context it holds was canceled [0-9]+\\.[0-9]{3}s ago\n"),
              "%s", ba);
    free(ba);
    free(d);
    d = du_dump(LEASH_DUMP_JSON);
    dj *doc = dj_parse(d, NULL, NULL);
    cr_expect_str_eq(dj_str(dj_get(dj_coroutine(doc, a), "suspect")), "canceled_blocked");
    dj_free(doc);
    free(d);
    leash_close(cb_ch);
    leash_release(cb_ctx);
}

/* A loop that leaks a coroutine every 100 ms: after ~5 s of samples (one
 * a second) its spawn site "keeps growing"; a site that started ten once
 * does not. */
static int grow_line, flat_line;
static NOINLINE void grow_leak(void *a) {
    (void)a;
    int v;
    leash_recv_n(NULL, &v, sizeof v);
}
Test(suspects, spawn_site_that_keeps_growing, .timeout = 60) {
    setup();
    for (int i = 0; i < 10; i++)
        (flat_line = __LINE__, leash_go(grow_leak, NULL));
    char want_grow[600], want_flat[600];
    bool seen = false;
    int64_t t0 = leash_now();
    char *d = NULL;
    for (int i = 0; i < 120 && !seen; i++) {
        (grow_line = __LINE__, leash_go(grow_leak, NULL));
        leash_sleep(100 * MS);
        if (i >= 40 && i % 5 == 0) {
            snprintf(want_grow, sizeof want_grow,
                     "SUSPECT: coroutines spawned at %s:%d keep growing (",
                     __FILE__, grow_line);
            free(d);
            d = du_dump(LEASH_DUMP_LEASH);
            seen = strstr(d, want_grow) != NULL;
        }
    }
    cr_expect(seen, "no growth reported after %.1f s:\n%.2000s",
              cu_ms(t0, leash_now()) / 1000, d ? d : "");
    snprintf(want_flat, sizeof want_flat, "spawned at %s:%d keep growing",
             __FILE__, flat_line);
    cr_expect(d && !strstr(d, want_flat), "a stable site reported growing");
    /* Only in the full dump: not in the leak profile's selection. */
    char *l = du_leak_dump(LEASH_DUMP_LEASH, NULL);
    cr_expect(!strstr(l, "keep growing"), "leak dump shows site suspects");
    free(l);
    free(d);
}

/* ======================================================== LEASH_STRICT */

static void check_strict(const char *mode, const char *panic, int code) {
    const char *args[] = {mode, NULL};
    const char *strict[] = {"LEASH_STRICT=1", "LEASH_PROCS=2", NULL};
    const char *lax[] = {"LEASH_PROCS=2", NULL};
    char *out = NULL;
    bool to = false;
    int st = cu_run_prog("diag_strict", args, lax, &out, 30, &to);
    char rc[32];
    snprintf(rc, sizeof rc, "rc=%d\n", code);
    cr_expect(!to && WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, rc),
              "%s without LEASH_STRICT: want %s, status %#x:\n%s", mode, rc,
              st, out);
    cr_expect(!strstr(out, "panic:"), "%s", out);
    free(out);
    st = cu_run_prog("diag_strict", args, strict, &out, 30, &to);
    cr_expect(!to && WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
              "%s with LEASH_STRICT=1: status %#x (want SIGABRT):\n%s", mode,
              st, out);
    char want[200];
    snprintf(want, sizeof want, "panic: %s\n\n", panic);
    cr_expect(strstr(out, want), "%s: want '%s' in:\n%s", mode, want, out);
    cr_expect(strstr(out, "\ngoroutine 2 [chan receive]:\nbystander(...)\n"),
              "%s: no dump of the other coroutines:\n%s", mode, out);
    cr_expect(du_match(out, "\ngoroutine 1 \\[[^]]+\\]:\nrun\\(\\.\\.\\.\\)\n\t[^ ]*diag_strict\\.c:[0-9]+ "),
              "%s: the culprit's frame:\n%s", mode, out);
    cr_expect(!strstr(out, "rc="), "%s: returned after the panic:\n%s", mode, out);
    free(out);
}

Test(strict, send_on_closed_channel, .timeout = 60) {
    check_strict("send-closed", "send on closed channel", LEASH_ECLOSED);
}
Test(strict, close_of_closed_channel, .timeout = 60) {
    check_strict("close-closed", "close of closed channel", LEASH_ECLOSED);
}
Test(strict, close_of_nil_channel, .timeout = 60) {
    check_strict("close-nil", "close of nil channel", LEASH_EINVAL);
}
Test(strict, negative_waitgroup_counter, .timeout = 60) {
    check_strict("wg-negative", "sync: negative WaitGroup counter", LEASH_EINVAL);
}
Test(strict, unlock_of_unlocked_mutex, .timeout = 60) {
    check_strict("unlock", "sync: unlock of unlocked mutex", LEASH_EINVAL);
}
Test(strict, unlock_of_unlocked_rwmutex, .timeout = 60) {
    check_strict("rw-unlock", "sync: Unlock of unlocked RWMutex", LEASH_EINVAL);
}
Test(strict, release_without_a_reference, .timeout = 60) {
    check_strict("double-release",
                 "leash_release: the caller holds no reference to this "
                 "object (released twice?)", LEASH_EINVAL);
}
Test(strict, runlock_of_unlocked_rwmutex, .timeout = 60) {
    check_strict("rw-runlock", "sync: RUnlock of unlocked RWMutex", LEASH_EINVAL);
}
