# SPDX-License-Identifier: MIT
# Sourced by deps.sh and deps-aarch64.sh: installed PKG[:ARCH] tells
# whether a Debian package is installed, for the native architecture (or
# as an architecture-independent one) unless the name gives one. With
# multiarch (make test-aarch64 adds arm64), dpkg-query prints a line per
# architecture for a plain name; comparing its whole output with one
# status made every package with an arm64 twin look missing.
DPKG_NATIVE_ARCH="$(dpkg --print-architecture 2>/dev/null || echo unknown)"

installed() {
  local want="${DPKG_NATIVE_ARCH}"
  case "$1" in *:*) want="${1##*:}" ;; esac
  dpkg-query -W -f='${Architecture} ${Status}\n' "$1" 2>/dev/null |
    awk -v a="$want" '($1 == a || $1 == "all") &&
                      $2 == "install" && $3 == "ok" && $4 == "installed" {f = 1}
                      END {exit !f}'
}
