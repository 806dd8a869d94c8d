#!/usr/bin/env python3
"""Summarise bench/run.sh results: medians, leash/Go ratios, goals.

Called by bench/run.sh with its settings in the environment. Reads $RAW,
whose lines are
    PROCS IMPL WORKLOAD METRIC VALUE UNIT    (one result of one run)
    PROCS IMPL WORKLOAD - STATUS -           (STATUS: n/a, fail, timeout)
prints a table to stdout and writes the Markdown report to $DOC.
Exit status: 1 if a run failed or timed out (or, with BENCH_STRICT=1, a
ratio missed its goal), else 0.
"""
import os
import statistics
import sys

ENV = os.environ
WORKLOADS = ENV.get("WORKLOAD_LIST", "").split()
PROCS = ENV.get("PROC_LIST", "1 2").split()

# Metrics each workload prints, in table order (extra ones are appended).
METRICS = {
    "parked": ["parked", "parked_spawn"],
}
# leash/Go ratio to reach (lower is better). Metrics without one are shown
# for information.
GOALS = {
    "spawn": 0.5,
    "yield": 0.5,
    "pingpong": 0.5,
    "select": 0.5,
    "buffered": 0.6,
    "sleepers": 0.5,
    "ctx": 0.5,
    "parked": 1.0,
}
WHAT = {
    "spawn": "spawn a coroutine that only signals an unbuffered signal "
             "channel, wait for the signal (spawn + exit + wait)",
    "yield": "two coroutines each yield N times; per yield",
    "pingpong": "round trip over two unbuffered int channels",
    "buffered": "producer to consumer over one int64 channel of cap 128; "
                "per message (consumer checks the sum)",
    "select": "ping-pong where both sides receive through a blocking 2-case "
              "select (the second channel is never used); per round trip",
    "parked": "RSS growth (/proc/self/statm) per coroutine blocked receiving "
              "from one shared channel",
    "parked_spawn": "time to create one such coroutine and have it parked",
    "sleepers": "100,000 coroutines each sleep 1 ms; total time until all "
                "are done",
    "ctx": "cancel-and-wake cycle: WithCancel(Background), hand it to a "
           "waiter blocked on Done, cancel, wait for its ack, release",
    "fanout": "8 workers take 512 CPU-bound hashing tasks from a channel and "
              "return results on another; wall time per task",
}


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return "%.0f" % v
    return "%.1f" % v


def main():
    values = {}    # (procs, impl, metric) -> [values]
    units = {}     # metric -> unit
    status = {}    # (procs, impl, workload) -> set of statuses
    metrics = {w: list(METRICS.get(w, [w])) for w in WORKLOADS}
    with open(ENV["RAW"]) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 6:
                continue
            p, impl, w, metric, value, unit = parts
            if metric == "-":
                status.setdefault((p, impl, w), set()).add(value)
                continue
            try:
                v = float(value)
            except ValueError:
                continue
            values.setdefault((p, impl, metric), []).append(v)
            units.setdefault(metric, unit)
            if w in metrics and metric not in metrics[w]:
                metrics[w].append(metric)

    def cell(p, impl, w, metric):
        st = status.get((p, impl, w), set())
        for bad in ("timeout", "fail", "n/a"):
            if bad in st:
                return bad, None
        vals = values.get((p, impl, metric))
        if not vals:
            return "n/a", None
        med = statistics.median(vals)
        return fmt(med), med

    rows = []
    failed = False
    missed = False
    for w in WORKLOADS:
        for metric in metrics[w]:
            for p in PROCS:
                lt, lv = cell(p, "leash", w, metric)
                gt, gv = cell(p, "go", w, metric)
                failed |= lt in ("fail", "timeout") or gt in ("fail", "timeout")
                ratio = lv / gv if lv is not None and gv else None
                goal = GOALS.get(metric)
                verdict = ""
                if goal is not None and ratio is not None:
                    verdict = "ok" if ratio <= goal else "MISS"
                    missed |= verdict == "MISS"
                rows.append([
                    metric, p, lt, gt, units.get(metric, ""),
                    "%.2f" % ratio if ratio is not None else "—",
                    "≤%.1f" % goal if goal is not None else "—",
                    verdict,
                ])

    # Fan-out scaling: time per task at 1 proc / at 2 procs.
    scaling = []
    if "fanout" in WORKLOADS and "1" in PROCS and "2" in PROCS:
        for impl, name in (("leash", "leash"), ("go", "Go")):
            a = cell("1", impl, "fanout", "fanout")[1]
            b = cell("2", impl, "fanout", "fanout")[1]
            scaling.append((name, a / b if a is not None and b else None))

    header = ["workload", "procs", "leash", "go", "unit", "ratio", "goal", ""]
    widths = [max(len(str(r[i])) for r in rows + [header])
              for i in range(len(header))]
    def line(r):
        return "  ".join(str(c).rjust(wd) if 1 <= i <= 3 or i == 5
                         else str(c).ljust(wd)
                         for i, (c, wd) in enumerate(zip(r, widths))).rstrip()
    print(line(header))
    print(line(["-" * wd for wd in widths]))
    for r in rows:
        print(line(r))
    if scaling:
        print()
        print("fanout speedup, 2 procs vs 1: " + ", ".join(
            "%s %s" % (n, "%.2fx" % s if s is not None else "n/a")
            for n, s in scaling))

    md = []
    md.append("# Performance: leash vs Go\n")
    md.append("Generated by `bench/run.sh` (do not edit by hand: rerun the "
              "command below). Same algorithm on both sides: `bench/NAME.c` "
              "on leash, `bench/go/main.go` on Go. Every metric is a time or a "
              "size, so **lower is better**, and *ratio* = leash / Go: below "
              "1 leash wins. *goal* is the ratio leash aims for.\n")
    md.append("| | |\n|---|---|")
    md.append("| Date | %s |" % ENV.get("DATE", "?"))
    md.append("| Machine | %s, %s CPUs (nproc) |"
              % (ENV.get("CPU", "?") or "?", ENV.get("NPROC", "?")))
    md.append("| Go | %s |" % ENV.get("GO_VERSION", "n/a"))
    md.append("| leash | %s |" % ENV.get("REV", "?"))
    md.append("| Mode | %s: %s runs of each program, alternating leash and "
              "Go, median shown; LEASH_PROCS = GOMAXPROCS = procs |"
              % (ENV.get("MODE", "?"), ENV.get("RUNS", "?")))
    md.append("| N | %s |" % ENV.get("N_LIST", "").strip())
    md.append("| Command | `%s` (%ss) |" % (ENV.get("CMD", "bash bench/run.sh"),
                                            ENV.get("ELAPSED", "?")))
    md.append("")
    md.append("## Results\n")
    md.append("| workload | procs | leash | go | unit | ratio | goal | |")
    md.append("|---|--:|--:|--:|---|--:|--:|---|")
    for r in rows:
        md.append("| " + " | ".join(str(c) for c in r) + " |")
    md.append("")
    if scaling:
        md.append("Fan-out speedup at 2 procs over 1 (time per task at 1 / "
                  "at 2; 2.00x is perfect): " + ", ".join(
                      "%s **%s**" % (n, "%.2fx" % s if s is not None else "n/a")
                      for n, s in scaling) + ".\n")
    if any(r[2] == "n/a" for r in rows):
        md.append("*n/a*: that program was not built (run `make`) or its "
                  "workload is not available yet.\n")
    if failed:
        md.append("*fail* / *timeout*: a run crashed, printed no result or "
                  "ran past %ss; see `%s/`.\n"
                  % (ENV.get("TIMEOUT", "?"), ENV.get("LOGDIR", "build/bench/logs")))
    md.append("## What each workload measures\n")
    for w in WORKLOADS:
        for metric in metrics[w]:
            if metric in WHAT:
                md.append("- **%s**: %s." % (metric, WHAT[metric]))
    md.append("")
    md.append("Untimed warm-up iterations (N/10, at most 100,000) precede the "
              "timed ones in spawn, pingpong, select and ctx on both sides. "
              "RSS is read from `/proc/self/statm` on both sides.")
    with open(ENV["DOC"], "w") as f:
        f.write("\n".join(md) + "\n")

    if failed:
        return 1
    if missed and ENV.get("BENCH_STRICT") == "1":
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
