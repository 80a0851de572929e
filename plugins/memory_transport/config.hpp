// Configuration of the `memory` transport: its key table (the reference: `fraiseql-observer
// plugins --describe memory`; docs/configuration.md is generated from it) and the values read
// from it.
#pragma once

#include <fraiseql_observer/config_keys.hpp>

#include <cstdint>
#include <string_view>
#include <vector>

namespace fraiseql_observer::memory {

inline constexpr double kOneDayMs = 86400000;

inline constexpr fobs_config_key config_keys[] = {
    sdk::Key("capacity", FOBS_KEY_INTEGER,
             "Messages held at most (undelivered, in flight, waiting for a retry, for all consumers "
             "together). When full, `publish` blocks (back-pressure).")
        .def("100000")
        .range(1, 100000000),
    sdk::Key("max_deliver", FOBS_KEY_INTEGER,
             "Deliveries of one message to one consumer group; when the last allowed delivery fails "
             "(RETRY, or its ack wait expires) the message is dead-lettered.")
        .def("3")
        .range(1, 1000000),
    sdk::Key("ack_wait_ms", FOBS_KEY_INTEGER,
             "A delivery not completed within this time is redelivered (its late completion is "
             "ignored). Also bounds how long closing a consumer waits for outstanding tokens.")
        .def("30000")
        .range(1, kOneDayMs),
    sdk::Key("backoff_ms", FOBS_KEY_INTEGER_LIST,
             "Delay before redelivering after a RETRY without its own `retry_after_ms`: element n−1 "
             "after the n-th delivery, the last element for later ones.")
        .def("[1000, 5000, 30000]")
        .range(0, kOneDayMs)
        .not_empty(),
    sdk::Key("dedup_window_ms", FOBS_KEY_INTEGER,
             "A publish with an event id seen within the window completes OK without storing a second "
             "copy; `0` disables.")
        .def("300000")
        .range(0, 7 * kOneDayMs),
    sdk::Key("dead_letter_capacity", FOBS_KEY_INTEGER,
             "DLQ entries kept; beyond it the oldest is dropped (logged at warn). `0` keeps none (dead "
             "letters are only logged and counted).")
        .def("10000")
        .range(0, 100000000),
    sdk::Key("publish_timeout_ms", FOBS_KEY_INTEGER,
             "How long a publish to a full transport waits for space before completing RETRY "
             "`transport full`.")
        .def("30000")
        .range(0, kOneDayMs),
    sdk::Key("drain_timeout_ms", FOBS_KEY_INTEGER,
             "On graceful shutdown, a closing consumer keeps delivering what its group still holds "
             "until none is left or this time passes. `0` closes at once.")
        .def("30000")
        .range(0, kOneDayMs),
};

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

/// Reads the component's JSON config through its key table; throws sdk::ConfigError naming
/// the key.
Config parse_config(std::string_view json_text);

} // namespace fraiseql_observer::memory
