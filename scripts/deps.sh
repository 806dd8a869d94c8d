#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages leash needs, by set:
#   build   build and install the library and the CLI (`make install`)
#   demo    build and run the examples (`make demo`): the build set
#   test    everything the test suite needs (`make test`, `make build`)
#   bench   the benchmarks against Go (`make bench`)
# Usage: scripts/deps.sh [SET...] (default: test). Idempotent and quiet when
# everything is present; a non-root user is told the one command to run.
# Debian packages only.
set -euo pipefail

BUILD=(cmake make ninja-build gcc pkg-config libc6-dev libdw-dev zlib1g-dev)
DEMO=("${BUILD[@]}")
TEST=(
  "${BUILD[@]}" g++ clang libcriterion-dev
  golang-go valgrind python3 curl tmux prometheus gdb groff-base
  libclang-rt-14-dev chromium
)
BENCH=("${BUILD[@]}" golang-go python3)

sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(test)
PACKAGES=()
for s in "${sets[@]}"; do
  case "$s" in
    build) PACKAGES+=("${BUILD[@]}") ;;
    demo)  PACKAGES+=("${DEMO[@]}") ;;
    test)  PACKAGES+=("${TEST[@]}") ;;
    bench) PACKAGES+=("${BENCH[@]}") ;;
    -l|--list) ;;
    *) echo "deps.sh: unknown set '$s' (build, demo, test, bench)" >&2; exit 2 ;;
  esac
done
# unique, in order
mapfile -t PACKAGES < <(printf '%s\n' "${PACKAGES[@]}" | awk '!seen[$0]++')

# `deps.sh --list SET...` prints the packages of the sets, one a line.
if [ "${1:-}" = --list ] || [ "${1:-}" = -l ]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

# installed PKG[:ARCH]
. "$(dirname "${BASH_SOURCE[0]}")/dpkg-installed.sh"

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps.sh: dpkg-query not found; this script supports Debian/Ubuntu only; needed (${sets[*]}): ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages (${sets[*]}); run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
  installed "$p" || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
  echo "deps.sh: failed to install: ${still[*]}" >&2
  exit 1
fi
