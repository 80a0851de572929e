#!/usr/bin/env bash
# The test command: installs dependencies (Debian packages, pinned npm packages), builds with
# Ninja into ./build, and runs every test through CTest.
set -euo pipefail
cd "$(dirname "$0")"

./scripts/install-deps.sh

build_dir=${FOBS_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${FOBS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir"

if [[ -f tests/node/package-lock.json ]]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

ctest --test-dir "$build_dir" --output-on-failure -j "${FOBS_TEST_JOBS:-2}" "$@"
