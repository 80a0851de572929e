#include "nats_cluster.hpp"

#include "nats_server.hpp"

#include <httplib.h>

#include <csignal>
#include <fstream>

#include <stdexcept>

namespace fobs_test {

NatsCluster::NatsCluster(int size, std::vector<std::string> extra_args)
    : extra_args_(std::move(extra_args)) {
    if (size < 1) throw std::invalid_argument("a NATS cluster needs at least one member");
    members_.resize(static_cast<size_t>(size));
    for (int i = 0; i < size; ++i) {
        auto &m = members_[static_cast<size_t>(i)];
        m.dir = std::make_unique<TempDir>("fobs-nats-cluster");
        m.name = "fobs-n" + std::to_string(i + 1);
        std::ofstream(m.dir->path() / "fixture.conf") << k_jetstream_store_limit;
    }
    // A port picked free can be taken by another process before a member binds it; then that
    // member does not come up, and the cluster is started again on other ports (fresh stores).
    constexpr int attempts = 3;
    for (int attempt = 1;; ++attempt) {
        std::string failure = start_all();
        if (failure.empty()) break;
        for (int i = 0; i < size; ++i) kill9(i);
        if (attempt == attempts) throw std::runtime_error(failure);
        for (auto &m : members_) {
            std::error_code ec;
            std::filesystem::remove_all(m.dir->path() / "store", ec);
            std::filesystem::rename(m.dir->path() / "nats-server.log",
                                    m.dir->path() / ("nats-server.attempt" +
                                                     std::to_string(attempt) + ".log"),
                                    ec);
        }
    }
}

std::string NatsCluster::start_all() {
    for (auto &m : members_) {
        m.port = free_port();
        m.monitor_port = free_port();
        m.cluster_port = free_port();
    }
    // All members first, then the waits: a member's JetStream only comes up once it has found
    // its peers, so waiting for one before starting the next would only add time.
    for (int i = 0; i < size(); ++i) {
        auto &m = members_[static_cast<size_t>(i)];
        ProcessOptions o;
        o.argv = argv(i);
        o.output = m.dir->path() / "nats-server.log";
        m.process = Process(o);
        m.running = true;
    }
    for (int i = 0; i < size(); ++i)
        if (!wait_for_port(port(i)) || !wait_for_port(monitor_port(i)))
            return "cluster member " + name(i) + " did not start:\n" + logs();
    if (!wait_for_meta_leader(std::chrono::seconds(30)))
        return "the NATS cluster elected no JetStream meta leader in 30 s:\n" + logs();
    // A member whose route port was taken exits after opening its client port.
    for (int i = 0; i < size(); ++i)
        if (!running(i)) return "cluster member " + name(i) + " exited:\n" + logs();
    return {};
}

NatsCluster::~NatsCluster() {
    for (int i = 0; i < size(); ++i) stop(i);
}

std::vector<std::string> NatsCluster::argv(int i) const {
    const auto &m = members_[static_cast<size_t>(i)];
    std::string routes;
    for (int j = 0; j < size(); ++j) {
        if (j == i) continue;
        routes += (routes.empty() ? "" : ",") + std::string("nats://127.0.0.1:") +
                  std::to_string(members_[static_cast<size_t>(j)].cluster_port);
    }
    std::vector<std::string> a = {"nats-server", "-js", "-a", "127.0.0.1",
                                  "-p", std::to_string(m.port),
                                  "-m", std::to_string(m.monitor_port),
                                  "-sd", (m.dir->path() / "store").string(),
                                  "-n", m.name,
                                  "--cluster_name", "fobs-test",
                                  "--cluster", "nats://127.0.0.1:" + std::to_string(m.cluster_port)};
    if (!routes.empty()) a.insert(a.end(), {"--routes", routes});
    a.insert(a.end(), extra_args_.begin(), extra_args_.end());
    if (!has_config_arg(extra_args_))
        a.insert(a.end(), {"-c", (m.dir->path() / "fixture.conf").string()});
    return a;
}

std::string NatsCluster::urls() const {
    std::string out;
    for (int i = 0; i < size(); ++i) out += (i ? "," : "") + url(i);
    return out;
}

std::string NatsCluster::url(int i) const { return "nats://127.0.0.1:" + std::to_string(port(i)); }
int NatsCluster::port(int i) const { return members_.at(static_cast<size_t>(i)).port; }
int NatsCluster::monitor_port(int i) const {
    return members_.at(static_cast<size_t>(i)).monitor_port;
}
std::string NatsCluster::name(int i) const { return members_.at(static_cast<size_t>(i)).name; }
pid_t NatsCluster::pid(int i) const { return members_.at(static_cast<size_t>(i)).process.pid(); }

int NatsCluster::index_of_name(const std::string &n) const {
    for (int i = 0; i < size(); ++i)
        if (name(i) == n) return i;
    return -1;
}

int NatsCluster::index_of_port(int p) const {
    for (int i = 0; i < size(); ++i)
        if (port(i) == p) return i;
    return -1;
}

void NatsCluster::start(int i) {
    resume(i);
    auto &m = members_.at(static_cast<size_t>(i));
    if (m.running && m.process.running()) return;
    ProcessOptions o;
    o.argv = argv(i);
    o.output = m.dir->path() / "nats-server.log";
    m.process = Process(o);
    m.running = true;
    if (!wait_for_port(m.port) || !wait_for_port(m.monitor_port))
        throw std::runtime_error("cluster member " + m.name + " did not restart:\n" + log(i));
}

void NatsCluster::stop(int i) {
    resume(i);
    auto &m = members_.at(static_cast<size_t>(i));
    if (!m.running) return;
    m.process.stop(std::chrono::seconds(10));
    m.running = false;
}

void NatsCluster::kill9(int i) {
    auto &m = members_.at(static_cast<size_t>(i));
    if (!m.running) return;
    m.process.kill9(); // also ends a paused (stopped) member
    m.running = false;
    m.paused = false;
}

void NatsCluster::pause(int i) {
    auto &m = members_.at(static_cast<size_t>(i));
    if (!m.running || m.paused) return;
    ::kill(m.process.pid(), SIGSTOP);
    m.paused = true;
}

void NatsCluster::resume(int i) {
    auto &m = members_.at(static_cast<size_t>(i));
    if (!m.paused) return;
    ::kill(m.process.pid(), SIGCONT);
    m.paused = false;
}

bool NatsCluster::running(int i) {
    auto &m = members_.at(static_cast<size_t>(i));
    return m.running && m.process.running();
}

std::string NatsCluster::log(int i) const {
    return read_file(members_.at(static_cast<size_t>(i)).dir->path() / "nats-server.log");
}

std::string NatsCluster::logs() const {
    std::string out;
    for (int i = 0; i < size(); ++i) out += "=== " + name(i) + " ===\n" + log(i) + "\n";
    return out;
}

nlohmann::json NatsCluster::monitor(int i, const std::string &path) const {
    httplib::Client c("127.0.0.1", monitor_port(i));
    c.set_connection_timeout(1, 0);
    c.set_read_timeout(2, 0);
    auto r = c.Get(path);
    if (!r || r->status != 200) return nullptr;
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

int NatsCluster::meta_leader() {
    std::string leader;
    for (int i = 0; i < size(); ++i) {
        if (!running(i)) continue;
        auto j = monitor(i, "/jsz");
        if (j.is_null() || !j.contains("meta_cluster")) return -1;
        std::string l = j["meta_cluster"].value("leader", std::string());
        if (l.empty() || (!leader.empty() && l != leader)) return -1;
        leader = l;
    }
    return leader.empty() ? -1 : index_of_name(leader);
}

bool NatsCluster::wait_for_meta_leader(std::chrono::milliseconds timeout) {
    return eventually([&] { return meta_leader() >= 0; }, timeout);
}

int NatsCluster::stream_leader(const std::string &stream, const std::string &consumer) {
    for (int i = 0; i < size(); ++i) {
        if (!running(i)) continue;
        auto j = monitor(i, "/jsz?accounts=true&streams=true&consumers=true");
        if (j.is_null()) continue;
        for (const auto &acc : j.value("account_details", nlohmann::json::array())) {
            for (const auto &st : acc.value("stream_detail", nlohmann::json::array())) {
                if (st.value("name", std::string()) != stream) continue;
                if (consumer.empty()) {
                    if (st.contains("cluster") && st["cluster"].contains("leader")) {
                        int k = index_of_name(st["cluster"]["leader"].get<std::string>());
                        if (k >= 0) return k;
                    }
                    continue;
                }
                for (const auto &c : st.value("consumer_detail", nlohmann::json::array())) {
                    if (c.value("name", std::string()) != consumer) continue;
                    if (c.contains("cluster") && c["cluster"].contains("leader")) {
                        int k = index_of_name(c["cluster"]["leader"].get<std::string>());
                        if (k >= 0) return k;
                    }
                }
            }
        }
    }
    return -1;
}

} // namespace fobs_test
