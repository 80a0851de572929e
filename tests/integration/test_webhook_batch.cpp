// Webhook batches (issue 15, SPEC section 7) against a real HTTP receiver that verifies every
// request with the npm `standardwebhooks` library (tests/node/webhook_receiver.js):
//  - in-process (the real host loader): size and time closing, the batch id, batch_max_events = 1
//    unchanged, max_concurrency counting requests;
//  - end to end: events stored in a real nats-server, delivered by a `fraiseql-observer run --role
//    worker` process: every event exactly once across batches and in stream order within each,
//    a 500 redelivering the whole batch under the same webhook-id, a 400 dead-lettering each event
//    with the reason (read back from the DLQ);
//  - `validate` refusing a batching action shared by two pipelines.
#include "harness.hpp"
#include "js_reader.hpp"
#include "nats_server.hpp"
#include "process.hpp"
#include "webhook_receiver.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace {

using fobs_test::Harness;
using fobs_test::make_event;
using fraiseql_observer::host::ActionInstance;
using fraiseql_observer::host::Outcome;
using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// tests/node/webhook_receiver.js with --log-bodies: every request's headers and body.
class Receiver : public fobs_test::WebhookReceiver {
  public:
    Receiver() : WebhookReceiver(Options{{kSecret}, {}, {}, true}) {}
};

std::string config(const std::string &url, json extra) {
    json c = {{"url", url}, {"secret", kSecret}, {"fraiseql_signature", true}};
    for (auto &[k, v] : extra.items()) c[k] = v;
    return c.dump();
}

/// The ids of a batch request's body, in array order (fails the test when it is not an array
/// of event objects).
std::vector<std::string> ids_of(const json &request) {
    std::vector<std::string> ids;
    json body = json::parse(request["body"].get<std::string>(), nullptr, false);
    EXPECT_TRUE(body.is_array()) << request["body"];
    if (!body.is_array()) return ids;
    for (const auto &e : body) ids.push_back(e.value("id", std::string("<no id>")));
    return ids;
}

/// The documented batch id, computed independently with node's crypto: "batch_" + the first 32
/// hex digits of SHA-256 over "<id1>\n<id2>\n…".
std::string expected_batch_id(const std::vector<std::string> &ids) {
    std::string joined;
    for (const auto &id : ids) joined += id + "\n";
    auto [rc, out] = fobs_test::run_command(
        {"node", "-e",
         "process.stdout.write('batch_' + require('crypto').createHash('sha256')"
         ".update(process.argv[1]).digest('hex').slice(0, 32))",
         joined});
    EXPECT_EQ(rc, 0) << out;
    return out;
}

/// Hands events to an action at once; collects every outcome.
class Outcomes {
  public:
    void run(ActionInstance &a, const std::vector<std::string> &ids) {
        for (const auto &id : ids) {
            auto ev = make_event(id);
            a.execute(ev.view(), [this, id](const Outcome &o) {
                std::lock_guard lk(mu_);
                got_[id] = o;
                cv_.notify_all();
            });
        }
    }
    bool wait_for(size_t n, std::chrono::milliseconds timeout) {
        std::unique_lock lk(mu_);
        return cv_.wait_for(lk, timeout, [&] { return got_.size() >= n; });
    }
    std::map<std::string, Outcome> all() {
        std::lock_guard lk(mu_);
        return got_;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::map<std::string, Outcome> got_;
};

std::vector<std::string> numbered(const std::string &prefix, int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(prefix + std::to_string(i));
    return ids;
}

// ------------------------------------------------------------------------------------------
// In-process

class WebhookBatch : public ::testing::Test {
  protected:
    std::unique_ptr<ActionInstance> started(const std::string &cfg, const std::string &name) {
        auto a = h_.action("webhook", cfg, name);
        a->start();
        return a;
    }
    Receiver rx_;
    Harness h_;
};

TEST_F(WebhookBatch, a_lone_event_is_sent_after_batch_max_wait_ms_not_never) {
    auto a = started(config(rx_.url("/ok"), {{"batch_max_events", 100}, {"batch_max_wait_ms", 300}}),
                     "lone");
    auto t0 = std::chrono::steady_clock::now();
    auto o = a->execute_sync(make_event("lone-1"), 20000);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(o.kind, FOBS_OUTCOME_OK) << o.reason;
    // It waited for company (about batch_max_wait_ms), and then went on its own. Generous upper
    // bound: a loaded 2-core machine.
    EXPECT_GE(took, 280ms);
    EXPECT_LT(took, 5s);
    std::cerr << "a lone event with batch_max_wait_ms = 300 took "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
    auto reqs = rx_.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(ids_of(reqs[0]), std::vector<std::string>{"lone-1"});
    // The array holds the event's JSON byte for byte.
    EXPECT_EQ(reqs[0]["body"], "[" + make_event("lone-1").body + "]");
    const auto &hd = reqs[0]["headers"];
    EXPECT_EQ(hd["webhook-id"], expected_batch_id({"lone-1"}));
    EXPECT_EQ(hd["idempotency-key"], hd["webhook-id"]);
    auto st = rx_.stats();
    EXPECT_EQ(st["verified"], 1);
    EXPECT_EQ(st["fraiseql_verified"], 1);
    EXPECT_EQ(st["rejected"], 0);
}

TEST_F(WebhookBatch, full_batches_go_at_once_in_the_order_events_were_handed_over) {
    // A wait far longer than the test: only the size can close these batches.
    auto a = started(config(rx_.url("/ok"), {{"batch_max_events", 5}, {"batch_max_wait_ms", 10000}}),
                     "full");
    Outcomes out;
    auto t0 = std::chrono::steady_clock::now();
    auto ids = numbered("full-", 10);
    out.run(*a, ids);
    ASSERT_TRUE(out.wait_for(10, 8s));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);
    for (auto &[id, o] : out.all()) EXPECT_EQ(o.kind, FOBS_OUTCOME_OK) << id << ": " << o.reason;
    auto reqs = rx_.requests();
    ASSERT_EQ(reqs.size(), 2u);
    std::vector<std::string> first(ids.begin(), ids.begin() + 5), second(ids.begin() + 5, ids.end());
    // Two requests in flight may arrive in either order; each holds five events in order.
    auto a0 = ids_of(reqs[0]), a1 = ids_of(reqs[1]);
    if (a0 != first) std::swap(a0, a1);
    EXPECT_EQ(a0, first);
    EXPECT_EQ(a1, second);
    EXPECT_EQ(rx_.stats()["verified"], 2);
    EXPECT_EQ(h_.metric("webhook_batch_events", {{"action", "full"}}), 2.0);
    EXPECT_EQ(h_.metric("webhook_responses_total", {{"action", "full"}, {"class", "2xx"}}), 2.0);
}

TEST_F(WebhookBatch, the_same_composition_gives_the_same_webhook_id_and_another_one_does_not) {
    auto a = started(config(rx_.url("/status/500?body=down"),
                            {{"batch_max_events", 3}, {"batch_max_wait_ms", 10000}}),
                     "compose");
    auto attempt = [&](const std::vector<std::string> &ids) {
        Outcomes out;
        out.run(*a, ids);
        EXPECT_TRUE(out.wait_for(ids.size(), 10s));
        for (auto &[id, o] : out.all()) {
            // Transient: every event of the batch is handed back, with the batch named.
            EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY) << id;
            EXPECT_NE(o.reason.find("HTTP 500"), std::string::npos) << o.reason;
            EXPECT_NE(o.reason.find("of 3 events"), std::string::npos) << o.reason;
        }
        return rx_.requests().back()["headers"]["webhook-id"].get<std::string>();
    };
    std::string first = attempt({"c-1", "c-2", "c-3"});
    std::string again = attempt({"c-1", "c-2", "c-3"});
    std::string other = attempt({"c-2", "c-1", "c-3"});
    EXPECT_EQ(first, expected_batch_id({"c-1", "c-2", "c-3"}));
    EXPECT_EQ(again, first);
    EXPECT_NE(other, first);
    EXPECT_EQ(rx_.stats()["verified"], 3);
}

// A batch that fills before the timer thread has even looked at it must not leave the timer
// asleep for the next one: each round is a full batch at once, then a lone event that only the
// timer can send.
TEST_F(WebhookBatch, a_lone_event_after_a_full_batch_is_still_sent_by_time) {
    auto a = started(config(rx_.url("/ok"), {{"batch_max_events", 10}, {"batch_max_wait_ms", 20}}),
                     "rounds");
    for (int round = 0; round < 100; ++round) {
        Outcomes out;
        out.run(*a, numbered("round" + std::to_string(round) + "-", 11));
        ASSERT_TRUE(out.wait_for(11, 10s)) << "round " << round << ": " << out.all().size()
                                           << " of 11 outcomes; the lone event was never sent";
    }
    EXPECT_EQ(rx_.stats()["requests"], 200);
}

TEST_F(WebhookBatch, batch_max_events_1_sends_each_event_as_before) {
    auto a = started(config(rx_.url("/ok"), {{"batch_max_events", 1}}), "single");
    auto o = a->execute_sync(make_event("one-1"), 20000);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_OK) << o.reason;
    auto reqs = rx_.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0]["body"], make_event("one-1").body); // the object, not an array
    EXPECT_EQ(reqs[0]["headers"]["webhook-id"], "one-1");
    EXPECT_EQ(reqs[0]["headers"]["idempotency-key"], "one-1");
    EXPECT_TRUE(std::isnan(h_.metric("webhook_batch_events", {{"action", "single"}})));
}

TEST_F(WebhookBatch, max_concurrency_counts_requests_not_events) {
    auto a = started(config(rx_.url("/delay/200"), {{"batch_max_events", 10},
                                                    {"batch_max_wait_ms", 10000},
                                                    {"max_concurrency", 2}}),
                     "conc");
    Outcomes out;
    out.run(*a, numbered("conc-", 100));
    ASSERT_TRUE(out.wait_for(100, 30s));
    for (auto &[id, o] : out.all()) EXPECT_EQ(o.kind, FOBS_OUTCOME_OK) << id << ": " << o.reason;
    auto st = rx_.stats();
    EXPECT_EQ(st["requests"], 10);
    EXPECT_EQ(st["verified"], 10);
    EXPECT_LE(st["peak_in_flight"].get<int>(), 2);
    EXPECT_EQ(st["peak_in_flight"].get<int>(), 2); // the limit is reached: batches run side by side
}

TEST_F(WebhookBatch, stop_hands_the_open_batch_back_for_redelivery) {
    auto a = started(config(rx_.url("/ok"), {{"batch_max_events", 100}, {"batch_max_wait_ms", 10000}}),
                     "stopping");
    Outcomes out;
    out.run(*a, numbered("stop-", 3));
    a->stop();
    ASSERT_TRUE(out.wait_for(3, 1s)); // completed by stop(), not by the 10 s wait
    for (auto &[id, o] : out.all()) {
        EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY) << id;
        EXPECT_NE(o.reason.find("before the batch was sent"), std::string::npos) << o.reason;
    }
    EXPECT_EQ(rx_.stats()["requests"], 0);
}

// ------------------------------------------------------------------------------------------
// End to end: nats-server + the worker process

class WebhookBatchE2E : public ::testing::Test {
  protected:
    // Stores `ids` in the stream (in this order) through the nats transport.
    void publish(const std::vector<std::string> &ids) {
        std::atomic<size_t> ok{0};
        for (const auto &id : ids) {
            auto e = make_event(id, "Order", "INSERT", id);
            fobs_event v = e.view();
            bus_->publish(v, [&](const Outcome &o) {
                if (o.kind == FOBS_OUTCOME_OK) ok++;
            });
        }
        ASSERT_TRUE(fobs_test::eventually([&] { return ok == ids.size(); }, 30s));
    }
    json transport_admin(const json &request) {
        auto answer = fobs_test::ask(*bus_, request.dump());
        return answer ? json::parse(*answer) : json::object();
    }
    // The worker, with the webhook action batching as `hook` says.
    fobs_test::Process worker(const json &hook) {
        std::string toml = R"(
[observer]
metrics_listen = ""
log_level = "info"

[transports.bus]
plugin = "nats"
url = ")" + nats_.url() + R"("
stream_name = "batch_events"
subject_prefix = "batch.mutation"
dlq_prefix = "batch.dlq"
[transports.bus.jetstream]
max_bytes = 67108864
max_deliver = 3
backoff_secs = [0.5]

[actions.hook]
plugin = "webhook"
)";
        for (auto &[k, v] : hook.items()) toml += k + " = " + v.dump() + "\n";
        toml += R"(
[[pipelines]]
name = "orders"
transport = "bus"
actions = ["hook"]
consumer = "batch_worker"
)";
        fobs_test::write_file(dir_ / "worker.toml", toml);
        fobs_test::ProcessOptions o;
        o.argv = {fobs_test::observer_binary(), "run", "-c", (dir_ / "worker.toml").string(),
                  "--role", "worker"};
        o.output = dir_ / "worker.log";
        return fobs_test::Process(o);
    }
    std::string worker_log() const { return fobs_test::read_file(dir_ / "worker.log"); }
    bool consumer_drained() {
        json st = transport_admin({{"op", "status"}, {"consumer", "batch_worker"}});
        return st["consumer"]["num_pending"] == 0 && st["consumer"]["num_ack_pending"] == 0;
    }

    void SetUp() override {
        json t = {{"url", nats_.url()},
                  {"stream_name", "batch_events"},
                  {"subject_prefix", "batch.mutation"},
                  {"dlq_prefix", "batch.dlq"},
                  {"jetstream", {{"max_bytes", 64 << 20}}}};
        bus_ = h_.transport("nats", t.dump(), "bus");
        bus_->start();
    }
    void TearDown() override { bus_->stop(); }

    fobs_test::NatsServer nats_;
    fobs_test::TempDir dir_{"fobs-webhook-batch-e2e"};
    Harness h_;
    std::unique_ptr<fraiseql_observer::host::TransportInstance> bus_;
    Receiver rx_;
};

TEST_F(WebhookBatchE2E, every_event_exactly_once_across_batches_in_stream_order_and_signed) {
    const int n = 500;
    auto ids = numbered("e2e-", n);
    publish(ids);
    // Stream order, from the stream itself.
    std::map<std::string, uint64_t> seq;
    {
        fobs_test::JsReader js(nats_.url());
        for (const auto &m : js.messages("batch_events"))
            seq[json::parse(m.body)["id"].get<std::string>()] = m.seq;
    }
    ASSERT_EQ(seq.size(), static_cast<size_t>(n));

    auto w = worker({{"url", rx_.url("/ok")},
                     {"secret", kSecret},
                     {"fraiseql_signature", true},
                     {"batch_max_events", 50},
                     {"batch_max_wait_ms", 100}});
    std::map<std::string, int> seen;
    size_t requests = 0;
    ASSERT_TRUE(fobs_test::eventually(
        [&] {
            seen.clear();
            auto reqs = rx_.requests();
            requests = reqs.size();
            for (const auto &r : reqs)
                for (const auto &id : ids_of(r)) seen[id]++;
            return seen.size() == static_cast<size_t>(n);
        },
        60s))
        << seen.size() << " of " << n << " events received\n" << worker_log();
    ASSERT_TRUE(fobs_test::eventually([&] { return consumer_drained(); }, 15s));
    EXPECT_EQ(w.stop(10s), 0) << worker_log();

    auto reqs = rx_.requests();
    size_t total = 0;
    for (const auto &r : reqs) {
        auto batch = ids_of(r);
        total += batch.size();
        EXPECT_LE(batch.size(), 50u);
        for (size_t i = 1; i < batch.size(); ++i)
            EXPECT_LT(seq[batch[i - 1]], seq[batch[i]])
                << "not in stream order: " << batch[i - 1] << " before " << batch[i];
        EXPECT_EQ(r["headers"]["webhook-id"], expected_batch_id(batch));
        EXPECT_EQ(r["headers"]["idempotency-key"], r["headers"]["webhook-id"]);
    }
    EXPECT_EQ(total, static_cast<size_t>(n)) << "an event was sent twice";
    for (const auto &[id, count] : seen) EXPECT_EQ(count, 1) << id;
    // Fewer requests than events: batches, verified by the standardwebhooks library.
    EXPECT_LT(reqs.size(), static_cast<size_t>(n) / 5);
    auto st = rx_.stats();
    EXPECT_EQ(st["verified"].get<size_t>(), reqs.size());
    EXPECT_EQ(st["fraiseql_verified"].get<size_t>(), reqs.size());
    EXPECT_EQ(st["rejected"], 0);
    std::cerr << n << " events in " << reqs.size() << " requests\n";
}

TEST_F(WebhookBatchE2E, a_500_redelivers_the_whole_batch_under_the_same_webhook_id) {
    auto ids = numbered("retry-", 10);
    publish(ids);
    // /fail_first/500 answers 500 the first time it sees an Idempotency-Key, then 200. The batch
    // holds all ten events (a long wait), so its redelivery is composed the same way.
    auto w = worker({{"url", rx_.url("/fail_first/500")},
                     {"secret", kSecret},
                     {"batch_max_events", 10},
                     {"batch_max_wait_ms", 5000}});
    ASSERT_TRUE(fobs_test::eventually([&] { return rx_.requests().size() >= 2; }, 30s))
        << rx_.stats().dump() << "\n" << worker_log();
    ASSERT_TRUE(fobs_test::eventually([&] { return consumer_drained(); }, 15s)) << worker_log();
    EXPECT_EQ(w.stop(10s), 0) << worker_log();

    auto reqs = rx_.requests();
    ASSERT_EQ(reqs.size(), 2u) << rx_.stats().dump();
    EXPECT_EQ(ids_of(reqs[0]), ids);
    EXPECT_EQ(ids_of(reqs[1]), ids);
    EXPECT_EQ(reqs[0]["headers"]["webhook-id"], expected_batch_id(ids));
    EXPECT_EQ(reqs[1]["headers"]["webhook-id"], reqs[0]["headers"]["webhook-id"]);
    EXPECT_EQ(reqs[1]["headers"]["idempotency-key"], reqs[0]["headers"]["idempotency-key"]);
    EXPECT_EQ(rx_.stats()["verified"], 2);
    // The host logged every event's transient failure; nothing was dead-lettered.
    EXPECT_NE(worker_log().find("HTTP 500"), std::string::npos) << worker_log();
    EXPECT_EQ(transport_admin({{"op", "status"}})["dlq"]["depth"], 0);
}

TEST_F(WebhookBatchE2E, a_400_dead_letters_each_event_of_the_batch_with_the_reason) {
    auto ids = numbered("dead-", 10);
    publish(ids);
    auto w = worker({{"url", rx_.url("/status/400?body=schema%20mismatch")},
                     {"secret", kSecret},
                     {"batch_max_events", 10},
                     {"batch_max_wait_ms", 5000}});
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return transport_admin({{"op", "status"}})["dlq"]["depth"] == 10; }, 30s))
        << transport_admin({{"op", "status"}}).dump() << "\n" << worker_log();
    ASSERT_TRUE(fobs_test::eventually([&] { return consumer_drained(); }, 15s)) << worker_log();
    EXPECT_EQ(w.stop(10s), 0) << worker_log();

    // One request, its permanent failure applied to each event: ten DLQ entries, one per event,
    // each with the reason naming the status, the receiver's answer and the batch.
    EXPECT_EQ(rx_.requests().size(), 1u);
    json list = transport_admin({{"op", "dlq_list"}, {"limit", 100}});
    std::set<std::string> dead;
    const std::string batch = expected_batch_id(ids);
    for (const auto &e : list["entries"]) {
        dead.insert(e["id"].get<std::string>());
        const std::string reason = e.value("reason", std::string());
        EXPECT_NE(reason.find("HTTP 400"), std::string::npos) << reason;
        EXPECT_NE(reason.find("schema mismatch"), std::string::npos) << reason;
        EXPECT_NE(reason.find(batch), std::string::npos) << reason;
    }
    EXPECT_EQ(dead, std::set<std::string>(ids.begin(), ids.end())) << list.dump();
}

// ------------------------------------------------------------------------------------------
// validate

TEST(WebhookBatchValidate, a_batching_action_shared_by_two_pipelines_is_refused) {
    fobs_test::TempDir dir("fobs-webhook-batch-validate");
    auto write = [&](bool shared) {
        std::string toml = R"(
[transports.mem]
plugin = "memory"

[actions.hook]
plugin = "webhook"
url = "http://127.0.0.1:9/hook"
batch_max_events = 10

[[pipelines]]
name = "orders"
transport = "mem"
actions = ["hook"]
consumer = "orders_worker"
)";
        if (shared)
            toml += R"(
[[pipelines]]
name = "invoices"
transport = "mem"
actions = ["hook"]
consumer = "invoices_worker"
)";
        fobs_test::write_file(dir / "observer.toml", toml);
        return fobs_test::run_command(
            {fobs_test::observer_binary(), "validate", "-c", (dir / "observer.toml").string()});
    };
    auto [ok_rc, ok_out] = write(false);
    EXPECT_EQ(ok_rc, 0) << ok_out;
    auto [rc, out] = write(true);
    EXPECT_NE(rc, 0) << out;
    EXPECT_NE(out.find("batch_max_events"), std::string::npos) << out;
    EXPECT_NE(out.find("never mixes pipelines"), std::string::npos) << out;
}

} // namespace
