#include "plugin_describe.hpp"

#include "config_keys.hpp"

#include <nlohmann/json.hpp>

namespace fraiseql_observer::host {

namespace {

using nlohmann::json;

struct Component {
    ComponentKind kind;
    sdk::KeyTable table;
};

std::vector<Component> components_of(const LoadedPlugin &p) {
    std::vector<Component> out;
    for (auto k : {ComponentKind::source, ComponentKind::transport, ComponentKind::action})
        if (p.offers(k)) out.push_back({k, key_table(p, k)});
    return out;
}

std::string range_text(const fobs_config_key &k) {
    std::vector<std::string> parts;
    if (k.has_range) parts.push_back(sdk::number_text(k.min) + " – " + sdk::number_text(k.max));
    if (k.choices) {
        std::string c;
        for (const char *const *v = k.choices; *v; ++v) c += (c.empty() ? "`" : ", `") + std::string(*v) + "`";
        parts.push_back(c);
    }
    if (k.flags & FOBS_KEY_NOT_EMPTY) parts.push_back("not empty");
    if (k.flags & FOBS_KEY_SECRET) parts.push_back("secret: never shown");
    std::string out;
    for (const auto &p : parts) out += (out.empty() ? "" : "; ") + p;
    return out;
}

std::string default_text(const fobs_config_key &k) {
    if (k.flags & FOBS_KEY_REQUIRED) return "required";
    if (!k.default_json) return "none";
    return std::string("`") + k.default_json + "`";
}

// A Markdown table cell: no line breaks, `|` escaped.
std::string cell(std::string s) {
    std::string out;
    for (char c : s) {
        if (c == '|') out += "\\|";
        else if (c == '\n') out += ' ';
        else out += c;
    }
    return out;
}

json key_json(const fobs_config_key &k) {
    json j = {{"name", k.name},
              {"type", sdk::key_type_name(k.type)},
              {"required", (k.flags & FOBS_KEY_REQUIRED) != 0},
              {"secret", (k.flags & FOBS_KEY_SECRET) != 0},
              {"not_empty", (k.flags & FOBS_KEY_NOT_EMPTY) != 0},
              {"help", k.help ? k.help : ""}};
    if (k.default_json) j["default"] = json::parse(k.default_json, nullptr, false);
    if (k.has_range) {
        j["min"] = k.min;
        j["max"] = k.max;
    }
    if (k.choices) {
        j["choices"] = json::array();
        for (const char *const *v = k.choices; *v; ++v) j["choices"].push_back(*v);
    }
    return j;
}

std::string markdown(const LoadedPlugin &p) {
    std::string out;
    for (const auto &c : components_of(p)) {
        out += "## Plugin `" + p.name + "` (" + to_string(c.kind) + ")\n\n";
        if (!p.description.empty()) out += p.description + ".\n\n";
        if (c.table.empty()) {
            out += "This plugin publishes no key table: it checks its config itself.\n\n";
            continue;
        }
        out += "| Key | Type | Default | Range / values | Meaning |\n|---|---|---|---|---|\n";
        for (size_t i = 0; i < c.table.size(); ++i) {
            const fobs_config_key &k = c.table[i];
            out += "| `" + std::string(k.name) + "` | " + cell(sdk::key_type_name(k.type)) + " | " +
                   cell(default_text(k)) + " | " + cell(range_text(k)) + " | " +
                   cell(k.help ? k.help : "") + " |\n";
        }
        out += "\n";
    }
    return out;
}

std::string text(const LoadedPlugin &p) {
    std::string out = p.name + " " + p.version + " (abi " + std::to_string(p.abi_major) + "." +
                      std::to_string(p.abi_minor) + ", " + p.file.string() + ")\n";
    if (!p.description.empty()) out += "  " + p.description + "\n";
    for (const auto &c : components_of(p)) {
        out += "\n  " + std::string(to_string(c.kind)) + " keys:\n";
        if (c.table.empty()) {
            out += "    (no key table: the plugin checks its config itself)\n";
            continue;
        }
        for (size_t i = 0; i < c.table.size(); ++i) {
            const fobs_config_key &k = c.table[i];
            out += "    " + std::string(k.name) + "  (" + sdk::key_type_name(k.type) + "; " +
                   (k.flags & FOBS_KEY_REQUIRED ? std::string("required")
                                                : "default " + (k.default_json ? std::string(k.default_json)
                                                                               : std::string("none")));
            const std::string r = range_text(k);
            if (!r.empty()) out += "; " + r;
            out += ")\n";
            if (k.help && *k.help) out += "        " + std::string(k.help) + "\n";
        }
    }
    return out;
}

} // namespace

std::string describe_plugins(const std::vector<const LoadedPlugin *> &plugins, DescribeFormat format) {
    if (format == DescribeFormat::json) {
        json out = json::array();
        for (const LoadedPlugin *p : plugins) {
            json comps = json::array();
            for (const auto &c : components_of(*p)) {
                json keys = nullptr; // null: no table, the plugin checks its config itself
                if (!c.table.empty()) {
                    keys = json::array();
                    for (size_t i = 0; i < c.table.size(); ++i) keys.push_back(key_json(c.table[i]));
                }
                comps.push_back({{"kind", to_string(c.kind)}, {"keys", keys}});
            }
            out.push_back({{"name", p->name},
                           {"version", p->version},
                           {"description", p->description},
                           {"abi", std::to_string(p->abi_major) + "." + std::to_string(p->abi_minor)},
                           {"file", p->file.string()},
                           {"components", comps}});
        }
        return out.dump(2) + "\n";
    }
    std::string out;
    for (size_t i = 0; i < plugins.size(); ++i) {
        if (format == DescribeFormat::markdown) out += markdown(*plugins[i]);
        else out += (i ? "\n" : "") + text(*plugins[i]);
    }
    if (format == DescribeFormat::markdown && !out.empty()) out.pop_back(); // one trailing newline
    return out;
}

} // namespace fraiseql_observer::host
