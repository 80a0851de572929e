// The one NATS subject-token rule of the project (entity types, operations, consumer names,
// subject prefixes' parts): used by the host when it checks events and configs and by plugins
// (the nats transport) for their own names, so both sides always agree. Header-only, C++17,
// depends on nothing.
#ifndef FRAISEQL_OBSERVER_SUBJECT_TOKEN_HPP
#define FRAISEQL_OBSERVER_SUBJECT_TOKEN_HPP

#include <string_view>

namespace fraiseql_observer::sdk {

/// True when `s` can be one token of a NATS subject: non-empty, and no '.', '*', '>',
/// whitespace or control character (C0, DEL, and C1 encoded as UTF-8 0xC2 0x80..0x9F).
/// Length limits are the caller's (they depend on the rest of the subject).
inline bool is_subject_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c <= 0x20 || c == 0x7f || c == '.' || c == '*' || c == '>') return false;
        if (c == 0xC2 && i + 1 < s.size()) {
            auto n = static_cast<unsigned char>(s[i + 1]);
            if (n >= 0x80 && n <= 0x9f) return false;
        }
    }
    return true;
}

} // namespace fraiseql_observer::sdk

#endif // FRAISEQL_OBSERVER_SUBJECT_TOKEN_HPP
