// End-to-end pipelines through the real `fraiseql-observer run` process on the in-process
// `memory` transport: the test source `test_jsonl` feeds JSON lines, the `log` action fails on
// purpose.
#include "observer.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>

using namespace fobs_test;
using json = nlohmann::json;

namespace {

std::string order_event(int n, const std::string &type = "Order") {
    return json{{"id", "evt-" + std::to_string(n)},
                {"entity_type", type},
                {"operation", "insert"},
                {"entity_id", std::to_string(n)},
                {"entity", {{"id", n}, {"status", "pending"}}}}
        .dump();
}

void append_lines(const std::filesystem::path &p, const std::vector<std::string> &lines) {
    std::ofstream out(p, std::ios::app);
    for (const auto &l : lines) out << l << '\n';
}

std::string memory_config(const std::string &action_cfg, uint32_t max_in_flight = 64) {
    std::ostringstream cfg;
    cfg << "[observer]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n"
        << "log_format = \"json\"\nlog_level = \"info\"\nshutdown_timeout_secs = 20\n\n"
        << "[sources.feed]\nplugin = \"test_jsonl\"\npath = \"{dir}/in.jsonl\"\n"
        << "ack_path = \"{dir}/acks.txt\"\n\n"
        << "[transports.local]\nplugin = \"memory\"\nmax_deliver = 3\nbackoff_ms = [50, 50, 50]\n\n"
        << "[actions.sink]\nplugin = \"log\"\n" << action_cfg << "\n\n"
        << "[[pipelines]]\nname = \"orders\"\nsource = \"feed\"\ntransport = \"local\"\n"
        << "actions = [\"sink\"]\nmax_in_flight = " << max_in_flight << "\n";
    return cfg.str();
}

// "<line> ok|failed|retry <reason>" lines the test source wrote for each settled record.
std::map<std::string, std::set<long>> settled(const ObserverProcess &obs) {
    std::map<std::string, std::set<long>> out;
    std::istringstream in(read_file(obs.dir() / "acks.txt"));
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream l(line);
        long n;
        std::string kind;
        l >> n >> kind;
        out[kind].insert(n);
    }
    return out;
}

// Event ids the `log` action processed successfully (its info lines carry event_id).
std::set<std::string> processed_ids(const ObserverProcess &obs) {
    std::set<std::string> ids;
    std::istringstream in(obs.log());
    std::string line;
    while (std::getline(in, line)) {
        auto j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;
        if (j.value("logger", "") == "orders/sink" && j.value("level", "") == "info" &&
            j.contains("event_id") && j.value("msg", "").find("on purpose") == std::string::npos)
            ids.insert(j["event_id"].get<std::string>());
    }
    return ids;
}

} // namespace

TEST(MemoryPipeline, retries_then_processes_dead_letters_poison_and_rejects_malformed) {
    ObserverProcess obs(memory_config("fail_first_deliveries = 2\nfail_entity_types = [\"Poison\"]"));
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    std::vector<std::string> lines;
    for (int i = 1; i <= 10; ++i) lines.push_back(order_event(i));
    lines.push_back(order_event(11, "Poison"));
    lines.push_back("{not json");
    append_lines(obs.dir() / "in.jsonl", lines);

    const std::string P = "{pipeline=\"orders\",action=\"sink\"}";
    std::string text;
    ASSERT_TRUE(eventually(
        [&] {
            text = obs.get("/metrics").second;
            return scrape_value(text, "fraiseql_observer_events_processed_total" + P) == 10 &&
                   scrape_value(text, "fraiseql_observer_events_failed_total" + P) == 21;
        },
        std::chrono::seconds(30)))
        << text << obs.log();
    // Each good event failed on deliveries 1 and 2: two redeliveries each.
    EXPECT_EQ(scrape_value(text, "fraiseql_observer_events_retried_total" + P), 20);
    EXPECT_EQ(scrape_value(text, "fraiseql_observer_processing_duration_seconds_count" + P), 31);
    EXPECT_EQ(scrape_value(text, "fraiseql_observer_source_rejected_total{pipeline=\"orders\",source=\"feed\"}"), 1);
    EXPECT_EQ(scrape_value(text, "fraiseql_observer_source_events_total{pipeline=\"orders\",source=\"feed\"}"), 11);
    EXPECT_EQ(scrape_value(text, "fraiseql_observer_events_published_total{pipeline=\"orders\"}"), 11);
    EXPECT_TRUE(eventually([&] { return obs.log().find("Poison") != std::string::npos; },
                           std::chrono::seconds(5)));

    ASSERT_EQ(obs.stop(), 0) << obs.log();
    auto acks = settled(obs);
    EXPECT_EQ(acks["ok"].size(), 11u);
    EXPECT_EQ(acks["failed"], std::set<long>{12}); // the malformed line, rejected with a reason
    EXPECT_NE(read_file(obs.dir() / "acks.txt").find("not valid JSON"), std::string::npos);
    auto ids = processed_ids(obs);
    EXPECT_EQ(ids.size(), 10u);
    EXPECT_FALSE(ids.count("evt-11"));
}

TEST(MemoryPipeline, shutdown_with_events_in_flight_loses_none) {
    ObserverProcess obs(memory_config("delay_ms = 20", 4));
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    std::vector<std::string> lines;
    for (int i = 1; i <= 300; ++i) lines.push_back(order_event(i));
    append_lines(obs.dir() / "in.jsonl", lines);
    ASSERT_TRUE(eventually([&] { return processed_ids(obs).size() >= 20; }, std::chrono::seconds(30)))
        << obs.log();
    ASSERT_EQ(obs.stop(), 0) << obs.log();

    // Every record the source was told is safe (ok) was processed by the action before exit.
    auto acked = settled(obs)["ok"];
    auto processed = processed_ids(obs);
    EXPECT_GE(acked.size(), 20u);
    for (long n : acked)
        EXPECT_TRUE(processed.count("evt-" + std::to_string(n))) << "evt-" << n << " acked but never processed";
}
