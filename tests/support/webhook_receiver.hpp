// A running tests/node/webhook_receiver.js (a real HTTP server, node's own parser) and the
// statistics it writes after every request: counts, paths, and every request's headers
// (`requests_log`), so a test can see exactly what reached the receiver.
//
//   fobs_test::WebhookReceiver rx;               // unsigned: every request accepted
//   config["url"] = rx.url("/ok");
//   rx.stats()["requests_log"][0]["headers"]["idempotency-key"]
#pragma once

#include "process.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace fobs_test {

class WebhookReceiver {
  public:
    explicit WebhookReceiver(const std::vector<std::string> &secrets = {})
        : dir_("fobs-webhook"), port_(free_port()) {
        ProcessOptions o;
        o.argv = {"node", std::string(FOBS_TEST_SOURCE_DIR) + "/tests/node/webhook_receiver.js",
                  "--port", std::to_string(port_), "--stats", (dir_ / "stats.json").string()};
        for (const auto &s : secrets) o.argv.insert(o.argv.end(), {"--secret", s});
        o.output = dir_ / "receiver.log";
        process_ = Process(o);
        if (!wait_for_port(port_))
            throw std::runtime_error("webhook receiver did not start: " + process_.output());
    }
    ~WebhookReceiver() { process_.stop(std::chrono::seconds(3)); }
    WebhookReceiver(const WebhookReceiver &) = delete;
    WebhookReceiver &operator=(const WebhookReceiver &) = delete;

    int port() const { return port_; }
    std::string url(const std::string &path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    nlohmann::json stats() const {
        auto text = read_file(dir_ / "stats.json");
        auto j = nlohmann::json::parse(text, nullptr, false);
        return j.is_discarded() ? nlohmann::json::object() : j;
    }
    /// Idempotency-Key of every request received, in order.
    std::vector<std::string> idempotency_keys() const {
        std::vector<std::string> out;
        for (const auto &r : stats().value("requests_log", nlohmann::json::array()))
            out.push_back(r["headers"].value("idempotency-key", std::string("<none>")));
        return out;
    }

  private:
    TempDir dir_;
    int port_;
    Process process_;
};

} // namespace fobs_test
