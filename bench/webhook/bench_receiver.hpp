// A minimal HTTP/1.1 receiver for the webhook benchmark: one epoll thread, keep-alive, answers
// every request with 204 at once. It counts requests and its own CPU time, so a run can show
// that the receiver is not what limits the figures.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace fobs_bench {

class BenchReceiver {
  public:
    BenchReceiver(); // listens on a free 127.0.0.1 port
    ~BenchReceiver();
    BenchReceiver(const BenchReceiver &) = delete;
    BenchReceiver &operator=(const BenchReceiver &) = delete;

    int port() const { return port_; }
    uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
    /// CPU time the receiver thread used so far, in seconds.
    double cpu_seconds() const { return cpu_ns_.load(std::memory_order_relaxed) / 1e9; }

  private:
    void run();
    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    int stop_fd_ = -1;
    int port_ = 0;
    std::atomic<uint64_t> requests_{0};
    std::atomic<uint64_t> cpu_ns_{0};
    std::thread thread_;
};

} // namespace fobs_bench
