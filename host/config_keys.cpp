#include "config_keys.hpp"

#include <fraiseql_observer/redact.hpp>
#include <nlohmann/json.hpp>

#include <charconv>
#include <functional>

namespace fraiseql_observer::host {

namespace {

using nlohmann::json;

// Calls `fn` on every node `path` can name in `node`. A key may itself contain dots
// (`"a.b" = ...`), so every member that is a prefix of the path is tried: a path that could
// mean two nodes names both (redacting too much is safe, too little is not).
void for_each_at(json &node, std::string_view path, const std::function<void(json &)> &fn) {
    if (path.empty()) {
        fn(node);
        return;
    }
    // An index applies to an array only: in an object, a path starting with '[' is a member
    // whose name starts with '[' (`"[x]" = ...` is a valid TOML key).
    if (path.front() == '[' && node.is_array()) {
        const size_t close = path.find(']');
        if (close == std::string_view::npos) return;
        size_t i = 0;
        auto [end, ec] = std::from_chars(path.data() + 1, path.data() + close, i);
        if (ec != std::errc() || end != path.data() + close || i >= node.size()) return;
        std::string_view rest = path.substr(close + 1);
        if (!rest.empty() && rest.front() == '.') rest.remove_prefix(1);
        for_each_at(node[i], rest, fn);
        return;
    }
    if (!node.is_object()) return;
    for (auto &[key, value] : node.items()) {
        if (path == key) fn(value);
        else if (path.size() > key.size() && path.compare(0, key.size(), key) == 0) {
            const char next = path[key.size()];
            if (next == '.') for_each_at(value, path.substr(key.size() + 1), fn);
            else if (next == '[') for_each_at(value, path.substr(key.size()), fn);
        }
    }
}

// The name of the key a path ends in ("headers.Authorization" -> "Authorization",
// "list[2]" -> "list").
std::string_view last_key(std::string_view path) {
    while (!path.empty() && path.back() == ']') {
        const size_t open = path.rfind('[');
        if (open == std::string_view::npos) break;
        path = path.substr(0, open);
    }
    const size_t dot = path.rfind('.');
    return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

// The path of the enclosing key or array ("a.b[1]" -> "a.b", "a.b" -> "a", "a" -> "").
std::string parent_path(const std::string &path) {
    if (!path.empty() && path.back() == ']') {
        const size_t open = path.rfind('[');
        if (open != std::string::npos) return path.substr(0, open);
    }
    const size_t dot = path.rfind('.');
    return dot == std::string::npos ? std::string() : path.substr(0, dot);
}

std::string scrub(std::string msg, const std::vector<std::string> &secrets) {
    for (const auto &s : secrets)
        for (size_t pos = msg.find(s); pos != std::string::npos; pos = msg.find(s, pos + 3))
            msg.replace(pos, s.size(), "***");
    // Then whatever looks like a credential (a URL's password, `?token=`, `password=`).
    return sdk::redact_secrets(msg);
}

} // namespace

sdk::KeyTable key_table(const LoadedPlugin &plugin, ComponentKind kind) {
    switch (kind) {
    case ComponentKind::source:
        if (plugin.source && FOBS_HAS_FIELD(plugin.source, fobs_source_desc, config_key_count))
            return sdk::KeyTable(plugin.source->config_keys, plugin.source->config_key_count);
        break;
    case ComponentKind::transport:
        if (plugin.transport && FOBS_HAS_FIELD(plugin.transport, fobs_transport_desc, config_key_count))
            return sdk::KeyTable(plugin.transport->config_keys, plugin.transport->config_key_count);
        break;
    case ComponentKind::action:
        if (plugin.action && FOBS_HAS_FIELD(plugin.action, fobs_action_desc, config_key_count))
            return sdk::KeyTable(plugin.action->config_keys, plugin.action->config_key_count);
        break;
    }
    return {};
}

std::string normalize_key_path(const std::string &key_path) {
    // A segment made only of digits after a dot is an array index.
    std::string out;
    size_t i = 0;
    while (i < key_path.size()) {
        if (key_path[i] == '.' && i + 1 < key_path.size()) {
            size_t j = i + 1;
            while (j < key_path.size() && key_path[j] >= '0' && key_path[j] <= '9') ++j;
            if (j > i + 1 && (j == key_path.size() || key_path[j] == '.' || key_path[j] == '[')) {
                out += "[" + key_path.substr(i + 1, j - i - 1) + "]";
                i = j;
                continue;
            }
        }
        out += key_path[i++];
    }
    return out;
}

std::vector<std::string> secret_paths(const ComponentConfig &cfg, const sdk::KeyTable &table) {
    std::vector<std::string> out = cfg.secret_keys; // values read through ${VAR}
    auto add = [&](std::string p) {
        if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(std::move(p));
    };
    if (!table.empty()) {
        for (size_t i = 0; i < table.size(); ++i)
            if ((table[i].flags & FOBS_KEY_SECRET) && table[i].name) add(table[i].name);
    } else {
        for (const auto &[path, where] : cfg.key_locations)
            if (!path.empty() && path.back() != ']' && is_secret_name(last_key(path))) add(path);
    }
    return out;
}

std::vector<std::string> secret_values(const ComponentConfig &cfg, const sdk::KeyTable &table) {
    std::vector<std::string> out;
    const auto paths = secret_paths(cfg, table);
    if (paths.empty()) return out;
    json j = json::parse(cfg.config_json, nullptr, false);
    if (j.is_discarded()) return out;
    std::function<void(json &)> collect = [&](json &v) {
        if (v.is_string() && v.get_ref<const std::string &>().size() >= 3) out.push_back(v.get<std::string>());
        else if (v.is_array() || v.is_object())
            for (auto &e : v) collect(e);
    };
    for (const auto &p : paths) for_each_at(j, p, collect);
    // Longest first, so a secret that contains another is replaced whole.
    std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) { return a.size() > b.size(); });
    return out;
}

std::string redacted_config_json(const ComponentConfig &cfg, const sdk::KeyTable &table) {
    json j = json::parse(cfg.config_json, nullptr, false);
    if (j.is_discarded()) return cfg.config_json;
    for (const auto &p : secret_paths(cfg, table)) for_each_at(j, p, [](json &v) { v = "***"; });
    return j.dump();
}

ConfigError component_config_error(const ComponentConfig &cfg, const sdk::KeyTable &table,
                                   const std::string &key_path, const std::string &message,
                                   const std::string &plugin) {
    const std::string rel = normalize_key_path(key_path);
    SourceLocation where = cfg.where;
    // The key itself, else its nearest written parent (a missing key, or a key the plugin
    // names that is not written).
    for (std::string probe = rel; !probe.empty(); probe = parent_path(probe)) {
        if (auto it = cfg.key_locations.find(probe); it != cfg.key_locations.end()) {
            where = it->second;
            break;
        }
    }
    std::string text = scrub(message, secret_values(cfg, table));
    if (!plugin.empty()) text += " (plugin '" + plugin + "')";
    return ConfigError(where, rel.empty() ? cfg.section : cfg.section + "." + rel, text);
}

void check_component_keys(const ComponentConfig &cfg, const sdk::KeyTable &table) {
    if (table.empty()) return;
    sdk::JsonValue root;
    try {
        root = sdk::JsonValue::parse(cfg.config_json);
    } catch (const std::exception &e) {
        // The host wrote this JSON itself; failing here is a host bug, said plainly.
        throw component_config_error(cfg, table, "", std::string("internal error: ") + e.what());
    }
    if (auto problem = sdk::check_config(root, table))
        throw component_config_error(cfg, table, problem->key_path, problem->message);
}

} // namespace fraiseql_observer::host
