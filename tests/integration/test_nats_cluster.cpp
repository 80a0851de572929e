// The pipeline on a real three-member NATS cluster (R3 stream, DLQ and consumer) while a member
// dies: outbox source -> nats (replicas = 3) -> webhook through the real CLI, real PostgreSQL
// and a real HTTP receiver. One cluster and one PostgreSQL for the suite; each test its own
// database and stream.
//   - the STREAM LEADER is SIGKILLed mid-stream and restarted 10 s later;
//   - the member the observer is connected to is SIGKILLed (the client must move on);
//   - the CONSUMER LEADER is SIGKILLed mid-stream and restarted 10 s later;
// and in each: every event delivered (2xx), duplicates only with equal ids, every event stored
// once per Nats-Msg-Id, nothing pending, the DLQ empty, the outbox empty.
#include "js_reader.hpp"
#include "nats_cluster.hpp"
#include "nats_server.hpp"
#include "observer.hpp"
#include "pg_cluster.hpp"
#include "webhook_receiver.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <set>
#include <thread>

namespace {

using namespace fobs_test;
using namespace std::chrono_literals;
using json = nlohmann::json;

class NatsClusterPipeline : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        pg_ = new PgCluster();
        auto [code, sql] = run_command({observer_binary(), "sql"});
        if (code != 0) throw std::runtime_error("fraiseql-observer sql failed: " + sql);
        outbox_sql_ = new std::string(sql);
        cluster_ = new NatsCluster(3);
    }
    static void TearDownTestSuite() {
        delete cluster_;
        delete outbox_sql_;
        delete pg_;
        cluster_ = nullptr;
        outbox_sql_ = nullptr;
        pg_ = nullptr;
    }
    inline static PgCluster *pg_ = nullptr;
    inline static std::string *outbox_sql_ = nullptr;
    inline static NatsCluster *cluster_ = nullptr;

    void SetUp() override {
        // A previous test restarted a member: let the cluster settle before the next one.
        for (int i = 0; i < cluster_->size(); ++i) cluster_->start(i);
        ASSERT_TRUE(cluster_->wait_for_meta_leader()) << cluster_->logs();
    }

    static std::string observer_config(const std::string &db, const std::string &stream,
                                       const std::string &hook_url) {
        return R"(
[observer]
metrics_listen = "127.0.0.1:{metrics_port}"
log_format = "text"
shutdown_timeout_secs = 10

[sources.app_db]
plugin   = "pg_listen"
conninfo = ")" + pg_->conninfo(db) + R"("
mode     = "outbox"

[transport]
transport = "nats"
[transport.nats]
url            = ")" + cluster_->urls() + R"("
stream_name    = ")" + stream + R"("
subject_prefix = ")" + stream + R"(.mutation"
dlq_prefix     = ")" + stream + R"(.dlq"
consumer_name  = ")" + stream + R"(_worker"
[transport.nats.jetstream]
replicas      = 3
max_bytes     = 67108864
ack_wait_secs = 10

[actions.hook]
plugin = "webhook"
url    = ")" + hook_url + R"("

[[pipelines]]
name    = "orders"
source  = "app_db"
actions = ["hook"]
)";
    }

    // The observer's own view through `status --json`: {stored, pending, ack_pending, dlq};
    // all -1 when it could not be read (e.g. no stream leader at this moment).
    struct Status {
        long stored = -1, pending = -1, ack_pending = -1, dlq = -1, replicas = -1;
    };
    static Status status(ObserverProcess &obs) {
        auto [c, out] = run_command(
            {observer_binary(), "status", "--json", "-c", (obs.dir() / "observer.toml").string()}, {},
            20s);
        Status s;
        auto j = json::parse(out, nullptr, false);
        if (c != 0 || j.is_discarded() || !j.contains("pipelines")) return s;
        const auto &st = j["pipelines"][0]["transport_status"];
        if (st.contains("stream") && st["stream"].is_object())
            s.stored = st["stream"].value("messages", -1L);
        if (st.contains("consumer") && st["consumer"].is_object()) {
            s.pending = st["consumer"].value("num_pending", -1L);
            s.ack_pending = st["consumer"].value("num_ack_pending", -1L);
        }
        if (st.contains("dlq") && st["dlq"].is_object()) s.dlq = st["dlq"].value("depth", -1L);
        return s;
    }

    // How many connections of ours (named "fraiseql-observer/…") each running member holds,
    // from its /connz; `except` is left out (a hung member, whose monitor answers nothing).
    static std::map<int, int> observer_connections(int except = -1) {
        std::map<int, int> out;
        for (int i = 0; i < cluster_->size(); ++i) {
            if (i == except || !cluster_->running(i)) continue;
            auto j = cluster_->monitor(i, "/connz");
            if (j.is_null()) continue;
            for (const auto &c : j.value("connections", json::array()))
                if (c.value("name", std::string()).rfind("fraiseql-observer", 0) == 0) out[i]++;
        }
        return out;
    }
    static int total(const std::map<int, int> &m) {
        int n = 0;
        for (const auto &[i, k] : m) n += k;
        return n;
    }
    // The member holding the observer's connections (the first, if several), with how many
    // it has in `count`; -1 when none shows any within 10 s.
    static int member_with_our_connections(int &count) {
        std::map<int, int> with;
        eventually([&] { return !(with = observer_connections()).empty(); }, 10s);
        count = total(with);
        std::cerr << "observer connections: " << count << " on " << with.size() << " member(s)\n";
        return with.empty() ? -1 : with.begin()->first;
    }

    // How the victim fails: SIGKILL (a crash; restarted later) or SIGSTOP (hung: its sockets
    // stay open and accept, it answers nothing; SIGCONT later).
    enum class Failure { crash, hang };

    // Emits N outbox events in batches while `victim()` names the member to fail once a third
    // of them are in; the member comes back `down_for` after it failed. Then checks that
    // everything arrived exactly as promised.
    void run_through_node_loss(const std::string &stream, const std::function<int()> &victim,
                               const std::function<void(int)> &after_kill = {},
                               Failure failure = Failure::crash,
                               std::chrono::seconds down_for = 10s) {
        const std::string db = stream + "_db";
        pg_->exec("CREATE DATABASE " + db);
        pg_->exec(*outbox_sql_, db);
        WebhookReceiver rx;
        ObserverProcess obs(observer_config(db, stream, rx.url("/ok")));
        std::string why;
        ASSERT_TRUE(obs.wait_started(why)) << why;
        ASSERT_TRUE(eventually([&] { return obs.get("/readyz").first == 200; }, 30s))
            << obs.get("/readyz").second << obs.log();

        // The stream, its DLQ and the consumer were provisioned with three replicas.
        ASSERT_TRUE(eventually([&] { return cluster_->stream_leader(stream) >= 0; }, 15s));
        for (const std::string &s : {stream, stream + "_dlq"}) {
            auto j = cluster_->monitor(cluster_->stream_leader(stream),
                                       "/jsz?accounts=true&streams=true&config=true&consumers=true");
            bool found = false;
            for (const auto &acc : j.value("account_details", json::array()))
                for (const auto &sd : acc.value("stream_detail", json::array()))
                    if (sd.value("name", std::string()) == s) {
                        found = true;
                        EXPECT_EQ(sd["config"].value("num_replicas", 0), 3) << s << ": " << sd.dump();
                        EXPECT_EQ(sd["cluster"].value("replicas", json::array()).size(), 2u)
                            << s << ": " << sd.dump();
                        if (s == stream) {
                            for (const auto &c : sd.value("consumer_detail", json::array()))
                                EXPECT_EQ(c["cluster"].value("replicas", json::array()).size(), 2u)
                                    << "consumer " << c.dump();
                        }
                    }
            EXPECT_TRUE(found) << s << " not reported by the stream leader";
        }

        const int N = 4000, batch = 200;
        auto emit = [&](int from, int to) {
            pg_->exec("SELECT fraiseql_observer.emit('Order', 'INSERT', g::text, "
                      "jsonb_build_object('id', g)) FROM generate_series(" +
                          std::to_string(from) + ", " + std::to_string(to) + ") g",
                      db);
        };
        auto delivered = [&] { return rx.stats().value("distinct_ids", 0); };

        int killed = -1;
        auto killed_at = std::chrono::steady_clock::now();
        for (int from = 1; from <= N; from += batch) {
            emit(from, from + batch - 1);
            std::this_thread::sleep_for(150ms);
            if (killed < 0 && from > N / 3) {
                killed = victim();
                ASSERT_GE(killed, 0) << "no member to kill";
                std::cerr << (failure == Failure::crash ? "SIGKILL " : "SIGSTOP ")
                          << cluster_->name(killed) << " (pid " << cluster_->pid(killed)
                          << ") with " << delivered() << " of " << N << " delivered\n";
                if (failure == Failure::crash)
                    cluster_->kill9(killed);
                else
                    cluster_->pause(killed);
                killed_at = std::chrono::steady_clock::now();
                if (after_kill) after_kill(killed);
            }
        }
        ASSERT_GE(killed, 0);
        std::cerr << "all " << N << " emitted; " << delivered() << " delivered "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - killed_at).count()
                  << " ms after the kill\n";
        std::this_thread::sleep_until(killed_at + down_for);
        std::cerr << (failure == Failure::crash ? "restarting " : "resuming ")
                  << cluster_->name(killed) << " with " << delivered() << " delivered\n";
        cluster_->start(killed); // for a hung member: SIGCONT

        auto backlog = [&] {
            return std::stol(pg_->scalar("SELECT count(*) FROM fraiseql_observer.outbox", db));
        };
        // Generous, for a loaded 2-core machine: catching up after the election takes a few
        // seconds when idle (the receiver used to rewrite all its statistics after every
        // request, which held the whole run to 100-300 events/s; it appends them now).
        if (!eventually([&] { return delivered() >= N && backlog() == 0; }, 150s)) {
            const Status st = status(obs);
            FAIL() << delivered() << " of " << N << " delivered, outbox backlog " << backlog()
                   << "; stream holds " << st.stored << ", consumer pending " << st.pending
                   << ", ack pending " << st.ack_pending << ", DLQ " << st.dlq << "\n"
                   << obs.log() << cluster_->logs();
        }
        Status st;
        ASSERT_TRUE(eventually(
            [&] {
                st = status(obs);
                return st.pending == 0 && st.ack_pending == 0 && st.dlq == 0;
            },
            30s))
            << "pending " << st.pending << ", ack pending " << st.ack_pending << ", dlq " << st.dlq
            << "\n" << obs.log();

        // The receiver: every event (distinct idempotency keys == N, and no other key), and any
        // extra request is a redelivery of one of them.
        json rs = rx.stats();
        EXPECT_EQ(rs["distinct_ids"].get<int>(), N) << "a duplicate with a new id, or a loss";
        EXPECT_GE(rs["requests"].get<int>(), N);
        EXPECT_EQ(rs["by_path"].value("/ok", 0), rs["requests"].get<int>());
        EXPECT_EQ(rs["client_errors"].get<int>(), 0);

        // The stream: every event once per Nats-Msg-Id (the publish retries carried the same id).
        // Read through a member that did not fail: one resumed from a hang still believes for a
        // moment that it leads the stream and answers with what it held when it stopped.
        // Leadership may also still be settling after the member came back: wait for a full
        // read.
        JsReader js(cluster_->url(killed == 0 ? 1 : 0));
        std::vector<JsReader::Stored> msgs;
        eventually([&] { return (msgs = js.messages(stream)).size() >= static_cast<size_t>(N); },
                   30s);
        std::set<std::string> msg_ids;
        for (const auto &m : msgs) {
            auto it = m.headers.find("Nats-Msg-Id");
            ASSERT_NE(it, m.headers.end()) << "message " << m.seq << " without Nats-Msg-Id";
            msg_ids.insert(it->second);
        }
        EXPECT_EQ(msg_ids.size(), static_cast<size_t>(N));
        EXPECT_EQ(msgs.size(), static_cast<size_t>(N)) << "stored more than once under one id";
        EXPECT_EQ(js.count(stream + "_dlq"), 0u);
        EXPECT_EQ(obs.get("/readyz").first, 200) << obs.get("/readyz").second;
        std::cerr << "receiver: " << rs["requests"] << " requests for " << rs["distinct_ids"]
                  << " events; stream holds " << msgs.size() << "\n";
        EXPECT_EQ(obs.stop(), 0) << obs.log();
    }
};

TEST_F(NatsClusterPipeline, stream_leader_sigkilled_mid_stream_loses_nothing) {
    run_through_node_loss("cl_leader", [&] {
        int leader = -1;
        eventually([&] { return (leader = cluster_->stream_leader("cl_leader")) >= 0; }, 10s);
        return leader;
    });
}

// The durable consumer has its own Raft group and leader (often another member than the
// stream's): the fetch loop must carry on when it moves. This case once fell short (3 996 of
// 4 000 after 60 s on a loaded machine): deliveries lost with the killed consumer leader still
// counted against JetStream's own MaxDeliver, so an event could be given up by the server
// unattempted. The consumer's MaxDeliver is now unlimited and the plugin counts (see
// NatsWorkerKill.worker_killed_on_the_last_delivery_leaves_the_event_to_the_next_worker).
TEST_F(NatsClusterPipeline, consumer_leader_sigkilled_mid_stream_fetch_loop_carries_on) {
    run_through_node_loss("cl_cons", [&] {
        int leader = -1;
        eventually([&] { return (leader = cluster_->stream_leader("cl_cons", "cl_cons_worker")) >= 0; },
                   10s);
        if (leader >= 0)
            std::cerr << "consumer leader " << cluster_->name(leader) << ", stream leader "
                      << cluster_->name(std::max(0, cluster_->stream_leader("cl_cons"))) << "\n";
        return leader;
    });
}

TEST_F(NatsClusterPipeline, the_member_the_observer_is_connected_to_sigkilled_client_moves_on) {
    int connections_before = 0;
    run_through_node_loss(
        "cl_conn",
        [&] { return member_with_our_connections(connections_before); },
        [&](int killed) {
            // Every connection the observer had must be back, on the surviving members, while
            // the killed one is still down.
            std::map<int, int> with;
            EXPECT_TRUE(eventually(
                [&] {
                    with = observer_connections();
                    return total(with) == connections_before && !with.count(killed);
                },
                8s))
                << total(with) << " of " << connections_before
                << " observer connections back on the surviving members";
        });
}

// The server the observer is connected to hangs (SIGSTOP): no reset, no close, its port still
// accepts. Only the client's PINGs can tell; with cnats' defaults (every 2 minutes, 2 out) the
// pipeline sat on the hung member for 4-6 minutes. With ping_interval_ms = 5000 and
// max_pings_out = 2 every connection is back on the other members within ~15 s, while the hung
// one is still stopped, and nothing is lost or stored twice.
TEST_F(NatsClusterPipeline, the_member_the_observer_is_connected_to_hangs_client_moves_on) {
    int connections_before = 0;
    run_through_node_loss(
        "cl_hang",
        [&] { return member_with_our_connections(connections_before); },
        [&](int hung) {
            // The hung member's monitor does not answer either, so only the others are
            // counted: every connection must be on them, while the hung one is still stopped.
            auto t0 = std::chrono::steady_clock::now();
            std::map<int, int> with;
            EXPECT_TRUE(eventually(
                [&] { return total(with = observer_connections(hung)) == connections_before; },
                35s))
                << total(with) << " of " << connections_before
                << " observer connections moved off the hung member";
            std::cerr << "connections moved off the hung member in "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - t0).count()
                      << " ms\n";
        },
        Failure::hang, 30s);
}

// entity_id of every event a `log` action wrote to this log.
std::set<std::string> logged_entity_ids(const std::string &log) {
    static const std::regex re("event Order\\.INSERT entity_id=([0-9]+) ");
    std::set<std::string> ids;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_search(line, m, re)) ids.insert(m[1]);
    }
    return ids;
}

// Three `run --role worker` processes share the pipeline's durable consumer on the R3 stream
// (an outbox publisher feeds it): each gets a share; one is SIGKILLed mid-stream and the other
// two finish its unacked messages after ack_wait. Every event processed, nothing pending.
TEST_F(NatsClusterPipeline, three_competing_workers_share_one_consumer_and_a_killed_one_loses_nothing) {
    const std::string stream = "cl_workers", db = "cl_workers_db";
    pg_->exec("CREATE DATABASE " + db);
    pg_->exec(*outbox_sql_, db);
    const std::string transport = R"(
[transport]
transport = "nats"
[transport.nats]
url            = ")" + cluster_->urls() + R"("
stream_name    = ")" + stream + R"("
subject_prefix = ")" + stream + R"(.mutation"
dlq_prefix     = ")" + stream + R"(.dlq"
consumer_name  = ")" + stream + R"(_worker"
[transport.nats.jetstream]
replicas        = 3
max_bytes       = 67108864
ack_wait_secs   = 3
max_ack_pending = 64
)";
    const std::string common = R"(
[observer]
metrics_listen = "127.0.0.1:{metrics_port}"
log_format = "text"
log_level = "info"
shutdown_timeout_secs = 10

[sources.app_db]
plugin   = "pg_listen"
conninfo = ")" + pg_->conninfo(db) + R"("
mode     = "outbox"
)" + transport + R"(
[actions.audit]
plugin   = "log"
delay_ms = 3

[[pipelines]]
name    = "orders"
source  = "app_db"
actions = ["audit"]
)";
    ObserverProcess publisher(common, {"--role", "publisher"});
    std::string why;
    ASSERT_TRUE(publisher.wait_started(why)) << why;
    std::vector<std::unique_ptr<ObserverProcess>> workers;
    for (int i = 0; i < 3; ++i) {
        workers.push_back(std::make_unique<ObserverProcess>(common, std::vector<std::string>{"--role", "worker"}));
        ASSERT_TRUE(workers.back()->wait_started(why)) << why;
    }

    const int N = 3000;
    pg_->exec("SELECT fraiseql_observer.emit('Order', 'INSERT', g::text, jsonb_build_object('id', g)) "
              "FROM generate_series(1, " + std::to_string(N) + ") g",
              db);
    auto share = [&](int i) { return logged_entity_ids(workers[static_cast<size_t>(i)]->log()).size(); };
    // Every worker gets some while all three run.
    ASSERT_TRUE(eventually([&] { return share(0) >= 50 && share(1) >= 50 && share(2) >= 50; }, 30s))
        << share(0) << " / " << share(1) << " / " << share(2) << "\n" << workers[0]->log();
    std::set<std::string> all;
    for (int i = 0; i < 3; ++i)
        for (auto &id : logged_entity_ids(workers[static_cast<size_t>(i)]->log())) all.insert(id);
    ASSERT_LT(all.size(), static_cast<size_t>(N)) << "the workers finished before one was killed";
    std::cerr << "shares before the kill: " << share(0) << " / " << share(1) << " / " << share(2)
              << "\n";
    workers[0]->process().kill9(); // its fetched, unacked messages go back after ack_wait

    ASSERT_TRUE(eventually(
        [&] {
            all.clear();
            for (int i = 0; i < 3; ++i)
                for (auto &id : logged_entity_ids(workers[static_cast<size_t>(i)]->log())) all.insert(id);
            return all.size() == static_cast<size_t>(N);
        },
        60s))
        << "distinct events processed: " << all.size() << " of " << N;
    Status st;
    ASSERT_TRUE(eventually(
        [&] {
            st = status(publisher);
            return st.pending == 0 && st.ack_pending == 0 && st.dlq == 0;
        },
        30s))
        << "pending " << st.pending << ", ack pending " << st.ack_pending << ", dlq " << st.dlq;
    std::cerr << "final shares: " << share(0) << " (killed) / " << share(1) << " / " << share(2)
              << "\n";
    EXPECT_EQ(workers[1]->stop(), 0) << workers[1]->log();
    EXPECT_EQ(workers[2]->stop(), 0) << workers[2]->log();
    EXPECT_EQ(publisher.stop(), 0) << publisher.log();
}

// A worker-only observer (no PostgreSQL) on an R3 stream of the suite's cluster.
static std::string worker_only_config(const std::string &urls, const std::string &stream) {
    return R"(
[observer]
metrics_listen = "127.0.0.1:{metrics_port}"
log_format = "text"
shutdown_timeout_secs = 5

[transport]
transport = "nats"
[transport.nats]
url            = ")" + urls + R"("
stream_name    = ")" + stream + R"("
subject_prefix = ")" + stream + R"(.mutation"
dlq_prefix     = ")" + stream + R"(.dlq"
consumer_name  = ")" + stream + R"(_worker"
[transport.nats.jetstream]
replicas = 3

[actions.audit]
plugin = "log"

[[pipelines]]
name    = "orders"
actions = ["audit"]
)";
}

// /readyz and `status` through the loss of one member, then of a second (no quorum), then
// both back:
//   - one of three gone (the one the observer is connected to): the client moves on, the
//     stream may elect a new leader, and /readyz stays 200 throughout; `status` names the
//     leader of the stream, its DLQ and the consumer and shows the lost member "offline";
//   - two of three gone: JetStream cannot store or deliver anything, /readyz turns 503 and
//     says why (no quorum) instead of staying ready on a live socket;
//   - both back: ready again by itself.
TEST_F(NatsClusterPipeline, readyz_stays_ready_with_a_quorum_and_turns_not_ready_without_one) {
    const std::string stream = "cl_ready";
    ObserverProcess obs(worker_only_config(cluster_->urls(), stream), {"--role", "worker"});
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    ASSERT_TRUE(eventually([&] { return obs.get("/readyz").first == 200; }, 30s))
        << obs.get("/readyz").second << obs.log();

    // The status answer on a healthy cluster: every group has a leader and two current
    // followers, and the text output says so.
    auto transport_status = [&] {
        auto [c, out] = run_command({observer_binary(), "status", "--json", "-c",
                                     (obs.dir() / "observer.toml").string()}, {}, 20s);
        auto j = json::parse(out, nullptr, false);
        if (c != 0 || j.is_discarded() || !j.contains("pipelines")) return json();
        return j["pipelines"][0].value("transport_status", json());
    };
    auto states = [](const json &group) { // "leader=n1 n2=current n3=offline" as a map
        std::map<std::string, std::string> m;
        if (!group.is_object() || !group.contains("cluster") || !group["cluster"].is_object()) return m;
        m[group["cluster"].value("leader", std::string())] = "leader";
        for (const auto &r : group["cluster"].value("replicas", json::array()))
            m[r.value("name", std::string())] = r.value("state", std::string());
        return m;
    };
    json st;
    ASSERT_TRUE(eventually(
        [&] {
            st = transport_status();
            if (st.is_null()) return false;
            for (const char *g : {"stream", "consumer", "dlq"}) {
                auto m = states(st[g]);
                if (m.size() != 3 || m.count("")) return false;
                for (int i = 0; i < 3; ++i)
                    if (!m.count(cluster_->name(i))) return false;
                for (const auto &[name, state] : m)
                    if (state != "leader" && state != "current") return false;
            }
            return true;
        },
        20s))
        << st.dump(2);
    EXPECT_EQ(st["stream"]["cluster"].value("name", std::string()), "fobs-test") << st.dump(2);
    {
        auto [c, text] = run_command({observer_binary(), "status", "-c", (obs.dir() / "observer.toml").string()},
                                     {}, 20s);
        EXPECT_EQ(c, 0) << text;
        // The generic rendering of fobs.status/1: a leader row and a table of the followers
        // for each of the stream, the consumer and the DLQ.
        auto count = [&](const std::regex &re) {
            return std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator());
        };
        EXPECT_EQ(count(std::regex(" leader=fobs-n[123]\n    replicas:\n      server +state")), 3) << text;
        EXPECT_EQ(count(std::regex("\n      fobs-n[123] +current ")), 6) << text;
    }

    // One member gone: the one the observer is connected to.
    std::map<int, int> with;
    ASSERT_TRUE(eventually([&] { return !(with = observer_connections()).empty(); }, 10s));
    const int first = with.begin()->first;
    std::cerr << "SIGKILL " << cluster_->name(first) << " (the observer's server; stream leader "
              << cluster_->name(std::max(0, cluster_->stream_leader(stream))) << ")\n";
    cluster_->kill9(first);
    const auto killed = std::chrono::steady_clock::now();
    int polls = 0, not_ready = 0;
    std::string first_refusal;
    while (std::chrono::steady_clock::now() - killed < 20s) {
        auto [code, body] = obs.get("/readyz");
        // The first instants belong to cnats' reconnect (a different reason, not JetStream's).
        if (std::chrono::steady_clock::now() - killed > 2s) {
            ++polls;
            if (code != 200 && not_ready++ == 0) first_refusal = body;
        }
        std::this_thread::sleep_for(250ms);
    }
    EXPECT_EQ(not_ready, 0) << not_ready << " of " << polls
                            << " /readyz polls refused with two of three members up: " << first_refusal;
    // `status` shows the lost member offline in every group, and a leader among the others.
    ASSERT_TRUE(eventually(
        [&] {
            st = transport_status();
            if (st.is_null()) return false;
            for (const char *g : {"stream", "consumer", "dlq"}) {
                auto m = states(st[g]);
                if (m[cluster_->name(first)] != "offline" || m.count("")) return false;
            }
            return true;
        },
        20s))
        << st.dump(2);

    // A second member gone: no quorum. Not ready, and the reason says so.
    int second = -1;
    for (int i = 0; i < 3 && second < 0; ++i)
        if (i != first) second = i;
    cluster_->kill9(second);
    const auto lost = std::chrono::steady_clock::now();
    std::pair<int, std::string> r;
    // If the second member was the one the observer had moved to, /readyz first says "NATS
    // disconnected, reconnecting" (also true) until the client is on the survivor; wait for
    // the quorum reason.
    ASSERT_TRUE(eventually(
        [&] {
            r = obs.get("/readyz");
            return r.first == 503 && r.second.find("fewer than a quorum") != std::string::npos;
        },
        60s))
        << r.second << "\n" << obs.log();
    std::cerr << "not ready "
              << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - lost).count()
              << " s after the quorum was lost: " << r.second << "\n";
    EXPECT_NE(r.second.find("fewer than a quorum"), std::string::npos) << r.second;
    EXPECT_NE(r.second.find(stream), std::string::npos) << r.second;

    // Both back: ready again without a restart.
    cluster_->start(first);
    cluster_->start(second);
    EXPECT_TRUE(eventually([&] { return (r = obs.get("/readyz")).first == 200; }, 60s))
        << r.second << "\n" << obs.log();
    EXPECT_EQ(obs.stop(), 0) << obs.log();
}

// Two `run --role publisher` processes on one outbox source (one reads, the other stands by on
// the advisory lock) while the stream leader is SIGKILLed and, with that member still down,
// the active publisher too: the standby takes over and re-reads what the other had published
// but not yet deleted from the outbox, with the same Nats-Msg-Ids. Exactly one copy of each
// event ends up on the stream.
TEST_F(NatsClusterPipeline, two_publishers_across_a_node_loss_store_each_event_once) {
    const std::string stream = "cl_pubs", db = "cl_pubs_db";
    pg_->exec("CREATE DATABASE " + db);
    pg_->exec(*outbox_sql_, db);
    const std::string config = R"(
[observer]
metrics_listen = "127.0.0.1:{metrics_port}"
log_format = "text"
shutdown_timeout_secs = 10

[sources.app_db]
plugin   = "pg_listen"
conninfo = ")" + pg_->conninfo(db) + R"("
mode     = "outbox"

[transport]
transport = "nats"
[transport.nats]
url            = ")" + cluster_->urls() + R"("
stream_name    = ")" + stream + R"("
subject_prefix = ")" + stream + R"(.mutation"
dlq_prefix     = ")" + stream + R"(.dlq"
[transport.nats.jetstream]
replicas  = 3
max_bytes = 67108864

[actions.audit]
plugin = "log"

[[pipelines]]
name    = "orders"
source  = "app_db"
actions = ["audit"]
)";
    ObserverProcess a(config, {"--role", "publisher"});
    std::string why;
    ASSERT_TRUE(a.wait_started(why)) << why;
    ASSERT_TRUE(eventually([&] { return a.get("/readyz").first == 200; }, 30s)) << a.log();
    ObserverProcess b(config, {"--role", "publisher"});
    ASSERT_TRUE(b.wait_started(why)) << why;
    ASSERT_TRUE(eventually([&] { return b.get("/readyz").second.find("standby") != std::string::npos; }, 20s))
        << b.get("/readyz").second << "\n" << b.log();

    const int N = 3000, batch = 150;
    auto emit = [&](int from, int to) {
        pg_->exec("SELECT fraiseql_observer.emit('Order', 'INSERT', g::text, jsonb_build_object('id', g)) "
                  "FROM generate_series(" + std::to_string(from) + ", " + std::to_string(to) + ") g",
                  db);
    };
    int member = -1;
    bool publisher_killed = false;
    auto member_killed_at = std::chrono::steady_clock::now();
    for (int from = 1; from <= N; from += batch) {
        emit(from, from + batch - 1);
        std::this_thread::sleep_for(100ms);
        if (member < 0 && from > N / 3) {
            eventually([&] { return (member = cluster_->stream_leader(stream)) >= 0; }, 10s);
            ASSERT_GE(member, 0);
            std::cerr << "SIGKILL stream leader " << cluster_->name(member) << "\n";
            cluster_->kill9(member);
            member_killed_at = std::chrono::steady_clock::now();
        } else if (member >= 0 && !publisher_killed && from > N / 2) {
            std::cerr << "SIGKILL the active publisher, outbox backlog "
                      << pg_->scalar("SELECT count(*) FROM fraiseql_observer.outbox", db) << "\n";
            a.process().kill9();
            publisher_killed = true;
        }
    }
    ASSERT_TRUE(publisher_killed);
    std::this_thread::sleep_until(member_killed_at + 10s);
    cluster_->start(member);

    auto backlog = [&] { return std::stol(pg_->scalar("SELECT count(*) FROM fraiseql_observer.outbox", db)); };
    ASSERT_TRUE(eventually([&] { return backlog() == 0; }, 60s))
        << "outbox backlog " << backlog() << "\n" << b.log();
    EXPECT_EQ(b.get("/readyz").first, 200) << b.get("/readyz").second;

    JsReader js(cluster_->url(0));
    std::vector<JsReader::Stored> msgs;
    ASSERT_TRUE(eventually([&] { return (msgs = js.messages(stream)).size() >= static_cast<size_t>(N); }, 30s))
        << msgs.size() << " of " << N << " on the stream";
    std::set<std::string> entity_ids, msg_ids;
    for (const auto &m : msgs) {
        entity_ids.insert(json::parse(m.body)["entity_id"].get<std::string>());
        auto it = m.headers.find("Nats-Msg-Id");
        if (it != m.headers.end()) msg_ids.insert(it->second);
    }
    EXPECT_EQ(entity_ids.size(), static_cast<size_t>(N)) << "events missing";
    EXPECT_EQ(msg_ids.size(), static_cast<size_t>(N));
    EXPECT_EQ(msgs.size(), static_cast<size_t>(N)) << "an event stored twice";
    // The standby did take over: it published (the active one died with events still to go).
    EXPECT_GT(b.metric("fraiseql_observer_source_events_total{pipeline=\"orders\",source=\"app_db\"}"), 0)
        << b.get("/metrics").second;
    EXPECT_EQ(b.stop(), 0) << b.log();
}

// replicas = 5 on a three-member cluster: a startup error that says what is wrong and what to
// do, not a cnats status or a retry loop.
TEST_F(NatsClusterPipeline, more_replicas_than_cluster_members_is_a_clear_startup_error) {
    fobs_test::TempDir dir("fobs-cluster-r5");
    write_file(dir / "observer.toml", R"(
[observer]
metrics_listen = ""

[transport]
transport = "nats"
[transport.nats]
url         = ")" + cluster_->urls() + R"("
stream_name = "cl_r5"
[transport.nats.jetstream]
replicas = 5

[actions.audit]
plugin = "log"

[[pipelines]]
name    = "orders"
actions = ["audit"]
)");
    auto started = std::chrono::steady_clock::now();
    auto [code, out] = run_command({observer_binary(), "run", "-c", (dir / "observer.toml").string(),
                                    "--role", "worker"},
                                   {}, 60s);
    EXPECT_NE(code, 0) << out;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 30s) << "retried instead of failing";
    EXPECT_NE(out.find("jetstream.replicas = 5"), std::string::npos) << out;
    EXPECT_NE(out.find("the cluster has 3 servers"), std::string::npos) << out;
    JsReader js(cluster_->url(0));
    EXPECT_EQ(js.count("cl_r5"), 0u);

    // The same config against a single, unclustered server: replicas > 1 cannot work at all.
    NatsServer single;
    auto text = read_file(dir / "observer.toml");
    text.replace(text.find(cluster_->urls()), cluster_->urls().size(), single.url());
    write_file(dir / "observer.toml", text);
    auto [code1, out1] = run_command({observer_binary(), "run", "-c", (dir / "observer.toml").string(),
                                      "--role", "worker"},
                                     {}, 60s);
    EXPECT_NE(code1, 0) << out1;
    EXPECT_NE(out1.find("jetstream.replicas = 5 but nats-server is not clustered"), std::string::npos)
        << out1;
    std::cerr << out1.substr(out1.find("startup failed")) << out.substr(out.find("startup failed"));
}

} // namespace
