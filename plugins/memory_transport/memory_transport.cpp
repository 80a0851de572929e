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
        : Transport(host), config_(parse_config(host.config_json())),
          log_(std::make_shared<MemoryLog>(config_, host)),
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

    // fobs.limits/1, from the config (memory_log.cpp is what they describe).
    // A delivery not completed within ack_wait_ms is delivered again.
    uint64_t redelivery_after_ms() const override { return uint64_t(config_.ack_wait_ms); }
    // The delivery after which a failing message is dead-lettered.
    uint64_t max_deliveries() const override { return config_.max_deliver; }
    // A consumer gets at most the host's max_in_flight deliveries outstanding, but one that
    // completed RETRY frees its slot while it waits for its redelivery, so new messages keep
    // coming: what bounds the unsettled messages of a consumer is only `capacity`, the
    // messages the log holds at all.
    uint64_t max_unacked() const override { return config_.capacity; }

  private:
    const Config config_;
    std::shared_ptr<MemoryLog> log_;
    std::shared_ptr<ConsumerRegistry> registry_;
    std::atomic<uint64_t> next_consumer_id_{0};
};

} // namespace fraiseql_observer::memory

FOBS_PLUGIN("memory", "1.0.0",
            "In-process bounded log with durable-transport semantics (single process, tests, demos)",
            fraiseql_observer::memory::MemoryTransport)
