// Asynchronous JetStream publishing with a bounded window: each event's completion fires at
// its PubAck (OK), or after `publish_max_attempts` failed attempts (RETRY with the reason).
// Failed or timed-out attempts are re-sent with the same Nats-Msg-Id, so the stream's
// duplicate window keeps one copy whatever happened to the earlier attempt.
#pragma once

#include "link.hpp"
#include "nats_config.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace fraiseql_observer::nats_transport {

class Publisher {
  public:
    /// `ready` tells whether the stream is provisioned (publishes wait for it, bounded).
    Publisher(std::shared_ptr<Link> link, const NatsConfig &config, sdk::Host host,
              std::function<bool()> ready);
    ~Publisher();

    /// [main-thread] Creates the asynchronous JetStream context and the retry thread.
    void start();
    /// [any-thread] Publishes one event; blocks while the window is full.
    void publish(const sdk::Event &event, sdk::Completion done);
    /// [main-thread] Waits (bounded) for in-flight publishes, then completes the rest RETRY.
    void stop(std::chrono::milliseconds grace);

    int64_t in_flight() const;

  private:
    struct Pending {
        sdk::Completion done;
        int64_t attempts = 0;
        std::string last_error;
    };

    static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);
    void handle_ack(natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae);
    // Sends (or re-sends) `msg`, whose Pending is registered; on a synchronous failure the
    // attempt is scheduled for a retry or, out of attempts, finished.
    void send(natsMsg *msg);
    void attempt_failed(natsMsg *msg, const std::string &why);
    void finish(natsMsg *msg, const fobs_outcome_kind kind, const std::string &reason);
    void retry_loop();

    std::shared_ptr<Link> link_;
    const NatsConfig &config_;
    sdk::Host host_;
    std::function<bool()> ready_;
    jsCtx *js_ = nullptr;

    mutable std::mutex mu_;
    std::condition_variable window_cv_; // signalled when the window drained below its low mark
    int window_waiters_ = 0;            // threads waiting on window_cv_, under mu_
    std::condition_variable retry_cv_;
    std::unordered_map<natsMsg *, Pending> pending_;
    std::multimap<std::chrono::steady_clock::time_point, natsMsg *> retries_;
    bool stopping_ = false;
    std::thread retry_thread_;
};

} // namespace fraiseql_observer::nats_transport
