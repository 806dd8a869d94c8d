#!/usr/bin/env bash
# Installs the Debian packages leash needs to build, test and benchmark.
# Idempotent and quiet when everything is present. Debian packages only.
set -euo pipefail

PACKAGES=(
  cmake make ninja-build gcc g++ clang libc6-dev pkg-config
  libcriterion-dev libdw-dev zlib1g-dev
  golang-go valgrind python3 curl tmux prometheus gdb groff-base
  libclang-rt-14-dev
)

# installed PKG[:ARCH]
. "$(dirname "${BASH_SOURCE[0]}")/dpkg-installed.sh"

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps.sh: dpkg-query not found; this script supports Debian/Ubuntu only." >&2
  echo "deps.sh: needed packages: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}" >&2
  echo "deps.sh: run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
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
