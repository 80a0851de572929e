// Text log lines are one line each, whatever a plugin, a payload or a peer put in a message:
// the one escaping function the host's text log sink applies to every field it prints.
#pragma once

#include <string>
#include <string_view>

namespace fraiseql_observer::host {

/// `text` with every character that could break or fake a log line made visible:
/// CR, LF and TAB as `\r`, `\n`, `\t`; other C0 controls, DEL and bytes that are not valid
/// UTF-8 as `\xNN`; C1 controls (U+0080..U+009F, e.g. NEL) as `\xNN` with the code point;
/// U+2028/U+2029 (line and paragraph separators) as `\u2028`/`\u2029`. Printable text,
/// including all other UTF-8, is copied unchanged; backslashes are not doubled (the escapes
/// are for a reader, not a parser — JSON logs are for parsers).
std::string escape_log_text(std::string_view text);

} // namespace fraiseql_observer::host
