// Issue 12: one poison event never stops a pipeline, forges a request or a log line. Real
// PostgreSQL (notify and outbox mode), real nats-server, a real HTTP receiver (node): one poison
// event per refusal class is rejected with its reason and counted in source_rejected_total, the
// receiver never sees an injected header or a second request, and a good event sent right
// after each poison one is delivered. In outbox mode the poison row stays as 'rejected' and
// the rows after it pass.
//
// Also the webhook action's own defence (a host that let such an id through): refused
// permanently, nothing sent.
#include "harness.hpp"
#include "nats_server.hpp"
#include "observer.hpp"
#include "pg_cluster.hpp"
#include "webhook_receiver.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

using namespace fobs_test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

struct Poison {
    const char *name;
    std::string payload;        // the JSON text a producer writes (JSON escapes as written)
    const char *reason_part;    // what the rejection reason says
    bool jsonb_can_hold = true; // PostgreSQL's jsonb refuses \u0000 itself
};

std::string with_id(const std::string &id_json) {
    return R"({"id":)" + id_json + R"(,"entity_type":"Order","operation":"INSERT","entity_id":"1"})";
}

std::vector<Poison> poison_classes() {
    return {
        {"subject_too_long",
         R"({"entity_type":")" + std::string(4100, 'P') + R"(","operation":"INSERT","entity_id":"1"})",
         "entity_type is 4100 bytes, more than the 128 allowed"},
        {"header_injection", with_id(R"("inj-1\r\nX-Injected: yes")"), "id contains a control character (0x0d"},
        {"request_smuggling",
         with_id(R"("smug-1\r\nContent-Length: 0\r\n\r\nPOST /smuggled HTTP/1.1\r\nHost: x\r\nX-Injected: yes\r\nContent-Length: 2\r\n\r\n{}")"),
         "id contains a control character (0x0d"},
        {"nul_in_id", with_id(R"("nulid\u0000aaa")"), "id contains a control character (0x00", false},
        {"forged_log_line", with_id(R"("log-1\n2026-01-01T00:00:00.000000Z error [observer] FORGED LINE")"),
         "id contains a control character (0x0a"},
    };
}

std::string good_payload(const std::string &id) {
    return with_id("\"" + id + "\"");
}

std::string sql_literal(const std::string &s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += '\'';
        out += c;
    }
    return out + "'";
}

class PoisonEvents : public ::testing::TestWithParam<std::string> {
  protected:
    static void SetUpTestSuite() {
        pg_ = new PgCluster();
        auto [code, sql] = run_command({observer_binary(), "sql"});
        if (code != 0) throw std::runtime_error("fraiseql-observer sql failed: " + sql);
        outbox_sql_ = new std::string(sql);
    }
    static void TearDownTestSuite() {
        delete outbox_sql_;
        delete pg_;
    }
    inline static PgCluster *pg_ = nullptr;
    inline static std::string *outbox_sql_ = nullptr;

    // A database of the mode's own; the outbox schema in outbox mode.
    std::string new_database(const std::string &name) {
        pg_->exec("CREATE DATABASE " + name);
        if (GetParam() == "outbox") pg_->exec(*outbox_sql_, name);
        return name;
    }

    // pg_listen (this mode) -> nats -> webhook, text logs.
    static std::string observer_config(const std::string &mode, const std::string &db,
                                       const NatsServer &nats, const std::string &hook_url) {
        return R"(
[observer]
metrics_listen = "127.0.0.1:{metrics_port}"
log_format = "text"
shutdown_timeout_secs = 10

[sources.app_db]
plugin   = "pg_listen"
conninfo = ")" + pg_->conninfo(db) + R"("
mode     = ")" + mode + R"("
)" + (mode == "notify" ? "channels = [\"fraiseql_events\"]\n" : "") + R"(
[transport]
transport = "nats"
[transport.nats]
url            = ")" + nats.url() + R"("
stream_name    = "poison_)" + mode + R"("
subject_prefix = "poison_)" + mode + R"(.mutation"
consumer_name  = "poison_)" + mode + R"(_worker"

[actions.hook]
plugin = "webhook"
url    = ")" + hook_url + R"("

[[pipelines]]
name    = "orders"
source  = "app_db"
actions = ["hook"]
)";
    }

    // A producer writing `payload`: a NOTIFY, or an outbox row (and the wake-up emit() sends).
    void send(const std::string &db, const std::string &payload) {
        if (GetParam() == "notify")
            pg_->exec("SELECT pg_notify('fraiseql_events', " + sql_literal(payload) + ")", db);
        else
            pg_->exec("INSERT INTO fraiseql_observer.outbox (payload) VALUES (" + sql_literal(payload) +
                          "::jsonb); SELECT pg_notify('fraiseql_observer_wakeup', '')",
                      db);
    }
};

TEST_P(PoisonEvents, each_poison_event_is_rejected_counted_and_the_next_event_flows) {
    const std::string mode = GetParam();
    const std::string db = new_database("poison_" + mode);
    NatsServer nats; // a server per test: each test's DLQ stream is provisioned afresh
    WebhookReceiver rx;
    ObserverProcess obs(observer_config(mode, db, nats, rx.url("/ok")));
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    ASSERT_TRUE(eventually([&] { return obs.get("/readyz").first == 200; }, 30s))
        << obs.get("/readyz").second << obs.log();

    auto send = [&](const std::string &payload) { this->send(db, payload); };
    auto delivered = [&](const std::string &id) {
        auto keys = rx.idempotency_keys();
        return std::find(keys.begin(), keys.end(), id) != keys.end();
    };

    std::vector<std::string> good_ids;
    int poisoned = 0;
    for (const auto &p : poison_classes()) {
        SCOPED_TRACE(p.name);
        const bool sent = mode == "notify" || p.jsonb_can_hold;
        if (!sent) {
            // The outbox cannot even hold this event: PostgreSQL refuses the row.
            EXPECT_THROW(send(p.payload), std::runtime_error);
        } else {
            send(p.payload);
            ++poisoned;
        }
        std::string good = "good-" + mode + "-" + p.name;
        send(good_payload(good));
        good_ids.push_back(good);
        ASSERT_TRUE(eventually([&] { return delivered(good); }, 30s))
            << "the event after the poison one was not delivered; receiver got "
            << rx.stats().dump() << "\n" << obs.log();
        if (sent) EXPECT_NE(obs.log().find(p.reason_part), std::string::npos) << obs.log();
    }

    // Counted, once per poison event.
    EXPECT_TRUE(eventually([&] {
        return obs.metric("fraiseql_observer_source_rejected_total{pipeline=\"orders\",source=\"app_db\"}") == poisoned;
    }, 10s)) << obs.get("/metrics").second;

    // The receiver saw exactly the good events, one request each, nothing injected or smuggled.
    json st = rx.stats();
    EXPECT_EQ(rx.idempotency_keys(), good_ids) << st.dump();
    EXPECT_EQ(st["requests"].get<int>(), static_cast<int>(good_ids.size())) << st.dump();
    EXPECT_EQ(st["client_errors"].get<int>(), 0) << st.dump();
    EXPECT_FALSE(st["by_path"].contains("/smuggled")) << st.dump();
    for (const auto &r : st["requests_log"]) {
        EXPECT_FALSE(r["headers"].contains("x-injected")) << r.dump();
        EXPECT_EQ(r["path"], "/ok") << r.dump();
    }

    // The pipeline and its NATS connection are still healthy.
    EXPECT_EQ(obs.get("/readyz").first, 200) << obs.get("/readyz").second;

    // No forged line: every log line starts with the observer's own timestamp and level, and
    // the forged text appears only escaped, inside a line.
    std::istringstream lines(obs.log());
    for (std::string line; std::getline(lines, line);)
        EXPECT_EQ(line.rfind("2026-01-01T00:00:00.000000Z error [observer] FORGED LINE", 0), std::string::npos)
            << "forged line in the log: " << line;

    if (mode == "outbox") {
        // The poison rows are kept as rejected with their reasons; nothing is left pending.
        auto rows = pg_->query("SELECT state, reason FROM fraiseql_observer.outbox ORDER BY seq", db);
        ASSERT_EQ(static_cast<int>(rows.size()), poisoned) << "good rows are deleted once confirmed";
        for (const auto &r : rows) {
            EXPECT_EQ(r[0], "rejected");
            EXPECT_TRUE(r[1].find("entity_type is 4100 bytes") != std::string::npos ||
                        r[1].find("id contains a control character") != std::string::npos)
                << r[1];
        }
    }
    EXPECT_EQ(obs.stop(), 0) << obs.log();
}

// A well-formed event the TRANSPORT refuses permanently (larger than nats-server's
// max_payload): the nats transport dead-letters it and completes FAILED; the host counts it in
// source_rejected_total and hands FAILED with the reason to the source, which moves on (outbox:
// the row is kept as rejected). Never retried.
TEST_P(PoisonEvents, a_permanent_refusal_by_the_transport_is_rejected_at_the_source_not_retried) {
    const std::string mode = GetParam();
    const std::string db = new_database("refused_" + mode);
    NatsServer nats;
    nats.set_extra_args({"-c", nats.write_config("small.conf", "max_payload: 4096\n").string()});
    nats.stop();
    nats.start();
    WebhookReceiver rx;
    ObserverProcess obs(observer_config(mode, db, nats, rx.url("/ok")));
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    ASSERT_TRUE(eventually([&] { return obs.get("/readyz").first == 200; }, 30s))
        << obs.get("/readyz").second << obs.log();

    const std::string big_id = "too-big-" + mode;
    send(db, R"({"id":")" + big_id + R"(","entity_type":"Order","operation":"INSERT","entity_id":"1",)"
             R"("entity":{"blob":")" + std::string(6000, 'x') + R"("}})");
    send(db, with_id("\"after-big-" + mode + "\""));
    ASSERT_TRUE(eventually([&] {
        auto keys = rx.idempotency_keys();
        return std::find(keys.begin(), keys.end(), "after-big-" + mode) != keys.end();
    }, 30s)) << rx.stats().dump() << "\n" << obs.log();
    EXPECT_TRUE(eventually([&] {
        return obs.metric("fraiseql_observer_source_rejected_total{pipeline=\"orders\",source=\"app_db\"}") == 1;
    }, 10s)) << obs.get("/metrics").second;
    EXPECT_EQ(rx.idempotency_keys(), std::vector<std::string>{"after-big-" + mode});

    std::string log = obs.log();
    EXPECT_NE(log.find("transport refused an event permanently: refused by the nats transport"), std::string::npos) << log;
    EXPECT_NE(log.find("max_payload"), std::string::npos) << log;
    if (mode == "outbox") {
        auto rows = pg_->query("SELECT state, reason FROM fraiseql_observer.outbox", db);
        ASSERT_EQ(rows.size(), 1u);
        EXPECT_EQ(rows[0][0], "rejected");
        EXPECT_NE(rows[0][1].find("max_payload"), std::string::npos) << rows[0][1];
    }
    // Not retried: a few seconds later it was still refused exactly once.
    std::this_thread::sleep_for(3s);
    log = obs.log();
    size_t refusals = 0;
    for (size_t pos = log.find("transport refused an event permanently"); pos != std::string::npos;
         pos = log.find("transport refused an event permanently", pos + 1))
        ++refusals;
    EXPECT_EQ(refusals, 1u) << log;
    EXPECT_EQ(obs.metric("fraiseql_observer_source_rejected_total{pipeline=\"orders\",source=\"app_db\"}"), 1);
    EXPECT_EQ(obs.stop(), 0) << obs.log();
}

INSTANTIATE_TEST_SUITE_P(Modes, PoisonEvents, ::testing::Values("notify", "outbox"),
                         [](const auto &info) { return info.param; });

// The webhook action does not rely on its host: an id that would put CR, LF or NUL into a
// header line fails permanently with a reason, and no request is sent.
TEST(PoisonEventsWebhook, ids_unfit_for_a_header_are_refused_by_the_action_itself) {
    WebhookReceiver rx;
    Harness h;
    auto action = h.action("webhook", json{{"url", rx.url("/ok")}, {"secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}.dump());
    action->start();
    struct Case {
        std::string id;
        const char *reason_part;
    };
    for (const Case &c : {Case{"inj-1\r\nX-Injected: yes", "contains CR"},
                          Case{"smug-1\nContent-Length: 0\n\nPOST /smuggled HTTP/1.1", "contains LF"},
                          Case{std::string("nulid\0aaa", 9), "contains NUL"},
                          Case{"bell\x07", "contains a control character"}}) {
        auto o = action->execute_sync(make_event(c.id));
        EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED) << c.id;
        EXPECT_NE(o.reason.find(c.reason_part), std::string::npos) << o.reason;
    }
    auto ok = action->execute_sync(make_event("good-1"));
    EXPECT_EQ(ok.kind, FOBS_OUTCOME_OK) << ok.reason;
    json st = rx.stats();
    EXPECT_EQ(st["requests"].get<int>(), 1) << st.dump();
    EXPECT_EQ(rx.idempotency_keys(), std::vector<std::string>{"good-1"});
    action->stop();
}

} // namespace
