#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks the layering (docs/DESIGN-NOTES.md, "Layering"):
#
#   src/ (the core)  <  src/diag/ (the diagnostics)  <  tools/ (the CLI)
#
# with no arrow back up:
#   1. includes: no core file (src/*.[ch], src/arch/) includes a header of
#      src/diag/ or tools/; nothing under src/diag/ includes one of tools/;
#   2. calls (needs a build): the core's objects leave undefined no symbol
#      that only a diagnostics object defines, but observer_impl, the
#      table the core declares (src/observer.h) and the layer above
#      defines (src/diag/observer.c; src/observer_none.c without it);
#   3. the CLI (build/leash) holds the agent protocol, not the runtime.
#
#   scripts/layering.sh [BUILD_DIR]   (without BUILD_DIR: 1 only)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-}
fail=0
bad() { echo "layering: $*" >&2; fail=1; }

# 1. Includes.
diag_headers=$(cd src/diag && ls -- *.h)
tool_headers=$(cd tools/leash && ls -- *.h)
# Every "file: include" pair in one pass (a sed per file costs seconds).
includes() {
  awk '/^[[:space:]]*#[[:space:]]*include[[:space:]]*"/ {
         s = $0; sub(/^[^"]*"/, "", s); sub(/".*/, "", s)
         print FILENAME " " s
       }' "$@"
}
while read -r f inc; do
  name=${inc##*/}
  case $inc in
    diag/* | */diag/* | tools/* | */tools/*)
      bad "$f includes \"$inc\""; continue ;;
  esac
  for h in $diag_headers $tool_headers; do
    [ "$name" = "$h" ] && [ ! -e "src/$name" ] && bad "$f includes \"$inc\""
  done
done < <(includes src/*.c src/*.h src/arch/*)
while read -r f inc; do
  name=${inc##*/}
  for h in $tool_headers; do
    [ "$name" = "$h" ] && [ ! -e "src/diag/$name" ] && bad "$f includes \"$inc\""
  done
done < <(includes src/diag/*.c src/diag/*.h)

if [ -n "$build" ]; then
  objs=$build/CMakeFiles/leash_objects.dir/src
  [ -d "$objs" ] || { echo "layering: no objects in $objs" >&2; exit 1; }
  command -v nm >/dev/null || { echo "layering: nm not found" >&2; exit 1; }
  core=$(find "$objs" -name '*.o' -not -path '*/diag/*' | sort)
  diag=$(find "$objs/diag" -name '*.o' 2>/dev/null | sort || true)

  # 2. Calls: what the core needs that only the diagnostics define.
  if [ -n "$diag" ]; then
    # shellcheck disable=SC2086
    nm -g --defined-only $diag | awk 'NF == 3 { print $3 }' | sort -u \
      > "$build/layering-diag.txt"
    # shellcheck disable=SC2086
    nm -g --defined-only $core | awk 'NF == 3 { print $3 }' | sort -u \
      > "$build/layering-core.txt"
    # One nm for every object (a fork per object costs seconds on a VM):
    # "OBJECT: U SYMBOL" lines, each kept when only the diagnostics
    # define its symbol.
    # shellcheck disable=SC2086
    nm -A -u $core | awk -v objs="$objs/" '
      FILENAME != "-" && FNR == 1 { list++ }
      FILENAME != "-" { if (list == 1) diag[$0] = 1; else core[$0] = 1; next }
      {
        sym = $NF; obj = $0
        sub(/:.*/, "", obj)
        if (index(obj, objs) == 1) obj = substr(obj, length(objs) + 1)
        if ((sym in diag) && !(sym in core) && sym != "observer_impl")
          print obj ": " sym
      }' "$build/layering-diag.txt" "$build/layering-core.txt" - | sort -u \
      > "$build/layering-calls.txt"
    if [ -s "$build/layering-calls.txt" ]; then
      bad "the core calls the diagnostics:"
      sed 's/^/  /' "$build/layering-calls.txt" >&2
    fi
    grep -qx observer_impl "$build/layering-diag.txt" ||
      bad "src/diag/ does not define observer_impl"
  else
    # A build without diagnostics: observer_none.c stands in for them.
    [ -e "$objs/observer_none.c.o" ] ||
      bad "no diagnostics and no observer_none.c.o in $objs"
  fi

  # 3. The CLI: the agent protocol only, none of the runtime.
  if [ -x "$build/leash" ]; then
    nm "$build/leash" 2>/dev/null | awk '{ print $NF }' > "$build/layering-cli.txt" || true
    for sym in observer_impl sched_ensure_started leash_dump; do
      grep -qx "$sym" "$build/layering-cli.txt" &&
        bad "the CLI ($build/leash) links the runtime ($sym)"
    done
  fi
fi

[ $fail = 0 ] && echo "layering: ok${build:+ ($build)}"
exit $fail
