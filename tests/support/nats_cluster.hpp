// A real three-member NATS cluster for tests: `nats-server -js` processes on loopback, routed to
// each other, one cluster name, a store directory and a server name each. Started and stopped
// member by member by PID, so a test can take away the stream leader or the server its client
// is connected to and bring it back.
//
//   fobs_test::NatsCluster cluster;                 // 3 members, JetStream meta leader elected
//   config["url"] = cluster.urls();                 // "nats://127.0.0.1:a,nats://127.0.0.1:b,…"
//   int i = cluster.stream_leader("orders");        // which member leads the stream
//   cluster.kill9(i);  …  cluster.start(i);         // crash it, restart with the same store
//   cluster.pause(i);  …  cluster.resume(i);        // hang it (SIGSTOP), let it go on
#pragma once

#include "process.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace fobs_test {

class NatsCluster {
  public:
    /// Starts `size` members and waits until they agree on a JetStream meta leader (throws
    /// std::runtime_error, with the logs, when that does not happen within 30 s).
    explicit NatsCluster(int size = 3, std::vector<std::string> extra_args = {});
    ~NatsCluster(); // stops every member (SIGTERM, then SIGKILL)
    NatsCluster(const NatsCluster &) = delete;
    NatsCluster &operator=(const NatsCluster &) = delete;

    int size() const { return static_cast<int>(members_.size()); }
    /// Every member's client URL, comma-separated (what `url` in our config takes).
    std::string urls() const;
    std::string url(int i) const;
    int port(int i) const;
    int monitor_port(int i) const;
    /// The member's server name (-n), as JetStream reports leaders and peers.
    std::string name(int i) const;
    /// The member with this server name or client port; -1 when none.
    int index_of_name(const std::string &name) const;
    int index_of_port(int port) const;
    pid_t pid(int i) const;

    /// Starts member i again on its ports and store dir (no-op when running); waits for its
    /// client and monitor ports.
    void start(int i);
    /// Graceful stop (SIGTERM; SIGKILL after 10 s). Idempotent.
    void stop(int i);
    /// SIGKILL, as in a crash.
    void kill9(int i);
    /// SIGSTOP, as in a hung server (or one cut off without a TCP reset): its sockets stay
    /// open and accept, but it answers nothing. resume(i) (SIGCONT) undoes it; start(i),
    /// stop(i) and the destructor resume it first.
    void pause(int i);
    void resume(int i);
    bool running(int i);
    /// Member i's own log (every run).
    std::string log(int i) const;
    /// Every member's log, headed by its name (for failure messages).
    std::string logs() const;

    /// GET <path> on member i's monitor port (e.g. "/jsz?streams=true"); null when unreachable.
    nlohmann::json monitor(int i, const std::string &path) const;
    /// The member that is the JetStream meta leader as the running members report it; -1 when
    /// they have none or disagree.
    int meta_leader();
    /// Waits until the running members agree on a meta leader.
    bool wait_for_meta_leader(std::chrono::milliseconds timeout = std::chrono::seconds(30));
    /// The member leading `stream` (or its `consumer` when given); -1 when no running member
    /// reports a leader.
    int stream_leader(const std::string &stream, const std::string &consumer = "");

  private:
    struct Member {
        std::unique_ptr<TempDir> dir;
        std::string name;
        int port = 0, monitor_port = 0, cluster_port = 0;
        Process process;
        bool running = false;
        bool paused = false;
    };
    std::vector<std::string> argv(int i) const;
    /// Picks ports, starts every member and waits for a meta leader; "" when that worked,
    /// else why (with the logs).
    std::string start_all();

    std::vector<std::string> extra_args_;
    std::vector<Member> members_;
};

} // namespace fobs_test
