#include "services.hpp"

#include "log_text.hpp"

#include <fraiseql_observer/redact.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <unordered_map>

namespace fraiseql_observer::host {

namespace {

// The event id of the line being logged on this thread; loggers are synchronous, so the
// formatter runs on the same thread right after it is set.
thread_local std::string_view tl_event_id;

std::string iso_time(spdlog::log_clock::time_point tp) {
    using namespace std::chrono;
    auto us = duration_cast<microseconds>(tp.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(us / 1000000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[64];
    std::snprintf(out, sizeof out, "%s.%06lldZ", buf, static_cast<long long>(us % 1000000));
    return out;
}

const char *level_name(spdlog::level::level_enum l) {
    switch (l) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
    }
}

// One formatter for both formats: text "2026-11-27T04:23:51.123456Z info  [orders/webhook] msg"
// or one JSON object per line with ts, level, logger, msg and event_id. Every line passes
// here, the host's own and the plugins', so this is where secrets are redacted (both formats)
// and where text lines escape control characters in every field (a payload's event id or a
// plugin's message can never start a line of its own); JSON lines are escaped by JSON.
class LineFormatter final : public spdlog::formatter {
  public:
    explicit LineFormatter(bool json) : json_(json) {}
    void format(const spdlog::details::log_msg &msg, spdlog::memory_buf_t &dest) override {
        const std::string text = sdk::redact_secrets(std::string_view(msg.payload.data(), msg.payload.size()));
        std::string_view logger(msg.logger_name.data(), msg.logger_name.size());
        std::string line;
        if (json_) {
            nlohmann::json j;
            j["ts"] = iso_time(msg.time);
            j["level"] = level_name(msg.level);
            j["logger"] = logger;
            j["msg"] = text;
            if (!tl_event_id.empty()) j["event_id"] = tl_event_id;
            line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        } else {
            line = iso_time(msg.time);
            line += ' ';
            std::string lvl = level_name(msg.level);
            lvl.resize(5, ' ');
            line += lvl;
            line += " [";
            line += escape_log_text(logger);
            line += "] ";
            line += escape_log_text(text);
            if (!tl_event_id.empty()) {
                line += " event_id=";
                line += escape_log_text(tl_event_id);
            }
        }
        line += '\n';
        dest.append(line.data(), line.data() + line.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<LineFormatter>(json_);
    }

  private:
    bool json_;
};

// Keeps formatted lines for tests. Formats at once, on the logging thread, so the line carries
// the thread's current event id like the other sinks' lines.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    std::vector<std::string> lines() {
        std::lock_guard lock(mutex_);
        return lines_;
    }

  protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        spdlog::memory_buf_t buf;
        formatter_->format(msg, buf);
        std::string line(buf.data(), buf.size());
        if (!line.empty() && line.back() == '\n') line.pop_back();
        if (lines_.size() >= 100000) lines_.erase(lines_.begin(), lines_.begin() + 50000);
        lines_.push_back(std::move(line));
    }
    void flush_() override {}

  private:
    std::vector<std::string> lines_;
};

spdlog::level::level_enum parse_level(const std::string &s) {
    if (s == "trace") return spdlog::level::trace;
    if (s == "debug") return spdlog::level::debug;
    if (s == "warn") return spdlog::level::warn;
    if (s == "error") return spdlog::level::err;
    return spdlog::level::info;
}

} // namespace

struct Services::Impl {
    std::mutex mu;
    std::shared_ptr<spdlog::sinks::sink> out;
    std::shared_ptr<CaptureSink> capture;
    std::unordered_map<std::string, std::shared_ptr<spdlog::logger>> loggers;
};

Services::Services(LogSettings log) : log_(std::move(log)), impl_(std::make_unique<Impl>()) {
    impl_->out = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    impl_->out->set_formatter(std::make_unique<LineFormatter>(log_.format == "json"));
}

Services::~Services() = default;

std::shared_ptr<spdlog::logger> Services::logger(const std::string &name) {
    std::lock_guard lock(impl_->mu);
    auto &slot = impl_->loggers[name];
    if (!slot) {
        std::vector<spdlog::sink_ptr> sinks{impl_->out};
        if (impl_->capture) sinks.push_back(impl_->capture);
        slot = std::make_shared<spdlog::logger>(name, sinks.begin(), sinks.end());
        slot->set_level(parse_level(log_.level));
        slot->flush_on(spdlog::level::trace);
    }
    return slot;
}

void Services::log(const std::string &name, int level, std::string_view message,
                   std::string_view event_id) {
    auto l = logger(name);
    auto lvl = static_cast<spdlog::level::level_enum>(level);
    if (!l->should_log(lvl)) return;
    tl_event_id = event_id;
    l->log(lvl, "{}", message);
    tl_event_id = {};
}

void Services::capture_logs(bool on) {
    std::lock_guard lock(impl_->mu);
    if (on && !impl_->capture) {
        impl_->capture = std::make_shared<CaptureSink>();
        impl_->capture->set_formatter(std::make_unique<LineFormatter>(log_.format == "json"));
        impl_->capture->set_level(spdlog::level::trace);
        for (auto &[n, l] : impl_->loggers) l->sinks().push_back(impl_->capture);
    }
}

std::vector<std::string> Services::captured_logs() const {
    std::lock_guard lock(impl_->mu);
    if (!impl_->capture) return {};
    return impl_->capture->lines();
}

} // namespace fraiseql_observer::host
