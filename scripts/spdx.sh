#!/usr/bin/env bash
# Puts the licence line `SPDX-License-Identifier: MIT` first in every source
# file of the repository (after a #! line), in the file's comment syntax:
#   /* ... */  .c .h .S (and .c.in/.h.in)      // ...  .cpp .go
#   # ...      .py .sh .cmake .in CMakeLists.txt Makefile
# Files: those git tracks, plus new ones it does not ignore (every file
# under the tree but build*/ outside a git checkout). Idempotent.
#
#   scripts/spdx.sh           add the line where it is missing
#   scripts/spdx.sh --check   list the files without it; exit 1 if any
set -euo pipefail

ID="SPDX-License-Identifier: MIT"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: scripts/spdx.sh [--check]" >&2; exit 2 ;;
esac

files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard
  else
    find . \( -path ./.git -o -path './build*' \) -prune -o -type f -print0 | sed -z 's|^\./||'
  fi
}

# comment FILE: sets $line to the licence line in FILE's syntax, or to
# nothing if FILE is not a source file. (No command substitution and no
# pipes in the loop: a fork costs milliseconds on a VM, for each file.)
comment() {
  case "$1" in
    *.c.in|*.h.in|*.c|*.h|*.S) line="/* $ID */" ;;
    *.cpp|*.go) line="// $ID" ;;
    *.py|*.sh|*.cmake|*.in|CMakeLists.txt|*/CMakeLists.txt|Makefile|*/Makefile) line="# $ID" ;;
    *) line= ;;
  esac
}

# has_id FILE: whether one of FILE's first 3 lines carries the licence.
has_id() {
  local l n=0
  while [ $n -lt 3 ] && { IFS= read -r l || [ -n "$l" ]; }; do
    case "$l" in *SPDX-License-Identifier:*) return 0 ;; esac
    n=$((n + 1))
  done <"$1"
  return 1
}

missing=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue # tracked but deleted
  comment "$f"
  [ -n "$line" ] || continue
  has_id "$f" && continue
  if [ "$check" = 1 ]; then
    echo "$f"
    missing=$((missing + 1))
    continue
  fi
  tmp=$(mktemp)
  if head -n 1 "$f" | grep -q '^#!'; then
    { head -n 1 "$f"; echo "$line"; tail -n +2 "$f"; } >"$tmp"
  else
    { echo "$line"; cat "$f"; } >"$tmp"
  fi
  cat "$tmp" >"$f" # keeps the file's mode
  rm -f "$tmp"
  echo "spdx: $f"
done < <(files)

if [ "$check" = 1 ] && [ "$missing" -gt 0 ]; then
  echo "spdx.sh: $missing file(s) above lack the line \"$ID\"; run scripts/spdx.sh" >&2
  exit 1
fi
exit 0
