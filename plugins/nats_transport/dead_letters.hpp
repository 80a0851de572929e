// The dead-letter queue writer (SPEC section 5): copies a message into the DLQ stream with
// the reason, the action, the delivery count and where it came from, and waits for the DLQ's
// PubAck before the caller terminates the original. Runs on its own thread so that
// completions (which may arrive on any thread and must not block) only enqueue work.
//
// It also keeps the advisory safety net's memory: the stream sequences already dead-lettered
// by this process, so a MSG_TERMINATED advisory for our own term is not copied twice (the
// DLQ's Nats-Msg-Id `<id>:dlq:<seq>` de-duplicates the rest, e.g. across workers).
#pragma once

#include "link.hpp"
#include "nats_config.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace fraiseql_observer::nats_transport {

struct DlqRecord {
    std::string original_subject;
    std::string original_stream;
    uint64_t original_sequence = 0;
    std::string id;
    std::string body;
    std::string reason;
    std::string action;
    uint64_t delivery_count = 0;
};

/// "{prefix}.Entity.OP" -> ("Entity", "OP"); false when `subject` is not under `prefix`.
bool split_subject(std::string_view subject, std::string_view prefix, std::string_view &entity,
                   std::string_view &operation);

class DeadLetters {
  public:
    DeadLetters(std::shared_ptr<Link> link, const NatsConfig &config, sdk::Host host);
    ~DeadLetters();

    void start();
    /// Finishes queued work within `budget` (what is still queued after it, or while NATS is
    /// unreachable, fails at once with "transport stopped"), then stops the thread.
    void stop(std::chrono::milliseconds budget = std::chrono::milliseconds(5000));

    /// [any-thread] Queues a DLQ write; `then(ok, error)` runs on the DLQ thread after the
    /// DLQ's PubAck (ok) or the failure.
    void write_async(DlqRecord record, std::function<void(bool, const std::string &)> then);
    /// [any-thread] Safety net: copies stream message `seq` to the DLQ unless this process
    /// already dead-lettered it. `counter` is incremented when a copy is written.
    void ensure_copied(uint64_t seq, uint64_t deliveries, std::string reason,
                       std::string consumer, sdk::Metric counter);

    /// [DLQ thread or main thread] Writes one record synchronously. The DLQ subject is
    /// {dlq_prefix}.{entity}.{operation} taken from the original subject when that is a valid,
    /// short enough subject, else {dlq_prefix}._invalid._invalid; header values are made
    /// header-safe; a body too big for the DLQ is left out (header Fobs-Dlq-Body-Omitted).
    bool write(const DlqRecord &record, std::string &error);
    bool already_dead_lettered(uint64_t seq);

  private:
    void run();
    void copy_from_stream(uint64_t seq, uint64_t deliveries, const std::string &reason,
                          const std::string &consumer, const sdk::Metric &counter);
    void remember(uint64_t seq);

    std::shared_ptr<Link> link_;
    const NatsConfig &config_;
    sdk::Host host_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::set<uint64_t> done_seqs_; // bounded: the oldest are forgotten first
    bool stopping_ = false;
    std::chrono::steady_clock::time_point give_up_at_{}; // while stopping_
    std::thread thread_;
};

} // namespace fraiseql_observer::nats_transport
