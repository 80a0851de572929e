// Configuration of the `memory` transport (docs/plugins/memory.md is the reference).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace fraiseql_observer::memory {

struct Config {
    uint64_t capacity = 100000;             // messages held at most
    uint32_t max_deliver = 3;               // deliveries per consumer group before dead-lettering
    int64_t ack_wait_ms = 30000;            // un-completed delivery is redelivered after this
    std::vector<int64_t> backoff_ms = {1000, 5000, 30000}; // RETRY delay by delivery count
    int64_t dedup_window_ms = 300000;       // same event id within the window is stored once
    uint64_t dead_letter_capacity = 10000;  // DLQ entries kept (oldest dropped beyond)
    int64_t publish_timeout_ms = 30000;     // how long a publish waits for space when full
    int64_t drain_timeout_ms = 30000;       // on close, keep delivering what is held (0 = don't)
};

/// Parses the component's JSON config; throws sdk::ConfigError naming the key.
Config parse_config(std::string_view json_text);

} // namespace fraiseql_observer::memory
