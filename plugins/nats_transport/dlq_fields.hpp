// Reading what comes back from JetStream about dead letters, without a connection: the header
// values of a DLQ entry (`dlq list/show`) and the MAX_DELIVERIES / MSG_TERMINATED advisories
// (the safety net). Kept apart from the cnats calls so a fuzz target can feed it arbitrary bytes
// (tests/fuzz/fuzz_nats_dlq.cpp): anyone who can publish to the DLQ or advisory subjects
// controls these bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fraiseql_observer::nats_transport {

/// A numeric DLQ header (Fobs-Dlq-Delivery-Count, Fobs-Original-Sequence): decimal digits that
/// fit 64 bits; 0 for anything else (absent, signed, spaced, too big).
uint64_t header_u64(std::string_view value);

/// The event id of a DLQ entry: the body's top-level "id", else the Nats-Msg-Id header
/// "<id>:dlq:<seq>" without its ":dlq:<seq>" suffix.
std::string dlq_event_id(std::string_view body, std::string_view msg_id_header);

struct Advisory {
    uint64_t stream_seq = 0;
    uint64_t deliveries = 0;
    bool max_deliveries = false; // else a MSG_TERMINATED advisory
};

/// A JetStream consumer advisory; nullopt with `error` set when it is not readable JSON or its
/// numbers are not unsigned integers. A missing stream_seq reads as 0 (nothing to copy).
std::optional<Advisory> parse_advisory(std::string_view json, std::string &error);

} // namespace fraiseql_observer::nats_transport
