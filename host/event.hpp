// Event normalisation (SPEC section 4): a source's raw payload becomes the canonical event, or
// is rejected with a reason.
#pragma once

#include "instance.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace fraiseql_observer::host {

/// A rejected payload and why.
struct Rejection {
    std::string reason;
};

/// Normalises one payload. Accepts FraiseQL's own names (`event_type` for `operation`, `data`
/// for `entity`). The event id is the payload's `id` when it has one, else a name-based UUID
/// (v5) over the source name, the txid (when known) and the raw payload bytes, so the same
/// change seen twice gets the same id. Never throws.
std::variant<EventData, Rejection> normalize_event(std::string_view payload,
                                                   std::string_view source_name, int64_t txid,
                                                   uint64_t now_realtime_ns);

/// True when `s` is a valid NATS subject token: non-empty, no '.', '*', '>', whitespace or
/// control characters.
bool valid_subject_token(std::string_view s);

/// Name-based UUID version 5 (SHA-1) in the fraiseql-observer namespace, lower-case text.
std::string uuid_v5(std::string_view name);

/// RFC 3339 UTC timestamp with microseconds: "2026-11-27T04:23:51.123456Z".
std::string iso8601_utc(uint64_t realtime_ns);

} // namespace fraiseql_observer::host
