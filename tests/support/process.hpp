// Test support: child processes stopped by PID, free loopback ports, temporary directories.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace fobs_test {

/// A directory under $TMPDIR removed (recursively) on destruction unless keep() was called.
class TempDir {
  public:
    explicit TempDir(const std::string &prefix = "fobs-test");
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const std::filesystem::path &path() const { return path_; }
    std::filesystem::path operator/(const std::string &p) const { return path_ / p; }
    void keep() { keep_ = true; }

  private:
    std::filesystem::path path_;
    bool keep_ = false;
};

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests), never one this
/// process was handed before.
int free_port();
/// Waits until something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(int port, std::chrono::milliseconds timeout = std::chrono::seconds(15));

struct ProcessOptions {
    std::vector<std::string> argv;              // argv[0] is the program (PATH is searched)
    std::map<std::string, std::string> env;     // added to / overriding the current environment
    std::vector<std::string> unset_env;         // removed from the environment
    std::filesystem::path output;               // stdout+stderr go here ("" = inherit)
    std::filesystem::path cwd;                  // "" = current
    std::optional<std::string> run_as_user;     // e.g. "postgres" when running as root
};

/// A child process; stopped (SIGTERM, then SIGKILL after a grace period) on destruction.
class Process {
  public:
    Process() = default;
    explicit Process(ProcessOptions options);
    ~Process();
    Process(Process &&o) noexcept;
    Process &operator=(Process &&o) noexcept;
    Process(const Process &) = delete;
    Process &operator=(const Process &) = delete;

    pid_t pid() const { return pid_; }
    bool running();
    /// Sends `sig` to the process.
    void signal(int sig);
    /// Waits for exit up to `timeout`; returns the exit code (128+signal if killed) or nullopt.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    /// SIGTERM, wait `grace`, then SIGKILL. Returns the exit code.
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
    /// SIGKILL now and reap.
    void kill9();
    /// Contents of the output file (when one was given).
    std::string output() const;
    const ProcessOptions &options() const { return options_; }

  private:
    ProcessOptions options_;
    pid_t pid_ = -1;
    std::optional<int> exit_code_;
};

/// Runs a command to completion; returns {exit code, stdout+stderr}.
std::pair<int, std::string> run_command(const std::vector<std::string> &argv,
                                        const std::map<std::string, std::string> &env = {},
                                        std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// Reads a whole file ("" when missing).
std::string read_file(const std::filesystem::path &p);
void write_file(const std::filesystem::path &p, const std::string &content);

/// Polls `pred` every 20 ms until it returns true or `timeout` passes.
template <class Pred> bool eventually(Pred pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        struct timespec ts{0, 20 * 1000 * 1000};
        nanosleep(&ts, nullptr);
    }
    return pred();
}

/// Path of the built fraiseql-observer binary and the build tree's plugin directory.
std::string observer_binary();
std::string plugin_dir();

} // namespace fobs_test
