#!/usr/bin/env bash
# The end-to-end benchmark of issues 8 and 15, in one command:
#
#   bench/run.sh [--quick] [--only SECTIONS] [--plugin-benches] [--build DIR] [--results FILE]
#                [--wal-level logical|replica] [--no-build] [--tap] [--no-stages]
#
# Builds what it needs (Release, ./build-bench unless --build or $FOBS_BENCH_BUILD says
# otherwise), starts its own nats-server, PostgreSQL cluster (fsync ON: a benchmark must pay for
# durable commits) and webhook receiver on free 127.0.0.1 ports in a temp dir, runs a fixed
# amount of work per contender, prints one table, and stops every process it started by PID —
# on success, failure and Ctrl-C alike.
#
# Contenders, all measured from INSERT to arrival at the same receiver:
#   raw stages   NOTIFY->LISTEN, outbox INSERT, js_PublishAsync+msg-id (window 1000),
#                Fetch(500)+Ack, curl-multi POST (32)
#   observer     fraiseql-observer run: pg_listen (notify | outbox | cdc) -> nats -> webhook,
#                at full speed and at a steady 5 000 events/s; outbox and cdc modes also
#                catching up on rows committed while they were stopped
#   cdc raw      the same INSERTs read by a bare libpq logical replication client (pgoutput),
#                at full speed and paced: the limit of the cdc section
#   C bridge     bench/bridge/bridge.c (fobs_bridge): one process, libpq LISTEN ->
#                js_PublishMsgAsync + Nats-Msg-Id (window 1000) -> durable pull Fetch(500) ->
#                libcurl multi (32) -> ack after 2xx; full speed and paced (the anchor of issue 15)
#   batches      the observer in notify mode with the webhook's batch_max_events = 100
#   ordering     the observer in notify mode with ordering = "entity", 1 000 entities taking turns
#                (table bench_keyed)
#   Node.js      bench/node/bridge.js (pg LISTEN -> nats JetStream -> fetch() POST),
#                naive and pipelined
# --quick divides the amounts of work by 5 (a smoke test; figures are less stable).
# --only raw,notify,outbox,cdc,bridge,batch,ordering,node runs some sections (default: all; the
#   goals need raw, notify, outbox, bridge, batch and ordering).
# The paced rows of the observer and the C bridge also get a per-stage latency breakdown
#   (source -> stored in the stream -> delivered to the consumer -> arrival at the receiver) from
#   e2e_bench stage-tap, a subscriber on "_INBOX.>" that sees each delivery with its stored time;
#   --no-stages leaves it out (it costs nats-server one more copy of each message).
# --tap also measures the observer's paced runs at NATS (a plain subscriber on its subjects):
#   the latency up to nats-server, beside the latency up to the receiver (costs nats-server a
#   little, so it is off by default).
# --no-build uses the binaries already in the build dir (e.g. while the tree does not compile).
# --wal-level: PostgreSQL's wal_level (default logical, which cdc mode needs; replica only to
#   check that logical costs the other sections nothing).
# --plugin-benches then runs the per-plugin benchmarks (bench_nats, bench_pg, webhook_bench).
# FOBS_BENCH_KEEP=1 keeps the temp dir (logs, configs, per-event stage files) after a success;
# FOBS_BRIDGE_ARGS adds options to the C bridge (e.g. --send-asap, see bench/bridge/bridge.c).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FOBS_BENCH_BUILD:-$root/build-bench}
quick=0
plugin_benches=0
results=""
only="raw,notify,outbox,cdc,bridge,batch,ordering,node"
stages=1
wal_level=logical
no_build=0
tap=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --plugin-benches) plugin_benches=1 ;;
    --only) only=$2; shift ;;
    --build) build=$(cd "$2" && pwd); shift ;;
    --results) results=$2; shift ;;
    --wal-level) wal_level=$2; shift ;;
    --no-build) no_build=1 ;;
    --tap) tap=1 ;;
    --no-stages) stages=0 ;;
    -h|--help) sed -n '2,44p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# Amounts of work (events). Full-speed runs insert 100 rows per transaction from 4 connections;
# paced runs commit 50-row transactions from 2 connections (100 durable commits/s) at
# 5 000 events/s for 10 s.
n_full=100000
n_paced=50000
n_node_naive=10000
n_node_piped=100000
n_raw_nats=100000
n_raw_post=50000
paced_rate=5000
if [ "$quick" = 1 ]; then
  n_full=20000; n_paced=10000; n_node_naive=2000; n_node_piped=20000; n_raw_nats=20000; n_raw_post=10000
fi

want() { [[ ",$only," == *",$1,"* ]]; }
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- build -----------------------------------------------------------------------------------
if [ "$no_build" = 1 ]; then
  log "using the binaries in $build as they are (--no-build)"
elif [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  log "configuring $build (Release)"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFOBS_BUILD_TESTS=OFF >/dev/null
fi
if [ "$no_build" = 0 ]; then
  log "building fraiseql-observer, plugins and e2e_bench in $build"
  cmake --build "$build" -j2 --target fraiseql-observer fobs_all_plugins e2e_bench fobs_bridge >/dev/null
fi
obs="$build/bin/fraiseql-observer"
eb="$build/bin/e2e_bench"
bridge_bin="$build/bin/fobs_bridge"
if want node && { [ ! -d "$root/bench/node/node_modules/pg" ] || [ ! -d "$root/bench/node/node_modules/nats" ]; }; then
  log "npm ci in bench/node"
  (cd "$root/bench/node" && npm ci --no-audit --no-fund --silent)
fi

# --- processes, always stopped by PID ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/fobs-bench.XXXXXX")
chmod 755 "$work"
pids=()
pg_data="$work/pg/data"
pg_started=0

stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after 10 s
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    # A child that already exited (e.g. a tap that finished) is a zombie until waited for.
    [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" = Z ] && break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_bin=${FOBS_PG_BIN:-/usr/lib/postgresql/15/bin}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [ "$pg_started" = 1 ] && [ -f "$pg_data/postmaster.pid" ]; then
    local pg_pid
    pg_pid=$(head -1 "$pg_data/postmaster.pid")
    kill -INT "$pg_pid" 2>/dev/null || true # PostgreSQL's "fast" shutdown
    for p in $(seq 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pg_pid" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ]; then log "failed (exit $rc); logs kept in $work"
  elif [ -n "${FOBS_BENCH_KEEP:-}" ]; then log "logs, configs and stage files kept in $work (FOBS_BENCH_KEEP)"
  else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME CMD...: runs CMD in the background, output in $work/NAME.log
  # In its own session (setsid execs in place: $! stays its PID), so a Ctrl-C reaches only the
  # script and the running measurement; the trap then stops this process by PID.
  local name=$1; shift
  setsid "$@" >"$work/$name.log" 2>&1 &
  pids+=("$!")
  eval "${name//-/_}_pid=$!"
}

forget() { # forget PID: stop it and drop it from the cleanup list
  local pid=$1 kept=() p
  stop_pid "$pid"
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

# nats-server
nats_port=$("$eb" free-port); nats_mon=$("$eb" free-port)
mkdir -p "$work/nats"
start nats nats-server -js -a 127.0.0.1 -p "$nats_port" -m "$nats_mon" -sd "$work/nats"
nats_url="nats://127.0.0.1:$nats_port"
wait_until 20 nats-server "$nats_pid" curl -sf "http://127.0.0.1:$nats_mon/healthz"

# PostgreSQL: a throw-away cluster, default durability (fsync on, synchronous_commit on).
pg_port=$("$eb" free-port)
mkdir -p "$pg_data" "$work/pg/run"
chmod 700 "$pg_data"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work/pg"
as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --no-instructions >"$work/initdb.log" 2>&1
pg_started=1
as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg/run/server.log" -w -t 60 \
  -o "-p $pg_port -k $work/pg/run -c listen_addresses=127.0.0.1 -c max_connections=50 -c wal_level=$wal_level" \
  start >/dev/null
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
psql_ -d postgres -c "CREATE DATABASE bench" >/dev/null
conninfo="host=127.0.0.1 port=$pg_port user=postgres dbname=bench"
pg_url="postgresql://postgres@127.0.0.1:$pg_port/bench"

"$obs" sql >"$work/outbox.sql"
psql_ -d bench -f "$work/outbox.sql" >/dev/null
psql_ -d bench -f "$root/bench/schema.sql" >/dev/null
# cdc mode reads the WAL: a plain table, no trigger (the publication and slot are the
# observer's, created at its start; the raw stage makes its own).
psql_ -d bench -c "CREATE TABLE bench_cdc (LIKE bench_notify INCLUDING ALL)" >/dev/null

# The receiver every contender posts to.
recv_port=$("$eb" free-port)
start receiver "$eb" receive --port "$recv_port"
wait_until 10 receiver "$receiver_pid" curl -sf "http://127.0.0.1:$recv_port/stats"
hook_url="http://127.0.0.1:$recv_port/hook"

results=${results:-$work/results.tsv}
: >"$results"
full=(--connections 4 --rows-per-tx 100)
paced=(--connections 2 --rows-per-tx 50 --rate "$paced_rate")

# --- raw limits of each stage -----------------------------------------------------------------
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
if want raw; then
log "raw NOTIFY->LISTEN ($n_full events)"
"$eb" raw-listen --conninfo "$conninfo" --table bench_notify --channel bench_events --events "$n_full" "${full[@]}" \
  --label "raw: INSERT + pg_notify trigger -> LISTEN (libpq)" --kind raw:listen --results "$results" >/dev/null
log "raw NOTIFY->LISTEN, paced $paced_rate/s ($n_paced events)"
"$eb" raw-listen --conninfo "$conninfo" --table bench_notify --channel bench_events --events "$n_paced" "${paced[@]}" \
  --label "raw: INSERT + pg_notify trigger -> LISTEN, paced" --kind raw:listen:paced --results "$results" >/dev/null
log "raw outbox INSERT ($n_full events)"
"$eb" raw-insert --conninfo "$conninfo" --table bench_outbox --events "$n_full" "${full[@]}" \
  --label "raw: INSERT + outbox capture() trigger" --kind raw:outbox-insert --results "$results" >/dev/null
psql_ -d bench -c "TRUNCATE fraiseql_observer.outbox" >/dev/null
log "raw js_PublishAsync + Fetch/Ack ($n_raw_nats events)"
"$eb" raw-publish --nats-url "$nats_url" --stream raw_bench --subject-prefix raw.bench --events "$n_raw_nats" --window 1000 \
  --label "raw: cnats js_PublishAsync, msg-id, window 1000" --kind raw:publish --results "$results" >/dev/null
"$eb" raw-fetch --nats-url "$nats_url" --stream raw_bench --subject-prefix raw.bench --events "$n_raw_nats" --batch 500 \
  --delete-stream --label "raw: cnats Fetch(500) + Ack" --kind raw:fetch --results "$results" >/dev/null
log "raw curl-multi POST ($n_raw_post events)"
"$eb" raw-post --receiver-port "$recv_port" --events "$n_raw_post" --concurrency 32 \
  --label "raw: libcurl multi POST, 32 in flight" --kind raw:post --results "$results" >/dev/null
fi

# --- fraiseql-observer ------------------------------------------------------------------------
thread_ticks() { # thread_ticks PID: "<thread name> <utime+stime ticks>" per thread name, summed
  local t line rest
  for t in /proc/"$1"/task/*; do
    read -r line <"$t/stat" 2>/dev/null || continue
    rest=${line##*) }; line=${line#*(}
    # shellcheck disable=SC2086
    set -- $rest
    echo "${line%)*}" "$((${12} + ${13}))"
  done | awk '{ n = $NF; $NF = ""; sub(/ $/, ""); s[$0] += n } END { for (k in s) print k "\t" s[k] }'
}
thread_split() { # thread_split BEFORE AFTER EVENTS: "name µs/event, …", biggest first
  local hz; hz=$(getconf CLK_TCK)
  awk -F'\t' -v hz="$hz" -v n="$3" 'NR == FNR { b[$1] = $2; next }
    { d = ($2 - b[$1]) * 1e6 / hz / n; if (d >= 0.5) printf "%s\t%.1f\n", $1, d }' "$1" "$2" |
    sort -t$'\t' -k2,2 -rn | awk -F'\t' '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 } END { print "" }'
}
threads_report=()
observer_config() { # observer_config MODE NAME [ACTION_LINES] [PIPELINE_LINES] [CHANNEL] [JETSTREAM_LINES]
  local mode=$1 name=$2 action_extra=${3:-} pipeline_extra=${4:-} channel=${5:-bench_events} js_extra=${6:-}
  cat <<EOF
[observer]
metrics_listen = "127.0.0.1:\${BENCH_METRICS_PORT}"
log_level = "warn"

[sources.db]
plugin   = "pg_listen"
conninfo = "\${DATABASE_URL}"
mode     = "$mode"
$([ "$mode" = notify ] && echo "channels = [\"$channel\"]")
$([ "$mode" = cdc ] && echo 'tables = ["public.bench_cdc"]')

[transport]
transport = "nats"

[transport.nats]
url            = "\${NATS_URL}"
stream_name    = "bench_observer_$name"
subject_prefix = "bench.observer.$name"
consumer_name  = "bench_observer_$name"
dlq_prefix     = "bench.dlq.$name"

[transport.nats.jetstream]
# Each stream reserves max_bytes of nats-server's storage (10 GiB by default): five of them
# would exceed what a small disk allows, and no run comes near 1 GiB.
max_bytes = 1073741824
$js_extra

[actions.hook]
plugin = "webhook"
url    = "\${WEBHOOK_URL}"
$action_extra

[[pipelines]]
name    = "bench"
source  = "db"
actions = ["hook"]
$pipeline_extra
EOF
}

start_stage_tap() { # start_stage_tap NAME STREAM EVENTS: sets stage_args for the drive
  stage_args=()
  [ "$stages" = 1 ] || return 0
  rm -f "$work/stages-$1.tsv" "$work/stages-$1.ready"
  start "stagetap_$1" "$eb" stage-tap --nats-url "$nats_url" --stream "$2" --events "$3" \
    --out "$work/stages-$1.tsv" --ready-file "$work/stages-$1.ready"
  local tpid_var="stagetap_$1_pid"
  wait_until 10 "stage tap ($1)" "${!tpid_var}" test -f "$work/stages-$1.ready"
  stage_args=(--stages-file "$work/stages-$1.tsv")
}

# run_observer NAME MODE TABLE KIND_PREFIX LABEL PACED [ACTION_LINES] [PIPELINE_LINES] [CHANNEL]
#              [JETSTREAM_LINES] [SETTLE_SECS]
# Starts an observer, waits SETTLE_SECS after it is ready, drives it at full speed (and paced
# when PACED = 1), stops it; returns 3 (nothing measured) when this build refuses the config,
# e.g. a key it does not know yet.
run_observer() {
  local name=$1 mode=$2 table=$3 kind=$4 label=$5 paced_too=$6 settle=${11:-0}
  observer_config "$mode" "$name" "${7:-}" "${8:-}" "${9:-}" "${10:-}" >"$work/observer-$name.toml"
  if ! env BENCH_METRICS_PORT=1 DATABASE_URL="$conninfo" NATS_URL="$nats_url" WEBHOOK_URL="$hook_url" \
      "$obs" validate -c "$work/observer-$name.toml" >"$work/validate-$name.log" 2>&1; then
    log "  skipped: this build refuses the config: $(head -c 300 "$work/validate-$name.log" | tr '\n' ' ')"
    return 3
  fi
  metrics_port=$("$eb" free-port)
  start "observer_$name" env BENCH_METRICS_PORT="$metrics_port" DATABASE_URL="$conninfo" NATS_URL="$nats_url" \
    WEBHOOK_URL="$hook_url" "$obs" run -c "$work/observer-$name.toml"
  local pid_var="observer_${name}_pid"; opid=${!pid_var}
  wait_until 30 "observer ($name) readiness" "$opid" curl -sf "http://127.0.0.1:$metrics_port/readyz" || return 1
  [ "$settle" -gt 0 ] && { log "  waiting $settle s (start-up hold)"; sleep "$settle"; }
  log "  full speed ($n_full events)"
  thread_ticks "$opid" >"$work/threads-$name-0.tsv"
  "$eb" drive --conninfo "$conninfo" --table "$table" --events "$n_full" "${full[@]}" --receiver-port "$recv_port" \
    --pids "$opid" --label "$label, full speed" --kind "$kind:full" --results "$results" >/dev/null
  thread_ticks "$opid" >"$work/threads-$name-1.tsv"
  threads_report+=("$name, full speed: $(thread_split "$work/threads-$name-0.tsv" "$work/threads-$name-1.tsv" "$n_full")")
  if [ "$paced_too" = 1 ]; then
    log "  paced $paced_rate/s ($n_paced events)"
    local tap_args=()
    if [ "$tap" = 1 ]; then
      rm -f "$work/tap-$name.ready" "$work/tap-$name.txt"
      start "tap_$name" "$eb" tap --nats-url "$nats_url" --subject "bench.observer.$name.>" --events "$n_paced" \
        --out "$work/tap-$name.txt" --ready-file "$work/tap-$name.ready"
      local tpid_var="tap_${name}_pid"
      wait_until 10 "tap ($name)" "${!tpid_var}" test -f "$work/tap-$name.ready"
      tap_args=(--note-file "$work/tap-$name.txt")
    fi
    start_stage_tap "$name" "bench_observer_$name" "$n_paced"
    "$eb" drive --conninfo "$conninfo" --table "$table" --events "$n_paced" "${paced[@]}" --receiver-port "$recv_port" \
      --pids "$opid" --label "$label, paced" --kind "$kind:paced" --results "$results" \
      "${tap_args[@]}" "${stage_args[@]}" >/dev/null
    if [ "$stages" = 1 ]; then local spid_var="stagetap_${name}_pid"; forget "${!spid_var}"; fi
  fi
  forget "$opid"
}

for mode in notify outbox cdc; do
  want "$mode" || continue
  table=bench_$mode
  if [ "$mode" = cdc ]; then
    if [ "$(psql_ -d bench -Atc 'SHOW wal_level')" != logical ]; then
      log "cdc mode skipped: wal_level is not logical (--wal-level)"; continue
    fi
    # The limit of this section: the same load read by a bare replication client.
    log "raw INSERT -> logical replication client ($n_full events)"
    "$eb" raw-cdc --conninfo "$conninfo" --table "$table" --events "$n_full" "${full[@]}" \
      --label "raw: INSERT -> logical replication (pgoutput, libpq)" --kind raw:cdc --results "$results" >/dev/null
    log "raw INSERT -> logical replication client, paced $paced_rate/s ($n_paced events)"
    "$eb" raw-cdc --conninfo "$conninfo" --table "$table" --events "$n_paced" "${paced[@]}" \
      --label "raw: INSERT -> logical replication, paced" --kind raw:cdc:paced --results "$results" >/dev/null
  fi
  log "fraiseql-observer, $mode mode"
  run_observer "$mode" "$mode" "$table" "observer:$mode" "fraiseql-observer $mode" 1
  if [ "$mode" = outbox ] || [ "$mode" = cdc ]; then
    # Catching up after downtime: the rows were committed while the observer was stopped and
    # wait in the outbox (or behind the replication slot); the rate counts from the observer's
    # start to the last arrival.
    log "  catching up on $n_full rows inserted while it was stopped"
    "$eb" raw-insert --conninfo "$conninfo" --table "$table" --events "$n_full" "${full[@]}" >/dev/null
    curl -sf -X POST "http://127.0.0.1:$recv_port/reset" >/dev/null
    started_us=$(date +%s%6N)
    start "observer_${mode}_backlog" env BENCH_METRICS_PORT="$metrics_port" DATABASE_URL="$conninfo" NATS_URL="$nats_url" \
      WEBHOOK_URL="$hook_url" "$obs" run -c "$work/observer-$mode.toml"
    pid_var="observer_${mode}_backlog_pid"; opid=${!pid_var}
    "$eb" drive --backlog --start-us "$started_us" --conninfo "$conninfo" --table "$table" --events "$n_full" \
      --receiver-port "$recv_port" --pids "$opid" --label "fraiseql-observer $mode, catching up on a backlog" \
      --kind "observer:$mode:backlog" --note "$n_full rows waiting at start" --results "$results" >/dev/null
    forget "$opid"
  fi
  if [ "$mode" = cdc ]; then # an inactive slot would pin WAL for the rest of the run
    psql_ -d bench -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'fraiseql_observer_db'" >/dev/null
  fi
done

# --- issue 15: webhook batches and per-key ordering, full speed -------------------------------
if want batch; then
  log "fraiseql-observer, notify mode, webhook batch_max_events = 100"
  run_observer batch notify bench_notify "observer:notify:batch" "fraiseql-observer notify, batch_max_events = 100" 0 \
    'batch_max_events = 100' || true
fi
if want ordering; then
  # An ordered pipeline holds every event for ack_wait + 1 s after it starts (it cannot know
  # what a previous worker left unsettled; docs/reliability.md): a short ack_wait keeps that
  # hold out of the measurement, and max_ack_pending = max_in_flight is what validate asks for.
  log "fraiseql-observer, notify mode, ordering = \"entity\" over 1 000 entities"
  run_observer ordered notify bench_keyed "observer:notify:ordered" "fraiseql-observer notify, ordering = entity (1 000 keys)" 0 \
    '' 'ordering = "entity"' bench_keyed_events $'ack_wait_secs = 5\nmax_ack_pending = 1024' 7 || true
fi

# --- the hand-pipelined C bridge (issue 15) ---------------------------------------------------
if want bridge; then
  log "C bridge (fobs_bridge)"
  rm -f "$work/bridge.ready"
  start bridge "$bridge_bin" --conninfo "$conninfo" --channel bench_events --nats-url "$nats_url" \
    --stream bench_bridge --prefix bench.bridge --durable bench_bridge --url "$hook_url" \
    --window 1000 --batch 500 --concurrency 32 --ready-file "$work/bridge.ready" ${FOBS_BRIDGE_ARGS:-}
  wait_until 30 "C bridge" "$bridge_pid" test -f "$work/bridge.ready"
  log "  full speed ($n_full events)"
  thread_ticks "$bridge_pid" >"$work/threads-bridge-0.tsv"
  "$eb" drive --conninfo "$conninfo" --table bench_notify --events "$n_full" "${full[@]}" --receiver-port "$recv_port" \
    --pids "$bridge_pid" --label "C bridge (hand-pipelined), full speed" --kind "bridge:full" --results "$results" >/dev/null
  thread_ticks "$bridge_pid" >"$work/threads-bridge-1.tsv"
  threads_report+=("C bridge, full speed: $(thread_split "$work/threads-bridge-0.tsv" "$work/threads-bridge-1.tsv" "$n_full")")
  log "  paced $paced_rate/s ($n_paced events)"
  start_stage_tap bridge bench_bridge "$n_paced"
  "$eb" drive --conninfo "$conninfo" --table bench_notify --events "$n_paced" "${paced[@]}" --receiver-port "$recv_port" \
    --pids "$bridge_pid" --label "C bridge (hand-pipelined), paced" --kind "bridge:paced" --results "$results" \
    "${stage_args[@]}" >/dev/null
  if [ "$stages" = 1 ]; then forget "$stagetap_bridge_pid"; fi
  forget "$bridge_pid"
fi

# --- the hand-written Node.js bridge ----------------------------------------------------------
bridge="$root/bench/node/bridge.js"
for mode in naive pipelined; do
  want node || continue
  n=$n_node_naive; [ "$mode" = pipelined ] && n=$n_node_piped
  stream="bench_node_$mode"; prefix="bench.node.$mode"
  log "Node.js bridge, $mode ($n events)"
  node "$bridge" setup --nats "$nats_url" --stream "$stream" --prefix "$prefix" --durable "${stream}_worker" \
    >"$work/node-setup-$mode.log" 2>&1
  rm -f "$work/pub-$mode.ready" "$work/work-$mode.ready"
  start "node_pub_$mode" node "$bridge" publisher --mode "$mode" --pg "$pg_url" --channel bench_events \
    --nats "$nats_url" --prefix "$prefix" --window 1000 --ready-file "$work/pub-$mode.ready"
  ppid_var="node_pub_${mode}_pid"; npub=${!ppid_var}
  start "node_work_$mode" node "$bridge" worker --mode "$mode" --nats "$nats_url" --stream "$stream" \
    --durable "${stream}_worker" --url "$hook_url" --batch 500 --concurrency 32 --ready-file "$work/work-$mode.ready"
  wpid_var="node_work_${mode}_pid"; nwork=${!wpid_var}
  wait_until 30 "Node.js publisher" "$npub" test -f "$work/pub-$mode.ready"
  wait_until 30 "Node.js worker" "$nwork" test -f "$work/work-$mode.ready"
  "$eb" drive --conninfo "$conninfo" --table bench_notify --events "$n" "${full[@]}" --receiver-port "$recv_port" \
    --pids "$npub,$nwork" --timeout-secs 180 --label "Node.js bridge ($mode), full speed" --kind "node:$mode" \
    --results "$results" >/dev/null
  if [ "$mode" = pipelined ]; then
    log "  paced $paced_rate/s ($n_paced events)"
    "$eb" drive --conninfo "$conninfo" --table bench_notify --events "$n_paced" "${paced[@]}" --receiver-port "$recv_port" \
      --pids "$npub,$nwork" --label "Node.js bridge ($mode), paced" --kind "node:$mode:paced" --results "$results" >/dev/null
  fi
  forget "$npub"; forget "$nwork"
done

# --- the table --------------------------------------------------------------------------------
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "fraiseql-observer end-to-end benchmark — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(($(grep MemTotal /proc/meminfo | awk '{print $2}') / 1024)) MiB, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "load average before: $load_start, after: $load_end (anything above the benchmark's own ~2 means other work shared the cores)"
echo
"$eb" table --results "$results"
if [ ${#threads_report[@]} -gt 0 ]; then
  echo
  echo "The observer's threads, CPU µs/event (/proc/<pid>/task/*/stat over the whole drive):"
  for line in "${threads_report[@]}"; do echo "  $line"; done
fi

if [ "$plugin_benches" = 1 ]; then
  # The per-plugin benchmarks of the NATS, PostgreSQL and webhook issues (each starts its own
  # servers; bench_pg needs a build with FOBS_BUILD_TESTS=ON for its test-support library).
  for target in bench_nats bench_pg webhook_bench; do
    echo
    echo "=== $target"
    if ! cmake --build "$build" -j2 --target "$target" >"$work/build-$target.log" 2>&1; then
      echo "(not built in $build: see bench/*/CMakeLists.txt)"
      continue
    fi
    "$build/bin/$target" || log "$target failed (exit $?)"
  done
fi
