// kill -9 of a worker process mid-batch, then a restart: every event is processed at least
// once, none is lost (distinct ids counted). Real processes throughout: nats-server and the
// `fraiseql-observer run --role worker` binary with the nats transport and the log action.
#include "harness.hpp"
#include "js_reader.hpp"
#include "nats_server.hpp"
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::set<std::string> processed_ids(const std::string &log) {
    static const std::regex id_re("(?:^| )id=(kill-[0-9]+)");
    std::set<std::string> ids;
    std::istringstream in(log);
    std::string line;
    while (std::getline(in, line)) {
        std::smatch m;
        if (line.find("event Order.INSERT") != std::string::npos && std::regex_search(line, m, id_re))
            ids.insert(m[1]);
    }
    return ids;
}

// The config of a `run --role worker` process on one nats pipeline: stream `<name>_events` on
// subjects `<name>.mutation.>`, consumer `<name>_worker`, ack_wait 2 s, max_deliver as given
// (0: the plugin's default), and a log action that takes delay_ms per event.
std::string worker_config(const std::string &url, const std::string &name, int delay_ms,
                          int max_deliver = 0) {
    return R"(
[observer]
metrics_listen = ""
log_level = "info"

[transports.bus]
plugin = "nats"
url = ")" + url + R"("
stream_name = ")" + name + R"(_events"
subject_prefix = ")" + name + R"(.mutation"
dlq_prefix = ")" + name + R"(.dlq"
[transports.bus.jetstream]
max_bytes = 67108864
ack_wait_secs = 2
)" + (max_deliver > 0 ? "max_deliver = " + std::to_string(max_deliver) + "\n" : std::string()) +
           R"(
[actions.audit]
plugin = "log"
delay_ms = )" + std::to_string(delay_ms) + R"(

[[pipelines]]
name = "orders"
transport = "bus"
actions = ["audit"]
consumer = ")" + name + R"(_worker"
)";
}

// A `fraiseql-observer run --role worker` process with that config, its output in `log`.
fobs_test::Process start_worker(const std::filesystem::path &config, const std::filesystem::path &log) {
    fobs_test::ProcessOptions o;
    o.argv = {fobs_test::observer_binary(), "run", "-c", config.string(), "--role", "worker"};
    o.output = log;
    return fobs_test::Process(o);
}

TEST(NatsWorkerKill, kill9_mid_batch_then_restart_processes_every_event_at_least_once) {
    fobs_test::NatsServer nats;
    fobs_test::TempDir dir("fobs-nats-kill");
    const int N = 3000;
    json transport = {{"url", nats.url()},
                      {"stream_name", "kill_events"},
                      {"subject_prefix", "kill.mutation"},
                      {"dlq_prefix", "kill.dlq"},
                      {"jetstream", {{"max_bytes", 64 << 20}, {"ack_wait_secs", 2}}}};

    fobs_test::Harness h;
    auto t = h.transport("nats", transport.dump(), "bus");
    t->start();
    std::atomic<int> ok{0};
    for (int i = 0; i < N; ++i) {
        auto e = fobs_test::make_event("kill-" + std::to_string(i));
        fobs_event v = e.view();
        t->publish(v, [&](const fraiseql_observer::host::Outcome &o) {
            if (o.kind == FOBS_OUTCOME_OK) ok++;
        });
    }
    ASSERT_TRUE(fobs_test::eventually([&] { return ok == N; }, 30s));

    fobs_test::write_file(dir / "worker.toml", worker_config(nats.url(), "kill", 2));
    auto worker = [&](const std::string &log) { return start_worker(dir / "worker.toml", dir / log); };

    auto first = worker("first.log");
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return processed_ids(fobs_test::read_file(dir / "first.log")).size() >= 300; }, 30s))
        << fobs_test::read_file(dir / "first.log");
    first.kill9(); // mid-batch: fetched, delivered, not yet acked messages die with it
    size_t before = processed_ids(fobs_test::read_file(dir / "first.log")).size();
    ASSERT_LT(before, static_cast<size_t>(N)) << "the worker finished before it was killed";

    auto second = worker("second.log");
    std::set<std::string> all;
    ASSERT_TRUE(fobs_test::eventually(
        [&] {
            all = processed_ids(fobs_test::read_file(dir / "first.log"));
            for (auto &id : processed_ids(fobs_test::read_file(dir / "second.log"))) all.insert(id);
            return all.size() == static_cast<size_t>(N);
        },
        60s))
        << "distinct ids processed: " << all.size() << " of " << N;
    // And the consumer has nothing left: everything was acked.
    ASSERT_TRUE(fobs_test::eventually(
        [&] {
            auto st = json::parse(*fobs_test::ask(*t, json{{"op", "status"}, {"consumer", "kill_worker"}}.dump()));
            return st["consumer"]["num_pending"] == 0 && st["consumer"]["num_ack_pending"] == 0;
        },
        15s));
    EXPECT_EQ(second.stop(10s), 0) << fobs_test::read_file(dir / "second.log");
    std::cerr << "processed before kill -9: " << before << ", after restart: "
              << processed_ids(fobs_test::read_file(dir / "second.log")).size() << " of " << N
              << "\n";
    t->stop();
}

// A worker killed while it holds an event's LAST allowed delivery (max_deliver = 1): the action
// never finished, so the event was never attempted to the end. With JetStream's own MaxDeliver
// the server would stop delivering it and report it only in an advisory (at best the safety
// net dead-letters it unattempted; a missed advisory loses it). The consumer's MaxDeliver is
// unlimited and the observer counts: the next worker gets delivery 2 and attempts it; it
// succeeds, so it is acked, and the DLQ stays empty.
TEST(NatsWorkerKill, worker_killed_on_the_last_delivery_leaves_the_event_to_the_next_worker) {
    fobs_test::NatsServer nats;
    fobs_test::TempDir dir("fobs-nats-lastkill");
    json transport = {{"url", nats.url()},
                      {"stream_name", "last_events"},
                      {"subject_prefix", "last.mutation"},
                      {"dlq_prefix", "last.dlq"},
                      {"jetstream", {{"max_bytes", 64 << 20}, {"ack_wait_secs", 2}, {"max_deliver", 1}}}};
    fobs_test::Harness h;
    auto t = h.transport("nats", transport.dump(), "bus");
    t->start();
    ASSERT_EQ(t->publish_sync(fobs_test::make_event("held-1")).kind, FOBS_OUTCOME_OK);

    // The slow one holds its one delivery (kept alive) until it is killed.
    fobs_test::write_file(dir / "slow.toml", worker_config(nats.url(), "last", 600000, 1));
    fobs_test::write_file(dir / "fast.toml", worker_config(nats.url(), "last", 0, 1));
    auto worker = [&](const std::string &config, const std::string &log) {
        return start_worker(dir / config, dir / log);
    };
    auto consumer = [&] {
        auto st = json::parse(
            *fobs_test::ask(*t, json{{"op", "status"}, {"consumer", "last_worker"}}.dump()));
        // Not yet created by the first worker: null.
        return st.contains("consumer") && st["consumer"].is_object() ? st["consumer"] : json::object();
    };

    auto first = worker("slow.toml", "first.log");
    ASSERT_TRUE(fobs_test::eventually(
        [&] { return consumer().value("num_ack_pending", 0) == 1; }, 30s))
        << fobs_test::read_file(dir / "first.log");
    first.kill9();
    // Its delivery expires with no worker connected (ack_wait 2 s, well past it).
    std::this_thread::sleep_for(6s);

    auto second = worker("fast.toml", "second.log");
    ASSERT_TRUE(fobs_test::eventually(
        [&] {
            return fobs_test::read_file(dir / "second.log").find("event Order.INSERT") !=
                   std::string::npos;
        },
        30s))
        << "the event held by the killed worker was not delivered to the next one\n"
        << consumer().dump() << "\n"
        << fobs_test::read_file(dir / "second.log");
    fobs_test::JsReader js(nats.url());
    EXPECT_EQ(js.count("last_events_dlq"), 0u) << "attempted and acked, never dead-lettered";
    EXPECT_TRUE(fobs_test::eventually(
        [&] {
            auto c = consumer();
            return c.value("num_pending", -1) == 0 && c.value("num_ack_pending", -1) == 0;
        },
        15s))
        << consumer().dump();
    EXPECT_EQ(second.stop(10s), 0) << fobs_test::read_file(dir / "second.log");
    t->stop();
}

} // namespace
