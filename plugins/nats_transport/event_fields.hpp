// Cheap extraction of top-level string fields ("id", "entity_id", "source") from an event
// body on the consuming hot path, without building a JSON document: the body is the host's
// canonical JSON (SPEC section 4), so a single forward scan that skips nested values is enough.
#pragma once

#include <string>
#include <string_view>

namespace fraiseql_observer::nats_transport {

/// The raw (still escaped) text of top-level string member `key`, or "" when absent or not a
/// string. Escapes are rare in these fields (UUIDs, names); see `unescape_json_string`.
std::string_view top_level_string(std::string_view json, std::string_view key);

/// Decodes JSON string escapes (\" \\ \/ \b \f \n \r \t \uXXXX incl. surrogate pairs).
std::string unescape_json_string(std::string_view raw);

} // namespace fraiseql_observer::nats_transport
