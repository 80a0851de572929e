#!/usr/bin/env bash
# The chaos run of issue 12: does any event get lost or stuck when every part of the pipeline
# fails in turn under a steady load?
#
#   bench/chaos.sh [--minutes N] [--modes notify,outbox,cdc] [--build DIR] [--rate ROWS_PER_S]
#                  [--drain-secs S] [--report FILE]
#
# Starts its own nats-server -js, a throw-away PostgreSQL 15 cluster (wal_level = logical,
# fsync on) and one webhook receiver per mode (`e2e_bench receive`) on free 127.0.0.1 ports in a
# temp dir, and one `fraiseql-observer run` per mode (pg_listen in that mode -> nats -> webhook),
# each mode in its own database, stream and receiver. For N minutes (default 2) every mode gets a
# steady insert load (default 200 rows/s each, 10 transactions a second) while one schedule, run
# against all modes at once, does in turn: kill -9 every observer (restarted 2 s later), restart
# nats-server (SIGTERM, 3 s down, same store), crash PostgreSQL (pg_ctl stop -m immediate, 3 s
# down), make the receivers answer 503 for a while, make them hang (read, never answer) for a
# while, kill -9 the observers again — spaced evenly over the run (every N*60/7 s, at least 15 s,
# at most 60 s apart; longer runs repeat the cycle).
# Then it stops the load, waits for every pipeline to drain (at most --drain-secs, default 300)
# and prints per mode: rows inserted (committed), delivered (distinct event ids at the receiver),
# in the DLQ, lost (committed rows neither delivered nor dead-lettered), duplicate deliveries,
# where notify mode lost its events (windows of consecutive rows), and each observer process's
# RSS over its lifetime (VmRSS sampled every 3 s).
# Exit status: 0 when outbox and cdc mode lost nothing (notify mode's losses are expected and only
# shown), 1 on any loss in outbox or cdc mode, or an observer that exited without being killed,
# 2 on bad arguments. Bounded: the load runs N minutes, the drain at most --drain-secs.
# Every process it started is stopped by PID on success, failure or Ctrl-C; the temp dir (logs,
# configs, the RSS samples) is kept when the run fails.
#
# The observer binary and plugins come from --build DIR (default: ./build-lead when it holds a
# built observer, else ./build-chaos, built here: Release, no tests)
# and are copied into the temp dir first, so a rebuild during the run cannot change them.
# e2e_bench (the receiver) is taken from the same build when it has it, else built in
# ./build-chaos.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=""
minutes=2
modes="notify,outbox,cdc"
rate=200
drain_secs=300
report=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift ;;
    --modes) modes=$2; shift ;;
    --build) build=$(cd "$2" && pwd); shift ;;
    --rate) rate=$2; shift ;;
    --drain-secs) drain_secs=$2; shift ;;
    --report) report=$2; shift ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$minutes" =~ ^[0-9]+$ && "$minutes" -ge 1 ]] || { echo "--minutes must be a whole number >= 1" >&2; exit 2; }
[[ "$rate" =~ ^[0-9]+$ && "$rate" -ge 10 ]] || { echo "--rate must be a whole number >= 10" >&2; exit 2; }
[[ "$drain_secs" =~ ^[0-9]+$ ]] || { echo "--drain-secs must be a whole number" >&2; exit 2; }
IFS=, read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
  case "$m" in notify|outbox|cdc) ;; *) echo "unknown mode \"$m\" (notify, outbox, cdc)" >&2; exit 2 ;; esac
done

log() { printf '[chaos %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- build -----------------------------------------------------------------------------------
chaos_build=$root/build-chaos
if [ -z "$build" ]; then
  if [ -x "$root/build-lead/bin/fraiseql-observer" ]; then build=$root/build-lead; else build=$chaos_build; fi
fi
configure_chaos_build() {
  if [ ! -f "$chaos_build/build.ninja" ]; then
    log "configuring $chaos_build (Release, no tests, with the benchmarks)"
    cmake -S "$root" -B "$chaos_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFOBS_BUILD_TESTS=OFF \
      -DFOBS_BUILD_BENCH=ON >/dev/null
  fi
}
if [ ! -x "$build/bin/fraiseql-observer" ]; then
  [ "$build" = "$chaos_build" ] || { echo "no bin/fraiseql-observer in $build" >&2; exit 2; }
  configure_chaos_build
  log "building fraiseql-observer and its plugins in $chaos_build"
  cmake --build "$chaos_build" -j2 --target fraiseql-observer fobs_all_plugins >/dev/null
fi
eb=$build/bin/e2e_bench
if [ ! -x "$eb" ]; then
  configure_chaos_build
  log "building e2e_bench (the receiver) in $chaos_build"
  cmake --build "$chaos_build" -j2 --target e2e_bench >/dev/null
  eb=$chaos_build/bin/e2e_bench
fi
consumer_js=$root/tests/node/nats_consumer.js
if [ ! -d "$root/tests/node/node_modules/nats" ]; then
  log "npm ci in tests/node (the DLQ reader)"
  (cd "$root/tests/node" && npm ci --no-audit --no-fund --silent)
fi

# --- processes, always stopped by PID ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/fobs-chaos.XXXXXX")
chmod 755 "$work"
mkdir -p "$work/inst/bin" "$work/inst/lib/fraiseql-observer/plugins"
cp "$build/bin/fraiseql-observer" "$work/inst/bin/"
cp "$build/lib/fraiseql-observer/plugins/"*.so "$work/inst/lib/fraiseql-observer/plugins/"
cp "$eb" "$work/inst/bin/e2e_bench"
obs=$work/inst/bin/fraiseql-observer
eb=$work/inst/bin/e2e_bench
# An observer that crashes leaves a core in its own directory (obs-MODE-N) for the backtrace
# printed in the report.
cd "$work"
ulimit -c unlimited 2>/dev/null || true
pids=()   # stopped with SIGTERM, then SIGKILL
groups=() # process groups (the load and the sampler: shell loops with children)
pg_data="$work/pg/data"
pg_started=0
failed_reasons=()

stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after 10 s
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_bin=${FOBS_PG_BIN:-/usr/lib/postgresql/15/bin}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${groups[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  for p in "${groups[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [ "$pg_started" = 1 ] && [ -f "$pg_data/postmaster.pid" ]; then
    local pg_pid
    pg_pid=$(head -1 "$pg_data/postmaster.pid")
    kill -INT "$pg_pid" 2>/dev/null || true # PostgreSQL's "fast" shutdown
    for p in $(seq 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pg_pid" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ]; then log "exit $rc; logs, configs and RSS samples kept in $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME CMD...: CMD in the background in its own session, output in $work/NAME.log
  local name=$1; shift
  setsid "$@" >"$work/$name.log" 2>&1 &
  pids+=("$!")
  last_pid=$!
}

forget() { # forget PID: drop it from the cleanup list (it was stopped or killed)
  local pid=$1 kept=() p
  for p in "${pids[@]}"; do [ "$p" != "$pid" ] && kept+=("$p"); done
  pids=("${kept[@]}")
}

wait_until() { # wait_until SECONDS DESCRIPTION PID|- CMD...: polls CMD; fails early if PID died
  local secs=$1 what=$2 pid=$3 i; shift 3
  for i in $(seq $((secs * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    if [ "$pid" != - ] && ! kill -0 "$pid" 2>/dev/null; then
      log "$what: process $pid exited; see the logs in $work"; return 1
    fi
    sleep 0.1
  done
  log "timed out waiting for $what"; return 1
}

t0=$(date +%s)
fault_log=$work/faults.tsv
: >"$fault_log"
fault() { # fault TEXT: one line of the schedule, with seconds since the start
  printf '%s\t%s\n' "$(($(date +%s) - t0))" "$*" >>"$fault_log"
  log "$*"
}

# --- nats-server ------------------------------------------------------------------------------
nats_port=$("$eb" free-port); nats_mon=$("$eb" free-port)
mkdir -p "$work/nats"
nats_n=0
start_nats() {
  nats_n=$((nats_n + 1))
  start "nats-$nats_n" nats-server -js -a 127.0.0.1 -p "$nats_port" -m "$nats_mon" -sd "$work/nats"
  nats_pid=$last_pid
  wait_until 30 nats-server "$nats_pid" curl -sf "http://127.0.0.1:$nats_mon/healthz"
}
start_nats
nats_url="nats://127.0.0.1:$nats_port"

# --- PostgreSQL: durable commits (fsync on), logical WAL for cdc mode --------------------------
pg_port=$("$eb" free-port)
mkdir -p "$pg_data" "$work/pg/run"
chmod 700 "$pg_data"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work/pg"
as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --no-instructions >"$work/initdb.log" 2>&1
pg_started=1
pg_start() {
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg/run/server.log" -w -t 120 \
    -o "-p $pg_port -k $work/pg/run -c listen_addresses=127.0.0.1 -c max_connections=60 -c wal_level=logical -c max_wal_senders=10 -c max_replication_slots=10" \
    start >/dev/null
}
pg_start
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
"$obs" sql >"$work/outbox.sql"

# Per mode: database chaos_<mode>, table, stream, receiver, observer config.
declare -A table recv_port metrics_port obs_pid obs_n obs_killed
for m in "${mode_list[@]}"; do
  psql_ -d postgres -c "CREATE DATABASE chaos_$m" >/dev/null
  case "$m" in
    notify|outbox)
      # bench/schema.sql: bench_notify raises pg_notify('bench_events', …) with id 'n<row id>',
      # bench_outbox writes the outbox through capture('Order').
      psql_ -d "chaos_$m" -f "$work/outbox.sql" >/dev/null
      psql_ -d "chaos_$m" -f "$root/bench/schema.sql" >/dev/null
      table[$m]=bench_$m ;;
    cdc)
      # A plain table: no trigger, no outbox. "tb_order" becomes entity type "Order".
      psql_ -d "chaos_$m" -c "CREATE TABLE tb_order (
          id bigserial PRIMARY KEY, customer text NOT NULL, status text NOT NULL,
          total numeric(12, 2) NOT NULL, note text, created_at timestamptz NOT NULL DEFAULT clock_timestamp())" >/dev/null
      table[$m]=tb_order ;;
  esac
  recv_port[$m]=$("$eb" free-port)
  start "receiver-$m" "$eb" receive --port "${recv_port[$m]}"
  wait_until 10 "receiver ($m)" "$last_pid" curl -sf "http://127.0.0.1:${recv_port[$m]}/stats"
  metrics_port[$m]=$("$eb" free-port)
  obs_n[$m]=0
  obs_killed[$m]=0
  # Redelivery: 2, 5, 10, 20 s, then every 30 s, 40 deliveries — an outage of ~18 min rides
  # out, far longer than the schedule's receiver outages (at most 30 s each), so an event in
  # the DLQ here means a bug, not a policy.
  cat >"$work/observer-$m.toml" <<EOF
[observer]
metrics_listen = "127.0.0.1:${metrics_port[$m]}"
log_level = "info"
shutdown_timeout_secs = 10

[sources.db]
plugin   = "pg_listen"
conninfo = "host=127.0.0.1 port=$pg_port user=postgres dbname=chaos_$m"
mode     = "$m"
$([ "$m" = notify ] && echo 'channels = ["bench_events"]')
$([ "$m" = cdc ] && echo 'tables   = ["public.tb_order"]')

[transport]
transport = "nats"

[transport.nats]
url            = "$nats_url"
stream_name    = "chaos_$m"
subject_prefix = "chaos.$m"
consumer_name  = "chaos_$m"
dlq_prefix     = "chaos_dlq.$m"

[transport.nats.jetstream]
max_bytes     = 2147483648
max_deliver   = 40
backoff_secs  = [2, 5, 10, 20, 30]
ack_wait_secs = 30

[actions.hook]
plugin     = "webhook"
url        = "http://127.0.0.1:${recv_port[$m]}/hook"
timeout_ms = 5000

[[pipelines]]
name    = "chaos_$m"
source  = "db"
actions = ["hook"]
EOF
done

start_observer() { # start_observer MODE
  local m=$1
  obs_n[$m]=$((${obs_n[$m]} + 1))
  local dir=$work/obs-$m-${obs_n[$m]}
  mkdir -p "$dir"
  (cd "$dir" && exec setsid "$obs" run -c "$work/observer-$m.toml") >"$work/observer-$m-${obs_n[$m]}.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
  obs_pid[$m]=$last_pid
  printf '%s\n' "$last_pid" >"$work/observer-$m.pid"
  printf '%s\t%s\t%s\n' "$m" "$last_pid" "$(date +%s)" >>"$work/lifetimes.tsv"
}
: >"$work/lifetimes.tsv"
for m in "${mode_list[@]}"; do start_observer "$m"; done
for m in "${mode_list[@]}"; do
  wait_until 60 "observer ($m) readiness" "${obs_pid[$m]}" curl -sf "http://127.0.0.1:${metrics_port[$m]}/readyz"
done

# An observer that is gone without the schedule having killed it crashed: note it, restart it.
check_observers() {
  local m rc
  for m in "${mode_list[@]}"; do
    if ! kill -0 "${obs_pid[$m]}" 2>/dev/null; then
      rc=0; wait "${obs_pid[$m]}" 2>/dev/null || rc=$?
      fault "observer $m (pid ${obs_pid[$m]}) EXITED on its own (status $rc): restarting it; log $work/observer-$m-${obs_n[$m]}.log"
      failed_reasons+=("observer $m exited on its own (status $rc, log observer-$m-${obs_n[$m]}.log)")
      crashed+=("$m ${obs_pid[$m]} $work/obs-$m-${obs_n[$m]}")
      forget "${obs_pid[$m]}"
      start_observer "$m"
    fi
  done
}
crashed=() # "MODE PID DIR" of each observer that exited on its own
sleep_checking() { # sleep_checking SECONDS: sleeps, checking the observers every second
  local until=$(($(date +%s) + $1))
  while [ "$(date +%s)" -lt "$until" ]; do check_observers; sleep 1; done
}

# --- the load and the RSS sampler (shell loops in their own process groups) --------------------
# Each psql session commits 50 transactions of rate/10 rows, one every 0.1 s of its own clock
# (5 s); a session that PostgreSQL's crash cuts short is simply followed by the next one. What
# counts as inserted is what the table holds at the end.
per_tx=$((rate / 10))
cat >"$work/load.sh" <<'EOF'
#!/usr/bin/env bash
# load.sh PORT DB TABLE ROWS_PER_TX END_EPOCH
port=$1 db=$2 table=$3 per_tx=$4 end=$5
stmt="INSERT INTO $table (customer, status, total, note) SELECT 'customer-' || g, 'pending', g % 1000 + 0.5, 'chaos' FROM generate_series(1, $per_tx) g;"
while [ "$(date +%s)" -lt "$end" ]; do
  script="SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset"$'\n'
  n=$(((end - $(date +%s)) * 10)); [ "$n" -gt 50 ] && n=50
  for i in $(seq "$n"); do
    script+="$stmt SELECT pg_sleep(greatest(0, :t0 + $i * 0.1 - extract(epoch FROM clock_timestamp())));"$'\n'
  done
  printf '%s' "$script" | psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" >/dev/null 2>>"$(dirname "$0")/load-$db.err" ||
    sleep 0.5
done
EOF
cat >"$work/sampler.sh" <<'EOF'
#!/usr/bin/env bash
# sampler.sh DIR MODE...: every 3 s, "epoch mode pid VmRSS_kB" of each mode's current observer
dir=$1; shift
while :; do
  now=$(date +%s)
  for m in "$@"; do
    pid=$(cat "$dir/observer-$m.pid" 2>/dev/null) || continue
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
    [ -n "$rss" ] && printf '%s\t%s\t%s\t%s\n' "$now" "$m" "$pid" "$rss" >>"$dir/rss.tsv"
  done
  sleep 3
done
EOF
: >"$work/rss.tsv"
setsid bash "$work/sampler.sh" "$work" "${mode_list[@]}" >/dev/null 2>&1 &
groups+=("$!")

run_secs=$((minutes * 60))
t0=$(date +%s)
load_end=$((t0 + run_secs))
for m in "${mode_list[@]}"; do
  setsid bash "$work/load.sh" "$pg_port" "chaos_$m" "${table[$m]}" "$per_tx" "$load_end" >/dev/null 2>&1 &
  groups+=("$!")
done
log "load: ${rate} rows/s per mode (${modes}) for $minutes min; work dir $work"

# --- the schedule -----------------------------------------------------------------------------
gap=$((run_secs / 7))
[ "$gap" -lt 15 ] && gap=15
[ "$gap" -gt 60 ] && gap=60
outage=$((gap - 5))
[ "$outage" -gt 30 ] && outage=30
kinds=(kill_observers restart_nats crash_postgres receiver_fail receiver_hang kill_observers)
receivers_mode() { local m; for m in "${mode_list[@]}"; do curl -sf -X POST "http://127.0.0.1:${recv_port[$m]}/mode/$1" >/dev/null; done; }
slot=1
while [ $((slot * gap + outage)) -lt "$run_secs" ] || [ "$slot" = 1 ]; do
  now=$(($(date +%s) - t0))
  [ "$now" -lt $((slot * gap)) ] && sleep_checking $((slot * gap - now))
  kind=${kinds[$(((slot - 1) % ${#kinds[@]}))]}
  case "$kind" in
    kill_observers)
      for m in "${mode_list[@]}"; do
        kill -KILL "${obs_pid[$m]}" 2>/dev/null || true
        wait "${obs_pid[$m]}" 2>/dev/null || true
        forget "${obs_pid[$m]}"
        obs_killed[$m]=$((${obs_killed[$m]} + 1))
      done
      fault "kill -9 every observer; restart in 2 s"
      sleep 2
      for m in "${mode_list[@]}"; do start_observer "$m"; done ;;
    restart_nats)
      fault "nats-server stopped (SIGTERM); start again in 3 s"
      stop_pid "$nats_pid"; forget "$nats_pid"
      sleep_checking 3
      start_nats
      fault "nats-server running again" ;;
    crash_postgres)
      fault "PostgreSQL crashed (pg_ctl stop -m immediate); start again in 3 s"
      as_postgres "$pg_bin/pg_ctl" -D "$pg_data" stop -m immediate >/dev/null 2>&1 || true
      sleep_checking 3
      pg_start
      fault "PostgreSQL running again" ;;
    receiver_fail)
      receivers_mode fail
      fault "receivers answer 503 for $outage s"
      sleep_checking "$outage"
      receivers_mode ok
      fault "receivers answer 204 again" ;;
    receiver_hang)
      receivers_mode hang
      fault "receivers hang (read, never answer) for $outage s"
      sleep_checking "$outage"
      receivers_mode ok
      fault "receivers answer 204 again" ;;
  esac
  slot=$((slot + 1))
done
now=$(($(date +%s) - t0))
[ "$now" -lt "$run_secs" ] && sleep_checking $((run_secs - now))
for p in "${groups[@]:1}"; do wait "$p" 2>/dev/null || true; done # the load loops end by themselves
groups=("${groups[0]}")
fault "load stopped; draining"

# --- drain: until each mode has everything (or is quiet with nothing pending) -----------------
count_rows() { psql_ -d "chaos_$1" -At -c "SELECT count(*) FROM ${table[$1]}"; }
stat_field() { curl -sf "http://127.0.0.1:${recv_port[$1]}/stats" | jq -r ".$2"; }
status_json() { "$obs" status -c "$work/observer-$1.toml" --json 2>/dev/null || echo '{}'; }
declare -A inserted settled last_distinct quiet_since dlq_depth
for m in "${mode_list[@]}"; do
  inserted[$m]=$(count_rows "$m"); settled[$m]=0; last_distinct[$m]=-1; quiet_since[$m]=$(date +%s)
done
drain_end=$(($(date +%s) + drain_secs))
while :; do
  check_observers
  all=1
  for m in "${mode_list[@]}"; do
    [ "${settled[$m]}" = 1 ] && continue
    d=$(stat_field "$m" distinct)
    st=$(status_json "$m")
    dlq_depth[$m]=$(jq -r '.pipelines[0].transport_status.dlq.depth // 0' <<<"$st")
    idle=$(jq -r '[.pipelines[0].transport_status.consumer.num_pending // 1, .pipelines[0].transport_status.consumer.num_ack_pending // 1,
                    (.pipelines[0].source_status.outbox_backlog // 0)] | add' <<<"$st")
    if [ "$d" != "${last_distinct[$m]}" ]; then last_distinct[$m]=$d; quiet_since[$m]=$(date +%s); fi
    quiet_needed=60; [ "$m" = notify ] && quiet_needed=20
    if [ $((d + ${dlq_depth[$m]})) -ge "${inserted[$m]}" ] ||
       { [ "$idle" = 0 ] && [ $(($(date +%s) - ${quiet_since[$m]})) -ge "$quiet_needed" ]; }; then
      settled[$m]=1
      log "$m drained: $d of ${inserted[$m]} delivered, ${dlq_depth[$m]} in the DLQ"
    else
      all=0
    fi
  done
  [ "$all" = 1 ] && break
  if [ "$(date +%s)" -ge "$drain_end" ]; then
    for m in "${mode_list[@]}"; do
      [ "${settled[$m]}" = 1 ] || log "$m not drained after $drain_secs s (counted as it stands)"
    done
    break
  fi
  sleep 5
done
drained_at=$(($(date +%s) - t0))

# --- figures ----------------------------------------------------------------------------------
out=$work/report.txt
{
echo "fraiseql-observer chaos run — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $rate rows/s per mode for $minutes min,"
echo "modes run side by side: $modes; drained $((drained_at - run_secs)) s after the load stopped"
echo
echo "schedule (seconds from the start of the load):"
sed 's/^/  /' "$fault_log"
echo
printf '%-7s %9s %10s %7s %7s %11s %13s %8s\n' mode inserted delivered in_dlq lost duplicates obs_restarts rejected
} >"$out"
any_loss=0
for m in "${mode_list[@]}"; do
  psql_ -d "chaos_$m" -At -F $'\t' -c "SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS'),
      floor(extract(epoch FROM created_at))::bigint - $t0 FROM ${table[$m]} ORDER BY id" >"$work/rows-$m.tsv"
  curl -sf "http://127.0.0.1:${recv_port[$m]}/ids" >"$work/ids-$m.tsv"
  : >"$work/dlq-$m.jsonl"
  depth=$(jq -r '.pipelines[0].transport_status.dlq.depth // 0' <<<"$(status_json "$m")")
  if [ "$depth" -gt 0 ]; then
    node "$consumer_js" --url "$nats_url" --subject "chaos_dlq.$m.>" --durable chaos_dlq_reader \
      --stream "chaos_${m}_dlq" --count "$depth" --timeout-ms 60000 >"$work/dlq-$m.jsonl" 2>"$work/dlq-$m.err" || true
  fi
  rows=$(wc -l <"$work/rows-$m.tsv")
  delivered=$(wc -l <"$work/ids-$m.tsv")
  dups=$(stat_field "$m" duplicates)
  cut -f1 "$work/rows-$m.tsv" | sort >"$work/row-keys-$m"
  cut -f2 "$work/ids-$m.tsv" | sort -u >"$work/delivered-keys-$m"
  jq -r '.entity_id' "$work/dlq-$m.jsonl" | sort -u >"$work/dlq-keys-$m"
  # Two event ids for one row would be a duplicate the receiver's id check cannot see.
  same_row_twice=$((delivered - $(wc -l <"$work/delivered-keys-$m")))
  sort -u "$work/delivered-keys-$m" "$work/dlq-keys-$m" >"$work/seen-keys-$m"
  comm -23 "$work/row-keys-$m" "$work/seen-keys-$m" | sort -n >"$work/lost-$m"
  lost=$(wc -l <"$work/lost-$m")
  rejected=-
  [ "$m" = outbox ] && rejected=$(psql_ -d "chaos_$m" -At -c "SELECT count(*) FROM fraiseql_observer.outbox WHERE state = 'rejected'")
  printf '%-7s %9s %10s %7s %7s %11s %13s %8s\n' "$m" "$rows" "$delivered" "$(wc -l <"$work/dlq-$m.jsonl")" "$lost" \
    "$((dups + same_row_twice))" "$((${obs_n[$m]} - 1))" "$rejected" >>"$out"
  if [ "$lost" -gt 0 ] && [ "$m" != notify ]; then
    any_loss=1
    failed_reasons+=("$m mode lost $lost of $rows rows (ids in $work/lost-$m)")
  fi
  [ "$same_row_twice" -gt 0 ] && echo "  ($m: $same_row_twice rows arrived under two different event ids)" >>"$out"
done
{
echo
echo "inserted = rows committed (counted in the table); delivered = distinct event ids the receiver"
echo "answered 204; in_dlq = entries in the mode's DLQ stream; lost = committed rows neither delivered"
echo "nor dead-lettered; duplicates = deliveries of an id already delivered (at-least-once repeats);"
echo "obs_restarts = observer processes started after the first; rejected = outbox rows kept as rejected."
for m in "${mode_list[@]}"; do
  [ -s "$work/lost-$m" ] || continue
  echo
  echo "$m mode: where the lost rows were inserted (runs of consecutive rows; seconds from the start)"
  # Group the lost row ids that are consecutive in the table's order into windows.
  awk -F'\t' 'NR == FNR { lost[$1] = 1; next }
    { if ($1 in lost) { if (!open) { open = 1; first_t = $2; first_s = $3; n = 0 } n++; last_t = $2; last_s = $3 }
      else if (open) { printf "  %5d rows  %s .. %s UTC  (t=%d..%d s)\n", n, first_t, last_t, first_s, last_s; open = 0; w++ } }
    END { if (open) printf "  %5d rows  %s .. %s UTC  (t=%d..%d s)\n", n, first_t, last_t, first_s, last_s }' \
    "$work/lost-$m" "$work/rows-$m.tsv" | head -40
done
echo
echo "observer RSS (VmRSS, MiB) per process lifetime: samples every 3 s; at 30 s, at the middle, at"
echo "the end of the lifetime, and the peak"
printf '  %-7s %8s %9s %8s %7s %7s %7s %7s\n' mode pid from_t secs at_30s middle end peak
while IFS=$'\t' read -r m pid started; do
  awk -F'\t' -v m="$m" -v pid="$pid" -v st="$started" -v t0="$t0" '
    $2 == m && $3 == pid { n++; t[n] = $1; r[n] = $4; if ($4 > peak) peak = $4 }
    END {
      if (n == 0) { printf "  %-7s %8s %9d %8s   (no sample: lived < 3 s)\n", m, pid, st - t0, "-"; exit }
      w = 1; for (i = 1; i <= n; i++) if (t[i] - st >= 30) { w = i; break }
      at30 = (t[n] - st >= 30) ? sprintf("%.1f", r[w] / 1024) : "-"
      printf "  %-7s %8s %9d %8d %7s %7.1f %7.1f %7.1f\n", m, pid, st - t0, t[n] - st, at30,
             r[int((n + 1) / 2)] / 1024, r[n] / 1024, peak / 1024 }' "$work/rss.tsv"
done <"$work/lifetimes.tsv"
} >>"$out"
for m in "${mode_list[@]}"; do
  # The longest lifetime's RSS series, one value a minute, shows whether it is flat.
  best=$(awk -F'\t' -v m="$m" '$2 == m { n[$3]++ } END { for (p in n) if (n[p] > b) { b = n[p]; bp = p } print bp }' "$work/rss.tsv")
  [ -n "$best" ] || continue
  echo "  $m, longest lifetime (pid $best), RSS MiB each minute: $(awk -F'\t' -v m="$m" -v p="$best" '
    $2 == m && $3 == p { if (!s) s = $1; if ($1 - s >= k * 60) { printf "%.1f ", $4 / 1024; k++ } }' "$work/rss.tsv")" >>"$out"
done
if [ "${#crashed[@]}" -gt 0 ]; then
  backtraces=0
  echo -e "\nobservers that exited on their own (last log line; the crashing thread's stack when a core was left):" >>"$out"
  for c in "${crashed[@]}"; do
    read -r m pid dir <<<"$c"
    core=""
    for f in "$dir"/core*; do [ -f "$f" ] && core=$f; done
    {
      echo "  $m pid $pid: $(grep -v '^$' "$work/observer-$m-${dir##*-}.log" | tail -1 | cut -c1-160)"
      if [ -n "$core" ] && command -v gdb >/dev/null && [ "$((backtraces += 1))" -le 3 ]; then # bounded: 3 at most
        timeout 120 gdb -batch -nx -ex "bt 25" -ex "thread apply all bt 15" "$obs" "$core" >"$dir/backtrace.txt" 2>&1 || true
        # The crashing thread's frames, without libc's own abort and malloc-check frames.
        awk '/^#0 / { n++ } n == 2 && /^#[0-9]+ / { print } n == 2 && /^$/ { exit }' "$dir/backtrace.txt" |
          grep -Ev '__pthread_kill|__GI_raise|__GI_abort|__libc_message|malloc_printerr' | head -16 | cut -c1-200 | sed 's/^/    /'
        echo "    (all threads: $dir/backtrace.txt; core: $core)"
      fi
    } >>"$out"
  done
fi
if [ "${#failed_reasons[@]}" -gt 0 ]; then
  { echo; echo "FAILED:"; printf '  %s\n' "${failed_reasons[@]}"; } >>"$out"
else
  echo -e "\nPASSED: no loss in outbox or cdc mode, no observer exited on its own" >>"$out"
fi
cat "$out"
[ -n "$report" ] && cp "$out" "$report"
[ "${#failed_reasons[@]}" -eq 0 ] || exit 1
