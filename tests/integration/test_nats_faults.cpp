// The `nats` transport on a bad day (issue 12): connections the server closes (wrong password,
// a restart with other credentials) are rebuilt by the plugin; events NATS would refuse
// permanently (a subject over max_control_line, an id with CR/LF/NUL, a payload over
// max_payload or the stream's max_msg_size) are dead-lettered and FAILED instead of closing
// the connection or being retried forever; no password reaches status, logs or errors; bad
// URLs are refused at validate; shutdown with NATS gone is quick. Real nats-server processes,
// the plugin loaded through the real host loader (harness), what NATS holds read back raw.
#include "harness.hpp"
#include "js_reader.hpp"
#include "nats_server.hpp"
#include "observer.hpp"
#include "pg_cluster.hpp"
#include "process.hpp"

#include <gtest/gtest.h>
#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

namespace {

using fobs_test::BadConfig;
using fobs_test::Harness;
using fobs_test::make_event;
using fraiseql_observer::host::ComponentKind;
using fraiseql_observer::host::ConsumerSpec;
using fraiseql_observer::host::EventData;
using fraiseql_observer::host::Outcome;
using fraiseql_observer::host::TransportInstance;
namespace sdk = fraiseql_observer::sdk;
using json = nlohmann::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// Raw cnats view of what a server holds.
using Raw = fobs_test::JsReader;

json base_config(const std::string &url, const std::string &tag) {
    return {{"url", url},
            {"stream_name", "f_" + tag},
            {"subject_prefix", "f" + tag + ".mutation"},
            {"dlq_prefix", "f" + tag + ".dlq"},
            {"consumer_name", "worker"},
            {"reconnect_wait_ms", 100},
            {"jetstream", {{"max_bytes", 16 << 20}}}};
}

ConsumerSpec spec() {
    ConsumerSpec s;
    s.pipeline = "orders";
    s.consumer_name = "worker";
    s.max_in_flight = 64;
    return s;
}

bool is_ready(TransportInstance &t, std::string &why) { return t.ready(why); }

class NatsFaultsTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { nats_Open(-1); }

    std::unique_ptr<TransportInstance> started(const json &config, const std::string &name = "nats") {
        auto t = h.transport("nats", config.dump(), name);
        t->start();
        std::string why;
        EXPECT_TRUE(fobs_test::eventually([&] { return is_ready(*t, why); }, 10s)) << why;
        return t;
    }
    json admin(TransportInstance &t, const json &req) {
        auto answer = fobs_test::ask(t, req.dump());
        if (!answer) throw std::runtime_error("admin op unsupported");
        return json::parse(*answer);
    }
    std::string all_logs() {
        std::string out;
        for (const auto &l : h.services().captured_logs()) out += l + "\n";
        return out;
    }

    Harness h;
};

// ---------------------------------------------------------------------------------------
// 1. Connections the server closes are rebuilt, forever, with the reason in ready().

TEST_F(NatsFaultsTest, wrong_password_is_not_ready_with_the_reason_then_reconnects_when_it_becomes_right) {
    fobs_test::NatsServer nats({"--user", "observer", "--pass", "the-right-one"});
    json c = base_config(nats.url(), "auth");
    c["user"] = "observer";
    c["password"] = "not-yet-right";
    auto t = h.transport("nats", c.dump(), "auth");
    t->start(); // must not fail: the server may be fixed later
    std::string why;
    // Several attempts fail, each reported truthfully.
    ASSERT_TRUE(fobs_test::eventually(
        [&] {
            is_ready(*t, why);
            return why.find("reconnecting (attempt 3") != std::string::npos;
        },
        10s))
        << why;
    EXPECT_FALSE(is_ready(*t, why));
    EXPECT_NE(why.find("Authorization Violation"), std::string::npos) << why;
    EXPECT_EQ(why.find("not-yet-right"), std::string::npos) << why;
    EXPECT_FALSE(h.logged("retrying in the background")) << all_logs();

    // The operator fixes the server's side: same port, the password we hold is now right.
    nats.stop();
    nats.set_extra_args({"--user", "observer", "--pass", "not-yet-right"});
    nats.start();
    ASSERT_TRUE(fobs_test::eventually([&] { return is_ready(*t, why); }, 20s)) << why;
    EXPECT_EQ(t->publish_sync(make_event("after-auth-fixed")).kind, FOBS_OUTCOME_OK);
    t->stop();
}

TEST_F(NatsFaultsTest, connection_the_server_closed_is_rebuilt_and_the_consumer_resubscribes) {
    fobs_test::NatsServer nats({"--user", "observer", "--pass", "pw-1"});
    json c = base_config(nats.url(), "closed");
    c["user"] = "observer";
    c["password"] = "pw-1";
    auto t = started(c, "closed");
    std::atomic<int> delivered{0};
    auto consumer = t->open_consumer(spec(), [&](const fobs_event &, sdk::Completion done) {
        delivered++;
        done.ok();
    });
    ASSERT_EQ(t->publish_sync(make_event("before")).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(fobs_test::eventually([&] { return delivered == 1; }, 10s));

    // A restart with other credentials: cnats' reconnect is refused and the server's refusal
    // CLOSES the connection, which cnats never reopens.
    nats.stop();
    nats.set_extra_args({"--user", "observer", "--pass", "pw-2"});
    nats.start();
    std::string why;
    ASSERT_TRUE(fobs_test::eventually(
        [&] {
            is_ready(*t, why);
            return why.find("NATS connection closed") != std::string::npos;
        },
        20s))
        << why;
    EXPECT_NE(why.find("reconnecting (attempt"), std::string::npos) << why;

    // Credentials back: the plugin builds a new connection by itself, the publisher publishes
    // on it and the consumer is subscribed again on it.
    nats.stop();
    nats.set_extra_args({"--user", "observer", "--pass", "pw-1"});
    nats.start();
    ASSERT_TRUE(fobs_test::eventually([&] { return is_ready(*t, why); }, 20s)) << why;
    EXPECT_EQ(t->publish_sync(make_event("after")).kind, FOBS_OUTCOME_OK);
    EXPECT_TRUE(fobs_test::eventually([&] { return delivered == 2; }, 15s))
        << "delivered " << delivered << "\n" << all_logs();
    EXPECT_TRUE(h.logged("NATS connection rebuilt"));
    consumer->close();
    t->stop();
}

// JetStream reserves a stream's whole max_bytes at creation against the server's
// max_file_store (by default 75 % of the free disk). A default 10 GiB stream on a server with
// less: a permanent start error that names the setting, the figure and both ways out. The same server takes a stream whose max_bytes fits.
TEST_F(NatsFaultsTest, stream_larger_than_the_servers_storage_is_a_clear_start_error) {
    fobs_test::NatsServer nats;
    nats.stop();
    nats.set_extra_args(
        {"-c", nats.write_config("tiny.conf", "jetstream { max_file_store: 256MB }\n").string()});
    nats.start();
    json c = base_config(nats.url(), "big");
    c["jetstream"].erase("max_bytes"); // the default, 10 GiB
    auto t = h.transport("nats", c.dump(), "big");
    try {
        t->start();
        ADD_FAILURE() << "a 10 GiB stream started on a server with 256 MB of JetStream storage";
    } catch (const fraiseql_observer::host::InstanceError &e) {
        std::string what = e.what();
        EXPECT_FALSE(e.retriable()) << what;
        EXPECT_NE(what.find("stream f_big reserves its whole max_bytes, 10737418240 bytes (10 GiB)"),
                  std::string::npos)
            << what;
        EXPECT_NE(what.find("lower jetstream.max_bytes or raise max_file_store"), std::string::npos)
            << what;
        EXPECT_NE(what.find("insufficient storage resources"), std::string::npos)
            << "the server's own words stay: " << what;
    }
    t->stop();
    EXPECT_EQ(Raw(nats.url()).count("f_big"), 0u);

    auto fits = started(base_config(nats.url(), "fits"), "fits"); // 16 MiB, DLQ the same
    EXPECT_EQ(fits->publish_sync(make_event("fits-1")).kind, FOBS_OUTCOME_OK);
    fits->stop();
}

// ---------------------------------------------------------------------------------------
// 2. Events NATS would refuse permanently: DLQ + FAILED, connection untouched.

class RefusalTest : public NatsFaultsTest {
  protected:
    static void SetUpTestSuite() {
        nats_Open(-1);
        g_small = new fobs_test::NatsServer();
        g_small->stop();
        auto conf = g_small->write_config("small.conf", "max_payload: 8192\n");
        g_small->set_extra_args({"-c", conf.string()});
        g_small->start();
    }
    static void TearDownTestSuite() {
        delete g_small;
        g_small = nullptr;
    }
    static fobs_test::NatsServer *g_small;
};
fobs_test::NatsServer *RefusalTest::g_small = nullptr;

TEST_F(RefusalTest, subject_over_max_control_line_is_dead_lettered_and_failed_connection_stays_up) {
    json c = base_config(g_small->url(), "long");
    auto t = started(c, "long");
    std::string entity(4100, 'P');
    Outcome o = t->publish_sync(make_event("poison-1", entity));
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED) << o.reason;
    EXPECT_NE(o.reason.find("subject"), std::string::npos) << o.reason;
    std::string why;
    EXPECT_TRUE(is_ready(*t, why)) << why;
    // The next event goes through on the same connection.
    EXPECT_EQ(t->publish_sync(make_event("next-1")).kind, FOBS_OUTCOME_OK);
    Raw raw(g_small->url());
    auto stored = raw.messages("f_long");
    ASSERT_EQ(stored.size(), 1u);
    EXPECT_EQ(stored[0].headers["Nats-Msg-Id"], "next-1");
    auto dlq = raw.messages("f_long_dlq");
    ASSERT_EQ(dlq.size(), 1u);
    EXPECT_EQ(dlq[0].subject, "flong.dlq._invalid._invalid");
    EXPECT_NE(dlq[0].headers["Fobs-Dlq-Reason"].find("4096"), std::string::npos)
        << dlq[0].headers["Fobs-Dlq-Reason"];
    EXPECT_EQ(json::parse(dlq[0].body)["id"], "poison-1");
    EXPECT_EQ(dlq[0].headers.count("Fobs-Original-Subject"), 0u) << "not replayable as is";
    json entries = admin(*t, {{"op", "dlq_list"}})["entries"];
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0]["id"], "poison-1");
    // Replaying it would publish the same poison: refused, the entry stays.
    EXPECT_ANY_THROW(admin(*t, {{"op", "dlq_replay"}, {"seq", entries[0]["dlq_seq"]}}));
    EXPECT_EQ(raw.messages("f_long_dlq").size(), 1u);
    t->stop();
}

TEST_F(RefusalTest, ids_with_cr_lf_or_nul_are_dead_lettered_not_sent_as_headers) {
    json c = base_config(g_small->url(), "hdr");
    auto t = started(c, "hdr");
    std::string crlf = "inj-1\r\nX-Injected: yes";
    std::string nul_a("nulid\0aaa", 9), nul_b("nulid\0bbb", 9);
    for (const std::string &id : {crlf, nul_a, nul_b}) {
        Outcome o = t->publish_sync(make_event(id));
        EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED) << o.reason;
        EXPECT_NE(o.reason.find("event id contains"), std::string::npos) << o.reason;
    }
    EXPECT_EQ(t->publish_sync(make_event("clean-id")).kind, FOBS_OUTCOME_OK);
    Raw raw(g_small->url());
    EXPECT_EQ(raw.messages("f_hdr").size(), 1u);
    auto dlq = raw.messages("f_hdr_dlq");
    ASSERT_EQ(dlq.size(), 3u) << "the two NUL ids are two entries, not one truncated duplicate";
    for (const auto &m : dlq) {
        EXPECT_EQ(m.subject, "fhdr.dlq.Order.INSERT");
        EXPECT_EQ(m.headers.count("X-Injected"), 0u);
        EXPECT_EQ(m.headers.at("Nats-Msg-Id").rfind("sha256-", 0), 0u) << m.headers.at("Nats-Msg-Id");
    }
    // A replay could not carry the id as a header either: refused, nothing injected.
    EXPECT_ANY_THROW(admin(*t, {{"op", "dlq_replay"}, {"all", true}}));
    EXPECT_EQ(raw.messages("f_hdr").size(), 1u);
    t->stop();
}

TEST_F(RefusalTest, payload_over_max_payload_is_dead_lettered_without_its_body_and_failed) {
    json c = base_config(g_small->url(), "big");
    auto t = started(c, "big");
    EventData e = make_event("too-big");
    e.body = json{{"id", "too-big"}, {"entity_type", "Order"}, {"operation", "INSERT"},
                  {"pad", std::string(20000, 'x')}}.dump();
    Outcome o = t->publish_sync(e);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED) << o.reason;
    EXPECT_NE(o.reason.find("max_payload (8192)"), std::string::npos) << o.reason;
    EXPECT_EQ(t->publish_sync(make_event("small-after")).kind, FOBS_OUTCOME_OK);
    Raw raw(g_small->url());
    EXPECT_EQ(raw.messages("f_big").size(), 1u);
    auto dlq = raw.messages("f_big_dlq");
    ASSERT_EQ(dlq.size(), 1u);
    EXPECT_EQ(dlq[0].subject, "fbig.dlq.Order.INSERT");
    EXPECT_TRUE(dlq[0].body.empty());
    EXPECT_NE(dlq[0].headers["Fobs-Dlq-Body-Omitted"].find(std::to_string(e.body.size()) + " bytes"),
              std::string::npos);
    EXPECT_NE(dlq[0].headers["Fobs-Dlq-Reason"].find("max_payload"), std::string::npos);
    EXPECT_EQ(dlq[0].headers["Nats-Msg-Id"], "too-big:dlq:0");
    json entry = admin(*t, {{"op", "dlq_list"}})["entries"][0];
    EXPECT_NE(entry.value("body_omitted", ""), "") << entry.dump();
    EXPECT_ANY_THROW(admin(*t, {{"op", "dlq_replay"}, {"seq", entry["dlq_seq"]}}))
        << "an empty body must not be replayed as the event";
    EXPECT_EQ(raw.messages("f_big").size(), 1u);
    t->stop();
}

TEST_F(RefusalTest, stream_max_msg_size_refusal_is_permanent_not_retried) {
    // A stream created by someone else with a small max_msg_size: JetStream's PubAck error
    // 10054 cannot be cured by sending again.
    Raw raw(g_small->url());
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {"fmsgsize.mutation.>"};
    cfg.Name = "f_msgsize";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.MaxMsgSize = 1024;
    cfg.Duplicates = 120LL * 1'000'000'000;
    jsStreamInfo *si = nullptr;
    ASSERT_EQ(js_AddStream(&si, raw.js(), &cfg, nullptr, nullptr), NATS_OK);
    jsStreamInfo_Destroy(si);
    json c = base_config(g_small->url(), "msgsize");
    c["jetstream"]["dedup_window_minutes"] = 2;
    auto t = started(c, "msgsize");
    EventData e = make_event("over-1k");
    e.body = json{{"id", "over-1k"}, {"pad", std::string(3000, 'y')}}.dump();
    auto t0 = steady::now();
    Outcome o = t->publish_sync(e);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED) << o.reason;
    EXPECT_NE(o.reason.find("10054"), std::string::npos) << o.reason;
    EXPECT_LT(steady::now() - t0, 3s) << "refused at once, not after publish_max_attempts";
    auto dlq = raw.messages("f_msgsize_dlq");
    ASSERT_EQ(dlq.size(), 1u);
    EXPECT_EQ(dlq[0].body, e.body) << "the DLQ takes the body its own stream allows";
    EXPECT_EQ(t->publish_sync(make_event("fits")).kind, FOBS_OUTCOME_OK);
    t->stop();
}

// ---------------------------------------------------------------------------------------
// 3. No secret in status, logs or errors.

TEST_F(NatsFaultsTest, status_and_logs_never_show_the_url_password) {
    fobs_test::NatsServer nats({"--user", "u", "--pass", "Sup3rSecretPw"});
    json c = base_config("nats://u:Sup3rSecretPw@127.0.0.1:" + std::to_string(nats.port()), "redact");
    auto t = started(c, "redact");
    json st = admin(*t, {{"op", "status"}});
    EXPECT_EQ(st.dump().find("Sup3rSecretPw"), std::string::npos) << st.dump();
    EXPECT_NE(st["connection"].get<std::string>().find("connected to"), std::string::npos) << st.dump();
    // The CLI's `status` path: admin on an instance that was never started.
    auto cold = h.transport("nats", c.dump(), "redact_cold");
    json st2 = admin(*cold, {{"op", "status"}});
    EXPECT_EQ(st2.dump().find("Sup3rSecretPw"), std::string::npos) << st2.dump();
    // A closed connection and its reason.
    nats.stop();
    nats.set_extra_args({"--user", "u", "--pass", "other"});
    nats.start();
    std::string why;
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return !is_ready(*t, why) && why.find("closed") != std::string::npos; }, 20s))
        << why;
    EXPECT_EQ(why.find("Sup3rSecretPw"), std::string::npos) << why;
    try {
        auto cold2 = h.transport("nats", c.dump(), "redact_cold2");
        admin(*cold2, {{"op", "status"}});
    } catch (const std::exception &e) {
        EXPECT_EQ(std::string(e.what()).find("Sup3rSecretPw"), std::string::npos) << e.what();
    }
    t->stop();
    EXPECT_EQ(all_logs().find("Sup3rSecretPw"), std::string::npos) << all_logs();
}

// ---------------------------------------------------------------------------------------
// 4. URLs are checked at validate.

class NatsUrlTest : public ::testing::TestWithParam<BadConfig> {
  protected:
    Harness h;
};

TEST_P(NatsUrlTest, refused_naming_the_key_without_the_password) {
    fobs_test::expect_refused(h, ComponentKind::transport, "nats", GetParam());
    try {
        h.transport("nats", GetParam().config, "bad");
    } catch (const std::exception &e) {
        EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(
    Urls, NatsUrlTest,
    ::testing::Values(BadConfig{R"({"url":"::::not a url::::"})", "url", "is not a URL"},
                      BadConfig{R"({"url":"nats://"})", "url", "has no host"},
                      BadConfig{R"({"url":"nats://:4222"})", "url", "has no host"},
                      BadConfig{R"({"url":"nats://127.0.0.1:0"})", "url", "expected 1-65535"},
                      BadConfig{R"({"url":"nats://127.0.0.1:65536"})", "url", "expected 1-65535"},
                      BadConfig{R"({"url":"nats://u:hunter2@h:99999999"})", "url", "expected 1-65535"},
                      BadConfig{R"({"url":"u:hunter2@h:4222"})", "url", "is not a URL"},
                      BadConfig{R"({"url":"http://h:4222"})", "url", "scheme"},
                      BadConfig{R"({"url":"nats://a:4222, nats://b:port"})", "url", "entry 2"}),
    fobs_test::bad_config_name);

TEST(NatsUrlAccepted, every_scheme_nats_speaks_and_a_cluster_list) {
    Harness h;
    for (const char *u : {"nats://127.0.0.1:4222", "tls://nats.example.com:4443",
                          "ws://[::1]:8080", "wss://u:p@nats.example.com", "nats://a:1,nats://b:2"}) {
        EXPECT_NO_THROW(h.transport("nats", json{{"url", u}}.dump(), "ok")) << u;
    }
}

// ---------------------------------------------------------------------------------------
// 5. Shutdown with NATS gone is bounded.

TEST_F(NatsFaultsTest, stop_with_nats_gone_returns_quickly) {
    fobs_test::NatsServer nats;
    json c = base_config(nats.url(), "stop");
    auto t = started(c, "stop");
    std::atomic<int> delivered{0};
    auto consumer = t->open_consumer(spec(), [&](const fobs_event &, sdk::Completion done) {
        delivered++;
        done.ok();
    });
    ASSERT_EQ(t->publish_sync(make_event("one")).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(fobs_test::eventually([&] { return delivered == 1; }, 10s));
    nats.kill9();
    // Publishes in flight while NATS is gone: they wait for a PubAck that cannot come.
    std::atomic<int> completed{0};
    for (int i = 0; i < 20; ++i) {
        EventData e = make_event("in-flight-" + std::to_string(i));
        fobs_event v = e.view();
        t->publish(v, [&](const Outcome &) { completed++; });
    }
    std::this_thread::sleep_for(300ms);
    auto t0 = steady::now();
    consumer->close();
    t->stop();
    auto took = steady::now() - t0;
    EXPECT_LT(took, 2500ms) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                            << " ms";
    EXPECT_TRUE(fobs_test::eventually([&] { return completed == 20; }, 1s))
        << "every publish completed (RETRY) by stop()";
}

// ---------------------------------------------------------------------------------------
// 6. Default redelivery delays ride out a short receiver outage.

TEST_F(NatsFaultsTest, default_nak_delay_is_not_a_few_seconds) {
    fobs_test::NatsServer nats;
    json c = base_config(nats.url(), "nak");
    c["jetstream"]["max_deliver"] = 3; // the seed's
    auto t = started(c, "nak");
    ASSERT_EQ(t->publish_sync(make_event("receiver-down")).kind, FOBS_OUTCOME_OK);
    std::atomic<int> deliveries{0};
    auto consumer = t->open_consumer(spec(), [&](const fobs_event &, sdk::Completion done) {
        deliveries++;
        done.retry("503 from a receiver that is restarting");
    });
    ASSERT_TRUE(fobs_test::eventually([&] { return deliveries == 1; }, 10s));
    // The old schedule (1 s, then 5 s) had dead-lettered it after ~6 s.
    std::this_thread::sleep_for(7s);
    EXPECT_EQ(deliveries.load(), 1) << "redelivered too soon for a receiver restart";
    EXPECT_EQ(admin(*t, {{"op", "status"}})["dlq"]["depth"], 0);
    consumer->close();
    t->stop();
}

} // namespace

// ---------------------------------------------------------------------------------------
// 5b. The whole observer: SIGTERM while the NATS connection is closed (the server refused our
//     credentials after a restart) exits within shutdown_timeout_secs.

namespace {

TEST(NatsFaultsObserver, sigterm_with_the_nats_connection_closed_exits_within_the_shutdown_timeout) {
    fobs_test::PgCluster pg;
    pg.exec("CREATE DATABASE app");
    auto [code, sql] = fobs_test::run_command({fobs_test::observer_binary(), "sql"});
    ASSERT_EQ(code, 0) << sql;
    pg.exec(sql, "app");
    fobs_test::NatsServer nats({"--user", "obs", "--pass", "pw-ok"});
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
user        = "obs"
password    = "pw-ok"
stream_name = "shutdown_events"
subject_prefix = "shutdown.mutation"
[transport.nats.jetstream]
max_bytes = 67108864
)";
    fobs_test::ObserverProcess obs(config, {"--role", "publisher"});
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    auto emit = [&](int from, int to) {
        pg.exec("SELECT fraiseql_observer.emit('Order', 'INSERT', g::text, jsonb_build_object('id', g)) "
                "FROM generate_series(" + std::to_string(from) + ", " + std::to_string(to) + ") g", "app");
    };
    auto backlog = [&] { return std::stoi(pg.scalar("SELECT count(*) FROM fraiseql_observer.outbox", "app")); };
    emit(1, 50);
    ASSERT_TRUE(fobs_test::eventually([&] { return backlog() == 0; }, 30s)) << obs.log();

    // The server dies while publishes wait for their PubAck, and comes back refusing our
    // credentials: the connection is CLOSED with those publishes still on it.
    emit(51, 20050);
    ASSERT_TRUE(fobs_test::eventually([&] { return backlog() < 20000; }, 10s));
    nats.kill9();
    nats.set_extra_args({"--user", "obs", "--pass", "pw-changed"});
    nats.start();
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return obs.get("/readyz").second.find("closed") != std::string::npos; },
        20s))
        << obs.get("/readyz").second << "\n" << obs.log();
    std::this_thread::sleep_for(1s);
    auto t0 = steady::now();
    EXPECT_EQ(obs.stop(std::chrono::seconds(60)), 0) << obs.log();
    auto took = steady::now() - t0;
    std::cerr << "SIGTERM to exit: "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
    EXPECT_LT(took, 10s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                         << " ms\n" << obs.log();
    EXPECT_GT(backlog(), 0) << "unpublished rows stay in the outbox";
    EXPECT_EQ(obs.log().find("pw-ok"), std::string::npos);
}

} // namespace
