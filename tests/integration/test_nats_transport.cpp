// The `nats` transport against a real nats-server -js (one per test binary), loaded through
// the real host loader (harness). What JetStream holds is read back with raw cnats, and the
// reference document's external consumer is reproduced with the official Node.js client.
#include "harness.hpp"
#include "js_reader.hpp"
#include "nats_server.hpp"
#include "process.hpp"

#include <gtest/gtest.h>
#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace {

using fobs_test::Harness;
using fobs_test::make_event;
using fraiseql_observer::host::ConsumerSpec;
using fraiseql_observer::host::EventData;
using fraiseql_observer::host::InstanceError;
using fraiseql_observer::host::Outcome;
using fraiseql_observer::host::TransportInstance;
namespace sdk = fraiseql_observer::sdk;
using json = nlohmann::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

fobs_test::NatsServer *g_nats = nullptr;

// Raw cnats access to what the server holds.
struct Raw : fobs_test::JsReader {
    Raw() : JsReader(g_nats->url()) {}
};

// Per-test names so the tests share one server without overlapping subjects.
struct Names {
    std::string stream, prefix, dlq_prefix;
    explicit Names(const std::string &tag)
        : stream("t_" + tag), prefix("t" + tag + ".mutation"), dlq_prefix("t" + tag + ".dlq") {}
    json config(json extra = json::object()) const {
        json c = {{"url", g_nats->url()},
                  {"stream_name", stream},
                  {"subject_prefix", prefix},
                  {"dlq_prefix", dlq_prefix},
                  {"consumer_name", "worker"},
                  // JetStream reserves max_bytes per stream; the tests share one server.
                  {"jetstream", {{"max_bytes", 64 << 20}}}};
        for (auto &[k, v] : extra.items()) {
            if (k == "jetstream")
                for (auto &[jk, jv] : v.items()) c["jetstream"][jk] = jv;
            else
                c[k] = v;
        }
        return c;
    }
};

// Collects deliveries; `decide` chooses the outcome of each (called on the plugin's thread).
struct Sink {
    struct Seen {
        std::string id, entity_type, operation, entity_id;
        uint32_t delivery_count;
        uint64_t sequence;
        steady::time_point at;
    };
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Seen> seen;
    std::vector<sdk::Completion> held;
    std::function<void(const Seen &, sdk::Completion &)> decide = [](const Seen &,
                                                                     sdk::Completion &c) { c.ok(); };

    fraiseql_observer::host::DeliverFn fn() {
        return [this](const fobs_event &e, sdk::Completion done) {
            Seen s{std::string(sdk::view(e.id)), std::string(sdk::view(e.entity_type)),
                   std::string(sdk::view(e.operation)), std::string(sdk::view(e.entity_id)),
                   e.delivery_count, e.sequence, steady::now()};
            decide(s, done);
            std::lock_guard lk(mu);
            if (done.pending()) held.push_back(std::move(done));
            seen.push_back(s);
            cv.notify_all();
        };
    }
    size_t count() {
        std::lock_guard lk(mu);
        return seen.size();
    }
    std::vector<Seen> snapshot() {
        std::lock_guard lk(mu);
        return seen;
    }
};

ConsumerSpec spec(const std::string &pipeline = "orders", const std::string &consumer = "worker") {
    ConsumerSpec s;
    s.pipeline = pipeline;
    s.consumer_name = consumer;
    s.max_in_flight = 256;
    return s;
}

class NatsTransportTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        g_nats = new fobs_test::NatsServer();
        nats_Open(-1);
    }
    static void TearDownTestSuite() {
        delete g_nats;
        g_nats = nullptr;
    }

    std::unique_ptr<TransportInstance> started(const json &config, const std::string &name = "nats") {
        auto t = h.transport("nats", config.dump(), name);
        t->start();
        EXPECT_TRUE(fobs_test::eventually(
            [&] {
                std::string why;
                return t->ready(why);
            },
            10s));
        return t;
    }

    json admin(TransportInstance &t, const json &req) {
        auto answer = fobs_test::ask(t, req.dump());
        if (!answer) throw std::runtime_error("admin op unsupported");
        return json::parse(*answer);
    }

    Harness h;
};

// ---------------------------------------------------------------------------------------

TEST_F(NatsTransportTest, publishes_events_on_spec_subjects_with_msg_id_and_content_type) {
    Names n("pub");
    auto t = started(n.config());
    const int N = 300;
    std::atomic<int> ok{0}, other{0};
    for (int i = 0; i < N; ++i) {
        EventData e = make_event("id-" + std::to_string(i), i % 3 == 0 ? "User" : "Order",
                                 i % 2 == 0 ? "INSERT" : "UPDATE", std::to_string(i));
        fobs_event v = e.view();
        t->publish(v, [&](const Outcome &o) { (o.kind == FOBS_OUTCOME_OK ? ok : other)++; });
    }
    ASSERT_TRUE(fobs_test::eventually([&] { return ok + other == N; }, 20s));
    EXPECT_EQ(ok.load(), N);

    Raw raw;
    auto msgs = raw.messages(n.stream);
    ASSERT_EQ(msgs.size(), static_cast<size_t>(N));
    std::set<std::string> ids;
    for (const auto &m : msgs) {
        json body = json::parse(m.body);
        std::string want = n.prefix + "." + body["entity_type"].get<std::string>() + "." +
                           body["operation"].get<std::string>();
        EXPECT_EQ(m.subject, want);
        EXPECT_EQ(m.headers.at("Nats-Msg-Id"), body["id"].get<std::string>());
        EXPECT_EQ(m.headers.at("Content-Type"), "application/json");
        ids.insert(m.headers.at("Nats-Msg-Id"));
    }
    EXPECT_EQ(ids.size(), static_cast<size_t>(N));
    t->stop();
}

TEST_F(NatsTransportTest, same_event_published_twice_is_stored_once) {
    Names n("dup");
    auto t = started(n.config());
    EventData e = make_event("the-same-id");
    EXPECT_EQ(t->publish_sync(e).kind, FOBS_OUTCOME_OK);
    EXPECT_EQ(t->publish_sync(e).kind, FOBS_OUTCOME_OK); // a duplicate is still "stored"
    Raw raw;
    EXPECT_EQ(raw.count(n.stream), 1u);
    t->stop();
}

TEST_F(NatsTransportTest, node_client_consumes_what_we_published_like_the_reference_consumer) {
    // The reference names: stream fraiseql_events, subjects fraiseql.mutation.<Type>.<OP>.
    json config = {{"url", g_nats->url()}, {"jetstream", {{"max_bytes", 64 << 20}}}};
    auto t = started(config);
    std::vector<std::string> order_ids;
    for (int i = 0; i < 5; ++i) {
        EventData e = make_event("order-" + std::to_string(i), "Order", "INSERT", std::to_string(i));
        order_ids.push_back(e.id);
        ASSERT_EQ(t->publish_sync(e).kind, FOBS_OUTCOME_OK);
    }
    ASSERT_EQ(t->publish_sync(make_event("user-1", "User", "INSERT")).kind, FOBS_OUTCOME_OK);
    ASSERT_EQ(t->publish_sync(make_event("order-upd", "Order", "UPDATE")).kind, FOBS_OUTCOME_OK);

    auto [rc, out] = fobs_test::run_command(
        {"node", std::string(FOBS_TEST_SOURCE_DIR) + "/tests/node/nats_consumer.js", "--url",
         g_nats->url(), "--subject", "fraiseql.mutation.Order.INSERT", "--durable",
         "email-service-order-handler", "--stream", "fraiseql_events", "--count", "5"},
        {}, 30s);
    ASSERT_EQ(rc, 0) << out;
    std::vector<std::string> got;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] != '{') continue;
        json j = json::parse(line);
        EXPECT_EQ(j["subject"], "fraiseql.mutation.Order.INSERT");
        EXPECT_EQ(j["msg_id"], j["id"]);
        got.push_back(j["id"]);
    }
    EXPECT_EQ(got, order_ids);
    // The Node consumer acked: its durable has nothing pending.
    Raw raw;
    jsConsumerInfo *ci = nullptr;
    ASSERT_EQ(js_GetConsumerInfo(&ci, raw.js(), "fraiseql_events", "email-service-order-handler",
                                 nullptr, nullptr),
              NATS_OK);
    EXPECT_EQ(ci->NumAckPending, 0);
    EXPECT_EQ(ci->NumPending, 0u);
    jsConsumerInfo_Destroy(ci);
    t->stop();
}

TEST_F(NatsTransportTest, transient_failure_twice_then_success_redelivers_after_the_delays) {
    Names n("retry");
    auto t = started(n.config({{"jetstream", {{"max_deliver", 5}, {"backoff_secs", {0.4, 0.8}}}}}));
    ASSERT_EQ(t->publish_sync(make_event("flaky")).kind, FOBS_OUTCOME_OK);
    Sink sink;
    std::atomic<int> oks{0};
    sink.decide = [&](const Sink::Seen &s, sdk::Completion &c) {
        if (s.delivery_count < 3) c.retry("503 from peer");
        else {
            oks++;
            c.ok();
        }
    };
    auto consumer = t->open_consumer(spec(), sink.fn());
    ASSERT_TRUE(fobs_test::eventually([&] { return oks == 1; }, 10s));
    std::this_thread::sleep_for(1200ms); // nothing more may come
    auto seen = sink.snapshot();
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(oks.load(), 1);
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(seen[i].id, "flaky");
        EXPECT_EQ(seen[i].delivery_count, i + 1);
        EXPECT_EQ(seen[i].entity_type, "Order");
        EXPECT_EQ(seen[i].operation, "INSERT");
        EXPECT_EQ(seen[i].entity_id, "42");
        EXPECT_EQ(seen[i].sequence, 1u);
    }
    auto gap1 = seen[1].at - seen[0].at, gap2 = seen[2].at - seen[1].at;
    EXPECT_GE(gap1, 350ms);
    EXPECT_GE(gap2, 750ms);
    EXPECT_LT(gap2, 3s);
    consumer->close();
    json st = admin(*t, {{"op", "status"}, {"consumer", "worker"}});
    EXPECT_EQ(st["consumer"]["num_ack_pending"], 0);
    EXPECT_EQ(st["consumer"]["num_pending"], 0);
    EXPECT_EQ(st["dlq"]["depth"], 0);
    t->stop();
}

// Filters applied once (issue 16): one entity type and one operation become the consumer's
// FilterSubject, so JetStream never hands out the other events (the consumer's counts show it);
// the transport tells the host it filtered.
TEST_F(NatsTransportTest, a_single_type_filter_is_the_consumer_filter_subject_and_others_are_never_fetched) {
    Names n("filter1");
    auto t = started(n.config());
    ASSERT_EQ(t->publish_sync(make_event("f-order", "Order", "INSERT")).kind, FOBS_OUTCOME_OK);
    ASSERT_EQ(t->publish_sync(make_event("f-user", "User", "INSERT")).kind, FOBS_OUTCOME_OK);
    ASSERT_EQ(t->publish_sync(make_event("f-upd", "Order", "UPDATE")).kind, FOBS_OUTCOME_OK);
    Sink sink;
    auto s = spec("orders", "only_order_inserts");
    s.entity_types = {"Order"};
    s.operations = {"INSERT"};
    auto consumer = t->open_consumer(s, sink.fn());
    EXPECT_TRUE(consumer->filters_applied());
    ASSERT_TRUE(fobs_test::eventually([&] { return sink.count() == 1; }, 10s));
    std::this_thread::sleep_for(500ms);
    ASSERT_EQ(sink.count(), 1u);
    EXPECT_EQ(sink.snapshot()[0].id, "f-order");
    json st = admin(*t, {{"op", "status"}, {"consumer", "only_order_inserts"}});
    // Handed out by JetStream: the one matching event only; the stream holds three.
    EXPECT_EQ(st["stream"]["messages"], 3);
    EXPECT_EQ(st["consumer"]["num_pending"], 0);
    EXPECT_EQ(st["consumer"]["num_delivered"], 1) << st.dump();
    Raw raw;
    EXPECT_EQ(raw.consumer_filter(n.stream, "only_order_inserts"), n.prefix + ".Order.INSERT");
    consumer->close();
    t->stop();
}

// Several types cannot be one filter subject on nats-server 2.9 (FilterSubjects is 2.10+, and
// cnats 3.4.1 cannot send it): the transport filters right after the fetch and acks the rest,
// still only once.
TEST_F(NatsTransportTest, several_types_are_filtered_by_the_transport_and_the_rest_acked) {
    Names n("filterN");
    auto t = started(n.config());
    for (const char *type : {"Order", "User", "Invoice"})
        ASSERT_EQ(t->publish_sync(make_event(std::string("m-") + type, type, "INSERT")).kind, FOBS_OUTCOME_OK);
    Sink sink;
    auto s = spec("two", "two_types");
    s.entity_types = {"Order", "Invoice"};
    auto consumer = t->open_consumer(s, sink.fn());
    EXPECT_TRUE(consumer->filters_applied());
    ASSERT_TRUE(fobs_test::eventually([&] { return sink.count() == 2; }, 10s));
    std::this_thread::sleep_for(500ms);
    ASSERT_EQ(sink.count(), 2u);
    for (const auto &seen : sink.snapshot()) EXPECT_NE(seen.entity_type, "User");
    ASSERT_TRUE(fobs_test::eventually([&] {
        json st = admin(*t, {{"op", "status"}, {"consumer", "two_types"}});
        return st["consumer"]["num_ack_pending"] == 0 && st["consumer"]["num_pending"] == 0;
    }, 5s)) << "the unwanted event was acked, not left to redeliver";
    Raw raw;
    EXPECT_EQ(raw.consumer_filter(n.stream, "two_types"), "");
    EXPECT_EQ(admin(*t, {{"op", "status"}, {"consumer", "two_types"}})["consumer"]["num_delivered"], 3)
        << "fetched all three; the transport, not the host, dropped the User event";
    consumer->close();
    t->stop();
}

// issue 14 item 4: the host passes the pipeline's longest action attempt; an ack_wait below
// twice that is warned about when the consumer is set up.
TEST_F(NatsTransportTest, ack_wait_shorter_than_twice_the_longest_attempt_is_warned_about) {
    Names n("ackwarn");
    auto t = started(n.config({{"jetstream", {{"ack_wait_secs", 5}}}}));
    Sink sink;
    auto s = spec("slowpipe", "slow_worker");
    s.max_attempt_ms = 4000;
    auto consumer = t->open_consumer(s, sink.fn());
    EXPECT_TRUE(fobs_test::eventually(
        [&] { return h.logged("JetStream redelivers an unacknowledged event after 5000 ms, but one action attempt may take 4000 ms; raise jetstream.ack_wait_secs to at least 8 s"); },
        5s));
    consumer->close();
    auto s2 = spec("fastpipe", "fast_worker");
    s2.max_attempt_ms = 2500;
    auto ok = t->open_consumer(s2, sink.fn());
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(h.logged("may take 2500 ms"));
    ok->close();
    t->stop();
}

TEST_F(NatsTransportTest, retry_after_from_the_action_wins_over_the_backoff) {
    Names n("retryafter");
    auto t = started(n.config({{"jetstream", {{"max_deliver", 5}, {"backoff_secs", {5}}}}}));
    ASSERT_EQ(t->publish_sync(make_event("ra")).kind, FOBS_OUTCOME_OK);
    Sink sink;
    sink.decide = [&](const Sink::Seen &s, sdk::Completion &c) {
        if (s.delivery_count == 1) c.retry("429", 300ms);
        else c.ok();
    };
    auto consumer = t->open_consumer(spec(), sink.fn());
    ASSERT_TRUE(fobs_test::eventually([&] { return sink.count() == 2; }, 4s));
    auto seen = sink.snapshot();
    EXPECT_GE(seen[1].at - seen[0].at, 250ms);
    EXPECT_LT(seen[1].at - seen[0].at, 3s); // not the 5 s backoff
    consumer->close();
    t->stop();
}

TEST_F(NatsTransportTest, permanent_failure_goes_to_dlq_then_replay_processes_it_again) {
    Names n("dlq");
    auto t = started(n.config());
    EventData e = make_event("poison", "Order", "UPDATE", "7");
    ASSERT_EQ(t->publish_sync(e).kind, FOBS_OUTCOME_OK);
    Sink sink;
    std::atomic<bool> heal{false};
    sink.decide = [&](const Sink::Seen &, sdk::Completion &c) {
        if (heal) c.ok();
        else c.fail("422 Unprocessable Entity");
    };
    auto consumer = t->open_consumer(spec("orders"), sink.fn());
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["dlq"]["depth"] == 1; }, 10s));
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(sink.count(), 1u) << "a terminated message must not come back";

    json list = admin(*t, {{"op", "dlq_list"}, {"limit", 10}});
    ASSERT_EQ(list["entries"].size(), 1u);
    json entry = list["entries"][0];
    EXPECT_EQ(entry["id"], "poison");
    EXPECT_EQ(entry["subject"], n.prefix + ".Order.UPDATE");
    EXPECT_EQ(entry["dlq_subject"], n.dlq_prefix + ".Order.UPDATE");
    EXPECT_EQ(entry["reason"], "422 Unprocessable Entity");
    EXPECT_EQ(entry["delivery_count"], 1);
    EXPECT_EQ(entry["original_seq"], 1);
    EXPECT_EQ(entry["original_stream"], n.stream);
    json shown = admin(*t, {{"op", "dlq_show"}, {"seq", entry["dlq_seq"]}});
    EXPECT_EQ(shown["body"], e.body) << "the DLQ keeps the body unchanged";
    Raw raw;
    auto dlq_msgs = raw.messages(n.stream + "_dlq");
    ASSERT_EQ(dlq_msgs.size(), 1u);
    EXPECT_EQ(dlq_msgs[0].headers["Nats-Msg-Id"], "poison:dlq:1");
    EXPECT_EQ(dlq_msgs[0].headers["Fobs-Original-Sequence"], "1");
    EXPECT_EQ(h.metric("events_dead_lettered_total", {{"pipeline", "orders"}}), 1);
    // The depth gauge follows the DLQ stream (refreshed every 5 s by the consumer's ticker).
    EXPECT_TRUE(fobs_test::eventually(
        [&] { return h.metric("dlq_depth", {{"transport", "nats"}}) == 1; }, 12s));

    heal = true;
    json replay = admin(*t, {{"op", "dlq_replay"}, {"seq", entry["dlq_seq"]}});
    ASSERT_EQ(replay["replayed"], 1);
    EXPECT_EQ(replay["entries"][0]["seq"], 2) << "republished as stream seq 2";
    ASSERT_TRUE(fobs_test::eventually([&] { return sink.count() == 2; }, 10s));
    auto seen = sink.snapshot();
    EXPECT_EQ(seen[1].id, "poison") << "the body's id survives the replay";
    EXPECT_EQ(seen[1].delivery_count, 1u);
    EXPECT_EQ(admin(*t, {{"op", "status"}})["dlq"]["depth"], 0);
    EXPECT_TRUE(fobs_test::eventually(
        [&] { return h.metric("dlq_depth", {{"transport", "nats"}}) == 0; }, 12s))
        << "the gauge falls after the replay";
    auto stored = raw.messages(n.stream);
    ASSERT_EQ(stored.size(), 2u);
    EXPECT_EQ(stored[1].headers["Nats-Msg-Id"],
              "poison:replay:" + std::to_string(entry["dlq_seq"].get<uint64_t>()));
    EXPECT_EQ(stored[1].body, e.body);

    // Replay of every entry at once ("all": what `dlq replay --all` sends).
    heal = false;
    ASSERT_EQ(t->publish_sync(make_event("poison-a")).kind, FOBS_OUTCOME_OK);
    ASSERT_EQ(t->publish_sync(make_event("poison-b")).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["dlq"]["depth"] == 2; }, 10s));
    heal = true;
    json all = admin(*t, {{"op", "dlq_replay"}, {"all", true}});
    ASSERT_EQ(all["replayed"], 2);
    std::set<std::string> replayed_ids;
    for (const auto &x : all["entries"]) replayed_ids.insert(x["id"].get<std::string>());
    EXPECT_EQ(replayed_ids, (std::set<std::string>{"poison-a", "poison-b"}));
    ASSERT_TRUE(fobs_test::eventually([&] { return sink.count() == 6; }, 10s)) << sink.count();
    EXPECT_EQ(admin(*t, {{"op", "status"}})["dlq"]["depth"], 0);
    consumer->close();

    // Purge: a second failure, then dlq_purge empties the DLQ.
    heal = false;
    ASSERT_EQ(t->publish_sync(make_event("poison-2")).kind, FOBS_OUTCOME_OK);
    consumer = t->open_consumer(spec("orders"), sink.fn());
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["dlq"]["depth"] == 1; }, 10s));
    EXPECT_EQ(admin(*t, {{"op", "dlq_purge"}})["purged"], 1);
    EXPECT_EQ(admin(*t, {{"op", "status"}})["dlq"]["depth"], 0);
    consumer->close();
    EXPECT_THROW(admin(*t, {{"op", "no_such_op"}}), std::exception);
    t->stop();
}

TEST_F(NatsTransportTest, last_allowed_delivery_failing_goes_to_dlq) {
    Names n("maxdel");
    auto t = started(n.config({{"jetstream", {{"max_deliver", 2}, {"backoff_secs", {0.2}}}}}));
    ASSERT_EQ(t->publish_sync(make_event("always-503")).kind, FOBS_OUTCOME_OK);
    Sink sink;
    sink.decide = [](const Sink::Seen &, sdk::Completion &c) { c.retry("503"); };
    auto consumer = t->open_consumer(spec(), sink.fn());
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["dlq"]["depth"] == 1; }, 10s));
    json entry = admin(*t, {{"op", "dlq_list"}})["entries"][0];
    EXPECT_EQ(entry["delivery_count"], 2);
    EXPECT_NE(entry["reason"].get<std::string>().find("max deliveries"), std::string::npos)
        << entry.dump();
    EXPECT_NE(entry["reason"].get<std::string>().find("503"), std::string::npos);
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(sink.count(), 2u);
    consumer->close();
    t->stop();
}

TEST_F(NatsTransportTest, long_action_is_kept_alive_instead_of_redelivered) {
    Names n("slow");
    auto t = started(n.config({{"jetstream", {{"ack_wait_secs", 1}}}}));
    ASSERT_EQ(t->publish_sync(make_event("slow-one")).kind, FOBS_OUTCOME_OK);
    Sink sink;
    sink.decide = [](const Sink::Seen &, sdk::Completion &) {}; // held by the sink
    auto consumer = t->open_consumer(spec(), sink.fn());
    ASSERT_TRUE(fobs_test::eventually([&] { return sink.count() == 1; }, 5s));
    std::this_thread::sleep_for(3s); // three ack waits
    EXPECT_EQ(sink.count(), 1u) << "in-progress must keep the message from being redelivered";
    {
        std::lock_guard lk(sink.mu);
        ASSERT_EQ(sink.held.size(), 1u);
        sink.held[0].ok();
    }
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["consumer"]["num_ack_pending"] == 0; }, 5s));
    consumer->close();
    t->stop();
}

// A raw cnats worker on the same durable, standing in for a worker that dies or terminates
// a message outside our DLQ path.
struct RawWorker {
    Raw raw;
    natsSubscription *sub = nullptr;
    RawWorker(const std::string &stream, const std::string &durable) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = stream.c_str();
        so.Consumer = durable.c_str();
        so.ManualAck = true;
        if (js_PullSubscribe(&sub, raw.js(), ">", durable.c_str(), nullptr, &so, nullptr) != NATS_OK)
            throw std::runtime_error("raw pull subscribe");
    }
    ~RawWorker() { natsSubscription_Destroy(sub); }
    natsMsg *fetch_one() {
        natsMsgList list{};
        if (natsSubscription_Fetch(&list, sub, 1, 3000, nullptr) != NATS_OK || list.Count != 1) {
            natsMsgList_Destroy(&list);
            return nullptr;
        }
        natsMsg *m = list.Msgs[0];
        list.Msgs[0] = nullptr;
        natsMsgList_Destroy(&list);
        return m;
    }
};

TEST_F(NatsTransportTest, safety_net_copies_a_message_terminated_outside_our_dlq_path) {
    Names n("term");
    auto t = started(n.config());
    // Provision the durable through the plugin, then let a foreign worker hold a message.
    {
        Sink idle;
        t->open_consumer(spec(), idle.fn())->close();
    }
    ASSERT_EQ(t->publish_sync(make_event("foreign-term")).kind, FOBS_OUTCOME_OK);
    RawWorker foreign(n.stream, "worker");
    natsMsg *m = foreign.fetch_one();
    ASSERT_NE(m, nullptr);
    Sink sink;
    auto consumer = t->open_consumer(spec("orders_term"), sink.fn());
    ASSERT_EQ(natsMsg_Term(m, nullptr), NATS_OK);
    natsMsg_Destroy(m);
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["dlq"]["depth"] == 1; }, 10s));
    json entry = admin(*t, {{"op", "dlq_list"}})["entries"][0];
    EXPECT_EQ(entry["id"], "foreign-term");
    EXPECT_NE(entry["reason"].get<std::string>().find("terminated"), std::string::npos);
    EXPECT_EQ(entry["original_seq"], 1);
    EXPECT_EQ(sink.count(), 0u);
    EXPECT_EQ(h.metric("events_dead_lettered_total", {{"pipeline", "orders_term"}}), 1);
    consumer->close();
    t->stop();
}

// A worker that dies holding the message's last allowed delivery: JetStream's own MaxDeliver
// would stop there (the message reaching the DLQ only through the advisory, unattempted, or
// lost when the advisory is missed). The consumer is provisioned with MaxDeliver -1 and the
// plugin counts: the next delivery (3 > max_deliver 2) is attempted once more; its failure
// goes to the DLQ at once.
TEST_F(NatsTransportTest, message_whose_worker_died_on_its_last_delivery_is_attempted_once_more) {
    Names n("maxadv");
    auto t = started(n.config({{"jetstream", {{"max_deliver", 2}, {"ack_wait_secs", 1}}}}));
    {
        Sink idle;
        t->open_consumer(spec(), idle.fn())->close();
    }
    fobs_test::JsReader js(g_nats->url());
    ASSERT_EQ(js.consumer_max_deliver(n.stream, "worker"), -1) << "JetStream must not count";
    ASSERT_EQ(t->publish_sync(make_event("worker-died")).kind, FOBS_OUTCOME_OK);
    {
        // A worker that takes the message and dies without an answer, twice.
        RawWorker dying(n.stream, "worker");
        natsMsg *m1 = dying.fetch_one();
        ASSERT_NE(m1, nullptr);
        natsMsg_Destroy(m1);
        natsMsg *m2 = dying.fetch_one(); // redelivered after ack_wait
        ASSERT_NE(m2, nullptr);
        natsMsg_Destroy(m2);
    }
    Sink sink;
    sink.decide = [](const Sink::Seen &, sdk::Completion &c) { c.retry("still down"); };
    auto consumer = t->open_consumer(spec(), sink.fn());
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["dlq"]["depth"] == 1; }, 10s))
        << "the failing attempt on delivery 3 was not dead-lettered";
    json entry = admin(*t, {{"op", "dlq_list"}})["entries"][0];
    EXPECT_EQ(entry["id"], "worker-died");
    EXPECT_NE(entry["reason"].get<std::string>().find("max deliveries (2) reached; last error: still down"),
              std::string::npos)
        << entry.dump();
    auto seen = sink.snapshot();
    ASSERT_EQ(seen.size(), 1u) << "attempted exactly once";
    EXPECT_EQ(seen[0].delivery_count, 3u);
    consumer->close();
    t->stop();
}

TEST_F(NatsTransportTest, server_down_for_5s_during_publishing_loses_nothing_stores_nothing_twice) {
    Names n("restart");
    auto t = started(n.config({{"publish_timeout_ms", 1000}, {"publish_max_attempts", 20}}));
    const int N = 2000;
    std::atomic<int> confirmed{0};
    std::mutex mu;
    std::vector<std::string> to_retry;
    std::atomic<int> retried{0};
    // Like a source: events whose completion says RETRY are published again.
    std::function<void(const std::string &)> publish_id = [&](const std::string &id) {
        EventData e = make_event(id);
        fobs_event v = e.view();
        t->publish(v, [&, id](const Outcome &o) {
            if (o.kind == FOBS_OUTCOME_OK) confirmed++;
            else {
                retried++;
                std::lock_guard lk(mu);
                to_retry.push_back(id);
            }
        });
    };
    std::thread producer([&] {
        for (int i = 0; i < N; ++i) {
            publish_id("evt-" + std::to_string(i));
            std::this_thread::sleep_for(4ms); // ~250/s over ~8 s
        }
    });
    std::this_thread::sleep_for(1500ms);
    g_nats->stop();
    std::this_thread::sleep_for(5s);
    g_nats->start();
    producer.join();
    ASSERT_TRUE(fobs_test::eventually(
        [&] {
            std::vector<std::string> again;
            {
                std::lock_guard lk(mu);
                again.swap(to_retry);
            }
            for (auto &id : again) publish_id(id);
            return confirmed == N;
        },
        60s))
        << "confirmed " << confirmed << " of " << N;
    Raw raw;
    auto msgs = raw.messages(n.stream);
    std::set<std::string> ids;
    for (auto &m : msgs) ids.insert(m.headers["Nats-Msg-Id"]);
    EXPECT_EQ(ids.size(), static_cast<size_t>(N)) << "lost events";
    EXPECT_EQ(msgs.size(), static_cast<size_t>(N)) << "events stored twice";
    std::cerr << "source-level re-publishes after RETRY: " << retried << "\n";
    t->stop();
}

TEST_F(NatsTransportTest, existing_stream_with_another_max_age_is_updated_at_startup) {
    Names n("maxage");
    Raw raw;
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    std::string subject = n.prefix + ".>";
    const char *subjects[] = {subject.c_str()};
    cfg.Name = n.stream.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.MaxAge = 86400LL * 1'000'000'000; // 1 day
    jsStreamInfo *si = nullptr;
    ASSERT_EQ(js_AddStream(&si, raw.js(), &cfg, nullptr, nullptr), NATS_OK);
    jsStreamInfo_Destroy(si);

    auto t = started(n.config({{"jetstream", {{"max_age_days", 3}, {"dedup_window_minutes", 2}}}}));
    ASSERT_EQ(js_GetStreamInfo(&si, raw.js(), n.stream.c_str(), nullptr, nullptr), NATS_OK);
    EXPECT_EQ(si->Config->MaxAge, 3 * 86400LL * 1'000'000'000);
    EXPECT_EQ(si->Config->Duplicates, 120LL * 1'000'000'000);
    jsStreamInfo_Destroy(si);
    EXPECT_TRUE(h.logged("max_age 1d -> 3d")) << "the change is logged";
    t->stop();
}

TEST_F(NatsTransportTest, impossible_stream_change_is_a_clear_startup_error) {
    Names n("storage");
    auto t1 = started(n.config());
    t1->stop();
    auto t2 = h.transport("nats", n.config({{"jetstream", {{"storage", "memory"}}}}).dump(), "nats2");
    try {
        t2->start();
        FAIL() << "start() accepted a storage type change";
    } catch (const InstanceError &e) {
        EXPECT_NE(std::string(e.what()).find("storage"), std::string::npos) << e.what();
    }
}

TEST_F(NatsTransportTest, unreachable_at_start_is_not_ready_then_recovers) {
    fobs_test::NatsServer later;
    later.stop();
    Names n("late");
    json c = n.config();
    c["url"] = later.url();
    auto t = h.transport("nats", c.dump(), "late");
    t->start(); // must not fail
    std::string why;
    EXPECT_FALSE(t->ready(why));
    EXPECT_FALSE(why.empty());
    later.start();
    ASSERT_TRUE(fobs_test::eventually([&] { return t->ready(why); }, 15s)) << why;
    EXPECT_EQ(t->publish_sync(make_event("after-recovery")).kind, FOBS_OUTCOME_OK);
    t->stop();
}

TEST_F(NatsTransportTest, bad_config_is_refused_with_the_key_path) {
    auto key_of = [&](const json &config) -> std::string {
        try {
            h.transport("nats", config.dump(), "bad");
        } catch (const InstanceError &e) {
            return e.key_path() + " | " + e.what();
        }
        return "accepted";
    };
    EXPECT_EQ(key_of({{"stream_name", "fraiseql.events"}}).rfind("stream_name |", 0), 0u);
    EXPECT_EQ(key_of({{"subject_prefix", "a.*"}}).rfind("subject_prefix |", 0), 0u);
    std::string typo = key_of({{"jetstream", {{"max_delivr", 3}}}});
    EXPECT_EQ(typo.rfind("jetstream.max_delivr |", 0), 0u) << typo;
    EXPECT_NE(typo.find("did you mean `max_deliver`"), std::string::npos) << typo;
    EXPECT_EQ(key_of({{"jetstream", {{"max_deliver", "3"}}}}).rfind("jetstream.max_deliver |", 0), 0u);
    EXPECT_EQ(key_of({{"jetstream", {{"max_deliver", 2}, {"backoff_secs", {1, 2}}}}})
                  .rfind("jetstream.backoff_secs |", 0),
              0u);
    EXPECT_EQ(key_of({{"jetstream", {{"storage", "disk"}}}}).rfind("jetstream.storage |", 0), 0u);
    EXPECT_EQ(key_of({{"urll", "nats://x"}}).rfind("urll |", 0), 0u);
    // A dedup window shorter than the publish retry horizon is accepted with a warning.
    EXPECT_EQ(key_of({{"publish_timeout_ms", 60000}, {"jetstream", {{"dedup_window_minutes", 1}}}}),
              "accepted");
    EXPECT_TRUE(h.logged("shorter than the publish retry horizon"));
}

} // namespace
