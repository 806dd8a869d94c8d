/*
 * test_falseproof.c — legal borrowing is never proven leaked (DESIGN.md
 * "Leak rules": soundness comes first). Each pattern of
 * tests/progs/falseproof.c runs 200 times at LEASH_PROCS=1, 2 and 4 under
 * LEASH_ORPHANS=wake, where a wrong proof would break the program
 * (LEASH_EORPHANED for the waiter, LEASH_EINVAL for the borrower): every
 * operation must succeed, every value arrive, nothing be proven.
 *
 * LEASH_TEST_TIMEOUT 120
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core_util.h"

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
