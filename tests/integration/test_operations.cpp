// Operating it (SPEC section 8): the Prometheus scrape is valid, the counters are true,
// /healthz and /readyz tell the truth while NATS goes away and comes back, logs are JSON
// lines, and secrets never reach a log line.
#include "nats_server.hpp"
#include "observer.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace fobs_test;
using json = nlohmann::json;

namespace {

std::string feed_config(const std::string &transport_block, const std::string &action_block,
                        const std::string &log_format = "json") {
    return "[observer]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\nlog_format = \"" +
           log_format + "\"\nlog_level = \"debug\"\nshutdown_timeout_secs = 10\n\n"
           "[sources.feed]\nplugin = \"test_jsonl\"\npath = \"{dir}/in.jsonl\"\n"
           "ack_path = \"{dir}/acks.txt\"\n\n" +
           transport_block + "\n" + action_block +
           "\n[[pipelines]]\nname = \"orders\"\nsource = \"feed\"\nactions = [\"sink\"]\n";
}

void feed(const ObserverProcess &obs, int from, int to, const std::string &type = "Order") {
    std::ofstream out(obs.dir() / "in.jsonl", std::ios::app);
    for (int i = from; i <= to; ++i)
        out << json{{"id", type + "-" + std::to_string(i)},
                    {"entity_type", type},
                    {"operation", "INSERT"},
                    {"entity_id", std::to_string(i)}}
                   .dump()
            << '\n';
}

const std::string P = "{pipeline=\"orders\",action=\"sink\"}";

} // namespace

TEST(Operations, scrape_passes_promtool_and_counters_are_true) {
    // N = 40 events succeed, K = 5 fail permanently (max_deliver 1: one execution each).
    ObserverProcess obs(feed_config("[transports.local]\nplugin = \"memory\"\nmax_deliver = 1\n",
                                    "[actions.sink]\nplugin = \"log\"\nfail_entity_types = [\"Bad\"]\n"));
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    feed(obs, 1, 40);
    feed(obs, 1, 5, "Bad");
    std::string text;
    ASSERT_TRUE(eventually(
        [&] {
            text = obs.get("/metrics").second;
            return scrape_value(text, "fraiseql_observer_events_processed_total" + P) == 40 &&
                   scrape_value(text, "fraiseql_observer_events_failed_total" + P) == 5;
        },
        std::chrono::seconds(30)))
        << text;
    EXPECT_EQ(scrape_value(text, "fraiseql_observer_processing_duration_seconds_count" + P), 45);
    EXPECT_EQ(scrape_value(text, "fraiseql_observer_events_retried_total" + P), 0);
    EXPECT_TRUE(eventually([&] {
        return obs.metric("fraiseql_observer_events_in_flight{pipeline=\"orders\"}") == 0;
    }, std::chrono::seconds(5)));
    EXPECT_NE(text.find("fraiseql_observer_plugin_info{plugin=\"memory\",kind=\"transport\""), std::string::npos);

    TempDir dir;
    write_file(dir / "scrape.txt", text);
    auto [code, out] = run_command({"sh", "-c", "promtool check metrics < " + (dir / "scrape.txt").string()});
    EXPECT_EQ(code, 0) << "promtool: " << out << "\n" << text;

    EXPECT_EQ(obs.get("/healthz").first, 200);
    EXPECT_EQ(obs.get("/readyz").first, 200);
    EXPECT_EQ(obs.get("/nope").first, 404);
    ASSERT_EQ(obs.stop(), 0) << obs.log();

    // Every log line is one JSON object with the documented fields.
    std::istringstream in(obs.log());
    std::string line;
    int lines = 0, with_event_id = 0;
    while (std::getline(in, line)) {
        auto j = json::parse(line, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
        for (const char *f : {"ts", "level", "logger", "msg"}) EXPECT_TRUE(j.contains(f)) << line;
        ++lines;
        if (j.contains("event_id")) ++with_event_id;
    }
    EXPECT_GT(lines, 45);
    EXPECT_GE(with_event_id, 45);
}

TEST(Operations, readyz_follows_nats_down_and_back_and_secrets_never_logged) {
    NatsServer nats;
    const std::string secret = "whsec_" + std::string("c2VjcmV0LXNob3VsZC1uZXZlci1iZS1sb2dnZWQ=");
    const std::string password = "pw-should-never-be-logged";
    ObserverProcess obs(
        feed_config("[transport]\ntransport = \"nats\"\n[transport.nats]\nurl = \"" + nats.url() +
                        "\"\nstream_name = \"ops_events\"\nsubject_prefix = \"ops.mutation\"\n"
                        "consumer_name = \"ops_worker\"\n",
                    // An unreachable receiver: every delivery fails and is logged.
                    "[actions.sink]\nplugin = \"webhook\"\nurl = \"http://127.0.0.1:" +
                        std::to_string(free_port()) + "/hook\"\nsecret = \"${HOOK_SECRET}\"\n"
                        "headers = { Authorization = \"Bearer ${HOOK_TOKEN}\" }\n",
                    "text"),
        {}, {{"HOOK_SECRET", secret}, {"HOOK_TOKEN", password}});
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    ASSERT_TRUE(eventually([&] { return obs.get("/readyz").first == 200; }, std::chrono::seconds(20)))
        << obs.get("/readyz").second << obs.log();
    feed(obs, 1, 3);

    nats.stop();
    std::pair<int, std::string> r;
    ASSERT_TRUE(eventually([&] { return (r = obs.get("/readyz")).first == 503; }, std::chrono::seconds(30)))
        << r.second;
    auto body = json::parse(r.second, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << r.second;
    EXPECT_FALSE(body["ready"].get<bool>());
    bool named = false;
    for (const auto &c : body["components"])
        if (!c["ready"].get<bool>() && c["pipeline"] == "orders" &&
            c["component"].get<std::string>().find("transport") != std::string::npos)
            named = true;
    EXPECT_TRUE(named) << r.second;
    EXPECT_EQ(obs.get("/healthz").first, 200); // alive all the same

    nats.start();
    ASSERT_TRUE(eventually([&] { return obs.get("/readyz").first == 200; }, std::chrono::seconds(30)))
        << obs.get("/readyz").second;
    ASSERT_EQ(obs.stop(), 0) << obs.log();

    const std::string log = obs.log();
    EXPECT_NE(log.find("sink"), std::string::npos); // the failing deliveries were logged
    EXPECT_EQ(log.find("c2VjcmV0LXNob3VsZC1uZXZlci1iZS1sb2dnZWQ="), std::string::npos) << log;
    EXPECT_EQ(log.find(password), std::string::npos) << log;

    // validate never prints them either.
    auto [code, out] = run_command({observer_binary(), "validate", "-c", (obs.dir() / "observer.toml").string(),
                                    "--plugin-dir", FOBS_TEST_EXTRA_PLUGIN_DIR},
                                   {{"HOOK_SECRET", secret}, {"HOOK_TOKEN", password}});
    EXPECT_EQ(code, 0) << out;
    EXPECT_EQ(out.find(password), std::string::npos) << out;
    EXPECT_EQ(out.find("c2VjcmV0"), std::string::npos) << out;
}
