#!/usr/bin/env bash
# CTest: `systemd-analyze verify` accepts the unit without a single complaint (unknown keys and
# bad values only warn, so any output fails the test too). Exit 77 = skipped.
# Usage: check_systemd_unit.sh <source dir> <built fraiseql-observer binary>
set -euo pipefail
unit="$1/deploy/systemd/fraiseql-observer.service"
binary="$2"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIPPED: systemd-analyze not found (Debian package 'systemd', see scripts/install-deps.sh)"
  exit 77
fi
# verify also checks that ExecStart's program exists; here that is the build's binary instead of
# /usr/bin/fraiseql-observer. Everything else is the shipped file, byte for byte.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
grep -q '^ExecStart=/usr/bin/fraiseql-observer ' "$unit" || { echo "ExecStart does not run /usr/bin/fraiseql-observer"; exit 1; }
sed "s#^ExecStart=/usr/bin/fraiseql-observer #ExecStart=$binary #" "$unit" > "$work/fraiseql-observer.service"
cd "$work"
rc=0
out=$(systemd-analyze verify --man=no "$work/fraiseql-observer.service" 2>&1) || rc=$?
if [[ $rc -ne 0 || -n "$out" ]]; then
  echo "systemd-analyze verify (exit $rc):"
  echo "$out"
  exit 1
fi
# The stop timeout must leave the drain (shutdown_timeout_secs, 30 by default) time to finish.
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
[[ -n "$stop" && "$stop" -gt 30 ]] || { echo "TimeoutStopSec must be above 30 s, got '${stop}'"; exit 1; }
echo "systemd-analyze verify: clean"
if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
  systemd-analyze security --offline=true --no-pager "$work/fraiseql-observer.service" | tail -n 1
fi
