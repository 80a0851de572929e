// Standby takeover in outbox mode (SPEC §6): two `run --role publisher` processes on the same
// outbox source. A PostgreSQL advisory lock lets one read; the other waits, not ready, and takes
// over within seconds when the first is killed. Nothing is lost, nothing is read twice while
// both run.
#include "js_reader.hpp"
#include "nats_server.hpp"
#include "observer.hpp"
#include "pg_cluster.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>
#include <thread>

using namespace fobs_test;
using namespace std::chrono_literals;
using json = nlohmann::json;

TEST(OutboxStandby, a_second_publisher_waits_then_takes_over_within_seconds_after_kill9) {
    PgCluster pg;
    pg.exec("CREATE DATABASE app");
    auto [code, sql] = run_command({observer_binary(), "sql"});
    ASSERT_EQ(code, 0) << sql;
    pg.exec(sql, "app");
    NatsServer nats;
    const std::string config = R"(
[observer]
metrics_listen = "127.0.0.1:{metrics_port}"
shutdown_timeout_secs = 10

[sources.app_db]
plugin   = "pg_listen"
conninfo = ")" + pg.conninfo("app") + R"("
mode     = "outbox"

[transport]
transport = "nats"
[transport.nats]
url         = ")" + nats.url() + R"("
stream_name = "standby_events"
subject_prefix = "standby.mutation"
)";
    ObserverProcess first(config, {"--role", "publisher"});
    std::string why;
    ASSERT_TRUE(first.wait_started(why)) << why;
    ASSERT_TRUE(eventually([&] { return first.get("/readyz").first == 200; }, 20s)) << first.log();
    ObserverProcess second(config, {"--role", "publisher"});
    ASSERT_TRUE(second.wait_started(why)) << why;
    ASSERT_TRUE(eventually([&] { return second.get("/readyz").second.find("standby") != std::string::npos; }, 20s))
        << second.get("/readyz").second << "\n" << second.log();
    EXPECT_EQ(second.get("/readyz").first, 503);

    auto emit = [&](int from, int to) {
        pg.exec("SELECT fraiseql_observer.emit('Order', 'INSERT', g::text, jsonb_build_object('id', g)) "
                "FROM generate_series(" + std::to_string(from) + ", " + std::to_string(to) + ") g", "app");
    };
    JsReader js(nats.url());
    emit(1, 500);
    ASSERT_TRUE(eventually([&] { return js.count("standby_events") == 500; }, 30s)) << js.count("standby_events");
    // Only the active process read: the standby published nothing.
    EXPECT_EQ(second.metric("fraiseql_observer_source_events_total{pipeline=\"default\",source=\"app_db\"}"), 0)
        << second.get("/metrics").second;

    first.process().kill9();
    const auto killed = std::chrono::steady_clock::now();
    emit(501, 1000);
    ASSERT_TRUE(eventually([&] { return second.get("/readyz").first == 200; }, 10s)) << second.log();
    EXPECT_LT(std::chrono::steady_clock::now() - killed, 10s);
    ASSERT_TRUE(eventually([&] { return js.count("standby_events") == 1000; }, 30s)) << js.count("standby_events");
    std::set<std::string> ids;
    for (auto &m : js.messages("standby_events")) ids.insert(json::parse(m.body)["entity_id"].get<std::string>());
    EXPECT_EQ(ids.size(), 1000u);
    EXPECT_TRUE(eventually([&] { return pg.scalar("SELECT count(*) FROM fraiseql_observer.outbox", "app") == "0"; }, 30s));
    EXPECT_EQ(second.stop(), 0) << second.log();
}
