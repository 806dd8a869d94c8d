#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/debug/gdb.sh GDB PROG SCRIPT SRC -- test_gdb: tools/gdb/leash-gdb.py on
# a live process and on a core file made from it (gdb's generate-core-file:
# kernel.core_pattern need not be writable). PROG is testprog_gdb_parked:
# four coroutines parked in known functions, then gdb_parked_stop().
# Exit 77 (skipped) when gdb cannot trace a child here.
set -u
GDB=$1 PROG=$2 SCRIPT=$3 SRC=$4 # SRC: tests/progs/gdb_parked.c
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; echo "--- live:"; cat "$tmp/live"; echo "--- core:"; cat "$tmp/core.out"; exit 1; }

timeout 60 "$GDB" -nx -batch -ex 'set debuginfod enabled off' \
    -ex 'break gdb_parked_stop' -ex run \
    -ex "source $SCRIPT" -ex 'info coroutines' \
    -ex 'coroutine 2 bt' -ex 'coroutine 5 bt' -ex 'coroutine 1 bt' \
    -ex "generate-core-file $tmp/core" -ex kill "$PROG" >"$tmp/live" 2>&1
if grep -q "ptrace: Operation not permitted\|Could not trace\|not in executable format" "$tmp/live"; then
    echo "SKIP: gdb cannot trace here"; cat "$tmp/live"; exit 77
fi
[ -s "$tmp/core" ] || { : >"$tmp/core.out"; fail "no core file"; }
timeout 60 "$GDB" -nx -batch -ex 'set debuginfod enabled off' \
    -ex "source $SCRIPT" -ex 'info coroutines' \
    -ex 'coroutine 3 bt' -ex 'coroutine 4 bt' "$PROG" "$tmp/core" >"$tmp/core.out" 2>&1

for out in "$tmp/live" "$tmp/core.out"; do
    # id, state, wait reason, wait object, spawn site, name
    grep -Eq '^ +2 +waiting +chan send +chan#1\(.*gdb_parked\.c:[0-9]+\) +.*gdb_parked\.c:[0-9]+ +sender$' "$out" || fail "coroutine 2 row ($out)"
    grep -Eq '^ +3 +waiting +chan receive +chan#2\(.*\) +.*gdb_parked\.c:[0-9]+ +receiver$' "$out" || fail "coroutine 3 row ($out)"
    grep -Eq '^ +4 +waiting +sleep +- +.*gdb_parked\.c:[0-9]+ +sleeper$' "$out" || fail "coroutine 4 row ($out)"
    grep -Eq '^ +5 +waiting +sync\.Mutex\.Lock +0x[0-9a-f]+ +.*gdb_parked\.c:[0-9]+ +locker$' "$out" || fail "coroutine 5 row ($out)"
    # main's spawn site: the leash_run call in main()
    line=$(grep -n 'return leash_run' "$SRC" | cut -d: -f1)
    grep -Eq "^ +1 +running +- +- +.*gdb_parked\.c:$line" "$out" || fail "coroutine 1 row ($out)"
    grep -q '^5 coroutine(s)$' "$out" || fail "count ($out)"
done
# Backtraces: the leash call that blocked, then the coroutine's function.
grep -Eq '^#[0-9]+ +0x[0-9a-f]+ in chan_wait .*leash_send_n.* at .*chan\.c:[0-9]+' "$tmp/live" || fail "bt 2: chan_wait in leash_send_n"
grep -Eq '^#[0-9]+ +0x[0-9a-f]+ in park_sender at .*gdb_parked\.c:[0-9]+' "$tmp/live" || fail "bt 2: park_sender"
grep -Eq '^#[0-9]+ +0x[0-9a-f]+ in leash_mutex_lock at .*sync\.c:[0-9]+' "$tmp/live" || fail "bt 5: leash_mutex_lock"
grep -Eq '^#[0-9]+ +0x[0-9a-f]+ in park_locker at ' "$tmp/live" || fail "bt 5: park_locker"
grep -q 'coroutine 1 is running' "$tmp/live" || fail "bt 1: running"
grep -Eq '^#[0-9]+ +0x[0-9a-f]+ in park_receiver at ' "$tmp/core.out" || fail "core bt 3: park_receiver"
grep -Eq '^#[0-9]+ +0x[0-9a-f]+ in leash_sleep at .*timer\.c:[0-9]+' "$tmp/core.out" || fail "core bt 4: leash_sleep"
grep -Eq '^#[0-9]+ +0x[0-9a-f]+ in park_sleeper at ' "$tmp/core.out" || fail "core bt 4: park_sleeper"
echo "ok: info coroutines and coroutine N bt, live and on a core file"
