// A third-party plugin that implements the 1.1 capabilities with the C++ SDK, and names
// nothing the host knows: a transport with fobs.status/1, fobs.dlq/1 (replay writes progress
// lines), fobs.limits/1 (max_deliveries, max_unacked from its config) and one capability of
// its own ("abi_caps.echo/1"), an action with fobs.limits/1 (max_concurrency from its config),
// and a source with fobs.sql/1 and an fobs.limits/1 struct of the layout before
// max_deliveries was appended. The CLI tests drive `status`, `dlq`, `sql` and the ordering
// warnings of `validate` through it, which proves the host needs no plugin name for them.
#include <fraiseql_observer/plugin.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace sdk = fraiseql_observer::sdk;

namespace {

// The integer value of `"key": N` in a flat JSON config, or `fallback` when absent; -1 reads
// as UINT64_MAX ("unlimited" in fobs.limits/1).
uint64_t limit_in(std::string_view cfg, std::string_view key, uint64_t fallback) {
    auto at = cfg.find("\"" + std::string(key) + "\"");
    if (at == std::string_view::npos) return fallback;
    const long long v = std::strtoll(std::string(cfg.substr(cfg.find(':', at) + 1)).c_str(), nullptr, 10);
    return v < 0 ? UINT64_MAX : static_cast<uint64_t>(v);
}

struct EchoCapability {
    uint32_t struct_size;
    int32_t (*twice)(int32_t);
};

class CapsTransport final : public sdk::Transport {
  public:
    // {"ready_file": "/path"}: start fails as retriable until that file exists, like a peer
    // that comes up after the observer (the host must retry, not give up).
    explicit CapsTransport(sdk::Host host)
        : Transport(host), max_deliveries_(limit_in(host.config_json(), "max_deliveries", 0)),
          max_unacked_(limit_in(host.config_json(), "max_unacked", 0)) {
        std::string_view cfg = host.config_json();
        auto key = cfg.find("\"ready_file\"");
        if (key != std::string_view::npos) {
            auto start = cfg.find('"', cfg.find(':', key)) + 1, end = cfg.find('"', start);
            ready_file_ = std::string(cfg.substr(start, end - start));
        }
    }

    void start() override {
        if (ready_file_.empty()) return;
        std::FILE *f = std::fopen(ready_file_.c_str(), "r");
        if (!f) throw sdk::TransientError("peer not up yet (" + ready_file_ + " missing)");
        std::fclose(f);
    }

    static const void *capability(const char *id) {
        static const EchoCapability echo{sizeof(EchoCapability), [](int32_t x) { return 2 * x; }};
        return std::string_view(id) == "abi_caps.echo/1" ? &echo : nullptr;
    }

    void publish(const sdk::Event &, sdk::Completion done) override { done.ok(); }
    // A consumer that never delivers: the events published here are dropped.
    struct Idle final : sdk::Consumer {
        void close() noexcept override {}
    };
    std::unique_ptr<sdk::Consumer> open_consumer(const sdk::ConsumerOptions &,
                                                 sdk::ConsumerSink) override {
        return std::make_unique<Idle>();
    }

    std::string status_json(std::string_view request) override {
        // The request's consumer comes back in a section name: the CLI passes it on.
        std::string consumer = request.find("\"consumer\":\"\"") != std::string_view::npos ? "" : "c1";
        std::string out = R"({"summary":"caps transport up","sections":[)"
                          R"({"title":"queue","name":"Q1","rows":[["messages",3],["oldest","t0"]]},)"
                          R"({"title":"members","rows":[],"tables":[{"title":"replicas","columns":["server","current"],)"
                          R"("rows":[["m1",true],["m2",false]]}]})";
        if (!consumer.empty()) out += R"(,{"title":"reader","name":"c1","rows":[["behind",0]]})";
        return out + R"(],"raw_figure":42})";
    }

    std::string dlq_json(std::string_view request, const sdk::Writer &progress) override {
        if (request.find("\"replay\"") != std::string_view::npos) {
            for (int i = 0; i <= 3; ++i) {
                progress.line(R"({"progress":{"done":)" + std::to_string(i) + R"(,"total":3}})");
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            return R"({"replayed":3,"entries":[]})";
        }
        if (request.find("\"list\"") != std::string_view::npos)
            return R"({"depth":1,"entries":[{"seq":7,"id":"e-7","subject":"x.Order.INSERT","reason":"boom","action":"a","delivery_count":2}]})";
        throw sdk::UnsupportedOperation("abi_caps: only list and replay");
    }

    // fobs.limits/1: what its config says; 0 (not configured) = unknown.
    uint64_t max_deliveries() const override { return max_deliveries_; }
    uint64_t max_unacked() const override { return max_unacked_; }

  private:
    std::string ready_file_;
    uint64_t max_deliveries_, max_unacked_;
};

class CapsAction final : public sdk::Action {
  public:
    explicit CapsAction(sdk::Host host)
        : Action(host), max_concurrency_(limit_in(host.config_json(), "max_concurrency", 0)) {}
    void execute(const sdk::Event &, sdk::Completion done) override { done.ok(); }
    uint64_t max_concurrency() const override { return max_concurrency_; }

  private:
    uint64_t max_concurrency_;
};

class CapsSource final : public sdk::Source {
  public:
    using Source::Source;
    void start(sdk::SourceSink) override {}
    std::string sql_json(std::string_view request) override {
        if (request.find("\"cdc\"") != std::string_view::npos)
            throw sdk::UnsupportedOperation("abi_caps has no cdc mode");
        return R"({"sql":"CREATE TABLE abi_caps_outbox (id int);\n"})";
    }
    // fobs.limits/1 as a plugin built before max_deliveries, max_unacked and max_concurrency
    // were appended offers it: its struct_size ends after redelivery_after_ms. The entries
    // past the end hold an answer (99) the host must never read.
    static const void *capability(const char *id) {
        static const fobs_limits_capability old_layout = [] {
            fobs_limits_capability c{};
            c.struct_size = offsetof(fobs_limits_capability, max_deliveries);
            c.max_attempt_ms = [](void *) -> uint64_t { return 1234; };
            c.max_deliveries = c.max_unacked = c.max_concurrency = [](void *) -> uint64_t { return 99; };
            return c;
        }();
        return std::string_view(id) == FOBS_CAP_LIMITS ? &old_layout : nullptr;
    }
};

} // namespace

FOBS_PLUGIN("abi_caps", "0.0.1", "ABI test: 1.1 capabilities", CapsTransport, CapsSource, CapsAction)
