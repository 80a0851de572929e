// Configuration of the `nats` transport: the seed's keys verbatim plus our own (see
// docs/plugins/nats.md for every key, its type, default and an example).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::nats_transport {

struct NatsConfig {
    // Connection.
    std::vector<std::string> urls{"nats://127.0.0.1:4222"};
    std::string user, password, token, creds_file, nkey_seed_file;
    std::string tls_ca_file, tls_cert_file, tls_key_file;
    int64_t connect_timeout_ms = 2000;
    int64_t reconnect_wait_ms = 500;

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
