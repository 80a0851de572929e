// Outbox mode through the real CLI while NATS goes away: rows wait in the outbox (bounded, in
// PostgreSQL, not in the observer's memory), then flow when nats-server is back; every row is
// stored once. Also exercises `fraiseql-observer status --json` against the live stream.
#include "nats_server.hpp"
#include "observer.hpp"
#include "pg_cluster.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace fobs_test;
using namespace std::chrono_literals;
using json = nlohmann::json;

TEST(OutboxNatsOutage, rows_wait_in_the_outbox_while_nats_is_down_then_flow_once) {
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
stream_name = "outage_events"
subject_prefix = "outage.mutation"
[transport.nats.jetstream]
max_bytes = 67108864
)";
    ObserverProcess obs(config, {"--role", "publisher"});
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;

    auto emit = [&](int from, int to) {
        pg.exec("SELECT fraiseql_observer.emit('Order', 'INSERT', g::text, jsonb_build_object('id', g)) "
                "FROM generate_series(" + std::to_string(from) + ", " + std::to_string(to) + ") g", "app");
    };
    auto backlog = [&] { return std::stoi(pg.scalar("SELECT count(*) FROM fraiseql_observer.outbox", "app")); };
    auto stream_messages = [&]() -> long {
        auto [c, out] = run_command({observer_binary(), "status", "--json", "-c", (obs.dir() / "observer.toml").string()});
        auto j = json::parse(out, nullptr, false);
        if (c != 0 || j.is_discarded()) return -1;
        const auto &st = j["pipelines"][0]["transport_status"];
        if (!st.contains("stream") || st["stream"].is_null()) return -1;
        return st["stream"]["messages"].get<long>();
    };

    emit(1, 500);
    ASSERT_TRUE(eventually([&] { return stream_messages() == 500 && backlog() == 0; }, 30s))
        << stream_messages() << " stored, backlog " << backlog() << "\n" << obs.log();

    nats.stop();
    emit(501, 1000);
    std::this_thread::sleep_for(10s);
    EXPECT_EQ(backlog(), 500) << "rows must wait in the outbox while NATS is down";
    EXPECT_TRUE(obs.process().running());
    EXPECT_EQ(obs.get("/readyz").first, 503);

    nats.start();
    ASSERT_TRUE(eventually([&] { return backlog() == 0; }, 60s)) << backlog() << "\n" << obs.log();
    ASSERT_TRUE(eventually([&] { return stream_messages() == 1000; }, 30s)) << stream_messages();
    EXPECT_EQ(obs.metric("fraiseql_observer_events_published_total{pipeline=\"default\"}"), 1000);
    EXPECT_EQ(obs.stop(), 0) << obs.log();
}
