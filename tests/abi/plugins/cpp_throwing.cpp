// An action written with the C++ SDK wrapper whose component throws, to prove that the
// wrapper's trampolines turn every escaping exception into an error report (create/start) or a
// RETRY outcome (execute) instead of letting it unwind into the host. What it throws is chosen
// by its config text and by the event's entity type.
#include <fraiseql_observer/plugin.hpp>

#include <stdexcept>
#include <string>

namespace sdk = fraiseql_observer::sdk;

namespace {

bool has(std::string_view text, std::string_view word) {
    return text.find(word) != std::string_view::npos;
}

class ThrowingAction final : public sdk::Action {
  public:
    explicit ThrowingAction(sdk::Host host) : Action(host) {
        auto cfg = host.config_json();
        if (has(cfg, "throw_config"))
            throw sdk::ConfigError("retry.max_attempts", "max_attempts must be at least 1");
        if (has(cfg, "throw_runtime")) throw std::runtime_error("constructor failed on purpose");
        if (has(cfg, "throw_int")) throw 42;
        start_fails_ = has(cfg, "throw_on_start");
    }

    void start() override {
        if (start_fails_) throw sdk::TransientError("peer unreachable (on purpose)");
    }

    void execute(const sdk::Event &event, sdk::Completion done) override {
        if (event.entity_type == "throw") throw std::runtime_error("execute failed on purpose");
        if (event.entity_type == "throw_int") throw 7;
        if (event.entity_type == "drop") return; // `done` is dropped uncompleted
        if (event.entity_type == "fail") return done.fail("permanent failure on purpose");
        done.ok();
    }

  private:
    bool start_fails_ = false;
};

} // namespace

FOBS_PLUGIN("abi_throwing", "0.0.1", "ABI test: an action that throws", ThrowingAction)
