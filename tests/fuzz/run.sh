#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [target...]
# Builds the libFuzzer targets (clang, FOBS_FUZZ=ON) in ${FOBS_FUZZ_BUILD_DIR:-build-fuzz} when
# needed, then runs each target (default: every tests/fuzz/fuzz_*.cpp) for SECONDS on a copy of
# its seed corpus (tests/fuzz/corpus/<target>/, copied to a temp dir so runs never grow the
# repository), with tests/fuzz/dict/<target>.dict when there is one. Exits non-zero when any
# target finds a crash, a property violation, a sanitizer finding, a leak, a timeout or an OOM,
# and prints the reproducer's path (rerun it with: <build>/bin/<target> <reproducer>).
# FOBS_FUZZ_JOBS=N runs N targets at a time (default 1); FOBS_FUZZ_NO_BUILD=1 skips the build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: tests/fuzz/run.sh SECONDS [target...]" >&2
  exit 2
fi
seconds=$1
shift
build_dir=${FOBS_FUZZ_BUILD_DIR:-build-fuzz}
[[ $build_dir == /* ]] || build_dir="$root/$build_dir"
jobs=${FOBS_FUZZ_JOBS:-1}

targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in "$here"/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

if [[ -z ${FOBS_FUZZ_NO_BUILD:-} ]]; then
  if [[ ! -f $build_dir/build.ninja ]]; then
    launcher=()
    if command -v ccache >/dev/null 2>&1; then
      launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
    fi
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" \
      -DFOBS_FUZZ=ON -DFOBS_BUILD_TESTS=OFF -DFOBS_BUILD_BENCH=OFF >/dev/null
  fi
  cmake --build "$build_dir" --target "${targets[@]}"
fi

artifacts="$build_dir/fuzz-artifacts"
logs="$build_dir/fuzz-logs"
mkdir -p "$artifacts" "$logs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs one target; prints one summary line; returns non-zero on a finding.
run_one() {
  local t=$1 bin="$build_dir/bin/$1"
  local corpus="$work/$t" log="$logs/$t.log" dict=()
  mkdir -p "$corpus" "$artifacts/$t"
  if [[ -d $here/corpus/$t ]]; then cp -R "$here/corpus/$t/." "$corpus/"; fi
  [[ -f $here/dict/$t.dict ]] && dict=(-dict="$here/dict/$t.dict")
  local rc=0
  # -timeout: one input taking 10 s is a finding (hang); -rss_limit_mb: a memory blow-up is one.
  ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$t/" "${dict[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  local runs execs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  execs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  if ((rc != 0)); then
    local repro
    repro=$(grep -o "Test unit written to .*" "$log" | tail -1 | sed 's/Test unit written to //')
    echo "FAIL $t after ${runs:-?} runs (exit $rc); reproducer: ${repro:-none written}; log: $log"
    grep -E "property violated|ERROR: |SUMMARY: |runtime error" "$log" | head -5 | sed 's/^/    /'
    return 1
  fi
  echo "ok   $t: ${runs:-?} runs in ${seconds} s (${execs:-?}/s), corpus $(ls "$corpus" | wc -l) inputs, 0 crashes"
}

failed=0
if ((jobs <= 1)); then
  for t in "${targets[@]}"; do run_one "$t" || failed=1; done
else
  pids=()
  for t in "${targets[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
    (run_one "$t" >"$work/$t.result" 2>&1) &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed=1
    cat "$work/${targets[$i]}.result"
  done
fi
exit $failed
