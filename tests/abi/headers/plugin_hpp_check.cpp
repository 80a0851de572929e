// Header matrix: plugin.hpp must compile cleanly as C++17 and C++20 with -Wall -Wextra
// -pedantic -Werror, including the templates FOBS_PLUGIN instantiates for every kind (and
// redact.hpp, the other public C++ header).
#include <fraiseql_observer/plugin.hpp>
#include <fraiseql_observer/redact.hpp>

namespace sdk = fraiseql_observer::sdk;

namespace {

class CheckSource final : public sdk::Source {
  public:
    explicit CheckSource(sdk::Host host) : Source(host) {}
    void start(sdk::SourceSink sink) override { sink_ = sink; }
    void stop() noexcept override {}

  private:
    sdk::SourceSink sink_;
};

class CheckConsumer final : public sdk::Consumer {
  public:
    void close() noexcept override {}
};

class CheckTransport final : public sdk::Transport {
  public:
    explicit CheckTransport(sdk::Host host) : Transport(host) {}
    void publish(const sdk::Event &, sdk::Completion done) override { done.ok(); }
    std::unique_ptr<sdk::Consumer> open_consumer(const sdk::ConsumerOptions &,
                                                 sdk::ConsumerSink) override {
        return std::make_unique<CheckConsumer>();
    }
    std::string admin(std::string_view) override { return "{}"; }
};

class CheckAction final : public sdk::Action {
  public:
    explicit CheckAction(sdk::Host host)
        : Action(host), metric_(host.histogram("check_seconds", "help", {{"a", "b"}})) {}
    void execute(const sdk::Event &event, sdk::Completion done) override {
        metric_.observe(1.0);
        if (event.entity_type.empty()) return done.retry("empty", std::chrono::milliseconds(5));
        done.ok();
    }
    bool ready(std::string &why) override {
        why = sdk::redact_secrets("never: nats://u:p@h?token=t");
        return false;
    }

  private:
    sdk::Metric metric_;
};

} // namespace

FOBS_PLUGIN("check", "1.0.0", "header matrix check", CheckSource, CheckTransport, CheckAction)
