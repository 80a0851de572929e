#include "dlq_fields.hpp"

#include <nlohmann/json.hpp>

#include <charconv>

namespace fraiseql_observer::nats_transport {

uint64_t header_u64(std::string_view value) {
    // from_chars, not stoull: stoull skips spaces and wraps "-1" to 2^64-1.
    uint64_t n = 0;
    if (value.empty() || value[0] < '0' || value[0] > '9') return 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    return ec == std::errc() && end == value.data() + value.size() ? n : 0;
}

std::string dlq_event_id(std::string_view body, std::string_view msg_id_header) {
    // Not the hot path (dlq list/show/replay): a JSON parser, not a scanner of our own.
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object()) {
        auto it = j.find("id");
        if (it != j.end() && it->is_string() && !it->get_ref<const std::string &>().empty())
            return it->get<std::string>();
    }
    auto pos = msg_id_header.rfind(":dlq:");
    return std::string(pos == std::string_view::npos ? msg_id_header : msg_id_header.substr(0, pos));
}

std::optional<Advisory> parse_advisory(std::string_view text, std::string &error) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        error = "not a JSON object";
        return std::nullopt;
    }
    Advisory a;
    for (auto [key, out] : {std::pair{"stream_seq", &a.stream_seq}, std::pair{"deliveries", &a.deliveries}}) {
        auto it = j.find(key);
        if (it == j.end()) continue;
        if (!it->is_number_unsigned()) {
            error = std::string(key) + " is not an unsigned integer";
            return std::nullopt;
        }
        *out = it->get<uint64_t>();
    }
    auto type = j.find("type");
    if (type != j.end()) {
        if (!type->is_string()) {
            error = "type is not a string";
            return std::nullopt;
        }
        a.max_deliveries = type->get_ref<const std::string &>().find("max_deliver") != std::string::npos;
    }
    return a;
}

} // namespace fraiseql_observer::nats_transport
