// The operations endpoint under faults: a second observer on the same metrics_listen address
// fails to start instead of sharing the port, and silent or slow clients do not delay /healthz,
// /readyz or /metrics.
#include "observer.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

using namespace fobs_test;

namespace {

// A worker-only pipeline on the memory transport: no server to start, nothing to connect to.
std::string config(const std::string &listen) {
    return "[observer]\nmetrics_listen = \"" + listen +
           "\"\nshutdown_timeout_secs = 5\n"
           "[transports.local]\nplugin = \"memory\"\n[actions.sink]\nplugin = \"log\"\n"
           "[[pipelines]]\nname = \"p\"\nactions = [\"sink\"]\n";
}

// A TCP connection to 127.0.0.1:port that sends `bytes` and then nothing; closed on destruction.
class SilentClient {
  public:
    SilentClient(int port, const std::string &bytes) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
        if (connected_ && !bytes.empty())
            connected_ = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                         static_cast<ssize_t>(bytes.size());
    }
    ~SilentClient() {
        if (fd_ >= 0) ::close(fd_);
    }
    SilentClient(const SilentClient &) = delete;
    SilentClient &operator=(const SilentClient &) = delete;
    bool connected() const { return connected_; }

  private:
    int fd_;
    bool connected_ = false;
};

struct Timed {
    int status = 0;
    double seconds = 0;
};

// GET with a client that gives up after `limit` (connect and read).
Timed timed_get(int port, const std::string &path, std::chrono::seconds limit) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(limit);
    c.set_read_timeout(limit);
    auto start = std::chrono::steady_clock::now();
    auto r = c.Get(path.c_str());
    Timed t;
    t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    t.status = r ? r->status : 0;
    return t;
}

} // namespace

TEST(EndpointFaults, a_second_observer_on_the_same_metrics_address_fails_to_start) {
    ObserverProcess first(config("127.0.0.1:{metrics_port}"));
    std::string why;
    ASSERT_TRUE(first.wait_started(why)) << why;
    const int port = first.metrics_port();
    const std::string listen = "127.0.0.1:" + std::to_string(port);

    ObserverProcess second(config(listen));
    auto code = second.process().wait(std::chrono::seconds(20));
    ASSERT_TRUE(code.has_value()) << "the second observer shares the port and runs:\n" << second.log();
    EXPECT_EQ(*code, 1) << second.log(); // a runtime failure (SPEC section 2), not a config error
    EXPECT_NE(second.log().find("cannot listen on " + listen + " (in use?"), std::string::npos)
        << second.log();

    // The first one still answers every scrape, and a restart on the same address works.
    for (int i = 0; i < 20; ++i) ASSERT_EQ(first.get("/healthz").first, 200);
    ASSERT_EQ(first.stop(), 0) << first.log();
    ObserverProcess again(config(listen)); // its own metrics_port() is not the one it listens on
    EXPECT_TRUE(eventually([&] { return timed_get(port, "/healthz", std::chrono::seconds(1)).status == 200; },
                           std::chrono::seconds(20)))
        << again.log();
    EXPECT_TRUE(again.process().running()) << again.log();
}

TEST(EndpointFaults, silent_and_slow_clients_do_not_delay_health_and_metrics) {
    ObserverProcess obs(config("127.0.0.1:{metrics_port}"));
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    const int port = obs.metrics_port();

    // 32 connections that never send a byte, and 8 that stop inside their request.
    std::vector<std::unique_ptr<SilentClient>> clients;
    for (int i = 0; i < 32; ++i) clients.push_back(std::make_unique<SilentClient>(port, ""));
    for (int i = 0; i < 8; ++i)
        clients.push_back(std::make_unique<SilentClient>(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n"));
    for (const auto &c : clients) ASSERT_TRUE(c->connected());

    // Not a benchmark: each answers at all within a generous bound while they hang on.
    for (const char *path : {"/healthz", "/readyz", "/metrics", "/healthz"}) {
        Timed t = timed_get(port, path, std::chrono::seconds(3));
        EXPECT_EQ(t.status, 200) << path << " did not answer within 3 s (" << t.seconds << " s)";
    }
    // Later ones too, while the silent clients are being timed out and new ones arrive.
    for (int i = 0; i < 16; ++i) clients.push_back(std::make_unique<SilentClient>(port, ""));
    Timed t = timed_get(port, "/healthz", std::chrono::seconds(3));
    EXPECT_EQ(t.status, 200) << "/healthz after more silent clients (" << t.seconds << " s)";

    clients.clear();
    EXPECT_EQ(obs.stop(), 0) << obs.log();
}
