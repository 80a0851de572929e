#include "config.hpp"

#include <fraiseql_observer/plugin.hpp>
#include <libpq-fe.h>

#include <algorithm>
#include <limits>
#include <memory>

namespace fraiseql_observer::pg_listen {
namespace {

using sdk::ConfigError;

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

void parse_cdc_keys(const sdk::ConfigReader &r, Config &c) {
    c.publication = r.string("publication");
    if (auto why = check_slot_name(c.publication); !why.empty()) throw ConfigError("publication", why);
    c.slot = r.string("slot");
    if (r.has("slot"))
        if (auto why = check_slot_name(c.slot); !why.empty()) throw ConfigError("slot", why);
    const auto tables = r.strings("tables");
    for (size_t i = 0; i < tables.size(); ++i) {
        std::string key = "tables[" + std::to_string(i) + "]";
        std::string t = tables[i];
        if (auto why = check_table_name(t); !why.empty()) throw ConfigError(key, why);
        if (t.find('.') == std::string::npos) t = "public." + t;
        if (std::find(c.tables.begin(), c.tables.end(), t) != c.tables.end())
            throw ConfigError(key, "duplicate table \"" + t + "\"");
        c.tables.push_back(std::move(t));
    }
    c.create = r.boolean("create");
    for (const auto &[table, n] : r.string_map("entity_names")) {
        std::string key = "entity_names." + table;
        if (auto why = check_table_name(table); !why.empty()) throw ConfigError(key, why);
        bool ok = !n.empty() && n.size() <= 128 &&
                  std::all_of(n.begin(), n.end(), [](char ch) {
                      auto u = static_cast<unsigned char>(ch);
                      return u > 0x20 && u != 0x7f && ch != '.' && ch != '*' && ch != '>';
                  });
        if (!ok) throw ConfigError(key, "must be a valid NATS subject token (no '.', '*', '>', whitespace), at most 128 bytes");
        c.entity_names[table] = n;
    }
    c.snapshot = r.string("snapshot") == "initial" ? Snapshot::initial : Snapshot::never;
    c.heartbeat = std::chrono::seconds(r.integer("heartbeat_secs"));
    c.status_interval = std::chrono::milliseconds(r.integer("status_interval_ms"));
    c.slot_check_interval = std::chrono::milliseconds(r.integer("slot_check_interval_ms"));
    if (c.mode != Mode::cdc) {
        for (const char *k : {"publication", "slot", "tables", "create", "entity_names", "snapshot", "heartbeat_secs",
                              "status_interval_ms", "slot_check_interval_ms"})
            if (r.has(k))
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
    // Types, ranges, choices, unknown and required keys are the table's (checked by the host
    // before create, and again by the reader).
    const sdk::ConfigReader r(json_text, config_keys);
    Config c;
    c.conninfo = r.string("conninfo");
    check_conninfo(c.conninfo);
    const std::string mode = r.string("mode");
    c.mode = mode == "outbox" ? Mode::outbox : mode == "cdc" ? Mode::cdc : Mode::notify;

    c.channels_set = r.has("channels");
    c.channels.clear();
    const auto channels = r.strings("channels");
    for (size_t i = 0; i < channels.size(); ++i) {
        std::string key = "channels[" + std::to_string(i) + "]";
        const std::string &name = channels[i];
        if (name.empty()) throw ConfigError(key, "must not be empty");
        // LISTEN silently truncates longer names, which would then never match pg_notify.
        if (name.size() > 63) throw ConfigError(key, "must be at most 63 bytes (PostgreSQL identifier limit)");
        if (name.find('\0') != std::string::npos) throw ConfigError(key, "must not contain NUL");
        if (std::find(c.channels.begin(), c.channels.end(), name) != c.channels.end())
            throw ConfigError(key, "duplicate channel \"" + name + "\"");
        c.channels.push_back(name);
    }
    if (c.channels.empty() && c.mode == Mode::notify)
        throw ConfigError("channels", "must name at least one channel in notify mode");

    c.schema = r.string("schema");
    if (auto why = check_schema_name(c.schema); !why.empty()) throw ConfigError("schema", why);
    c.batch_size = static_cast<uint32_t>(r.integer("batch_size"));
    c.poll_interval = std::chrono::milliseconds(r.integer("poll_interval_ms"));
    c.max_in_flight = static_cast<uint32_t>(r.integer("max_in_flight"));
    c.statement_timeout = std::chrono::milliseconds(r.integer("statement_timeout_ms"));
    c.connect_timeout = std::chrono::milliseconds(r.integer("connect_timeout_ms"));
    c.reconnect_min = std::chrono::milliseconds(r.integer("reconnect_min_ms"));
    c.reconnect_max = std::chrono::milliseconds(r.integer("reconnect_max_ms"));
    if (c.reconnect_max < c.reconnect_min)
        throw ConfigError(r.has("reconnect_max_ms") ? "reconnect_max_ms" : "reconnect_min_ms",
                          "reconnect_max_ms must be >= reconnect_min_ms");
    c.drain_timeout = std::chrono::milliseconds(r.integer("drain_timeout_ms"));
    parse_cdc_keys(r, c);
    return c;
}

} // namespace fraiseql_observer::pg_listen
