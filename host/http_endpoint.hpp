// The operations endpoint (SPEC section 8) on cpp-httplib: GET /metrics (Prometheus text),
// GET /healthz (process alive), GET /readyz (200 when every pipeline is ready, else 503 with a
// JSON body naming what is not).
// /metrics also carries fraiseql_observer_ready (0/1), the same answer as /readyz, taken at
// scrape time.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace fraiseql_observer::host {

class MetricsRegistry;

struct Readiness {
    bool ready = false;
    std::string json; // {"ready":bool,"components":[{pipeline,component,ready,why}]}
};

class HttpEndpoint {
  public:
    /// `listen` is "host:port" (port 0 = any free port). Binds in start().
    HttpEndpoint(std::string listen, MetricsRegistry &metrics,
                 std::function<Readiness()> readiness);
    ~HttpEndpoint();
    /// Binds and serves on a background thread. Throws std::runtime_error when it cannot bind.
    void start();
    void stop();
    /// The bound port (after start()).
    int port() const { return port_; }
    const std::string &host() const { return host_; }

  private:
    std::string host_;
    int requested_port_ = 0;
    int port_ = 0;
    MetricsRegistry &metrics_;
    std::function<Readiness()> readiness_;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
};

/// Splits "host:port" ("[::1]:9464" too). Throws std::invalid_argument with a reason.
std::pair<std::string, int> split_listen_address(const std::string &listen);

} // namespace fraiseql_observer::host
