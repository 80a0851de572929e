// The command line as users run it: exit codes, validate, plugins, init, help.
#include "process.hpp"

#include <fraiseql_observer/abi.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>

using namespace fobs_test;
using json = nlohmann::json;

namespace {
const std::string k_data = std::string(FOBS_TEST_SOURCE_DIR) + "/tests/unit/data/config/";

std::pair<int, std::string> cli(std::vector<std::string> args,
                                std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), observer_binary());
    // Never pick up a developer's own config or plugin path.
    env.emplace("FRAISEQL_OBSERVER_CONFIG", "");
    env.emplace("FRAISEQL_OBSERVER_PLUGIN_PATH", "");
    return run_command(args, env);
}
} // namespace

// The ABI version the shipped plugins are built with (this tree's header).
const std::string k_abi = std::to_string(FOBS_ABI_MAJOR) + "." + std::to_string(FOBS_ABI_MINOR);

TEST(Cli, help_and_version_and_usage_errors) {
    auto [code, out] = cli({"--help"});
    EXPECT_EQ(code, 0);
    for (const char *cmd : {"run", "validate", "plugins", "status", "dlq", "sql", "init"})
        EXPECT_NE(out.find(std::string("fraiseql-observer ") + cmd), std::string::npos) << cmd;
    EXPECT_EQ(cli({}).first, 2);
    auto v = cli({"--version"});
    EXPECT_EQ(v.first, 0);
    EXPECT_NE(v.second.find("plugin ABI " + k_abi), std::string::npos);
    auto bad = cli({"frobnicate"});
    EXPECT_EQ(bad.first, 2);
    EXPECT_NE(bad.second.find("unknown command"), std::string::npos);
    EXPECT_EQ(cli({"run", "--role", "boss"}).first, 2);
    EXPECT_EQ(cli({"validate", "--bogus"}).first, 2);
}

TEST(Cli, plugins_json_lists_shipped_plugins_with_kind_version_and_abi) {
    auto [code, out] = cli({"plugins", "--json"});
    ASSERT_EQ(code, 0) << out;
    json j = json::parse(out);
    std::map<std::string, json> by_name;
    for (const auto &p : j["plugins"]) by_name[p["name"]] = p;
    ASSERT_TRUE(by_name.count("memory")) << out;
    ASSERT_TRUE(by_name.count("log")) << out;
    EXPECT_EQ(by_name["memory"]["kind"], json::array({"transport"}));
    EXPECT_EQ(by_name["log"]["kind"], json::array({"action"}));
    EXPECT_EQ(by_name["log"]["abi"], k_abi);
    EXPECT_FALSE(by_name["log"]["version"].get<std::string>().empty());
    EXPECT_TRUE(j["problems"].empty()) << j["problems"].dump();
}

TEST(Cli, validate_accepts_the_reference_documents_config) {
    auto [code, out] = cli({"validate", "-c", k_data + "reference_fraiseql-observer.toml"},
                           {{"NATS_URL", "nats://127.0.0.1:4222"},
                            {"DATABASE_URL", "postgresql://u@127.0.0.1/db"}});
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("OK"), std::string::npos);
}

TEST(Cli, validate_reports_file_line_column_and_key) {
    TempDir dir;
    auto path = (dir / "bad.toml").string();
    write_file(path, "[observer]\nlog_levle = \"debug\"\n");
    auto [code, out] = cli({"validate", "-c", path});
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find(path + ":2:1"), std::string::npos) << out;
    EXPECT_NE(out.find("log_levle"), std::string::npos) << out;
    EXPECT_NE(out.find("log_level"), std::string::npos) << out; // the suggestion

    write_file(path, "[observer]\nshutdown_timeout_secs = \"soon\"\n");
    auto [c2, o2] = cli({"validate", "-c", path});
    EXPECT_EQ(c2, 2);
    EXPECT_NE(o2.find(path + ":2:"), std::string::npos) << o2;

    write_file(path, "[transports.t]\nplugin = \"memory\"\n[actions.a]\nplugin = \"log\"\n"
                     "token = \"${FOBS_SURELY_UNSET_VAR}\"\n[[pipelines]]\nname = \"p\"\nactions = [\"a\"]\n");
    auto [c3, o3] = cli({"validate", "-c", path});
    EXPECT_EQ(c3, 2);
    EXPECT_NE(o3.find("FOBS_SURELY_UNSET_VAR"), std::string::npos) << o3;
    EXPECT_NE(o3.find(path + ":5:"), std::string::npos) << o3;
}

TEST(Cli, validate_runs_each_plugins_own_config_check) {
    TempDir dir;
    auto path = (dir / "p.toml").string();
    write_file(path, "[transports.t]\nplugin = \"memory\"\n\n[actions.a]\nplugin = \"log\"\nlevel = \"loud\"\n"
                     "[[pipelines]]\nname = \"p\"\nactions = [\"a\"]\n");
    auto [code, out] = cli({"validate", "-c", path});
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find(path + ":6:"), std::string::npos) << out;
    EXPECT_NE(out.find("actions.a.level"), std::string::npos) << out;

    write_file(path, "[transports.t]\nplugin = \"memroy\"\n[[pipelines]]\nname = \"p\"\n"
                     "source = \"s\"\n[sources.s]\nplugin = \"log\"\n");
    auto [c2, o2] = cli({"validate", "-c", path});
    EXPECT_EQ(c2, 2) << o2;
    EXPECT_NE(o2.find("did you mean 'memory'"), std::string::npos) << o2;
}

// issue 14 item 4 through fobs.limits/1: the transport's redelivery deadline against the
// pipeline's longest action attempt, checked without any connection.
TEST(Cli, validate_warns_when_ack_wait_is_not_twice_the_longest_action_attempt) {
    TempDir dir;
    auto path = (dir / "ack.toml").string();
    auto config = [&](int ack_wait_secs) {
        return "[transports.t]\nplugin = \"nats\"\nurl = \"nats://127.0.0.1:1\"\n[transports.t.jetstream]\n"
               "ack_wait_secs = " + std::to_string(ack_wait_secs) + "\n"
               "[actions.hook]\nplugin = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\ntimeout_ms = 10000\n"
               "[[pipelines]]\nname = \"p\"\ntransport = \"t\"\nactions = [\"hook\"]\n";
    };
    write_file(path, config(15));
    auto [code, out] = cli({"validate", "-c", path});
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("warning: pipeline 'p': transport 't' redelivers an unacknowledged event after "
                       "15000 ms, but one attempt of action 'hook' may take 10000 ms; give the "
                       "transport at least 20000 ms"),
              std::string::npos)
        << out;
    write_file(path, config(20));
    auto [c2, o2] = cli({"validate", "-c", path});
    EXPECT_EQ(c2, 0) << o2;
    EXPECT_EQ(o2.find("redelivers"), std::string::npos) << o2;
}

// Issue 16: an error on an array element points at the element, whether the host's key-table
// check finds it or the plugin's own check does (pg_listen refuses an empty channel itself).
TEST(Cli, validate_points_at_the_array_element) {
    TempDir dir;
    auto path = (dir / "c.toml").string();
    write_file(path, "[sources.app]\nplugin = \"pg_listen\"\nconninfo = \"host=db\"\n"
                     "channels = [\"ok\", \"\"]\n[transports.t]\nplugin = \"memory\"\n");
    auto [code, out] = cli({"validate", "-c", path});
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find(path + ":4:19: sources.app.channels[1]: must not be empty (plugin 'pg_listen')"), std::string::npos) << out;

    // The host's check (memory's backoff_ms elements are integers in a range), element on its own line.
    write_file(path, "[transports.t]\nplugin = \"memory\"\nbackoff_ms = [\n  100,\n  -5,\n]\n"
                     "[actions.a]\nplugin = \"log\"\n[[pipelines]]\nname = \"p\"\nactions = [\"a\"]\n");
    auto [c2, o2] = cli({"validate", "-c", path});
    EXPECT_EQ(c2, 2) << o2;
    EXPECT_NE(o2.find(path + ":5:3: transports.t.backoff_ms[1]: must be between 0 and 86400000, got -5"),
              std::string::npos)
        << o2;
}

TEST(Cli, plugins_describe_prints_the_key_table) {
    auto [code, out] = cli({"plugins", "--describe", "memory"});
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find("max_deliver  (integer; default 3; 1 – 1000000)"), std::string::npos) << out;
    auto [c2, o2] = cli({"plugins", "--describe", "pg_listen", "--format", "json"});
    ASSERT_EQ(c2, 0) << o2;
    const json j = json::parse(o2);
    const json &keys = j[0]["components"][0]["keys"];
    ASSERT_TRUE(keys.is_array()) << o2;
    EXPECT_EQ(keys[0]["name"], "conninfo");
    EXPECT_EQ(keys[0]["required"], true);
    EXPECT_EQ(keys[0]["secret"], true);
    EXPECT_EQ(cli({"plugins", "--describe", "memroy"}).first, 2);
    EXPECT_EQ(cli({"plugins", "--describe"}).first, 2);
}

TEST(Cli, validate_checks_and_points_out_components_no_pipeline_uses) {
    TempDir dir;
    auto path = (dir / "u.toml").string();
    const std::string base = "[transports.t]\nplugin = \"memory\"\n[actions.a]\nplugin = \"log\"\n"
                             "[[pipelines]]\nname = \"p\"\nactions = [\"a\"]\n[actions.spare]\nplugin = \"log\"\n";
    write_file(path, base + "level = \"loud\"\n");
    auto [code, out] = cli({"validate", "-c", path});
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find("actions.spare.level"), std::string::npos) << out;
    write_file(path, base);
    auto [c2, o2] = cli({"validate", "-c", path});
    EXPECT_EQ(c2, 0) << o2;
    EXPECT_NE(o2.find("[actions.spare] is declared but no pipeline uses it"), std::string::npos) << o2;
}

TEST(Cli, secrets_never_appear_in_validate_output_or_errors) {
    TempDir dir;
    auto path = (dir / "s.toml").string();
    write_file(path, "[transports.t]\nplugin = \"memory\"\n[actions.a]\nplugin = \"log\"\n"
                     "level = \"${SECRET_LEVEL}\"\n[[pipelines]]\nname = \"p\"\nactions = [\"a\"]\n");
    auto [code, out] = cli({"validate", "-c", path}, {{"SECRET_LEVEL", "hunter2-secret"}});
    EXPECT_EQ(code, 2);
    EXPECT_EQ(out.find("hunter2-secret"), std::string::npos) << out;
}

TEST(Cli, init_writes_a_starter_config_that_validate_accepts) {
    TempDir dir;
    auto path = (dir / "fraiseql-observer.toml").string();
    auto [code, out] = cli({"init", "-c", path});
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(read_file(path).find("[[pipelines]]"), std::string::npos);
    EXPECT_EQ(cli({"init", "-c", path}).first, 2); // refuses to overwrite
    EXPECT_EQ(cli({"init", "-c", path, "--force"}).first, 0);
    auto [vc, vout] = cli({"validate", "-c", path},
                          {{"DATABASE_URL", "postgresql://u@127.0.0.1/db"},
                           {"NATS_URL", "nats://127.0.0.1:4222"}});
    EXPECT_EQ(vc, 0) << vout;
}
