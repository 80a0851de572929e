#!/usr/bin/env bash
# CTest: the alert rules load cleanly and their unit tests pass (each alert fires on a series
# that should page and stays quiet on ones that should not). Exit 77 = skipped.
set -euo pipefail
rules_dir="$1/deploy/prometheus"
if ! command -v promtool >/dev/null 2>&1; then
  echo "SKIPPED: promtool not found (Debian package 'prometheus', see scripts/install-deps.sh)"
  exit 77
fi
promtool check rules "$rules_dir/fraiseql-observer-rules.yml"
# promtool resolves rule_files relative to the test file.
promtool test rules "$rules_dir/fraiseql-observer-rules.test.yml"
