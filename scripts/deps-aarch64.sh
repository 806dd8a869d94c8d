#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what `make test-aarch64` needs to cross-build leash for aarch64
# Linux and run it under qemu-user, from Debian's packages only.
# Idempotent and quiet when everything is present.
#
# Tests start helper programs and examples as child processes; under
# qemu-user those are aarch64 executables too, so the kernel must know to
# run them through qemu: binfmt_misc, registered by qemu-user-binfmt.
#
# Most arm64 libraries come through Debian multiarch (arm64 packages beside
# the amd64 ones). Criterion cannot: its arm64 package depends on
# libnanomsg5, which is not Multi-Arch: same, so apt would remove the amd64
# Criterion the normal build needs. Criterion and nanomsg are therefore
# downloaded (apt-get download) and unpacked into a private prefix,
# $LEASH_AARCH64_PREFIX (default /opt/leash-aarch64), that the toolchain
# file (cmake/aarch64-linux-gnu.cmake) points the build and qemu at.
set -euo pipefail

PREFIX="${LEASH_AARCH64_PREFIX:-/opt/leash-aarch64}"

# Host tools and the arm64 libraries that co-install with their amd64
# twins (all Multi-Arch: same). libgit2 and libffi are Criterion's
# run-time dependencies; the C library is also qemu's loader.
PACKAGES=(
  cmake make ninja-build pkg-config
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
  qemu-user-binfmt binfmt-support
  libc6:arm64 zlib1g-dev:arm64 libdw-dev:arm64
  libgit2-1.5:arm64 libffi8:arm64
)
# Unpacked into $PREFIX (versions must match each other: one apt snapshot).
PRIVATE=(libcriterion3:arm64 libcriterion-dev:arm64 libnanomsg5:arm64)

# installed PKG[:ARCH]
. "$(dirname "${BASH_SOURCE[0]}")/dpkg-installed.sh"

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps-aarch64.sh: $1; run as root (or with sudo)" >&2
    exit 1
  fi
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps-aarch64.sh: dpkg-query not found; this script supports Debian only." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
updated=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  need_root "the arm64 architecture is not enabled (dpkg --add-architecture arm64)"
  echo "deps-aarch64.sh: enabling the arm64 architecture (multiarch)"
  dpkg --add-architecture arm64
  apt-get update -qq
  updated=1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
  need_root "missing packages: ${missing[*]}"
  echo "deps-aarch64.sh: installing ${missing[*]}"
  [ $updated -eq 1 ] || apt-get update -qq
  updated=1
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  for p in "${missing[@]}"; do
    installed "$p" || { echo "deps-aarch64.sh: failed to install $p" >&2; exit 1; }
  done
fi

pcdir="$PREFIX/usr/lib/aarch64-linux-gnu/pkgconfig"
if [ ! -f "$pcdir/criterion.pc" ] || [ ! -e "$PREFIX/usr/lib/aarch64-linux-gnu/libnanomsg.so.5" ]; then
  need_root "Criterion for arm64 is not unpacked in $PREFIX"
  [ $updated -eq 1 ] || apt-get update -qq
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "deps-aarch64.sh: unpacking ${PRIVATE[*]} into $PREFIX"
  # apt-get download runs as the _apt user: let it write there.
  chmod 777 "$tmp"
  (cd "$tmp" && apt-get download -qq "${PRIVATE[@]}")
  mkdir -p "$PREFIX"
  for deb in "$tmp"/*.deb; do
    dpkg-deb -x "$deb" "$PREFIX"
  done
  # A criterion.pc for this prefix. Requires.private/Libs.private name the
  # static closure (boxfort, nanopb, ...), which a shared link never needs
  # and which are not installed for arm64.
  sed -e "s|^prefix=.*|prefix=$PREFIX/usr|" \
      -e '/^Requires.private:/d' -e '/^Libs.private:/d' \
      "$pcdir/criterion.pc" > "$tmp/criterion.pc"
  mv "$tmp/criterion.pc" "$pcdir/criterion.pc"
fi

# binfmt_misc: the package registers qemu-aarch64 only where a service
# manager runs; do it here otherwise (update-binfmts mounts binfmt_misc).
binfmt=/proc/sys/fs/binfmt_misc/qemu-aarch64
if [ "$(head -n1 "$binfmt" 2>/dev/null)" != enabled ]; then
  need_root "qemu-aarch64 is not registered with binfmt_misc"
  echo "deps-aarch64.sh: registering qemu-aarch64 with binfmt_misc"
  update-binfmts --enable qemu-aarch64 || true
  if [ "$(head -n1 "$binfmt" 2>/dev/null)" != enabled ]; then
    echo "deps-aarch64.sh: could not register qemu-aarch64 with binfmt_misc" \
         "(tests that start child programs need it)" >&2
    exit 1
  fi
fi
