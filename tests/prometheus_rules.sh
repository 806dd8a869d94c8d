#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/prometheus_rules.sh — CTest prometheus_rules: checks
# contrib/prometheus/leash-rules.yml (promtool check rules) and runs its
# unit tests (promtool test rules leash-rules.test.yml). Exits 77 (CTest:
# skipped) when promtool is not installed (Debian: prometheus).
set -euo pipefail
dir="$(cd "$(dirname "$0")/../contrib/prometheus" && pwd)"
if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool not found (Debian: prometheus): skipping the rules' tests"
    exit 77
fi
cd "$dir"
promtool check rules leash-rules.yml
promtool test rules leash-rules.test.yml
