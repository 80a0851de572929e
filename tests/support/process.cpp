#include "process.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <mutex>
#include <netinet/in.h>
#include <pwd.h>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>

extern char **environ;

namespace fobs_test {

namespace fs = std::filesystem;

TempDir::TempDir(const std::string &prefix) {
    fs::path base = fs::temp_directory_path();
    std::string tmpl = (base / (prefix + "-XXXXXX")).string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed: " + std::string(strerror(errno)));
    path_ = buf.data();
    fs::permissions(path_, fs::perms::all & ~fs::perms::others_write, fs::perm_options::replace);
}

TempDir::~TempDir() {
    if (keep_) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
}

// The kernel may hand the same ephemeral port to two binds in a row once the first socket is
// closed, so a test that asks for several ports at once (a cluster: client, monitor and route
// port per member) could get one port twice and a member would fail to listen. Ports this
// process handed out before are skipped.
int free_port() {
    static std::mutex mu;
    static std::set<int> given;
    std::lock_guard<std::mutex> lock(mu);
    for (int attempt = 0; attempt < 64; ++attempt) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) {
            ::close(fd);
            throw std::runtime_error("bind failed");
        }
        socklen_t len = sizeof(addr);
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
        int port = ntohs(addr.sin_port);
        ::close(fd);
        if (given.insert(port).second) return port;
    }
    throw std::runtime_error("no free loopback port that this process has not handed out");
}

bool wait_for_port(int port, std::chrono::milliseconds timeout) {
    return eventually(
        [port] {
            int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in addr{};
            addr.sin_family = AF_INET;
            addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            addr.sin_port = htons(static_cast<uint16_t>(port));
            bool ok = ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0;
            ::close(fd);
            return ok;
        },
        timeout);
}

static std::vector<std::string> build_env(const ProcessOptions &o) {
    std::map<std::string, std::string> env;
    for (char **e = environ; *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto &k : o.unset_env) env.erase(k);
    for (const auto &[k, v] : o.env) env[k] = v;
    std::vector<std::string> out;
    for (const auto &[k, v] : env) out.push_back(k + "=" + v);
    return out;
}

Process::Process(ProcessOptions options) : options_(std::move(options)) {
    if (options_.argv.empty()) throw std::invalid_argument("Process: empty argv");
    std::vector<std::string> env = build_env(options_);
    std::vector<char *> argv, envp;
    for (auto &a : options_.argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto &e : env) envp.push_back(e.data());
    envp.push_back(nullptr);

    uid_t uid = 0;
    gid_t gid = 0;
    if (options_.run_as_user && geteuid() == 0) {
        passwd *pw = getpwnam(options_.run_as_user->c_str());
        if (!pw) throw std::runtime_error("no such user: " + *options_.run_as_user);
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    int out_fd = -1;
    if (!options_.output.empty()) {
        out_fd = ::open(options_.output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (out_fd < 0) throw std::runtime_error("cannot open " + options_.output.string());
        if (uid != 0) (void)fchown(out_fd, uid, gid);
    }
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::setpgid(0, 0);
        if (out_fd >= 0) {
            ::dup2(out_fd, 1);
            ::dup2(out_fd, 2);
        }
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        if (!options_.cwd.empty() && ::chdir(options_.cwd.c_str()) != 0) _exit(126);
        if (uid != 0) {
            if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) _exit(126);
        }
        ::execvpe(argv[0], argv.data(), envp.data());
        _exit(127);
    }
    if (out_fd >= 0) ::close(out_fd);
}

Process::~Process() {
    if (pid_ > 0 && !exit_code_) stop(std::chrono::seconds(5));
}

Process::Process(Process &&o) noexcept
    : options_(std::move(o.options_)), pid_(std::exchange(o.pid_, -1)),
      exit_code_(std::exchange(o.exit_code_, std::nullopt)) {}

Process &Process::operator=(Process &&o) noexcept {
    if (this != &o) {
        if (pid_ > 0 && !exit_code_) stop(std::chrono::seconds(5));
        options_ = std::move(o.options_);
        pid_ = std::exchange(o.pid_, -1);
        exit_code_ = std::exchange(o.exit_code_, std::nullopt);
    }
    return *this;
}

bool Process::running() {
    if (pid_ <= 0 || exit_code_) return false;
    return !wait(std::chrono::milliseconds(0)).has_value();
}

void Process::signal(int sig) {
    if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
    if (exit_code_) return exit_code_;
    if (pid_ <= 0) return std::nullopt;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return exit_code_;
        }
        if (r < 0) {
            exit_code_ = -1;
            return exit_code_;
        }
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

int Process::stop(std::chrono::milliseconds grace) {
    if (exit_code_) return *exit_code_;
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    if (auto c = wait(grace)) return *c;
    kill9();
    return exit_code_.value_or(-1);
}

void Process::kill9() {
    if (pid_ <= 0 || exit_code_) return;
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
}

std::string Process::output() const { return read_file(options_.output); }

std::pair<int, std::string> run_command(const std::vector<std::string> &argv,
                                        const std::map<std::string, std::string> &env,
                                        std::chrono::milliseconds timeout) {
    TempDir dir("fobs-cmd");
    ProcessOptions o;
    o.argv = argv;
    o.env = env;
    o.output = dir / "out.txt";
    Process p(o);
    auto code = p.wait(timeout);
    if (!code) {
        p.kill9();
        return {-1, p.output() + "\n[timed out]"};
    }
    return {*code, p.output()};
}

std::string read_file(const fs::path &p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const fs::path &p, const std::string &content) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
}

std::string observer_binary() { return FOBS_TEST_BINARY; }
std::string plugin_dir() { return FOBS_TEST_PLUGIN_DIR; }

} // namespace fobs_test
