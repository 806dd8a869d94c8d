#!/usr/bin/env bash
# bench/run.sh — leash vs Go on the same machine, same algorithms.
#
#   bash bench/run.sh [quick|full] [WORKLOAD...]
#   make bench [BENCH_MODE=quick|full]
#
# Runs every workload (or the ones named) at 1 and 2 procs, alternating the
# C program build/bench_<name> (LEASH_PROCS=P) and the Go program built from
# bench/go (GOMAXPROCS=P), R times each (quick: R=3 and small N, well under
# a minute; full: R=5 and larger N, a few minutes), takes medians, prints a
# table and writes it with the machine details to docs/PERFORMANCE.md (or,
# when only some workloads run, to build/bench/PERFORMANCE.md).
#
# Every metric is a time or a size: lower is better, and ratio = leash/Go,
# so a ratio below 1 means leash wins. A C program that is missing shows as
# "n/a" (run `make` first); one that crashes or times out shows as "fail" or
# "timeout" and makes the script exit 1 after the report is written.
#
# Environment:
#   BUILD_DIR      where the C binaries are (default: <repo>/build)
#   BENCH_PROCS    procs to run at (default: "1 2")
#   BENCH_RUNS     runs per program (default: 3 quick, 5 full)
#   BENCH_TIMEOUT  seconds one run may take (default: 60 quick, 300 full)
#   BENCH_DOC      where to write the report (default: see above)
#   BENCH_STRICT=1 also exit 1 when a ratio misses its goal
set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUTDIR=$BUILD/bench
ALL_WORKLOADS=(spawn yield pingpong buffered select parked sleepers ctx fanout)

MODE=quick
if [ $# -gt 0 ]; then
    case $1 in
        quick | full) MODE=$1; shift ;;
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
        fanout)   q=40000;   f=200000 ;;
    esac
    if [ "$MODE" = full ]; then echo "$f"; else echo "$q"; fi
}

if [ $# -gt 0 ]; then
    WORKLOADS=()
    for w in "$@"; do
        ok=0
        for a in "${ALL_WORKLOADS[@]}"; do [ "$w" = "$a" ] && ok=1; done
        if [ $ok = 0 ]; then
            echo "bench: unknown workload '$w' (known: ${ALL_WORKLOADS[*]})" >&2
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
rm -f "$OUTDIR"/logs/*.err
RAW=$OUTDIR/raw.txt
: >"$RAW"

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

# ---------------------------------------------------------------- Go side
GOBIN=$OUTDIR/leashbench-go
GO_VERSION="n/a"
have go || apt_install golang-go || true
if have go; then
    export GOCACHE=$BUILD/go-cache GOPATH=$BUILD/go-path GOTOOLCHAIN=local \
        GOFLAGS='' GOPROXY=off GOSUMDB=off GO111MODULE=on GOWORK=off \
        CGO_ENABLED=0
    GO_VERSION=$(go version | sed 's/^go version //')
    if ! (cd "$ROOT/bench/go" && go build -o "$GOBIN" .) \
        >"$OUTDIR/logs/go-build.log" 2>&1; then
        echo "bench: building bench/go failed (see $OUTDIR/logs/go-build.log);" \
            "Go column will be n/a" >&2
        cat "$OUTDIR/logs/go-build.log" >&2
        rm -f "$GOBIN"
    fi
else
    echo "bench: no Go toolchain (apt-get install golang-go); Go column will be n/a" >&2
    rm -f "$GOBIN"
fi

# ----------------------------------------------------------------- C side
MISSING=()
for w in "${WORKLOADS[@]}"; do
    [ -x "$BUILD/bench_$w" ] || MISSING+=("bench_$w")
done
if [ ${#MISSING[@]} -gt 0 ]; then
    echo "bench: missing in $BUILD: ${MISSING[*]} — shown as n/a (run \`make\` to build them)" >&2
fi

# run_one IMPL WORKLOAD PROCS RUN: runs one program, appends to $RAW:
#   P IMPL WORKLOAD METRIC VALUE UNIT      for each result line
#   P IMPL WORKLOAD - STATUS -             for n/a, fail, timeout
run_one() {
    local impl=$1 w=$2 p=$3 r=$4 n out err rc line
    n=$(n_for "$w")
    local -a cmd
    if [ "$impl" = leash ]; then
        cmd=("$BUILD/bench_$w" "$n")
    else
        cmd=("$GOBIN" "$w" "$n")
    fi
    if [ ! -x "${cmd[0]}" ]; then
        echo "$p $impl $w - n/a -" >>"$RAW"
        return
    fi
    err=$OUTDIR/logs/${impl}_${w}_p${p}_r${r}.err
    out=$(LEASH_PROCS=$p GOMAXPROCS=$p timeout -k 5 "$TIMEOUT" "${cmd[@]}" 2>"$err")
    rc=$?
    if [ $rc = 124 ] || [ $rc = 137 ]; then
        echo "$p $impl $w - timeout -" >>"$RAW"
        printf '\nbench: %s %s (procs %s, run %s) timed out after %ss\n' \
            "$impl" "$w" "$p" "$r" "$TIMEOUT" >&2
        return
    fi
    if [ $rc != 0 ]; then
        echo "$p $impl $w - fail -" >>"$RAW"
        printf '\nbench: %s %s (procs %s, run %s) exited with %s; stderr in %s:\n' \
            "$impl" "$w" "$p" "$r" "$rc" "${err#"$ROOT"/}" >&2
        tail -n 5 "$err" | sed 's/^/    /' >&2
        return
    fi
    local got=0
    while read -r line; do
        # shellcheck disable=SC2086
        set -- $line
        if [ $# = 3 ] && [[ $2 =~ ^[0-9.eE+-]+$ ]]; then
            echo "$p $impl $w $1 $2 $3" >>"$RAW"
            got=1
        fi
    done <<<"$out"
    if [ $got = 0 ]; then
        echo "$p $impl $w - fail -" >>"$RAW"
        printf '\nbench: %s %s (procs %s, run %s) printed no result\n' \
            "$impl" "$w" "$p" "$r" >&2
    fi
}

START=$(date +%s)
echo "bench: mode $MODE, procs ${PROCS[*]}, $RUNS runs each, workloads: ${WORKLOADS[*]}" >&2
for p in "${PROCS[@]}"; do
    for w in "${WORKLOADS[@]}"; do
        printf 'bench: procs %s %-9s' "$p" "$w" >&2
        for ((r = 1; r <= RUNS; r++)); do
            run_one leash "$w" "$p" "$r"
            run_one go "$w" "$p" "$r"
            printf '.' >&2
        done
        echo >&2
    done
done
ELAPSED=$(($(date +%s) - START))

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
export RAW DOC MODE RUNS CPU REV CMD GO_VERSION ELAPSED TIMEOUT
export LOGDIR=${OUTDIR#"$ROOT"/}/logs
NPROC=$(nproc 2>/dev/null || echo "?")
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
N_LIST=$(for w in "${WORKLOADS[@]}"; do printf '%s=%s ' "$w" "$(n_for "$w")"; done)
export NPROC DATE N_LIST WORKLOAD_LIST="${WORKLOADS[*]}" PROC_LIST="${PROCS[*]}"
python3 "$ROOT/bench/report.py"
rc=$?
echo "bench: report written to ${DOC#"$ROOT"/} (raw results: ${RAW#"$ROOT"/}; ${ELAPSED}s)" >&2
exit $rc
