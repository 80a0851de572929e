// Asynchronous JetStream publishing with a bounded window: each event's completion fires at
// its PubAck (OK), or after `publish_max_attempts` failed attempts (RETRY with the reason).
// Failed or timed-out attempts are re-sent with the same Nats-Msg-Id, so the stream's
// duplicate window keeps one copy whatever happened to the earlier attempt.
//
// An event NATS would refuse permanently (a subject or header it cannot carry, a payload over
// the server's max_payload, a PubAck error that retrying cannot fix such as the stream's
// max_msg_size) is never sent or retried: it is written to the DLQ with the reason and its
// completion is FAILED, so the source moves on instead of blocking on it forever.
//
// The asynchronous publish context belongs to one connection: when the Link rebuilds the
// connection, the messages still waiting for a PubAck on the old one are taken back and re-sent
// on the new one (same Nats-Msg-Id).
#pragma once

#include "dead_letters.hpp"
#include "link.hpp"
#include "nats_config.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

namespace fraiseql_observer::nats_transport {

class Publisher {
  public:
    /// `ready` tells whether the stream is provisioned (publishes wait for it, bounded).
    /// Permanent refusals are written through `dead_letters` (which must outlive this).
    Publisher(std::shared_ptr<Link> link, const NatsConfig &config, sdk::Host host,
              DeadLetters &dead_letters, std::function<bool()> ready);
    ~Publisher();

    /// [main-thread] Starts the retry thread (the publish context is created per connection).
    void start();
    /// [any-thread] Publishes one event; blocks while the window is full.
    void publish(const sdk::Event &event, sdk::Completion done);
    /// [main-thread] Waits (bounded) for in-flight publishes, then completes the rest RETRY.
    /// Pass 0 when no PubAck can come any more (the connection is down).
    void stop(std::chrono::milliseconds grace);

    int64_t in_flight() const;

  private:
    struct Pending {
        sdk::Completion done;
        int64_t attempts = 0;
        std::string last_error;
        std::chrono::steady_clock::time_point sent{}; // the current attempt's start
        bool in_cnats = false; // handed to js_PublishMsgAsync, waiting for its PubAck
    };

    static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);
    void handle_ack(natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae);
    // Sends (or re-sends) `msg`, whose Pending is registered; on a synchronous failure the
    // attempt is scheduled for a retry or, out of attempts, finished. `counted`: the caller
    // already counted this attempt (and set `sent`, `in_cnats`) in its Pending.
    void send(natsMsg *msg, bool counted = false);
    // The PubAck timeout (publish_timeout_ms), ours rather than cnats': takes the messages
    // cnats holds back, fails the overdue attempts and re-sends the others at once. false when
    // cnats held nothing.
    bool take_back_overdue();
    void attempt_failed(natsMsg *msg, const std::string &why);
    void finish(natsMsg *msg, const fobs_outcome_kind kind, const std::string &reason);
    // A permanent refusal of an event that was registered in pending_ (PubAck or send error).
    void refuse_sent(natsMsg *msg, const std::string &why);
    // DLQ the refused event, then complete `done` FAILED (RETRY when the DLQ write failed).
    void refuse(DlqRecord record, sdk::Completion done, const std::string &why);
    void retry_loop();
    // Makes the publish context belong to the current connection; messages pending on a
    // context whose connection was closed or replaced are taken back and retried.
    void refresh_context();
    bool context_stale();

    std::shared_ptr<Link> link_;
    const NatsConfig &config_;
    sdk::Host host_;
    DeadLetters &dead_letters_;
    std::function<bool()> ready_;

    // The asynchronous publish context and the session it belongs to. Shared lock to publish
    // on it, exclusive to replace it.
    std::shared_mutex ctx_mu_;
    jsCtx *js_ = nullptr;
    std::shared_ptr<Session> js_session_;
    std::atomic<bool> js_used_{false}; // js_PublishAsyncGetPendingList crashes on an unused one

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
