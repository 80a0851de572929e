// Keeps docs/configuration.md true to the code.
//
// The page's conventions, which this test relies on:
//  - each shipped plugin has a section `## Plugin `<name>` (<kind>)`, kind = source | transport |
//    action; the host's keys are under `## Host keys`, in `### ` sections whose first backticked
//    word names the TOML table (`[observer]`, `[[pipelines]]`, `[transport]`, `[observers]`,
//    `[sources.<name>]`);
//  - a key table starts with a header row `| Key | …` and has the key, in backticks, alone in its
//    first cell; nested plugin keys are written as dot paths (`jetstream.max_deliver`);
//  - the complete example is the first ```toml block under `## Complete example`.
//
// For every documented key, the real plugin (through the real host loader) or the real config
// loader is given a config where that key holds a value of the wrong type (a table
// `{__x = 1}`), and the test asserts that the error is about that key and is NOT an "unknown
// key" error: so every documented key really exists. Canary cases check that an undocumented key
// is reported as unknown, so the assertion can fail. The complete example is loaded and each of
// its components created with the real plugins.
//
// The plugin sections are generated from the plugins' key tables (ABI 1.1), and the CTest
// `docs_configuration_generated` fails when the committed text differs, so every key a shipped
// plugin accepts is documented. This test stays as the independent check from the other side:
// each documented key, fed a wrong type through the real host loader, is refused as that key
// and not as an unknown one (a generator bug that invented or misspelled a key would fail here).
#include "config.hpp"
#include "harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace {

namespace host = fraiseql_observer::host;
using nlohmann::json;

const char *kDocPath = FOBS_TEST_SOURCE_DIR "/docs/configuration.md";

struct DocKey {
    std::string h2;  // "Plugin `nats` (transport)" or "Host keys"
    std::string h3;  // "`[observer]`" … ("" in plugin sections)
    std::string key; // "jetstream.max_deliver"
    int line = 0;
};

struct Doc {
    std::vector<std::string> lines;
    std::vector<DocKey> keys;
};

std::string trim(const std::string &s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string lower(std::string s) {
    for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

/// The first `word` in backticks of `text`, or "".
std::string first_backticked(const std::string &text) {
    const auto open = text.find('`');
    if (open == std::string::npos) return "";
    const auto close = text.find('`', open + 1);
    if (close == std::string::npos) return "";
    return text.substr(open + 1, close - open - 1);
}

const Doc &doc() {
    static const Doc parsed = [] {
        Doc d;
        std::ifstream in(kDocPath);
        if (!in) throw std::runtime_error(std::string("cannot read ") + kDocPath);
        for (std::string line; std::getline(in, line);) d.lines.push_back(line);
        std::string h2, h3;
        bool in_table = false, in_code = false;
        for (size_t i = 0; i < d.lines.size(); ++i) {
            const std::string &l = d.lines[i];
            if (l.rfind("```", 0) == 0) in_code = !in_code;
            if (in_code) continue;
            if (l.rfind("## ", 0) == 0) h2 = trim(l.substr(3)), h3.clear();
            else if (l.rfind("### ", 0) == 0) h3 = trim(l.substr(4));
            if (l.rfind("| Key |", 0) == 0) {
                in_table = true;
                continue;
            }
            if (!in_table) continue;
            if (l.empty() || l[0] != '|') {
                in_table = false;
                continue;
            }
            if (l.rfind("|---", 0) == 0) continue;
            // First cell: exactly one key in backticks.
            const auto end = l.find('|', 1);
            const std::string cell = trim(l.substr(1, end == std::string::npos ? std::string::npos : end - 1));
            static const std::regex one_key(R"(^`([A-Za-z0-9_.]+)`$)");
            std::smatch m;
            if (!std::regex_match(cell, m, one_key))
                throw std::runtime_error("docs/configuration.md:" + std::to_string(i + 1) +
                                         ": a key table's first cell must be one key in backticks, got: " +
                                         cell);
            d.keys.push_back({h2, h3, m[1].str(), static_cast<int>(i + 1)});
        }
        return d;
    }();
    return parsed;
}

struct PluginSection {
    std::string kind;
    std::vector<DocKey> keys;
};

/// Plugin name -> its section's kind and keys.
std::map<std::string, PluginSection> plugin_sections() {
    std::map<std::string, PluginSection> out;
    static const std::regex heading(R"(^Plugin `([a-z_]+)` \((source|transport|action)\)$)");
    for (const auto &l : doc().lines) {
        std::smatch m;
        const std::string h = l.rfind("## ", 0) == 0 ? trim(l.substr(3)) : "";
        if (std::regex_match(h, m, heading)) out[m[1].str()].kind = m[2].str();
    }
    for (const auto &k : doc().keys) {
        std::smatch m;
        if (std::regex_match(k.h2, m, heading)) out[m[1].str()].keys.push_back(k);
    }
    return out;
}

/// Host table ("[observer]") -> its documented keys.
std::map<std::string, std::vector<DocKey>> host_sections() {
    std::map<std::string, std::vector<DocKey>> out;
    for (const auto &k : doc().keys)
        if (k.h2 == "Host keys") out[first_backticked(k.h3)].push_back(k);
    return out;
}

std::set<std::string> names_of(const std::vector<DocKey> &keys) {
    std::set<std::string> out;
    for (const auto &k : keys) out.insert(k.key);
    return out;
}

bool is_at(const std::string &path, const std::string &key) {
    return path == key || path.rfind(key + ".", 0) == 0 || path.rfind(key + "[", 0) == 0;
}

// ----- plugins ------------------------------------------------------------------------------

/// The smallest valid config of each plugin (its required keys).
json base_config(const std::string &plugin) {
    if (plugin == "pg_listen") return {{"conninfo", "host=127.0.0.1 port=5432 dbname=docs_test"}};
    if (plugin == "webhook") return {{"url", "http://127.0.0.1:9/hook"}};
    return json::object();
}

/// Sets the dot path `key` of `config` to `value`, creating tables on the way.
void set_path(json &config, const std::string &key, json value) {
    json *node = &config;
    size_t start = 0;
    for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1) {
        json &next = (*node)[key.substr(start, dot - start)];
        if (!next.is_object()) next = json::object();
        node = &next;
    }
    (*node)[key.substr(start)] = std::move(value);
}

struct CreateResult {
    bool created = false;
    std::string key_path, message;
};

CreateResult create(fobs_test::Harness &h, const std::string &kind, const std::string &plugin,
                    const json &config) {
    CreateResult r;
    try {
        const std::string text = config.dump();
        if (kind == "source") h.source(plugin, text);
        else if (kind == "transport") h.transport(plugin, text);
        else h.action(plugin, text);
        r.created = true;
    } catch (const host::InstanceError &e) {
        r.key_path = e.key_path();
        r.message = e.what();
    }
    return r;
}

fobs_test::Harness &harness() {
    static fobs_test::Harness h(std::string{}, "warn");
    return h;
}

const std::map<std::string, std::pair<std::string, size_t>> kShippedPlugins = {
    // name -> kind, the number of keys its parser knows today
    {"nats", {"transport", 30}},
    {"memory", {"transport", 8}},
    {"pg_listen", {"source", 12}},
    {"webhook", {"action", 10}},
    {"log", {"action", 8}},
};

TEST(DocsConfigKeys, EveryShippedPluginHasASectionWithItsKeys) {
    const auto sections = plugin_sections();
    for (const auto &[name, expected] : kShippedPlugins) {
        SCOPED_TRACE(name);
        auto it = sections.find(name);
        ASSERT_NE(it, sections.end()) << "no `## Plugin `" << name << "` (…)` section";
        EXPECT_EQ(it->second.kind, expected.first);
        EXPECT_GE(it->second.keys.size(), expected.second);
        EXPECT_EQ(names_of(it->second.keys).size(), it->second.keys.size()) << "a key is listed twice";
    }
    EXPECT_EQ(sections.at("nats").keys.size(), 32u);
    const auto nats = names_of(sections.at("nats").keys);
    for (const char *k : {"url", "stream_name", "subject_prefix", "consumer_name", "jetstream.max_bytes",
                          "jetstream.max_age_days", "jetstream.max_deliver", "jetstream.ack_wait_secs",
                          "jetstream.dedup_window_minutes"})
        EXPECT_TRUE(nats.count(k)) << "the seed's key " << k << " is not documented";
    EXPECT_TRUE(names_of(sections.at("pg_listen").keys).count("conninfo"));
    EXPECT_TRUE(names_of(sections.at("webhook").keys).count("secret"));
}

TEST(DocsConfigKeys, EveryDocumentedPluginKeyExists) {
    auto &h = harness();
    size_t checked = 0;
    for (const auto &[name, section] : plugin_sections()) {
        for (const DocKey &k : section.keys) {
            SCOPED_TRACE("docs/configuration.md:" + std::to_string(k.line) + ": plugin " + name +
                         ", key " + k.key);
            json config = base_config(name);
            set_path(config, k.key, json{{"__x", 1}});
            const CreateResult r = create(h, section.kind, name, config);
            ASSERT_FALSE(r.created) << "a table was accepted as the value of " << k.key;
            EXPECT_TRUE(is_at(r.key_path, k.key))
                << "the error is about `" << r.key_path << "`, not the documented key: " << r.message;
            EXPECT_EQ(lower(r.message).find("unknown key"), std::string::npos)
                << "documented key does not exist: " << r.message;
            ++checked;
        }
    }
    EXPECT_GE(checked, 68u);
}

TEST(DocsConfigKeys, CanaryAnUndocumentedPluginKeyIsReportedUnknown) {
    auto &h = harness();
    for (const auto &[name, expected] : kShippedPlugins) {
        SCOPED_TRACE(name);
        json config = base_config(name);
        config["__not_a_key__"] = json{{"__x", 1}};
        const CreateResult r = create(h, expected.first, name, config);
        ASSERT_FALSE(r.created);
        EXPECT_EQ(r.key_path, "__not_a_key__");
        EXPECT_NE(lower(r.message).find("unknown key"), std::string::npos) << r.message;
        // And the base config itself is valid, so errors above come from the key under test.
        EXPECT_TRUE(create(h, expected.first, name, base_config(name)).created);
    }
}

// ----- host ---------------------------------------------------------------------------------

host::LoadOptions test_env() {
    host::LoadOptions o;
    static const std::map<std::string, std::string> vars = {
        {"DATABASE_URL", "postgres://docs:docs-pass@127.0.0.1:5432/docs"},
        {"ORDERS_DATABASE_URL", "postgres://docs:docs-pass@127.0.0.1:5432/orders"},
        {"BILLING_DATABASE_URL", "host=127.0.0.1 dbname=billing user=docs"},
        {"WEBHOOK_SECRET", "whsec_dG9wLXNlY3JldC12YWx1ZQ=="},
        {"BILLING_HOOK_URL", "http://127.0.0.1:9/billing"},
        {"BILLING_SECRET", "billing-plain-secret"},
    };
    o.env = [](const std::string &name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
    return o;
}

/// How to write key `key` of host table `table` (as its heading names it) with a wrong-typed
/// value, and the key path the loader must report. Other keys a table needs come first.
struct HostCase {
    std::string toml, path;
};

HostCase host_case(const std::string &table, const std::string &key) {
    const std::string bad = key + " = { __x = 1 }\n";
    if (table == "[observer]") return {"[observer]\n" + bad, "observer." + key};
    if (table == "[sources.<name>]") return {"[sources.s]\n" + bad, "sources.s." + key};
    if (table == "[transport]") return {"[transport]\n" + bad, "transport." + key};
    if (table == "[observers]") return {"[project]\nname = \"x\"\n[observers]\n" + bad, "observers." + key};
    if (table == "[[pipelines]]") {
        std::string t = "[actions.a]\nplugin = \"log\"\n[[pipelines]]\n";
        if (key != "name") t += "name = \"p\"\n";
        if (key != "actions") t += "actions = [\"a\"]\n";
        return {t + bad, "pipelines[0]." + key};
    }
    return {"", ""};
}

TEST(DocsConfigKeys, HostSectionsDocumentTheirKeys) {
    const auto sections = host_sections();
    for (const char *t : {"[observer]", "[[pipelines]]", "[transport]", "[observers]", "[sources.<name>]"})
        EXPECT_TRUE(sections.count(t)) << "no host key table under a `### `" << t << "`` heading";
    EXPECT_EQ(names_of(sections.at("[observer]")),
              (std::set<std::string>{"plugin_dirs", "metrics_listen", "log_level", "log_format",
                                     "shutdown_timeout_secs"}));
    EXPECT_EQ(names_of(sections.at("[[pipelines]]")),
              (std::set<std::string>{"name", "source", "transport", "actions", "entity_types", "operations",
                                     "consumer", "max_in_flight", "ordering", "on_failure"}));
    EXPECT_EQ(names_of(sections.at("[observers]")), (std::set<std::string>{"backend", "nats_url"}));
    EXPECT_EQ(names_of(sections.at("[transport]")), (std::set<std::string>{"transport"}));
    EXPECT_EQ(names_of(sections.at("[sources.<name>]")), (std::set<std::string>{"plugin"}));
}

TEST(DocsConfigKeys, EveryDocumentedHostKeyExists) {
    size_t checked = 0;
    for (const auto &[table, keys] : host_sections()) {
        for (const DocKey &k : keys) {
            SCOPED_TRACE("docs/configuration.md:" + std::to_string(k.line) + ": " + table + " " + k.key);
            const HostCase c = host_case(table, k.key);
            ASSERT_FALSE(c.toml.empty()) << "the test does not know the host table " << table;
            try {
                host::load_config_string(c.toml, "docs.toml", test_env());
                ADD_FAILURE() << "a table was accepted as the value of " << c.path;
            } catch (const host::ConfigError &e) {
                EXPECT_EQ(e.key_path(), c.path) << e.what();
                EXPECT_EQ(lower(e.reason()).find("unknown key"), std::string::npos)
                    << "documented key does not exist: " << e.what();
            }
            ++checked;
        }
    }
    EXPECT_GE(checked, 17u);
}

TEST(DocsConfigKeys, CanaryAnUndocumentedHostKeyIsReportedUnknown) {
    // Not [transport]: a table there is another transport's settings (a warning, by design).
    for (const char *table : {"[observer]", "[[pipelines]]", "[observers]"}) {
        SCOPED_TRACE(table);
        const HostCase c = host_case(table, "__not_a_key__");
        try {
            host::load_config_string(c.toml, "docs.toml", test_env());
            ADD_FAILURE() << "accepted";
        } catch (const host::ConfigError &e) {
            EXPECT_EQ(e.key_path(), c.path) << e.what();
            EXPECT_NE(lower(e.reason()).find("unknown key"), std::string::npos) << e.what();
        }
    }
}

// ----- the complete example -----------------------------------------------------------------

std::string complete_example() {
    const auto &lines = doc().lines;
    auto it = std::find(lines.begin(), lines.end(), "## Complete example");
    if (it == lines.end()) return "";
    it = std::find(it, lines.end(), "```toml");
    std::string out;
    for (++it; it != lines.end() && *it != "```"; ++it) out += *it + "\n";
    return out;
}

TEST(DocsConfigKeys, CompleteExampleLoadsAndEveryComponentIsAccepted) {
    const std::string text = complete_example();
    ASSERT_FALSE(text.empty()) << "no ```toml block under `## Complete example`";
    host::Config cfg;
    try {
        cfg = host::load_config_string(text, "docs/configuration.md#complete-example", test_env());
    } catch (const host::ConfigError &e) {
        FAIL() << e.what();
    }
    EXPECT_TRUE(cfg.warnings.empty()) << cfg.warnings.front();
    EXPECT_EQ(cfg.observer.log_format, "json");
    EXPECT_EQ(cfg.pipelines.size(), 3u);
    std::set<std::string> plugins_used;
    auto &h = harness();
    auto check = [&](const std::vector<host::ComponentConfig> &components, const std::string &kind) {
        for (const auto &c : components) {
            SCOPED_TRACE(c.section);
            plugins_used.insert(c.plugin);
            const CreateResult r = create(h, kind, c.plugin, json::parse(c.config_json));
            EXPECT_TRUE(r.created) << r.message;
        }
    };
    check(cfg.sources, "source");
    check(cfg.transports, "transport");
    check(cfg.actions, "action");
    for (const auto &[name, _] : kShippedPlugins)
        EXPECT_TRUE(plugins_used.count(name)) << "the complete example does not use " << name;
    for (const auto &p : cfg.pipelines) EXPECT_FALSE(p.is_default) << p.name;
}

} // namespace
