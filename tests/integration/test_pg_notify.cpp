// pg_listen in notify mode against a real PostgreSQL 15 (one cluster for the binary; one
// database per test). The EmitFn given to SourceInstance::start is the host side: it runs the
// host's real normalisation (SPEC section 4) and completes each token OK, or FAILED with the
// rejection reason, exactly as the pipeline does.
#include "event.hpp"
#include "harness.hpp"
#include "pg_cluster.hpp"
#include "pg_test.hpp"
#include "source_recorder.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <variant>

using namespace std::chrono_literals;
using nlohmann::json;
namespace host = fraiseql_observer::host;
namespace sdk = fraiseql_observer::sdk;

namespace {

using fobs_test::Record;
using fobs_test::Recorder;

class PgNotify : public fobs_test::PgDatabaseTest {
  protected:
    void SetUp() override { use_new_database("notify"); }
    std::string config(const std::string &extra = "") const {
        return R"({"conninfo":")" + pg_->conninfo(db_) + R"(","reconnect_min_ms":50,"reconnect_max_ms":500)" +
               extra + "}";
    }
    bool wait_ready(host::SourceInstance &s, std::chrono::milliseconds t = 10s) {
        return fobs_test::eventually([&] {
            std::string why;
            return s.ready(why);
        }, t);
    }

    fobs_test::Harness h_{{}, "info"};
};

TEST_F(PgNotify, reference_trigger_notify_order_created_gives_order_insert_events) {
    // The user's document, verbatim.
    pg_->exec(R"SQL(
CREATE TABLE tb_order (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), status text, total_amount numeric);
CREATE OR REPLACE FUNCTION notify_order_created() RETURNS TRIGGER AS $$
BEGIN
  PERFORM pg_notify('fraiseql_events', json_build_object(
    'entity_type', 'Order',
    'operation',   'INSERT',
    'entity_id',   NEW.id::text,
    'timestamp',   NOW()
  )::text);
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tr_order_created AFTER INSERT ON tb_order
FOR EACH ROW EXECUTE FUNCTION notify_order_created();
)SQL", db_);
    Recorder rec;
    auto src = h_.source("pg_listen", config());
    src->start(rec.fn());
    ASSERT_TRUE(wait_ready(*src));

    pg_->exec("INSERT INTO tb_order (status, total_amount) VALUES ('pending', 42.5), ('pending', 7), ('paid', 1)", db_);
    std::set<std::string> ids;
    for (auto &row : pg_->query("SELECT id::text FROM tb_order", db_)) ids.insert(row[0]);
    ASSERT_TRUE(fobs_test::eventually([&] { return rec.size() >= 3; }, 10s));
    std::this_thread::sleep_for(100ms);
    auto records = rec.records();
    ASSERT_EQ(records.size(), 3u);
    std::set<std::string> got, event_ids;
    for (const auto &r : records) {
        EXPECT_FALSE(r.rejected) << r.reason;
        EXPECT_EQ(r.channel, "fraiseql_events");
        EXPECT_EQ(r.txid, -1); // the reference payload has no txid
        EXPECT_EQ(r.event.entity_type, "Order");
        EXPECT_EQ(r.event.operation, "INSERT");
        auto p = json::parse(r.payload);
        EXPECT_EQ(p["entity_type"], "Order");
        EXPECT_EQ(p["operation"], "INSERT");
        got.insert(p["entity_id"].get<std::string>());
        EXPECT_EQ(r.event.entity_id, p["entity_id"].get<std::string>());
        event_ids.insert(r.event.id);
    }
    EXPECT_EQ(got, ids);
    EXPECT_EQ(event_ids.size(), 3u);
    src->stop();
}

TEST_F(PgNotify, malformed_payloads_are_handed_over_rejected_and_later_events_flow) {
    Recorder rec;
    auto src = h_.source("pg_listen", config());
    src->start(rec.fn());
    ASSERT_TRUE(wait_ready(*src));
    const std::vector<std::string> bad = {
        "not json at all",
        R"({"operation":"INSERT","entity_id":"1"})",                        // no entity_type
        R"({"entity_type":"Or.der","operation":"INSERT","entity_id":"1"})", // dot in a subject token
        R"({"entity_type":"Order","operation":"INSERT"})",                  // no entity_id
        "",                                                                 // empty payload
    };
    for (const auto &p : bad) {
        fobs_test::PgSession s(pg_->conninfo(db_));
        s.exec("SELECT pg_notify('fraiseql_events', " + std::string(p.empty() ? "''" : "$q$" + p + "$q$") + ")");
    }
    pg_->exec(R"(SELECT pg_notify('fraiseql_events', '{"entity_type":"Order","operation":"insert","entity_id":"ok-1"}'))", db_);
    ASSERT_TRUE(fobs_test::eventually([&] { return rec.size() >= bad.size() + 1; }, 10s));
    auto records = rec.records();
    ASSERT_EQ(records.size(), bad.size() + 1);
    for (size_t i = 0; i < bad.size(); ++i) {
        EXPECT_EQ(records[i].payload, bad[i]) << "the plugin hands every payload over unchanged";
        EXPECT_TRUE(records[i].rejected) << bad[i];
        EXPECT_FALSE(records[i].reason.empty());
    }
    EXPECT_FALSE(records.back().rejected) << records.back().reason;
    EXPECT_EQ(records.back().event.operation, "INSERT");
    EXPECT_EQ(records.back().event.entity_id, "ok-1");

    // Still connected, counted, and the reasons are logged.
    std::string why;
    EXPECT_TRUE(src->ready(why)) << why;
    auto status = json::parse(*fobs_test::ask(*src, R"({"op":"status"})"));
    EXPECT_EQ(status["mode"], "notify");
    EXPECT_EQ(status["connected"], true);
    EXPECT_EQ(status["rejected"], bad.size());
    EXPECT_TRUE(h_.logged("rejected: "));

    // And later good events still flow.
    pg_->exec(R"(SELECT pg_notify('fraiseql_events', '{"entity_type":"Order","operation":"UPDATE","entity_id":"ok-2"}'))", db_);
    ASSERT_TRUE(fobs_test::eventually([&] { return rec.size() == bad.size() + 2; }, 10s));
    EXPECT_EQ(rec.records().back().event.entity_id, "ok-2");
    src->stop();
}

TEST_F(PgNotify, payload_of_8000_bytes_fails_inside_postgresql_and_7999_passes) {
    // PostgreSQL's own limit: NOTIFY payloads must be shorter than 8000 bytes. The 8000-byte one
    // never reaches any listener; the application's statement fails instead.
    Recorder rec;
    auto src = h_.source("pg_listen", config());
    src->start(rec.fn());
    ASSERT_TRUE(wait_ready(*src));
    std::string prefix = R"({"entity_type":"Order","operation":"INSERT","entity_id":"big","pad":")";
    std::string big7999 = prefix + std::string(7999 - prefix.size() - 2, 'x') + "\"}";
    std::string big8000 = prefix + std::string(8000 - prefix.size() - 2, 'x') + "\"}";
    ASSERT_EQ(big7999.size(), 7999u);
    ASSERT_EQ(big8000.size(), 8000u);
    try {
        pg_->exec("SELECT pg_notify('fraiseql_events', '" + big8000 + "')", db_);
        ADD_FAILURE() << "PostgreSQL accepted an 8000-byte NOTIFY payload";
    } catch (const std::runtime_error &e) {
        EXPECT_NE(std::string(e.what()).find("payload string too long"), std::string::npos) << e.what();
    }
    pg_->exec("SELECT pg_notify('fraiseql_events', '" + big7999 + "')", db_);
    ASSERT_TRUE(fobs_test::eventually([&] { return rec.size() >= 1; }, 10s));
    std::this_thread::sleep_for(100ms);
    auto records = rec.records();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].payload.size(), 7999u);
    EXPECT_FALSE(records[0].rejected) << records[0].reason;
    src->stop();
}

TEST_F(PgNotify, listens_on_several_channels_with_quoted_names) {
    Recorder rec;
    auto src = h_.source("pg_listen", config(R"(,"channels":["fraiseql_events","Mixed Case-chan"])"));
    src->start(rec.fn());
    ASSERT_TRUE(wait_ready(*src));
    pg_->exec(R"(SELECT pg_notify('Mixed Case-chan', '{"entity_type":"A","operation":"INSERT","entity_id":"1","txid":77}'))", db_);
    pg_->exec(R"(SELECT pg_notify('fraiseql_events', '{"entity_type":"B","operation":"INSERT","entity_id":"2"}'))", db_);
    pg_->exec(R"(SELECT pg_notify('other_channel', '{"entity_type":"C","operation":"INSERT","entity_id":"3"}'))", db_);
    ASSERT_TRUE(fobs_test::eventually([&] { return rec.size() >= 2; }, 10s));
    std::this_thread::sleep_for(200ms);
    auto records = rec.records();
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[0].channel, "Mixed Case-chan");
    EXPECT_EQ(records[0].txid, 77) << "a payload's txid is passed on";
    EXPECT_EQ(records[1].channel, "fraiseql_events");
    src->stop();
}

TEST_F(PgNotify, retry_outcome_hands_the_notification_over_again) {
    Recorder rec;
    rec.retry_first = [](const std::string &p) { return p.find("\"again\"") != std::string::npos; };
    auto src = h_.source("pg_listen", config());
    src->start(rec.fn());
    ASSERT_TRUE(wait_ready(*src));
    pg_->exec(R"(SELECT pg_notify('fraiseql_events', '{"entity_type":"A","operation":"INSERT","entity_id":"again"}'))", db_);
    ASSERT_TRUE(fobs_test::eventually([&] { return rec.size() >= 1; }, 10s));
    EXPECT_EQ(rec.retries(), 1);
    EXPECT_EQ(rec.records()[0].event.entity_id, "again");
    src->stop();
}

TEST_F(PgNotify, config_errors_name_the_key_and_never_show_the_conninfo) {
    try {
        h_.source("pg_listen", config(R"(,"chanels":["x"])"));
        ADD_FAILURE() << "unknown key accepted";
    } catch (const host::InstanceError &e) {
        EXPECT_EQ(e.key_path(), "chanels");
        EXPECT_NE(std::string(e.what()).find("did you mean `channels`"), std::string::npos) << e.what();
    }
    try {
        h_.source("pg_listen", R"({"channels":["x"]})");
        ADD_FAILURE() << "missing conninfo accepted";
    } catch (const host::InstanceError &e) {
        EXPECT_EQ(e.key_path(), "conninfo");
    }
    try {
        h_.source("pg_listen", R"({"conninfo":"host=db password=s3cr3t-value bogus"})");
        ADD_FAILURE() << "broken conninfo accepted";
    } catch (const host::InstanceError &e) {
        EXPECT_EQ(e.key_path(), "conninfo");
        EXPECT_EQ(std::string(e.what()).find("s3cr3t"), std::string::npos) << e.what();
    }
    try {
        h_.source("pg_listen", config(R"(,"mode":"outbox","schema":"Bad-Name")"));
        ADD_FAILURE() << "bad schema accepted";
    } catch (const host::InstanceError &e) {
        EXPECT_EQ(e.key_path(), "schema");
    }
    try {
        h_.source("pg_listen", config(R"(,"reconnect_min_ms":1000,"reconnect_max_ms":10)"));
        ADD_FAILURE() << "reconnect_max_ms < reconnect_min_ms accepted";
    } catch (const host::InstanceError &e) {
        EXPECT_EQ(e.key_path(), "reconnect_max_ms");
    }
}

TEST_F(PgNotify, unreachable_server_is_not_ready_and_never_logs_the_password) {
    Recorder rec;
    int port = fobs_test::free_port();
    auto src = h_.source("pg_listen", R"({"conninfo":"postgresql://postgres:hunter2-secret@127.0.0.1:)" +
                                          std::to_string(port) + R"(/db","reconnect_min_ms":20,"reconnect_max_ms":50})");
    src->start(rec.fn());
    std::this_thread::sleep_for(300ms);
    std::string why;
    EXPECT_FALSE(src->ready(why));
    EXPECT_NE(why.find("cannot connect"), std::string::npos) << why;
    EXPECT_TRUE(h_.logged("port=" + std::to_string(port)));
    for (const auto &l : h_.services().captured_logs()) EXPECT_EQ(l.find("hunter2"), std::string::npos) << l;
    EXPECT_EQ(why.find("hunter2"), std::string::npos);
    src->stop();
}

// Last: restarts the shared server.
TEST_F(PgNotify, reconnects_after_postgresql_restart_warns_about_the_gap_and_flows_again) {
    Recorder rec;
    auto src = h_.source("pg_listen", config());
    src->start(rec.fn());
    ASSERT_TRUE(wait_ready(*src));
    pg_->exec(R"(SELECT pg_notify('fraiseql_events', '{"entity_type":"A","operation":"INSERT","entity_id":"before"}'))", db_);
    ASSERT_TRUE(fobs_test::eventually([&] { return rec.size() == 1; }, 10s));

    pg_->stop("fast");
    EXPECT_TRUE(fobs_test::eventually([&] {
        std::string why;
        return !src->ready(why);
    }, 10s));
    EXPECT_TRUE(fobs_test::eventually([&] { return h_.logged("lost"); }, 5s));
    pg_->start();
    ASSERT_TRUE(wait_ready(*src, 20s));
    EXPECT_TRUE(h_.logged("notifications raised while disconnected were lost"));
    EXPECT_TRUE(h_.logged("outbox"));

    pg_->exec(R"(SELECT pg_notify('fraiseql_events', '{"entity_type":"A","operation":"INSERT","entity_id":"after"}'))", db_);
    ASSERT_TRUE(fobs_test::eventually([&] { return rec.size() == 2; }, 10s));
    EXPECT_EQ(rec.records()[1].event.entity_id, "after");
    src->stop();
}

} // namespace
