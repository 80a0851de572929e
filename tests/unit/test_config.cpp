// The configuration loader (SPEC section 3): the reference files, the defaults, every class of
// error with its exact file:line:col and key path, environment interpolation, and secrets.
#include "config.hpp"
#include "config_interpolate.hpp"
#include "config_keys.hpp"
#include "config_suggest.hpp"
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>

namespace fs = std::filesystem;
using fraiseql_observer::host::Config;
using fraiseql_observer::host::ConfigError;
using fraiseql_observer::host::EnvLookup;
using fraiseql_observer::host::LoadOptions;
using fraiseql_observer::host::Role;
using nlohmann::json;
namespace host = fraiseql_observer::host;

namespace {

const std::string kDbUrl = "postgres://app:db-pass-0xC0FFEE@db.internal:5432/app";
const std::string kNatsUrl = "nats://nats-a.internal:4222";
const std::string kWebhookSecret = "whsec_dG9wLXNlY3JldC12YWx1ZQ==";

EnvLookup env_of(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const std::string &name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end())
            return std::nullopt;
        return it->second;
    };
}

LoadOptions options(std::map<std::string, std::string> vars = {}, Role role = Role::all) {
    LoadOptions o;
    o.role = role;
    o.env = env_of(std::move(vars));
    return o;
}

LoadOptions full_env(Role role = Role::all) {
    return options({{"DATABASE_URL", kDbUrl}, {"NATS_URL", kNatsUrl}, {"WEBHOOK_SECRET", kWebhookSecret}},
                   role);
}

std::string fixture(const std::string &name) {
    return std::string(FOBS_TEST_SOURCE_DIR) + "/tests/unit/data/config/" + name;
}

json config_of(const host::ComponentConfig &c) { return json::parse(c.config_json); }

bool contains(const std::vector<std::string> &v, const std::string &s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

/// The error message load_config_string gives for `text` (read as "cfg.toml"), or a marker.
std::string load_error(const std::string &text, const LoadOptions &opts = full_env()) {
    try {
        host::load_config_string(text, "cfg.toml", opts);
    } catch (const ConfigError &e) {
        return e.what();
    }
    return "<loaded without error>";
}

std::string default_error(const LoadOptions &opts) {
    try {
        host::default_config(opts);
    } catch (const ConfigError &e) {
        return e.what();
    }
    return "<loaded without error>";
}

// A minimal valid file with one consuming pipeline, used as a base by several tests.
const std::string kActionBase = R"(
[actions.hook]
plugin = "webhook"
url = "http://127.0.0.1:9/hook"
)";

} // namespace

// ----- the user's reference files --------------------------------------------------------------

TEST(ConfigReference, fraiseql_observer_toml_loads_verbatim) {
    const Config c = host::load_config(fixture("reference_fraiseql-observer.toml"), full_env());
    EXPECT_EQ(c.file, fixture("reference_fraiseql-observer.toml"));
    ASSERT_EQ(c.transports.size(), 1u);
    const auto &t = c.transports[0];
    EXPECT_EQ(t.name, "default");
    EXPECT_EQ(t.plugin, "nats");
    EXPECT_EQ(t.section, "transport.nats");
    EXPECT_FALSE(t.is_default);
    EXPECT_EQ(t.where.line, 4u);
    const json cfg = config_of(t);
    EXPECT_EQ(cfg["url"], kNatsUrl);
    EXPECT_EQ(cfg["stream_name"], "fraiseql_events");
    EXPECT_EQ(cfg["subject_prefix"], "fraiseql.mutation");
    EXPECT_EQ(cfg["consumer_name"], "fraiseql_observer_worker");
    ASSERT_TRUE(cfg["jetstream"]["max_bytes"].is_number_integer());
    EXPECT_EQ(cfg["jetstream"]["max_bytes"].get<int64_t>(), 10'737'418'240);
    EXPECT_EQ(cfg["jetstream"]["max_age_days"], 7);
    EXPECT_EQ(cfg["jetstream"]["max_deliver"], 3);
    EXPECT_EQ(cfg["jetstream"]["ack_wait_secs"], 30);
    EXPECT_EQ(cfg["jetstream"]["dedup_window_minutes"], 5);
    EXPECT_FALSE(cfg.contains("plugin"));
    EXPECT_EQ(t.key_locations.at("jetstream.max_deliver").line, 13u);
    EXPECT_EQ(t.key_locations.at("jetstream").line, 10u);
    EXPECT_EQ(t.key_locations.at("url").line, 5u);
    EXPECT_TRUE(contains(t.secret_keys, "url")); // it used ${NATS_URL}

    // No [sources.*] and no [[pipelines]]: the built-in source and the publisher-only bridge.
    ASSERT_EQ(c.sources.size(), 1u);
    EXPECT_EQ(c.sources[0].name, "postgres");
    EXPECT_EQ(c.sources[0].plugin, "pg_listen");
    EXPECT_TRUE(c.sources[0].is_default);
    EXPECT_EQ(config_of(c.sources[0])["conninfo"], kDbUrl);
    ASSERT_EQ(c.pipelines.size(), 1u);
    const auto &p = c.pipelines[0];
    EXPECT_EQ(p.name, "default");
    EXPECT_EQ(p.source, "postgres");
    EXPECT_EQ(p.transport, "default");
    EXPECT_TRUE(p.actions.empty());
    EXPECT_EQ(p.consumer, "fraiseql_observer_worker");
    EXPECT_TRUE(p.is_default);
    EXPECT_EQ(c.observer.log_level, "info");
    EXPECT_EQ(c.observer.metrics_listen, "127.0.0.1:9464");
}

TEST(ConfigReference, fraiseql_observer_toml_needs_nats_url_it_references) {
    const std::string error = [] {
        try {
            host::load_config(fixture("reference_fraiseql-observer.toml"),
                              options({{"DATABASE_URL", kDbUrl}}));
        } catch (const ConfigError &e) {
            return std::string(e.what());
        }
        return std::string("<no error>");
    }();
    EXPECT_EQ(error.rfind(fixture("reference_fraiseql-observer.toml") + ":5:7: transport.nats.url: " +
                              "environment variable `NATS_URL` is not set",
                          0),
              0u)
        << error;
    EXPECT_EQ(error.find(kDbUrl), std::string::npos);
}

TEST(ConfigReference, fraiseql_toml_observers_section_configures_the_transport) {
    const Config c = host::load_config(fixture("reference_fraiseql.toml"), full_env());
    ASSERT_EQ(c.transports.size(), 1u);
    const auto &t = c.transports[0];
    EXPECT_EQ(t.name, "default");
    EXPECT_EQ(t.plugin, "nats");
    EXPECT_EQ(t.section, "observers");
    const json cfg = config_of(t);
    // Only the url is the host's to set; the rest are the nats plugin's defaults (its table).
    EXPECT_EQ(cfg, json({{"url", kNatsUrl}}));
    EXPECT_EQ(t.key_locations.at("url").line, 11u);
    EXPECT_TRUE(contains(t.secret_keys, "url"));
    ASSERT_EQ(c.sources.size(), 1u);
    EXPECT_EQ(c.sources[0].name, "postgres");
    ASSERT_EQ(c.pipelines.size(), 1u);
    EXPECT_EQ(c.pipelines[0].source, "postgres");
    EXPECT_EQ(c.pipelines[0].transport, "default");
}

TEST(ConfigReference, fraiseql_toml_backend_and_unknown_keys) {
    const Config memory = host::load_config_string("[project]\nname = \"x\"\n[observers]\nbackend = \"memory\"\n",
                                                   "fraiseql.toml", full_env());
    ASSERT_EQ(memory.transports.size(), 1u);
    EXPECT_EQ(memory.transports[0].plugin, "memory");
    EXPECT_EQ(memory.transports[0].config_json, "{}");

    EXPECT_EQ(load_error("[observers]\nbackend = \"nats\"\nnats_ulr = \"nats://x:1\"\n"),
              "cfg.toml:3:1: observers.nats_ulr: unknown key `nats_ulr` (did you mean `nats_url`?); "
              "[observers] accepts `backend` and `nats_url`");
    // Mixing FraiseQL's [observers] with our own sections is refused (likely a typo of [observer]).
    EXPECT_EQ(load_error("[observers]\nbackend = \"nats\"\n[observer]\nlog_level = \"info\"\n")
                  .rfind("cfg.toml:3:1: observer: this file has [observers]", 0),
              0u);
}

TEST(ConfigReference, spec_example_loads) {
    const Config c = host::load_config(fixture("spec_example.toml"), full_env());
    ASSERT_EQ(c.transports.size(), 2u);
    EXPECT_EQ(c.transports[0].name, "default"); // the seed's form comes first
    EXPECT_EQ(c.find_transport("local")->plugin, "memory");
    ASSERT_NE(c.find_source("app_db"), nullptr);
    EXPECT_EQ(c.find_source("postgres"), nullptr); // declared sources replace the built-in one
    EXPECT_EQ(config_of(*c.find_source("app_db"))["channels"], json::array({"fraiseql_events"}));
    const auto *hook = c.find_action("order_webhook");
    ASSERT_NE(hook, nullptr);
    EXPECT_EQ(config_of(*hook)["secret"], kWebhookSecret);
    EXPECT_TRUE(contains(hook->secret_keys, "secret"));
    EXPECT_FALSE(contains(hook->secret_keys, "url"));
    EXPECT_EQ(c.find_action("nope"), nullptr);
    ASSERT_EQ(c.pipelines.size(), 1u);
    const auto &p = c.pipelines[0];
    EXPECT_EQ(p.name, "orders");
    EXPECT_EQ(p.source, "app_db");
    EXPECT_EQ(p.transport, "default");
    EXPECT_EQ(p.actions, std::vector<std::string>{"order_webhook"});
    EXPECT_EQ(p.entity_types, std::vector<std::string>{"Order"});
    EXPECT_EQ(p.operations, (std::vector<std::string>{"INSERT", "UPDATE"}));
    EXPECT_EQ(p.consumer, "orders_worker");
    EXPECT_EQ(p.max_in_flight, 1024u);
    EXPECT_EQ(p.where.line, 38u);
    EXPECT_FALSE(p.is_default);
}

// ----- defaults --------------------------------------------------------------------------------

TEST(ConfigDefaults, no_file_with_database_url_and_nats_url) {
    const Config c = host::default_config(options({{"DATABASE_URL", kDbUrl}, {"NATS_URL", kNatsUrl}}));
    EXPECT_EQ(c.file, "");
    ASSERT_EQ(c.sources.size(), 1u);
    const auto &s = c.sources[0];
    EXPECT_EQ(s.name, "postgres");
    EXPECT_EQ(s.plugin, "pg_listen");
    EXPECT_TRUE(s.is_default);
    EXPECT_EQ(config_of(s), json({{"conninfo", kDbUrl},
                                  {"channels", json::array({"fraiseql_events"})},
                                  {"mode", "notify"}}));
    EXPECT_TRUE(contains(s.secret_keys, "conninfo"));
    ASSERT_EQ(c.transports.size(), 1u);
    const auto &t = c.transports[0];
    EXPECT_EQ(t.name, "default");
    EXPECT_EQ(t.plugin, "nats");
    EXPECT_TRUE(t.is_default);
    EXPECT_EQ(config_of(t),
              json({{"url", kNatsUrl}})); // the rest are the nats plugin's own defaults (its key table)
    EXPECT_TRUE(contains(t.secret_keys, "url"));
    EXPECT_TRUE(c.actions.empty());
    ASSERT_EQ(c.pipelines.size(), 1u);
    EXPECT_EQ(c.pipelines[0].name, "default");
    EXPECT_EQ(c.pipelines[0].source, "postgres");
    EXPECT_EQ(c.pipelines[0].transport, "default");
    EXPECT_TRUE(c.pipelines[0].actions.empty());
    EXPECT_EQ(c.pipelines[0].consumer, "fraiseql_observer_worker");
    EXPECT_EQ(c.pipelines[0].max_in_flight, 1024u);
    EXPECT_EQ(c.observer.shutdown_timeout_secs, 30u);
    EXPECT_EQ(c.observer.log_format, "text");
    EXPECT_TRUE(c.observer.plugin_dirs.empty());
}

TEST(ConfigDefaults, nats_url_falls_back_to_localhost) {
    const Config c = host::default_config(options({{"DATABASE_URL", kDbUrl}}));
    // No url: the nats plugin's default (nats://127.0.0.1:4222, from its key table).
    EXPECT_EQ(config_of(c.transports[0]), json::object());
    EXPECT_FALSE(contains(c.transports[0].secret_keys, "url"));
}

TEST(ConfigDefaults, missing_database_url_is_an_error_for_roles_that_run_sources) {
    for (Role role : {Role::all, Role::publisher}) {
        const std::string error = default_error(options({{"NATS_URL", kNatsUrl}}, role));
        EXPECT_EQ(error.rfind("<defaults>: sources.postgres.conninfo: no [sources.*] table is declared", 0), 0u)
            << error;
        EXPECT_NE(error.find("DATABASE_URL, which is not set"), std::string::npos) << error;
        EXPECT_NE(error.find("--role worker"), std::string::npos) << error;
        EXPECT_EQ(error.find(kNatsUrl), std::string::npos) << error;
    }
}

TEST(ConfigDefaults, role_worker_skips_the_default_source) {
    const Config c = host::default_config(options({}, Role::worker));
    EXPECT_TRUE(c.sources.empty());
    EXPECT_EQ(c.transports.size(), 1u);
    EXPECT_TRUE(c.pipelines.empty()); // no source and no action: nothing to run
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_NE(c.warnings[0].find("nothing to run"), std::string::npos);

    // With an action, the worker gets a worker-only default pipeline.
    const Config w = host::load_config_string(kActionBase, "cfg.toml", options({}, Role::worker));
    EXPECT_TRUE(w.sources.empty());
    ASSERT_EQ(w.pipelines.size(), 1u);
    EXPECT_EQ(w.pipelines[0].source, std::nullopt);
    EXPECT_EQ(w.pipelines[0].actions, std::vector<std::string>{"hook"});
}

TEST(ConfigDefaults, default_pipeline_wires_the_source_to_every_action) {
    const Config c = host::load_config_string(kActionBase + "[actions.audit]\nplugin = \"log\"\n",
                                              "cfg.toml", full_env());
    ASSERT_EQ(c.pipelines.size(), 1u);
    EXPECT_EQ(c.pipelines[0].source, "postgres");
    EXPECT_EQ(c.pipelines[0].actions, (std::vector<std::string>{"audit", "hook"}));
    EXPECT_EQ(c.pipelines[0].consumer, "fraiseql_observer_worker");
}

TEST(ConfigDefaults, several_sources_get_one_publisher_each_and_one_worker) {
    const Config c = host::load_config_string(kActionBase + R"(
[sources.a]
plugin = "pg_listen"
[sources.b]
plugin = "pg_listen"
[transports.bus]
plugin = "memory"
)",
                                              "cfg.toml", full_env());
    ASSERT_EQ(c.pipelines.size(), 3u);
    EXPECT_EQ(c.pipelines[0].name, "a");
    EXPECT_EQ(c.pipelines[0].source, "a");
    EXPECT_TRUE(c.pipelines[0].actions.empty());
    EXPECT_EQ(c.pipelines[0].transport, "bus"); // the only transport
    EXPECT_EQ(c.pipelines[1].name, "b");
    EXPECT_EQ(c.pipelines[2].name, "default");
    EXPECT_EQ(c.pipelines[2].source, std::nullopt);
    EXPECT_EQ(c.pipelines[2].actions, std::vector<std::string>{"hook"});
}

TEST(ConfigDefaults, consumer_defaults_to_the_transports_consumer_name) {
    const Config c = host::load_config_string(kActionBase + R"(
[transport.nats]
consumer_name = "custom_worker"
[[pipelines]]
name = "p"
actions = ["hook"]
)",
                                              "cfg.toml", full_env());
    EXPECT_EQ(c.pipelines[0].consumer, "custom_worker");
    EXPECT_EQ(c.pipelines[0].transport, "default");
    EXPECT_EQ(c.transports[0].plugin, "nats"); // `transport` defaults to "nats"
}

TEST(ConfigDefaults, pipeline_naming_postgres_uses_the_builtin_source) {
    const std::string text = kActionBase + "[[pipelines]]\nname = \"p\"\nsource = \"postgres\"\nactions = [\"hook\"]\n";
    const Config c = host::load_config_string(text, "cfg.toml", full_env());
    ASSERT_EQ(c.sources.size(), 1u);
    EXPECT_EQ(c.sources[0].name, "postgres");
    // Without DATABASE_URL the error points at the pipeline's `source`.
    EXPECT_EQ(load_error(text, options({}, Role::publisher))
                  .rfind("cfg.toml:7:10: pipelines[0].source: no [sources.*] table is declared", 0),
              0u);
    // A worker does not run sources: no error.
    EXPECT_NO_THROW(host::load_config_string(text, "cfg.toml", options({}, Role::worker)));
}

TEST(ConfigDefaults, transport_nats_alone_uses_the_builtin_nats_settings) {
    const Config c = host::load_config_string("[transport]\ntransport = \"nats\"\n", "cfg.toml", full_env());
    ASSERT_EQ(c.transports.size(), 1u);
    EXPECT_EQ(c.transports[0].section, "transport.nats");
    EXPECT_FALSE(c.transports[0].is_default);
    EXPECT_EQ(config_of(c.transports[0]), json({{"url", kNatsUrl}}));
}

// ----- errors: exact location and key path ------------------------------------------------------

TEST(ConfigErrors, misspelled_key_with_suggestion) {
    EXPECT_EQ(load_error("[observer]\nlog_levle = \"debug\"\n"),
              "cfg.toml:2:1: observer.log_levle: unknown key `log_levle` (did you mean `log_level`?); "
              "allowed keys: `plugin_dirs`, `metrics_listen`, `log_level`, `log_format`, "
              "`shutdown_timeout_secs`");
    EXPECT_EQ(load_error("\n\n[pipeline]\nname = \"x\"\n")
                  .rfind("cfg.toml:3:1: pipeline: unknown key `pipeline` (did you mean `pipelines`?)", 0),
              0u);
    EXPECT_EQ(load_error(kActionBase + "[[pipelines]]\nname = \"p\"\nactoins = [\"hook\"]\n")
                  .rfind("cfg.toml:7:1: pipelines[0].actoins: unknown key `actoins` (did you mean `actions`?)", 0),
              0u);
    // The seed's [transport] table holds only `transport` and the table it names.
    EXPECT_EQ(load_error("[transport]\ntransport = \"nats\"\n[transport.nast]\nurl = \"x\"\n"),
              "cfg.toml:3:1: transport.nast: unknown key `nast` (did you mean `nats`?); [transport] "
              "holds `transport = \"nats\"` and the table [transport.nats]");
    EXPECT_EQ(load_error("[transport]\ntransprot = \"nats\"\n")
                  .rfind("cfg.toml:2:1: transport.transprot: unknown key `transprot` (did you mean `transport`?)", 0),
              0u);
    // Components need `plugin`; a near miss is pointed out.
    EXPECT_EQ(load_error("[actions.hook]\nplugn = \"webhook\"\n"),
              "cfg.toml:1:1: actions.hook.plugin: missing required key `plugin` (the name of the plugin "
              "that implements this component, e.g. \"webhook\") (is `plugn` a misspelling of it?)");
}

TEST(ConfigErrors, plugin_keys_are_not_checked_by_the_host) {
    const Config c = host::load_config_string(
        kActionBase + "whatever_the_plugin_wants = true\n[actions.hook.headers]\nX-Team = \"core\"\n", "cfg.toml",
        full_env());
    const json cfg = config_of(*c.find_action("hook"));
    EXPECT_EQ(cfg["whatever_the_plugin_wants"], true);
    EXPECT_EQ(cfg["headers"]["X-Team"], "core");
}

TEST(ConfigErrors, wrong_type) {
    EXPECT_EQ(load_error("[observer]\nshutdown_timeout_secs = \"30\"\n"),
              "cfg.toml:2:25: observer.shutdown_timeout_secs: expected an integer, got a string");
    EXPECT_EQ(load_error("[observer]\nplugin_dirs = \"/opt/plugins\"\n"),
              "cfg.toml:2:15: observer.plugin_dirs: expected an array of strings, got a string");
    EXPECT_EQ(load_error("[observer]\nplugin_dirs = [\"/a\", 3]\n"),
              "cfg.toml:2:22: observer.plugin_dirs[1]: expected a string, got an integer");
    EXPECT_EQ(load_error("observer = 3\n"), "cfg.toml:1:12: observer: expected a table [observer], got an integer");
    EXPECT_EQ(load_error("[actions.hook]\nplugin = 5\n"),
              "cfg.toml:2:10: actions.hook.plugin: expected a string, got an integer");
    EXPECT_EQ(load_error(kActionBase + "[[pipelines]]\nname = \"p\"\nactions = \"hook\"\n"),
              "cfg.toml:7:11: pipelines[0].actions: expected an array of strings, got a string");
    EXPECT_EQ(load_error("[pipelines]\nname = \"p\"\n"),
              "cfg.toml:1:1: pipelines: expected an array of tables ([[pipelines]] blocks), got a table");
    EXPECT_EQ(load_error("[sources]\napp_db = \"pg_listen\"\n"),
              "cfg.toml:2:1: sources.app_db: expected a table [sources.app_db] with at least "
              "`plugin = \"...\"`, got a string");
}

TEST(ConfigErrors, out_of_range_and_bad_values) {
    EXPECT_EQ(load_error("[observer]\nshutdown_timeout_secs = 4000\n"),
              "cfg.toml:2:25: observer.shutdown_timeout_secs: must be between 0 and 3600, got 4000");
    EXPECT_EQ(load_error("[observer]\nshutdown_timeout_secs = -1\n"),
              "cfg.toml:2:25: observer.shutdown_timeout_secs: must be between 0 and 3600, got -1");
    EXPECT_EQ(load_error("[observer]\nlog_level = \"verbose\"\n"),
              "cfg.toml:2:13: observer.log_level: expected one of trace|debug|info|warn|error, got `verbose`");
    EXPECT_EQ(load_error("[observer]\nlog_level = \"warning\"\n"),
              "cfg.toml:2:13: observer.log_level: expected one of trace|debug|info|warn|error, got "
              "`warning` (did you mean `warn`?)");
    EXPECT_EQ(load_error("[observer]\nlog_format = \"xml\"\n"),
              "cfg.toml:2:14: observer.log_format: expected one of text|json, got `xml`");
    EXPECT_EQ(load_error("[observer]\nmetrics_listen = \"9464\"\n"),
              "cfg.toml:2:18: observer.metrics_listen: expected \"\" (disabled) or host:port with a port "
              "in 1..65535, got `9464`");
    EXPECT_EQ(load_error("[observer]\nmetrics_listen = \"0.0.0.0:70000\"\n"),
              "cfg.toml:2:18: observer.metrics_listen: expected \"\" (disabled) or host:port with a port "
              "in 1..65535, got `0.0.0.0:70000`");
    EXPECT_NE(load_error("[observer]\nmetrics_listen = \"a:b:1\"\n").find("got `a:b:1`"), std::string::npos);
    const Config ok = host::load_config_string(
        "[observer]\nmetrics_listen = \"\"\nlog_level = \"debug\"\nshutdown_timeout_secs = 0\nplugin_dirs = [\"/opt/p\"]\n",
        "cfg.toml", full_env());
    EXPECT_EQ(ok.observer.metrics_listen, "");
    EXPECT_EQ(ok.observer.log_level, "debug");
    EXPECT_EQ(ok.observer.shutdown_timeout_secs, 0u);
    EXPECT_EQ(ok.observer.plugin_dirs, std::vector<std::string>{"/opt/p"});
    EXPECT_EQ(host::load_config_string("[observer]\nmetrics_listen = \"[::1]:9464\"\n", "cfg.toml", full_env())
                  .observer.metrics_listen,
              "[::1]:9464");

    const std::string p = kActionBase + "[[pipelines]]\nname = \"p\"\nactions = [\"hook\"]\n";
    EXPECT_EQ(load_error(p + "max_in_flight = 0\n"),
              "cfg.toml:8:17: pipelines[0].max_in_flight: must be between 1 and 1000000, got 0");
    EXPECT_EQ(load_error(p + "max_in_flight = 1000001\n"),
              "cfg.toml:8:17: pipelines[0].max_in_flight: must be between 1 and 1000000, got 1000001");
    EXPECT_EQ(host::load_config_string(p + "max_in_flight = 1000000\n", "cfg.toml", full_env())
                  .pipelines[0].max_in_flight,
              1'000'000u);
    EXPECT_EQ(load_error(p + "operations = [\"IN SERT\"]\n"),
              "cfg.toml:8:15: pipelines[0].operations[0]: invalid value `IN SERT`: must be non-empty, "
              "without `.`, `*`, `>`, whitespace or control characters");
    EXPECT_EQ(load_error(p + "entity_types = [\"Order.*\"]\n").rfind("cfg.toml:8:17: pipelines[0].entity_types[0]: ", 0),
              0u);
    EXPECT_EQ(load_error(p + "consumer = \"a.b\"\n").rfind("cfg.toml:8:12: pipelines[0].consumer: invalid durable consumer name `a.b`", 0),
              0u);
}

TEST(ConfigErrors, pipeline_names_and_shape) {
    EXPECT_EQ(load_error(kActionBase + "[[pipelines]]\nname = \"my pipeline\"\nactions = [\"hook\"]\n"),
              "cfg.toml:6:8: pipelines[0].name: invalid pipeline name `my pipeline`: use letters, digits, "
              "`_` and `-` only");
    EXPECT_EQ(load_error(kActionBase +
                         "[[pipelines]]\nname = \"p\"\nactions = [\"hook\"]\nconsumer = \"c1\"\n"
                         "[[pipelines]]\nname = \"p\"\nactions = [\"hook\"]\nconsumer = \"c2\"\n"),
              "cfg.toml:10:8: pipelines[1].name: duplicate pipeline name `p` (also used by pipelines[0], line 5)");
    EXPECT_EQ(load_error(kActionBase + "[[pipelines]]\nactions = [\"hook\"]\n"),
              "cfg.toml:5:1: pipelines[0].name: missing required key `name`");
    EXPECT_EQ(load_error(kActionBase + "[[pipelines]]\nname = \"p\"\n"),
              "cfg.toml:5:1: pipelines[0]: pipeline `p` does nothing: give it a `source` (publisher), "
              "`actions` (worker), or both");
    EXPECT_EQ(load_error(kActionBase + "[[pipelines]]\nname = \"p\"\nactions = [\"hook\", \"hook\"]\n"),
              "cfg.toml:7:20: pipelines[0].actions[1]: the action `hook` is listed twice");
    EXPECT_EQ(load_error("[sources.\"app db\"]\nplugin = \"pg_listen\"\n"),
              "cfg.toml:1:1: sources.app db: invalid name `app db`: use letters, digits, `_` and `-` only");
    // operations are stored upper-case.
    const Config c = host::load_config_string(
        kActionBase + "[[pipelines]]\nname = \"p\"\nactions = [\"hook\"]\noperations = [\"insert\", \"Delete\"]\n",
        "cfg.toml", full_env());
    EXPECT_EQ(c.pipelines[0].operations, (std::vector<std::string>{"INSERT", "DELETE"}));
    EXPECT_TRUE(c.pipelines[0].entity_types.empty());
}

TEST(ConfigErrors, unknown_references_with_suggestion) {
    const std::string base = kActionBase + "[sources.app_db]\nplugin = \"pg_listen\"\n";
    EXPECT_EQ(load_error(base + "[[pipelines]]\nname = \"p\"\nsource = \"app_bd\"\n"),
              "cfg.toml:9:10: pipelines[0].source: unknown source `app_bd` (did you mean `app_db`?); "
              "declared: `app_db`");
    EXPECT_EQ(load_error(base + "[[pipelines]]\nname = \"p\"\nsource = \"app_db\"\ntransport = \"defualt\"\n"),
              "cfg.toml:10:13: pipelines[0].transport: unknown transport `defualt` (did you mean "
              "`default`?); declared: `default`");
    EXPECT_EQ(load_error(base + "[[pipelines]]\nname = \"p\"\nactions = [\"hook\", \"hok\"]\n"),
              "cfg.toml:9:20: pipelines[0].actions[1]: unknown action `hok` (did you mean `hook`?); "
              "declared: `hook`");
    EXPECT_EQ(load_error(base + "[[pipelines]]\nname = \"p\"\nactions = [\"zzzzzz\"]\n"),
              "cfg.toml:9:12: pipelines[0].actions[0]: unknown action `zzzzzz`; declared: `hook`");
    // With two transports, a pipeline must say which one.
    EXPECT_EQ(load_error(base + "[transports.a]\nplugin = \"memory\"\n[transports.b]\nplugin = \"memory\"\n"
                                "[[pipelines]]\nname = \"p\"\nsource = \"app_db\"\n"),
              "cfg.toml:11:1: pipelines[0].transport: `transport` may be omitted only when exactly one "
              "transport exists; declared: `a`, `b`");
    // ... and there is no default pipeline when none of them is named `default`.
    EXPECT_EQ(load_error(base + "[transports.a]\nplugin = \"memory\"\n[transports.b]\nplugin = \"memory\"\n")
                  .rfind("cfg.toml: pipelines: several transports are declared (`a`, `b`)", 0),
              0u);
}

TEST(ConfigErrors, duplicate_consumer) {
    const std::string text = kActionBase + R"(
[[pipelines]]
name = "first"
actions = ["hook"]

[[pipelines]]
name = "second"
actions = ["hook"]
)";
    EXPECT_EQ(load_error(text),
              "cfg.toml:10:1: pipelines[1].consumer: pipelines `first` and `second` both consume transport "
              "`default` with the durable consumer `fraiseql_observer_worker`, which would split the events "
              "between them; set `consumer` to a distinct name in each consuming pipeline");
    EXPECT_EQ(load_error(text + "consumer = \"fraiseql_observer_worker\"\n")
                  .rfind("cfg.toml:13:12: pipelines[1].consumer: pipelines `first` and `second`", 0),
              0u);
    EXPECT_NO_THROW(host::load_config_string(text + "consumer = \"second_worker\"\n", "cfg.toml", full_env()));
    // Publisher-only pipelines do not consume, so they may share the name.
    EXPECT_NO_THROW(host::load_config_string(R"(
[sources.a]
plugin = "pg_listen"
[sources.b]
plugin = "pg_listen"
[[pipelines]]
name = "pa"
source = "a"
[[pipelines]]
name = "pb"
source = "b"
)",
                                             "cfg.toml", full_env()));
    // The same consumer name on two different transports is fine.
    EXPECT_NO_THROW(host::load_config_string(kActionBase + R"(
[transports.x]
plugin = "nats"
[transports.y]
plugin = "nats"
[[pipelines]]
name = "px"
transport = "x"
actions = ["hook"]
[[pipelines]]
name = "py"
transport = "y"
actions = ["hook"]
)",
                                             "cfg.toml", full_env()));
}

TEST(ConfigErrors, both_transport_forms) {
    EXPECT_EQ(load_error("[transport]\ntransport = \"nats\"\n\n[transports.default]\nplugin = \"memory\"\n"),
              "cfg.toml:4:1: transports.default: the transport `default` is declared twice: by [transport] "
              "(the seed's form, line 1) and by [transports.default]; keep one of them");
    // The seed's form next to other named transports is fine.
    const Config c = host::load_config_string("[transport.nats]\nurl = \"nats://a:1\"\n[transports.local]\nplugin = \"memory\"\n",
                                              "cfg.toml", full_env());
    EXPECT_EQ(c.transports.size(), 2u);
}

TEST(ConfigErrors, toml_syntax_error_with_location) {
    EXPECT_EQ(load_error("[observer]\nlog_level = \"info\"\nlog_format = \n"),
              "cfg.toml:3:14: TOML syntax error: Error while parsing key-value pair: expected value, "
              "saw '\\n'");
    const std::string e = load_error("[observer]\n\nlog_level = 'info\n");
    EXPECT_EQ(e.rfind("cfg.toml:3:", 0), 0u) << e;
    EXPECT_NE(e.find("TOML syntax error"), std::string::npos) << e;
    EXPECT_EQ(load_error("a = 1\na = 2\n"),
              "cfg.toml:2:5: TOML syntax error: Error while parsing key-value pair: cannot redefine "
              "existing integer 'a'");
    EXPECT_EQ(load_error("[observer]\n[observer]\n").rfind("cfg.toml:2:1: TOML syntax error: ", 0), 0u);
}

TEST(ConfigErrors, missing_file_is_named) {
    const std::string path = "/nonexistent/dir/fraiseql-observer.toml";
    try {
        host::load_config(path, full_env());
        FAIL() << "expected an error";
    } catch (const ConfigError &e) {
        EXPECT_EQ(std::string(e.what()),
                  path + ": cannot read the configuration file: No such file or directory");
        EXPECT_EQ(e.where().file, path);
    }
}

TEST(ConfigErrors, error_accessors) {
    try {
        host::load_config_string("[observer]\nlog_level = 1\n", "x.toml", full_env());
        FAIL() << "expected an error";
    } catch (const ConfigError &e) {
        EXPECT_EQ(e.where().file, "x.toml");
        EXPECT_EQ(e.where().line, 2u);
        EXPECT_EQ(e.where().column, 13u);
        EXPECT_EQ(e.key_path(), "observer.log_level");
        EXPECT_EQ(e.reason(), "expected a string, got an integer");
    }
}

// ----- interpolation -------------------------------------------------------------------------------

TEST(ConfigInterpolation, forms) {
    const EnvLookup env = env_of({{"A", "alpha"}, {"EMPTY", ""}});
    EXPECT_EQ(host::interpolate_env("x-${A}-y", env).value, "x-alpha-y");
    EXPECT_TRUE(host::interpolate_env("${A}", env).used_env);
    EXPECT_EQ(host::interpolate_env("${MISSING:-fallback}", env).value, "fallback");
    EXPECT_EQ(host::interpolate_env("${EMPTY:-fallback}", env).value, "fallback");
    EXPECT_EQ(host::interpolate_env("${A:-fallback}", env).value, "alpha");
    EXPECT_EQ(host::interpolate_env("${MISSING:-}", env).value, "");
    EXPECT_EQ(host::interpolate_env("${EMPTY}", env).value, "");
    EXPECT_EQ(host::interpolate_env("cost: $$5 and $${A}", env).value, "cost: $5 and ${A}");
    EXPECT_FALSE(host::interpolate_env("cost: $$5", env).used_env);
    // A bare `$` not followed by `$` or `{` is literal.
    EXPECT_EQ(host::interpolate_env("pa$word $A ^end$", env).value, "pa$word $A ^end$");
    EXPECT_THROW(host::interpolate_env("${MISSING}", env), host::InterpolationError);
    EXPECT_THROW(host::interpolate_env("${A", env), host::InterpolationError);
    EXPECT_THROW(host::interpolate_env("${1A}", env), host::InterpolationError);
    EXPECT_THROW(host::interpolate_env("${A-x}", env), host::InterpolationError);
    EXPECT_THROW(host::interpolate_env("${}", env), host::InterpolationError);
}

TEST(ConfigInterpolation, applies_to_every_string_value_of_components) {
    const Config c = host::load_config_string(R"(
[actions.hook]
plugin = "${HOOK_PLUGIN:-webhook}"
url = "http://${HOST}:8080/x"
literal = "$$HOME is not expanded"
headers = { Authorization = "Bearer ${API}", Plain = "v" }
list = ["${HOST}", "b", ["${HOST}"]]
[[actions.hook.routes]]
target = "${HOST}"
)",
                                              "cfg.toml", options({{"HOST", "h1"}, {"API", "t0k"}, {"DATABASE_URL", kDbUrl}}));
    const auto &a = *c.find_action("hook");
    EXPECT_EQ(a.plugin, "webhook");
    const json cfg = config_of(a);
    EXPECT_EQ(cfg["url"], "http://h1:8080/x");
    EXPECT_EQ(cfg["literal"], "$HOME is not expanded");
    EXPECT_EQ(cfg["headers"]["Authorization"], "Bearer t0k");
    EXPECT_EQ(cfg["list"], json::parse(R"(["h1", "b", ["h1"]])"));
    EXPECT_EQ(cfg["routes"][0]["target"], "h1");
    EXPECT_TRUE(contains(a.secret_keys, "url"));
    EXPECT_TRUE(contains(a.secret_keys, "headers.Authorization"));
    EXPECT_FALSE(contains(a.secret_keys, "headers.Plain"));
    EXPECT_FALSE(contains(a.secret_keys, "headers"));
    EXPECT_TRUE(contains(a.secret_keys, "list"));
    EXPECT_TRUE(contains(a.secret_keys, "routes[0].target"));
    EXPECT_FALSE(contains(a.secret_keys, "literal"));
    EXPECT_EQ(a.key_locations.at("routes[0].target").line, 9u);
    EXPECT_EQ(a.key_locations.at("list[2][0]").line, 7u);
    // Paths with brackets reach the values (redaction walks them).
    const json redacted = json::parse(host::redacted_config_json(a));
    EXPECT_EQ(redacted["routes"][0]["target"], "***");
    EXPECT_EQ(redacted["literal"], "$HOME is not expanded");
}

// Quoted TOML keys may hold the characters key paths are spelled with ('[', ']', '.'); a value
// from the environment under such a key is still redacted (found by fuzz_config).
TEST(ConfigInterpolation, values_under_keys_that_look_like_paths_are_redacted) {
    const Config c = host::load_config_string(R"(
[actions.hook]
plugin = "webhook"
"[0]" = "${TOKEN}"
"[x.y" = "z${TOKEN}"
"a]" = "${TOKEN}"
nested = { "[1]" = "${TOKEN}", "a.b" = "${TOKEN}" }
list = [["${TOKEN}"]]
)",
                                              "cfg.toml", options({{"TOKEN", "t0k-3n-value"}, {"DATABASE_URL", kDbUrl}}));
    const host::ComponentConfig &a = c.actions.at(0);
    const std::string redacted = host::redacted_config_json(a);
    EXPECT_EQ(redacted.find("t0k-3n-value"), std::string::npos) << redacted;
    const json j = json::parse(redacted);
    EXPECT_EQ(j["[0]"], "***");
    EXPECT_EQ(j["[x.y"], "***");
    EXPECT_EQ(j["a]"], "***");
    EXPECT_EQ(j["nested"]["[1]"], "***");
    EXPECT_EQ(j["nested"]["a.b"], "***");
}

TEST(ConfigInterpolation, an_empty_key_is_refused_at_its_place) {
    try {
        host::load_config_string("[actions.hook]\nplugin = \"webhook\"\n\"\" = \"${TOKEN}\"\n", "cfg.toml",
                                 options({{"TOKEN", "t0k-3n-value"}, {"DATABASE_URL", kDbUrl}}));
        FAIL() << "an empty key was accepted";
    } catch (const host::ConfigError &e) {
        const std::string what = e.what();
        EXPECT_EQ(what.rfind("cfg.toml:3:", 0), 0u) << what;
        EXPECT_NE(what.find("empty key"), std::string::npos) << what;
        EXPECT_EQ(what.find("t0k-3n-value"), std::string::npos) << what;
    }
}

TEST(ConfigInterpolation, applies_to_host_owned_values) {
    const Config c = host::load_config_string(R"(
[observer]
log_level = "${LOG_LEVEL:-warn}"
plugin_dirs = ["${PLUGINS}/extra"]
)",
                                              "cfg.toml", options({{"PLUGINS", "/opt/p"}, {"DATABASE_URL", kDbUrl}}));
    EXPECT_EQ(c.observer.log_level, "warn");
    EXPECT_EQ(c.observer.plugin_dirs, std::vector<std::string>{"/opt/p/extra"});
}

TEST(ConfigInterpolation, variable_content_never_becomes_toml) {
    const std::string tricky = "a\" = 1\n[observer]\nlog_level = \"nope";
    const Config c = host::load_config_string(
        "[actions.hook]\nplugin = \"webhook\"\nurl = \"${TRICKY}\"\n", "cfg.toml",
        options({{"TRICKY", tricky}, {"DATABASE_URL", kDbUrl}}));
    const json cfg = config_of(*c.find_action("hook"));
    EXPECT_EQ(cfg["url"], tricky);
    EXPECT_EQ(cfg.size(), 1u);
    EXPECT_EQ(c.observer.log_level, "info");
}

TEST(ConfigInterpolation, unset_variable_names_variable_and_key_but_no_secret) {
    const std::string text = R"([actions.hook]
plugin = "webhook"
secret = "${WEBHOOK_SECRET}"
url = "https://${HOOK_HOST}/x"
)";
    const std::string error = load_error(text, options({{"WEBHOOK_SECRET", kWebhookSecret}, {"DATABASE_URL", kDbUrl}}));
    EXPECT_EQ(error, "cfg.toml:4:7: actions.hook.url: environment variable `HOOK_HOST` is not set (set it, or "
                     "write ${HOOK_HOST:-default} to give a fallback)");
    EXPECT_EQ(error.find(kWebhookSecret), std::string::npos);
    EXPECT_EQ(error.find(kDbUrl), std::string::npos);
    // In a host-owned key too.
    EXPECT_EQ(load_error("[observer]\nmetrics_listen = \"${LISTEN}\"\n", options({{"DATABASE_URL", kDbUrl}})),
              "cfg.toml:2:18: observer.metrics_listen: environment variable `LISTEN` is not set (set it, or "
              "write ${LISTEN:-default} to give a fallback)");
    EXPECT_EQ(load_error("[actions.hook]\nplugin = \"webhook\"\nurl = \"${HOOK\"\n")
                  .rfind("cfg.toml:3:7: actions.hook.url: unterminated `${`", 0),
              0u);
}

TEST(ConfigInterpolation, secret_values_never_appear_in_errors) {
    const std::string secret = "s3cr3t-value-42";
    const LoadOptions opts = options({{"SECRET", secret}, {"DATABASE_URL", kDbUrl}});
    const std::vector<std::string> texts = {
        "[observer]\nlog_level = \"${SECRET}\"\n",
        "[observer]\nmetrics_listen = \"${SECRET}\"\n",
        "[observer]\nlog_format = \"${SECRET}\"\n",
        kActionBase + "[[pipelines]]\nname = \"p\"\nactions = [\"${SECRET}\"]\n",
        kActionBase + "[[pipelines]]\nname = \"p\"\nactions = [\"hook\"]\noperations = [\"${SECRET} x\"]\n",
        kActionBase + "[[pipelines]]\nname = \"p\"\nactions = [\"hook\"]\nconsumer = \"${SECRET}.x\"\n",
        kActionBase + "[[pipelines]]\nname = \"p\"\nsource = \"${SECRET}\"\nactions = [\"hook\"]\n",
        kActionBase + "[[pipelines]]\nname = \"p\"\ntransport = \"${SECRET}\"\nactions = [\"hook\"]\n",
        kActionBase + "[[pipelines]]\nname = \"a\"\nactions = [\"hook\"]\nconsumer = \"${SECRET}\"\n"
                      "[[pipelines]]\nname = \"b\"\nactions = [\"hook\"]\nconsumer = \"${SECRET}\"\n",
        "[actions.hook]\nplugin = \"webhook\"\nsecret = \"${SECRET}\"\nz = \"${UNSET_VAR}\"\n",
        "[actions.hook]\nplugin = \"webhook\"\npassword = \"" + secret + "\"\nz = nan\n",
    };
    for (const auto &text : texts) {
        const std::string error = load_error(text, opts);
        EXPECT_EQ(error.rfind("cfg.toml:", 0), 0u) << error;
        EXPECT_EQ(error.find(secret), std::string::npos) << error;
        EXPECT_EQ(error.find(kDbUrl), std::string::npos) << error;
    }
    // A literal (not from env) wrong value is shown, to help the user.
    EXPECT_NE(load_error("[observer]\nlog_level = \"verbose\"\n", opts).find("`verbose`"), std::string::npos);
}

// ----- component conversion -------------------------------------------------------------------------

TEST(ConfigComponents, toml_types_become_json_types) {
    const Config c = host::load_config_string(R"([actions.x]
plugin = "third_party"
i = 42
big = 9_007_199_254_740_993
f = 2.5
b = false
s = "text"
d = 2026-11-27
t = 04:23:51
dt = 2026-11-27T04:23:51Z
ldt = 2026-11-27T04:23:51.5
arr = [1, 2]
[actions.x.nested.deeper]
k = "v"
)",
                                              "cfg.toml", full_env());
    const auto &a = *c.find_action("x");
    EXPECT_EQ(a.section, "actions.x");
    EXPECT_EQ(a.where.line, 1u);
    const json cfg = config_of(a);
    EXPECT_TRUE(cfg["i"].is_number_integer());
    EXPECT_EQ(cfg["i"], 42);
    EXPECT_EQ(cfg["big"].get<int64_t>(), 9'007'199'254'740'993);
    EXPECT_TRUE(cfg["f"].is_number_float());
    EXPECT_DOUBLE_EQ(cfg["f"].get<double>(), 2.5);
    EXPECT_EQ(cfg["b"], false);
    EXPECT_EQ(cfg["s"], "text");
    EXPECT_EQ(cfg["d"], "2026-11-27");
    EXPECT_EQ(cfg["t"], "04:23:51");
    EXPECT_EQ(cfg["dt"], "2026-11-27T04:23:51Z");
    EXPECT_EQ(cfg["ldt"], "2026-11-27T04:23:51.5");
    EXPECT_EQ(cfg["arr"], json::array({1, 2}));
    EXPECT_EQ(cfg["nested"]["deeper"]["k"], "v");
    EXPECT_FALSE(cfg.contains("plugin"));
    EXPECT_EQ(a.key_locations.at("nested.deeper.k").line, 14u);
    EXPECT_EQ(a.key_locations.at("nested.deeper").line, 13u);
    EXPECT_EQ(a.key_locations.at("arr[1]").line, 12u);
    EXPECT_TRUE(a.secret_keys.empty());
    EXPECT_EQ(load_error("[actions.x]\nplugin = \"p\"\nratio = inf\n"),
              "cfg.toml:3:9: actions.x.ratio: nan and inf cannot be passed to a plugin (JSON has no such numbers)");
}

TEST(ConfigComponents, secret_names_are_marked_and_redacted) {
    const Config c = host::load_config_string(R"([transports.bus]
plugin = "nats"
url = "nats://a:1"
password = "literal-pw"
nkey_seed_file = "/etc/seed"
Api_Token = "tok"
creds_file = "/etc/creds"
[transports.bus.tls]
tls_key_file = "/k"
tls_ca_file = "/ca"
)",
                                              "cfg.toml", full_env());
    const auto &t = *c.find_transport("bus");
    // Nothing came from the environment; which keys are secret by name is the 1.0 fallback for
    // a plugin with no key table (a table's FOBS_KEY_SECRET replaces it: test_config_keys).
    EXPECT_TRUE(t.secret_keys.empty());
    const auto secret = host::secret_paths(t, {});
    for (const char *k : {"password", "nkey_seed_file", "Api_Token", "creds_file", "tls.tls_key_file"})
        EXPECT_TRUE(contains(secret, k)) << k;
    for (const char *k : {"url", "tls", "tls.tls_ca_file"})
        EXPECT_FALSE(contains(secret, k)) << k;
    const json redacted = json::parse(host::redacted_config_json(t));
    EXPECT_EQ(redacted["password"], "***");
    EXPECT_EQ(redacted["tls"]["tls_key_file"], "***");
    EXPECT_EQ(redacted["tls"]["tls_ca_file"], "/ca");
    EXPECT_EQ(redacted["url"], "nats://a:1");
    EXPECT_EQ(host::redacted_config_json(t).find("literal-pw"), std::string::npos);
}

// ----- plugin errors mapped back to the file ----------------------------------------------------------

// The one function that reports an error about a component's config (config_keys.hpp).
static std::string error_at(const host::ComponentConfig &c, const std::string &key, const std::string &msg) {
    return host::component_config_error(c, {}, key, msg).what();
}

TEST(ConfigPluginErrors, point_at_the_key_line) {
    const Config c = host::load_config(fixture("reference_fraiseql-observer.toml"), full_env());
    const auto &t = c.transports[0];
    const std::string file = fixture("reference_fraiseql-observer.toml");
    EXPECT_EQ(error_at(t, "jetstream.max_deliver", "must be >= 1"),
              file + ":13:1: transport.nats.jetstream.max_deliver: must be >= 1");
    EXPECT_EQ(error_at(t, "stream_name", "bad"), file + ":6:1: transport.nats.stream_name: bad");
    // A key the plugin wants but that is not written: its nearest written parent, else the table.
    EXPECT_EQ(error_at(t, "jetstream.replicas", "required"),
              file + ":10:1: transport.nats.jetstream.replicas: required");
    EXPECT_EQ(error_at(t, "tls_ca_file", "unreadable"),
              file + ":4:1: transport.nats.tls_ca_file: unreadable");
    EXPECT_EQ(error_at(t, "", "broken"), file + ":4:1: transport.nats: broken");

    const Config d = host::load_config_string(R"([sources.app_db]
plugin = "pg_listen"
channels = ["a",
  "b c"]
)",
                                              "cfg.toml", full_env());
    const auto &s = *d.find_source("app_db");
    EXPECT_EQ(error_at(s, "channels.1", "invalid channel"),
              "cfg.toml:4:3: sources.app_db.channels[1]: invalid channel");
    EXPECT_EQ(error_at(s, "channels[1]", "invalid channel"),
              "cfg.toml:4:3: sources.app_db.channels[1]: invalid channel");
    // Built-in components have no file location.
    const Config defaults = host::default_config(full_env());
    EXPECT_EQ(error_at(defaults.sources[0], "conninfo", "cannot parse"),
              "<defaults>: sources.postgres.conninfo: cannot parse");
}

// ----- starter file, roles, config path ---------------------------------------------------------------

TEST(ConfigStarter, loads_when_database_url_is_set) {
    const Config c = host::load_config_string(host::starter_config(), "fraiseql-observer.toml",
                                              options({{"DATABASE_URL", kDbUrl}}));
    ASSERT_EQ(c.pipelines.size(), 1u);
    EXPECT_EQ(c.pipelines[0].source, "app_db");
    EXPECT_EQ(c.pipelines[0].transport, "default");
    EXPECT_EQ(c.pipelines[0].actions, std::vector<std::string>{"log"});
    EXPECT_EQ(c.find_action("log")->plugin, "log");
    EXPECT_EQ(c.find_source("app_db")->plugin, "pg_listen");
    EXPECT_EQ(config_of(*c.find_transport("default"))["url"], "nats://127.0.0.1:4222");
    EXPECT_EQ(config_of(*c.find_transport("default"))["jetstream"]["max_bytes"].get<int64_t>(), 10'737'418'240);
    EXPECT_NE(host::starter_config().find("${DATABASE_URL}"), std::string::npos);
    EXPECT_NE(host::starter_config().find("${NATS_URL:-nats://127.0.0.1:4222}"), std::string::npos);

    const Config with_nats = host::load_config_string(host::starter_config(), "f.toml", full_env());
    EXPECT_EQ(config_of(*with_nats.find_transport("default"))["url"], kNatsUrl);

    try {
        host::load_config_string(host::starter_config(), "f.toml", options());
        FAIL() << "expected an error";
    } catch (const ConfigError &e) {
        EXPECT_EQ(e.key_path(), "sources.app_db.conninfo");
        EXPECT_NE(std::string(e.what()).find("`DATABASE_URL` is not set"), std::string::npos);
    }
}

TEST(ConfigRole, parse_and_print) {
    EXPECT_EQ(host::parse_role("all"), Role::all);
    EXPECT_EQ(host::parse_role("publisher"), Role::publisher);
    EXPECT_EQ(host::parse_role("worker"), Role::worker);
    EXPECT_EQ(host::parse_role("Worker"), std::nullopt);
    EXPECT_EQ(host::parse_role(""), std::nullopt);
    EXPECT_STREQ(host::to_string(Role::all), "all");
    EXPECT_STREQ(host::to_string(Role::publisher), "publisher");
    EXPECT_STREQ(host::to_string(Role::worker), "worker");
}

TEST(ConfigEnv, process_env_reads_the_real_environment) {
    ::setenv("FOBS_TEST_CONFIG_VAR", "value-1", 1);
    ::unsetenv("FOBS_TEST_CONFIG_UNSET");
    const EnvLookup env = host::process_env();
    EXPECT_EQ(env("FOBS_TEST_CONFIG_VAR"), "value-1");
    EXPECT_EQ(env("FOBS_TEST_CONFIG_UNSET"), std::nullopt);
}

TEST(ConfigPath, resolution_order) {
    fobs_test::TempDir dir("fobs-config");
    const std::string explicit_file = (dir / "explicit.toml").string();
    const std::string env_file = (dir / "env.toml").string();
    std::ofstream(explicit_file) << "\n";
    std::ofstream(env_file) << "\n";
    const EnvLookup no_env = env_of({});
    const EnvLookup with_env = env_of({{"FRAISEQL_OBSERVER_CONFIG", env_file}});

    EXPECT_EQ(host::resolve_config_path(explicit_file, with_env), explicit_file);
    EXPECT_EQ(host::resolve_config_path(std::nullopt, with_env), env_file);
    try {
        host::resolve_config_path(std::string(dir / "missing.toml"), no_env);
        FAIL() << "expected an error";
    } catch (const ConfigError &e) {
        EXPECT_EQ(std::string(e.what()), (dir / "missing.toml").string() +
                                             ": configuration file not found (given by -c)");
    }
    EXPECT_THROW(host::resolve_config_path(std::nullopt, env_of({{"FRAISEQL_OBSERVER_CONFIG", "/nope.toml"}})),
                 ConfigError);

    // ./fraiseql-observer.toml only when present.
    const fs::path old_cwd = fs::current_path();
    fs::current_path(dir.path());
    EXPECT_EQ(host::resolve_config_path(std::nullopt, no_env), std::nullopt);
    EXPECT_EQ(host::resolve_config_path(std::nullopt, env_of({{"FRAISEQL_OBSERVER_CONFIG", ""}})), std::nullopt);
    std::ofstream("fraiseql-observer.toml") << "\n";
    EXPECT_EQ(host::resolve_config_path(std::nullopt, no_env), "fraiseql-observer.toml");
    EXPECT_EQ(host::resolve_config_path(std::nullopt, with_env), env_file);
    fs::current_path(old_cwd);
}

TEST(ConfigSuggest, closest_match) {
    EXPECT_EQ(host::closest_match("log_levle", {"log_level", "log_format"}), "log_level");
    EXPECT_EQ(host::closest_match("LOG_LEVEL", {"log_level"}), "log_level");
    EXPECT_EQ(host::closest_match("zzz", {"log_level"}), "");
    EXPECT_EQ(host::closest_match("warning", {"trace", "debug", "info", "warn", "error"}), "warn");
    EXPECT_EQ(host::closest_match("js", {"jetstream"}), ""); // too short to be a prefix hint
    EXPECT_EQ(host::edit_distance("kitten", "sitting"), 3u);
}

TEST(ConfigSeedForm, switching_transports_is_one_line_and_other_tables_stay) {
    const std::string file = "[transport]\ntransport = \"memory\"\n[transport.nats]\nurl = \"nats://x:4222\"\n"
                             "[transport.memory]\nmax_deliver = 5\n";
    const Config c = host::load_config_string(file, "cfg.toml", full_env());
    ASSERT_EQ(c.transports.size(), 1u);
    EXPECT_EQ(c.transports[0].plugin, "memory");
    EXPECT_EQ(config_of(c.transports[0])["max_deliver"], 5);
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_NE(c.warnings[0].find("[transport.nats] is not used"), std::string::npos);
}

TEST(ConfigErrors, a_file_without_settings_is_an_error_not_the_defaults) {
    // Empty, a UTF-8 byte order mark alone, whitespace, comments: each names the file and says
    // what to do, instead of silently running the built-in defaults.
    const std::map<std::string, std::string> files = {
        {"empty", ""},
        {"bom", "\xEF\xBB\xBF"},
        {"bom_newline", "\xEF\xBB\xBF\n"},
        {"whitespace", " \n\t\r\n\n"},
        {"comments", "# fraiseql-observer.toml\n# [observer]\n#   log_level = \"debug\"\n"},
        {"bom_comment", "\xEF\xBB\xBF# only a comment\n"},
    };
    fobs_test::TempDir dir("fobs-config");
    for (const auto &[name, text] : files) {
        const std::string path = (dir / (name + ".toml")).string();
        fobs_test::write_file(path, text);
        try {
            host::load_config(path, full_env());
            ADD_FAILURE() << name << ": loaded without error";
        } catch (const ConfigError &e) {
            EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << name << ": " << e.what();
            EXPECT_NE(e.reason().find("the configuration file is empty"), std::string::npos) << e.what();
            EXPECT_NE(e.reason().find("fraiseql-observer init"), std::string::npos) << e.what();
            EXPECT_NE(e.reason().find("built-in defaults"), std::string::npos) << e.what();
        }
    }
    // One setting is enough: the rest comes from the defaults, as documented.
    EXPECT_NO_THROW(host::load_config_string("\xEF\xBB\xBF[observer]\nlog_level = \"debug\"\n", "cfg.toml",
                                             full_env()));
    EXPECT_NO_THROW(host::load_config_string("# a comment\n[observer]\n", "cfg.toml", full_env()));
}

TEST(ConfigReference, plugin_names_are_the_plugins_the_components_name) {
    const Config c = host::load_config_string(kActionBase + R"(
[actions.audit]
plugin = "log"
[actions.audit2]
plugin = "log"
[transports.local]
plugin = "memory"
)",
                                              "cfg.toml", full_env());
    // The default source (pg_listen) counts: run would load it.
    EXPECT_EQ(c.plugin_names(), (std::vector<std::string>{"log", "memory", "pg_listen", "webhook"}));
}

TEST(ConfigErrors, validate_and_run_refuse_an_empty_file_with_exit_code_2) {
    fobs_test::TempDir dir("fobs-config");
    const std::string path = (dir / "fraiseql-observer.toml").string();
    fobs_test::write_file(path, "\xEF\xBB\xBF");
    const std::map<std::string, std::string> env = {{"FRAISEQL_OBSERVER_CONFIG", ""},
                                                    {"FRAISEQL_OBSERVER_PLUGIN_PATH", ""},
                                                    {"DATABASE_URL", "postgresql:///unused"}};
    for (const char *cmd : {"validate", "run"}) {
        auto [code, out] = fobs_test::run_command({fobs_test::observer_binary(), cmd, "-c", path}, env,
                                                  std::chrono::seconds(20));
        EXPECT_EQ(code, 2) << cmd << ": " << out;
        EXPECT_NE(out.find(path + ": the configuration file is empty"), std::string::npos) << cmd << ": " << out;
    }
}
