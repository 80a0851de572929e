// Configuration of the `nats` transport: the seed's keys verbatim plus our own (see
// docs/plugins/nats.md for every key, its type, default and an example).
#pragma once

#include <fraiseql_observer/config_keys.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::nats_transport {

inline constexpr const char *kStorages[] = {"file", "memory", nullptr};

/// The key table (the reference: `fraiseql-observer plugins --describe nats`;
/// docs/configuration.md is generated from it). What a table cannot say (URL syntax, name and
/// subject rules, keys that go together) parse_config checks.
inline constexpr fobs_config_key config_keys[] = {
    sdk::Key("url", FOBS_KEY_STRING_OR_LIST,
             "Server URL(s), several for a cluster: a string may list several, comma-separated; each a "
             "`nats://`, `tls://`, `ws://` or `wss://` URL with a host and, if given, a port 1 – 65 535. "
             "Credentials embedded in a URL (`nats://u:p@host`) are masked in logs, `status` and "
             "errors. (The built-in transport uses `$NATS_URL`.)")
        .def("\"nats://127.0.0.1:4222\"")
        .not_empty(),
    sdk::Key("user", FOBS_KEY_STRING, "User name for user/password authentication.").def("\"\""),
    sdk::Key("password", FOBS_KEY_STRING, "Password for user/password authentication; requires `user`.")
        .def("\"\"")
        .secret(),
    sdk::Key("token", FOBS_KEY_STRING, "Token authentication.").def("\"\"").secret(),
    sdk::Key("creds_file", FOBS_KEY_STRING,
             "A `.creds` file (user JWT + nkey seed); exclusive with `nkey_seed_file`.")
        .def("\"\""),
    sdk::Key("nkey_seed_file", FOBS_KEY_STRING,
             "A file holding a user nkey seed (`SU…`); the public key is derived from it. Exclusive "
             "with `creds_file`.")
        .def("\"\""),
    sdk::Key("tls_ca_file", FOBS_KEY_STRING, "CA bundle to verify the server; turns TLS on.").def("\"\""),
    sdk::Key("tls_cert_file", FOBS_KEY_STRING,
             "Client certificate; turns TLS on. With `tls_key_file` (both or neither).")
        .def("\"\""),
    sdk::Key("tls_key_file", FOBS_KEY_STRING, "Client certificate's key; with `tls_cert_file`.").def("\"\""),
    sdk::Key("connect_timeout_ms", FOBS_KEY_INTEGER, "Timeout of one connection attempt.")
        .def("2000")
        .range(1, 600000),
    sdk::Key("reconnect_wait_ms", FOBS_KEY_INTEGER,
             "Pause between reconnection attempts (with jitter). Reconnection is automatic and never "
             "gives up, also for the first connection.")
        .def("500")
        .range(1, 600000),
    sdk::Key("ping_interval_ms", FOBS_KEY_INTEGER,
             "How often the client PINGs the server it is connected to. A server that answers "
             "no PING for `max_pings_out` intervals in a row (hung, or cut off without a TCP "
             "reset) is left for another member: detection within about "
             "`ping_interval_ms × (max_pings_out + 1)`. NATS clients default to 2 minutes.")
        .def("5000")
        .range(100, 3600000),
    sdk::Key("max_pings_out", FOBS_KEY_INTEGER,
             "PINGs without a PONG after which the connection counts as stale (see "
             "`ping_interval_ms`).")
        .def("2")
        .range(1, 100),
    sdk::Key("stream_name", FOBS_KEY_STRING,
             "The event stream; no `.`, `*`, `>`, `/`, `\\`, whitespace or control characters.")
        .def("\"fraiseql_events\"")
        .not_empty(),
    sdk::Key("subject_prefix", FOBS_KEY_STRING,
             "Events are published on `{subject_prefix}.{entity_type}.{operation}`; the stream holds "
             "`{subject_prefix}.>`. Dot-separated tokens, each non-empty, without `*`, `>` or "
             "whitespace.")
        .def("\"fraiseql.mutation\"")
        .not_empty(),
    sdk::Key("consumer_name", FOBS_KEY_STRING,
             "The durable consumer of pipelines that name none (`[[pipelines]] consumer` overrides "
             "it); rules as `stream_name`.")
        .def("\"fraiseql_observer_worker\"")
        .not_empty(),
    sdk::Key("dlq_stream", FOBS_KEY_STRING,
             "The dead-letter stream; default `{stream_name}_dlq`; rules as `stream_name`, different "
             "from it.")
        .not_empty(),
    sdk::Key("dlq_prefix", FOBS_KEY_STRING,
             "DLQ subjects: `{dlq_prefix}.{entity_type}.{operation}`; rules as `subject_prefix`, must "
             "not overlap it (neither may be a prefix of the other).")
        .def("\"fraiseql.dlq\"")
        .not_empty(),
    sdk::Key("publish_window", FOBS_KEY_INTEGER,
             "Publishes in flight (waiting for their PubAck). When full, `publish` blocks: "
             "back-pressure for the source.")
        .def("1000")
        .range(1, 1000000),
    sdk::Key("publish_timeout_ms", FOBS_KEY_INTEGER, "PubAck timeout of one publish attempt.")
        .def("5000")
        .range(10, 600000),
    sdk::Key("publish_max_attempts", FOBS_KEY_INTEGER,
             "Attempts (same `Nats-Msg-Id`) before a publish completes RETRY; pauses of 100 ms doubling "
             "up to 2 s between attempts.")
        .def("5")
        .range(1, 1000),
    sdk::Key("fetch_batch", FOBS_KEY_INTEGER, "Messages requested per pull.").def("256").range(1, 10000),
    sdk::Key("fetch_timeout_ms", FOBS_KEY_INTEGER,
             "How long one pull waits for messages (also bounds how fast a consumer closes).")
        .def("500")
        .range(10, 60000),
    sdk::Key("jetstream.max_bytes", FOBS_KEY_INTEGER,
             "Stream size limit (oldest discarded); `-1` = unlimited, `0` is refused. JetStream "
             "reserves this much storage up front. The DLQ stream gets the same limit capped at 1 GiB.")
        .def("10737418240")
        .range(-1, 9e18),
    sdk::Key("jetstream.max_age_days", FOBS_KEY_NUMBER,
             "Retention of the event stream in days; fractions allowed; `0` = unlimited.")
        .def("7")
        .range(0, 36500),
    sdk::Key("jetstream.max_deliver", FOBS_KEY_INTEGER,
             "Deliveries per message; when the last allowed delivery fails, the event is dead-lettered.")
        .def("3")
        .range(1, 1000000),
    sdk::Key("jetstream.ack_wait_secs", FOBS_KEY_INTEGER,
             "Redelivery when a delivered message is neither acked nor kept alive (long actions are "
             "kept alive automatically).")
        .def("30")
        .range(1, 86400),
    sdk::Key("jetstream.dedup_window_minutes", FOBS_KEY_NUMBER,
             "JetStream duplicate window for `Nats-Msg-Id`, > 0. A warning is logged when it is shorter "
             "than the publish retry horizon (`publish_max_attempts` × `publish_timeout_ms` + pauses).")
        .def("5")
        .range(0, 10080),
    sdk::Key("jetstream.replicas", FOBS_KEY_INTEGER, "Stream replicas (3 in a cluster).").def("1").range(1, 5),
    sdk::Key("jetstream.storage", FOBS_KEY_STRING,
             "Stream storage. Cannot change on an existing stream (a startup error).")
        .def("\"file\"")
        .choices(kStorages),
    sdk::Key("jetstream.backoff_secs", FOBS_KEY_NUMBER_LIST,
             "The consumer's `BackOff` (redelivery delays after an ack timeout) and the nak delay by "
             "delivery count (the last entry repeats); each > 0, fewer entries than `max_deliver`. "
             "Empty: no consumer BackOff, nak delays 15 s, 2 min, 5 min, 10 min.")
        .def("[]")
        .range(0, 31536000),
    sdk::Key("jetstream.max_ack_pending", FOBS_KEY_INTEGER,
             "Unacked messages per consumer (JetStream stops delivering beyond it); `-1` = unlimited, "
             "`0` is refused.")
        .def("10000")
        .range(-1, 10000000),
};

struct NatsConfig {
    // Connection.
    std::vector<std::string> urls{"nats://127.0.0.1:4222"};
    std::string user, password, token, creds_file, nkey_seed_file;
    std::string tls_ca_file, tls_cert_file, tls_key_file;
    int64_t connect_timeout_ms = 2000;
    int64_t reconnect_wait_ms = 500;
    int64_t ping_interval_ms = 5000;
    int64_t max_pings_out = 2;

    // Names.
    std::string stream_name = "fraiseql_events";
    std::string subject_prefix = "fraiseql.mutation";
    std::string consumer_name = "fraiseql_observer_worker";
    std::string dlq_stream; // default "{stream_name}_dlq"
    std::string dlq_prefix = "fraiseql.dlq";

    // [jetstream]
    int64_t max_bytes = 10'737'418'240;
    double max_age_days = 7;
    int64_t max_deliver = 3;
    int64_t ack_wait_secs = 30;
    double dedup_window_minutes = 5;
    int64_t replicas = 1;
    bool memory_storage = false;
    std::vector<double> backoff_secs; // empty: no consumer BackOff, default nak schedule
    int64_t max_ack_pending = 10'000;

    // Publishing.
    int64_t publish_window = 1000;
    int64_t publish_timeout_ms = 5000;
    int64_t publish_max_attempts = 5;

    // Consuming.
    int64_t fetch_batch = 256;
    int64_t fetch_timeout_ms = 500;

    /// Nak delay for a RETRY without retry_after, by delivery count (1-based).
    int64_t nak_delay_ms(uint64_t delivery_count) const;
    /// How long a publish may be retried with the same Nats-Msg-Id before giving up.
    int64_t publish_retry_horizon_ms() const;
    int64_t max_age_ns() const { return static_cast<int64_t>(max_age_days * 86400e9); }
    int64_t duplicates_ns() const { return static_cast<int64_t>(dedup_window_minutes * 60e9); }
    std::string url_list() const; // comma-joined, for logs (credentials stripped)
};

/// Parses and checks the JSON config. Throws sdk::ConfigError(key, message); `warnings`
/// receives non-fatal remarks (e.g. a dedup window shorter than the publish retry horizon).
NatsConfig parse_config(std::string_view json, std::vector<std::string> &warnings);

/// True when `token` is a valid NATS subject token (non-empty; no '.', '*', '>', whitespace
/// or control characters).
bool valid_subject_token(std::string_view token);

} // namespace fraiseql_observer::nats_transport
