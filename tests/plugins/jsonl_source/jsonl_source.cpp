// Test source `test_jsonl`: follows a file of JSON lines and emits each line as a record, so
// pipeline tests can feed events without a database. Every settled record is written to
// `ack_path` as "<line number> ok|failed|retry <reason>"; lines settled RETRY are emitted
// again after `retry_ms`. Config: {"path": "...", "ack_path": "...", "retry_ms": 100}.
#include <fraiseql_observer/plugin.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

namespace sdk = fraiseql_observer::sdk;

namespace {

// Minimal extraction of a string field from the flat config JSON (the SDK has no JSON parser
// and this test plugin needs no other dependency).
std::string string_field(std::string_view json, const std::string &key) {
    auto k = json.find("\"" + key + "\"");
    if (k == std::string_view::npos) return {};
    auto q1 = json.find('"', json.find(':', k) + 1);
    auto q2 = json.find('"', q1 + 1);
    if (q1 == std::string_view::npos || q2 == std::string_view::npos) return {};
    return std::string(json.substr(q1 + 1, q2 - q1 - 1));
}

class JsonlSource final : public sdk::Source {
  public:
    explicit JsonlSource(sdk::Host host) : Source(host) {
        path_ = string_field(host.config_json(), "path");
        ack_path_ = string_field(host.config_json(), "ack_path");
        if (path_.empty()) throw sdk::ConfigError("path", "is required");
        if (ack_path_.empty()) throw sdk::ConfigError("ack_path", "is required");
    }
    ~JsonlSource() override { stop(); }

    void start(sdk::SourceSink sink) override {
        sink_ = sink;
        thread_ = std::thread([this] { run(); });
    }

    void stop() noexcept override {
        stopping_ = true;
        if (thread_.joinable()) thread_.join();
        // Wait (bounded) for what was handed over to settle.
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(30), [&] { return outstanding_ == 0; });
    }

  private:
    struct Token {
        fobs_completion c;
        JsonlSource *self;
        long line;
        std::string payload;
    };

    static void on_complete(const fobs_completion *c, const fobs_outcome *o) {
        auto *t = static_cast<Token *>(c->ctx);
        t->self->settled(t, *o);
    }

    void settled(Token *t, const fobs_outcome &o) {
        const char *kind = o.kind == FOBS_OUTCOME_OK ? "ok" : o.kind == FOBS_OUTCOME_FAILED ? "failed" : "retry";
        {
            std::lock_guard lock(mu_);
            std::ofstream ack(ack_path_, std::ios::app);
            ack << t->line << ' ' << kind << ' ' << std::string(sdk::view(o.reason)) << '\n';
            if (o.kind == FOBS_OUTCOME_RETRY && !stopping_) retry_.push_back({t->line, t->payload});
            --outstanding_;
        }
        cv_.notify_all();
        delete t;
    }

    void emit(long line, const std::string &payload) {
        auto *t = new Token{{sizeof(fobs_completion), nullptr, &on_complete}, this, line, payload};
        t->c.ctx = t;
        {
            std::lock_guard lock(mu_);
            ++outstanding_;
        }
        sink_.emit(t->payload, -1, "jsonl", &t->c);
    }

    void run() {
        std::ifstream in;
        long line_no = 0;
        std::string pending;
        while (!stopping_) {
            if (!in.is_open()) {
                in.open(path_);
                if (!in.is_open()) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                    continue;
                }
            }
            std::string chunk;
            bool progressed = false;
            while (!stopping_ && std::getline(in, chunk)) {
                if (in.eof()) { // partial last line: keep it until the newline arrives
                    pending += chunk;
                    break;
                }
                std::string line = pending + chunk;
                pending.clear();
                ++line_no;
                progressed = true;
                if (!line.empty()) emit(line_no, line);
            }
            in.clear();
            std::deque<std::pair<long, std::string>> again;
            {
                std::lock_guard lock(mu_);
                again.swap(retry_);
            }
            for (auto &[n, p] : again) emit(n, p);
            if (!progressed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    std::string path_, ack_path_;
    sdk::SourceSink sink_;
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    long outstanding_ = 0;
    std::deque<std::pair<long, std::string>> retry_;
};

} // namespace

FOBS_PLUGIN("test_jsonl", "1.0.0", "Test source: follows a file of JSON lines", JsonlSource)
