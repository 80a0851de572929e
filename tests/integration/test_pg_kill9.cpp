// The outbox end to end with the real CLI: `fraiseql-observer run` (pg_listen outbox -> nats
// JetStream, publisher only) is killed with SIGKILL mid-stream and started again. Nothing may be
// lost; rows published but not yet checkpointed are published again with the same event id, so
// JetStream's duplicate window keeps exactly one message per row.
#include "nats_server.hpp"
#include "pg_cluster.hpp"
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace std::chrono_literals;
using nlohmann::json;

namespace {

TEST(PgKill9, observer_killed_mid_stream_and_restarted_loses_nothing_and_publishes_each_row_once) {
    fobs_test::PgCluster pg;
    pg.exec("CREATE DATABASE app");
    fobs_test::TempDir dir("fobs-pg-kill9");

    // The DDL exactly as a user gets it.
    auto [code, sql] = fobs_test::run_command({fobs_test::observer_binary(), "sql"});
    ASSERT_EQ(code, 0) << sql;
    pg.exec(sql, "app");

    fobs_test::NatsServer nats;

    std::string cfg = (dir / "observer.toml").string();
    fobs_test::write_file(cfg, R"(
[observer]
metrics_listen = ""
shutdown_timeout_secs = 10

[sources.app_db]
plugin   = "pg_listen"
conninfo = ")" + pg.conninfo("app") + R"("
mode     = "outbox"
batch_size = 200
max_in_flight = 1000

[transport]
transport = "nats"
[transport.nats]
url         = ")" + nats.url() + R"("
stream_name = "fraiseql_events"
)");

    constexpr int kRows = 20000;
    pg.exec("SELECT fraiseql_observer.emit('Order', 'INSERT', g::text, jsonb_build_object('id', g)) "
            "FROM generate_series(1, " + std::to_string(kRows) + ") g", "app");
    auto backlog = [&] { return std::stoi(pg.scalar("SELECT count(*) FROM fraiseql_observer.outbox", "app")); };

    fobs_test::ProcessOptions oo;
    oo.argv = {fobs_test::observer_binary(), "run", "-c", cfg};
    oo.output = dir / "observer1.log";
    {
        fobs_test::Process observer(oo);
        ASSERT_TRUE(fobs_test::eventually([&] { return backlog() < kRows * 3 / 4; }, 30s)) << observer.output();
        observer.kill9();
    }
    int left = backlog();
    EXPECT_GT(left, 0) << "killed mid-stream";

    // More rows while the observer is down.
    pg.exec("SELECT fraiseql_observer.emit('Order', 'INSERT', g::text) FROM generate_series(" +
            std::to_string(kRows + 1) + ", " + std::to_string(kRows + 1000) + ") g", "app");
    oo.output = dir / "observer2.log";
    fobs_test::Process observer(oo);
    ASSERT_TRUE(fobs_test::eventually([&] { return backlog() == 0; }, 60s)) << observer.output();
    EXPECT_EQ(observer.stop(), 0) << observer.output();

    auto [scode, status] = fobs_test::run_command({fobs_test::observer_binary(), "status", "-c", cfg, "--json"});
    ASSERT_EQ(scode, 0) << status;
    auto st = json::parse(status.substr(status.find('{')));
    EXPECT_EQ(st["pipelines"][0]["transport_status"]["stream"]["messages"], kRows + 1000)
        << "every row exactly once in the stream: " << status;
    EXPECT_EQ(st["pipelines"][0]["source_status"]["outbox_backlog"], 0);
}

} // namespace
