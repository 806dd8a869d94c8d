#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh — leash vs Go on the same machine, same algorithms.
#
#   bash bench/run.sh [quick|full] [WORKLOAD...]
#   bash bench/run.sh callgrind [WORKLOAD...]
#   make bench [BENCH_MODE=quick|full|callgrind]
#
# The pubsub workload is a service, not a loop: build/bench_pubsub (a load
# generator on leash) drives the broker examples/pubsub.c (build/
# example_pubsub) on the leash side and its Go twin (bench/go/pubsub) on
# the Go side, the same way, and reports throughput, latency percentiles
# and the server's RSS and CPU time.
#
# Runs every workload (or the ones named) at 1 and 2 procs, alternating the
# C program build/bench_<name> (LEASH_PROCS=P) and the Go program built from
# bench/go (GOMAXPROCS=P), R times each (quick: R=3 and small N, about a
# minute; full: R=5 and larger N, several minutes), takes medians, prints a
# table and writes it with the machine details to docs/PERFORMANCE.md (or,
# when only some workloads run, to build/bench/PERFORMANCE.md).
#
# Every metric is a time or a size: lower is better, and ratio = leash/Go,
# so a ratio below 1 means leash wins. Two kinds of rows are not leash/Go
# ratios: tracking_<w> is the cost of always-on tracking in % (build/
# bench_<w> against build/bench_<w>_notrack, the runtime built with
# LEASH_TRACKING=0; twice as many runs, alternating, fastest of each; goal
# <= 3%), trace_pingpong and cpuprof_pingpong the cost in % of the
# execution trace (BENCH_TRACE=1: leash_trace_start for the whole run)
# and of a CPU profile (BENCH_CPUPROF=1) on pingpong, on against off,
# measured the same way (the "overhead" workload; goal <= 5%), and
# fanout_speedup is time per task at 1 proc over that at P
# procs (goal >= 0.8 x P). Workloads without a Go side (leakverify10k,
# prooflat, tracking) show Go as n/a. A C program that is missing shows as "n/a" (run
# `make` first); one that crashes or times out shows as "fail" or "timeout"
# (or, when other runs of it succeeded, as their median marked *) and makes
# the script exit 1 after the report is written.
#
# callgrind mode runs every workload that has an operation to count
# (spawn, yield, pingpong, select, buffered, ctx, ctxcancel, sync as
# mutex, rwmutex and once one at a time, parked, sleepers; and the
# _notrack builds of the tracked ones) under `valgrind --tool=callgrind`
# at LEASH_PROCS=1, twice each (N and 2N), and prints instructions per
# operation from the difference, so start-up cost cancels: repeatable on a
# noisy machine, where wall times are not. For spawn and pingpong it also
# prints cachegrind's simulated cache misses per operation
# (`valgrind --tool=cachegrind --cache-sim=yes`, the same N and 2N
# method): first-level data and last-level, with a fixed 32 KiB L1 and
# 8 MiB last level (not this VM's, so results compare across machines).
# About 30 s in all. Only leash:
# Go cannot be measured usefully under valgrind. Results:
# build/bench/callgrind.txt (quoted in the next docs/PERFORMANCE.md),
# profiles of the 2N runs in build/bench/callgrind/ (callgrind_annotate
# FILE; cg_annotate for the cachegrind.out.* ones).
#
# Scaling beyond 2 procs is bench/scale.sh's (make scale): fan-out, ping-
# pong pairs and a many-to-many buffered channel at 1, 2, 4, ... procs, for
# a machine with the cores (the goals are for 16).
#
# Environment:
#   BUILD_DIR      where the C binaries are (default: <repo>/build)
#   BENCH_PROCS    procs to run at (default: "1 2")
#   BENCH_RUNS     runs per program (default: 3 quick, 5 full)
#   BENCH_TIMEOUT  seconds one run may take (default: 60 quick, 300 full)
#   BENCH_DOC      where to write the report (default: see above)
#   BENCH_STRICT=1 also exit 1 when a goal is missed
set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUTDIR=$BUILD/bench
ALL_WORKLOADS=(spawn yield pingpong buffered select parked sleepers ctx
    ctxcancel ctxtree sync tcpecho pubsub fanout dump100k dumpbusy leakverify10k
    prooflat tracking overhead)
# Workloads with no Go program: Go shows as n/a.
NO_GO=" leakverify10k prooflat tracking overhead "
# tracking compares these with their bench_<w>_notrack builds.
TRACKED=(pingpong spawn select)
CALLGRIND_WORKLOADS=(spawn yield pingpong select buffered ctx ctxcancel sync
    parked sleepers)
# callgrind mode also simulates the caches (cachegrind) for these.
CACHEGRIND_WORKLOADS=(spawn pingpong)

MODE=quick
if [ $# -gt 0 ]; then
    case $1 in
        quick | full | callgrind) MODE=$1; shift ;;
        -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        "") shift ;;
    esac
fi

# N per workload: quick / full.
n_for() {
    local w=$1 q f
    case $w in
        spawn)    q=200000;  f=2000000 ;;
        yield)    q=500000;  f=5000000 ;;
        pingpong) q=200000;  f=2000000 ;;
        buffered) q=1000000; f=10000000 ;;
        select)   q=200000;  f=2000000 ;;
        parked)   q=100000;  f=1000000 ;;
        sleepers) q=100000;  f=100000 ;;
        ctx)      q=200000;  f=2000000 ;;
        ctxcancel) q=1000000; f=5000000 ;;
        ctxtree)  q=10;      f=50 ;;       # rounds of 10,110 contexts
        sync)     q=2000000; f=20000000 ;;
        tcpecho)  q=20000;   f=200000 ;;   # round trips over 1,000 conns
        pubsub)   q=400000;  f=4000000 ;;  # deliveries (64 subscribers)
        fanout)   q=40000;   f=200000 ;;
        dump100k) q=100000;  f=100000 ;;   # parked coroutines
        dumpbusy) q=1000;    f=1000 ;;     # coroutines (2 x P of them busy)
        leakverify10k) q=10000; f=10000 ;; # coroutines checked
        prooflat) q=2000;    f=10000 ;;    # proofs (and wakes) of each kind
        tracking) q=-;       f=- ;;        # the N of each tracked workload
        overhead) q=-;       f=- ;;        # pingpong's N
    esac
    if [ "$MODE" = full ]; then echo "$f"; else echo "$q"; fi
}

# Runs per program: the tracking pairs get twice as many (a few % is
# what they must resolve), the slow diagnostics ones fewer in quick mode.
runs_for() {
    case $1 in
        tracking | overhead) echo $((RUNS * 2)) ;;
        dump100k) if [ "$MODE" = quick ]; then echo 2; else echo 3; fi ;;
        *) echo "$RUNS" ;;
    esac
}

[ "$MODE" = callgrind ] && ALL_WORKLOADS=("${CALLGRIND_WORKLOADS[@]}")
if [ $# -gt 0 ]; then
    WORKLOADS=()
    for w in "$@"; do
        ok=0
        for a in "${ALL_WORKLOADS[@]}"; do [ "$w" = "$a" ] && ok=1; done
        if [ $ok = 0 ]; then
            echo "bench: unknown workload '$w' for mode $MODE (known: ${ALL_WORKLOADS[*]})" >&2
            exit 2
        fi
        WORKLOADS+=("$w")
    done
    SUBSET=1
else
    WORKLOADS=("${ALL_WORKLOADS[@]}")
    SUBSET=0
fi

if [ "$MODE" = full ]; then
    RUNS=${BENCH_RUNS:-5}; TIMEOUT=${BENCH_TIMEOUT:-300}
else
    RUNS=${BENCH_RUNS:-3}; TIMEOUT=${BENCH_TIMEOUT:-60}
fi
read -r -a PROCS <<<"${BENCH_PROCS:-1 2}"
if [ -n "${BENCH_DOC:-}" ]; then
    DOC=$BENCH_DOC
elif [ $SUBSET = 1 ]; then
    DOC=$OUTDIR/PERFORMANCE.md
else
    DOC=$ROOT/docs/PERFORMANCE.md
fi

mkdir -p "$OUTDIR/logs"
RAW=$OUTDIR/raw.txt
if [ "$MODE" != callgrind ]; then
    rm -f "$OUTDIR"/logs/*.err
    : >"$RAW"
fi

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
    if [ "$(id -u)" = 0 ] && have apt-get; then
        echo "bench: installing $* with apt-get" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq "$@"; } >"$OUTDIR/logs/apt.log" 2>&1
    else
        return 1
    fi
}

have python3 || apt_install python3 || {
    echo "bench: python3 is needed to summarise the results" >&2
    exit 2
}
have timeout || { echo "bench: timeout (coreutils) is needed" >&2; exit 2; }

# ------------------------------------------------------------- callgrind
# Instructions per operation under callgrind, from two runs (N and 2N):
# (Ir(2N) - Ir(N)) / (ops(2N) - ops(N)), where ops counts the untimed
# warm-up iterations too (the programs run them on top of N).
cg_n() {
    case $1 in
        buffered | sync*) echo 200000 ;;
        parked | sleepers) echo 5000 ;;
        *) echo 20000 ;;
    esac
}
cg_ops() { # ops WORKLOAD N: iterations the program runs for N
    local w=$1 n=$2 wu
    case $w in
        buffered | parked | sleepers) echo "$n" ;;
        yield) echo $((2 * n)) ;; # two coroutines yield N times each
        *) wu=$((n / 10)); [ $wu -gt 100000 ] && wu=100000; echo $((n + wu)) ;;
    esac
}
# cg_parts WORKLOAD: the BENCH_ONLY values that split it into rows, or "".
cg_parts() {
    case $1 in
        sync) echo "mutex rwmutex once" ;;
        *) echo "" ;;
    esac
}
# cg_goal PROGRAM: issue 15's target in instructions per operation, if any.
cg_goal() {
    case $1 in
        bench_spawn) echo 650 ;;
        bench_yield) echo 150 ;;
        bench_pingpong) echo 700 ;;
        bench_select) echo 1000 ;;
    esac
}
cg_ir() { # cg_ir PROGRAM N OUTFILE [PART]: total instructions (Ir), all threads
    local ir
    ir=$(BENCH_ONLY=${4:-} LEASH_PROCS=1 timeout -k 5 600 valgrind \
        --tool=callgrind --callgrind-out-file="$3" "$1" "$2" 2>&1 >/dev/null |
        sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p')
    [ -n "$ir" ] && echo "$ir"
}
cg_miss() { # cg_miss PROGRAM N OUTFILE: "D1-misses LL-misses" (data + instr)
    local log
    log=$(LEASH_PROCS=1 timeout -k 5 600 valgrind --tool=cachegrind \
        --cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 \
        --LL=8388608,16,64 --cachegrind-out-file="$3" "$1" "$2" 2>&1 >/dev/null)
    local d1 ll
    d1=$(sed -n 's/^==[0-9]*== D1  misses: *\([0-9,]*\).*/\1/p' <<<"$log" | tr -d ,)
    ll=$(sed -n 's/^==[0-9]*== LL misses: *\([0-9,]*\).*/\1/p' <<<"$log" | tr -d ,)
    [ -n "$d1" ] && [ -n "$ll" ] && echo "$d1 $ll"
}
run_callgrind() {
    have valgrind || apt_install valgrind || {
        echo "bench: callgrind mode needs valgrind (apt-get install valgrind)" >&2
        exit 2
    }
    local out=$OUTDIR/callgrind.txt dir=$OUTDIR/callgrind w prog n a b ops v
    local part label
    local -a progs parts
    mkdir -p "$dir"
    rm -f "$dir"/callgrind.out.* "$dir"/cachegrind.out.*
    {
        echo "leash instructions per operation under callgrind (LEASH_PROCS=1)"
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$([ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1)" ] && echo ' (with uncommitted changes)'), $(valgrind --version)"
        echo "from the difference of runs at N and 2N, so start-up cancels"
        echo "(parked: per coroutine over its three phases; sleepers: per sleeper)"
        echo
        printf '%-22s %8s %12s  %s\n' program N Ir/op "goal, or vs tracked"
    } | tee "$out"
    local start failed=0
    start=$(date +%s)
    for w in "${WORKLOADS[@]}"; do
        progs=("bench_$w")
        for t in "${TRACKED[@]}"; do
            [ "$t" = "$w" ] && progs+=("bench_${w}_notrack")
        done
        read -r -a parts <<<"$(cg_parts "$w")"
        [ ${#parts[@]} = 0 ] && parts=("")
        local tracked=""
        for prog in "${progs[@]}"; do
            for part in "${parts[@]}"; do
                n=$(cg_n "$w")
                label=$prog${part:+:$part}
                if [ ! -x "$BUILD/$prog" ]; then
                    printf '%-22s %8s %12s\n' "$label" "$n" "n/a" | tee -a "$out"
                    continue
                fi
                a=$(cg_ir "$BUILD/$prog" "$n" /dev/null "$part")
                b=$(cg_ir "$BUILD/$prog" $((2 * n)) \
                    "$dir/callgrind.out.$prog${part:+.$part}" "$part")
                if [ -z "$a" ] || [ -z "$b" ]; then
                    printf '%-22s %8s %12s\n' "$label" "$n" "fail" | tee -a "$out"
                    failed=1
                    continue
                fi
                ops=$(($(cg_ops "$w" $((2 * n))) - $(cg_ops "$w" "$n")))
                v=$(python3 -c "print('%.1f' % (($b - $a) / $ops))")
                local rel="" goal
                goal=$(cg_goal "$prog")
                if [ -n "$goal" ]; then
                    rel=$(python3 -c "print('<=%s %s' % ($goal, 'ok' if $v <= $goal else 'MISS'))")
                fi
                if [ "$prog" = "bench_$w" ]; then
                    tracked=$v
                elif [ -n "$tracked" ]; then
                    rel=$(python3 -c "print('tracking costs %+.1f%%' % (($tracked / $v - 1) * 100))")
                fi
                printf '%-22s %8s %12s  %s\n' "$label" "$n" "$v" "$rel" | tee -a "$out"
            done
        done
    done
    local cw=()
    for w in "${CACHEGRIND_WORKLOADS[@]}"; do
        for x in "${WORKLOADS[@]}"; do [ "$x" = "$w" ] && cw+=("$w"); done
    done
    if [ ${#cw[@]} -gt 0 ]; then
        {
            echo
            echo "simulated cache misses per operation (cachegrind --cache-sim=yes,"
            echo "32 KiB 8-way L1s, 8 MiB 16-way LL; same N and 2N method;"
            echo "D1: first-level data, LL: last level, instructions and data)"
            echo
            printf '%-22s %8s %12s %12s\n' program N D1miss/op LLmiss/op
        } | tee -a "$out"
    fi
    for w in "${cw[@]}"; do
        prog=bench_$w
        n=$(cg_n "$w")
        if [ ! -x "$BUILD/$prog" ]; then
            printf '%-22s %8s %12s\n' "$prog" "$n" "n/a" | tee -a "$out"
            continue
        fi
        a=$(cg_miss "$BUILD/$prog" "$n" /dev/null)
        b=$(cg_miss "$BUILD/$prog" $((2 * n)) "$dir/cachegrind.out.$prog")
        if [ -z "$a" ] || [ -z "$b" ]; then
            printf '%-22s %8s %12s\n' "$prog" "$n" "fail" | tee -a "$out"
            failed=1
            continue
        fi
        ops=$(($(cg_ops "$w" $((2 * n))) - $(cg_ops "$w" "$n")))
        python3 -c "
a, b = [int(x) for x in '$a'.split()], [int(x) for x in '$b'.split()]
print('%-22s %8s %12.3f %12.3f' % ('$prog', '$n', (b[0] - a[0]) / $ops, (b[1] - a[1]) / $ops))" |
            tee -a "$out"
    done
    echo >&2
    echo "bench: written to ${out#"$ROOT"/}; profiles (2N runs) in ${dir#"$ROOT"/}/ ($(($(date +%s) - start))s)" >&2
    exit $failed
}
[ "$MODE" = callgrind ] && run_callgrind

# ---------------------------------------------------------------- Go side
GOBIN=$OUTDIR/leashbench-go
GOPUBSUB=$OUTDIR/pubsub-go
GO_VERSION="n/a"
have go || apt_install golang-go || true
if have go; then
    export GOCACHE=$BUILD/go-cache GOPATH=$BUILD/go-path GOTOOLCHAIN=local \
        GOFLAGS='' GOPROXY=off GOSUMDB=off GO111MODULE=on GOWORK=off \
        CGO_ENABLED=0
    GO_VERSION=$(go version | sed 's/^go version //')
    if ! (cd "$ROOT/bench/go" && go build -o "$GOBIN" . &&
        go build -o "$GOPUBSUB" ./pubsub) \
        >"$OUTDIR/logs/go-build.log" 2>&1; then
        echo "bench: building bench/go failed (see $OUTDIR/logs/go-build.log);" \
            "Go column will be n/a" >&2
        cat "$OUTDIR/logs/go-build.log" >&2
        rm -f "$GOBIN" "$GOPUBSUB"
    fi
else
    echo "bench: no Go toolchain (apt-get install golang-go); Go column will be n/a" >&2
    rm -f "$GOBIN" "$GOPUBSUB"
fi

# ----------------------------------------------------------------- C side
MISSING=()
for w in "${WORKLOADS[@]}"; do
    if [ "$w" = overhead ]; then
        [ -x "$BUILD/bench_pingpong" ] || MISSING+=("bench_pingpong")
    elif [ "$w" = tracking ]; then
        for t in "${TRACKED[@]}"; do
            [ -x "$BUILD/bench_$t" ] || MISSING+=("bench_$t")
            [ -x "$BUILD/bench_${t}_notrack" ] || MISSING+=("bench_${t}_notrack")
        done
    else
        [ -x "$BUILD/bench_$w" ] || MISSING+=("bench_$w")
    fi
    if [ "$w" = pubsub ] && [ ! -x "$BUILD/example_pubsub" ]; then
        MISSING+=("example_pubsub")
    fi
done
if [ ${#MISSING[@]} -gt 0 ]; then
    echo "bench: missing in $BUILD: ${MISSING[*]} — shown as n/a (run \`make\` to build them)" >&2
fi

# run_cmd IMPL WORKLOAD PROCS RUN PREFIX CMD...: runs one program, appends
# to $RAW (a metric M printed by the program is recorded as PREFIX M):
#   P IMPL WORKLOAD METRIC VALUE UNIT      for each result line
#   P IMPL WORKLOAD - STATUS -             for n/a, fail, timeout
# (the tracking workload records each program as WORKLOAD tracking_<w>)
run_cmd() {
    local impl=$1 w=$2 p=$3 r=$4 prefix=$5 out err rc line tag
    shift 5
    if [ ! -x "$1" ]; then
        echo "$p $impl $w - n/a -" >>"$RAW"
        return
    fi
    tag="$impl $w${prefix:+ ($(basename "$1"))}"
    err=$OUTDIR/logs/${impl}_${w}_$(basename "$1")_p${p}_r${r}.err
    out=$(LEASH_PROCS=$p GOMAXPROCS=$p timeout -k 5 "$TIMEOUT" "$@" 2>"$err")
    rc=$?
    if [ $rc = 124 ] || [ $rc = 137 ]; then
        echo "$p $impl $w - timeout -" >>"$RAW"
        printf '\nbench: %s (procs %s, run %s) timed out after %ss\n' \
            "$tag" "$p" "$r" "$TIMEOUT" >&2
        return
    fi
    if [ $rc != 0 ]; then
        echo "$p $impl $w - fail -" >>"$RAW"
        printf '\nbench: %s (procs %s, run %s) exited with %s; stderr in %s:\n' \
            "$tag" "$p" "$r" "$rc" "${err#"$ROOT"/}" >&2
        tail -n 5 "$err" | sed 's/^/    /' >&2
        return
    fi
    local got=0
    while read -r line; do
        # shellcheck disable=SC2086
        set -- $line
        if [ $# = 3 ] && [[ $2 =~ ^[0-9.eE+-]+$ ]]; then
            echo "$p $impl $w $prefix$1 $2 $3" >>"$RAW"
            got=1
        fi
    done <<<"$out"
    if [ $got = 0 ]; then
        echo "$p $impl $w - fail -" >>"$RAW"
        printf '\nbench: %s (procs %s, run %s) printed no result\n' \
            "$tag" "$p" "$r" >&2
    fi
}

# run_one IMPL WORKLOAD PROCS RUN
run_one() {
    local impl=$1 w=$2 p=$3 r=$4
    if [ "$w" = pubsub ]; then
        # One load generator (bench_pubsub) drives either server.
        local server=$BUILD/example_pubsub
        [ "$impl" = go ] && server=$GOPUBSUB
        if [ ! -x "$server" ]; then
            echo "$p $impl $w - n/a -" >>"$RAW"
        else
            run_cmd "$impl" "$w" "$p" "$r" "" "$BUILD/bench_pubsub" "$(n_for "$w")" "$server"
        fi
    elif [ "$impl" = go ]; then
        if [[ $NO_GO == *" $w "* ]]; then
            echo "$p go $w - n/a -" >>"$RAW"
        else
            run_cmd go "$w" "$p" "$r" "" "$GOBIN" "$w" "$(n_for "$w")"
        fi
    elif [ "$w" = tracking ]; then
        # Tracked (impl leash) and LEASH_TRACKING=0 (impl notrack) builds,
        # in alternating order from one run to the next.
        local t
        for t in "${TRACKED[@]}"; do
            if ((r % 2)); then
                run_cmd leash "tracking_$t" "$p" "$r" tracking_ "$BUILD/bench_$t" "$(n_for "$t")"
                run_cmd notrack "tracking_$t" "$p" "$r" tracking_ "$BUILD/bench_${t}_notrack" "$(n_for "$t")"
            else
                run_cmd notrack "tracking_$t" "$p" "$r" tracking_ "$BUILD/bench_${t}_notrack" "$(n_for "$t")"
                run_cmd leash "tracking_$t" "$p" "$r" tracking_ "$BUILD/bench_$t" "$(n_for "$t")"
            fi
        done
    elif [ "$w" = overhead ]; then
        # bench_pingpong with the execution trace (BENCH_TRACE=1) or the
        # CPU profiler (BENCH_CPUPROF=1) on (impl leash) and off (impl
        # notrack), as the tracking pairs, alternating.
        local m v
        for m in trace cpuprof; do
            v=BENCH_$(echo "$m" | tr a-z A-Z)
            if ((r % 2)); then
                run_cmd_env "$v=1" leash "${m}_pingpong" "$p" "$r" "${m}_"
                run_cmd_env "$v=0" notrack "${m}_pingpong" "$p" "$r" "${m}_"
            else
                run_cmd_env "$v=0" notrack "${m}_pingpong" "$p" "$r" "${m}_"
                run_cmd_env "$v=1" leash "${m}_pingpong" "$p" "$r" "${m}_"
            fi
        done
    else
        run_cmd leash "$w" "$p" "$r" "" "$BUILD/bench_$w" "$(n_for "$w")"
    fi
}

# run_cmd_env VAR=VALUE IMPL WORKLOAD PROCS RUN PREFIX: bench_pingpong
# with VAR set.
run_cmd_env() {
    local kv=$1
    shift
    export "${kv?}"
    run_cmd "$@" "$BUILD/bench_pingpong" "$(n_for pingpong)"
    unset "${kv%%=*}"
}

# The cost of a fresh page (first write to anonymous memory: the guest's
# fault and, in a VM, the host's backing of it), which the parked,
# sleepers and dump rows mostly are and which varies tenfold on a VM from
# one hour to the next: measured at the start and the end (64 MiB, one
# write per 4 KiB page, µs per page), so a report says which state it saw.
page_cost() {
    python3 -c '
import mmap, time
n = 64 << 20
m = mmap.mmap(-1, n)
t = time.perf_counter()
for i in range(0, n, 4096):
    m[i] = 1
print("%.2f" % ((time.perf_counter() - t) * 1e6 / (n // 4096)))
' 2>/dev/null || echo "?"
}

START=$(date +%s)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
PAGE_START=$(page_cost)
echo "bench: mode $MODE, procs ${PROCS[*]}, $RUNS runs each, workloads: ${WORKLOADS[*]}" >&2
for p in "${PROCS[@]}"; do
    for w in "${WORKLOADS[@]}"; do
        printf 'bench: procs %s %-13s ' "$p" "$w" >&2
        runs=$(runs_for "$w")
        t_w=$(date +%s)
        for ((r = 1; r <= runs; r++)); do
            run_one leash "$w" "$p" "$r"
            run_one go "$w" "$p" "$r"
            printf '.' >&2
        done
        echo " $(($(date +%s) - t_w))s" >&2
    done
done
ELAPSED=$(($(date +%s) - START))
LOAD_END=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
PAGE_END=$(page_cost)

# ---------------------------------------------------------------- report
CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
[ -n "$CPU" ] || CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1)" ]; then
    REV="$REV (with uncommitted changes)"
fi
CMD="bash bench/run.sh $MODE"
[ $SUBSET = 1 ] && CMD="$CMD ${WORKLOADS[*]}"

mkdir -p "$(dirname "$DOC")"
export RAW DOC MODE RUNS CPU REV CMD GO_VERSION ELAPSED TIMEOUT LOAD_START LOAD_END PAGE_START PAGE_END
export LOGDIR=${OUTDIR#"$ROOT"/}/logs
NPROC=$(nproc 2>/dev/null || echo "?")
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
N_LIST=$(for w in "${WORKLOADS[@]}"; do [ "$w" = tracking ] || [ "$w" = overhead ] || printf '%s=%s ' "$w" "$(n_for "$w")"; done)
export NPROC DATE N_LIST WORKLOAD_LIST="${WORKLOADS[*]}" PROC_LIST="${PROCS[*]}"
export CALLGRIND_TXT=$OUTDIR/callgrind.txt
TRACKING_RUNS=$(runs_for tracking)
export TRACKING_RUNS
python3 "$ROOT/bench/report.py"
rc=$?
echo "bench: report written to ${DOC#"$ROOT"/} (raw results: ${RAW#"$ROOT"/}; ${ELAPSED}s)" >&2
exit $rc
