// The file `fraiseql-observer init` writes: the SPEC section 3 layout, commented, loadable as is
// once DATABASE_URL is set.
#include "config.hpp"

namespace fraiseql_observer::host {

std::string starter_config() {
    return R"toml(# fraiseql-observer configuration.
#
# Strings may use ${VAR} (an error when VAR is unset), ${VAR:-default}, and $$ for a literal $.
# Values that use ${...}, and keys named like secret/password/token/key, are never printed.
# Check this file with:  fraiseql-observer validate -c fraiseql-observer.toml

[observer]
plugin_dirs           = []                 # extra plugin directories
metrics_listen        = "127.0.0.1:9464"   # /metrics, /healthz, /readyz; "" disables it
log_level             = "info"             # trace|debug|info|warn|error
log_format            = "text"             # text|json
shutdown_timeout_secs = 30                 # how long SIGTERM waits for in-flight work

# Where events come from: PostgreSQL LISTEN/NOTIFY.
[sources.app_db]
plugin   = "pg_listen"
conninfo = "${DATABASE_URL}"               # libpq URI or key=value string
channels = ["fraiseql_events"]
mode     = "notify"                        # notify | outbox (zero loss; see `fraiseql-observer sql`)

# How events travel: NATS JetStream. This is the transport named "default".
[transport]
transport = "nats"

[transport.nats]
url            = "${NATS_URL:-nats://127.0.0.1:4222}"
stream_name    = "fraiseql_events"
subject_prefix = "fraiseql.mutation"       # subjects: fraiseql.mutation.<EntityType>.<OPERATION>
consumer_name  = "fraiseql_observer_worker"

[transport.nats.jetstream]
max_bytes            = 10_737_418_240      # 10 GB retention limit
max_age_days         = 7                   # retain events for 7 days
max_deliver          = 3                   # deliveries before an event goes to the DLQ
ack_wait_secs        = 30                  # redeliver when not acked within 30 s
dedup_window_minutes = 5                   # Nats-Msg-Id de-duplication window

# What to do with each event. `log` writes one line per event; replace or extend it with a
# webhook, for example:
#
# [actions.order_webhook]
# plugin = "webhook"
# url    = "https://orders.internal/hooks/fraiseql"
# secret = "${WEBHOOK_SECRET}"             # whsec_<base64>: Standard Webhooks signing
[actions.log]
plugin = "log"

# Wiring: source -> transport -> actions. Run both halves in one process (--role all, the
# default) or split them with --role publisher / --role worker.
[[pipelines]]
name      = "default"
source    = "app_db"                       # omit for a worker-only pipeline
transport = "default"
actions   = ["log"]                        # omit or [] for a publisher-only pipeline
# entity_types = ["Order"]                 # optional filter
# operations   = ["INSERT", "UPDATE"]      # optional filter
# consumer     = "fraiseql_observer_worker" # durable consumer (default: the transport's consumer_name)
# max_in_flight = 1024                     # back-pressure: events in flight per stage
)toml";
}

} // namespace fraiseql_observer::host
