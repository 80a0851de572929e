// notify mode: LISTEN on every configured channel and hand each notification's payload to the
// host. NOTIFY is fire-and-forget: whatever is raised while the connection is down is lost, which
// the reader says loudly on every reconnect (outbox mode is the lossless alternative).
#pragma once

#include "config.hpp"
#include "connection.hpp"
#include "reader.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

namespace fraiseql_observer::pg_listen {

class NotifyReader final : public Reader {
  public:
    NotifyReader(Config config, sdk::Host host);
    ~NotifyReader() override;
    void start(sdk::SourceSink sink) override;
    void stop() noexcept override;
    bool ready(std::string &why) override;
    nlohmann::json status() override;

  private:
    struct Tracker; // records in flight; shared with their completion tokens
    struct Record;  // one notification and its completion token, one allocation
    void run();
    std::string listen_all(Connection &conn);
    // Hands `r` over; the caller holds a reference for the call (released here).
    void emit(Record *r);
    void reemit_due();
    void sleep_interruptibly(std::chrono::milliseconds d);
    void set_reason(std::string why);

    Config config_;
    sdk::Host host_;
    sdk::SourceSink sink_;
    std::shared_ptr<Tracker> tracker_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> connected_{false};
    std::thread thread_;
    std::mutex reason_mu_;
    std::string not_ready_reason_ = "not started";
};

/// The `txid` of a payload that carries one (a number or a numeric string), else -1.
int64_t txid_of_payload(const std::string &payload);

} // namespace fraiseql_observer::pg_listen
