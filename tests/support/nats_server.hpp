// A real `nats-server -js` for tests: loopback only, free ports, its own store directory,
// started and stopped by PID. Other suites reuse it; keep the API small.
//
//   fobs_test::NatsServer nats;            // started, JetStream ready
//   config["url"] = nats.url();            // "nats://127.0.0.1:<port>"
//   nats.stop();  nats.start();            // restart with the same port and store dir
#pragma once

#include "process.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace fobs_test {

/// The config every test server gets (unless the test passes its own `-c`): a fixed
/// `max_file_store`, so stream creation never depends on the machine's free disk (JetStream
/// reserves each stream's max_bytes up front against it).
extern const char *const k_jetstream_store_limit;
/// Whether nats-server arguments name a config file (-c / --config).
bool has_config_arg(const std::vector<std::string> &args);

class NatsServer {
  public:
    /// Starts the server (throws std::runtime_error when it does not come up within 15 s).
    /// `extra_args` are appended to the command line (e.g. {"--user", "u", "--pass", "p"}).
    explicit NatsServer(std::vector<std::string> extra_args = {});
    ~NatsServer(); // stops it (SIGTERM, then SIGKILL)
    NatsServer(const NatsServer &) = delete;
    NatsServer &operator=(const NatsServer &) = delete;

    int port() const { return port_; }
    int monitor_port() const { return monitor_port_; }
    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
    /// http://127.0.0.1:<monitor port> (/jsz, /varz …).
    std::string monitor_url() const;
    const std::filesystem::path &store_dir() const;

    /// Starts again on the same ports with the same store dir (no-op when running).
    void start();
    /// Graceful stop (SIGTERM, waits for exit; SIGKILL after 10 s). Idempotent.
    void stop();
    /// SIGKILL, as in a crash.
    void kill9();
    bool running();
    /// The server's own log (stdout + stderr of every run).
    std::string log() const;

    /// Replaces the extra command-line arguments used by the next start() (e.g. another
    /// --pass, to make a client's credentials right or wrong across a restart).
    void set_extra_args(std::vector<std::string> extra_args);
    /// Writes `text` as a nats-server config file `name` in the server's directory and returns
    /// its path (pass {"-c", path} as extra arguments; command-line flags still win). Unless
    /// `text` mentions `jetstream`, the fixture's store limit is added (see below).
    std::filesystem::path write_config(const std::string &name, const std::string &text) const;

  private:
    std::unique_ptr<TempDir> dir_;
    int port_;
    int monitor_port_;
    std::vector<std::string> extra_args_;
    Process process_;
    bool running_ = false;
};

} // namespace fobs_test
