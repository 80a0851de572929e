// The `log` action: writes each event through the host's logger (never stdout), and can fail on
// purpose (fail_every, fail_first_deliveries, fail_entity_types) so that retry, backoff and
// dead-letter paths can be shown and tested without an external peer.
#include "config.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

namespace fraiseql_observer::log_action {

class LogAction final : public sdk::Action {
  public:
    static constexpr const auto &config_keys = log_action::config_keys;

    explicit LogAction(sdk::Host host)
        : Action(host), config_(parse_config(host.config_json())) {}

    void start() override {
        std::lock_guard lock(mu_);
        stopping_ = false;
    }

    void stop() noexcept override {
        std::lock_guard lock(mu_);
        stopping_ = true;
        stop_cv_.notify_all();
    }

    // Runs on the caller's thread: delay_ms blocks it, which the host bounds per pipeline.
    void execute(const sdk::Event &event, sdk::Completion done) override {
        const uint64_t n = ++executions_;
        if (config_.delay_ms > 0) {
            std::unique_lock lock(mu_);
            if (stop_cv_.wait_for(lock, std::chrono::milliseconds(config_.delay_ms),
                                  [&] { return stopping_; })) {
                lock.unlock();
                done.retry("log action stopping");
                return;
            }
        }

        enum class Result { ok, retry, failed } result = Result::ok;
        std::string reason;
        if (std::find(config_.fail_entity_types.begin(), config_.fail_entity_types.end(),
                      event.entity_type) != config_.fail_entity_types.end()) {
            result = Result::failed;
            reason = "entity type " + std::string(event.entity_type) +
                     " is listed in fail_entity_types";
        } else if (config_.fail_first_deliveries > 0 && event.delivery_count > 0 &&
                   event.delivery_count <= config_.fail_first_deliveries) {
            result = Result::retry;
            reason = "fail_first_deliveries: delivery " + std::to_string(event.delivery_count) +
                     " of the first " + std::to_string(config_.fail_first_deliveries) + " fails";
        } else if (config_.fail_every > 0 && n % config_.fail_every == 0) {
            result = config_.fail_mode == FailMode::failed ? Result::failed : Result::retry;
            reason = "fail_every: execution " + std::to_string(n) + " fails (every " +
                     std::to_string(config_.fail_every) + ")";
        }

        if (host().log_enabled(config_.level)) {
            std::string line = format(event);
            if (result != Result::ok)
                line += std::string(" -> ") + (result == Result::retry ? "retry" : "failed") +
                        " on purpose: " + reason;
            host().log(config_.level, line, event.id);
        }

        switch (result) {
        case Result::ok: done.ok(); break;
        case Result::retry: done.retry(reason, std::chrono::milliseconds(config_.retry_after_ms)); break;
        case Result::failed: done.fail(reason); break;
        }
    }

  private:
    std::string format(const sdk::Event &e) const {
        if (config_.format == Format::body) return std::string(e.body);
        std::string s = "event ";
        s.append(e.entity_type).append(".").append(e.operation);
        s.append(" entity_id=").append(e.entity_id);
        s.append(" id=").append(e.id);
        if (e.delivery_count > 0) s.append(" delivery=").append(std::to_string(e.delivery_count));
        return s;
    }

    const Config config_;
    std::atomic<uint64_t> executions_{0};
    std::mutex mu_;
    std::condition_variable stop_cv_;
    bool stopping_ = false;
};

} // namespace fraiseql_observer::log_action

FOBS_PLUGIN("log", "1.0.0", "Writes each event to the observer's log (with failure knobs for tests)",
            fraiseql_observer::log_action::LogAction)
