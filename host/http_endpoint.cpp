#include "http_endpoint.hpp"

#include "metrics.hpp"

#include <pthread.h>
#include <httplib.h>

#include <chrono>
#include <stdexcept>

namespace fraiseql_observer::host {

std::pair<std::string, int> split_listen_address(const std::string &listen) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size())
        throw std::invalid_argument("expected host:port, got \"" + listen + "\"");
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    std::string port_text = listen.substr(colon + 1);
    int port = 0;
    for (char c : port_text) {
        if (c < '0' || c > '9') throw std::invalid_argument("port \"" + port_text + "\" is not a number");
        port = port * 10 + (c - '0');
        if (port > 65535) throw std::invalid_argument("port " + port_text + " is out of range");
    }
    return {host, port};
}

HttpEndpoint::HttpEndpoint(std::string listen, MetricsRegistry &metrics,
                           std::function<Readiness()> readiness)
    : metrics_(metrics), readiness_(std::move(readiness)) {
    auto [h, p] = split_listen_address(listen);
    host_ = h;
    requested_port_ = p;
}

HttpEndpoint::~HttpEndpoint() { stop(); }

void HttpEndpoint::start() {
    server_ = std::make_unique<httplib::Server>();
    server_->Get("/metrics", [this](const httplib::Request &, httplib::Response &res) {
        res.set_content(metrics_.exposition(), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_->Get("/healthz", [](const httplib::Request &, httplib::Response &res) {
        res.set_content("{\"status\":\"ok\"}\n", "application/json");
    });
    server_->Get("/readyz", [this](const httplib::Request &, httplib::Response &res) {
        Readiness r = readiness_();
        res.status = r.ready ? 200 : 503;
        res.set_content(r.json + "\n", "application/json");
    });
    if (requested_port_ == 0) {
        port_ = server_->bind_to_any_port(host_);
        if (port_ <= 0) throw std::runtime_error("cannot listen on " + host_ + ":0");
    } else {
        if (!server_->bind_to_port(host_, requested_port_))
            throw std::runtime_error("cannot listen on " + host_ + ":" +
                                     std::to_string(requested_port_) +
                                     " (in use? set [observer] metrics_listen, or \"\" to disable)");
        port_ = requested_port_;
    }
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "http-endpoint");
        server_->listen_after_bind();
    });
    // cpp-httplib 0.11's stop() is lost when it comes before the listen loop runs, and join()
    // would then hang: return only once the server is running.
    for (int i = 0; i < 500 && !server_->is_running(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

void HttpEndpoint::stop() {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
}

} // namespace fraiseql_observer::host
