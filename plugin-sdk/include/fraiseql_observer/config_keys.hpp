// fraiseql-observer plugin SDK: config key tables (ABI 1.1), header-only C++17.
//
// A component describes the keys it accepts in a table of fobs_config_key (abi.h). This header
// holds the one implementation of what a table means, used by both sides:
//  - the host calls check_config() on a component's config before `create` and adds
//    file:line:col to the problem it returns;
//  - a plugin reads its values through ConfigReader, which runs the same check (so a plugin
//    tested without a host behaves the same) and applies the table's defaults.
// Declaring a table in a component class:
//
//     class Echo final : public fraiseql_observer::sdk::Action {
//       public:
//         static constexpr const char *levels[] = {"info", "warn", nullptr};
//         static constexpr fobs_config_key config_keys[] = {
//             sdk::Key("level", FOBS_KEY_STRING, "Level of each line").def("\"info\"").choices(levels),
//             sdk::Key("delay_ms", FOBS_KEY_INTEGER, "Wait before completing").def("0").range(0, 3600000),
//         };
//         explicit Echo(sdk::Host host) : Action(host) {
//             sdk::ConfigReader config(host.config_json(), config_keys);
//             level_ = config.string("level");
//         }
//     };
//
// Depends only on the C and C++ standard libraries.
#ifndef FRAISEQL_OBSERVER_CONFIG_KEYS_HPP
#define FRAISEQL_OBSERVER_CONFIG_KEYS_HPP

#include <fraiseql_observer/abi.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fraiseql_observer::sdk {

/// For "unknown key" messages: the candidate closest to `word` when it is a plausible typo —
/// edit distance (case-insensitive) at most max(2, |word| / 3), or `word` is the start of a
/// candidate and at least 3 characters long — else "". `candidates` is any range of strings.
template <class Range> std::string closest_match(std::string_view word, const Range &candidates) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    auto distance = [&](std::string_view a, std::string_view b) {
        std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
        for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
        for (size_t i = 1; i <= a.size(); ++i) {
            cur[0] = i;
            for (size_t j = 1; j <= b.size(); ++j) {
                size_t sub = prev[j - 1] + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
                cur[j] = std::min(std::min(prev[j] + 1, cur[j - 1] + 1), sub);
            }
            prev.swap(cur);
        }
        return prev[b.size()];
    };
    std::string best;
    size_t best_d = static_cast<size_t>(-1);
    for (const auto &candidate : candidates) {
        std::string_view c(candidate);
        size_t d = (word.size() >= 3 && c.substr(0, word.size()) == word) ? 1 : distance(word, c);
        if (d < best_d) {
            best_d = d;
            best = std::string(c);
        }
    }
    return best_d <= std::max<size_t>(2, word.size() / 3) ? best : std::string();
}

// ------------------------------------------------------------------------------------------
// A small strict JSON reader: enough for the config JSON the host hands over (objects,
// arrays, strings, integers, floats, booleans, null). Integers and floats stay apart, so an
// INTEGER key can refuse `3.0`.
// ------------------------------------------------------------------------------------------

class JsonValue {
  public:
    enum class Kind { null, boolean, integer, number, string, array, object };

    Kind kind = Kind::null;
    bool boolean = false;
    int64_t integer = 0;
    double number = 0;          // also set for integers
    std::string text;           // string
    std::vector<JsonValue> items;      // array elements, or object values
    std::vector<std::string> keys;     // object keys (parallel to items)

    bool is_number() const noexcept { return kind == Kind::integer || kind == Kind::number; }
    /// The member called exactly `key` (the last one when a key is repeated, as most JSON
    /// readers do), or nullptr.
    const JsonValue *member(std::string_view key) const noexcept {
        for (size_t i = keys.size(); i-- > 0;)
            if (keys[i] == key) return &items[i];
        return nullptr;
    }
    /// The node at a dot path ("jetstream.max_deliver"); a key may itself contain dots, so
    /// every member that is a prefix of the path is tried. nullptr when absent.
    const JsonValue *find(std::string_view path) const noexcept {
        if (kind != Kind::object) return nullptr;
        if (const JsonValue *v = member(path)) return v;
        for (size_t i = 0; i < keys.size(); ++i) {
            const std::string &k = keys[i];
            if (path.size() > k.size() && path.compare(0, k.size(), k) == 0 && path[k.size()] == '.')
                if (const JsonValue *v = items[i].find(path.substr(k.size() + 1))) return v;
        }
        return nullptr;
    }
    /// "a string", "an integer", ... for messages.
    const char *type_name() const noexcept {
        switch (kind) {
        case Kind::null: return "null";
        case Kind::boolean: return "a boolean";
        case Kind::integer: return "an integer";
        case Kind::number: return "a float";
        case Kind::string: return "a string";
        case Kind::array: return "an array";
        case Kind::object: return "a table";
        }
        return "nothing";
    }

    /// Parses `text`; throws std::invalid_argument naming the byte offset.
    static JsonValue parse(std::string_view text) {
        Parser p{text, 0};
        p.ws();
        JsonValue v = p.value(0);
        p.ws();
        if (p.pos != text.size()) p.fail("trailing characters");
        return v;
    }

  private:
    struct Parser {
        std::string_view s;
        size_t pos;

        [[noreturn]] void fail(const char *why) const {
            throw std::invalid_argument(std::string("invalid JSON at byte ") + std::to_string(pos) +
                                        ": " + why);
        }
        void ws() {
            while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r'))
                ++pos;
        }
        bool eat(char c) {
            ws();
            if (pos < s.size() && s[pos] == c) {
                ++pos;
                return true;
            }
            return false;
        }
        void literal(std::string_view word) {
            if (s.substr(pos, word.size()) != word) fail("unexpected word");
            pos += word.size();
        }
        JsonValue value(int depth) {
            if (depth > 64) fail("nested too deeply");
            ws();
            if (pos >= s.size()) fail("unexpected end");
            JsonValue v;
            const char c = s[pos];
            if (c == '{') {
                ++pos;
                v.kind = Kind::object;
                if (eat('}')) return v;
                do {
                    ws();
                    if (pos >= s.size() || s[pos] != '"') fail("expected a key");
                    v.keys.push_back(string());
                    if (!eat(':')) fail("expected ':'");
                    v.items.push_back(value(depth + 1));
                } while (eat(','));
                if (!eat('}')) fail("expected ',' or '}'");
            } else if (c == '[') {
                ++pos;
                v.kind = Kind::array;
                if (eat(']')) return v;
                do v.items.push_back(value(depth + 1));
                while (eat(','));
                if (!eat(']')) fail("expected ',' or ']'");
            } else if (c == '"') {
                v.kind = Kind::string;
                v.text = string();
            } else if (c == 't') {
                literal("true");
                v.kind = Kind::boolean;
                v.boolean = true;
            } else if (c == 'f') {
                literal("false");
                v.kind = Kind::boolean;
            } else if (c == 'n') {
                literal("null");
            } else {
                number(v);
            }
            return v;
        }
        void number(JsonValue &v) {
            const size_t start = pos;
            bool is_float = false;
            if (pos < s.size() && s[pos] == '-') ++pos;
            while (pos < s.size()) {
                const char c = s[pos];
                if (c >= '0' && c <= '9') ++pos;
                else if (c == '.' || c == 'e' || c == 'E' || ((c == '+' || c == '-') && is_float)) {
                    is_float = true;
                    ++pos;
                } else break;
            }
            const std::string digits(s.substr(start, pos - start));
            if (digits.empty() || digits == "-") fail("expected a value");
            char *end = nullptr;
            errno = 0;
            if (!is_float) {
                const long long n = std::strtoll(digits.c_str(), &end, 10);
                if (errno == 0 && end == digits.c_str() + digits.size()) {
                    v.kind = Kind::integer;
                    v.integer = n;
                    v.number = static_cast<double>(n);
                    return;
                }
            }
            errno = 0;
            const double d = std::strtod(digits.c_str(), &end);
            if (end != digits.c_str() + digits.size()) fail("malformed number");
            v.kind = Kind::number;
            v.number = d;
        }
        static void utf8(std::string &out, uint32_t cp) {
            if (cp < 0x80) out += static_cast<char>(cp);
            else if (cp < 0x800) {
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
        uint32_t hex4() {
            if (pos + 4 > s.size()) fail("short \\u escape");
            uint32_t cp = 0;
            for (int i = 0; i < 4; ++i) {
                const char c = s[pos++];
                cp <<= 4;
                if (c >= '0' && c <= '9') cp |= static_cast<uint32_t>(c - '0');
                else if (c >= 'a' && c <= 'f') cp |= static_cast<uint32_t>(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F') cp |= static_cast<uint32_t>(c - 'A' + 10);
                else fail("bad \\u escape");
            }
            return cp;
        }
        std::string string() {
            ++pos; // opening quote
            std::string out;
            while (true) {
                if (pos >= s.size()) fail("unterminated string");
                const char c = s[pos++];
                if (c == '"') return out;
                if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
                if (c != '\\') {
                    out += c;
                    continue;
                }
                if (pos >= s.size()) fail("unterminated escape");
                switch (s[pos++]) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    uint32_t cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && s.substr(pos, 2) == "\\u") {
                        pos += 2;
                        const uint32_t lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    utf8(out, cp);
                    break;
                }
                default: fail("unknown escape");
                }
            }
        }
    };
};

// ------------------------------------------------------------------------------------------
// Declaring keys
// ------------------------------------------------------------------------------------------

/// Builds one fobs_config_key in a constant expression:
///   sdk::Key("timeout_ms", FOBS_KEY_INTEGER, "Whole-request timeout").def("10000").range(1, 600000)
struct Key {
    fobs_config_key k;

    constexpr Key(const char *name, fobs_key_type type, const char *help) noexcept
        : k{sizeof(fobs_config_key), name, type, 0, nullptr, 0, 0.0, 0.0, nullptr, help} {}
    /// The default as JSON text: "5000", "\"nats\"", "[1, 2]", "true".
    constexpr Key def(const char *default_json) const noexcept {
        Key r = *this;
        r.k.default_json = default_json;
        return r;
    }
    constexpr Key range(double min, double max) const noexcept {
        Key r = *this;
        r.k.has_range = 1;
        r.k.min = min;
        r.k.max = max;
        return r;
    }
    /// `values` is a NULL-terminated array with static storage.
    constexpr Key choices(const char *const *values) const noexcept {
        Key r = *this;
        r.k.choices = values;
        return r;
    }
    constexpr Key required() const noexcept { return flag(FOBS_KEY_REQUIRED); }
    constexpr Key secret() const noexcept { return flag(FOBS_KEY_SECRET); }
    constexpr Key not_empty() const noexcept { return flag(FOBS_KEY_NOT_EMPTY); }
    constexpr operator fobs_config_key() const noexcept { return k; }

  private:
    constexpr Key flag(uint32_t f) const noexcept {
        Key r = *this;
        r.k.flags |= f;
        return r;
    }
};

/// A table as the host sees it: `count` entries `stride` bytes apart (abi.h: the entries'
/// struct_size is the stride, so a table from a newer SDK is read correctly).
class KeyTable {
  public:
    KeyTable() = default;
    KeyTable(const fobs_config_key *keys, size_t count) noexcept
        : base_(keys), count_(keys ? count : 0),
          stride_(keys && count ? keys[0].struct_size : sizeof(fobs_config_key)) {}
    template <size_t N>
    KeyTable(const fobs_config_key (&keys)[N]) noexcept : KeyTable(keys, N) {} // NOLINT

    size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    size_t stride() const noexcept { return stride_; }
    const fobs_config_key &operator[](size_t i) const noexcept {
        return *reinterpret_cast<const fobs_config_key *>(reinterpret_cast<const char *>(base_) +
                                                          i * stride_);
    }
    /// The key called `name`, or nullptr.
    const fobs_config_key *find(std::string_view name) const noexcept {
        for (size_t i = 0; i < count_; ++i)
            if ((*this)[i].name && name == (*this)[i].name) return &(*this)[i];
        return nullptr;
    }

  private:
    const fobs_config_key *base_ = nullptr;
    size_t count_ = 0;
    size_t stride_ = sizeof(fobs_config_key);
};

/// What a key's type expects, for messages and `plugins --describe`.
inline const char *key_type_name(fobs_key_type t) noexcept {
    switch (t) {
    case FOBS_KEY_STRING: return "string";
    case FOBS_KEY_INTEGER: return "integer";
    case FOBS_KEY_NUMBER: return "number";
    case FOBS_KEY_BOOLEAN: return "boolean";
    case FOBS_KEY_STRING_LIST: return "array of strings";
    case FOBS_KEY_INTEGER_LIST: return "array of integers";
    case FOBS_KEY_STRING_MAP: return "table of strings";
    case FOBS_KEY_NUMBER_LIST: return "array of numbers";
    case FOBS_KEY_STRING_OR_LIST: return "string, or array of strings";
    }
    return "unknown type";
}

/// A number as written in messages: integral values without a fraction ("600000", "0.5").
inline std::string number_text(double v) {
    char buf[64];
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.2e18)
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    else
        std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

/// One problem found in a config: the key path relative to the component's table
/// ("jetstream.max_deliver", "channels[1]") and the reason, in the host's message style.
/// A secret key's value never appears in `message`.
struct ConfigProblem {
    std::string key_path;
    std::string message;
};

namespace detail {

inline std::string choice_list(const char *const *choices) {
    std::string out;
    for (const char *const *c = choices; *c; ++c) out += (out.empty() ? "" : "|") + std::string(*c);
    return out;
}

class Checker {
  public:
    explicit Checker(KeyTable table) : table_(table) {}

    std::optional<ConfigProblem> check(const JsonValue &root) {
        if (root.kind != JsonValue::Kind::object)
            return ConfigProblem{"", std::string("expected a table, got ") + root.type_name()};
        if (auto p = members(root, "")) return p;
        for (size_t i = 0; i < table_.size(); ++i) {
            const fobs_config_key &k = table_[i];
            if ((k.flags & FOBS_KEY_REQUIRED) && k.name && !root.find(k.name))
                return ConfigProblem{k.name, std::string("missing required key `") + k.name + "`"};
        }
        return std::nullopt;
    }

    /// Checks one value against its key (also used for a table's own defaults).
    std::optional<ConfigProblem> value(const fobs_config_key &k, const JsonValue &v,
                                       const std::string &path) const {
        const bool secret = (k.flags & FOBS_KEY_SECRET) != 0;
        const bool not_empty = (k.flags & FOBS_KEY_NOT_EMPTY) != 0;
        auto wrong = [&](const char *expected) {
            return ConfigProblem{path, std::string("expected ") + expected + ", got " + v.type_name()};
        };
        switch (k.type) {
        case FOBS_KEY_STRING:
            if (v.kind != JsonValue::Kind::string) return wrong("a string");
            return string(k, v, path, secret, not_empty);
        case FOBS_KEY_INTEGER:
            if (v.kind != JsonValue::Kind::integer) return wrong("an integer");
            return number(k, v, path, secret);
        case FOBS_KEY_NUMBER:
            if (!v.is_number()) return wrong("a number");
            return number(k, v, path, secret);
        case FOBS_KEY_BOOLEAN:
            if (v.kind != JsonValue::Kind::boolean) return wrong("a boolean (true or false)");
            return std::nullopt;
        case FOBS_KEY_STRING_OR_LIST:
            if (v.kind == JsonValue::Kind::string) return string(k, v, path, secret, not_empty);
            if (v.kind != JsonValue::Kind::array) return wrong("a string or an array of strings");
            [[fallthrough]];
        case FOBS_KEY_STRING_LIST:
        case FOBS_KEY_INTEGER_LIST:
        case FOBS_KEY_NUMBER_LIST: {
            const char *expected = k.type == FOBS_KEY_INTEGER_LIST  ? "an array of integers"
                                   : k.type == FOBS_KEY_NUMBER_LIST ? "an array of numbers"
                                                                    : "an array of strings";
            if (v.kind != JsonValue::Kind::array) return wrong(expected);
            if (not_empty && v.items.empty()) return ConfigProblem{path, "must not be empty"};
            for (size_t i = 0; i < v.items.size(); ++i) {
                const JsonValue &e = v.items[i];
                const std::string at = path + "[" + std::to_string(i) + "]";
                std::optional<ConfigProblem> p;
                if (k.type == FOBS_KEY_INTEGER_LIST) {
                    if (e.kind != JsonValue::Kind::integer)
                        return ConfigProblem{at, std::string("expected an integer, got ") + e.type_name()};
                    p = number(k, e, at, secret);
                } else if (k.type == FOBS_KEY_NUMBER_LIST) {
                    if (!e.is_number())
                        return ConfigProblem{at, std::string("expected a number, got ") + e.type_name()};
                    p = number(k, e, at, secret);
                } else {
                    if (e.kind != JsonValue::Kind::string)
                        return ConfigProblem{at, std::string("expected a string, got ") + e.type_name()};
                    p = string(k, e, at, secret, not_empty);
                }
                if (p) return p;
            }
            return std::nullopt;
        }
        case FOBS_KEY_STRING_MAP:
            if (v.kind != JsonValue::Kind::object) return wrong("a table of strings");
            if (not_empty && v.items.empty()) return ConfigProblem{path, "must not be empty"};
            for (size_t i = 0; i < v.items.size(); ++i)
                if (v.items[i].kind != JsonValue::Kind::string)
                    return ConfigProblem{path + "." + v.keys[i],
                                         std::string("expected a string, got ") + v.items[i].type_name()};
            return std::nullopt;
        }
        return ConfigProblem{path, "the plugin declares this key with an unknown type"};
    }

  private:
    // The members of the object at `prefix` ("" or "jetstream.").
    std::optional<ConfigProblem> members(const JsonValue &obj, const std::string &prefix) {
        for (size_t i = 0; i < obj.keys.size(); ++i) {
            const std::string path = prefix + obj.keys[i];
            const JsonValue &v = obj.items[i];
            if (const fobs_config_key *k = table_.find(path)) {
                if (auto p = value(*k, v, path)) return p;
                continue;
            }
            if (v.kind == JsonValue::Kind::object && has_children(path + ".")) {
                if (auto p = members(v, path + ".")) return p;
                continue;
            }
            return unknown(path, prefix);
        }
        return std::nullopt;
    }

    bool has_children(const std::string &prefix) const {
        for (size_t i = 0; i < table_.size(); ++i)
            if (table_[i].name && std::string_view(table_[i].name).substr(0, prefix.size()) == prefix)
                return true;
        return false;
    }

    ConfigProblem unknown(const std::string &path, const std::string &prefix) const {
        // Candidates: the names at this level (a nested table counts once, by its own name).
        std::vector<std::string> names;
        for (size_t i = 0; i < table_.size(); ++i) {
            if (!table_[i].name) continue;
            std::string_view n(table_[i].name);
            if (n.substr(0, prefix.size()) != prefix) continue;
            n.remove_prefix(prefix.size());
            std::string first(n.substr(0, n.find('.')));
            if (std::find(names.begin(), names.end(), first) == names.end()) names.push_back(first);
        }
        const std::string word = path.substr(prefix.size());
        std::string msg = "unknown key `" + word + "`";
        const std::string best = closest_match(word, names);
        if (!best.empty()) return ConfigProblem{path, msg + " (did you mean `" + best + "`?)"};
        std::string list;
        for (const auto &n : names) list += (list.empty() ? "`" : ", `") + n + "`";
        return ConfigProblem{path, msg + "; allowed keys: " + (list.empty() ? "none" : list)};
    }

    static std::optional<ConfigProblem> string(const fobs_config_key &k, const JsonValue &v,
                                               const std::string &path, bool secret, bool not_empty) {
        if (not_empty && v.text.empty()) return ConfigProblem{path, "must not be empty"};
        if (!k.choices) return std::nullopt;
        std::vector<std::string> allowed;
        for (const char *const *c = k.choices; *c; ++c) {
            if (v.text == *c) return std::nullopt;
            allowed.emplace_back(*c);
        }
        std::string msg = "expected one of " + choice_list(k.choices);
        if (!secret) {
            msg += ", got `" + v.text + "`";
            const std::string best = closest_match(v.text, allowed);
            if (!best.empty()) msg += " (did you mean `" + best + "`?)";
        }
        return ConfigProblem{path, msg};
    }

    static std::optional<ConfigProblem> number(const fobs_config_key &k, const JsonValue &v,
                                               const std::string &path, bool secret) {
        if (!k.has_range) return std::nullopt;
        if (v.number >= k.min && v.number <= k.max &&
            (v.kind != JsonValue::Kind::integer ||
             (static_cast<double>(v.integer) >= k.min && static_cast<double>(v.integer) <= k.max)))
            return std::nullopt;
        std::string msg = "must be between " + number_text(k.min) + " and " + number_text(k.max);
        if (!secret)
            msg += ", got " + (v.kind == JsonValue::Kind::integer ? std::to_string(v.integer)
                                                                  : number_text(v.number));
        return ConfigProblem{path, msg};
    }

    KeyTable table_;
};

} // namespace detail

/// Checks `root` (a component's config) against `table`: unknown keys (with a "did you mean"
/// hint), types (an INTEGER refuses 3.0), ranges, choices, NOT_EMPTY, then REQUIRED keys.
/// The first problem found, in document order, or nullopt.
inline std::optional<ConfigProblem> check_config(const JsonValue &root, KeyTable table) {
    return detail::Checker(table).check(root);
}

/// Checks the table itself: names present and unique, known types, defaults that are valid
/// JSON of the key's own type and range. The first mistake as a sentence, or "".
inline std::string check_key_table(KeyTable table) {
    detail::Checker checker(table);
    for (size_t i = 0; i < table.size(); ++i) {
        const fobs_config_key &k = table[i];
        if (!k.name || !*k.name) return "config key #" + std::to_string(i) + " has no name";
        const std::string name = k.name;
        for (size_t j = 0; j < i; ++j)
            if (table[j].name && name == table[j].name) return "config key `" + name + "` is declared twice";
        if (k.type < FOBS_KEY_STRING || k.type > FOBS_KEY_STRING_OR_LIST)
            return "config key `" + name + "` has unknown type " + std::to_string(k.type);
        if (!k.default_json) continue;
        JsonValue d;
        try {
            d = JsonValue::parse(k.default_json);
        } catch (const std::exception &e) {
            return "config key `" + name + "` has a default that is not JSON (" + e.what() + ")";
        }
        if (auto p = checker.value(k, d, name))
            return "config key `" + name + "` has an invalid default: " + p->message;
    }
    return {};
}

/// Thrown by ConfigReader (and by component code) for a configuration error about `key`
/// (dot path relative to the component's table, e.g. "jetstream.max_deliver", "channels[1]").
class ConfigError : public std::runtime_error {
  public:
    ConfigError(std::string key, const std::string &message)
        : std::runtime_error(message), key_(std::move(key)) {}
    const std::string &key() const noexcept { return key_; }

  private:
    std::string key_;
};

/// Typed access to a component's config, with the table's defaults applied. The constructor
/// parses the JSON and checks it against the table (throws ConfigError, like the host does
/// before `create`). Each getter takes a key of the table, of the getter's type (else
/// std::logic_error: a bug in the plugin), and returns the written value, else the default,
/// else an empty value (0, "", false, {}).
class ConfigReader {
  public:
    ConfigReader(std::string_view json, KeyTable table) : table_(table) {
        try {
            root_ = JsonValue::parse(json.empty() ? std::string_view("{}") : json);
        } catch (const std::exception &e) {
            throw ConfigError("", std::string("config is not valid JSON: ") + e.what());
        }
        if (auto p = check_config(root_, table_)) throw ConfigError(p->key_path, p->message);
    }

    /// True when `key` is written in the config (not only defaulted).
    bool has(std::string_view key) const {
        lookup(key);
        return root_.find(key) != nullptr;
    }
    std::string string(std::string_view key) const {
        const JsonValue *v = get(key, {FOBS_KEY_STRING, FOBS_KEY_STRING_OR_LIST});
        if (v && v->kind == JsonValue::Kind::array)
            throw std::logic_error("config key `" + std::string(key) + "` holds a list; read it with strings()");
        return v ? v->text : std::string();
    }
    int64_t integer(std::string_view key) const {
        const JsonValue *v = get(key, {FOBS_KEY_INTEGER});
        return v ? v->integer : 0;
    }
    double number(std::string_view key) const {
        const JsonValue *v = get(key, {FOBS_KEY_NUMBER, FOBS_KEY_INTEGER});
        return v ? v->number : 0.0;
    }
    bool boolean(std::string_view key) const {
        const JsonValue *v = get(key, {FOBS_KEY_BOOLEAN});
        return v ? v->boolean : false;
    }
    /// STRING_LIST, or STRING_OR_LIST (a single string gives one element).
    std::vector<std::string> strings(std::string_view key) const {
        std::vector<std::string> out;
        const JsonValue *v = get(key, {FOBS_KEY_STRING_LIST, FOBS_KEY_STRING_OR_LIST});
        if (!v) return out;
        if (v->kind == JsonValue::Kind::string) out.push_back(v->text);
        for (const auto &e : v->items) out.push_back(e.text);
        return out;
    }
    std::vector<int64_t> integers(std::string_view key) const {
        std::vector<int64_t> out;
        if (const JsonValue *v = get(key, {FOBS_KEY_INTEGER_LIST}))
            for (const auto &e : v->items) out.push_back(e.integer);
        return out;
    }
    std::vector<double> numbers(std::string_view key) const {
        std::vector<double> out;
        if (const JsonValue *v = get(key, {FOBS_KEY_NUMBER_LIST, FOBS_KEY_INTEGER_LIST}))
            for (const auto &e : v->items) out.push_back(e.number);
        return out;
    }
    /// STRING_MAP, in the order written.
    std::vector<std::pair<std::string, std::string>> string_map(std::string_view key) const {
        std::vector<std::pair<std::string, std::string>> out;
        if (const JsonValue *v = get(key, {FOBS_KEY_STRING_MAP}))
            for (size_t i = 0; i < v->items.size(); ++i) out.emplace_back(v->keys[i], v->items[i].text);
        return out;
    }
    /// The parsed config, for checks across keys.
    const JsonValue &root() const noexcept { return root_; }

  private:
    const fobs_config_key &lookup(std::string_view key) const {
        const fobs_config_key *k = table_.find(key);
        if (!k) throw std::logic_error("config key `" + std::string(key) + "` is not in the component's table");
        return *k;
    }
    const JsonValue *get(std::string_view key, std::initializer_list<fobs_key_type> types) const {
        const fobs_config_key &k = lookup(key);
        if (std::find(types.begin(), types.end(), k.type) == types.end())
            throw std::logic_error("config key `" + std::string(key) + "` is a " +
                                   key_type_name(k.type) + ", read with the wrong getter");
        if (const JsonValue *v = root_.find(key)) return v;
        if (!k.default_json) return nullptr;
        defaults_.push_back(JsonValue::parse(k.default_json));
        return &defaults_.back();
    }

    KeyTable table_;
    JsonValue root_;
    mutable std::deque<JsonValue> defaults_; // parsed defaults handed out (deque: stable addresses)
};

} // namespace fraiseql_observer::sdk

#endif // FRAISEQL_OBSERVER_CONFIG_KEYS_HPP
