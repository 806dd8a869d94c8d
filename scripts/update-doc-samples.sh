#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/update-doc-samples.sh -- the sample outputs in README.md and docs/.
#
#   scripts/update-doc-samples.sh [BUILD]          rewrite the samples
#   scripts/update-doc-samples.sh --check [BUILD]  check them (test_doc_samples)
#
# BUILD is the build directory (default: build). Run from anywhere.
#
# A regenerated sample sits between markers, around its fenced block:
#
#   <!-- sample:NAME -->
#   ```
#   ...output...
#   ```
#   <!-- /sample -->
#
# NAME is a row of SAMPLES below: which example runs (from BUILD), with
# which environment, and which part of its output the sample shows. The
# output's paths are made relative to the repository root (the build's
# source directory is cut off the front), so samples read the same
# whichever machine made them.
#
# --check regenerates every marked sample and compares it with the text
# in the file, modulo what varies from run to run: timings (0.581s),
# frame offsets (+0x18b) and addresses, goroutine and object ids,
# reference counts. It also checks every sample block, marked or not:
#   - no absolute path (every path is relative to the repository root);
#   - every examples/ or src/ FILE:LINE points at the line that holds what
#     the sample says: "made at"/"created at" a line that makes an object,
#     "spawned at" a leash_go (or leash_run), "releasing it ... at" a
#     leash_release, a frame "FUNC / FILE:LINE" a line of FUNC, or for
#     leash's own frames (src/) the call that parks.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
mode=update
if [ "${1:-}" = "--check" ]; then
    mode=check
    shift
fi
build=${1:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
exec python3 - "$mode" "$root" "$build" <<'PY'
import os, re, subprocess, sys

mode, root, build = sys.argv[1:4]
DOCS = ["README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir(os.path.join(root, "docs"))
    if f.endswith(".md"))

def first_goroutine(lines):
    """Everything up to the end of the first goroutine block, '...', and
    the final count line."""
    out, i = [], 0
    while i < len(lines) and not lines[i].startswith("goroutine "):
        out.append(lines[i]); i += 1
    while i < len(lines) and lines[i] != "":
        out.append(lines[i]); i += 1
    out.append("...")
    tail = [l for l in lines if re.match(r"^\d+ coroutine\(s\) proven leaked", l)]
    return out + tail[-1:]

def goroutine_only(lines):
    """The first goroutine block alone."""
    i = next(k for k, l in enumerate(lines) if l.startswith("goroutine "))
    j = i
    while j < len(lines) and lines[j] != "":
        j += 1
    return lines[i:j]

def until_blank(lines):
    return lines[:lines.index("")] if "" in lines else lines

def everything(lines):
    return lines

# NAME: (program in BUILD, extra environment, stderr too?, selection)
SAMPLES = {
    "queryall": ("example_queryall", {}, False, first_goroutine),
    "recv_nosender": ("example_recv_nosender", {}, False, goroutine_only),
    "generator_done": ("example_generator_done", {}, False, until_blank),
    "nilchan": ("example_nilchan", {}, False, everything),
    "nilchan_main": ("example_nilchan_main", {}, True, everything),
}

def source_dir():
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for l in f:
                if l.startswith("CMAKE_HOME_DIRECTORY:"):
                    return l.split("=", 1)[1].strip()
    except OSError:
        pass
    return root

SRC = source_dir().rstrip("/") + "/"

def run(name):
    prog, env, err, select = SAMPLES[name]
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("LEASH_"):
            del e[k]
    e.update(env)
    p = subprocess.run([os.path.join(build, prog)], env=e, timeout=60,
                       stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT if err else subprocess.DEVNULL)
    text = p.stdout.decode("utf-8", "replace").replace(SRC, "")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return select(lines)

def normalise(lines):
    out = []
    for l in lines:
        l = re.sub(r"\b\d+(\.\d+)?(ms|s)\b", "T", l)
        l = re.sub(r"\+0x[0-9a-f]+", "+0x.", l)
        l = re.sub(r"0x[0-9a-f]{6,}", "0xADDR", l)
        l = re.sub(r"\bgoroutine \d+", "goroutine N", l)
        l = re.sub(r"#\d+", "#N", l)
        l = re.sub(r"\d+ reference\(s\)", "N reference(s)", l)
        out.append(l.rstrip())
    return out

MARK = re.compile(r"^<!-- sample:([\w-]+) -->$")

def process(path, problems):
    full = os.path.join(root, path)
    with open(full) as f:
        lines = f.read().split("\n")
    out, i, changed = [], 0, False
    while i < len(lines):
        m = MARK.match(lines[i])
        if not m:
            out.append(lines[i]); i += 1
            continue
        name = m.group(1)
        try:
            end = lines.index("<!-- /sample -->", i)
        except ValueError:
            problems.append("%s:%d: sample %s has no end marker" % (path, i + 1, name))
            out.append(lines[i]); i += 1
            continue
        body = lines[i + 1:end]
        fence = body[0] if body and body[0].startswith("```") else "```"
        old = body[1:-1] if body and body[0].startswith("```") else body
        if name not in SAMPLES:
            problems.append("%s:%d: unknown sample %s" % (path, i + 1, name))
            new = old
        else:
            new = run(name)
            if normalise(new) != normalise(old):
                if mode == "check":
                    import difflib
                    d = "\n".join(difflib.unified_diff(old, new, "in " + path,
                                                       "regenerated", lineterm=""))
                    problems.append("%s:%d: sample %s is stale "
                                    "(scripts/update-doc-samples.sh):\n%s"
                                    % (path, i + 1, name, d))
                changed = True
            else:
                new = old  # equal but for timings and ids: keep the text
        out += [lines[i], fence] + new + ["```", "<!-- /sample -->"]
        i = end + 1
    if mode == "update" and changed:
        with open(full, "w") as f:
            f.write("\n".join(out))
        print("updated", path)
    return out

# ---------------------------------------------------------- checks
def code_blocks(lines):
    """(line number, text) of every line inside a fenced block."""
    inside = False
    for n, l in enumerate(lines, 1):
        if l.startswith("```"):
            inside = not inside
            continue
        if inside:
            yield n, l

def source_line(rel, n):
    try:
        with open(os.path.join(root, rel)) as f:
            src = f.read().split("\n")
    except OSError:
        return None, None
    return (src[n - 1] if 0 < n <= len(src) else None), src

def enclosing_function(src, n):
    """The function whose definition precedes line n (C, top level)."""
    for k in range(n - 1, -1, -1):
        m = re.match(r"^[A-Za-z_][\w \*]*?\b(\w+)\(", src[k])
        if m and not src[k].rstrip().endswith(";"):
            return m.group(1)
    return None

REF = re.compile(r"((?:examples|src)/[\w/]+\.[ch]):(\d+)")
ABS = re.compile(r"(^|[\s(\"'])(/(?:work|home|tmp|usr/src|root)/[^\s:]*\.[ch])")

def check_refs(path, lines, problems):
    prev = None
    for n, l in code_blocks(lines):
        where = "%s:%d" % (path, n)
        if ABS.search(l):
            problems.append("%s: absolute path in a sample: %s" % (where, l.strip()))
        for m in REF.finditer(l):
            rel, ln = m.group(1), int(m.group(2))
            text, src = source_line(rel, ln)
            if text is None:
                problems.append("%s: %s:%d does not exist" % (where, rel, ln))
                continue
            before = l[:m.start()]
            ok, want = True, None
            if re.search(r"(made|created) at $|made at \S*$", before):
                want = "a line that makes an object"
                ok = re.search(r"leash_\w*(make|with_\w+|ticker_start|group_new|after)\w*\(", text)
            elif re.search(r"spawned at $", before):
                want = "a leash_go or leash_run"
                ok = re.search(r"leash_(group_)?go\w*\(|leash_run\(", text)
            elif re.search(r"releasing it in \w+ at $", before):
                want = "a leash_release"
                ok = re.search(r"leash_release|leash_close", text)
            elif re.match(r"^\s*$", before) and prev is not None:
                func = re.sub(r"\(\.\.\.\)$", "", prev.strip())
                if rel.startswith("examples/"):
                    want = "a line of %s" % func
                    ok = text.strip() and enclosing_function(src, ln) == func
                else:
                    want = "where %s parks, or a line of it" % func
                    ok = re.search(r"\b(sched_park|chan_block_forever)\(", text) \
                        or (text.strip() and enclosing_function(src, ln) == func)
            if not ok:
                problems.append("%s: %s:%d should be %s, is: %s"
                                % (where, rel, ln, want, text.strip()))
        prev = l

problems = []
for path in DOCS:
    lines = process(path, problems)
    check_refs(path, lines, problems)
for p in problems:
    print(p)
if mode == "check":
    if problems:
        print("%d problem(s); run scripts/update-doc-samples.sh" % len(problems))
        sys.exit(1)
    print("doc samples current")
PY
