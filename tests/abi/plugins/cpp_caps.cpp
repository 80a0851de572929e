// A third-party plugin that implements the 1.1 capabilities with the C++ SDK, and names
// nothing the host knows: a transport with fobs.status/1, fobs.dlq/1 (replay writes progress
// lines) and one capability of its own ("abi_caps.echo/1"), and a source with fobs.sql/1 and
// fobs.limits/1. The CLI tests drive `status`, `dlq` and `sql` through it, which proves the
// host needs no plugin name for them.
#include <fraiseql_observer/plugin.hpp>

#include <cstdio>
#include <string>
#include <thread>

namespace sdk = fraiseql_observer::sdk;

namespace {

struct EchoCapability {
    uint32_t struct_size;
    int32_t (*twice)(int32_t);
};

class CapsTransport final : public sdk::Transport {
  public:
    // {"ready_file": "/path"}: start fails as retriable until that file exists, like a peer
    // that comes up after the observer (the host must retry, not give up).
    explicit CapsTransport(sdk::Host host) : Transport(host) {
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

  private:
    std::string ready_file_;
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
    uint64_t max_attempt_ms() const override { return 1234; }
};

} // namespace

FOBS_PLUGIN("abi_caps", "0.0.1", "ABI test: 1.1 capabilities", CapsTransport, CapsSource)
