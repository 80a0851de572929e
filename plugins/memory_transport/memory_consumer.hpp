// One consumer of the memory transport: a delivery thread feeding the host's sink from a
// durable consumer group, and the completion tokens it hands out.
#pragma once

#include "memory_log.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <memory>
#include <mutex>
#include <set>
#include <thread>

namespace fraiseql_observer::memory {

class MemoryConsumer;

/// The transport's list of open consumers, so that stop() can join their threads.
struct ConsumerRegistry {
    std::mutex mu;
    std::set<MemoryConsumer *> open;
};

class MemoryConsumer final : public sdk::Consumer {
  public:
    /// Attaches to the group `options.consumer_name` and starts the delivery thread.
    MemoryConsumer(std::shared_ptr<MemoryLog> log, const sdk::ConsumerOptions &options,
                   sdk::ConsumerSink sink, uint64_t id,
                   std::shared_ptr<ConsumerRegistry> registry);
    ~MemoryConsumer() override;

    /// Stops delivering, waits (up to ack_wait_ms) for outstanding tokens, detaches.
    void close() noexcept override;
    /// Stops and joins the delivery thread only (transport stop; close() still detaches).
    void join() noexcept;

  private:
    void run();

    std::shared_ptr<MemoryLog> log_;
    std::shared_ptr<ConsumerRegistry> registry_;
    sdk::ConsumerSink sink_;
    ConsumerState state_;
    Group *group_;
    std::mutex join_mu_;
    std::thread thread_;
    bool closed_ = false;
};

} // namespace fraiseql_observer::memory
