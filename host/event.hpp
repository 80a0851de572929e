// Event normalisation (SPEC section 4): a source's raw payload becomes the canonical event, or
// is rejected with a reason.
#pragma once

#include "instance.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace fraiseql_observer::host {

/// What the event model accepts, so that every field fits where it later goes on the wire:
/// `{prefix}.{entity_type}.{operation}` stays far below NATS's 4096-byte control line, the id
/// fits a message/HTTP header line, and nothing is cut short at a NUL by a C string. A payload
/// beyond a limit is rejected with the limit in the reason, never truncated.
inline constexpr size_t k_max_event_id_bytes = 200;
inline constexpr size_t k_max_subject_token_bytes = 128; // entity_type, operation
inline constexpr size_t k_max_entity_id_bytes = 1024;

/// A rejected payload and why.
struct Rejection {
    std::string reason;
};

/// Normalises one payload. Accepts FraiseQL's own names (`event_type` for `operation`, `data`
/// for `entity`). The event id is the payload's `id` when it has one, else a name-based UUID
/// (v5) over the source name, the txid (when known) and the raw payload bytes, so the same
/// change seen twice gets the same id. Never throws.
///
/// Rejected, besides malformed JSON and missing fields: an `id` that is longer than
/// k_max_event_id_bytes, holds a control character (C0 including CR, LF, TAB and NUL; DEL; C1)
/// or starts or ends with a space (header values are trimmed, so the id would change on the
/// way); an `entity_type`/`operation` that is not a subject token or is longer than
/// k_max_subject_token_bytes; an `entity_id` longer than k_max_entity_id_bytes or holding NUL.
std::variant<EventData, Rejection> normalize_event(std::string_view payload,
                                                   std::string_view source_name, int64_t txid,
                                                   uint64_t now_realtime_ns);

/// The fields of a canonical event body (what normalize_event made, as a transport stored
/// it): id, entity_type, operation, entity_id (strings, required) and source (optional);
/// `body` stays empty (the caller has it). A Rejection says what is missing. Never throws.
std::variant<EventData, Rejection> decode_event_body(std::string_view body);

/// True when `s` is a valid NATS subject token: non-empty, no '.', '*', '>', whitespace or
/// control characters (C0, DEL, and C1 as UTF-8). Length is checked by normalize_event.
bool valid_subject_token(std::string_view s);

/// Name-based UUID version 5 (SHA-1) in the fraiseql-observer namespace, lower-case text.
std::string uuid_v5(std::string_view name);

/// RFC 3339 UTC timestamp with microseconds: "2026-11-27T04:23:51.123456Z".
std::string iso8601_utc(uint64_t realtime_ns);

} // namespace fraiseql_observer::host
