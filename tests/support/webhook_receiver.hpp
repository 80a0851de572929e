// A running tests/node/webhook_receiver.js (a real HTTP server, node's own parser) and the
// statistics it writes after every request: counts, paths, every request's headers
// (`requests_log`) and every event's arrival (`arrivals`), so a test can see exactly what
// reached the receiver.
//
//   fobs_test::WebhookReceiver rx;               // unsigned: every request accepted
//   config["url"] = rx.url("/ok");
//   rx.stats()["requests_log"][0]["headers"]["idempotency-key"]
#pragma once

#include "process.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fobs_test {

/// The receiver's statistics as one object: FILE (counters, `last`, `by_path`...) with
/// `requests_log` and `arrivals` read from the JSON-lines files beside it. Lines are appended
/// whole before the counters are rewritten, so the lists hold at least what the counters say;
/// a line still being written (the last one) is left out.
inline nlohmann::json read_receiver_stats(const std::filesystem::path &file) {
    auto j = nlohmann::json::parse(read_file(file), nullptr, false);
    if (j.is_discarded() || !j.is_object()) j = nlohmann::json::object();
    for (const char *list : {"requests_log", "arrivals"}) {
        nlohmann::json items = nlohmann::json::array();
        const std::string suffix = list == std::string("arrivals") ? ".arrivals.jsonl" : ".requests.jsonl";
        std::istringstream in(read_file(file.string() + suffix));
        for (std::string line; std::getline(in, line);) {
            auto item = nlohmann::json::parse(line, nullptr, false);
            if (item.is_discarded()) break;
            items.push_back(std::move(item));
        }
        j[list] = std::move(items);
    }
    return j;
}

class WebhookReceiver {
  public:
    struct Options {
        std::vector<std::string> secrets; // --secret each: requests are verified
        std::string tls_cert, tls_key;    // both set: HTTPS
        bool log_bodies = false;          // requests_log entries also hold the body
    };

    explicit WebhookReceiver(const std::vector<std::string> &secrets = {})
        : WebhookReceiver(Options{secrets, {}, {}, false}) {}
    explicit WebhookReceiver(const Options &options) : dir_("fobs-webhook"), port_(free_port()) {
        ProcessOptions o;
        o.argv = {"node", std::string(FOBS_TEST_SOURCE_DIR) + "/tests/node/webhook_receiver.js",
                  "--port", std::to_string(port_), "--stats", (dir_ / "stats.json").string()};
        for (const auto &s : options.secrets) o.argv.insert(o.argv.end(), {"--secret", s});
        if (!options.tls_cert.empty())
            o.argv.insert(o.argv.end(), {"--tls-cert", options.tls_cert, "--tls-key", options.tls_key});
        if (options.log_bodies) o.argv.insert(o.argv.end(), {"--log-bodies", "1"});
        o.output = dir_ / "receiver.log";
        process_ = Process(o);
        if (!wait_for_port(port_))
            throw std::runtime_error("webhook receiver did not start: " + process_.output());
    }
    ~WebhookReceiver() { process_.stop(std::chrono::seconds(3)); }
    WebhookReceiver(const WebhookReceiver &) = delete;
    WebhookReceiver &operator=(const WebhookReceiver &) = delete;

    int port() const { return port_; }
    std::string url(const std::string &path, bool tls = false) const {
        return std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
    }
    nlohmann::json stats() const { return read_receiver_stats(dir_ / "stats.json"); }
    /// Every request's method, path and headers (and body with log_bodies), at most 1000.
    nlohmann::json requests() const { return stats()["requests_log"]; }
    /// Idempotency-Key of every request received, in order.
    std::vector<std::string> idempotency_keys() const {
        std::vector<std::string> out;
        for (const auto &r : requests())
            out.push_back(r["headers"].value("idempotency-key", std::string("<none>")));
        return out;
    }

  private:
    TempDir dir_;
    int port_;
    Process process_;
};

} // namespace fobs_test
