/* SPDX-License-Identifier: MIT */
/* Must NOT compile (CMakeLists.txt: compile_fail_go1_wrong_type): a typed
 * spawn takes leash objects only, so a pointer to anything else -- here
 * the int the child was meant to get beside its channel -- is an error,
 * where leash_go's untyped list would take it and fail at run time. */
#include "leash.h"

static void child(void *arg) { (void)arg; }

int main(void) {
    int x = 0;
    return (int)leash_go1(child, 0, &x);
}
