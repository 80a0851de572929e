#include "event_fields.hpp"

#include <cstdint>

namespace fraiseql_observer::nats_transport {
namespace {

// Position after the string starting at json[i] == '"', or npos.
size_t skip_string(std::string_view j, size_t i) {
    for (++i; i < j.size(); ++i) {
        if (j[i] == '\\') ++i;
        else if (j[i] == '"') return i + 1;
    }
    return std::string_view::npos;
}

// Position after the value starting at j[i] (string, object, array or scalar), or npos.
size_t skip_value(std::string_view j, size_t i) {
    if (i >= j.size()) return std::string_view::npos;
    if (j[i] == '"') return skip_string(j, i);
    if (j[i] == '{' || j[i] == '[') {
        int depth = 0;
        while (i < j.size()) {
            char c = j[i];
            if (c == '"') {
                i = skip_string(j, i);
                if (i == std::string_view::npos) return i;
                continue;
            }
            if (c == '{' || c == '[') ++depth;
            else if (c == '}' || c == ']') {
                if (--depth == 0) return i + 1;
            }
            ++i;
        }
        return std::string_view::npos;
    }
    while (i < j.size() && j[i] != ',' && j[i] != '}' && j[i] != ']') ++i;
    return i;
}

size_t skip_ws(std::string_view j, size_t i) {
    while (i < j.size() && (j[i] == ' ' || j[i] == '\n' || j[i] == '\r' || j[i] == '\t')) ++i;
    return i;
}

void append_utf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

uint32_t hex4(std::string_view s, size_t i) {
    uint32_t v = 0;
    for (size_t k = i; k < i + 4 && k < s.size(); ++k) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
        else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
    }
    return v;
}

} // namespace

std::string_view top_level_string(std::string_view j, std::string_view key) {
    size_t i = skip_ws(j, 0);
    if (i >= j.size() || j[i] != '{') return {};
    ++i;
    while (true) {
        i = skip_ws(j, i);
        if (i >= j.size() || j[i] != '"') return {};
        size_t key_end = skip_string(j, i);
        if (key_end == std::string_view::npos) return {};
        std::string_view k = j.substr(i + 1, key_end - i - 2);
        i = skip_ws(j, key_end);
        if (i >= j.size() || j[i] != ':') return {};
        i = skip_ws(j, i + 1);
        size_t value_end = skip_value(j, i);
        if (value_end == std::string_view::npos) return {};
        if (k == key) {
            if (j[i] != '"') return {};
            return j.substr(i + 1, value_end - i - 2);
        }
        i = skip_ws(j, value_end);
        if (i >= j.size() || j[i] != ',') return {};
        ++i;
    }
}

std::string unescape_json_string(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c != '\\' || i + 1 >= raw.size()) {
            out += c;
            continue;
        }
        char e = raw[++i];
        switch (e) {
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
            uint32_t cp = hex4(raw, i + 1);
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < raw.size() && raw[i + 1] == '\\' &&
                raw[i + 2] == 'u') {
                uint32_t lo = hex4(raw, i + 3);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            append_utf8(out, cp);
            break;
        }
        default: out += e; break; // \" \\ \/
        }
    }
    return out;
}

} // namespace fraiseql_observer::nats_transport
