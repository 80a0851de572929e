// Strict JSON text checks without building a tree (RFC 8259; the same texts nlohmann::json
// accepts, which tests/unit/test_json_text.cpp checks against nlohmann on random inputs).
#pragma once

#include <string_view>

namespace fraiseql_observer::host {

/// True when `text` is one complete JSON value surrounded by optional whitespace: strings are
/// valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) without raw control
/// characters, `\u` escapes pair their surrogates, numbers have no leading zeros. A leading
/// UTF-8 byte order mark is skipped. Iterative: nesting depth costs no stack.
bool json_valid(std::string_view text);

} // namespace fraiseql_observer::host
