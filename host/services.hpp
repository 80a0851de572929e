// Host-wide services shared by all instances: loggers, the metrics registry, settings.
#pragma once

#include "metrics.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
}

namespace fraiseql_observer::host {

struct LogSettings {
    std::string level = "info";  // trace|debug|info|warn|error
    std::string format = "text"; // text|json
};

class Services {
  public:
    explicit Services(LogSettings log = {});
    ~Services();

    MetricsRegistry &metrics() { return metrics_; }
    /// Logger named `name` ("pipeline/component"), created on first use with the settings.
    std::shared_ptr<spdlog::logger> logger(const std::string &name);
    /// Logs `message` on logger `name`, tagging the line with `event_id` when non-empty
    /// (a field in JSON lines, a suffix in text lines).
    void log(const std::string &name, int level, std::string_view message,
             std::string_view event_id = {});
    const LogSettings &log_settings() const { return log_; }
    /// Extra sink for tests: every formatted log line is also appended here.
    void capture_logs(bool on);
    std::vector<std::string> captured_logs() const;

  private:
    struct Impl;
    LogSettings log_;
    MetricsRegistry metrics_;
    std::unique_ptr<Impl> impl_;
};

} // namespace fraiseql_observer::host
