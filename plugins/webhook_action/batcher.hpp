// Webhook batches (SPEC section 7): collects the events handed to execute() into batches and
// hands each batch over once it holds `max_events` events or its oldest event has waited
// `max_wait` — whichever comes first, so under light traffic an event waits at most `max_wait`
// for company, never longer. Events keep the order in which add() received them (for one
// consumer, the stream order).
//
// A full batch is handed over on the thread whose add() filled it; a batch closed by its
// deadline on the batcher's own timer thread, which sleeps while no batch is open.
#pragma once

#include <fraiseql_observer/plugin.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace fraiseql_observer::webhook {

/// One event waiting in a batch: copies of what the request needs (the host's view of the
/// event is valid only during execute()) and its completion token.
struct BatchItem {
    std::string id;
    std::string body;
    sdk::Completion done;
};

/// The batch's `webhook-id` (and `Idempotency-Key`): "batch_" and the first 32 hex digits
/// (128 bits) of SHA-256 over the events' ids in batch order, each followed by "\n" (ids never
/// hold a line feed: the action refuses such events). The same events in the same order give
/// the same id on every attempt; any other composition gives another id.
std::string batch_webhook_id(const std::vector<BatchItem> &batch);

/// The request body of a batch: a JSON array of the events' bodies (each a JSON object), in
/// batch order, byte for byte.
std::string batch_body(const std::vector<BatchItem> &batch);

class Batcher {
  public:
    /// Receives each closed batch (never empty). Called without the batcher's lock held, on the
    /// thread that filled the batch or on the timer thread; it may block (back-pressure).
    using CloseFn = std::function<void(std::vector<BatchItem> &&batch)>;

    Batcher(size_t max_events, std::chrono::milliseconds max_wait, CloseFn close);
    ~Batcher();
    Batcher(const Batcher &) = delete;
    Batcher &operator=(const Batcher &) = delete;

    /// Starts the timer thread.
    void start();
    /// [any-thread] Adds one event to the open batch, closing the batch when it is full. After
    /// stop() the token is completed at once as RETRY.
    void add(std::string_view id, std::string_view body, sdk::Completion done);
    /// Stops admitting events; the open batch, never sent, is handed back as RETRY (as the
    /// dispatcher does with queued requests); a batch being handed over by the timer finishes
    /// first. Idempotent.
    void stop() noexcept;

  private:
    using Clock = std::chrono::steady_clock;
    void run() noexcept;

    const size_t max_events_;
    const std::chrono::milliseconds max_wait_;
    CloseFn close_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<BatchItem> open_;   // the open batch, in add() order
    Clock::time_point opened_at_;   // when its first event arrived
    uint64_t generation_ = 0;       // +1 each time a batch is closed
    bool timer_idle_ = false;       // the timer waits for a batch to open (needs a notify);
                                    // set and cleared by the timer only
    bool stopping_ = false;
    bool started_ = false;
    std::thread timer_;
};

} // namespace fraiseql_observer::webhook
