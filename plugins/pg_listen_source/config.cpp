#include "config.hpp"

#include <fraiseql_observer/plugin.hpp>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <memory>

namespace fraiseql_observer::pg_listen {
namespace {

using nlohmann::json;
using sdk::ConfigError;

const std::vector<std::string> &known_keys() {
    static const std::vector<std::string> keys = {
        "conninfo",         "channels",           "mode",
        "schema",           "batch_size",         "poll_interval_ms",
        "max_in_flight",    "statement_timeout_ms", "connect_timeout_ms",
        "reconnect_min_ms", "reconnect_max_ms",   "drain_timeout_ms",
        "publication",      "slot",               "tables",
        "create",           "entity_names",       "snapshot",
        "heartbeat_secs",   "status_interval_ms", "slot_check_interval_ms"};
    return keys;
}

std::string did_you_mean(const std::string &key) {
    std::string best = sdk::closest_match(key, known_keys());
    return best.empty() ? std::string() : " (did you mean \"" + best + "\"?)";
}

int64_t get_int(const json &obj, const char *key, int64_t def, int64_t min, int64_t max) {
    auto it = obj.find(key);
    if (it == obj.end()) return def;
    if (!it->is_number_integer())
        throw ConfigError(key, std::string("must be an integer"));
    int64_t v = it->get<int64_t>();
    if (v < min || v > max)
        throw ConfigError(key, "must be between " + std::to_string(min) + " and " +
                                   std::to_string(max) + " (got " + std::to_string(v) + ")");
    return v;
}

std::chrono::milliseconds get_ms(const json &obj, const char *key, std::chrono::milliseconds def,
                                 int64_t min, int64_t max) {
    return std::chrono::milliseconds(get_int(obj, key, def.count(), min, max));
}

// Validates the conninfo syntax with libpq without ever echoing its value: libpq's messages may
// quote fragments of the string (a password among them), so only the option-name error passes.
void check_conninfo(const std::string &conninfo) {
    char *err = nullptr;
    PQconninfoOption *opts = PQconninfoParse(conninfo.c_str(), &err);
    if (opts) {
        PQconninfoFree(opts);
        return;
    }
    std::string why = err ? err : "";
    if (err) PQfreemem(err);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    std::string msg = "not a valid libpq connection string or URI";
    if (why.rfind("invalid connection option", 0) == 0 || why.rfind("invalid URI query parameter", 0) == 0)
        msg += ": " + why;
    throw ConfigError("conninfo", msg + " (the value is secret and not shown)");
}

std::string get_string(const json &obj, const char *key, std::string def) {
    auto it = obj.find(key);
    if (it == obj.end()) return def;
    if (!it->is_string()) throw ConfigError(key, "must be a string");
    return it->get<std::string>();
}

// "schema.table" or "table" (public): lower-case SQL identifiers, as PostgreSQL folds them.
std::string check_table_name(std::string_view t) {
    auto ident = [](std::string_view s) {
        if (s.empty() || s.size() > 63) return false;
        auto first_ok = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
        auto rest_ok = [&](char c) { return first_ok(c) || (c >= '0' && c <= '9') || c == '$'; };
        return first_ok(s[0]) && std::all_of(s.begin() + 1, s.end(), rest_ok);
    };
    auto dot = t.find('.');
    bool ok = dot == std::string_view::npos ? ident(t) : ident(t.substr(0, dot)) && ident(t.substr(dot + 1));
    return ok ? "" : "must be \"schema.table\" or \"table\" made of lower-case SQL identifiers";
}

void parse_cdc_keys(const json &obj, Config &c) {
    c.publication = get_string(obj, "publication", c.publication);
    if (auto why = check_slot_name(c.publication); !why.empty()) throw ConfigError("publication", why);
    c.slot = get_string(obj, "slot", c.slot);
    if (obj.contains("slot"))
        if (auto why = check_slot_name(c.slot); !why.empty()) throw ConfigError("slot", why);
    if (auto it = obj.find("tables"); it != obj.end()) {
        if (!it->is_array()) throw ConfigError("tables", "must be an array of \"schema.table\" names");
        for (size_t i = 0; i < it->size(); ++i) {
            const auto &v = (*it)[i];
            std::string key = "tables[" + std::to_string(i) + "]";
            if (!v.is_string()) throw ConfigError(key, "must be a string");
            std::string t = v.get<std::string>();
            if (auto why = check_table_name(t); !why.empty()) throw ConfigError(key, why);
            if (t.find('.') == std::string::npos) t = "public." + t;
            if (std::find(c.tables.begin(), c.tables.end(), t) != c.tables.end())
                throw ConfigError(key, "duplicate table \"" + t + "\"");
            c.tables.push_back(std::move(t));
        }
    }
    if (auto it = obj.find("create"); it != obj.end()) {
        if (!it->is_boolean()) throw ConfigError("create", "must be true or false");
        c.create = it->get<bool>();
    }
    if (auto it = obj.find("entity_names"); it != obj.end()) {
        if (!it->is_object()) throw ConfigError("entity_names", "must be a table of \"schema.table\" = \"EntityName\"");
        for (const auto &[table, name] : it->items()) {
            std::string key = "entity_names." + table;
            if (auto why = check_table_name(table); !why.empty()) throw ConfigError(key, why);
            if (!name.is_string()) throw ConfigError(key, "must be a string (the entity type)");
            std::string n = name.get<std::string>();
            bool ok = !n.empty() && n.size() <= 128 &&
                      std::all_of(n.begin(), n.end(), [](char ch) {
                          auto u = static_cast<unsigned char>(ch);
                          return u > 0x20 && u != 0x7f && ch != '.' && ch != '*' && ch != '>';
                      });
            if (!ok) throw ConfigError(key, "must be a valid NATS subject token (no '.', '*', '>', whitespace), at most 128 bytes");
            c.entity_names[table] = n;
        }
    }
    if (auto it = obj.find("snapshot"); it != obj.end()) {
        if (!it->is_string()) throw ConfigError("snapshot", "must be \"never\" or \"initial\"");
        auto s = it->get<std::string>();
        if (s == "never") c.snapshot = Snapshot::never;
        else if (s == "initial") c.snapshot = Snapshot::initial;
        else throw ConfigError("snapshot", "must be \"never\" or \"initial\" (got \"" + s + "\")");
    }
    c.heartbeat = std::chrono::seconds(get_int(obj, "heartbeat_secs", 30, 0, 86'400));
    c.status_interval = get_ms(obj, "status_interval_ms", c.status_interval, 10, 60'000);
    c.slot_check_interval = get_ms(obj, "slot_check_interval_ms", c.slot_check_interval, 100, 3'600'000);
    if (c.mode != Mode::cdc) {
        for (const char *k : {"publication", "slot", "tables", "create", "entity_names", "snapshot", "heartbeat_secs",
                              "status_interval_ms", "slot_check_interval_ms"})
            if (obj.contains(k))
                throw ConfigError(k, std::string("applies only to mode = \"cdc\" (this source's mode is \"") +
                                         to_string(c.mode) + "\")");
    }
}

} // namespace

const char *to_string(Mode m) {
    switch (m) {
    case Mode::notify: return "notify";
    case Mode::outbox: return "outbox";
    case Mode::cdc: return "cdc";
    }
    return "?";
}

std::string check_slot_name(std::string_view s) {
    if (s.empty()) return "must not be empty";
    if (s.size() > 63) return "must be at most 63 characters (PostgreSQL identifier limit)";
    auto ok = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; };
    if (!std::all_of(s.begin(), s.end(), ok)) return "may contain only lower-case letters, digits and '_'";
    return "";
}

std::string default_slot_name(std::string_view source) {
    std::string out = "fraiseql_observer_";
    for (char c : source) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        out += ok ? c : '_';
    }
    if (out.size() > 63) out.resize(63);
    return out;
}

std::string check_schema_name(std::string_view s) {
    if (s.empty()) return "must not be empty";
    // The wake-up channel is "<schema>_wakeup" and must fit PostgreSQL's 63-byte identifiers.
    if (s.size() > 56) return "must be at most 56 characters";
    auto first_ok = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
    auto rest_ok = [&](char c) { return first_ok(c) || (c >= '0' && c <= '9'); };
    if (!first_ok(s[0]) || !std::all_of(s.begin() + 1, s.end(), rest_ok))
        return "must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)";
    return "";
}

Config parse_config(std::string_view json_text) {
    json obj;
    try {
        obj = json::parse(json_text.empty() ? std::string_view("{}") : json_text);
    } catch (const json::exception &e) {
        throw ConfigError("", std::string("config is not valid JSON: ") + e.what());
    }
    if (!obj.is_object()) throw ConfigError("", "config must be a table");
    for (const auto &[key, value] : obj.items()) {
        (void)value;
        if (std::find(known_keys().begin(), known_keys().end(), key) == known_keys().end())
            throw ConfigError(key, "unknown key \"" + key + "\"" + did_you_mean(key));
    }

    Config c;
    auto ci = obj.find("conninfo");
    if (ci == obj.end())
        throw ConfigError("conninfo", "is required (a libpq URI or key=value string)");
    if (!ci->is_string()) throw ConfigError("conninfo", "must be a string");
    c.conninfo = ci->get<std::string>();
    if (c.conninfo.empty()) throw ConfigError("conninfo", "must not be empty");
    check_conninfo(c.conninfo);

    if (auto it = obj.find("mode"); it != obj.end()) {
        if (!it->is_string()) throw ConfigError("mode", "must be a string: \"notify\", \"outbox\" or \"cdc\"");
        auto m = it->get<std::string>();
        if (m == "notify") c.mode = Mode::notify;
        else if (m == "outbox") c.mode = Mode::outbox;
        else if (m == "cdc") c.mode = Mode::cdc;
        else throw ConfigError("mode", "must be \"notify\", \"outbox\" or \"cdc\" (got \"" + m + "\")");
    }

    if (auto it = obj.find("channels"); it != obj.end()) {
        if (!it->is_array()) throw ConfigError("channels", "must be an array of channel names");
        c.channels.clear();
        c.channels_set = true;
        for (size_t i = 0; i < it->size(); ++i) {
            const auto &v = (*it)[i];
            std::string key = "channels[" + std::to_string(i) + "]";
            if (!v.is_string()) throw ConfigError(key, "must be a string");
            auto name = v.get<std::string>();
            if (name.empty()) throw ConfigError(key, "must not be empty");
            // LISTEN silently truncates longer names, which would then never match pg_notify.
            if (name.size() > 63) throw ConfigError(key, "must be at most 63 bytes (PostgreSQL identifier limit)");
            if (name.find('\0') != std::string::npos) throw ConfigError(key, "must not contain NUL");
            if (std::find(c.channels.begin(), c.channels.end(), name) != c.channels.end())
                throw ConfigError(key, "duplicate channel \"" + name + "\"");
            c.channels.push_back(std::move(name));
        }
        if (c.channels.empty() && c.mode == Mode::notify)
            throw ConfigError("channels", "must name at least one channel in notify mode");
    }

    if (auto it = obj.find("schema"); it != obj.end()) {
        if (!it->is_string()) throw ConfigError("schema", "must be a string");
        c.schema = it->get<std::string>();
        if (auto why = check_schema_name(c.schema); !why.empty()) throw ConfigError("schema", why);
    }
    c.batch_size = static_cast<uint32_t>(get_int(obj, "batch_size", c.batch_size, 1, 10000));
    c.poll_interval = get_ms(obj, "poll_interval_ms", c.poll_interval, 10, 3'600'000);
    c.max_in_flight = static_cast<uint32_t>(get_int(obj, "max_in_flight", c.max_in_flight, 1, 1'000'000));
    c.statement_timeout = get_ms(obj, "statement_timeout_ms", c.statement_timeout, 0, 86'400'000);
    c.connect_timeout = get_ms(obj, "connect_timeout_ms", c.connect_timeout, 100, 600'000);
    c.reconnect_min = get_ms(obj, "reconnect_min_ms", c.reconnect_min, 1, 3'600'000);
    c.reconnect_max = get_ms(obj, "reconnect_max_ms", c.reconnect_max, 1, 3'600'000);
    if (c.reconnect_max < c.reconnect_min)
        throw ConfigError(obj.contains("reconnect_max_ms") ? "reconnect_max_ms" : "reconnect_min_ms",
                          "reconnect_max_ms must be >= reconnect_min_ms");
    c.drain_timeout = get_ms(obj, "drain_timeout_ms", c.drain_timeout, 0, 3'600'000);
    parse_cdc_keys(obj, c);
    return c;
}

} // namespace fraiseql_observer::pg_listen
