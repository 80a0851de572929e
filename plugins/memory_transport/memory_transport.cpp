// The `memory` transport: an in-process bounded log with the semantics of a durable transport
// (de-duplication, durable named consumers, ack wait, delayed redelivery, dead-letter queue).
// Data lives only in process memory: it is for single-process setups, tests and demos.
#include "config.hpp"
#include "memory_consumer.hpp"
#include "memory_log.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <atomic>
#include <vector>

namespace fraiseql_observer::memory {

class MemoryTransport final : public sdk::Transport {
  public:
    static constexpr const auto &config_keys = memory::config_keys;

    explicit MemoryTransport(sdk::Host host)
        : Transport(host),
          log_(std::make_shared<MemoryLog>(parse_config(host.config_json()), host)),
          registry_(std::make_shared<ConsumerRegistry>()) {}

    ~MemoryTransport() override { stop(); }

    void start() override { log_->start(); }

    void stop() noexcept override {
        log_->stop();
        std::vector<MemoryConsumer *> open;
        {
            std::lock_guard lock(registry_->mu);
            open.assign(registry_->open.begin(), registry_->open.end());
        }
        for (auto *c : open) c->join(); // [main-thread], like consumer_close: no race
        log_->release_host();
    }

    void publish(const sdk::Event &event, sdk::Completion done) override {
        log_->publish(event, std::move(done));
    }

    std::unique_ptr<sdk::Consumer> open_consumer(const sdk::ConsumerOptions &options,
                                                 sdk::ConsumerSink sink) override {
        if (options.consumer_name.empty())
            throw std::invalid_argument("the memory transport needs a consumer name");
        return std::make_unique<MemoryConsumer>(log_, options, sink, ++next_consumer_id_,
                                                registry_);
    }

    // fobs.status/1 and fobs.dlq/1 (abi.h): the log answers both (admin.cpp).
    std::string status_json(std::string_view request_json) override {
        return log_->answer(request_json, "status");
    }
    std::string dlq_json(std::string_view request_json, const sdk::Writer &) override {
        return log_->answer(request_json, {});
    }

  private:
    std::shared_ptr<MemoryLog> log_;
    std::shared_ptr<ConsumerRegistry> registry_;
    std::atomic<uint64_t> next_consumer_id_{0};
};

} // namespace fraiseql_observer::memory

FOBS_PLUGIN("memory", "1.0.0",
            "In-process bounded log with durable-transport semantics (single process, tests, demos)",
            fraiseql_observer::memory::MemoryTransport)
