#include "config.hpp"

#include "config_interpolate.hpp"
#include "config_suggest.hpp"

#include <fraiseql_observer/subject_token.hpp>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fraiseql_observer::host {

namespace {

using nlohmann::json;

constexpr const char *kDefaultsFile = "<defaults>";
constexpr const char *kDefaultConsumer = "fraiseql_observer_worker";
constexpr const char *kDefaultSourceName = "postgres";
constexpr const char *kDefaultTransportName = "default";
constexpr int64_t kMaxInFlightLimit = 1'000'000;

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto &c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto &c : out)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

/// Names of pipelines and components end up in metric labels, logger names and consumer names.
bool is_valid_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

/// A NATS subject token: the SDK's one rule (fraiseql_observer/subject_token.hpp).
bool is_subject_token(std::string_view s) { return sdk::is_subject_token(s); }

/// A durable consumer name: a subject token that is also safe as a file name on the server.
bool is_consumer_name(std::string_view s) {
    return is_subject_token(s) && s.find('/') == std::string_view::npos &&
           s.find('\\') == std::string_view::npos;
}

/// "" or host:port, where host may be a bracketed IPv6 address.
bool is_listen_address(std::string_view s) {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        return false;
    const std::string_view host = s.substr(0, colon);
    const std::string_view port = s.substr(colon + 1);
    if (host.front() == '[' && host.back() != ']')
        return false;
    if (host.front() != '[' && host.find(':') != std::string_view::npos)
        return false;
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    const int p = std::stoi(std::string(port));
    return p >= 1 && p <= 65535;
}

const char *type_name(const toml::node &n) {
    switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
    }
}

std::string join_list(const std::vector<std::string> &items) {
    std::string out;
    for (const auto &item : items)
        out += (out.empty() ? "" : ", ") + ("`" + item + "`");
    return out.empty() ? "none" : out;
}

template <class Items> std::vector<std::string> names_of(const Items &items) {
    std::vector<std::string> out;
    for (const auto &item : items)
        out.push_back(item.name);
    return out;
}

template <class Items> auto find_named(const Items &items, const std::string &name) {
    auto it = std::find_if(items.begin(), items.end(), [&](const auto &c) { return c.name == name; });
    return it == items.end() ? nullptr : &*it;
}

/// The built-in transport: the nats plugin with its own defaults (its key table holds the
/// seed's values), and `url` from $NATS_URL when that is set.
ComponentConfig default_nats_transport(const EnvLookup &env) {
    ComponentConfig c;
    c.name = kDefaultTransportName;
    c.plugin = "nats";
    c.section = "transports.default";
    c.is_default = true;
    json config = json::object();
    if (const auto nats_url = env("NATS_URL"); nats_url && !nats_url->empty()) {
        config["url"] = *nats_url;
        c.secret_keys.push_back("url"); // read from the environment
    }
    c.config_json = config.dump();
    return c;
}

/// The built-in source: LISTEN on `fraiseql_events`, conninfo from $DATABASE_URL (a value
/// from the environment, hence secret).
ComponentConfig default_pg_source(const std::optional<std::string> &conninfo) {
    ComponentConfig c;
    c.name = kDefaultSourceName;
    c.plugin = "pg_listen";
    c.section = std::string("sources.") + kDefaultSourceName;
    c.is_default = true;
    json config = {
        {"conninfo", conninfo.value_or("")},
        {"channels", json::array({"fraiseql_events"})},
        {"mode", "notify"},
    };
    c.config_json = config.dump();
    c.secret_keys.push_back("conninfo");
    return c;
}

std::string consumer_name_of(const ComponentConfig &transport) {
    const json config = json::parse(transport.config_json, nullptr, false);
    if (config.is_object()) {
        auto it = config.find("consumer_name");
        if (it != config.end() && it->is_string() && !it->get<std::string>().empty())
            return it->get<std::string>();
    }
    return kDefaultConsumer;
}

/// A [[pipelines]] entry as written, before references are resolved against the components.
struct RawPipeline {
    PipelineConfig p;
    std::string path; // "pipelines[2]"
    std::optional<std::string> transport;
    SourceLocation source_at, transport_at, consumer_at;
    std::vector<SourceLocation> action_at;
    bool source_hidden = false, transport_hidden = false, consumer_hidden = false;
    std::vector<bool> action_hidden;
    bool consumer_explicit = false;
};

/// Reads one document into a Config. One instance per load; throws ConfigError on the first
/// problem found.
class Loader {
  public:
    Loader(std::string file, const LoadOptions &options)
        : file_(std::move(file)), options_(options), env_([this](const std::string &name) {
              auto v = options_.env(name);
              if (v && v->size() >= 3) env_values_.push_back(*v);
              return v;
          }) {
        config_.file = file_;
    }

    Config load(const toml::table &root) {
        if (const toml::node *observers = root.get("observers"))
            load_fraiseql_main(root, *observers);
        else
            load_observer_file(root);
        finish();
        for (std::string &w : config_.warnings) w = scrub(std::move(w));
        return std::move(config_);
    }

  private:
    // ----- locations and errors -----------------------------------------------------------

    SourceLocation at(const toml::source_region &r) const {
        if (r.begin.line == 0)
            return SourceLocation{file_, 0, 0};
        return SourceLocation{file_, r.begin.line, r.begin.column};
    }
    SourceLocation at(const toml::node &n) const { return at(n.source()); }
    /// Where a key is written: a table's header line, else the key itself.
    SourceLocation at_key(const toml::key &k, const toml::node &v) const {
        if (v.is_table() && v.source().begin.line > 0)
            return at(v);
        if (k.source().begin.line > 0)
            return at(k.source());
        return at(v);
    }
    static SourceLocation builtin() { return SourceLocation{"", 0, 0}; }

    [[noreturn]] void fail(const SourceLocation &where, const std::string &key,
                           const std::string &reason) const {
        throw ConfigError(where, key, scrub(reason));
    }

    /// `text` with every environment value read so far replaced by "***": values from the
    /// environment are secrets, and a message that quotes a value read through a ${VAR} (or a
    /// name derived from one) must not print it.
    std::string scrub(std::string text) const {
        for (const std::string &v : env_values_)
            for (size_t pos = text.find(v); pos != std::string::npos; pos = text.find(v, pos + 3))
                text.replace(pos, v.size(), "***");
        return text;
    }

    /// ", got `value`" unless the value is a secret (it came from the environment, or its key is
    /// named like a credential): those are never printed.
    static std::string got(const std::string &value, bool hidden) {
        return hidden ? std::string() : ", got `" + value + "`";
    }

    // ----- typed readers for host-owned keys ------------------------------------------------

    std::string get_string(const toml::node &n, const std::string &path, bool *hidden = nullptr) const {
        if (!n.is_string())
            fail(at(n), path, std::string("expected a string, got ") + type_name(n));
        Interpolated v;
        try {
            v = interpolate_env(n.as_string()->get(), env_);
        } catch (const InterpolationError &e) {
            fail(at(n), path, e.what());
        }
        if (hidden) {
            const size_t dot = path.rfind('.');
            *hidden = v.used_env || is_secret_name(dot == std::string::npos ? path : path.substr(dot + 1));
        }
        return v.value;
    }

    std::string get_nonempty_string(const toml::node &n, const std::string &path,
                                    bool *hidden = nullptr) const {
        std::string v = get_string(n, path, hidden);
        if (v.empty())
            fail(at(n), path, "must not be empty");
        return v;
    }

    int64_t get_integer(const toml::node &n, const std::string &path, int64_t lo, int64_t hi) const {
        if (!n.is_integer())
            fail(at(n), path, std::string("expected an integer, got ") + type_name(n));
        const int64_t v = n.as_integer()->get();
        if (v < lo || v > hi)
            fail(at(n), path,
                 "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                     ", got " + std::to_string(v));
        return v;
    }

    struct StringItem {
        std::string value;
        SourceLocation where;
        bool hidden = false;
    };

    std::vector<StringItem> get_string_array(const toml::node &n, const std::string &path) const {
        if (!n.is_array())
            fail(at(n), path, std::string("expected an array of strings, got ") + type_name(n));
        std::vector<StringItem> out;
        size_t i = 0;
        for (const toml::node &e : *n.as_array()) {
            const std::string item_path = path + "[" + std::to_string(i++) + "]";
            StringItem item;
            item.value = get_string(e, item_path, &item.hidden);
            item.where = at(e);
            out.push_back(std::move(item));
        }
        return out;
    }

    const toml::table &expect_table(const toml::node &n, const std::string &path) const {
        if (!n.is_table())
            fail(at(n), path, std::string("expected a table [") + path + "], got " + type_name(n));
        return *n.as_table();
    }

    void check_keys(const toml::table &t, const std::string &path,
                    const std::vector<std::string> &allowed, const std::string &extra_hint = {}) const {
        for (auto &&[k, v] : t) {
            const std::string key(k.str());
            if (std::find(allowed.begin(), allowed.end(), key) != allowed.end())
                continue;
            fail(at_key(k, v), path.empty() ? key : path + "." + key,
                 "unknown key `" + key + "`" + did_you_mean(key, allowed) +
                     (extra_hint.empty() ? "; allowed keys: " + join_list(allowed) : extra_hint));
        }
    }

    void check_name(const std::string &name, const SourceLocation &where, const std::string &path,
                    const char *what) const {
        if (!is_valid_name(name))
            fail(where, path,
                 std::string("invalid ") + what + " `" + name +
                     "`: use letters, digits, `_` and `-` only");
    }

    // ----- fraiseql-observer.toml --------------------------------------------------------------

    void load_observer_file(const toml::table &root) {
        check_keys(root, "",
                   {"observer", "sources", "transport", "transports", "actions", "pipelines"});
        if (const toml::node *n = root.get("observer"))
            parse_observer(*n);
        parse_components(root, "sources", config_.sources);
        parse_components(root, "transports", config_.transports);
        parse_components(root, "actions", config_.actions);
        if (const toml::node *n = root.get("transport")) {
            if (const ComponentConfig *general = find_named(config_.transports, kDefaultTransportName))
                fail(general->where, general->section,
                     "the transport `default` is declared twice: by [transport] (the seed's form, "
                     "line " + std::to_string(at(*n).line) +
                         ") and by [transports.default]; keep one of them");
            config_.transports.insert(config_.transports.begin(), parse_seed_transport(*n));
        }
        if (const toml::node *n = root.get("pipelines"))
            parse_pipelines(*n);
    }

    void parse_observer(const toml::node &node) {
        const toml::table &t = expect_table(node, "observer");
        check_keys(t, "observer",
                   {"plugin_dirs", "metrics_listen", "log_level", "log_format",
                    "shutdown_timeout_secs"});
        ObserverSettings &o = config_.observer;
        if (const toml::node *n = t.get("plugin_dirs")) {
            o.plugin_dirs.clear();
            for (auto &item : get_string_array(*n, "observer.plugin_dirs")) {
                if (item.value.empty())
                    fail(item.where, "observer.plugin_dirs", "a plugin directory must not be empty");
                o.plugin_dirs.push_back(std::move(item.value));
            }
        }
        if (const toml::node *n = t.get("metrics_listen")) {
            bool hidden = false;
            std::string v = get_string(*n, "observer.metrics_listen", &hidden);
            if (!v.empty() && !is_listen_address(v))
                fail(at(*n), "observer.metrics_listen",
                     "expected \"\" (disabled) or host:port with a port in 1..65535" + got(v, hidden));
            o.metrics_listen = std::move(v);
        }
        if (const toml::node *n = t.get("log_level"))
            o.log_level = get_choice(*n, "observer.log_level", {"trace", "debug", "info", "warn", "error"});
        if (const toml::node *n = t.get("log_format"))
            o.log_format = get_choice(*n, "observer.log_format", {"text", "json"});
        if (const toml::node *n = t.get("shutdown_timeout_secs"))
            o.shutdown_timeout_secs =
                static_cast<uint32_t>(get_integer(*n, "observer.shutdown_timeout_secs", 0, 3600));
    }

    std::string get_choice(const toml::node &n, const std::string &path,
                           const std::vector<std::string> &choices) const {
        bool hidden = false;
        std::string v = get_string(n, path, &hidden);
        if (std::find(choices.begin(), choices.end(), v) != choices.end())
            return v;
        std::string list;
        for (const auto &c : choices)
            list += (list.empty() ? "" : "|") + c;
        fail(at(n), path,
             "expected one of " + list + got(v, hidden) + (hidden ? "" : did_you_mean(v, choices)));
    }

    /// [sources.<name>], [transports.<name>], [actions.<name>].
    void parse_components(const toml::table &root, const char *kind, std::vector<ComponentConfig> &out) {
        const toml::node *n = root.get(kind);
        if (!n)
            return;
        const toml::table &t = expect_table(*n, kind);
        for (auto &&[k, v] : t) {
            const std::string name(k.str());
            const std::string section = std::string(kind) + "." + name;
            if (!v.is_table())
                fail(at_key(k, v), section,
                     "expected a table [" + section + "] with at least `plugin = \"...\"`, got " +
                         type_name(v));
            check_name(name, at_key(k, v), section, "name");
            const toml::table &table = *v.as_table();
            ComponentConfig c;
            c.name = name;
            c.section = section;
            c.where = at_key(k, v);
            const toml::node *plugin = table.get("plugin");
            if (!plugin) {
                std::string hint;
                for (auto &&[key, value] : table)
                    if (edit_distance(key.str(), "plugin") <= 2)
                        hint = " (is `" + std::string(key.str()) + "` a misspelling of it?)";
                fail(c.where, section + ".plugin",
                     "missing required key `plugin` (the name of the plugin that implements this "
                     "component, e.g. \"webhook\")" + hint);
            }
            c.plugin = get_nonempty_string(*plugin, section + ".plugin");
            json config = json::object();
            convert_table(table, "", section, c, config, true);
            c.config_json = config.dump();
            out.push_back(std::move(c));
        }
    }

    /// The seed's form: [transport] with `transport = "<plugin>"` (default "nats") and the
    /// plugin's settings in [transport.<plugin>]; it becomes the transport named "default".
    ComponentConfig parse_seed_transport(const toml::node &node) {
        const toml::table &t = expect_table(node, "transport");
        std::string plugin = "nats";
        if (const toml::node *p = t.get("transport"))
            plugin = get_nonempty_string(*p, "transport.transport");
        // Sub-tables for other transports may stay in the file, so that switching transports
        // is the one line `transport = "…"` (SPEC section 1); only the chosen one is used.
        // A sibling table that looks like a misspelling of the chosen one is still an error.
        std::vector<std::string> allowed{"transport", plugin};
        for (const auto &[k, v] : t) {
            std::string name(k.str());
            if (!v.is_table() || name == plugin) continue;
            if (!t.get(plugin) && !closest_match(name, {plugin}).empty()) continue;
            allowed.push_back(name);
            config_.warnings.push_back("[transport." + name + "] is not used: [transport] selects `" +
                                       plugin + "`");
        }
        check_keys(t, "transport", allowed,
                   "; [transport] holds `transport = \"" + plugin + "\"` and the table [transport." +
                       plugin + "]");
        ComponentConfig c;
        c.name = kDefaultTransportName;
        c.plugin = plugin;
        c.section = "transport." + plugin;
        c.where = at(node);
        if (const toml::node *sub = t.get(plugin)) {
            const toml::table &table = expect_table(*sub, c.section);
            if (sub->source().begin.line > 0)
                c.where = at(*sub);
            json config = json::object();
            convert_table(table, "", c.section, c, config, false);
            c.config_json = config.dump();
        } else if (plugin == "nats") {
            // `transport = "nats"` alone means NATS with the built-in settings.
            ComponentConfig d = default_nats_transport(env_);
            c.config_json = d.config_json;
            c.secret_keys = d.secret_keys;
        } else {
            c.config_json = "{}";
        }
        return c;
    }

    // ----- component tables → JSON ---------------------------------------------------------------

    /// Converts `n` (at `rel`, relative to the component's table, and `full`, its display path)
    /// into `out`. Returns true when a string in it (or in an array it holds) used ${...}.
    bool convert_value(const toml::node &n, const std::string &rel, const std::string &full,
                       ComponentConfig &c, json &out) const {
        switch (n.type()) {
        case toml::node_type::table:
            out = json::object();
            convert_table(*n.as_table(), rel, full, c, out, false);
            return false; // its own keys were marked one by one
        case toml::node_type::array: {
            out = json::array();
            bool used_env = false;
            size_t i = 0;
            for (const toml::node &e : *n.as_array()) {
                const std::string r = rel + "[" + std::to_string(i) + "]";
                const std::string f = full + "[" + std::to_string(i) + "]";
                ++i;
                c.key_locations[r] = at(e);
                json item;
                used_env |= convert_value(e, r, f, c, item);
                out.push_back(std::move(item));
            }
            return used_env;
        }
        case toml::node_type::string: {
            Interpolated v;
            try {
                v = interpolate_env(n.as_string()->get(), env_);
            } catch (const InterpolationError &e) {
                fail(at(n), full, e.what());
            }
            out = std::move(v.value);
            return v.used_env;
        }
        case toml::node_type::integer:
            out = n.as_integer()->get();
            return false;
        case toml::node_type::floating_point: {
            const double d = n.as_floating_point()->get();
            if (!std::isfinite(d))
                fail(at(n), full, "nan and inf cannot be passed to a plugin (JSON has no such numbers)");
            out = d;
            return false;
        }
        case toml::node_type::boolean:
            out = n.as_boolean()->get();
            return false;
        case toml::node_type::date:
        case toml::node_type::time:
        case toml::node_type::date_time: {
            std::ostringstream text; // toml++ prints RFC 3339 / ISO 8601
            if (n.is_date())
                text << *n.as_date();
            else if (n.is_time())
                text << *n.as_time();
            else
                text << *n.as_date_time();
            out = text.str();
            return false;
        }
        default:
            out = nullptr;
            return false;
        }
    }

    void convert_table(const toml::table &t, const std::string &rel, const std::string &full,
                       ComponentConfig &c, json &out, bool skip_plugin_key) const {
        for (auto &&[k, v] : t) {
            const std::string key(k.str());
            if (skip_plugin_key && key == "plugin")
                continue;
            const std::string r = rel.empty() ? key : rel + "." + key;
            const std::string f = full + "." + key;
            // `"" = ...` is valid TOML, but no plugin has such a key, and a key path could not
            // name it.
            if (key.empty()) fail(at_key(k, v), full + ".\"\"", "an empty key is not a valid key");
            c.key_locations[r] = at_key(k, v);
            json value;
            const bool used_env = convert_value(v, r, f, c, value);
            // Values from the environment are secrets whatever the key; which keys are secret
            // by nature is the plugin's to say (its key table; config_keys.cpp).
            if (used_env)
                c.secret_keys.push_back(r);
            out[key] = std::move(value);
        }
    }

    // ----- fraiseql.toml ----------------------------------------------------------------------

    /// FraiseQL's main config: only [observers] is read (`backend`, `nats_url`); [project],
    /// [fraiseql] and the rest belong to FraiseQL itself.
    void load_fraiseql_main(const toml::table &root, const toml::node &node) {
        // Mixing both formats is almost surely a typo of [observer]; refuse rather than guess.
        for (const char *ours : {"observer", "sources", "transport", "transports", "actions", "pipelines"})
            if (const toml::node *n = root.get(ours))
                fail(at(*n), ours,
                     std::string("this file has [observers], so it is read as FraiseQL's main config "
                                 "(fraiseql.toml), where only [observers] matters; move [") +
                         ours + "] to fraiseql-observer.toml, or rename [observers] to [observer]");
        const toml::table &t = expect_table(node, "observers");
        for (auto &&[k, v] : t) {
            const std::string key(k.str());
            if (key == "backend" || key == "nats_url")
                continue;
            static const std::vector<std::string> observer_keys{
                "plugin_dirs", "metrics_listen", "log_level", "log_format", "shutdown_timeout_secs"};
            const bool belongs_to_observer =
                std::find(observer_keys.begin(), observer_keys.end(), key) != observer_keys.end();
            fail(at_key(k, v), "observers." + key,
                 "unknown key `" + key + "`" + did_you_mean(key, {"backend", "nats_url"}) +
                     "; [observers] accepts `backend` and `nats_url`" +
                     (belongs_to_observer ? " (`" + key + "` goes in [observer] of fraiseql-observer.toml)"
                                          : std::string()));
        }
        std::string backend = "nats";
        if (const toml::node *b = t.get("backend"))
            backend = get_nonempty_string(*b, "observers.backend");
        ComponentConfig c;
        if (backend == "nats")
            c = default_nats_transport(env_);
        else
            c.config_json = "{}";
        c.name = kDefaultTransportName;
        c.plugin = backend;
        c.section = "observers";
        c.where = at(node);
        c.is_default = false;
        if (const toml::node *u = t.get("nats_url")) {
            bool hidden = false;
            std::string url = get_nonempty_string(*u, "observers.nats_url", &hidden);
            if (backend == "nats") {
                json config = json::parse(c.config_json);
                config["url"] = url;
                c.config_json = config.dump();
                c.key_locations["url"] = at(*u);
                c.secret_keys.erase(std::remove(c.secret_keys.begin(), c.secret_keys.end(), "url"),
                                    c.secret_keys.end());
                if (hidden)
                    c.secret_keys.push_back("url");
            } else {
                config_.warnings.push_back(format_error(
                    at(*u), "observers.nats_url", "ignored: the backend is `" + backend + "`, not `nats`"));
            }
        }
        config_.transports.push_back(std::move(c));
    }

    // ----- pipelines ----------------------------------------------------------------------------

    void parse_pipelines(const toml::node &node) {
        if (!node.is_array_of_tables())
            fail(at(node), "pipelines",
                 std::string("expected an array of tables ([[pipelines]] blocks), got ") + type_name(node));
        size_t index = 0;
        for (const toml::node &e : *node.as_array()) {
            const std::string path = "pipelines[" + std::to_string(index++) + "]";
            raw_pipelines_.push_back(parse_pipeline(*e.as_table(), path));
        }
    }

    RawPipeline parse_pipeline(const toml::table &t, const std::string &path) {
        check_keys(t, path,
                   {"name", "source", "transport", "actions", "entity_types", "operations",
                    "consumer", "max_in_flight", "ordering", "on_failure"});
        RawPipeline raw;
        raw.path = path;
        raw.p.path = path;
        PipelineConfig &p = raw.p;
        p.where = at(t);
        const toml::node *name = t.get("name");
        if (!name)
            fail(p.where, path + ".name", "missing required key `name`");
        p.name = get_string(*name, path + ".name");
        check_name(p.name, at(*name), path + ".name", "pipeline name");
        for (const RawPipeline &other : raw_pipelines_)
            if (other.p.name == p.name)
                fail(at(*name), path + ".name",
                     "duplicate pipeline name `" + p.name + "` (also used by " + other.path +
                         ", line " + std::to_string(other.p.where.line) + ")");
        if (const toml::node *n = t.get("source")) {
            p.source = get_nonempty_string(*n, path + ".source", &raw.source_hidden);
            raw.source_at = at(*n);
        }
        if (const toml::node *n = t.get("transport")) {
            raw.transport = get_nonempty_string(*n, path + ".transport", &raw.transport_hidden);
            raw.transport_at = at(*n);
        }
        if (const toml::node *n = t.get("actions")) {
            for (auto &item : get_string_array(*n, path + ".actions")) {
                const std::string item_path = path + ".actions[" + std::to_string(p.actions.size()) + "]";
                if (item.value.empty())
                    fail(item.where, item_path, "must not be empty");
                if (std::find(p.actions.begin(), p.actions.end(), item.value) != p.actions.end())
                    fail(item.where, item_path,
                         "the action" + (item.hidden ? std::string() : " `" + item.value + "`") +
                             " is listed twice");
                p.actions.push_back(std::move(item.value));
                raw.action_at.push_back(item.where);
                raw.action_hidden.push_back(item.hidden);
            }
        }
        if (const toml::node *n = t.get("entity_types"))
            p.entity_types = get_tokens(*n, path + ".entity_types", false);
        if (const toml::node *n = t.get("operations"))
            p.operations = get_tokens(*n, path + ".operations", true);
        if (const toml::node *n = t.get("consumer")) {
            p.consumer = get_string(*n, path + ".consumer", &raw.consumer_hidden);
            if (!is_consumer_name(p.consumer))
                fail(at(*n), path + ".consumer",
                     "invalid durable consumer name" +
                         (raw.consumer_hidden ? std::string() : " `" + p.consumer + "`") +
                         ": it must be non-empty, without whitespace, `.`, `*`, `>`, `/` or `\\`");
            raw.consumer_explicit = true;
            raw.consumer_at = at(*n);
        }
        if (const toml::node *n = t.get("max_in_flight"))
            p.max_in_flight =
                static_cast<uint32_t>(get_integer(*n, path + ".max_in_flight", 1, kMaxInFlightLimit));
        p.ordering_at = p.on_failure_at = p.where;
        if (const toml::node *n = t.get("ordering")) {
            p.ordering = get_choice(*n, path + ".ordering", {"none", "entity"}) == "entity"
                             ? PipelineConfig::Ordering::entity
                             : PipelineConfig::Ordering::none;
            p.ordering_at = at(*n);
        }
        if (const toml::node *n = t.get("on_failure")) {
            p.on_failure = get_choice(*n, path + ".on_failure", {"park", "skip"}) == "skip"
                               ? PipelineConfig::OnFailure::skip
                               : PipelineConfig::OnFailure::park;
            p.on_failure_at = at(*n);
            if (p.ordering != PipelineConfig::Ordering::entity)
                config_.warnings.push_back(format_error(
                    at(*n), path + ".on_failure",
                    "ignored: it applies only with ordering = \"entity\""));
        }
        if (!p.source && p.actions.empty())
            fail(p.where, path,
                 "pipeline `" + p.name +
                     "` does nothing: give it a `source` (publisher), `actions` (worker), or both");
        return raw;
    }

    /// Filters compared with event fields that are NATS subject tokens.
    std::vector<std::string> get_tokens(const toml::node &n, const std::string &path, bool to_upper) const {
        std::vector<std::string> out;
        size_t i = 0;
        for (auto &item : get_string_array(n, path)) {
            const std::string item_path = path + "[" + std::to_string(i++) + "]";
            if (!is_subject_token(item.value))
                fail(item.where, item_path,
                     "invalid value" + (item.hidden ? std::string() : " `" + item.value + "`") +
                         ": must be non-empty, without `.`, `*`, `>`, whitespace or control characters");
            out.push_back(to_upper ? upper(item.value) : item.value);
        }
        return out;
    }

    // ----- defaults and cross-references ---------------------------------------------------------

    void finish() {
        if (config_.transports.empty())
            config_.transports.push_back(default_nats_transport(env_));
        add_default_source();
        if (raw_pipelines_.empty())
            add_default_pipelines();
        else
            for (RawPipeline &raw : raw_pipelines_)
                resolve(raw);
        check_consumers();
    }

    /// With no [sources.*], the built-in `pg_listen` source exists when something uses it: the
    /// default pipeline (not for role worker, which never runs sources), or a pipeline that
    /// names `postgres`.
    void add_default_source() {
        if (!config_.sources.empty())
            return;
        const RawPipeline *user = nullptr;
        for (const RawPipeline &raw : raw_pipelines_)
            if (raw.p.source == kDefaultSourceName) {
                user = &raw;
                break;
            }
        const bool needed = user || (raw_pipelines_.empty() && options_.role != Role::worker);
        if (!needed)
            return;
        const auto conninfo = env_("DATABASE_URL");
        if (!conninfo && options_.role != Role::worker) {
            const std::string why =
                "no [sources.*] table is declared, so the built-in source `postgres` (plugin "
                "pg_listen, LISTEN on channel fraiseql_events) reads its connection string from the "
                "environment variable DATABASE_URL, which is not set. Set DATABASE_URL (e.g. "
                "postgres://user:password@localhost:5432/app), declare a [sources.<name>] table, or "
                "run with --role worker";
            if (user)
                fail(user->source_at, user->path + ".source", why);
            fail(builtin(), std::string("sources.") + kDefaultSourceName + ".conninfo", why);
        }
        config_.sources.push_back(default_pg_source(conninfo));
    }

    /// No [[pipelines]]: every source publishes to the default transport and every declared
    /// action consumes it.
    ///  - zero or one source: one pipeline `default` (source + all actions; with no action a
    ///    publisher-only bridge, with no source a worker-only pipeline);
    ///  - several sources: one publisher pipeline per source, named after the source, and one
    ///    worker pipeline `default` carrying all actions (if any), so each event is published
    ///    once and handled once by each action, whichever source it came from. A source that is
    ///    itself named `default` carries the actions instead of a separate worker pipeline.
    void add_default_pipelines() {
        const ComponentConfig *transport = find_named(config_.transports, kDefaultTransportName);
        if (!transport && config_.transports.size() == 1)
            transport = &config_.transports.front();
        if (!transport)
            fail(SourceLocation{file_, 0, 0}, "pipelines",
                 "several transports are declared (" + join_list(names_of(config_.transports)) +
                     ") and none is named `default`, so there is no default pipeline; add "
                     "[[pipelines]] blocks that say which transport each uses");
        const std::vector<std::string> actions = names_of(config_.actions);
        auto make = [&](const std::string &name, std::optional<std::string> source,
                        std::vector<std::string> pipeline_actions) {
            PipelineConfig p;
            p.name = name;
            p.source = std::move(source);
            p.transport = transport->name;
            p.actions = std::move(pipeline_actions);
            p.consumer = consumer_name_of(*transport);
            p.where = builtin();
            p.path = "pipelines";
            p.is_default = true;
            config_.pipelines.push_back(std::move(p));
        };
        if (config_.sources.size() <= 1) {
            std::optional<std::string> source;
            if (!config_.sources.empty())
                source = config_.sources.front().name;
            if (!source && actions.empty()) {
                config_.warnings.push_back(
                    "no source is used (role worker) and no action is declared: there is nothing to "
                    "run; declare [actions.<name>] tables or [[pipelines]]");
                return;
            }
            make("default", source, actions);
            return;
        }
        bool source_named_default = false;
        for (const ComponentConfig &s : config_.sources) {
            const bool is_default = s.name == "default";
            source_named_default |= is_default;
            make(s.name, s.name, is_default ? actions : std::vector<std::string>{});
        }
        if (!source_named_default && !actions.empty())
            make("default", std::nullopt, actions);
    }

    std::string unknown_reference(const char *kind, const std::string &name, bool hidden,
                                  const std::vector<std::string> &known) const {
        if (hidden)
            return std::string("unknown ") + kind + " (the name comes from the environment); declared: " +
                   join_list(known);
        return std::string("unknown ") + kind + " `" + name + "`" + did_you_mean(name, known) +
               "; declared: " + join_list(known);
    }

    void resolve(RawPipeline &raw) {
        PipelineConfig &p = raw.p;
        if (p.source && !find_named(config_.sources, *p.source))
            fail(raw.source_at, raw.path + ".source",
                 unknown_reference("source", *p.source, raw.source_hidden, names_of(config_.sources)));
        const ComponentConfig *transport = nullptr;
        if (raw.transport) {
            transport = find_named(config_.transports, *raw.transport);
            if (!transport)
                fail(raw.transport_at, raw.path + ".transport",
                     unknown_reference("transport", *raw.transport, raw.transport_hidden,
                                       names_of(config_.transports)));
        } else if (config_.transports.size() == 1) {
            transport = &config_.transports.front();
        } else {
            fail(p.where, raw.path + ".transport",
                 "`transport` may be omitted only when exactly one transport exists; declared: " +
                     join_list(names_of(config_.transports)));
        }
        p.transport = transport->name;
        for (size_t i = 0; i < p.actions.size(); ++i)
            if (!find_named(config_.actions, p.actions[i]))
                fail(raw.action_at[i], raw.path + ".actions[" + std::to_string(i) + "]",
                     unknown_reference("action", p.actions[i], raw.action_hidden[i],
                                       names_of(config_.actions)));
        if (!raw.consumer_explicit) {
            p.consumer = consumer_name_of(*transport);
            raw.consumer_at = p.where;
        }
        config_.pipelines.push_back(p);
    }

    /// Two pipelines pulling from one durable consumer would split the events between them, so
    /// each action would see only part of them.
    void check_consumers() {
        std::map<std::pair<std::string, std::string>, size_t> owners;
        for (size_t i = 0; i < config_.pipelines.size(); ++i) {
            const PipelineConfig &p = config_.pipelines[i];
            if (p.actions.empty())
                continue;
            auto [it, inserted] = owners.emplace(std::make_pair(p.transport, p.consumer), i);
            if (inserted)
                continue;
            const PipelineConfig &first = config_.pipelines[it->second];
            const RawPipeline *raw = i < raw_pipelines_.size() ? &raw_pipelines_[i] : nullptr;
            const bool hidden = raw && raw->consumer_hidden;
            const std::string key = raw ? raw->path + ".consumer" : "pipelines";
            fail(raw ? raw->consumer_at : p.where, key,
                 "pipelines `" + first.name + "` and `" + p.name + "` both consume transport `" +
                     p.transport + "` with the durable consumer" +
                     (hidden ? std::string() : " `" + p.consumer + "`") +
                     ", which would split the events between them; set `consumer` to a distinct "
                     "name in each consuming pipeline");
        }
    }

    std::string file_;
    const LoadOptions &options_;
    mutable std::vector<std::string> env_values_; // every value env_ returned (scrub())
    EnvLookup env_;                               // options_.env, remembering what it returns
    Config config_;
    std::vector<RawPipeline> raw_pipelines_;
};

} // namespace

std::string format_error(const SourceLocation &where, const std::string &key_path,
                         const std::string &reason) {
    std::string out = where.file.empty() ? kDefaultsFile : where.file;
    // Errors about built-in defaults or a whole file have no line.
    if (where.line > 0)
        out += ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
    out += ": ";
    if (!key_path.empty())
        out += key_path + ": ";
    return out + reason;
}

ConfigError::ConfigError(SourceLocation where, std::string key_path, const std::string &message)
    : std::runtime_error(format_error(where, key_path, message)), where_(std::move(where)),
      key_path_(std::move(key_path)), reason_(message) {}

std::optional<Role> parse_role(std::string_view s) {
    if (s == "all")
        return Role::all;
    if (s == "publisher")
        return Role::publisher;
    if (s == "worker")
        return Role::worker;
    return std::nullopt;
}

const char *to_string(Role r) {
    switch (r) {
    case Role::all: return "all";
    case Role::publisher: return "publisher";
    case Role::worker: return "worker";
    }
    return "all";
}

EnvLookup process_env() {
    return [](const std::string &name) -> std::optional<std::string> {
        const char *v = std::getenv(name.c_str());
        if (!v)
            return std::nullopt;
        return std::string(v);
    };
}

const ComponentConfig *Config::find_source(const std::string &name) const {
    return find_named(sources, name);
}
const ComponentConfig *Config::find_transport(const std::string &name) const {
    return find_named(transports, name);
}
const ComponentConfig *Config::find_action(const std::string &name) const {
    return find_named(actions, name);
}

std::vector<std::string> Config::plugin_names() const {
    std::vector<std::string> r;
    for (const auto *list : {&sources, &transports, &actions})
        for (const auto &c : *list) r.push_back(c.plugin);
    std::sort(r.begin(), r.end());
    r.erase(std::unique(r.begin(), r.end()), r.end());
    return r;
}

Config load_config_string(const std::string &toml_text, const std::string &file_name,
                          const LoadOptions &options) {
    toml::table root;
    try {
        root = toml::parse(toml_text, std::string_view(file_name));
    } catch (const toml::parse_error &e) {
        const auto &begin = e.source().begin;
        throw ConfigError(SourceLocation{file_name, begin.line, begin.column}, "",
                          "TOML syntax error: " + std::string(e.description()));
    }
    // A file that sets nothing is almost always a mistake (a truncated write, a template not
    // filled in); running the built-in defaults from it would hide that. Having no file at all
    // is how one asks for the defaults.
    if (root.empty())
        throw ConfigError(SourceLocation{file_name, 0, 0}, "",
                          "the configuration file is empty (no settings, only whitespace, "
                          "comments or a byte order mark): write the settings into it, for "
                          "example starting from `fraiseql-observer init --force -c " +
                              file_name +
                              "`, or remove it (and do not name it with -c or "
                              "$FRAISEQL_OBSERVER_CONFIG) to run with the built-in defaults");
    Loader loader(file_name, options);
    return loader.load(root);
}

Config load_config(const std::string &file, const LoadOptions &options) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec))
        throw ConfigError(SourceLocation{file, 0, 0}, "",
                          "cannot read the configuration file: it is a directory");
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw ConfigError(SourceLocation{file, 0, 0}, "",
                          std::string("cannot read the configuration file: ") + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad())
        throw ConfigError(SourceLocation{file, 0, 0}, "", "cannot read the configuration file");
    return load_config_string(text.str(), file, options);
}

Config default_config(const LoadOptions &options) {
    Loader loader("", options);
    return loader.load(toml::table{});
}

std::optional<std::string> resolve_config_path(const std::optional<std::string> &cli_path,
                                               const EnvLookup &env) {
    auto must_exist = [](const std::string &path, const char *given_by) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec))
            throw ConfigError(SourceLocation{path, 0, 0}, "",
                              std::string("configuration file not found (given by ") + given_by + ")");
        return path;
    };
    if (cli_path)
        return must_exist(*cli_path, "-c");
    if (auto from_env = env("FRAISEQL_OBSERVER_CONFIG"); from_env && !from_env->empty())
        return must_exist(*from_env, "$FRAISEQL_OBSERVER_CONFIG");
    std::error_code ec;
    if (std::filesystem::is_regular_file("fraiseql-observer.toml", ec))
        return std::string("fraiseql-observer.toml");
    return std::nullopt;
}

bool is_secret_name(std::string_view key) {
    const std::string k = lower(key);
    for (const char *word : {"secret", "password", "token", "key", "creds", "seed"})
        if (k.find(word) != std::string::npos)
            return true;
    return false;
}

} // namespace fraiseql_observer::host
