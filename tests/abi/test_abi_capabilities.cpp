// ABI 1.1 capabilities (issue 16): a component offers fobs.status/1, fobs.dlq/1, fobs.sql/1,
// fobs.limits/1 or one of its own by a versioned id; one that offers none answers NULL; a 1.0
// plugin (1.0 entry and descriptor sizes) still serves the CLI through its `admin` ops. The
// CLI's `status`, `dlq` and `sql` run against these third-party test plugins, which proves the
// host needs no plugin name for them. Also: a start that fails as retriable is retried by
// `run` until the peer is up, and the run becomes ready.
#include "harness.hpp"
#include "observer.hpp"
#include "plugin_loader.hpp"
#include "process.hpp"

#include <fraiseql_observer/abi.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
namespace host = fraiseql_observer::host;
using fobs_test::run_command;
using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string k_caps_dir = FOBS_ABI_CAPS_DIR;

struct EchoCapability {
    uint32_t struct_size;
    int32_t (*twice)(int32_t);
};

TEST(AbiCapabilities, lookup_finds_offered_capabilities_and_null_for_the_rest) {
    fobs_test::Harness h(k_caps_dir, "warn");
    auto t = h.transport("abi_caps", "{}");
    EXPECT_NE(t->capability(FOBS_CAP_STATUS), nullptr);
    EXPECT_NE(t->capability(FOBS_CAP_DLQ), nullptr);
    EXPECT_EQ(t->capability(FOBS_CAP_SQL), nullptr) << "the transport does not override sql_json";
    EXPECT_EQ(t->capability("fobs.status/2"), nullptr) << "another version is another id";
    EXPECT_EQ(t->capability("nothing"), nullptr);
    auto *echo = static_cast<const EchoCapability *>(t->capability("abi_caps.echo/1"));
    ASSERT_NE(echo, nullptr) << "a plugin's own capability, through its static capability()";
    EXPECT_EQ(echo->twice(21), 42);
    EXPECT_FALSE(t->has_admin());

    json st = json::parse(*t->call_json(FOBS_CAP_STATUS, R"({"consumer":"c1"})"));
    EXPECT_EQ(st["summary"], "caps transport up");
    EXPECT_EQ(st["sections"][0]["rows"][0], json::array({"messages", 3}));
    // An op the component does not offer: nullopt, not an error.
    EXPECT_FALSE(t->call_json(FOBS_CAP_DLQ, R"({"op":"purge","all":true})").has_value());
    // Progress lines arrive as they are written, before the result.
    std::vector<std::string> chunks;
    auto all = t->call_json(FOBS_CAP_DLQ, R"({"op":"replay","all":true})",
                            [&](std::string_view c) { chunks.emplace_back(c); });
    ASSERT_TRUE(all.has_value());
    EXPECT_THAT(*all, HasSubstr("{\"progress\":{\"done\":3,\"total\":3}}\n{\"replayed\":3"));
    EXPECT_GE(chunks.size(), 5u);

    auto s = h.source("abi_caps", "{}");
    EXPECT_EQ(s->max_attempt_ms(), 1234u);
    EXPECT_EQ(t->max_attempt_ms(), 0u) << "not overridden: unknown";
    EXPECT_THAT(*s->call_json(FOBS_CAP_SQL, "{}"), HasSubstr("abi_caps_outbox"));
    EXPECT_FALSE(s->call_json(FOBS_CAP_SQL, R"({"mode":"cdc"})").has_value());

    // A 1.1 C++ plugin that overrides nothing offers nothing.
    auto good = h.action("abi_good", "{}");
    EXPECT_EQ(good->capability(FOBS_CAP_STATUS), nullptr);
    EXPECT_EQ(good->capability(FOBS_CAP_LIMITS), nullptr);
}

// fobs.limits/1 entries appended in 1.1 (max_deliveries, max_unacked, max_concurrency):
// they reach the host through the C++ wrapper; a struct of the older layout (shorter
// struct_size) or a 1.0 plugin answers 0, "unknown", and is never read past its end.
TEST(AbiCapabilities, the_appended_limits_reach_the_host_and_an_older_layout_reads_as_unknown) {
    fobs_test::Harness h(k_caps_dir, "warn");
    auto t = h.transport("abi_caps", R"({"max_deliveries": 7, "max_unacked": 250})");
    EXPECT_EQ(t->max_deliveries(), 7u);
    EXPECT_EQ(t->max_unacked(), 250u);
    EXPECT_EQ(t->max_concurrency(), 0u) << "a transport does not override it";
    auto unlimited = h.transport("abi_caps", R"({"max_deliveries": -1, "max_unacked": -1})");
    EXPECT_EQ(unlimited->max_deliveries(), UINT64_MAX);
    EXPECT_EQ(unlimited->max_unacked(), UINT64_MAX);
    auto unknown = h.transport("abi_caps", "{}");
    EXPECT_EQ(unknown->max_deliveries(), 0u);
    EXPECT_EQ(unknown->max_unacked(), 0u);

    auto a = h.action("abi_caps", R"({"max_concurrency": 40})");
    EXPECT_EQ(a->max_concurrency(), 40u);
    EXPECT_EQ(a->max_attempt_ms(), 0u);
    auto *cap = static_cast<const fobs_limits_capability *>(a->capability(FOBS_CAP_LIMITS));
    ASSERT_NE(cap, nullptr);
    EXPECT_EQ(cap->struct_size, sizeof(fobs_limits_capability)) << "the wrapper offers every entry";

    // The source's struct ends after redelivery_after_ms; its entries past the end say 99.
    auto s = h.source("abi_caps", "{}");
    auto *old = static_cast<const fobs_limits_capability *>(s->capability(FOBS_CAP_LIMITS));
    ASSERT_NE(old, nullptr);
    ASSERT_EQ(old->struct_size, offsetof(fobs_limits_capability, max_deliveries));
    EXPECT_EQ(s->max_attempt_ms(), 1234u) << "the entries it has still count";
    EXPECT_EQ(s->max_deliveries(), 0u) << "read past struct_size";
    EXPECT_EQ(s->max_unacked(), 0u) << "read past struct_size";
    EXPECT_EQ(s->max_concurrency(), 0u) << "read past struct_size";

    // A 1.0 plugin: no capabilities at all.
    auto v10 = h.transport("raw_v10", "{}");
    EXPECT_EQ(v10->max_deliveries(), 0u);
    EXPECT_EQ(v10->max_unacked(), 0u);
    EXPECT_EQ(v10->redelivery_after_ms(), 0u);
}

TEST(AbiCapabilities, a_1_0_plugin_has_no_capabilities_and_keeps_its_admin_ops) {
    fobs_test::Harness h(k_caps_dir, "warn");
    auto p = h.plugin("raw_v10");
    EXPECT_EQ(p->abi_minor, 0);
    auto t = h.transport("raw_v10", "{}");
    EXPECT_EQ(t->capability(FOBS_CAP_STATUS), nullptr) << "the 1.0 descriptor has no get_capability";
    EXPECT_FALSE(t->call_json(FOBS_CAP_STATUS, "{}").has_value());
    ASSERT_TRUE(t->has_admin());
    EXPECT_THAT(*t->admin(R"({"op":"status"})"), HasSubstr("\"backlog\":5"));
}

TEST(AbiCapabilities, the_host_decodes_a_stored_event_body_for_a_transport) {
    fobs_test::Harness h(k_caps_dir, "warn");
    auto t = h.transport("abi_caps", "{}");
    const fobs_host *svc = t->host();
    ASSERT_TRUE(FOBS_HAS_FIELD(svc, fobs_host, decode_event));
    fraiseql_observer::sdk::Host sdk_host(svc);
    auto ev = fobs_test::make_event("id-\xC3\xA9\"1", "Order", "INSERT", "42");
    std::string id, type, op, entity_id, body;
    ASSERT_TRUE(sdk_host.decode_event(ev.body, [&](const fraiseql_observer::sdk::Event &e) {
        id = e.id, type = e.entity_type, op = e.operation, entity_id = e.entity_id, body = e.body;
    }));
    EXPECT_EQ(id, ev.id);
    EXPECT_EQ(type, "Order");
    EXPECT_EQ(op, "INSERT");
    EXPECT_EQ(entity_id, "42");
    EXPECT_EQ(body, ev.body);
    std::string why;
    EXPECT_FALSE(sdk_host.decode_event(R"({"entity_type":"Order"})", [](const auto &) {}, &why));
    EXPECT_THAT(why, HasSubstr("no id"));
    EXPECT_FALSE(sdk_host.decode_event("not json", [](const auto &) {}, &why));
}

// ---- The CLI against third-party plugins only --------------------------------------------

class CapsCli : public ::testing::Test {
  protected:
    void SetUp() override {
        // Something that is not a plugin: `sql` must not even open it (it loads only the
        // plugins the config names), while discovery would warn about it.
        fs::create_directories(dir_.path() / "plugins");
        fobs_test::write_file(dir_.path() / "plugins" / "junk.so", "not an ELF file");
        for (const char *name : {"abi_caps", "raw_v10"})
            fs::copy_file(fs::path(k_caps_dir) / (std::string(name) + ".so"),
                          dir_.path() / "plugins" / (std::string(name) + ".so"));
        // The file is named for the plugin it declares, as the loader expects.
        fs::copy_file(fs::path(k_caps_dir) / "abi_caps_good.so", dir_.path() / "plugins" / "abi_good.so");
        fobs_test::write_file(config(), R"(
[sources.src]
plugin = "abi_caps"
[transports.modern]
plugin = "abi_caps"
[transports.legacy]
plugin = "raw_v10"
[actions.act]
plugin = "abi_good"
[[pipelines]]
name = "new_style"
source = "src"
transport = "modern"
actions = ["act"]
consumer = "c1"
[[pipelines]]
name = "old_style"
transport = "legacy"
actions = ["act"]
)");
    }
    std::string config() const { return (dir_.path() / "observer.toml").string(); }
    std::pair<int, std::string> cli(std::vector<std::string> args) {
        std::vector<std::string> argv = {fobs_test::observer_binary()};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), {"-c", config(), "--plugin-dir", (dir_.path() / "plugins").string()});
        return run_command(argv, {{"FRAISEQL_OBSERVER_PLUGIN_PATH", ""}}, 30s);
    }
    fobs_test::TempDir dir_{"fobs-caps-cli"};
};

TEST_F(CapsCli, status_renders_any_components_sections_and_a_1_0_answer_generically) {
    auto [code, out] = cli({"status"});
    ASSERT_EQ(code, 0) << out;
    // fobs.status/1: summary, sections of key=value rows, a table.
    EXPECT_THAT(out, HasSubstr("pipeline new_style"));
    EXPECT_THAT(out, HasSubstr("transport  modern                     caps transport up"));
    EXPECT_THAT(out, HasSubstr("queue      Q1                         messages=3 oldest=t0"));
    EXPECT_THAT(out, HasSubstr("reader     c1                         behind=0")) << "the consumer was passed on";
    EXPECT_THAT(out, HasSubstr("    replicas:\n      server  current\n      m1      true\n      m2      false\n"));
    // The 1.0 plugin's free-form admin answer, shown without knowing its shape.
    EXPECT_THAT(out, HasSubstr("pipeline old_style"));
    EXPECT_THAT(out, HasSubstr("status                                backlog=5"));
    // (members in name order: the answer is parsed into a JSON object)
    EXPECT_THAT(out, HasSubstr("queue                                 depth=2 name=legacy"));
    EXPECT_THAT(out, HasSubstr("    workers:\n      busy  id\n      true  w1\n"));

    auto [jcode, jout] = cli({"status", "--json"});
    ASSERT_EQ(jcode, 0) << jout;
    json j = json::parse(jout);
    EXPECT_EQ(j["pipelines"][0]["transport_status"]["raw_figure"], 42) << "the component's own members stay";
    EXPECT_EQ(j["pipelines"][1]["transport_status"]["backlog"], 5);
}

TEST_F(CapsCli, dlq_list_and_replay_with_line_oriented_progress_when_not_a_terminal) {
    auto [code, out] = cli({"dlq", "list", "--pipeline", "new_style"});
    ASSERT_EQ(code, 0) << out;
    EXPECT_THAT(out, HasSubstr("seq 7  id e-7  x.Order.INSERT  deliveries 2  action a\n    reason: boom"));

    auto [rcode, rout] = cli({"dlq", "replay", "--all", "--pipeline", "new_style"});
    ASSERT_EQ(rcode, 0) << rout;
    // Not a terminal (a pipe): one plain line per progress report, then the result.
    EXPECT_THAT(rout, HasSubstr("progress 0/3 "));
    EXPECT_THAT(rout, HasSubstr("progress 3/3 "));
    EXPECT_THAT(rout, Not(HasSubstr("\r")));
    EXPECT_THAT(rout, HasSubstr("\"replayed\": 3"));

    auto [jcode, jout] = cli({"dlq", "replay", "--all", "--json", "--pipeline", "new_style"});
    ASSERT_EQ(jcode, 0) << jout;
    EXPECT_THAT(jout, HasSubstr("{\"progress\":{\"done\":1,\"total\":3}}\n"));

    // The 1.0 plugin: through its admin op dlq_list.
    auto [lcode, lout] = cli({"dlq", "list", "--pipeline", "old_style"});
    ASSERT_EQ(lcode, 0) << lout;
    EXPECT_THAT(lout, HasSubstr("DLQ is empty"));
    // An op neither offers: a clear error naming the component, not a crash.
    auto [pcode, pout] = cli({"dlq", "purge", "--all", "--pipeline", "new_style"});
    EXPECT_EQ(pcode, 1) << pout;
    EXPECT_THAT(pout, HasSubstr("transport 'modern' (plugin abi_caps) does not support this fobs.dlq/1 request"));
}

TEST_F(CapsCli, sql_asks_the_configured_source_and_loads_only_the_plugins_it_names) {
    auto [code, out] = cli({"sql"});
    ASSERT_EQ(code, 0) << out;
    EXPECT_THAT(out, HasSubstr("CREATE TABLE abi_caps_outbox (id int);"));
    EXPECT_THAT(out, Not(HasSubstr("junk.so"))) << "sql opened a file no config names";
    auto [ccode, cout] = cli({"sql", "--mode", "cdc"});
    EXPECT_EQ(ccode, 1) << cout;
    EXPECT_THAT(cout, HasSubstr("no configured source offers the cdc SQL"));
    EXPECT_THAT(cout, HasSubstr("src: source 'src' (plugin abi_caps) does not support this fobs.sql/1 request"));
}

// ordering = "entity" warnings from fobs.limits/1 alone, for plugins the host knows nothing
// of: a window under 4 x the action's concurrency, a transport with unlimited unacked events,
// and on_failure = "skip" on transports that cannot say their max_deliver (one answering 0,
// and a 1.0 plugin), each at the file:line:col of its key.
const char *k_ordering_config = R"([transports.known]
plugin = "abi_caps"
max_deliveries = 5
max_unacked = -1
[transports.unknown]
plugin = "abi_caps"
[transports.legacy]
plugin = "raw_v10"
[actions.wide]
plugin = "abi_caps"
max_concurrency = 40
[[pipelines]]
name = "a"
transport = "known"
actions = ["wide"]
max_in_flight = 100
ordering = "entity"
on_failure = "skip"
[[pipelines]]
name = "b"
transport = "unknown"
actions = ["wide"]
ordering = "entity"
on_failure = "skip"
[[pipelines]]
name = "c"
transport = "legacy"
actions = ["wide"]
ordering = "entity"
on_failure = "skip"
)";

TEST(AbiLimits, validate_warns_about_ordering_from_the_components_own_limits) {
    fobs_test::TempDir dir("fobs-caps-limits");
    fs::create_directories(dir.path() / "plugins");
    for (const char *name : {"abi_caps", "raw_v10"})
        fs::copy_file(fs::path(k_caps_dir) / (std::string(name) + ".so"),
                      dir.path() / "plugins" / (std::string(name) + ".so"));
    const std::string config = (dir.path() / "observer.toml").string();
    fobs_test::write_file(config, k_ordering_config);
    auto [code, out] = run_command({fobs_test::observer_binary(), "validate", "-c", config,
                                    "--plugin-dir", (dir.path() / "plugins").string()},
                                   {{"FRAISEQL_OBSERVER_PLUGIN_PATH", ""}}, 30s);
    ASSERT_EQ(code, 0) << out;
    EXPECT_THAT(out, HasSubstr(config + ":17:12: pipelines[0].ordering: pipeline `a`: with ordering = "
                               "\"entity\" parked events hold their delivery slot, and the window is "
                               "only 100 events (min of max_in_flight) for actions running up to 40 at "
                               "once; a few keys with many events then leave the actions idle. Use at "
                               "least 160 (4 x the actions' concurrency)"));
    EXPECT_THAT(out, HasSubstr(config + ":17:12: pipelines[0].ordering: pipeline `a`: with ordering = "
                               "\"entity\" lower the limit of unsettled events per consumer of transport "
                               "`known` (plugin `abi_caps`: unlimited) to at most max_in_flight (100)"));
    EXPECT_THAT(out, Not(HasSubstr("pipelines[0].on_failure"))) << "max_deliveries 5 is known";
    EXPECT_THAT(out, Not(HasSubstr("pipelines[1].ordering"))) << "1024 >= 160, unacked unknown";
    EXPECT_THAT(out, HasSubstr(config + ":24:14: pipelines[1].on_failure: pipeline `b`: the observer "
                               "cannot read max_deliver of transport plugin `abi_caps`, so it cannot "
                               "tell a failing event's last delivery: \"skip\" behaves like \"park\""));
    EXPECT_THAT(out, HasSubstr(config + ":30:14: pipelines[2].on_failure: pipeline `c`: the observer "
                               "cannot read max_deliver of transport plugin `raw_v10`"));
}

TEST(AbiLimits, run_logs_the_same_warnings) {
    fobs_test::TempDir plugins("fobs-caps-limits-run");
    fs::copy_file(fs::path(k_caps_dir) / "abi_caps.so", plugins.path() / "abi_caps.so");
    fobs_test::ObserverProcess obs(
        "[observer]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n"
        "[transports.t]\nplugin = \"abi_caps\"\n"
        "[actions.act]\nplugin = \"abi_caps\"\n"
        "[[pipelines]]\nname = \"p\"\ntransport = \"t\"\nactions = [\"act\"]\n"
        "ordering = \"entity\"\non_failure = \"skip\"\n",
        {"--plugin-dir", plugins.path().string()});
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    ASSERT_TRUE(fobs_test::eventually([&] {
        return obs.log().find("pipelines[0].on_failure: pipeline `p`: the observer cannot read "
                              "max_deliver of transport plugin `abi_caps`") != std::string::npos;
    }, 10s)) << obs.log();
    EXPECT_EQ(obs.stop(), 0) << obs.log();
}

// A transport whose peer comes up later: `run` retries its start with backoff (not ready
// meanwhile, saying why), then becomes ready; a permanent failure would have ended the run.
TEST(AbiRetriableStart, run_retries_a_retriable_start_until_it_succeeds_and_becomes_ready) {
    fobs_test::TempDir plugins("fobs-caps-run");
    fs::copy_file(fs::path(k_caps_dir) / "abi_caps.so", plugins.path() / "abi_caps.so");
    fs::copy_file(fs::path(k_caps_dir) / "abi_caps_good.so", plugins.path() / "abi_good.so");
    const fs::path flag = plugins.path() / "peer_is_up";
    fobs_test::ObserverProcess obs(
        "[observer]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n"
        "[transports.t]\nplugin = \"abi_caps\"\nready_file = \"" + flag.string() + "\"\n"
        "[actions.act]\nplugin = \"abi_good\"\n"
        "[[pipelines]]\nname = \"p\"\ntransport = \"t\"\nactions = [\"act\"]\n",
        {"--plugin-dir", plugins.path().string()});
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    ASSERT_TRUE(fobs_test::eventually([&] {
        return obs.log().find("transport 't' failed to start (attempt 2, retriable)") != std::string::npos;
    }, 10s)) << obs.log();
    auto [status, body] = obs.get("/readyz");
    EXPECT_NE(status, 200) << body;
    EXPECT_THAT(body, HasSubstr("retrying transport 't'"));
    EXPECT_THAT(body, HasSubstr("peer not up yet"));
    EXPECT_TRUE(obs.process().running());

    fobs_test::write_file(flag, "up");
    ASSERT_TRUE(fobs_test::eventually([&] { return obs.get("/readyz").first == 200; }, 20s)) << obs.log();
    EXPECT_THAT(obs.log(), HasSubstr("transport 't' started (attempt"));
    EXPECT_EQ(obs.stop(), 0) << obs.log();
}

} // namespace
