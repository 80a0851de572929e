#!/usr/bin/env bash
# The quickstart: on a fresh Debian 12 machine, installs what is needed, builds, starts a local
# nats-server -js and a throw-away PostgreSQL cluster under ./.run/, a demo webhook receiver and
# fraiseql-observer with examples/quickstart/fraiseql-observer.toml, inserts a few orders and
# shows the events arriving. Ctrl-C stops everything it started (by PID).
#
# Ports (change them when the defaults are taken):
#   NATS_PORT=4222 NATS_MONITOR_PORT=8222 PG_PORT=54329 RECEIVER_PORT=8787 METRICS_PORT=9464
# Other knobs: TRANSPORT=memory (run without NATS), DEMO_ORDERS=5, NO_WAIT=1 (exit after the
# demo instead of waiting for Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)

NATS_PORT=${NATS_PORT:-4222}
NATS_MONITOR_PORT=${NATS_MONITOR_PORT:-8222}
PG_PORT=${PG_PORT:-54329}
RECEIVER_PORT=${RECEIVER_PORT:-8787}
METRICS_PORT=${METRICS_PORT:-9464}
TRANSPORT=${TRANSPORT:-nats}
DEMO_ORDERS=${DEMO_ORDERS:-5}
state="$root/.run"
build_dir=${FOBS_BUILD_DIR:-build}

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in NATS_PORT NATS_MONITOR_PORT PG_PORT RECEIVER_PORT METRICS_PORT; do
  if port_busy "${!p}"; then
    die "port ${!p} ($p) is in use on 127.0.0.1; choose another, e.g. $p=$(( ${!p} + 10000 )) ./run.sh"
  fi
done

say "installing Debian packages (if missing)"
./scripts/install-deps.sh

say "building (${build_dir}/)"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" --target fraiseql-observer
bin="$root/$build_dir/bin/fraiseql-observer"

if [[ ! -d tests/node/node_modules/nats ]]; then
  say "installing the NATS client for the demo subscriber (npm ci)"
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  say "stopping everything run.sh started"
  # Newest first, each one gone before the next: the observer drains while NATS still runs.
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    kill "${pids[i]}" 2>/dev/null || continue
    for _ in $(seq 1 400); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${pids[i]}" 2>/dev/null || true
  done
  if [[ -f "$state/pg/postmaster.pid" ]]; then
    as_pg "$pg_bin/pg_ctl" -D "$state/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT INT TERM

wait_port() {
  for _ in $(seq 1 150); do port_busy "$1" && return 0; sleep 0.1; done
  return 1
}

mkdir -p "$state"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [[ "$TRANSPORT" == nats ]]; then
  say "starting nats-server -js on 127.0.0.1:$NATS_PORT (monitoring http://127.0.0.1:$NATS_MONITOR_PORT)"
  mkdir -p "$state/nats"
  nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" -sd "$state/nats" \
    >"$state/nats.log" 2>&1 &
  pids+=($!)
  wait_port "$NATS_PORT" || die "nats-server did not start; see $state/nats.log"
fi

say "starting PostgreSQL on 127.0.0.1:$PG_PORT (data in $state/pg)"
if [[ ! -f "$state/pg/PG_VERSION" ]]; then
  rm -rf "$state/pg"
  mkdir -p "$state/pg"
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$state/pg"
  as_pg "$pg_bin/initdb" -D "$state/pg" -U postgres --auth=trust >"$state/initdb.log" 2>&1 \
    || die "initdb failed; see $state/initdb.log"
fi
[[ $(id -u) -eq 0 ]] && chown -R postgres:postgres "$state/pg"
as_pg "$pg_bin/pg_ctl" -D "$state/pg" -l "$state/pg/server.log" \
  -o "-p $PG_PORT -k $state/pg -c listen_addresses=127.0.0.1 -c wal_level=logical" -w start >/dev/null \
  || die "PostgreSQL did not start; see $state/pg/server.log"

export DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
export NATS_URL="nats://127.0.0.1:$NATS_PORT"
export WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/hooks/fraiseql"
export WEBHOOK_SECRET="whsec_$(printf 'fraiseql-observer-demo-secret!!' | base64)"
export METRICS_PORT
psql_() { psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q "$@"; }

say "installing the outbox (fraiseql-observer sql) and the demo schema"
"$bin" sql | psql_ >/dev/null
psql_ -f examples/quickstart/schema.sql >/dev/null

say "starting the demo webhook receiver on 127.0.0.1:$RECEIVER_PORT"
node examples/quickstart/receiver.js "$RECEIVER_PORT" "$WEBHOOK_SECRET" &
pids+=($!)
wait_port "$RECEIVER_PORT" || die "the receiver did not start"

config=examples/quickstart/fraiseql-observer.toml
[[ "$TRANSPORT" == memory ]] && config=examples/quickstart/fraiseql-observer.memory.toml
if [[ "$TRANSPORT" == nats ]]; then
  NODE_PATH="$root/tests/node/node_modules" node examples/quickstart/nats_tail.js "$NATS_URL" \
    > >(tee "$state/nats_tail.log") &
  pids+=($!)
  for _ in $(seq 1 50); do grep -q subscribed "$state/nats_tail.log" 2>/dev/null && break; sleep 0.1; done
fi

say "validating $config"
"$bin" validate -c "$config"
say "starting fraiseql-observer run -c $config"
"$bin" run -c "$config" &
pids+=($!)
wait_port "$METRICS_PORT" || die "fraiseql-observer did not start"
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$METRICS_PORT/readyz" >/dev/null && break
  sleep 0.1
done

say "inserting $DEMO_ORDERS orders (NOTIFY trigger) and $DEMO_ORDERS payments (outbox)"
for i in $(seq 1 "$DEMO_ORDERS"); do
  psql_ -c "INSERT INTO tb_order (identifier, items, shipping_address, total_amount)
            VALUES ('demo-$i-$RANDOM', ARRAY['book'], '1 Main St', $i * 10.5)" >/dev/null
  psql_ -c "INSERT INTO tb_payment (amount) VALUES ($i * 10.5)" >/dev/null
done
sleep 2

cat <<EOF

$(say "events are flowing. Where to look:")
  metrics        curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep fraiseql_observer_events
  readiness      curl -s http://127.0.0.1:$METRICS_PORT/readyz
  status         DATABASE_URL=$DATABASE_URL NATS_URL=$NATS_URL WEBHOOK_SECRET=... \\
                   $bin status -c $config
  more events    psql "$DATABASE_URL" -c "INSERT INTO tb_order (identifier) VALUES ('x')"
  NATS           http://127.0.0.1:$NATS_MONITOR_PORT/jsz?streams=1

EOF
curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | grep -E '^fraiseql_observer_events_(processed|published)_total' || true

if [[ -n "${NO_WAIT:-}" ]]; then
  exit 0
fi
say "press Ctrl-C to stop"
wait "${pids[-1]}"
