// Config key tables (ABI 1.1): the host's check of a component's TOML table against its
// plugin's key table — every type, range, choice, required and unknown key, array elements at
// their own file:line:col, secrets never printed — and the SDK's ConfigReader (defaults).
#include "config.hpp"
#include "config_keys.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

namespace host = fraiseql_observer::host;
namespace sdk = fraiseql_observer::sdk;
using nlohmann::json;

constexpr const char *kModes[] = {"notify", "outbox", "cdc", nullptr};
constexpr const char *kOps[] = {"INSERT", "UPDATE", nullptr};

constexpr fobs_config_key kKeys[] = {
    sdk::Key("conninfo", FOBS_KEY_STRING, "The database").required().secret().not_empty(),
    sdk::Key("mode", FOBS_KEY_STRING, "Reading mode").def("\"notify\"").choices(kModes),
    sdk::Key("channels", FOBS_KEY_STRING_LIST, "Channels").def("[\"fraiseql_events\"]").not_empty(),
    sdk::Key("batch_size", FOBS_KEY_INTEGER, "Rows per read").def("500").range(1, 10000),
    sdk::Key("ratio", FOBS_KEY_NUMBER, "A fraction").def("0.5").range(0, 1),
    sdk::Key("create", FOBS_KEY_BOOLEAN, "Create when missing").def("true"),
    sdk::Key("backoff_ms", FOBS_KEY_INTEGER_LIST, "Delays").def("[1000, 5000]").range(0, 86400000),
    sdk::Key("backoff_secs", FOBS_KEY_NUMBER_LIST, "Delays in s").def("[]").range(0.001, 3600),
    sdk::Key("headers", FOBS_KEY_STRING_MAP, "Extra headers").def("{}").secret(),
    sdk::Key("url", FOBS_KEY_STRING_OR_LIST, "Servers").def("\"nats://127.0.0.1:4222\"").not_empty(),
    sdk::Key("ops", FOBS_KEY_STRING_LIST, "Operations").choices(kOps),
    sdk::Key("jetstream.max_deliver", FOBS_KEY_INTEGER, "Deliveries").def("3").range(1, 1000000),
    sdk::Key("jetstream.storage", FOBS_KEY_STRING, "Storage").def("\"file\""),
};

const sdk::KeyTable kTable(kKeys);

host::Config load(const std::string &body) {
    host::LoadOptions o;
    o.env = [](const std::string &name) -> std::optional<std::string> {
        if (name == "DB") return std::string("host=db password=env-secret-42");
        return std::nullopt;
    };
    return host::load_config_string("[sources.app]\nplugin = \"pg\"\n" + body, "cfg.toml", o);
}

// The error the host reports for `body` (the lines after `plugin = "pg"`, which start at line 3),
// or "" when the table accepts it.
std::string check(const std::string &body) {
    const host::Config c = load(body);
    try {
        host::check_component_keys(*c.find_source("app"), kTable);
    } catch (const host::ConfigError &e) {
        return e.what();
    }
    return "";
}

TEST(ConfigKeys, a_valid_table_passes) {
    EXPECT_EQ(check("conninfo = \"x\"\n"), "");
    EXPECT_EQ(check("conninfo = \"x\"\nmode = \"cdc\"\nchannels = [\"a\", \"b\"]\nbatch_size = 1\n"
                    "ratio = 1\ncreate = false\nbackoff_ms = [0, 86400000]\nbackoff_secs = [0.5, 2]\n"
                    "headers = { A = \"b\" }\nurl = [\"nats://a\", \"nats://b\"]\nops = [\"INSERT\"]\n"
                    "[sources.app.jetstream]\nmax_deliver = 5\nstorage = \"memory\"\n"),
              "");
}

TEST(ConfigKeys, unknown_keys_with_suggestion_and_nested_paths) {
    EXPECT_EQ(check("conninfo = \"x\"\nbatch_sise = 5\n"),
              "cfg.toml:4:1: sources.app.batch_sise: unknown key `batch_sise` (did you mean `batch_size`?)");
    EXPECT_EQ(check("conninfo = \"x\"\nzzz = 5\n").rfind("cfg.toml:4:1: sources.app.zzz: unknown key `zzz`; "
                                                      "allowed keys: `conninfo`, `mode`, ",
                                                      0),
              0u);
    EXPECT_EQ(check("conninfo = \"x\"\n[sources.app.jetstream]\nmax_delivr = 5\n"),
              "cfg.toml:5:1: sources.app.jetstream.max_delivr: unknown key `max_delivr` (did you mean "
              "`max_deliver`?)");
    // A table where the key table has a plain key is a type error, not an unknown key.
    EXPECT_EQ(check("conninfo = \"x\"\n[sources.app.mode]\nx = 1\n"),
              "cfg.toml:4:1: sources.app.mode: expected a string, got a table");
}

TEST(ConfigKeys, every_type_is_checked) {
    EXPECT_EQ(check("conninfo = 5\n"), "cfg.toml:3:1: sources.app.conninfo: expected a string, got an integer");
    // An INTEGER refuses a float, even an integral one.
    EXPECT_EQ(check("conninfo = \"x\"\nbatch_size = 3.0\n"),
              "cfg.toml:4:1: sources.app.batch_size: expected an integer, got a float");
    EXPECT_EQ(check("conninfo = \"x\"\nratio = \"half\"\n"),
              "cfg.toml:4:1: sources.app.ratio: expected a number, got a string");
    EXPECT_EQ(check("conninfo = \"x\"\ncreate = 1\n"),
              "cfg.toml:4:1: sources.app.create: expected a boolean (true or false), got an integer");
    EXPECT_EQ(check("conninfo = \"x\"\nchannels = \"a\"\n"),
              "cfg.toml:4:1: sources.app.channels: expected an array of strings, got a string");
    EXPECT_EQ(check("conninfo = \"x\"\nbackoff_ms = [1, 2.5]\n"),
              "cfg.toml:4:18: sources.app.backoff_ms[1]: expected an integer, got a float");
    EXPECT_EQ(check("conninfo = \"x\"\nbackoff_secs = [1, \"2\"]\n"),
              "cfg.toml:4:20: sources.app.backoff_secs[1]: expected a number, got a string");
    EXPECT_EQ(check("conninfo = \"x\"\nheaders = { A = 1 }\n"),
              "cfg.toml:4:13: sources.app.headers.A: expected a string, got an integer");
    EXPECT_EQ(check("conninfo = \"x\"\nurl = 5\n"),
              "cfg.toml:4:1: sources.app.url: expected a string or an array of strings, got an integer");
    EXPECT_EQ(check("conninfo = \"x\"\nurl = [\"a\", 5]\n"),
              "cfg.toml:4:13: sources.app.url[1]: expected a string, got an integer");
}

TEST(ConfigKeys, ranges_choices_and_not_empty) {
    EXPECT_EQ(check("conninfo = \"x\"\nbatch_size = 0\n"),
              "cfg.toml:4:1: sources.app.batch_size: must be between 1 and 10000, got 0");
    EXPECT_EQ(check("conninfo = \"x\"\nratio = 1.5\n"),
              "cfg.toml:4:1: sources.app.ratio: must be between 0 and 1, got 1.5");
    EXPECT_EQ(check("conninfo = \"x\"\nbackoff_ms = [5,\n  -1]\n"),
              "cfg.toml:5:3: sources.app.backoff_ms[1]: must be between 0 and 86400000, got -1");
    EXPECT_EQ(check("conninfo = \"x\"\nmode = \"outbx\"\n"),
              "cfg.toml:4:1: sources.app.mode: expected one of notify|outbox|cdc, got `outbx` (did you mean "
              "`outbox`?)");
    EXPECT_EQ(check("conninfo = \"x\"\nops = [\"INSERT\", \"DELETE\"]\n"),
              "cfg.toml:4:18: sources.app.ops[1]: expected one of INSERT|UPDATE, got `DELETE`");
    EXPECT_EQ(check("conninfo = \"x\"\nchannels = []\n"), "cfg.toml:4:1: sources.app.channels: must not be empty");
    EXPECT_EQ(check("conninfo = \"\"\n"), "cfg.toml:3:1: sources.app.conninfo: must not be empty");
}

// The issue's case: an array element's error points at the element, not at line 1.
TEST(ConfigKeys, array_elements_are_located_one_by_one) {
    EXPECT_EQ(check("conninfo = \"x\"\nchannels = [\"ok\", \"\"]\n"),
              "cfg.toml:4:19: sources.app.channels[1]: must not be empty");
    EXPECT_EQ(check("conninfo = \"x\"\nchannels = [\n  \"ok\",\n  \"\",\n]\n"),
              "cfg.toml:6:3: sources.app.channels[1]: must not be empty");
}

TEST(ConfigKeys, required_keys_point_at_the_table) {
    EXPECT_EQ(check("mode = \"cdc\"\n"), "cfg.toml:1:1: sources.app.conninfo: missing required key `conninfo`");
}

TEST(ConfigKeys, secrets_never_appear_in_messages) {
    // A secret key's value is never quoted, whatever the check.
    constexpr fobs_config_key keys[] = {
        sdk::Key("token", FOBS_KEY_STRING, "Token").secret().choices(kModes),
        sdk::Key("pin", FOBS_KEY_INTEGER, "Pin").secret().range(0, 9),
    };
    const sdk::KeyTable table(keys);
    auto error = [&](const std::string &body) {
        const host::Config c = load(body);
        try {
            host::check_component_keys(*c.find_source("app"), table);
        } catch (const host::ConfigError &e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_EQ(error("token = \"s3cr3t-notify\"\n"),
              "cfg.toml:3:1: sources.app.token: expected one of notify|outbox|cdc");
    EXPECT_EQ(error("pin = 1234\n"), "cfg.toml:3:1: sources.app.pin: must be between 0 and 9");
    // A value read through ${VAR} is secret whatever the key, and scrubbed from any message.
    const std::string env_case = check("conninfo = \"${DB}\"\nmode = \"${DB}\"\n");
    EXPECT_EQ(env_case, "cfg.toml:4:1: sources.app.mode: expected one of notify|outbox|cdc, got `***`");
    EXPECT_EQ(env_case.find("env-secret-42"), std::string::npos);
}

TEST(ConfigKeys, the_table_decides_which_keys_are_secret) {
    const host::Config c = load("conninfo = \"host=db password=literal-pw\"\nheaders = { Auth = \"Bearer abc\" }\n"
                                "password_hint = \"visible\"\n");
    const auto &s = *c.find_source("app");
    // With a table: its SECRET keys; the by-name rule (password_hint) is not applied.
    EXPECT_EQ(host::secret_paths(s, kTable), (std::vector<std::string>{"conninfo", "headers"}));
    const json redacted = json::parse(host::redacted_config_json(s, kTable));
    EXPECT_EQ(redacted["conninfo"], "***");
    EXPECT_EQ(redacted["headers"], "***");
    EXPECT_EQ(redacted["password_hint"], "visible");
    // Without a table (a 1.0 plugin): keys named like credentials.
    EXPECT_EQ(host::secret_paths(s, {}), (std::vector<std::string>{"password_hint"}));
    // A plugin's own message quoting a secret value is scrubbed by the one error function.
    const std::string e =
        host::component_config_error(s, kTable, "headers.Auth", "bad header value 'Bearer abc'", "pg").what();
    EXPECT_EQ(e, "cfg.toml:4:13: sources.app.headers.Auth: bad header value '***' (plugin 'pg')");
}

TEST(ConfigKeys, a_plugin_error_on_an_element_finds_its_line_in_either_spelling) {
    const host::Config c = load("conninfo = \"x\"\nchannels = [\"ok\",\n  \"bad\"]\n");
    const auto &s = *c.find_source("app");
    for (const char *key : {"channels.1", "channels[1]"})
        EXPECT_EQ(std::string(host::component_config_error(s, kTable, key, "invalid channel", "pg").what()),
                  "cfg.toml:5:3: sources.app.channels[1]: invalid channel (plugin 'pg')")
            << key;
    // A key that is not written: its nearest written parent, else the table.
    EXPECT_EQ(std::string(host::component_config_error(s, kTable, "channels[7]", "x").what()),
              "cfg.toml:4:1: sources.app.channels[7]: x");
    EXPECT_EQ(std::string(host::component_config_error(s, kTable, "slot", "x").what()),
              "cfg.toml:1:1: sources.app.slot: x");
}

TEST(ConfigKeys, reader_applies_defaults_from_the_table) {
    const sdk::ConfigReader r(R"({"conninfo":"db","jetstream":{"max_deliver":7},"url":"nats://x"})", kTable);
    EXPECT_EQ(r.string("conninfo"), "db");
    EXPECT_EQ(r.string("mode"), "notify");
    EXPECT_EQ(r.strings("channels"), std::vector<std::string>{"fraiseql_events"});
    EXPECT_EQ(r.integer("batch_size"), 500);
    EXPECT_DOUBLE_EQ(r.number("ratio"), 0.5);
    EXPECT_TRUE(r.boolean("create"));
    EXPECT_EQ(r.integers("backoff_ms"), (std::vector<int64_t>{1000, 5000}));
    EXPECT_TRUE(r.numbers("backoff_secs").empty());
    EXPECT_TRUE(r.string_map("headers").empty());
    EXPECT_EQ(r.strings("url"), std::vector<std::string>{"nats://x"});
    EXPECT_TRUE(r.strings("ops").empty()); // no default: empty
    EXPECT_EQ(r.integer("jetstream.max_deliver"), 7);
    EXPECT_EQ(r.string("jetstream.storage"), "file");
    EXPECT_TRUE(r.has("jetstream.max_deliver"));
    EXPECT_FALSE(r.has("mode"));
    // Reading a key that is not in the table, or with the wrong getter, is a plugin bug.
    EXPECT_THROW(r.string("nope"), std::logic_error);
    EXPECT_THROW(r.integer("mode"), std::logic_error);
}

TEST(ConfigKeys, reader_runs_the_same_check) {
    try {
        sdk::ConfigReader r(R"({"conninfo":"db","channels":["ok",""]})", kTable);
        ADD_FAILURE() << "accepted";
    } catch (const sdk::ConfigError &e) {
        EXPECT_EQ(e.key(), "channels[1]");
        EXPECT_STREQ(e.what(), "must not be empty");
    }
    EXPECT_THROW(sdk::ConfigReader(R"({"conninfo":"db","batch_size":3.0})", kTable), sdk::ConfigError);
    EXPECT_THROW(sdk::ConfigReader(R"({"conninfo":)", kTable), sdk::ConfigError);
}

TEST(ConfigKeys, a_malformed_table_is_named) {
    constexpr fobs_config_key twice[] = {sdk::Key("a", FOBS_KEY_STRING, ""), sdk::Key("a", FOBS_KEY_STRING, "")};
    EXPECT_EQ(sdk::check_key_table(twice), "config key `a` is declared twice");
    constexpr fobs_config_key bad_default[] = {sdk::Key("n", FOBS_KEY_INTEGER, "").def("3.0")};
    EXPECT_EQ(sdk::check_key_table(bad_default),
              "config key `n` has an invalid default: expected an integer, got a float");
    constexpr fobs_config_key out_of_range[] = {sdk::Key("n", FOBS_KEY_INTEGER, "").def("0").range(1, 2)};
    EXPECT_EQ(sdk::check_key_table(out_of_range),
              "config key `n` has an invalid default: must be between 1 and 2, got 0");
    constexpr fobs_config_key not_json[] = {sdk::Key("s", FOBS_KEY_STRING, "").def("nats")};
    EXPECT_EQ(sdk::check_key_table(not_json).rfind("config key `s` has a default that is not JSON", 0), 0u);
    EXPECT_EQ(sdk::check_key_table(kTable), "");
}

TEST(ConfigKeys, json_reader_keeps_integers_and_floats_apart) {
    const auto v = sdk::JsonValue::parse(R"({"i": -42, "f": 3.0, "e": 1e3, "s": "a\u00e9\ud83d\ude00\n", "n": null})");
    EXPECT_EQ(v.member("i")->kind, sdk::JsonValue::Kind::integer);
    EXPECT_EQ(v.member("i")->integer, -42);
    EXPECT_EQ(v.member("f")->kind, sdk::JsonValue::Kind::number);
    EXPECT_EQ(v.member("e")->kind, sdk::JsonValue::Kind::number);
    EXPECT_EQ(v.member("s")->text, "a\xc3\xa9\xf0\x9f\x98\x80\n");
    EXPECT_EQ(v.member("n")->kind, sdk::JsonValue::Kind::null);
    for (const char *bad : {"", "{", "[1,]", "{\"a\" 1}", "tru", "\"\\x\"", "1 2", "01x"})
        EXPECT_THROW(sdk::JsonValue::parse(bad), std::invalid_argument) << bad;
}

} // namespace
