/* SPDX-License-Identifier: MIT */
/*
 * test_falseproof.c — legal borrowing is never proven leaked (docs/DESIGN-NOTES.md,
 * "Leak rules": soundness comes first). Each pattern of
 * tests/progs/falseproof.c runs 200 times at LEASH_PROCS=1, 2 and 4 under
 * LEASH_ORPHANS=wake, where a wrong proof would break the program
 * (LEASH_EORPHANED for the waiter, LEASH_EINVAL for the borrower): every
 * operation must succeed, every value arrive, nothing be proven.
 *
 * And the rule that keeps them sound (src/diag/borrowers.c) still proves:
 * issue 14's scenario once the lent worker is gone, and a proof completed
 * by the last other holder returning.
 *
 * LEASH_TEST_TIMEOUT 120
 */
#define _GNU_SOURCE 1
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core_util.h"
#include "diag_util.h"

#define MS CU_MS
#define NOINLINE __attribute__((noinline))

static void run_pattern(const char *pattern) {
    static const char *const procs[] = {"LEASH_PROCS=1", "LEASH_PROCS=2",
                                        "LEASH_PROCS=4"};
    int n = cu_sanitized() ? 60 : 200;
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    for (int i = 0; i < 3; i++) {
        const char *args[] = {pattern, count, NULL};
        const char *env[] = {"LEASH_ORPHANS=wake", procs[i], NULL};
        char *out = NULL;
        bool to = false;
        int st = cu_run_prog("falseproof", args, env, &out, 60, &to);
        char want[64];
        snprintf(want, sizeof want, "ok %s %d\n", pattern, n);
        cr_expect(!to && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
                      strstr(out, want),
                  "%s at %s: status %#x%s:\n%s", pattern, procs[i], st,
                  to ? " (killed)" : "", out ? out : "");
        free(out);
    }
}

/* Issue 14's false proof: the worker got the channel through its
 * argument and had not used it when the other holder released. */
Test(falseproof, late_first_use_through_an_argument, .timeout = 60) {
    run_pattern("arg");
}
Test(falseproof, through_a_global_by_an_unrelated_coroutine, .timeout = 60) {
    run_pattern("global");
}
Test(falseproof, reply_channel_inside_a_queued_request, .timeout = 60) {
    run_pattern("reply");
}
Test(falseproof, table_of_channels_found_later, .timeout = 60) {
    run_pattern("table");
}
Test(falseproof, lender_releases_while_its_borrower_sleeps, .timeout = 60) {
    run_pattern("lender");
}
Test(falseproof, request_served_by_one_started_after_the_release,
     .timeout = 60) {
    run_pattern("late-reply");
}
Test(falseproof, releaser_given_the_channel_back_in_a_message,
     .timeout = 60) {
    run_pattern("back");
}
/* The park of a lone holder (nothing released) is not a proof while a
 * finder of its global may still act. */
Test(falseproof, lone_holder_found_through_a_global_later, .timeout = 60) {
    run_pattern("own");
}

/* ===================================================== still proven */

static void setup(void) { setenv("LEASH_PROCS", "2", 1); }

static int leaked(char **text) {
    int rc = -1;
    char *t = du_leak_dump(LEASH_DUMP_LEASH, &rc);
    if (text)
        *text = t;
    else
        free(t);
    return rc;
}

/* Issue 14: holder A lends ch to a worker through its argument (no
 * reference) and waits on it; the other holder releases before the worker
 * has touched it. The worker, alive and able to run, keeps the proof off;
 * once it is gone and A blocks again, the proof is made. */
typedef struct {
    leash_chan *ch, *gate;
} lent_t;
static lent_t lent;
static atomic_int lent_got;
static int64_t lent_worker;
static NOINLINE void lent_work(void *a) {
    lent_t *l = a;
    int v;
    leash_recv(l->gate, &v); /* blocked on a channel the test can send on */
    leash_send(l->ch, &v);
}
static NOINLINE void lent_holder(void *a) {
    (void)a;
    lent_worker = leash_go(lent_work, &lent);
    int v;
    if (leash_recv(lent.ch, &v) == 0)
        atomic_fetch_add(&lent_got, 1);
    leash_recv(lent.gate, &v); /* until told the worker is gone */
    leash_recv(lent.ch, &v);   /* nobody else can send now */
}

Test(still_proven, a_lent_worker_that_has_not_used_it_keeps_the_proof_off,
     .timeout = 30) {
    setup();
    lent.ch = leash_chan_make(sizeof(int), 0);
    lent.gate = leash_chan_make(sizeof(int), 0);
    int64_t h = leash_go(lent_holder, NULL, lent.ch);
    cr_assert(du_wait_state(h, "waiting:chan receive", 10000));
    cr_assert(du_wait_state(lent_worker, "waiting:chan receive", 10000));
    leash_release(lent.ch); /* h holds the only reference; the worker lent */
    leash_sleep(50 * MS);
    char *text;
    cr_expect_eq(leaked(&text), 0, "proven while a worker the holder lent "
                 "the channel to can still use it:\n%s", text);
    free(text);
    int v = 1;
    cr_assert_eq(leash_send(lent.gate, &v), 0);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&lent_got) == 1, 10000));
    cr_assert(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 10000));
    cr_assert_eq(leash_send(lent.gate, &v), 0); /* h blocks on ch again */
    cr_assert(du_wait_state(h, "waiting:chan receive", 10000));
    cr_expect(CU_WAIT_UNTIL(leaked(NULL) == 1, 2000),
              "the worker is gone: the holder's wait is not proven");
    leash_release(lent.gate);
}

/* The proof completed by a holder's return itself: the sender is blocked
 * already; the other holder, blocked elsewhere (it could still send),
 * returns. */
static leash_chan *ex_gate;
static NOINLINE void ex_holder(void *a) {
    (void)a;
    leash_recv_n(ex_gate, NULL, 0);
}
static NOINLINE void ex_sender(void *a) {
    int v = 1;
    leash_send((leash_chan *)a, &v);
}
Test(still_proven, by_the_return_of_the_last_other_holder, .timeout = 30) {
    setup();
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    ex_gate = leash_chan_make(0, 0);
    int64_t h = leash_go(ex_holder, NULL, ch);
    int64_t s = leash_go(ex_sender, ch, ch);
    leash_release(ch);
    cr_assert(du_wait_state(s, "waiting:chan send", 10000));
    cr_assert(du_wait_state(h, "waiting:chan receive", 10000));
    cr_expect_eq(leaked(NULL), 0, "proven while another holder can run");
    cr_assert_eq(leash_send_n(ex_gate, NULL, 0), 0);
    cr_expect(CU_WAIT_UNTIL(leaked(NULL) == 1, 2000), "not proven when the "
              "last other holder returned");
    leash_release(ex_gate);
}
