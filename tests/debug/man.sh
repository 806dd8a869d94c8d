#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/debug/man.sh GROFF CLI PAGE... -- test_man: every man page renders
# without a warning (groff -man -ww), and each is what scripts/gen-man.py
# makes from its source today (include/leash.h; the CLI's --help for
# leash.1), so the pages cannot drift from the header or the CLI.
set -u
GROFF=$1 CLI=$2
shift 2
st=0
for page in "$@"; do
    out=$(LC_ALL=C.UTF-8 "$GROFF" -man -Tutf8 -ww -z "$page" 2>&1)
    if [ -n "$out" ]; then
        echo "$page:"; echo "$out"; st=1
    fi
done
here=$(cd "$(dirname "$0")/../.." && pwd)
python3 "$here/scripts/gen-man.py" --check "$CLI" || st=1
[ $st -eq 0 ] && echo "ok: $# man page(s) render cleanly and are current"
exit $st
