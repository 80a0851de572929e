// A consumer that keeps fetching while nats-server is restarted again and again (the chaos
// run's "observer dies within a second of the NATS restart", docs/reliability.md). While the
// server is down, cnats buffers every pull request the fetch loop sends and flushes them all on
// reconnect: the new server answers each one, so bursts of messages and status replies land in
// the subscription that no fetch is waiting for. cnats 3.4.1's Fetch writes past its result
// array when it meets such leftovers the wrong way (NOTES.md); the process must survive every
// restart and every event must still be delivered. Real nats-server, the plugin loaded through
// the real host loader.
#include "harness.hpp"
#include "nats_server.hpp"

#include <gtest/gtest.h>
#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

namespace {

using fobs_test::Harness;
using fobs_test::make_event;
using fraiseql_observer::host::ConsumerSpec;
using fraiseql_observer::host::EventData;
using fraiseql_observer::host::Outcome;
namespace sdk = fraiseql_observer::sdk;
using json = nlohmann::json;
using namespace std::chrono_literals;

TEST(NatsServerRestarts, consumer_survives_repeated_restarts_with_a_backlog_and_loses_nothing) {
    nats_Open(-1);
    fobs_test::NatsServer nats;
    Harness h;
    // Small batches and a short fetch timeout: many pull requests are sent (and buffered by
    // cnats) while the server is down, and batches are small enough that a few leftovers are
    // "more than half of the batch".
    json config = {{"url", nats.url()},
                   {"stream_name", "restarts"},
                   {"subject_prefix", "rst.mutation"},
                   {"dlq_prefix", "rst.dlq"},
                   {"consumer_name", "worker"},
                   {"reconnect_wait_ms", 50},
                   {"fetch_batch", 64},
                   {"fetch_timeout_ms", 50},
                   {"jetstream", {{"max_bytes", 64 << 20}}}};
    auto t = h.transport("nats", config.dump(), "restarts");
    t->start();
    std::string why;
    ASSERT_TRUE(fobs_test::eventually([&] { return t->ready(why); }, 10s)) << why;

    const int per_round = 3000, rounds = 6;
    std::atomic<int> published{0};
    auto publish_round = [&](int round) {
        for (int i = 0; i < per_round; ++i) {
            EventData e = make_event("r" + std::to_string(round) + "-" + std::to_string(i));
            fobs_event v = e.view();
            t->publish(v, [&](const Outcome &o) {
                if (o.kind == FOBS_OUTCOME_OK) published++;
            });
        }
    };

    std::mutex mu;
    std::set<std::string> seen;
    std::atomic<int> delivered{0};
    ConsumerSpec spec;
    spec.pipeline = "orders";
    spec.consumer_name = "worker";
    spec.max_in_flight = 100;
    // The action completes on another thread a little later, as a webhook action does: events
    // stay in flight, so the fetch loop asks for batches of every size below max_in_flight.
    std::deque<sdk::Completion> queue;
    std::condition_variable queue_cv;
    std::atomic<bool> stopping{false};
    std::thread completer([&] {
        std::unique_lock lk(mu);
        while (!stopping.load()) {
            if (queue.empty()) {
                queue_cv.wait_for(lk, 10ms);
                continue;
            }
            std::deque<sdk::Completion> batch;
            batch.swap(queue);
            lk.unlock();
            std::this_thread::sleep_for(1ms);
            for (auto &done : batch) done.ok();
            lk.lock();
        }
    });
    auto consumer = t->open_consumer(spec, [&](const fobs_event &ev, sdk::Completion done) {
        std::lock_guard lk(mu);
        seen.insert(std::string(ev.id.data, ev.id.size));
        delivered++;
        queue.push_back(std::move(done));
        queue_cv.notify_one();
    });

    for (int round = 0; round < rounds; ++round) {
        publish_round(round);
        // Restart while the consumer is working through the backlog.
        ASSERT_TRUE(fobs_test::eventually([&] { return delivered.load() > round * per_round + 200; }, 30s))
            << "round " << round << ": delivered " << delivered;
        nats.stop();
        std::this_thread::sleep_for(2s); // pull requests pile up in cnats' reconnect buffer
        nats.start();
        ASSERT_TRUE(fobs_test::eventually([&] { return t->ready(why); }, 20s)) << why;
    }
    const int total = per_round * rounds;
    ASSERT_TRUE(fobs_test::eventually([&] { return published.load() == total; }, 60s))
        << "published " << published;
    EXPECT_TRUE(fobs_test::eventually(
        [&] {
            std::lock_guard lk(mu);
            return seen.size() == static_cast<size_t>(total);
        },
        90s))
        << "distinct events delivered " << seen.size() << " of " << total;
    consumer->close();
    stopping = true;
    completer.join();
    t->stop();
}

} // namespace
