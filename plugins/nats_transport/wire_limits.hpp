// What NATS accepts on the wire, checked before anything is sent: a message the server would
// refuse permanently must be refused here, as a value, because nats-server answers some of
// them by closing the whole connection (a protocol line longer than max_control_line) and
// cnats silently mangles others (a CR/LF inside a header value, a NUL that truncates it).
#pragma once

#include "nats_config.hpp"

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fraiseql_observer::nats_transport {

/// nats-server closes a client whose protocol line ("HPUB <subject> <reply> <hdr> <total>")
/// exceeds max_control_line (4096 by default). 512 bytes are left for the verb, the reply inbox
/// of an asynchronous publish and the sizes.
inline constexpr size_t max_subject_bytes = 4096 - 512;
/// Bound for one header value we write (Nats-Msg-Id, DLQ reason ...): headers travel in the
/// payload, so only max_payload limits them, but an id this long is a defect, not an id.
inline constexpr size_t max_header_value_bytes = 1024;

/// "" when `value` can be a NATS header value, else why not ("contains a CR (0x0D) at byte 3").
/// Empty values are refused too: cnats 3.4.1 mis-parses them (NOTES.md).
inline std::string header_value_problem(std::string_view value);

/// "" when "{prefix}.{entity}.{operation}" is a subject NATS accepts safely, else why not.
inline std::string subject_problem(std::string_view prefix, std::string_view entity,
                            std::string_view operation);

/// Bytes the headers take on the wire ("NATS/1.0\r\n", "Key: value\r\n" each, "\r\n").
inline size_t header_bytes(const std::vector<std::pair<std::string, std::string>> &headers);

/// `text` made safe for one log line or one header value: control characters as \xNN, at most
/// `max` bytes of it followed by "...(N bytes)".
inline std::string printable(std::string_view text, size_t max = 120);


// ---- definitions (header-only: small, and shared by the publisher and the DLQ writer)


namespace wire_detail {
inline std::string hex_byte(unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\x%02X", c);
    return buf;
}
} // namespace wire_detail

inline std::string header_value_problem(std::string_view value) {
    if (value.empty()) return "is empty";
    if (value.size() > max_header_value_bytes)
        return "is " + std::to_string(value.size()) + " bytes, more than " +
               std::to_string(max_header_value_bytes);
    for (size_t i = 0; i < value.size(); ++i) {
        auto c = static_cast<unsigned char>(value[i]);
        const char *name = c == '\r' ? "a CR" : c == '\n' ? "an LF" : c == '\0' ? "a NUL" : nullptr;
        if (name)
            return std::string("contains ") + name + " (" + wire_detail::hex_byte(c).substr(1) + ") at byte " +
                   std::to_string(i);
    }
    return {};
}

inline std::string subject_problem(std::string_view prefix, std::string_view entity,
                            std::string_view operation) {
    if (!valid_subject_token(entity))
        return "entity_type \"" + printable(entity, 64) +
               "\" is not a valid NATS subject token (empty, or holds '.', '*', '>', "
               "whitespace or a control character)";
    if (!valid_subject_token(operation))
        return "operation \"" + printable(operation, 64) +
               "\" is not a valid NATS subject token (empty, or holds '.', '*', '>', "
               "whitespace or a control character)";
    size_t size = prefix.size() + entity.size() + operation.size() + 2;
    if (size > max_subject_bytes)
        return "subject is " + std::to_string(size) + " bytes, more than the " +
               std::to_string(max_subject_bytes) +
               " NATS accepts safely (nats-server closes the connection on a protocol line "
               "over max_control_line, 4096)";
    return {};
}

inline size_t header_bytes(const std::vector<std::pair<std::string, std::string>> &headers) {
    size_t n = 10 + 2; // "NATS/1.0\r\n" ... "\r\n"
    for (const auto &[k, v] : headers) n += k.size() + 2 + v.size() + 2;
    return n;
}

inline std::string printable(std::string_view text, size_t max) {
    std::string out;
    size_t shown = 0;
    for (char ch : text) {
        if (shown >= max) break;
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) out += wire_detail::hex_byte(c);
        else out += ch;
        ++shown;
    }
    if (shown < text.size()) out += "...(" + std::to_string(text.size()) + " bytes)";
    return out;
}

} // namespace fraiseql_observer::nats_transport
