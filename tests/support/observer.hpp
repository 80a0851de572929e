// A real `fraiseql-observer run` process for end-to-end tests: writes the config, starts the
// binary (with the test plugins on its path), scrapes its metrics endpoint, reads its log.
#pragma once

#include "process.hpp"

#include <map>
#include <memory>
#include <string>

namespace fobs_test {

class ObserverProcess {
  public:
    /// `config_toml` may use {metrics_port} and {dir}, replaced before writing. The process
    /// listens for metrics on a free port unless the config says otherwise.
    explicit ObserverProcess(std::string config_toml, std::vector<std::string> extra_args = {},
                             std::map<std::string, std::string> env = {});
    ~ObserverProcess();

    const std::filesystem::path &dir() const { return dir_.path(); }
    int metrics_port() const { return metrics_port_; }
    Process &process() { return *proc_; }
    std::string log() const { return proc_->output(); }

    /// Waits for the metrics port; false (with the log in `why`) when the process died.
    bool wait_started(std::string &why, std::chrono::seconds timeout = std::chrono::seconds(20));
    /// GET path on the metrics endpoint: {status, body}; status 0 when unreachable.
    std::pair<int, std::string> get(const std::string &path) const;
    /// The value of one exact series line ("name{labels}") in /metrics; -1 when absent.
    double metric(const std::string &series) const;
    /// SIGTERM and wait; returns the exit code (-1 on timeout).
    int stop(std::chrono::seconds timeout = std::chrono::seconds(60));

  private:
    TempDir dir_{"fobs-observer"};
    int metrics_port_;
    std::unique_ptr<Process> proc_;
};

/// Value of an exact series line in a Prometheus text scrape; -1 when absent.
double scrape_value(const std::string &text, const std::string &series);

} // namespace fobs_test
