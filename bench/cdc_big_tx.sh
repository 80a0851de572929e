#!/usr/bin/env bash
# One big transaction through cdc mode (issue 13): does the observer's memory stay bounded
# whatever the transaction's size?
#
#   bench/cdc_big_tx.sh [--rows 1000000] [--build DIR] [--no-build]
#
# Starts its own nats-server -js and a throw-away PostgreSQL 15 cluster (wal_level = logical,
# fsync on) on free 127.0.0.1 ports under a temp dir, and `fraiseql-observer run --role
# publisher` with a pg_listen source in mode = "cdc" -> the nats transport (no action: this
# measures the source and the publish). Then ONE `INSERT … SELECT generate_series(1, ROWS)` (one
# transaction) into the same table as bench/run.sh's cdc section, and waits until the stream
# holds ROWS messages. Prints the time of the INSERT, the time from its commit to the last
# message stored, the observer's RSS sampled every 0.5 s and its peak (VmHWM) before and after.
# Every process it started is stopped by PID on success, failure or Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FOBS_BENCH_BUILD:-$root/build-bench}
rows=1000000
no_build=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows=$2; shift ;;
    --build) build=$(cd "$2" && pwd); shift ;;
    --no-build) no_build=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '[cdc-big-tx %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ "$no_build" = 0 ]; then
  if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
    log "configuring $build (Release)"
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFOBS_BUILD_TESTS=OFF >/dev/null
  fi
  log "building fraiseql-observer, plugins and e2e_bench in $build"
  cmake --build "$build" -j2 --target fraiseql-observer fobs_all_plugins e2e_bench >/dev/null
fi
obs="$build/bin/fraiseql-observer"
eb="$build/bin/e2e_bench"
pg_bin=${FOBS_PG_BIN:-/usr/lib/postgresql/15/bin}

work=$(mktemp -d "${TMPDIR:-/tmp}/fobs-cdc-big.XXXXXX")
chmod 755 "$work"
pids=()
pg_data="$work/pg/data"
pg_started=0
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_pid() { # SIGTERM, then SIGKILL after 10 s
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  [ -n "${sampler_pid:-}" ] && stop_pid "$sampler_pid"
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [ "$pg_started" = 1 ] && [ -f "$pg_data/postmaster.pid" ]; then
    local pg_pid
    pg_pid=$(head -1 "$pg_data/postmaster.pid")
    kill -INT "$pg_pid" 2>/dev/null || true # "fast" shutdown
    for p in $(seq 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pg_pid" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ]; then log "failed (exit $rc); logs kept in $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start() { # start NAME CMD...: in its own session, output in $work/NAME.log; PID in NAME_pid
  local name=$1; shift
  setsid "$@" >"$work/$name.log" 2>&1 &
  pids+=("$!")
  eval "${name}_pid=$!"
}
wait_until() { # wait_until SECONDS WHAT PID CMD...
  local secs=$1 what=$2 pid=$3 i; shift 3
  for i in $(seq $((secs * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { log "$what: process $pid exited; see $work"; return 1; }
    sleep 0.1
  done
  log "timed out waiting for $what"; return 1
}
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

nats_port=$("$eb" free-port); nats_mon=$("$eb" free-port)
mkdir -p "$work/nats"
start nats nats-server -js -a 127.0.0.1 -p "$nats_port" -m "$nats_mon" -sd "$work/nats"
wait_until 20 nats-server "$nats_pid" curl -sf "http://127.0.0.1:$nats_mon/healthz"

pg_port=$("$eb" free-port)
mkdir -p "$pg_data" "$work/pg/run"
chmod 700 "$pg_data"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work/pg"
as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --no-instructions >"$work/initdb.log" 2>&1
pg_started=1
as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg/run/server.log" -w -t 60 \
  -o "-p $pg_port -k $work/pg/run -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_wal_size=4GB" start >/dev/null
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
psql_ -d postgres -c "CREATE DATABASE bench" >/dev/null
# The same columns as bench/schema.sql's order tables (a ~300-byte event each).
psql_ -d bench -c "CREATE TABLE bench_cdc (
    id bigserial PRIMARY KEY, customer text NOT NULL, status text NOT NULL, total numeric(12, 2) NOT NULL,
    note text, created_at timestamptz NOT NULL DEFAULT clock_timestamp())" >/dev/null
conninfo="host=127.0.0.1 port=$pg_port user=postgres dbname=bench"

metrics_port=$("$eb" free-port)
cat >"$work/observer.toml" <<EOF
[observer]
metrics_listen = "127.0.0.1:$metrics_port"
log_level = "warn"

[sources.db]
plugin   = "pg_listen"
conninfo = "$conninfo"
mode     = "cdc"
tables   = ["public.bench_cdc"]

[transport]
transport = "nats"

[transport.nats]
url            = "nats://127.0.0.1:$nats_port"
stream_name    = "bench_big_tx"
subject_prefix = "bench.big"
consumer_name  = "bench_big_tx"
dlq_prefix     = "bench.dlq.big"

[[pipelines]]
name   = "big"
source = "db"
EOF
start observer "$obs" run -c "$work/observer.toml" --role publisher
wait_until 30 "observer readiness" "$observer_pid" curl -sf "http://127.0.0.1:$metrics_port/readyz"
hwm_ready=$(status_kib "$observer_pid" VmHWM)

stored() { # messages in the stream (nats-server monitoring)
  curl -sf "http://127.0.0.1:$nats_mon/jsz?streams=true" |
    jq '[.account_details[]?.stream_detail[]? | select(.name == "bench_big_tx") | .state.messages] | add // 0'
}
# RSS every 0.5 s, for the curve in the docs.
( while kill -0 "$observer_pid" 2>/dev/null; do
    echo "$(date +%s.%N) $(status_kib "$observer_pid" VmRSS)"; sleep 0.5
  done ) >"$work/rss.txt" 2>/dev/null &
sampler_pid=$!

log "one INSERT of $rows rows (one transaction)"
t0=$(date +%s.%N)
psql_ -d bench -c "INSERT INTO bench_cdc (customer, status, total, note) SELECT 'customer-' || g, 'pending',
    (g % 997) * 1.25, 'fraiseql-observer bench' FROM generate_series(1, $rows) AS g" >/dev/null
t_commit=$(date +%s.%N)
commit_lsn=$(psql_ -d bench -Atc "SELECT pg_current_wal_lsn()")
log "committed after $(echo "$t_commit - $t0" | bc) s; waiting for $rows messages on the stream"
first_seen=""
n=0
while :; do
  n=$(stored)
  [ -z "$first_seen" ] && [ "$n" -gt 0 ] && first_seen=$(date +%s.%N)
  [ "$n" -ge "$rows" ] && break
  kill -0 "$observer_pid" 2>/dev/null || { log "the observer exited; see $work/observer.log"; exit 1; }
  if [ "$(echo "$(date +%s.%N) - $t_commit > 900" | bc)" = 1 ]; then log "timed out at $n messages"; exit 1; fi
  sleep 0.2
done
t_end=$(date +%s.%N)
hwm_end=$(status_kib "$observer_pid" VmHWM)
# The slot moves past the transaction once every event was confirmed by JetStream.
slot_passed() {
  [ "$(psql_ -d bench -Atc "SELECT confirmed_flush_lsn >= '$commit_lsn' FROM pg_replication_slots WHERE slot_name = 'fraiseql_observer_db'")" = t ]
}
wait_until 60 "the slot's confirmed_flush_lsn to pass the transaction" "$observer_pid" slot_passed
stop_pid "$sampler_pid"; sampler_pid=""
rss_max=$(awk '$2 > m {m = $2} END {print m + 0}' "$work/rss.txt")
wal_bytes=$(psql_ -d bench -Atc "SELECT pg_size_pretty(pg_wal_lsn_diff('$commit_lsn', '0/0'))")

echo
echo "cdc mode, one transaction of $rows rows -> nats ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ))"
printf '  INSERT + COMMIT                        %8.1f s\n' "$(echo "$t_commit - $t0" | bc)"
printf '  commit -> first message on the stream  %8.1f s   (PostgreSQL decodes the whole transaction first)\n' "$(echo "$first_seen - $t_commit" | bc)"
printf '  commit -> last message on the stream   %8.1f s   (%.0f events/s from the first message)\n' \
  "$(echo "$t_end - $t_commit" | bc)" "$(echo "$rows / ($t_end - $first_seen)" | bc -l)"
printf '  observer peak RSS (VmHWM)              %8.1f MiB (%.1f MiB when ready, before the INSERT)\n' \
  "$(echo "$hwm_end / 1024" | bc -l)" "$(echo "$hwm_ready / 1024" | bc -l)"
printf '  observer RSS, max of 0.5 s samples     %8.1f MiB\n' "$(echo "$rss_max / 1024" | bc -l)"
echo "  WAL written by the cluster so far: $wal_bytes; slot confirmed past the transaction"
# The RSS curve from the INSERT to the last message, in tenths of the run (max of each tenth):
# flat after the warm-up means bounded.
awk -v t0="$t0" -v t1="$t_end" '$1 >= t0 && $1 <= t1 { i = int(10 * ($1 - t0) / (t1 - t0)); if (i > 9) i = 9
    if ($2 > m[i]) m[i] = $2 } END { printf "  observer RSS per tenth of the run, MiB:"
    for (i = 0; i < 10; ++i) printf " %.1f", m[i] / 1024; print "" }' "$work/rss.txt"
