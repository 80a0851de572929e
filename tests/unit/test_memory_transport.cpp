// The `memory` transport through the real host loader and instances: durable-log semantics
// (dedup, named consumers, ack wait, delayed redelivery, dead letters), back-pressure, admin ops
// and config errors. In-process only, no servers.
#include "harness.hpp"
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace {

namespace host = fraiseql_observer::host;
namespace sdk = fraiseql_observer::sdk;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Every delivery a consumer saw, and what to do with its token.
struct Recorder {
    struct Got {
        host::EventData event;
        Clock::time_point at;
    };
    // Decides the outcome; the default acknowledges.
    std::function<void(const host::EventData &, sdk::Completion)> on_deliver =
        [](const host::EventData &, sdk::Completion done) { done.ok(); };

    std::mutex mu;
    std::condition_variable cv;
    std::vector<Got> got;

    host::DeliverFn fn() {
        return [this](const fobs_event &e, sdk::Completion done) {
            auto ev = host::EventData::from(e);
            {
                std::lock_guard lock(mu);
                got.push_back({ev, Clock::now()});
                cv.notify_all();
            }
            on_deliver(ev, std::move(done));
        };
    }
    bool wait_for(size_t n, std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, timeout, [&] { return got.size() >= n; });
    }
    size_t size() {
        std::lock_guard lock(mu);
        return got.size();
    }
    std::vector<Got> snapshot() {
        std::lock_guard lock(mu);
        return got;
    }
};

host::ConsumerSpec spec(const std::string &name, uint32_t max_in_flight = 64,
                        const std::string &pipeline = "orders") {
    host::ConsumerSpec s;
    s.pipeline = pipeline;
    s.consumer_name = name;
    s.max_in_flight = max_in_flight;
    return s;
}

json admin(host::TransportInstance &t, const json &req) {
    auto answer = fobs_test::ask(t, req.dump());
    if (!answer) throw std::runtime_error("admin op unsupported: " + req.dump());
    return json::parse(*answer);
}

std::string id_of(int i) { return "00000000-0000-4000-8000-" + std::to_string(100000000000 + i); }

class MemoryTransport : public ::testing::Test {
  protected:
    fobs_test::Harness h;
    std::unique_ptr<host::TransportInstance> make(const std::string &config = "{}") {
        auto t = h.transport("memory", config, "mem");
        t->start();
        return t;
    }
};

TEST_F(MemoryTransport, publishes_and_delivers_each_event_once_with_delivery_count_1) {
    auto t = make();
    // Half published before any consumer exists: they are retained for the first one.
    for (int i = 0; i < 50; ++i)
        ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(i))).kind, FOBS_OUTCOME_OK);
    Recorder rec;
    auto c = t->open_consumer(spec("worker"), rec.fn());
    for (int i = 50; i < 100; ++i)
        ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(i))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(rec.wait_for(100));
    std::this_thread::sleep_for(100ms);
    auto got = rec.snapshot();
    ASSERT_EQ(got.size(), 100u);
    std::set<std::string> ids;
    uint64_t last_seq = 0;
    for (const auto &g : got) {
        EXPECT_EQ(g.event.delivery_count, 1u);
        EXPECT_GT(g.event.sequence, last_seq); // in order
        last_seq = g.event.sequence;
        EXPECT_EQ(g.event.entity_type, "Order");
        EXPECT_EQ(g.event.body, fobs_test::make_event(g.event.id).body);
        ids.insert(g.event.id);
    }
    EXPECT_EQ(ids.size(), 100u);
    // Acked by the only consumer group: nothing is held any more.
    ASSERT_TRUE(fobs_test::eventually([&] { return admin(*t, {{"op", "status"}})["messages"] == 0; },
                                      2s));
    json st = admin(*t, {{"op", "status"}});
    EXPECT_EQ(st["transport"], "memory");
    EXPECT_EQ(st["bytes"], 0);
    EXPECT_EQ(st["dlq_depth"], 0);
    ASSERT_EQ(st["consumers"].size(), 1u);
    EXPECT_EQ(st["consumers"][0]["name"], "worker");
    EXPECT_EQ(st["consumers"][0]["pending"], 0);
    EXPECT_EQ(st["consumers"][0]["ack_pending"], 0);
    EXPECT_EQ(st["consumers"][0]["redelivered"], 0);
    EXPECT_TRUE(st["consumer"].is_null());
    json one = admin(*t, {{"op", "status"}, {"consumer", "worker"}})["consumer"];
    EXPECT_EQ(one["name"], "worker");
    EXPECT_EQ(one["pending"], 0);
    EXPECT_TRUE(admin(*t, {{"op", "status"}, {"consumer", "nobody"}})["consumer"].is_null());
    EXPECT_EQ(h.metric("transport_stored_total", {{"transport", "mem"}}), 100.0);
    EXPECT_EQ(h.metric("consumer_pending", {{"pipeline", "orders"}}), 0.0);
    EXPECT_EQ(h.metric("consumer_ack_pending", {{"pipeline", "orders"}}), 0.0);
}

TEST_F(MemoryTransport, status_counts_messages_bytes_and_pending_before_consumption) {
    auto t = make();
    Recorder rec;
    std::vector<sdk::Completion> held;
    std::mutex held_mu;
    rec.on_deliver = [&](const host::EventData &, sdk::Completion done) {
        std::lock_guard lock(held_mu);
        held.push_back(std::move(done));
    };
    size_t bytes = 0;
    for (int i = 0; i < 5; ++i) {
        auto e = fobs_test::make_event(id_of(i));
        bytes += e.body.size();
        ASSERT_EQ(t->publish_sync(e).kind, FOBS_OUTCOME_OK);
    }
    json st = admin(*t, {{"op", "status"}});
    EXPECT_EQ(st["messages"], 5);
    EXPECT_EQ(st["bytes"], bytes);
    auto c = t->open_consumer(spec("worker", 2), rec.fn());
    ASSERT_TRUE(rec.wait_for(2));
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(rec.size(), 2u); // max_in_flight bounds un-settled deliveries
    st = admin(*t, {{"op", "status"}});
    EXPECT_EQ(st["consumers"][0]["pending"], 3);
    EXPECT_EQ(st["consumers"][0]["ack_pending"], 2);
    EXPECT_EQ(h.metric("consumer_pending", {{"pipeline", "orders"}}), 3.0);
    EXPECT_EQ(h.metric("consumer_ack_pending", {{"pipeline", "orders"}}), 2.0);
    {
        std::lock_guard lock(held_mu);
        for (auto &d : held) d.ok();
    }
    ASSERT_TRUE(rec.wait_for(4));
    {
        std::lock_guard lock(held_mu);
        for (auto &d : held) d.ok(); // completes the new ones; completed ones are no-ops
    }
    ASSERT_TRUE(rec.wait_for(5));
    ASSERT_TRUE(fobs_test::eventually(
        [&] {
            std::lock_guard lock(held_mu);
            for (auto &d : held) d.ok();
            return admin(*t, {{"op", "status"}})["messages"] == 0;
        },
        2s));
}

TEST_F(MemoryTransport, same_event_id_published_twice_is_stored_once) {
    auto t = make();
    auto e = fobs_test::make_event(id_of(1));
    EXPECT_EQ(t->publish_sync(e).kind, FOBS_OUTCOME_OK);
    EXPECT_EQ(t->publish_sync(e).kind, FOBS_OUTCOME_OK);
    EXPECT_EQ(admin(*t, {{"op", "status"}})["messages"], 1);
    Recorder rec;
    auto c = t->open_consumer(spec("worker"), rec.fn());
    ASSERT_TRUE(rec.wait_for(1));
    // Still a duplicate after it was consumed: the window remembers the id.
    EXPECT_EQ(t->publish_sync(e).kind, FOBS_OUTCOME_OK);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(rec.size(), 1u);
    EXPECT_EQ(h.metric("transport_stored_total", {{"transport", "mem"}}), 1.0);
}

TEST_F(MemoryTransport, same_id_after_the_dedup_window_is_stored_again) {
    auto t = make(R"({"dedup_window_ms": 100})");
    auto e = fobs_test::make_event(id_of(1));
    EXPECT_EQ(t->publish_sync(e).kind, FOBS_OUTCOME_OK);
    std::this_thread::sleep_for(150ms);
    EXPECT_EQ(t->publish_sync(e).kind, FOBS_OUTCOME_OK);
    EXPECT_EQ(admin(*t, {{"op", "status"}})["messages"], 2);
}

TEST_F(MemoryTransport, retry_with_retry_after_redelivers_after_the_delay_with_count_2) {
    auto t = make(R"({"backoff_ms": [5000]})");
    Recorder rec;
    rec.on_deliver = [](const host::EventData &e, sdk::Completion done) {
        if (e.delivery_count == 1) done.retry("busy", 200ms);
        else done.ok();
    };
    auto c = t->open_consumer(spec("worker"), rec.fn());
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(7))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(rec.wait_for(2, 3s));
    auto got = rec.snapshot();
    EXPECT_EQ(got[0].event.delivery_count, 1u);
    EXPECT_EQ(got[1].event.delivery_count, 2u);
    EXPECT_EQ(got[1].event.id, id_of(7));
    EXPECT_EQ(got[1].event.sequence, got[0].event.sequence);
    EXPECT_GE(got[1].at - got[0].at, 200ms);
    EXPECT_LT(got[1].at - got[0].at, 2s);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(rec.size(), 2u);
    EXPECT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["messages"] == 0; }, 2s));
}

TEST_F(MemoryTransport, retry_without_a_delay_follows_the_backoff_schedule) {
    // The two steps are far apart, so a loaded (sanitizer) host cannot blur which one was used.
    auto t = make(R"({"backoff_ms": [150, 1500], "max_deliver": 5})");
    Recorder rec;
    rec.on_deliver = [](const host::EventData &e, sdk::Completion done) {
        if (e.delivery_count <= 2) done.retry("busy");
        else done.ok();
    };
    auto c = t->open_consumer(spec("worker"), rec.fn());
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(8))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(rec.wait_for(3, 8s));
    auto got = rec.snapshot();
    EXPECT_GE(got[1].at - got[0].at, 150ms);
    EXPECT_LT(got[1].at - got[0].at, 1500ms);
    EXPECT_GE(got[2].at - got[1].at, 1500ms);
    EXPECT_EQ(got[2].event.delivery_count, 3u);
}

TEST_F(MemoryTransport, last_allowed_delivery_failing_dead_letters_with_the_reason) {
    auto t = make(R"({"max_deliver": 3})");
    Recorder rec;
    rec.on_deliver = [](const host::EventData &, sdk::Completion done) {
        done.retry("endpoint said 503", 20ms);
    };
    auto c = t->open_consumer(spec("worker"), rec.fn());
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(9))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(rec.wait_for(3, 3s));
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["dlq_depth"] == 1; }, 2s));
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(rec.size(), 3u); // never a fourth delivery
    json list = admin(*t, {{"op", "dlq_list"}});
    ASSERT_EQ(list["entries"].size(), 1u);
    const json &e = list["entries"][0];
    EXPECT_EQ(e["id"], id_of(9));
    EXPECT_EQ(e["subject"], "Order.INSERT");
    EXPECT_EQ(e["delivery_count"], 3);
    EXPECT_NE(e["reason"].get<std::string>().find("endpoint said 503"), std::string::npos);
    EXPECT_NE(e["reason"].get<std::string>().find("max_deliver"), std::string::npos);
    EXPECT_EQ(e["original_seq"], rec.snapshot()[0].event.sequence);
    EXPECT_EQ(admin(*t, {{"op", "status"}})["messages"], 0); // settled: no longer in the log
    EXPECT_EQ(h.metric("events_dead_lettered_total", {{"pipeline", "orders"}}), 1.0);
    EXPECT_EQ(h.metric("dlq_depth", {{"transport", "mem"}}), 1.0);
    admin(*t, {{"op", "dlq_purge"}});
    EXPECT_EQ(h.metric("dlq_depth", {{"transport", "mem"}}), 0.0) << "the gauge falls after a purge";
    EXPECT_TRUE(h.logged("dead-lettered"));
    EXPECT_TRUE(h.logged(id_of(9)));
}

TEST_F(MemoryTransport, failed_outcome_dead_letters_at_once_with_reason_and_action) {
    auto t = make();
    Recorder rec;
    rec.on_deliver = [](const host::EventData &, sdk::Completion done) {
        fobs_outcome o{};
        o.struct_size = sizeof(o);
        o.kind = FOBS_OUTCOME_FAILED;
        o.retry_after_ms = -1;
        o.reason = sdk::str("HTTP 410 Gone");
        o.component = sdk::str("order_webhook");
        done.complete(o);
    };
    auto c = t->open_consumer(spec("worker"), rec.fn());
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(10))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["dlq_depth"] == 1; }, 2s));
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(rec.size(), 1u);
    json e = admin(*t, {{"op", "dlq_list"}})["entries"][0];
    EXPECT_EQ(e["reason"], "HTTP 410 Gone");
    EXPECT_EQ(e["action"], "order_webhook");
    EXPECT_EQ(e["delivery_count"], 1);
}

TEST_F(MemoryTransport, a_token_never_completed_is_redelivered_after_ack_wait) {
    auto t = make(R"({"ack_wait_ms": 300})");
    Recorder rec;
    std::promise<const fobs_completion *> dropped;
    rec.on_deliver = [&](const host::EventData &e, sdk::Completion done) {
        if (e.delivery_count == 1) dropped.set_value(done.release()); // lost by the worker
        else done.ok();
    };
    auto c = t->open_consumer(spec("worker"), rec.fn());
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(11))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(rec.wait_for(2, 3s));
    auto got = rec.snapshot();
    EXPECT_EQ(got[1].event.delivery_count, 2u);
    // Not before ack_wait. The transport starts the ack_wait clock when it hands the event
    // over, a moment before the recorder stamps its arrival, so the two stamps can be a few
    // microseconds closer than 300 ms (an ASan run measured 299.9994 ms): allow 1 ms.
    EXPECT_GE(got[1].at - got[0].at, 299ms);
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["messages"] == 0; }, 2s));
    // The stale token completing late (as RETRY) is ignored: no third delivery.
    sdk::Completion(dropped.get_future().get()).retry("late");
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(rec.size(), 2u);
    EXPECT_EQ(admin(*t, {{"op", "status"}})["dlq_depth"], 0);
}

TEST_F(MemoryTransport, publish_blocks_while_full_and_completes_when_space_frees) {
    auto t = make(R"({"capacity": 2})");
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(1))).kind, FOBS_OUTCOME_OK);
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(2))).kind, FOBS_OUTCOME_OK);
    auto third = std::async(std::launch::async, [&] {
        return t->publish_sync(fobs_test::make_event(id_of(3)));
    });
    EXPECT_EQ(third.wait_for(300ms), std::future_status::timeout); // back-pressure
    Recorder rec;
    auto c = t->open_consumer(spec("worker"), rec.fn());
    ASSERT_EQ(third.wait_for(3s), std::future_status::ready);
    EXPECT_EQ(third.get().kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(rec.wait_for(3));
    EXPECT_EQ(rec.snapshot()[2].event.id, id_of(3));
}

TEST_F(MemoryTransport, publish_to_a_full_transport_times_out_with_retry) {
    auto t = make(R"({"capacity": 1, "publish_timeout_ms": 200})");
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(1))).kind, FOBS_OUTCOME_OK);
    auto start = Clock::now();
    auto o = t->publish_sync(fobs_test::make_event(id_of(2)));
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_NE(o.reason.find("transport full"), std::string::npos);
    EXPECT_GE(Clock::now() - start, 200ms);
    EXPECT_EQ(admin(*t, {{"op", "status"}})["messages"], 1);
}

TEST_F(MemoryTransport, stop_releases_a_blocked_publish_with_retry) {
    auto t = make(R"({"capacity": 1})");
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(1))).kind, FOBS_OUTCOME_OK);
    auto blocked = std::async(std::launch::async, [&] {
        return t->publish_sync(fobs_test::make_event(id_of(2)));
    });
    ASSERT_EQ(blocked.wait_for(200ms), std::future_status::timeout);
    t->stop();
    ASSERT_EQ(blocked.wait_for(2s), std::future_status::ready);
    auto o = blocked.get();
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_NE(o.reason.find("transport full"), std::string::npos);
}

TEST_F(MemoryTransport, competing_consumers_with_one_name_share_the_work) {
    auto t = make();
    std::mutex mu;
    std::map<std::string, int> seen; // id -> deliveries across both
    std::atomic<int> by_a{0}, by_b{0};
    auto worker = [&](std::atomic<int> &count) {
        return [&](const fobs_event &e, sdk::Completion done) {
            {
                std::lock_guard lock(mu);
                ++seen[std::string(sdk::view(e.id))];
            }
            ++count;
            std::this_thread::sleep_for(2ms); // a slow action: the other worker takes the next
            done.ok();
        };
    };
    auto a = t->open_consumer(spec("shared", 1), worker(by_a));
    auto b = t->open_consumer(spec("shared", 1), worker(by_b));
    const int n = 200;
    for (int i = 0; i < n; ++i)
        ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(i))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(fobs_test::eventually([&] { return by_a + by_b >= n; }, 10s));
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(by_a + by_b, n);
    EXPECT_GT(by_a.load(), 0);
    EXPECT_GT(by_b.load(), 0);
    std::lock_guard lock(mu);
    EXPECT_EQ(seen.size(), size_t(n));
    for (const auto &[id, k] : seen) EXPECT_EQ(k, 1) << id;
    EXPECT_EQ(admin(*t, {{"op", "status"}})["consumers"].size(), 1u);
}

TEST_F(MemoryTransport, consumers_with_different_names_each_see_every_event) {
    auto t = make();
    Recorder ra, rb;
    auto a = t->open_consumer(spec("audit", 64, "audit"), ra.fn());
    auto b = t->open_consumer(spec("billing", 64, "billing"), rb.fn());
    for (int i = 0; i < 30; ++i)
        ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(i))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(ra.wait_for(30));
    ASSERT_TRUE(rb.wait_for(30));
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(ra.size(), 30u);
    EXPECT_EQ(rb.size(), 30u);
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["messages"] == 0; }, 2s));
}

TEST_F(MemoryTransport, a_message_stays_until_every_open_consumer_group_settled_it) {
    auto t = make();
    Recorder fast, slow;
    std::promise<sdk::Completion> held;
    slow.on_deliver = [&](const host::EventData &, sdk::Completion done) {
        held.set_value(std::move(done));
    };
    auto a = t->open_consumer(spec("fast", 64, "fast"), fast.fn());
    auto b = t->open_consumer(spec("slow", 64, "slow"), slow.fn());
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(1))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(fast.wait_for(1));
    auto token = held.get_future().get();
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(admin(*t, {{"op", "status"}})["messages"], 1);
    token.ok();
    EXPECT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["messages"] == 0; }, 2s));
}

TEST_F(MemoryTransport, entity_type_filter_hint_skips_other_events) {
    auto t = make();
    Recorder rec;
    auto s = spec("orders_only");
    s.entity_types = {"Order"};
    auto c = t->open_consumer(s, rec.fn());
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(1), "User")).kind, FOBS_OUTCOME_OK);
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(2), "Order")).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(rec.wait_for(1));
    std::this_thread::sleep_for(100ms);
    ASSERT_EQ(rec.size(), 1u);
    EXPECT_EQ(rec.snapshot()[0].event.id, id_of(2));
    EXPECT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["messages"] == 0; }, 2s));
}

TEST_F(MemoryTransport, dlq_list_show_replay_and_purge) {
    auto t = make();
    std::atomic<bool> failing{true};
    Recorder rec;
    rec.on_deliver = [&](const host::EventData &, sdk::Completion done) {
        if (failing) done.fail("rejected by test");
        else done.ok();
    };
    auto c = t->open_consumer(spec("worker"), rec.fn());
    std::vector<host::EventData> events;
    for (int i = 0; i < 4; ++i) {
        events.push_back(fobs_test::make_event(id_of(i), "Order", i % 2 ? "UPDATE" : "INSERT"));
        ASSERT_EQ(t->publish_sync(events.back()).kind, FOBS_OUTCOME_OK);
    }
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["dlq_depth"] == 4; }, 3s));

    json list = admin(*t, {{"op", "dlq_list"}, {"limit", 2}});
    ASSERT_EQ(list["entries"].size(), 2u);
    EXPECT_EQ(list["total"], 4);
    json first = list["entries"][0];
    for (const char *k : {"seq", "id", "subject", "reason", "action", "delivery_count",
                          "original_seq"})
        EXPECT_TRUE(first.contains(k)) << k;
    EXPECT_EQ(first["id"], id_of(0));
    EXPECT_EQ(first["subject"], "Order.INSERT");
    EXPECT_EQ(list["entries"][1]["subject"], "Order.UPDATE");
    EXPECT_EQ(first["reason"], "rejected by test");

    json all = admin(*t, {{"op", "dlq_list"}})["entries"];
    ASSERT_EQ(all.size(), 4u);
    const uint64_t seq0 = all[0]["seq"], seq1 = all[1]["seq"], seq2 = all[2]["seq"],
                   seq3 = all[3]["seq"];

    json shown = admin(*t, {{"op", "dlq_show"}, {"seq", seq1}});
    EXPECT_EQ(shown["id"], id_of(1));
    EXPECT_EQ(shown["body"], events[1].body);
    EXPECT_EQ(shown["seq"], seq1);
    EXPECT_THROW(admin(*t, {{"op", "dlq_show"}, {"seq", 999999}}), host::InstanceError);

    // Replay one: same id and body, new sequence, delivered again despite de-duplication.
    failing = false;
    const size_t before = rec.size();
    json answer = admin(*t, {{"op", "dlq_replay"}, {"seq", seq0}});
    EXPECT_EQ(answer["replayed"], 1);
    ASSERT_EQ(answer["entries"].size(), 1u);
    EXPECT_EQ(answer["entries"][0]["dlq_seq"], seq0);
    EXPECT_EQ(answer["entries"][0]["id"], id_of(0));
    ASSERT_TRUE(rec.wait_for(before + 1));
    auto replayed = rec.snapshot().back().event;
    EXPECT_EQ(replayed.id, id_of(0));
    EXPECT_EQ(replayed.body, events[0].body);
    EXPECT_EQ(replayed.delivery_count, 1u);
    EXPECT_EQ(replayed.sequence, answer["entries"][0]["seq"]);
    EXPECT_GT(replayed.sequence, uint64_t(all[3]["original_seq"]));
    EXPECT_EQ(admin(*t, {{"op", "status"}})["dlq_depth"], 3);

    // Purge one by seq, then replay the rest.
    EXPECT_EQ(admin(*t, {{"op", "dlq_purge"}, {"seq", seq2}})["purged"], 1);
    EXPECT_EQ(admin(*t, {{"op", "dlq_purge"}, {"seq", seq2}})["purged"], 0);
    EXPECT_EQ(admin(*t, {{"op", "dlq_replay"}, {"all", true}})["replayed"], 2);
    ASSERT_TRUE(rec.wait_for(before + 3));
    std::set<std::string> again;
    for (auto &g : rec.snapshot()) again.insert(g.event.id);
    EXPECT_TRUE(again.count(id_of(1)) && again.count(id_of(3)));
    EXPECT_EQ(admin(*t, {{"op", "status"}})["dlq_depth"], 0);
    (void)seq3;

    // Purge all.
    failing = true;
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(20))).kind, FOBS_OUTCOME_OK);
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(21))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["dlq_depth"] == 2; }, 15s))
        << admin(*t, {{"op", "status"}}).dump();
    EXPECT_EQ(admin(*t, {{"op", "dlq_purge"}})["purged"], 2);
    EXPECT_EQ(admin(*t, {{"op", "dlq_list"}})["entries"].size(), 0u);
}

TEST_F(MemoryTransport, offers_status_and_dlq_capabilities_and_no_admin) {
    auto t = make();
    EXPECT_FALSE(t->has_admin());
    EXPECT_NE(t->capability(FOBS_CAP_STATUS), nullptr);
    EXPECT_NE(t->capability(FOBS_CAP_DLQ), nullptr);
    EXPECT_EQ(t->capability(FOBS_CAP_SQL), nullptr);
    EXPECT_FALSE(t->call_json(FOBS_CAP_DLQ, R"({"op":"compact"})").has_value());
    // The generic status rendering: titled sections of key/value rows.
    json st = json::parse(*t->call_json(FOBS_CAP_STATUS, R"({"consumer":"nobody"})"));
    ASSERT_TRUE(st["sections"].is_array());
    EXPECT_EQ(st["sections"][0]["title"], "log");
    EXPECT_EQ(st["sections"][1]["title"], "consumer");
    EXPECT_EQ(st["sections"][1]["rows"][0], json::array({"open", false}));
}

TEST_F(MemoryTransport, dead_letter_queue_is_bounded) {
    auto t = make(R"({"dead_letter_capacity": 2})");
    Recorder rec;
    rec.on_deliver = [](const host::EventData &, sdk::Completion done) { done.fail("no"); };
    auto c = t->open_consumer(spec("worker"), rec.fn());
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(i))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(rec.wait_for(3));
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["messages"] == 0; }, 2s));
    json list = admin(*t, {{"op", "dlq_list"}})["entries"];
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0]["id"], id_of(1)); // the oldest was dropped
    EXPECT_TRUE(h.logged("dead-letter queue full"));
}

TEST_F(MemoryTransport, close_waits_for_outstanding_tokens_completed_meanwhile) {
    auto t = make(R"({"ack_wait_ms": 10000})");
    Recorder rec;
    std::mutex mu;
    std::vector<sdk::Completion> held;
    rec.on_deliver = [&](const host::EventData &, sdk::Completion done) {
        std::lock_guard lock(mu);
        held.push_back(std::move(done));
    };
    auto c = t->open_consumer(spec("worker", 8), rec.fn());
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(i))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(rec.wait_for(3));
    auto completer = std::thread([&] {
        std::this_thread::sleep_for(200ms);
        std::lock_guard lock(mu);
        for (auto &d : held) d.ok();
    });
    auto start = Clock::now();
    c->close();
    auto took = Clock::now() - start;
    completer.join();
    EXPECT_GE(took, 150ms); // it waited for the tokens...
    EXPECT_LT(took, 5s);    // ...not for ack_wait
    EXPECT_EQ(rec.size(), 3u);
    EXPECT_EQ(admin(*t, {{"op", "status"}})["consumers"][0]["ack_pending"], 0);
}

TEST_F(MemoryTransport, close_with_tokens_never_completed_returns_and_redelivers_on_reopen) {
    // Without draining (drain_timeout_ms = 0) closing only waits for outstanding tokens.
    auto t = make(R"({"ack_wait_ms": 300, "drain_timeout_ms": 0})");
    Recorder first;
    std::promise<const fobs_completion *> lost;
    first.on_deliver = [&](const host::EventData &, sdk::Completion done) {
        lost.set_value(done.release());
    };
    auto c = t->open_consumer(spec("worker"), first.fn());
    ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(5))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(first.wait_for(1));
    auto start = Clock::now();
    c->close();
    EXPECT_LT(Clock::now() - start, 3s); // bounded by ack_wait
    c.reset();
    // The stale token completes after close: harmless.
    sdk::Completion(lost.get_future().get()).ok();
    EXPECT_EQ(admin(*t, {{"op", "status"}})["messages"], 1);

    Recorder second;
    auto c2 = t->open_consumer(spec("worker"), second.fn());
    ASSERT_TRUE(second.wait_for(1));
    EXPECT_EQ(second.snapshot()[0].event.id, id_of(5));
    EXPECT_EQ(second.snapshot()[0].event.delivery_count, 2u);
    EXPECT_TRUE(fobs_test::eventually(
        [&] { return admin(*t, {{"op", "status"}})["messages"] == 0; }, 2s));
}

TEST_F(MemoryTransport, close_drains_what_is_held_including_due_redeliveries) {
    auto t = make(R"({"backoff_ms": [100], "drain_timeout_ms": 10000})");
    std::atomic<int> seen{0};
    std::mutex mu;
    std::condition_variable cv;
    bool release = false;
    // The consumer is slow: it holds the first delivery until close() has begun, and every
    // event fails once before it succeeds.
    Recorder r;
    r.on_deliver = [&](const host::EventData &e, sdk::Completion done) {
        if (seen++ == 0) {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return release; });
        }
        if (e.delivery_count == 1) done.retry("once more");
        else done.ok();
    };
    auto c = t->open_consumer(spec("worker", 1), r.fn());
    for (int i = 0; i < 20; ++i)
        ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(i))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(r.wait_for(1));
    std::thread closer([&] { c->close(); });
    std::this_thread::sleep_for(50ms);
    {
        std::lock_guard lock(mu);
        release = true;
    }
    cv.notify_all();
    closer.join();
    // Everything held was delivered (twice each: the retry was due during the drain).
    EXPECT_EQ(r.size(), 40u);
    EXPECT_EQ(admin(*t, {{"op", "status"}})["messages"], 0);
}

TEST_F(MemoryTransport, stop_with_an_open_consumer_ends_deliveries_and_close_is_quick) {
    auto t = make(R"({"ack_wait_ms": 10000})");
    std::atomic<bool> stopped{false};
    std::atomic<int> after_stop{0};
    std::mutex mu;
    std::vector<sdk::Completion> held;
    auto c = t->open_consumer(spec("worker", 4), [&](const fobs_event &, sdk::Completion done) {
        if (stopped) ++after_stop;
        std::lock_guard lock(mu);
        held.push_back(std::move(done)); // keep tokens outstanding across stop
    });
    for (int i = 0; i < 10; ++i)
        ASSERT_EQ(t->publish_sync(fobs_test::make_event(id_of(i))).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(fobs_test::eventually([&] {
        std::lock_guard lock(mu);
        return held.size() == 4;
    }, 2s));
    t->stop();
    stopped = true;
    {
        std::lock_guard lock(mu);
        for (auto &d : held) d.ok(); // late completions after stop: accepted, no host calls
    }
    auto start = Clock::now();
    c->close();
    EXPECT_LT(Clock::now() - start, 5s); // stopping does not wait for ack_wait (10 s) again
    EXPECT_EQ(after_stop, 0);
}

using fobs_test::BadConfig;

class MemoryTransportConfig : public ::testing::TestWithParam<BadConfig> {
  protected:
    fobs_test::Harness h;
};

TEST_P(MemoryTransportConfig, errors_name_the_key) {
    fobs_test::expect_refused(h, host::ComponentKind::transport, "memory", GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Keys, MemoryTransportConfig,
    ::testing::Values(
        BadConfig{R"({"capacty": 10})", "capacty", "did you mean `capacity`"},
        BadConfig{R"({"max_delivr": 3})", "max_delivr", "did you mean `max_deliver`"},
        BadConfig{R"({"capacity": 0})", "capacity", "between 1"},
        BadConfig{R"({"max_deliver": "3"})", "max_deliver", "expected an integer, got a string"},
        BadConfig{R"({"ack_wait_ms": -5})", "ack_wait_ms", "between"},
        BadConfig{R"({"backoff_ms": 1000})", "backoff_ms", "array"},
        BadConfig{R"({"backoff_ms": [100, -1]})", "backoff_ms[1]", "between 0 and 86400000"},
        BadConfig{R"({"backoff_ms": []})", "backoff_ms", "empty"},
        BadConfig{R"({"dedup_window_ms": 1.5})", "dedup_window_ms", "integer"},
        BadConfig{R"({"dead_letter_capacity": -1})", "dead_letter_capacity", "between"}),
    fobs_test::bad_config_name);

TEST(MemoryTransportDefaults, empty_config_is_valid) {
    fobs_test::Harness h;
    EXPECT_NO_THROW(h.transport("memory", "{}", "mem"));
    EXPECT_NO_THROW(h.transport("memory",
                                R"({"capacity": 10, "max_deliver": 5, "ack_wait_ms": 1000,
                                    "backoff_ms": [10, 20], "dedup_window_ms": 0,
                                    "dead_letter_capacity": 5, "publish_timeout_ms": 0})",
                                "mem2"));
}

} // namespace
