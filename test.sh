#!/usr/bin/env bash
# The test command: installs dependencies (Debian packages, pinned npm packages), builds with
# Ninja into ./build, and runs every test through CTest (extra arguments go to that ctest). Then,
# unless FOBS_QUICK=1, the same code under the sanitizers and the fuzzers:
#   asan  unit + integration suites built with ASan+UBSan in build-asan
#   tsan  the pipeline / gate / memory-transport tests built with TSan in build-tsan
#   fuzz  every libFuzzer target in tests/fuzz for FOBS_FUZZ_SECONDS (20) s each, in build-fuzz
# Any sanitizer finding aborts the process under test, so its test fails and so does this script.
# Each phase prints its CTest summary line and how long it took.
set -euo pipefail
cd "$(dirname "$0")"

./scripts/install-deps.sh

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
summaries=()
phase_start=0
start_phase() {
  phase_start=$SECONDS
  echo "=== test.sh: $1"
}
# end_phase NAME LOG [PATTERN]: records the phase's time and its summary line (the last line of
# LOG matching PATTERN, by default CTest's "N% tests passed, M tests failed out of K").
end_phase() {
  local line
  line=$(grep -E "${3:-tests passed|tests failed}" "$2" | tail -1 || true)
  local t=$((SECONDS - phase_start))
  summaries+=("$(printf '%-5s %3dm%02ds  %s' "$1" $((t / 60)) $((t % 60)) "$line")")
  echo "=== test.sh: $1 done in $((t / 60))m$((t % 60))s${line:+: $line}"
}
print_summaries() {
  echo "=== test.sh summary"
  printf '  %s\n' "${summaries[@]}"
}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# --- main: the ordinary build and every test --------------------------------------------------
start_phase main
build_dir=${FOBS_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${FOBS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir"

if [[ -f tests/node/package-lock.json ]]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

ctest --test-dir "$build_dir" --output-on-failure -j "${FOBS_TEST_JOBS:-2}" "$@" 2>&1 | tee "$logs/main.log"
end_phase main "$logs/main.log"

if [[ ${FOBS_QUICK:-0} == 1 ]]; then
  echo "=== test.sh: FOBS_QUICK=1: sanitizer and fuzz phases skipped"
  print_summaries
  exit 0
fi

# Findings stop the process (UBSan is also built with -fno-sanitize-recover); the observer
# processes the tests start inherit these.
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# --- asan: unit + integration suites under AddressSanitizer + UndefinedBehaviorSanitizer --------
start_phase asan
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DFOBS_SANITIZE=address -DFOBS_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan
ctest --test-dir build-asan --output-on-failure -j "${FOBS_TEST_JOBS:-2}" -L 'unit|integration' \
  2>&1 | tee "$logs/asan.log"
end_phase asan "$logs/asan.log"

# --- tsan: the threaded core (pipeline stages and their gate, the memory transport) -------------
start_phase tsan
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DFOBS_SANITIZE=thread -DFOBS_BUILD_BENCH=OFF >/dev/null
cmake --build build-tsan --target test_pipeline_memory test_memory_transport
ctest --test-dir build-tsan --output-on-failure -j "${FOBS_TEST_JOBS:-2}" \
  -R '^(test_pipeline_memory$|MemoryTransport)' 2>&1 | tee "$logs/tsan.log"
end_phase tsan "$logs/tsan.log"

# --- fuzz: each target for a short fixed time on its seed corpus --------------------------------
start_phase fuzz
tests/fuzz/run.sh "${FOBS_FUZZ_SECONDS:-20}" 2>&1 | tee "$logs/fuzz.log"
echo "$(grep -c '^ok ' "$logs/fuzz.log") fuzz targets ran ${FOBS_FUZZ_SECONDS:-20} s each, 0 findings" >>"$logs/fuzz.log"
end_phase fuzz "$logs/fuzz.log" "fuzz targets ran"
print_summaries
