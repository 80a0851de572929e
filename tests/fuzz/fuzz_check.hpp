// What every fuzz target uses to state a property: a violated property prints what was expected
// and aborts, which libFuzzer reports as a crash and saves the input as a reproducer.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace fobs_fuzz {

[[noreturn]] inline void property_failed(const char *file, int line, const char *expr,
                                         const std::string &detail) {
    std::fprintf(stderr, "%s:%d: property violated: %s\n", file, line, expr);
    if (!detail.empty()) std::fprintf(stderr, "  %s\n", detail.c_str());
    std::abort();
}

/// Bytes as a printable C-like literal, for property messages.
inline std::string shown(std::string_view s, size_t max = 300) {
    static const char *hex = "0123456789abcdef";
    std::string out = "\"";
    for (size_t i = 0; i < s.size() && i < max; ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    out += s.size() > max ? "\"..." : "\"";
    return out;
}

} // namespace fobs_fuzz

// FUZZ_CHECK(cond) or FUZZ_CHECK(cond, "detail " + text): a property of the code under test.
#define FUZZ_CHECK(cond, ...)                                                                       \
    do {                                                                                            \
        if (!(cond)) ::fobs_fuzz::property_failed(__FILE__, __LINE__, #cond, std::string(__VA_ARGS__)); \
    } while (0)
