#include "http_endpoint.hpp"

#include "metrics.hpp"

#include <pthread.h>
#include <sys/socket.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace fraiseql_observer::host {

namespace {

// How long one connection may keep a worker while it says nothing: the wait for a request
// (cpp-httplib's keep-alive wait, also used for the first request) and for each read inside
// one. Prometheus and health probes send their request at once, so one second is plenty.
constexpr time_t k_idle_read_secs = 1;
// Workers are started per waiting connection up to this many, so silent or slow clients never
// queue /healthz behind them; cpp-httplib's own pool has a fixed 8 workers.
constexpr std::size_t k_max_workers = 64;
constexpr std::size_t k_min_workers = 2;
constexpr auto k_worker_idle_exit = std::chrono::seconds(30);

// cpp-httplib hands each accepted connection to one task, which reads its requests until the
// client closes, the keep-alive limit is reached or a read times out. This queue runs each task
// on an idle worker, else starts one (up to k_max_workers); workers above k_min_workers that
// stay idle for k_worker_idle_exit end.
class ConnectionWorkers final : public httplib::TaskQueue {
  public:
    void enqueue(std::function<void()> fn) override {
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(fn));
        join_finished_locked();
        if (idle_ < jobs_.size() && workers_.size() < k_max_workers) {
            try {
                std::thread t([this] { work(); });
                workers_.emplace(t.get_id(), std::move(t));
            } catch (const std::system_error &) {
                // No thread to be had: the task waits for a running worker (nothing may throw
                // into cpp-httplib's accept loop).
            }
        }
        wake_.notify_one();
    }

    void shutdown() override {
        std::map<std::thread::id, std::thread> all;
        {
            std::lock_guard lock(mutex_);
            shutdown_ = true;
            all.swap(workers_);
            finished_.clear();
        }
        wake_.notify_all();
        for (auto &[id, t] : all) t.join();
    }

  private:
    void work() {
        pthread_setname_np(pthread_self(), "http-worker");
        std::unique_lock lock(mutex_);
        for (;;) {
            ++idle_;
            bool woken = wake_.wait_for(lock, k_worker_idle_exit,
                                        [this] { return shutdown_ || !jobs_.empty(); });
            --idle_;
            if (!jobs_.empty()) { // runs what is queued even at shutdown: the task closes its socket
                auto fn = std::move(jobs_.front());
                jobs_.pop_front();
                lock.unlock();
                fn();
                lock.lock();
                continue;
            }
            if (shutdown_) return;
            if (!woken && workers_.size() - finished_.size() > k_min_workers) {
                finished_.push_back(std::this_thread::get_id()); // joined by the next enqueue
                return;
            }
        }
    }

    void join_finished_locked() {
        for (auto id : finished_) {
            auto it = workers_.find(id);
            if (it == workers_.end()) continue;
            it->second.join(); // it has returned or is about to: it holds no lock
            workers_.erase(it);
        }
        finished_.clear();
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    std::map<std::thread::id, std::thread> workers_;
    std::vector<std::thread::id> finished_;
    std::size_t idle_ = 0;
    bool shutdown_ = false;
};

// cpp-httplib 0.11 listens with a backlog of 5: a burst of connections (probes, a scrape, a few
// idle clients arriving together) overflows it, and the kernel drops SYNs that clients resend
// only after a second. listen() again on the bound socket raises the backlog (Linux).
class Server final : public httplib::Server {
  public:
    void raise_backlog(int backlog) {
        socket_t sock = svr_sock_;
        if (sock != INVALID_SOCKET) ::listen(sock, backlog);
    }
};

} // namespace

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
    auto server = std::make_unique<Server>();
    Server &raw = *server;
    server_ = std::move(server);
    // cpp-httplib's default also sets SO_REUSEPORT, which lets a second observer bind the same
    // address and take half the scrapes. SO_REUSEADDR alone still lets a restarted observer
    // bind while the old connections sit in TIME_WAIT, and Linux refuses it for an address
    // another socket listens on.
    server_->set_socket_options([](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server_->new_task_queue = [] { return new ConnectionWorkers(); };
    server_->set_keep_alive_timeout(k_idle_read_secs);
    server_->set_read_timeout(k_idle_read_secs, 0);
    server_->set_write_timeout(5, 0);
    server_->set_payload_max_length(64 * 1024); // GET only: nothing legitimate sends a body
    // fraiseql_observer_ready mirrors /readyz for alerting: Prometheus scrapes /metrics only,
    // so the readiness check runs at scrape time and the gauge is never staler than the scrape.
    Series *ready_gauge = metrics_.series(
        MetricType::gauge, "ready",
        "1 when every pipeline is connected and running (as GET /readyz answers 200), else 0", {});
    server_->Get("/metrics", [this, ready_gauge](const httplib::Request &, httplib::Response &res) {
        if (ready_gauge) ready_gauge->set(readiness_().ready ? 1 : 0);
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
    raw.raise_backlog(SOMAXCONN);
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
