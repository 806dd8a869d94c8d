#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tests of leash as its users get it: a fresh build with build dependencies
# only, installed into a temporary prefix, and programs built against it.
#
#   run.sh setup  SRC WORK   configure SRC into WORK/build with the default
#                            options and without Criterion in sight, build,
#                            install into WORK/prefix, check what is there
#   run.sh frames SRC WORK   a user's -O2 program (pkg-config and
#                            find_package) keeps every frame in its leak stack
#   run.sh abi    SRC WORK   only leash_* exported (libleash.so and .a);
#                            a program defining S, timer_add, futex_wait...
#                            links against both and runs; SONAME
#   run.sh tsan   SRC WORK   a user's -fsanitize=thread program built through
#                            pkg-config leash-tsan (libleash-tsan.a) passes
#                            values between coroutines on 2 workers over
#                            channels: no race reported; the same program
#                            against the plain libleash.a must get a report
#   run.sh asan   SRC WORK   the same program through leash-asan runs clean
#
# Environment: CC (compiler for every build), CMAKE_GENERATOR.
set -euo pipefail

step=$1 SRC=$2 WORK=$3
PREFIX=$WORK/prefix
LIB=$PREFIX/lib
CC=${CC:-cc}
fail() { echo "FAIL: $*" >&2; exit 1; }
jobs=$(nproc 2>/dev/null || echo 2); [ "$jobs" -gt 4 ] && jobs=4

case "$step" in
setup)
  rm -rf "$WORK"
  mkdir -p "$WORK/pc"
  # pkg-config sees every .pc file of the system but Criterion's: with the
  # tests off by default, configuring must not look for it.
  IFS=: read -ra pcdirs <<<"$(pkg-config --variable pc_path pkg-config)"
  for d in "${pcdirs[@]}"; do
    for f in "$d"/*.pc; do
      [ -e "$f" ] || continue
      case "$(basename "$f")" in criterion*) continue ;; esac
      [ -e "$WORK/pc/$(basename "$f")" ] || ln -s "$f" "$WORK/pc/"
    done
  done
  PKG_CONFIG_LIBDIR=$WORK/pc PKG_CONFIG_PATH= \
    cmake -S "$SRC" -B "$WORK/build" -DCMAKE_C_COMPILER="$CC" \
          -DLEASH_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_LIBDIR=lib >"$WORK/configure.log" 2>&1 \
    || { cat "$WORK/configure.log"; fail "configuring with build dependencies only"; }
  grep -q '^LEASH_BUILD_TESTS:BOOL=OFF' "$WORK/build/CMakeCache.txt" || fail "tests on by default"
  grep -q '^LEASH_BUILD_BENCH:BOOL=OFF' "$WORK/build/CMakeCache.txt" || fail "benchmarks on by default"
  grep -q '^LEASH_BUILD_FUZZ:BOOL=OFF' "$WORK/build/CMakeCache.txt" || fail "fuzz targets on by default"
  cmake --build "$WORK/build" -j "$jobs" >"$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log"; fail "build"; }
  cmake --install "$WORK/build" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 \
    || { cat "$WORK/install.log"; fail "install"; }
  # Exactly the library, its header, pkg-config and CMake package files,
  # and the CLI.
  got=$(cd "$PREFIX" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort)
  echo "installed:"; sed 's/^/  /' <<<"$got"
  bad=$(grep -vxE 'include/leash\.h|lib/libleash(-asan|-tsan)?\.a|lib/libleash\.so(\.[0-9]+)*|lib/pkgconfig/leash(-asan|-tsan)?\.pc|lib/cmake/leash/leash(Config|ConfigVersion|Targets|Targets-[a-z]+)\.cmake|bin/leash|share/man/man[0-9]/[a-z_.]+\.[0-9]|share/leash/(leash-gdb\.py|leash\.supp)' <<<"$got" || true)
  [ -z "$bad" ] || fail "installed beyond the library, header, package files and CLI: $bad"
  for f in include/leash.h lib/libleash.a lib/libleash.so lib/pkgconfig/leash.pc \
           lib/cmake/leash/leashConfig.cmake lib/cmake/leash/leashTargets.cmake bin/leash; do
    [ -e "$PREFIX/$f" ] || fail "$f not installed"
  done
  echo "setup: ok"
  ;;

frames)
  export PKG_CONFIG_PATH=$LIB/pkgconfig
  cflags=$(pkg-config --cflags leash)
  echo "leash.pc Cflags: $cflags"
  grep -q -- '-fno-omit-frame-pointer' <<<"$cflags" || fail "leash.pc Cflags lack -fno-omit-frame-pointer"
  grep -q '^Requires.private:.*libdw' "$LIB/pkgconfig/leash.pc" \
    || ! pkg-config --exists libdw || fail "leash.pc: no Requires.private: libdw"
  grep -q -- '-fno-omit-frame-pointer' "$LIB/cmake/leash/leashTargets.cmake" \
    || fail "INTERFACE_COMPILE_OPTIONS lack -fno-omit-frame-pointer"
  mkdir -p "$WORK/frames"
  cd "$WORK/frames"
  src=$SRC/tests/install/consumer/leakstack.c
  # shellcheck disable=SC2046
  "$CC" -O2 -o pc_shared "$src" $cflags $(pkg-config --libs leash) -Wl,-rpath,"$LIB"
  # shellcheck disable=SC2046
  "$CC" -O2 -o pc_static "$src" $cflags \
    $(pkg-config --static --libs leash | sed "s|-lleash\b|$LIB/libleash.a|")
  cmake -S "$SRC/tests/install/consumer" -B cm -DCMAKE_C_COMPILER="$CC" \
        -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS_RELEASE=-O2 >cm.log 2>&1 || { cat cm.log; fail "find_package consumer: configure"; }
  cmake --build cm -j "$jobs" --target leakstack_shared leakstack_static >>cm.log 2>&1 \
    || { cat cm.log; fail "find_package consumer: build"; }
  for exe in pc_shared pc_static cm/leakstack_shared cm/leakstack_static; do
    rc=0
    LEASH_LEAKCHECK=1 LEASH_PROCS=2 ./"$exe" >"$exe.out" 2>&1 || rc=$?
    [ "$rc" -eq 23 ] || { cat "$exe.out"; fail "$exe: exit $rc, expected 23 (a leak)"; }
    for fn in consumer_b consumer_a consumer_worker; do
      grep -qE "^[[:space:]]+$fn\$" "$exe.out" || { cat "$exe.out"; fail "$exe: $fn missing from the leak stack"; }
    done
    echo "$exe: consumer_b, consumer_a, consumer_worker all in its leak stack"
  done
  echo "frames: ok"
  ;;

abi)
  so=$(readlink -f "$LIB/libleash.so")
  soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  ver=$(sed -n 's/^#define LEASH_VERSION_\(MAJOR\|MINOR\) \([0-9]*\).*/\2/p' "$SRC/include/leash.h" | paste -sd.)
  case "$ver" in 0.*) want=libleash.so.$ver ;; *) want=libleash.so.${ver%%.*} ;; esac
  [ "$soname" = "$want" ] || fail "SONAME $soname, expected $want"
  echo "SONAME $soname"
  extra=$(nm -D --defined-only "$so" | awk '{print $NF}' | grep -v '^leash_' || true)
  [ -z "$extra" ] || fail "libleash.so exports non-leash symbols: $(echo $extra)"
  extra=$(nm -g --defined-only "$LIB/libleash.a" | awk 'NF == 3 {print $3}' | grep -v '^leash_' || true)
  [ -z "$extra" ] || fail "libleash.a has global non-leash symbols: $(echo $extra | head -c 600)"
  echo "exports: leash_* only ($(nm -D --defined-only "$so" | wc -l) in libleash.so)"
  export PKG_CONFIG_PATH=$LIB/pkgconfig
  mkdir -p "$WORK/abi"
  cd "$WORK/abi"
  src=$SRC/tests/install/consumer/clash.c
  # shellcheck disable=SC2046
  "$CC" -O2 -o pc_shared "$src" $(pkg-config --cflags --libs leash) -Wl,-rpath,"$LIB" \
    || fail "a program defining S, timer_add, futex_wait... does not link with libleash.so"
  # shellcheck disable=SC2046
  "$CC" -O2 -o pc_static "$src" $(pkg-config --cflags leash) \
    $(pkg-config --static --libs leash | sed "s|-lleash\b|$LIB/libleash.a|") \
    || fail "a program defining S, timer_add, futex_wait... does not link with libleash.a"
  cmake -S "$SRC/tests/install/consumer" -B cm -DCMAKE_C_COMPILER="$CC" \
        -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release >cm.log 2>&1 \
    || { cat cm.log; fail "find_package consumer: configure"; }
  cmake --build cm -j "$jobs" --target clash_shared clash_static >>cm.log 2>&1 \
    || { cat cm.log; fail "find_package consumer: clash_* do not link"; }
  for exe in pc_shared pc_static cm/clash_shared cm/clash_static; do
    out=$(./"$exe" 2>&1) || fail "$exe: $out"
    echo "$exe: $out"
  done
  echo "abi: ok"
  ;;
tsan|asan)
  v=$step
  for f in lib/libleash-$v.a lib/pkgconfig/leash-$v.pc; do
    [ -e "$PREFIX/$f" ] || fail "$f not installed (LEASH_SANITIZER_VARIANTS)"
  done
  export PKG_CONFIG_PATH=$LIB/pkgconfig
  if [ "$v" = tsan ]; then san=thread hook=__tsan_switch_to_fiber
  else san=address hook=__sanitizer_start_switch_fiber; fi
  # (nm's output captured first: grep -q stops reading early, and nm's
  # SIGPIPE would fail the pipeline under pipefail.)
  syms=$(nm "$LIB/libleash-$v.a")
  grep -q "U $hook\$" <<<"$syms" \
    || fail "libleash-$v.a does not call $hook (no fiber annotations)"
  # __lsan_is_turned_off: src/proc.c's weak hook for LSan (ASan only).
  extra=$(nm -g --defined-only "$LIB/libleash-$v.a" | awk 'NF == 3 {print $3}' \
          | grep -vE '^(leash_|__lsan_is_turned_off$)' || true)
  [ -z "$extra" ] || fail "libleash-$v.a has global non-leash symbols: $(echo $extra | head -c 600)"
  for what in cflags libs; do
    flags=$(pkg-config --$what leash-$v)
    echo "leash-$v.pc $what: $flags"
    for want in -fsanitize=$san -fno-omit-frame-pointer; do
      grep -q -- "$want" <<<"$flags" || fail "leash-$v.pc: --$what lacks $want"
    done
  done
  mkdir -p "$WORK/$v"
  cd "$WORK/$v"
  src=$SRC/tests/install/consumer/chanpass.c
  # What a user types: nothing but the pkg-config line.
  # shellcheck disable=SC2046
  "$CC" -O1 -g -o variant "$src" $(pkg-config --cflags --libs leash-$v) \
    || fail "a -fsanitize=$san program does not build through leash-$v.pc"
  # The TSan runtime of gcc 12 / clang 14 needs ASLR off (see Makefile's NOASLR).
  run=()
  if setarch "$(uname -m)" -R true >/dev/null 2>&1; then run=(setarch "$(uname -m)" -R); fi
  export LEASH_PROCS=2 TSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=detect_leaks=0:detect_stack_use_after_return=0
  rc=0
  "${run[@]}" ./variant >variant.out 2>&1 || rc=$?
  cat variant.out
  [ "$rc" -eq 0 ] || fail "$v variant: exit $rc"
  ! grep -q 'Sanitizer' variant.out || fail "$v variant: sanitizer report"
  grep -q 'workers=2 ' variant.out || fail "$v variant: not on 2 workers"
  echo "libleash-$v.a: clean"
  if [ "$v" = tsan ]; then
    # The control: the plain libleash.a does not tell TSan about coroutine
    # switches nor its channels' synchronisation, so TSan reports races
    # (or dies) in the same program: this test can fail. A single run
    # reports in about 3 runs of 4 (the coroutines must have moved between
    # the 2 workers), so up to 10 runs until one does.
    # shellcheck disable=SC2046
    "$CC" -O1 -g -fsanitize=thread -o plain "$src" $(pkg-config --cflags leash) \
      $(pkg-config --static --libs leash | sed "s|-lleash\b|$LIB/libleash.a|") \
      || fail "a -fsanitize=thread program does not build against libleash.a"
    seen=
    for try in 1 2 3 4 5 6 7 8 9 10; do
      rc=0
      "${run[@]}" ./plain >plain.out 2>&1 || rc=$?
      if [ "$rc" -ne 0 ] || grep -q 'ThreadSanitizer' plain.out; then seen=$try; break; fi
    done
    [ -n "$seen" ] || { cat plain.out; fail "the control against the plain libleash.a reported no race in 10 runs"; }
    echo "control: plain libleash.a under TSan, run $seen: exit $rc, $(grep -m1 'ThreadSanitizer' plain.out || true)"
  fi
  echo "$v: ok"
  ;;
*) fail "unknown step $step" ;;
esac
