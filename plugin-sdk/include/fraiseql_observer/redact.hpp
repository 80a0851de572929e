// fraiseql-observer plugin SDK: the one redaction function for every output.
//
// The host and every plugin pass text that may carry a configured secret through
// redact_secrets() before it reaches a person or a file: `status` (text and --json), log lines,
// error messages and outcome reasons. Configuration values are interpolated from the
// environment (`${NATS_URL}`, `${WEBHOOK_URL}`), so a connection string with a password in it is
// the normal case, not the exception.
//
// What is replaced by `***` (everything else is copied byte for byte):
//
//   1. In every URL in the text (`scheme://…`, any scheme): the password of the userinfo
//      (`nats://user:PASS@host` -> `nats://user:***@host`), or the whole userinfo when it has no
//      colon, because a lone userinfo is a token for NATS and others
//      (`nats://TOKEN@host` -> `nats://***@host`). A password holding an unencoded `/` is still
//      found (`user:pa/ss@host`), as long as what follows the colon is not a numeric port.
//   2. In the query string and the fragment of every URL: the value of each parameter whose name
//      looks like a credential (see looks_like_credential_name below, case-insensitive): the
//      name is kept, the value becomes `***` (`?token=abc&x=1` -> `?token=***&x=1`).
//   3. Outside URLs: `name=value` pairs whose name looks like a credential, as in a libpq
//      connection string (`host=db password=s3cret` -> `host=db password=***`); the bare
//      words key, sig, auth, session and pass are too common in prose ("a key=value string")
//      and count only inside a URL's query (`?key=…`). Spaces around
//      `=` are allowed; a value in single quotes (libpq, with backslash escapes) or double
//      quotes is replaced as a whole, an unquoted value runs to the next space or `"`.
//
// Not found (say so where it matters): a secret that is a plain path segment
// (`https://hooks.example.com/services/T00/B00/XXXX`), a secret with no name next to it, and
// URLs written without `scheme://`. Callers that know a secret's value (the configured ones)
// should also replace that value literally.
//
// The function throws nothing but std::bad_alloc, keeps no state (safe from any thread) and
// runs in time linear in the text.
//
// Depends only on the C++17 standard library.
#ifndef FRAISEQL_OBSERVER_REDACT_HPP
#define FRAISEQL_OBSERVER_REDACT_HPP

#include <cstddef>
#include <string>
#include <string_view>

namespace fraiseql_observer::sdk {

namespace redact_detail {

inline char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
inline bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline bool is_scheme_char(char c) noexcept { return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.'; }
inline bool is_name_char(char c) noexcept { return is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.'; }
inline bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// Characters that never appear unencoded inside a URL: where a URL in running text ends.
inline bool ends_url(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '"' || c == '<' || c == '>' || c == '`' || c == '{' || c == '}' ||
           c == '|' || c == '\\' || c == '^';
}

inline bool contains(std::string_view hay, std::string_view needle) noexcept {
    return hay.find(needle) != std::string_view::npos;
}
inline bool ends_with(std::string_view s, std::string_view suffix) noexcept {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

} // namespace redact_detail

/// True when a parameter or key name looks like it names a credential (case-insensitive):
/// it contains token, secret, passw(or)d, passwd, pwd, signature, credential, session, apikey,
/// api_key, api-key, auth (but not "author" alone), or jwt; or it is key, pass, sig, or ends in
/// `_key`/`-key`/`.key`/`_sig`/`-sig`. Deliberately broad: hiding a harmless value costs a
/// little diagnosis, printing a secret cannot be undone.
inline bool looks_like_credential_name(std::string_view name) {
    using namespace redact_detail;
    std::string n;
    n.reserve(name.size());
    for (char c : name) n.push_back(lower(c));
    for (std::string_view w : {"token", "secret", "password", "passwd", "pwd", "signature", "credential", "session",
                               "apikey", "api_key", "api-key", "jwt"})
        if (contains(n, w)) return true;
    if (contains(n, "auth") && !(contains(n, "author") && !contains(n, "authoriz"))) return true;
    if (n == "key" || n == "pass" || n == "sig") return true;
    for (std::string_view w : {"_key", "-key", ".key", "_sig", "-sig"})
        if (ends_with(n, w)) return true;
    return false;
}

namespace redact_detail {

// Credential names that are also ordinary words in prose: redacted in URL queries only.
inline bool is_common_word(std::string_view name) {
    std::string n;
    for (char c : name) n.push_back(lower(c));
    return n == "key" || n == "sig" || n == "auth" || n == "session" || n == "pass";
}

// `params` is a query string or fragment without its leading `?`/`#`: name=value pairs
// separated by `&` or `;`. Credential-looking values become ***.
inline void redact_params(std::string_view params, std::string &out) {
    size_t i = 0;
    while (i <= params.size()) {
        size_t end = params.find_first_of("&;", i);
        if (end == std::string_view::npos) end = params.size();
        std::string_view pair = params.substr(i, end - i);
        size_t eq = pair.find('=');
        if (eq != std::string_view::npos && eq + 1 < pair.size() && looks_like_credential_name(pair.substr(0, eq))) {
            out.append(pair.substr(0, eq + 1));
            out.append("***");
        } else {
            out.append(pair);
        }
        if (end == params.size()) break;
        out.push_back(params[end]);
        i = end + 1;
    }
}

// The part of a URL after `scheme://`, up to where the URL ends (`rest` holds no terminator
// and no second URL). Appends its redacted form to `out`.
inline void redact_url_tail(std::string_view rest, std::string &out) {
    size_t authority_end = rest.find_first_of("/?#");
    if (authority_end == std::string_view::npos) authority_end = rest.size();
    size_t at = rest.substr(0, authority_end).rfind('@');
    if (at == std::string_view::npos) {
        // RFC 3986 wants `/` in a password percent-encoded; people do not always do it. Treat
        // `user:pa/ss@host` as userinfo unless the colon is followed by a port.
        size_t q = rest.find_first_of("?#");
        std::string_view head = q == std::string_view::npos ? rest : rest.substr(0, q);
        size_t cand = head.rfind('@');
        if (cand != std::string_view::npos) {
            size_t colon = head.substr(0, cand).find(':');
            if (colon != std::string_view::npos && head.substr(0, colon).find('/') == std::string_view::npos) {
                size_t seg_end = head.find('/', colon);
                if (seg_end == std::string_view::npos || seg_end > cand) seg_end = cand;
                std::string_view after = head.substr(colon + 1, seg_end - colon - 1);
                bool port = !after.empty();
                for (char c : after) port = port && is_digit(c);
                if (!port) at = cand;
            }
        }
    }
    size_t pos = 0;
    if (at != std::string_view::npos && at > 0) {
        std::string_view userinfo = rest.substr(0, at);
        size_t colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            out.append("***");
        } else {
            out.append(userinfo.substr(0, colon + 1));
            out.append("***");
        }
        pos = at; // the '@' is copied with the host below
    }
    // Host, port and path are copied; query and fragment parameters are redacted.
    size_t q = rest.find_first_of("?#", pos);
    if (q == std::string_view::npos) {
        out.append(rest.substr(pos));
        return;
    }
    out.append(rest.substr(pos, q - pos));
    while (q < rest.size()) {
        out.push_back(rest[q]);
        size_t start = q + 1;
        size_t stop = rest[q] == '?' ? rest.find('#', start) : std::string_view::npos;
        if (stop == std::string_view::npos) stop = rest.size();
        redact_params(rest.substr(start, stop - start), out);
        q = stop;
    }
}

// A `name = value` credential outside a URL, starting at text[i] (a name's first character).
// Returns the position after the value and appends `name=***` (spacing kept), or returns i when
// text[i..] is not a credential assignment.
inline size_t redact_assignment(std::string_view text, size_t i, std::string &out) {
    size_t name_end = i;
    while (name_end < text.size() && is_name_char(text[name_end])) ++name_end;
    size_t eq = name_end;
    while (eq < text.size() && (text[eq] == ' ' || text[eq] == '\t')) ++eq;
    if (eq >= text.size() || text[eq] != '=' || (eq + 1 < text.size() && text[eq + 1] == '=')) return i;
    std::string_view name = text.substr(i, name_end - i);
    if (!looks_like_credential_name(name) || is_common_word(name)) return i;
    size_t v = eq + 1;
    while (v < text.size() && (text[v] == ' ' || text[v] == '\t')) ++v;
    if (v >= text.size()) return i;
    size_t end = v;
    if (text[v] == '\'' || text[v] == '"') {
        char quote = text[v];
        end = v + 1;
        while (end < text.size() && text[end] != quote) end += (text[end] == '\\' && end + 1 < text.size()) ? 2 : 1;
        if (end < text.size()) ++end; // the closing quote
    } else {
        while (end < text.size() && !is_space(text[end]) && text[end] != '"')
            end += (text[end] == '\\' && end + 1 < text.size()) ? 2 : 1;
    }
    if (end == v) return i;
    out.append(text.substr(i, v - i));
    out.append("***");
    return end;
}

} // namespace redact_detail

/// `text` with the credentials described at the top of this header replaced by `***`.
inline std::string redact_secrets(std::string_view text) {
    using namespace redact_detail;
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        if ((i == 0 || !is_scheme_char(text[i - 1])) && is_alpha(text[i])) {
            size_t s = i;
            while (s < text.size() && is_scheme_char(text[s])) ++s;
            if (text.substr(s, 3) == "://") {
                size_t tail = s + 3;
                size_t end = tail;
                // The URL ends where the text stops being a URL, or where a second URL glued to
                // it starts (`nats://a,nats://b`): that one is handled on its own, and no
                // character is scanned more than a few times (linear however hostile the text).
                while (end < text.size() && !ends_url(text[end])) {
                    if (text[end] == ':' && text.substr(end, 3) == "://") {
                        size_t ns = end;
                        while (ns > tail && is_scheme_char(text[ns - 1])) --ns;
                        while (ns < end && !is_alpha(text[ns])) ++ns;
                        end = ns;
                        break;
                    }
                    ++end;
                }
                out.append(text.substr(i, tail - i));
                redact_url_tail(text.substr(tail, end - tail), out);
                i = end;
                continue;
            }
        }
        if ((i == 0 || !is_name_char(text[i - 1])) && is_name_char(text[i])) {
            size_t next = redact_assignment(text, i, out);
            if (next != i) {
                i = next;
                continue;
            }
        }
        out.push_back(text[i]);
        ++i;
    }
    return out;
}

} // namespace fraiseql_observer::sdk

#endif // FRAISEQL_OBSERVER_REDACT_HPP
