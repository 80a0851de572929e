#include "nats_server.hpp"

#include <fstream>
#include <stdexcept>

namespace fobs_test {

const char *const k_jetstream_store_limit =
    "# JetStream reserves each file stream's max_bytes up front against max_file_store, which by\n"
    "# default is 75 % of the disk that is free when the server starts: tests must not depend on\n"
    "# how full the machine's disk happens to be.\n"
    "jetstream { max_file_store: 1TB }\n";

bool has_config_arg(const std::vector<std::string> &args) {
    for (const auto &a : args)
        if (a == "-c" || a == "--config" || a.rfind("--config=", 0) == 0) return true;
    return false;
}

NatsServer::NatsServer(std::vector<std::string> extra_args)
    : dir_(std::make_unique<TempDir>("fobs-nats")), port_(free_port()),
      monitor_port_(free_port()), extra_args_(std::move(extra_args)) {
    // The ports were free when picked; another process may bind one first. Then the server
    // exits ("address already in use") and other ports are tried.
    for (int attempt = 1;; ++attempt) {
        try {
            start();
            return;
        } catch (const std::runtime_error &) {
            if (attempt == 3) throw;
            process_.kill9();
            running_ = false;
            port_ = free_port();
            monitor_port_ = free_port();
        }
    }
}

NatsServer::~NatsServer() { stop(); }

std::string NatsServer::monitor_url() const {
    return "http://127.0.0.1:" + std::to_string(monitor_port_);
}

const std::filesystem::path &NatsServer::store_dir() const { return dir_->path(); }

void NatsServer::start() {
    if (running_ && process_.running()) return;
    ProcessOptions o;
    o.argv = {"nats-server", "-js", "-a", "127.0.0.1", "-p", std::to_string(port_),
              "-m", std::to_string(monitor_port_), "-sd", (dir_->path() / "store").string()};
    o.argv.insert(o.argv.end(), extra_args_.begin(), extra_args_.end());
    if (!has_config_arg(extra_args_))
        o.argv.insert(o.argv.end(), {"-c", write_config("fixture.conf", "").string()});
    o.output = dir_->path() / "nats-server.log";
    process_ = Process(o);
    running_ = true;
    // The monitor port opens after JetStream is enabled, so waiting for both means "ready".
    // (A port another process holds also accepts: the server must still be running.)
    if (!wait_for_port(port_) || !wait_for_port(monitor_port_) || !process_.running())
        throw std::runtime_error("nats-server did not start on port " + std::to_string(port_) +
                                 ":\n" + log());
}

void NatsServer::stop() {
    if (!running_) return;
    process_.stop(std::chrono::seconds(10));
    running_ = false;
}

void NatsServer::kill9() {
    if (!running_) return;
    process_.kill9();
    running_ = false;
}

bool NatsServer::running() { return running_ && process_.running(); }

std::string NatsServer::log() const { return read_file(dir_->path() / "nats-server.log"); }

void NatsServer::set_extra_args(std::vector<std::string> extra_args) {
    extra_args_ = std::move(extra_args);
}

std::filesystem::path NatsServer::write_config(const std::string &name,
                                               const std::string &text) const {
    auto path = dir_->path() / name;
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (text.find("jetstream") == std::string::npos) out << "\n" << k_jetstream_store_limit;
    if (!out) throw std::runtime_error("cannot write " + path.string());
    return path;
}

} // namespace fobs_test
