// kill -9 of a worker process mid-batch, then a restart: every event is processed at least
// once, none is lost (distinct ids counted). Real processes throughout: nats-server and the
// `fraiseql-observer run --role worker` binary with the nats transport and the log action.
#include "harness.hpp"
#include "nats_server.hpp"
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <set>
#include <sstream>

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

    fobs_test::write_file(dir / "worker.toml", R"(
[observer]
metrics_listen = ""
log_level = "info"

[transports.bus]
plugin = "nats"
url = ")" + nats.url() + R"("
stream_name = "kill_events"
subject_prefix = "kill.mutation"
dlq_prefix = "kill.dlq"
[transports.bus.jetstream]
max_bytes = 67108864
ack_wait_secs = 2

[actions.audit]
plugin = "log"
delay_ms = 2

[[pipelines]]
name = "orders"
transport = "bus"
actions = ["audit"]
consumer = "kill_worker"
)");
    auto worker = [&](const std::string &log) {
        fobs_test::ProcessOptions o;
        o.argv = {fobs_test::observer_binary(), "run", "-c", (dir / "worker.toml").string(),
                  "--role", "worker"};
        o.output = dir / log;
        return fobs_test::Process(o);
    };

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

} // namespace
