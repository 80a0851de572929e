#!/usr/bin/env bash
# Scale-out benchmark of issue 14: competing workers on a three-server NATS cluster.
#
#   bench/scale.sh [--events N] [--delay-ms MS] [--concurrency C] [--replicas "3 1"]
#                  [--workers "1 2 3"] [--build DIR] [--no-build] [--keep]
#
# Starts, on free 127.0.0.1 ports in a temp dir, a three-member nats-server cluster (routes, a
# store dir and a server name each), a throw-away PostgreSQL and a webhook receiver that answers
# every event after --delay-ms (default 20 ms: an I/O-bound action). Then, per replication
# factor (R3, then R1 for the cost of replication):
#   1. one `run --role publisher` drains N outbox rows into the stream (then it is stopped, so
#      the measurement is the workers' alone);
#   2. for 1, 2, 3 `run --role worker` processes sharing one durable consumer (a fresh one per
#      worker count, so each starts on the same N stored events): the receiver's completion
#      rate while all of them run (from 10 % to 90 % of the events: worker start-up and the
#      last batches' tail are left out), and the whole run's rate beside it.
# Each worker runs the webhook action with max_concurrency C (default 8): one worker can finish
# at most C / delay events per second (400/s at 8 and 20 ms), so adding workers is what adds
# throughput; the goal is >= 1.9x at 2 workers and >= 2.7x at 3.
# Every process it starts is stopped by PID, on success, failure and Ctrl-C alike.
#
# The receiver is a few lines of Node.js (node >= 18; e2e_bench's receiver answers at once and
# has no delay). It records the time each distinct event id was answered.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FOBS_BENCH_BUILD:-$root/build-bench}
events=4000
delay_ms=20
concurrency=8
replicas_list="3 1"
workers_list="1 2 3"
no_build=0
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift ;;
    --delay-ms) delay_ms=$2; shift ;;
    --concurrency) concurrency=$2; shift ;;
    --replicas) replicas_list=$2; shift ;;
    --workers) workers_list=$2; shift ;;
    --build) build=$(cd "$2" && pwd); shift ;;
    --no-build) no_build=1 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- build -----------------------------------------------------------------------------------
if [ "$no_build" = 1 ]; then
  log "using the binaries in $build as they are (--no-build)"
else
  if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
    log "configuring $build (Release)"
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFOBS_BUILD_TESTS=OFF >/dev/null
  fi
  log "building fraiseql-observer, plugins and e2e_bench in $build"
  cmake --build "$build" -j2 --target fraiseql-observer fobs_all_plugins e2e_bench >/dev/null
fi
obs="$build/bin/fraiseql-observer"
eb="$build/bin/e2e_bench"
for tool in "$obs" "$eb"; do [ -x "$tool" ] || { log "missing $tool"; exit 1; }; done
for tool in nats-server node curl jq; do command -v "$tool" >/dev/null || { log "needs $tool"; exit 1; }; done

# --- processes, always stopped by PID ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/fobs-scale.XXXXXX")
chmod 755 "$work"
pids=()
pg_data="$work/pg/data"
pg_started=0

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
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [ "$pg_started" = 1 ] && [ -f "$pg_data/postmaster.pid" ]; then
    local pg_pid
    pg_pid=$(head -1 "$pg_data/postmaster.pid")
    kill -INT "$pg_pid" 2>/dev/null || true # PostgreSQL's "fast" shutdown
    for p in $(seq 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pg_pid" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ] || [ "$keep" = 1 ]; then log "logs kept in $work (exit $rc)"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME CMD...: runs CMD in the background (own session), output in $work/NAME.log
  local name=$1; shift
  setsid "$@" >"$work/$name.log" 2>&1 &
  pids+=("$!")
  last_pid=$!
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

# --- a three-member NATS cluster ---------------------------------------------------------------
nats_ports=(); nats_mons=(); nats_routes=()
for i in 1 2 3; do
  nats_ports+=("$("$eb" free-port)"); nats_mons+=("$("$eb" free-port)"); nats_routes+=("$("$eb" free-port)")
done
nats_url=""
for i in 0 1 2; do
  routes=""
  for j in 0 1 2; do [ "$j" = "$i" ] || routes="$routes${routes:+,}nats://127.0.0.1:${nats_routes[$j]}"; done
  mkdir -p "$work/nats-n$((i + 1))"
  start "nats-n$((i + 1))" nats-server -js -a 127.0.0.1 -p "${nats_ports[$i]}" -m "${nats_mons[$i]}" \
    -sd "$work/nats-n$((i + 1))" -n "n$((i + 1))" --cluster_name fobs-scale \
    --cluster "nats://127.0.0.1:${nats_routes[$i]}" --routes "$routes"
  nats_url="$nats_url${nats_url:+,}nats://127.0.0.1:${nats_ports[$i]}"
done
meta_leader() { curl -sf "http://127.0.0.1:${nats_mons[0]}/jsz" | jq -e '.meta_cluster.leader != null and .meta_cluster.cluster_size == 3'; }
wait_until 30 "the NATS cluster's meta leader" - meta_leader
log "NATS cluster up: $nats_url"

# --- PostgreSQL: a throw-away cluster (the publisher's outbox) ---------------------------------
pg_port=$("$eb" free-port)
mkdir -p "$pg_data" "$work/pg/run"
chmod 700 "$pg_data"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work/pg"
as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --no-instructions >"$work/initdb.log" 2>&1
pg_started=1
as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg/run/server.log" -w -t 60 \
  -o "-p $pg_port -k $work/pg/run -c listen_addresses=127.0.0.1 -c max_connections=50" start >/dev/null
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
psql_ -d postgres -c "CREATE DATABASE bench" >/dev/null
conninfo="host=127.0.0.1 port=$pg_port user=postgres dbname=bench"
"$obs" sql >"$work/outbox.sql"
psql_ -d bench -f "$work/outbox.sql" >/dev/null

# --- the slow receiver -------------------------------------------------------------------------
cat >"$work/receiver.js" <<'EOF'
// Answers each POST 204 after DELAY ms (keep-alive); records when each distinct event id was
// answered. GET /stats: {requests, distinct, rate_mid, rate_all}: events/s between the
// answers of 10 % and 90 % of ?n= events, and between the first and the last. POST /reset.
'use strict';
const http = require('http');
const [port, delay] = [Number(process.argv[2]), Number(process.argv[3])];
let seen = new Set(), done = [], requests = 0;
const rate = (a, b) => (b > a ? (b - a) / ((done[b] - done[a]) / 1e9) : 0);
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/stats') {
    const n = Number(url.searchParams.get('n') || done.length);
    const lo = Math.floor(n * 0.1), hi = Math.min(done.length, Math.ceil(n * 0.9)) - 1;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ requests, distinct: seen.size,
      rate_mid: done.length >= Math.ceil(n * 0.9) ? rate(lo, hi) : 0,
      rate_all: rate(0, done.length - 1) }));
    return;
  }
  if (req.method === 'POST' && url.pathname === '/reset') {
    seen = new Set(); done = []; requests = 0;
    res.end('{}');
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => setTimeout(() => {
    ++requests;
    let body = [];
    try { body = JSON.parse(Buffer.concat(chunks)); } catch (e) { body = []; }
    const now = Number(process.hrtime.bigint());
    for (const ev of Array.isArray(body) ? body : [body]) // a webhook batch: each event counts
      if (ev && ev.id !== undefined && !seen.has(ev.id)) { seen.add(ev.id); done.push(now); }
    res.statusCode = 204;
    res.end();
  }, delay));
});
server.keepAliveTimeout = 120000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
EOF
recv_port=$("$eb" free-port)
start receiver node "$work/receiver.js" "$recv_port" "$delay_ms"
wait_until 10 receiver "$last_pid" curl -sf "http://127.0.0.1:$recv_port/stats"
hook_url="http://127.0.0.1:$recv_port/hook"

# --- the observer's config (one file per stream / consumer) ------------------------------------
observer_config() { # observer_config REPLICAS CONSUMER
  cat <<EOF
[observer]
metrics_listen = "127.0.0.1:\${SCALE_METRICS_PORT}"
log_level = "warn"

[sources.db]
plugin   = "pg_listen"
conninfo = "$conninfo"
mode     = "outbox"

[transport]
transport = "nats"
[transport.nats]
url            = "$nats_url"
stream_name    = "scale_r$1"
subject_prefix = "scale.r$1.mutation"
dlq_prefix     = "scale.r$1.dlq"
consumer_name  = "$2"
fetch_batch    = $((concurrency * 2))
[transport.nats.jetstream]
replicas      = $1
max_bytes     = 268435456
ack_wait_secs = 30

[actions.hook]
plugin          = "webhook"
url             = "$hook_url"
max_concurrency = $concurrency

[[pipelines]]
name          = "scale"
source        = "db"
actions       = ["hook"]
max_in_flight = $((concurrency * 4))
EOF
}

stored() { # stored STREAM: messages in the stream, as the members holding it report it
  local i n max=0
  for i in 0 1 2; do
    n=$(curl -sf "http://127.0.0.1:${nats_mons[$i]}/jsz?accounts=true&streams=true" |
      jq --arg s "$1" '[.account_details[]?.stream_detail[]? | select(.name == $s) | .state.messages] | max // 0') || n=0
    [ "$n" -gt "$max" ] && max=$n
  done
  echo "$max"
}

results="$work/results.tsv"
: >"$results"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $replicas_list; do
  # 1. The stream gets N events from one publisher, which then stops.
  observer_config "$r" "scale_r${r}_publisher" >"$work/publisher-r$r.toml"
  metrics_port=$("$eb" free-port)
  log "R$r: publishing $events events into stream scale_r$r"
  start "publisher-r$r" env SCALE_METRICS_PORT="$metrics_port" "$obs" run --role publisher -c "$work/publisher-r$r.toml"
  ppid_=$last_pid
  wait_until 30 "publisher (R$r) readiness" "$ppid_" curl -sf "http://127.0.0.1:$metrics_port/readyz"
  psql_ -d bench -c "SELECT fraiseql_observer.emit('Order', 'INSERT', g::text, jsonb_build_object('id', g))
                     FROM generate_series(1, $events) g" >/dev/null
  has_all() { [ "$(stored "scale_r$r")" -ge "$events" ]; }
  wait_until 120 "the stream scale_r$r to hold $events events" "$ppid_" has_all
  forget "$ppid_"

  # 2. 1, 2, 3 workers, each count on its own fresh durable consumer of the same N events.
  for w in $workers_list; do
    consumer="scale_r${r}_w$w"
    observer_config "$r" "$consumer" >"$work/worker-r$r-w$w.toml"
    curl -sf -X POST "http://127.0.0.1:$recv_port/reset" >/dev/null
    log "R$r: $w worker(s) on consumer $consumer"
    wpids=()
    for k in $(seq "$w"); do
      mp=$("$eb" free-port)
      start "worker-r$r-w$w-$k" env SCALE_METRICS_PORT="$mp" "$obs" run --role worker -c "$work/worker-r$r-w$w.toml"
      wpids+=("$last_pid")
    done
    finished() { [ "$(curl -sf "http://127.0.0.1:$recv_port/stats" | jq -r .distinct)" -ge "$events" ]; }
    wait_until $((events / 20 + 120)) "R$r, $w worker(s): all $events events answered" "${wpids[0]}" finished
    stats=$(curl -sf "http://127.0.0.1:$recv_port/stats?n=$events")
    for p in "${wpids[@]}"; do forget "$p"; done
    printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$w" "$(jq -r .rate_mid <<<"$stats")" "$(jq -r .rate_all <<<"$stats")" \
      "$(jq -r '.requests - .distinct' <<<"$stats")" >>"$results"
    log "  $(jq -c . <<<"$stats")"
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table ---------------------------------------------------------------------------------
echo
echo "fraiseql-observer scale-out — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "3-member nats-server cluster on loopback; $events events per run; webhook answered after $delay_ms ms;"
echo "max_concurrency $concurrency per worker (at most $((concurrency * 1000 / delay_ms)) events/s per worker)"
echo "load average before: $load_start, after: $load_end"
echo
awk -F'\t' -v goal2=1.9 -v goal3=2.7 '
  { rate[$1, $2] = $3; all[$1, $2] = $4; dup[$1, $2] = $5; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } ws[$2] = 1 }
  END {
    printf "%-9s %-8s %12s %9s %14s %11s\n", "stream", "workers", "events/s", "speed-up", "whole run /s", "duplicates"
    for (i = 1; i <= n; i++) {
      r = order[i]
      for (w = 1; w <= 3; w++) {
        if (!((r, w) in rate)) continue
        su = (r, 1) in rate && rate[r, 1] > 0 ? sprintf("%.2fx", rate[r, w] / rate[r, 1]) : "-"
        printf "%-9s %-8s %12.0f %9s %14.0f %11d\n", "R" r, w, rate[r, w], su, all[r, w], dup[r, w]
      }
    }
    if (("3", 1) in rate && ("1", 1) in rate) {
      printf "\ncost of replication (R3 vs R1 events/s):"
      for (w = 1; w <= 3; w++) if (("3", w) in rate && ("1", w) in rate && rate["1", w] > 0)
        printf "  %d worker(s) %.0f%%", w, 100 * (1 - rate["3", w] / rate["1", w])
      printf "\n"
    }
    if (("3", 1) in rate && ("3", 2) in rate && ("3", 3) in rate) {
      s2 = rate["3", 2] / rate["3", 1]; s3 = rate["3", 3] / rate["3", 1]
      printf "goals (R3): 2 workers %.2fx (>= %.1fx: %s), 3 workers %.2fx (>= %.1fx: %s)\n",
        s2, goal2, (s2 >= goal2 ? "met" : "NOT met"), s3, goal3, (s3 >= goal3 ? "met" : "NOT met")
    }
  }' "$results"
