/* SPDX-License-Identifier: MIT */
/* Must compile (CMakeLists.txt: compile_fail_go1_ok): the control for
 * go1_wrong_type.c, so that test fails for the type and nothing else. */
#include "leash.h"

static void child(void *arg) { (void)arg; }

int main(void) {
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    leash_ctx *x = leash_ctx_with_cancel(leash_ctx_background());
    leash_conn *k = 0;
    return (int)leash_go2(child, 0, c, x) < 0 || leash_go1(child, 0, k) < 0;
}
