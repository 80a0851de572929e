// Strict JSON text checks without building a tree (RFC 8259). It accepts the texts
// nlohmann::json accepts (tests/unit/test_json_text.cpp compares them on random inputs), except
// that it also refuses anything after a NUL byte, where nlohmann stops reading.
#pragma once

#include <string_view>
#include <vector>

namespace fraiseql_observer::host {

/// True when `text` is one complete JSON value surrounded by optional whitespace: strings are
/// valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) without raw control
/// characters, `\u` escapes pair their surrogates, numbers have no leading zeros and fit a
/// double (1e400 is refused, 1e-400 is zero). A leading
/// UTF-8 byte order mark is skipped. Iterative: nesting depth costs no stack.
bool json_valid(std::string_view text);

/// A member of a JSON object as written: the key with its quotes, the value without the
/// whitespace around it (views of the checked text).
struct JsonMember {
    std::string_view key;
    std::string_view value;
};

/// json_valid, which also collects the top-level members of an object in the producer's order
/// (`members` is cleared first; empty when the value is not an object; meaningless when false
/// is returned). One pass instead of a check and a second walk over the same bytes.
bool json_valid(std::string_view text, std::vector<JsonMember> &members);

} // namespace fraiseql_observer::host
