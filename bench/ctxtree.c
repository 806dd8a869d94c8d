/* SPDX-License-Identifier: MIT */
/* ctxtree: a cancel tree under one root, depth 3 (root -> 10 -> 100 ->
 * 10,000 contexts: CTXT_TOTAL = 10,110 below the root), built with
 * leash_ctx_with_cancel, then the root is cancelled, every context is
 * checked to report LEASH_ECANCELED, and all are released. N rounds (one
 * untimed warm-up round first); ns per context. Go: the same with
 * context.WithCancel, calling each cancel func where leash releases. */
#include "bench_util.h"

#define CTXT_A 10
#define CTXT_B 10
#define CTXT_C 100
#define CTXT_TOTAL (CTXT_A + CTXT_A * CTXT_B + CTXT_A * CTXT_B * CTXT_C)

static int64_t n;
static leash_ctx *all[CTXT_TOTAL];

static leash_ctx *make(leash_ctx *parent)
{
    leash_ctx *c = leash_ctx_with_cancel(parent);
    if (!c)
        bench_fail("ctxtree: leash_ctx_with_cancel failed");
    return c;
}

static void round_once(void)
{
    leash_ctx *root = make(leash_ctx_background());
    int k = 0;
    for (int a = 0; a < CTXT_A; a++) {
        leash_ctx *ca = all[k++] = make(root);
        for (int b = 0; b < CTXT_B; b++) {
            leash_ctx *cb = all[k++] = make(ca);
            for (int c = 0; c < CTXT_C; c++)
                all[k++] = make(cb);
        }
    }
    leash_ctx_cancel(root);
    for (int i = 0; i < CTXT_TOTAL; i++)
        if (leash_ctx_err(all[i]) != LEASH_ECANCELED)
            bench_fail("ctxtree: context %d not cancelled", i);
    for (int i = 0; i < CTXT_TOTAL; i++)
        leash_release(all[i]);
    leash_release(root);
}

static int bench_main(void *arg)
{
    (void)arg;
    round_once();
    int64_t t0 = bench_now();
    for (int64_t i = 0; i < n; i++)
        round_once();
    int64_t el = bench_now() - t0;
    bench_per_op("ctxtree", el, n * CTXT_TOTAL);
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 20);
    return leash_run(bench_main, NULL);
}
