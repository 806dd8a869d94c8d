#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/debug/valgrind.sh VALGRIND SUPP PROG... -- test_valgrind: each
# PROG runs under memcheck (leak check on, leash's suppressions) and must
# give zero errors: coroutine stacks are registered (src/stack.c), and
# what remains is in tools/valgrind/leash.supp. Without the registration
# the buffered-channel example alone gives ~2,800 errors.
set -u
VG=$1 SUPP=$2
shift 2
st=0
for prog in "$@"; do
    out=$(LEASH_LEAKCHECK=0 timeout 120 "$VG" --error-exitcode=99 \
          --leak-check=full --suppressions="$SUPP" "$prog" 2>&1)
    rc=$?
    summary=$(printf '%s\n' "$out" | grep 'ERROR SUMMARY' | tail -1)
    echo "$(basename "$prog"): rc=$rc; $summary"
    if [ "$rc" -eq 99 ] || ! printf '%s\n' "$summary" | grep -q ': 0 errors'; then
        printf '%s\n' "$out" | tail -80
        st=1
    fi
done
exit $st
