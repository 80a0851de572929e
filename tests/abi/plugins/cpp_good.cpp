// A minimal, well-behaved action written with the C++ SDK wrapper: the control sample of the
// ABI tests (it must load, create, execute -> OK, answer admin and report ready).
#include <fraiseql_observer/plugin.hpp>

#include <atomic>
#include <string>

namespace sdk = fraiseql_observer::sdk;

namespace {

class GoodAction final : public sdk::Action {
  public:
    explicit GoodAction(sdk::Host host)
        : Action(host),
          executed_metric_(host.counter("abi_good_executed_total", "Events executed",
                                        {{"component", std::string(host.component_name())}})) {
        host.info("abi_good created with config " + std::string(host.config_json()));
    }

    void execute(const sdk::Event &event, sdk::Completion done) override {
        ++executed_;
        executed_metric_.add();
        host().log(FOBS_LOG_INFO, "executed " + std::string(event.entity_type) + " " +
                                      std::string(event.operation), event.id);
        done.ok();
    }

    bool ready(std::string &) override { return true; }

    std::string admin(std::string_view request) override {
        if (request.find("\"count\"") == std::string_view::npos)
            throw sdk::UnsupportedOperation("unknown op");
        return "{\"executed\":" + std::to_string(executed_.load()) + "}";
    }

  private:
    sdk::Metric executed_metric_;
    std::atomic<long> executed_{0};
};

} // namespace

FOBS_PLUGIN("abi_good", "1.2.3", "ABI test: a well-behaved action", GoodAction)
