#include "event.hpp"

#include "json_text.hpp"

#include <fraiseql_observer/subject_token.hpp>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <tuple>
#include <vector>

namespace fraiseql_observer::host {

using ojson = nlohmann::ordered_json;

namespace {

// Position of the first control character in `s` (C0, DEL, or a C1 code point U+0080..U+009F
// encoded as UTF-8 0xC2 0x80..0x9F), or npos. Payloads are valid UTF-8 (json_valid), so a 0xC2
// byte always starts a two-byte sequence.
size_t find_control(std::string_view s) {
    for (size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) return i;
        if (c == 0xC2 && i + 1 < s.size()) {
            auto n = static_cast<unsigned char>(s[i + 1]);
            if (n >= 0x80 && n <= 0x9f) return i;
        }
    }
    return std::string_view::npos;
}

std::string hex_byte(unsigned char c) {
    static const char *hex = "0123456789abcdef";
    return std::string("0x") + hex[c >> 4] + hex[c & 0xf];
}

} // namespace

bool valid_subject_token(std::string_view s) { return sdk::is_subject_token(s); }

// The namespace of fraiseql-observer's name-based event ids (a fixed random UUID).
static const unsigned char k_namespace[16] = {0x6f, 0x1c, 0x3a, 0x52, 0x8e, 0x0b, 0x4d, 0x7e,
                                              0x9a, 0x27, 0x41, 0xc5, 0x13, 0xb8, 0x62, 0xf0};

std::string uuid_v5(std::string_view name) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
    EVP_DigestUpdate(ctx, k_namespace, sizeof k_namespace);
    EVP_DigestUpdate(ctx, name.data(), name.size());
    EVP_DigestFinal_ex(ctx, digest, &len);
    EVP_MD_CTX_free(ctx);
    digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x50);
    digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);
    static const char *hex = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0x0f];
    }
    return out;
}

std::string iso8601_utc(uint64_t ns) {
    std::time_t secs = static_cast<std::time_t>(ns / 1000000000ull);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%06uZ", buf,
                  static_cast<unsigned>((ns % 1000000000ull) / 1000));
    return out;
}

namespace {

// The payload is validated once (json_valid: no tree, no copies), in the same pass that finds
// its top-level members: each member's value stays a view of the payload's bytes. Values are copied into the
// body as written, so numbers keep every digit (a tree would turn 12345678901234567.89 into a
// double) and no per-event tree is built.

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t skip_ws(std::string_view s, size_t i) {
    while (i < s.size() && is_ws(s[i])) ++i;
    return i;
}

// End of the string starting at s[i] == '"' (one past the closing quote). Valid JSON only.
size_t skip_string(std::string_view s, size_t i) {
    for (++i; i < s.size() && s[i] != '"'; ++i)
        if (s[i] == '\\') ++i;
    return i + 1;
}

// Appends a valid JSON value without the whitespace between its tokens.
void append_compact(std::string &out, std::string_view v) {
    for (size_t i = 0; i < v.size();) {
        if (v[i] == '"') {
            size_t end = skip_string(v, i);
            out.append(v.substr(i, end - i));
            i = end;
        } else {
            if (!is_ws(v[i])) out += v[i];
            ++i;
        }
    }
}

struct Member {
    std::string_view key_json; // the key as written, with its quotes
    std::string key;           // decoded
    std::string_view value;    // the value as written
};

bool decode_string(std::string_view json_string, std::string &out) {
    if (json_string.empty() || json_string[0] != '"') return false;
    std::string_view inner = json_string.substr(1, json_string.size() - 2);
    if (inner.find('\\') == std::string_view::npos) {
        out.assign(inner);
        return true;
    }
    auto v = ojson::parse(json_string, nullptr, false);
    if (!v.is_string()) return false;
    out = v.get<std::string>();
    return true;
}

bool is_integer(std::string_view v) {
    if (v.empty()) return false;
    size_t i = v[0] == '-' ? 1 : 0;
    if (i == v.size()) return false;
    for (; i < v.size(); ++i)
        if (v[i] < '0' || v[i] > '9') return false;
    return true;
}

// A JSON integer that fits 64 bits, in its canonical form ("-0" is "0"), as a JSON tree would
// have rendered it; nullopt otherwise.
std::optional<std::string> int64_text(std::string_view v) {
    if (!is_integer(v)) return std::nullopt;
    const char *first = v.data(), *last = v.data() + v.size();
    if (v[0] == '-') {
        int64_t n = 0;
        auto [end, ec] = std::from_chars(first, last, n);
        if (ec != std::errc() || end != last) return std::nullopt;
        return std::to_string(n);
    }
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(first, last, n);
    if (ec != std::errc() || end != last) return std::nullopt;
    return std::to_string(n);
}

// A string field, or an integer (ids are often numeric): one that fits 64 bits canonically, a
// longer one (numeric(38) keys) as written.
bool text_of(std::string_view v, std::string &out) {
    if (is_integer(v)) {
        if (auto t = int64_text(v)) out = std::move(*t);
        else out.assign(v);
        return true;
    }
    return decode_string(v, out);
}

// Appends `text` as a JSON string (straight into the body: no temporary per field).
void append_quoted(std::string &out, std::string_view text) {
    static const char *hex = "0123456789abcdef";
    out += '"';
    for (char ch : text) {
        auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xf];
            } else {
                out += ch;
            }
        }
    }
    out += '"';
}

std::string excerpt(std::string_view s) {
    std::string e(s.substr(0, 60));
    for (char &c : e)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return s.size() > 60 ? e + "…" : e;
}

std::string too_long(std::string_view what, std::string_view value, size_t limit,
                     std::string_view why) {
    return std::string(what) + " is " + std::to_string(value.size()) + " bytes, more than the " +
           std::to_string(limit) + " allowed" + (why.empty() ? "" : " (" + std::string(why) + ")") +
           ": \"" + excerpt(value) + "\"";
}

// The top-level members json_valid collected, in the producer's order, keys decoded; a repeated
// key keeps its first place and its last value (as a JSON tree would). `members` is the calling
// thread's reused vector (see thread_members): no allocation once the thread has seen a payload
// of that size.
void collect_members(const std::vector<JsonMember> &spans, std::vector<Member> &members) {
    members.clear();
    for (const auto &sp : spans) {
        Member m;
        m.key_json = sp.key;
        decode_string(m.key_json, m.key);
        m.value = sp.value;
        auto same = std::find_if(members.begin(), members.end(), [&](const Member &o) { return o.key == m.key; });
        if (same != members.end()) same->value = m.value;
        else members.push_back(std::move(m));
    }
}

// Per-thread vectors for the members; normalize_event and decode_event_body never nest.
std::vector<JsonMember> &thread_spans() {
    thread_local std::vector<JsonMember> spans;
    return spans;
}
std::vector<Member> &thread_members() {
    thread_local std::vector<Member> members;
    return members;
}

} // namespace

std::variant<EventData, Rejection> decode_event_body(std::string_view body) {
    std::vector<JsonMember> &spans = thread_spans();
    if (!json_valid(body, spans)) return Rejection{"event body is not valid JSON: \"" + excerpt(body) + "\""};
    size_t i = skip_ws(body, 0);
    if (body[i] != '{') return Rejection{"event body is not a JSON object"};
    std::vector<Member> &members = thread_members();
    collect_members(spans, members);
    EventData ev;
    auto text = [&](std::string_view name, std::string &out, bool required) -> std::optional<Rejection> {
        for (const auto &m : members) {
            if (m.key != name) continue;
            if (m.value == "null" && !required) return std::nullopt;
            if (!decode_string(m.value, out)) return Rejection{std::string(name) + " is not a string"};
            return std::nullopt;
        }
        if (required) return Rejection{"event body has no " + std::string(name)};
        return std::nullopt;
    };
    for (auto [name, out, required] :
         {std::tuple{"id", &ev.id, true}, std::tuple{"entity_type", &ev.entity_type, true},
          std::tuple{"operation", &ev.operation, true}, std::tuple{"entity_id", &ev.entity_id, true},
          std::tuple{"source", &ev.source, false}})
        if (auto r = text(name, *out, required)) return *r;
    return ev; // the body itself is not copied: the caller has it

}

std::variant<EventData, Rejection> normalize_event(std::string_view payload,
                                                   std::string_view source_name, int64_t txid,
                                                   uint64_t now_ns) {
    std::vector<JsonMember> &spans = thread_spans();
    if (!json_valid(payload, spans))
        return Rejection{"payload is not valid JSON: \"" + excerpt(payload) + "\""};
    const std::string_view raw_payload = payload; // what a derived id hashes
    if (payload.substr(0, 3) == "\xEF\xBB\xBF") payload.remove_prefix(3); // a UTF-8 byte order mark
    size_t i = skip_ws(payload, 0);
    if (payload[i] != '{') return Rejection{"payload is not a JSON object"};

    std::vector<Member> &members = thread_members();
    collect_members(spans, members);

    EventData ev;
    auto field = [&](std::string_view name, std::string_view alias = {}) -> std::string_view {
        for (std::string_view k : {name, alias}) {
            if (k.empty()) continue;
            for (const auto &m : members)
                if (m.key == k && m.value != "null") return m.value;
        }
        return {};
    };

    std::string_view et = field("entity_type");
    if (et.empty()) return Rejection{"missing entity_type"};
    if (!decode_string(et, ev.entity_type)) return Rejection{"entity_type is not a string"};
    if (ev.entity_type.size() > k_max_subject_token_bytes)
        return Rejection{too_long("entity_type", ev.entity_type, k_max_subject_token_bytes,
                                  "it becomes part of the NATS subject")};
    if (!valid_subject_token(ev.entity_type))
        return Rejection{"entity_type \"" + excerpt(ev.entity_type) +
                         "\" is not a valid NATS subject token (no '.', '*', '>', whitespace or control characters)"};

    std::string_view op = field("operation", "event_type");
    if (op.empty()) return Rejection{"missing operation (or event_type)"};
    if (!decode_string(op, ev.operation)) return Rejection{"operation is not a string"};
    for (char &c : ev.operation) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (ev.operation.size() > k_max_subject_token_bytes)
        return Rejection{too_long("operation", ev.operation, k_max_subject_token_bytes,
                                  "it becomes part of the NATS subject")};
    if (!valid_subject_token(ev.operation))
        return Rejection{"operation \"" + excerpt(ev.operation) +
                         "\" is not a valid NATS subject token (no '.', '*', '>', whitespace or control characters)"};

    std::string_view eid = field("entity_id");
    if (eid.empty()) return Rejection{"missing entity_id"};
    if (!text_of(eid, ev.entity_id) || ev.entity_id.empty())
        return Rejection{"entity_id is not a non-empty string or integer"};
    if (ev.entity_id.size() > k_max_entity_id_bytes)
        return Rejection{too_long("entity_id", ev.entity_id, k_max_entity_id_bytes, "")};
    if (size_t nul = ev.entity_id.find('\0'); nul != std::string::npos)
        return Rejection{"entity_id contains a NUL character (byte " + std::to_string(nul) +
                         "); it would be cut short there"};

    // The payload's own integer txid wins over the one the source knows.
    std::string txid_text;
    if (auto tx = int64_text(field("txid"))) txid_text = std::move(*tx);
    else if (txid >= 0) txid_text = std::to_string(txid);

    std::string_view id = field("id");
    if (!id.empty() && text_of(id, ev.id) && !ev.id.empty()) {
        // The source's own id is stable by construction; it goes into NATS and HTTP headers
        // (Nats-Msg-Id, Idempotency-Key, webhook-id) and log lines, so it must be one short,
        // printable line.
        if (ev.id.size() > k_max_event_id_bytes)
            return Rejection{too_long("id", ev.id, k_max_event_id_bytes,
                                      "it is sent in message and HTTP headers")};
        if (size_t bad = find_control(ev.id); bad != std::string::npos)
            return Rejection{"id contains a control character (" +
                             hex_byte(static_cast<unsigned char>(ev.id[bad] == '\xC2' ? ev.id[bad + 1] : ev.id[bad])) +
                             " at byte " + std::to_string(bad) +
                             "); ids are sent in message and HTTP headers and must be printable"};
        if (ev.id.front() == ' ' || ev.id.back() == ' ')
            return Rejection{"id starts or ends with a space; header values are trimmed, so the "
                             "id would not survive the way to the receiver"};
    } else {
        std::string name;
        name.reserve(source_name.size() + payload.size() + 24);
        name.append(source_name);
        name += '\n';
        name += txid_text.empty() ? std::string("-") : txid_text;
        name += '\n';
        name.append(raw_payload);
        ev.id = uuid_v5(name);
    }

    // The body, in the canonical field order; the producer's values are copied as written.
    std::string &b = ev.body;
    b.reserve(payload.size() + 256);
    auto key = [&](std::string_view k) {
        b += b.empty() ? '{' : ',';
        b += '"';
        b += k;
        b += "\":";
    };
    key("id");
    append_quoted(b, ev.id);
    key("entity_type");
    append_quoted(b, ev.entity_type);
    key("operation");
    append_quoted(b, ev.operation);
    key("entity_id");
    append_quoted(b, ev.entity_id);
    key("timestamp");
    std::string_view ts = field("timestamp");
    if (!ts.empty() && ts[0] == '"') b += ts;
    else append_quoted(b, iso8601_utc(now_ns));
    key("txid");
    b += txid_text.empty() ? std::string_view("null") : std::string_view(txid_text);
    key("entity");
    std::string_view entity = field("entity", "data");
    if (entity.empty()) b += "null";
    else append_compact(b, entity);
    key("changes");
    std::string_view changes = field("changes");
    if (changes.empty()) b += "null";
    else append_compact(b, changes);
    key("source");
    append_quoted(b, source_name);
    // Anything else the producer put in the payload is kept, after the standard fields.
    static const std::string_view standard[] = {"id", "entity_type", "operation", "entity_id",
                                                "timestamp", "txid", "entity", "changes",
                                                "source", "event_type", "data"};
    for (const auto &m : members) {
        if (std::find(std::begin(standard), std::end(standard), m.key) != std::end(standard)) continue;
        b += ',';
        b += m.key_json;
        b += ':';
        append_compact(b, m.value);
    }
    b += '}';
    ev.source = std::string(source_name);
    return ev;
}

} // namespace fraiseql_observer::host
