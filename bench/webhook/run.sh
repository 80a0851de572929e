#!/bin/sh
# Builds and runs the webhook benchmark three times (figures vary +-30 % on shared 2-core
# machines; compare modes within one run, never across runs).
#   bench/webhook/run.sh [build dir] [extra webhook_bench args...]
set -eu
build="${1:-build}"
[ $# -gt 0 ] && shift
cmake --build "$build" --target webhook_bench webhook_action -j2 >/dev/null
for i in 1 2 3; do
  echo "--- run $i"
  "$build/bin/webhook_bench" "$@"
done
