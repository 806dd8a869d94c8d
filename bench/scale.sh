#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/scale.sh — multi-core scaling, leash and Go side by side (issue 15).
#
#   bash bench/scale.sh                 (make scale)
#   SCALE_PROCS="1 2 4 8 16" bash bench/scale.sh
#   SCALE_QUICK=1 SCALE_PROCS="1 2" bash bench/scale.sh
#
# Three workloads, each as wide as SCALE_WIDTH (16) at every procs value,
# so that only the procs change from one row to the next:
#   fanout  bench_fanout, BENCH_WORKERS=16: 16 workers, 1,024 CPU-bound
#           hashing tasks; time per task
#   pairs   bench_pingpong, BENCH_PAIRS=16: 16 independent ping-pong pairs
#           on unbuffered channels; time per round trip over all pairs
#   mpmc    bench_buffered, BENCH_MPMC=16: 16 producers and 16 consumers on
#           one int64 channel of cap 128 (every message counted and summed);
#           time per message
# and the same algorithms in Go (bench/go, GOMAXPROCS). Each runs at
# LEASH_PROCS = GOMAXPROCS = each of SCALE_PROCS, SCALE_RUNS times,
# alternating leash and Go; medians. speedup = time/op at 1 proc over
# time/op at P. Goals (leash), issue 15: fanout and pairs >= 0.8 x P (12.8x
# at 16, where Go reaches about 10x and 8.2x); mpmc >= 1.0x, i.e. no slower
# than at 1 proc (Go is about 10x slower at 16). A 2-core VM can only show
# 1 and 2: the goals are for a 16-core machine.
#
# Runtime on a 16-core machine at 1 2 4 8 16: about 3 minutes (a run takes
# a second or two at most); SCALE_QUICK=1 (N / 10, 3 runs) well under one.
# The table goes to stdout and build/bench/SCALE.md; exit 1 if a run
# failed (SCALE_STRICT=1: also if a goal is missed).
#
# It builds bench_fanout, bench_pingpong and bench_buffered with cmake (as
# `make bench` configures build/) and the Go program with the local
# toolchain, downloading nothing. SCALE_NOBUILD=1 uses build/bench_* and
# build/bench/leashbench-go as they are (built elsewhere: the Go program
# is static, the C ones need libdw and zlib).
#
# Environment: SCALE_PROCS (default: the powers of two up to nproc; 1 is
# added if missing, as the base of the speedups), SCALE_RUNS (5; quick 3),
# SCALE_WIDTH (16), SCALE_TIMEOUT (60 s a run), BUILD_DIR (build).
set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUT=$BUILD/bench
GOBIN=$OUT/leashbench-go
RAW=$OUT/scale-raw.txt
DOC=$OUT/SCALE.md
WORKLOADS=(fanout pairs mpmc)
NPROC=$(nproc 2>/dev/null || echo 1)
WIDTH=${SCALE_WIDTH:-16}
TIMEOUT=${SCALE_TIMEOUT:-60}
have() { command -v "$1" >/dev/null 2>&1; }

if [ "${SCALE_QUICK:-0}" = 1 ]; then Q=10 RUNS=${SCALE_RUNS:-3}; else Q=1 RUNS=${SCALE_RUNS:-5}; fi
# workload -> program, the variable that sets its width, N (rounds per
# task, round trips per pair, messages): about a second at 1 proc.
prog() { case $1 in fanout) echo fanout ;; pairs) echo pingpong ;; mpmc) echo buffered ;; esac; }
knob() { case $1 in fanout) echo BENCH_WORKERS ;; pairs) echo BENCH_PAIRS ;; mpmc) echo BENCH_MPMC ;; esac; }
n_for() { case $1 in fanout) echo $((500000 / Q)) ;; pairs) echo $((200000 / Q)) ;; mpmc) echo $((2000000 / Q)) ;; esac; }

if [ -n "${SCALE_PROCS:-}" ]; then
    read -r -a PROCS <<<"$SCALE_PROCS"
else
    PROCS=()
    for ((p = 1; p <= NPROC; p *= 2)); do PROCS+=("$p"); done
fi
[[ " ${PROCS[*]} " == *" 1 "* ]] || PROCS=(1 "${PROCS[@]}")

mkdir -p "$OUT/logs"
# ------------------------------------------------------------------ build
if [ "${SCALE_NOBUILD:-0}" != 1 ]; then
    if have cmake; then
        gen=()
        [ -f "$BUILD/CMakeCache.txt" ] || { have ninja && gen=(-G Ninja); }
        { cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DLEASH_BUILD_BENCH=ON &&
            cmake --build "$BUILD" -j "$NPROC" --target bench_fanout bench_pingpong bench_buffered; } \
            >"$OUT/logs/scale-build.log" 2>&1 ||
            { echo "scale: cmake failed (see $OUT/logs/scale-build.log)" >&2; exit 2; }
    fi
    if have go; then
        # As bench/run.sh: a local toolchain, caches under build/, no network.
        (cd "$ROOT/bench/go" && GOCACHE=$BUILD/go-cache GOPATH=$BUILD/go-path \
            GOTOOLCHAIN=local GOFLAGS='' GOPROXY=off GOSUMDB=off GO111MODULE=on \
            GOWORK=off CGO_ENABLED=0 go build -o "$GOBIN" .) >"$OUT/logs/scale-go.log" 2>&1 ||
            { echo "scale: go build failed (see $OUT/logs/scale-go.log)" >&2; rm -f "$GOBIN"; }
    fi
fi
for w in "${WORKLOADS[@]}"; do
    [ -x "$BUILD/bench_$(prog "$w")" ] || { echo "scale: $BUILD/bench_$(prog "$w") is missing" >&2; exit 2; }
done
[ -x "$GOBIN" ] || echo "scale: no Go program ($GOBIN): Go shows as n/a" >&2

# ------------------------------------------------------------------- runs
# run IMPL W P R: appends "W P IMPL ns/op" (or "fail") to $RAW.
run() {
    local impl=$1 w=$2 p=$3 r=$4 cmd v
    if [ "$impl" = leash ]; then cmd=("$BUILD/bench_$(prog "$w")"); else cmd=("$GOBIN" "$(prog "$w")"); fi
    [ -x "${cmd[0]}" ] || return 0
    v=$(env "$(knob "$w")=$WIDTH" LEASH_PROCS="$p" GOMAXPROCS="$p" timeout -k 5 "$TIMEOUT" \
        "${cmd[@]}" "$(n_for "$w")" 2>"$OUT/logs/scale_${impl}_${w}_p${p}_r$r.err" |
        awk -v m="$w" '$1 == m && $3 == "ns/op" { print $2 }')
    [ -n "$v" ] || { v=fail; echo "scale: $impl $w procs $p run $r failed (see $OUT/logs/)" >&2; }
    echo "$w $p $impl $v" >>"$RAW"
}

: >"$RAW"
rm -f "$OUT"/logs/scale_*.err
START=$(date +%s)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
echo "scale: procs ${PROCS[*]}, width $WIDTH, $RUNS runs each, N: $(for w in "${WORKLOADS[@]}"; do printf '%s=%s ' "$w" "$(n_for "$w")"; done)" >&2
for p in "${PROCS[@]}"; do
    for w in "${WORKLOADS[@]}"; do
        printf 'scale: procs %-3s %-7s' "$p" "$w" >&2
        for ((r = 1; r <= RUNS; r++)); do
            # Who goes first alternates, so that a drift in the machine's
            # load does not always favour the same side.
            if ((r % 2)); then run leash "$w" "$p" "$r"; run go "$w" "$p" "$r"
            else run go "$w" "$p" "$r"; run leash "$w" "$p" "$r"; fi
            printf '.' >&2
        done
        echo >&2
    done
done
ELAPSED=$(($(date +%s) - START))

# ----------------------------------------------------------------- report
# med W P IMPL: median of the successful runs, "*" appended if some failed;
# "fail" if none succeeded, "n/a" if none ran.
med() {
    awk -v k="$1 $2 $3" '$1 " " $2 " " $3 == k { print $4 }' "$RAW" | sort -g |
        awk '$1 == "fail" { f++; next } { a[++n] = $1 }
             END { if (!n) { print (f ? "fail" : "n/a"); exit }
                   m = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
                   printf "%.1f%s\n", m, f ? "*" : "" }'
}
ratio() { awk -v a="${1%\*}" -v b="${2%\*}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "n/a" }'; }

CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
[ -z "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1)" ] || REV="$REV (with uncommitted changes)"
GOV=$( { [ -x "$GOBIN" ] && have go && go version; } | sed 's/^go version //')
missed=0
{
    echo "# Multi-core scaling: leash vs Go"
    echo
    echo "Generated by \`bench/scale.sh\` $(date -u '+%Y-%m-%d %H:%M UTC'): ${CPU:-?}, $NPROC CPUs (nproc), load ${LOAD_START} at the start;"
    echo "leash $REV, Go ${GOV:-n/a}; width $WIDTH, $RUNS runs each (median), ${ELAPSED}s."
    echo "N: $(for w in "${WORKLOADS[@]}"; do printf '%s=%s ' "$w" "$(n_for "$w")"; done)"
    echo "Command: \`SCALE_PROCS=\"${PROCS[*]}\" SCALE_QUICK=${SCALE_QUICK:-0} bash bench/scale.sh\`"
    echo
    echo "| workload | procs | leash ns/op | Go ns/op | leash speedup | Go speedup | goal (leash) | |"
    echo "|---|--:|--:|--:|--:|--:|--:|---|"
    for w in "${WORKLOADS[@]}"; do
        l1=$(med "$w" 1 leash) g1=$(med "$w" 1 go)
        for p in "${PROCS[@]}"; do
            l=$(med "$w" "$p" leash) g=$(med "$w" "$p" go)
            ls=$(ratio "$l1" "$l") gs=$(ratio "$g1" "$g") goal="—" ok=""
            if [ "$p" != 1 ]; then
                if [ "$w" = mpmc ]; then goal=1.00; else goal=$(awk -v p="$p" 'BEGIN { printf "%.2f", 0.8 * p }'); fi
                ok=$(awk -v s="${ls%x}" -v g="$goal" 'BEGIN { print (s != "n/a" && s + 0 >= g + 0) ? "ok" : "MISS" }')
                [ "$ok" = ok ] || missed=1
                goal="≥${goal}x"
            fi
            echo "| $w | $p | $l | $g | $ls | $gs | $goal | $ok |"
        done
    done
    echo
    echo "speedup: time/op at 1 proc over time/op at P (P.00x is perfect); every workload is $WIDTH wide at every P."
    echo "The goals are for a 16-core machine (issue 15); procs above nproc ($NPROC) share CPUs and cannot meet them."
    grep -q ' fail$' "$RAW" && echo "fail: a run crashed, printed no result or ran past ${TIMEOUT}s (* marks the median of the runs that did not); logs in ${OUT#"$ROOT"/}/logs/."
} >"$DOC"
cat "$DOC"
echo "scale: written to ${DOC#"$ROOT"/} (${ELAPSED}s)" >&2
grep -q ' fail$' "$RAW" && exit 1
[ "${SCALE_STRICT:-0}" = 1 ] && [ $missed = 1 ] && exit 1
exit 0
