// The in-process durable log behind the `memory` transport: a bounded, sequence-numbered store
// of events, named consumer groups with their own cursor and un-settled set, redelivery by
// timer (retry delay, backoff, ack wait) and a bounded dead-letter queue.
//
// Everything is guarded by one mutex: the transport is meant for single-process setups, tests
// and demos, where simplicity beats lock-free throughput. Host callbacks that may block or
// re-enter (sink.deliver, completing publish tokens) are always called without the lock.
#pragma once

#include "config.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace fraiseql_observer::memory {

using Clock = std::chrono::steady_clock;

/// One stored event (owning copy of what publish received).
struct StoredEvent {
    std::string id, entity_type, operation, entity_id, source, body;
    fobs_event view(uint32_t delivery_count, uint64_t sequence) const;
};
using EventPtr = std::shared_ptr<const StoredEvent>;

struct DeadLetter {
    uint64_t seq = 0; // position in the DLQ
    EventPtr event;
    uint64_t original_seq = 0;
    uint32_t delivery_count = 0;
    std::string reason, action, pipeline, consumer;
    uint64_t time_unix_ms = 0;
};

/// One consumer (a delivery thread) as the log sees it.
struct ConsumerState {
    uint64_t id = 0;
    uint32_t max_in_flight = 1024;
    uint32_t in_flight = 0;
    bool closing = false;
    // Closing drains: the events this process holds exist nowhere else, so a closing consumer
    // keeps delivering its group's remaining work until done or this deadline.
    std::chrono::steady_clock::time_point drain_until{};
};

/// A named durable consumer: every consumer opened with the same name shares it.
struct Group {
    struct Unsettled {
        uint32_t delivery_count = 0;
        bool in_flight = false;    // delivered, token not completed yet
        uint64_t generation = 0;   // of the outstanding token (stale tokens are ignored)
        uint64_t consumer = 0;     // which consumer holds the token
        Clock::time_point deadline; // ack wait (in flight) or due time (waiting to redeliver)
    };

    std::string name, pipeline;
    std::vector<std::string> entity_types, operations; // filter hints of the first opener
    uint64_t cursor = 1;        // next sequence to deliver for the first time
    uint64_t undelivered = 0;   // stored messages at or after the cursor
    uint64_t redelivered = 0;   // total redeliveries handed out
    std::map<uint64_t, Unsettled> unsettled;
    std::set<std::pair<Clock::time_point, uint64_t>> due;       // waiting to be redelivered
    std::set<std::pair<Clock::time_point, uint64_t>> deadlines; // in flight, by ack deadline
    std::map<uint64_t, ConsumerState *> consumers;              // open consumers by id
    sdk::Metric pending_gauge, ack_pending_gauge, dead_lettered;

    bool open() const { return !consumers.empty(); }
    bool wants(const StoredEvent &e) const;
};

/// What a delivery thread hands to its sink.
struct Delivery {
    EventPtr event;
    uint32_t delivery_count = 0;
    uint64_t sequence = 0;
    uint64_t generation = 0;
};

class MemoryLog : public std::enable_shared_from_this<MemoryLog> {
  public:
    MemoryLog(Config config, sdk::Host host);

    /// Registers metrics; called from the transport's start().
    void start();
    /// Wakes every waiter: blocked publishes complete RETRY, delivery threads return.
    void stop();
    /// After stop() and once no delivery thread runs: late token completions must no longer
    /// call host services (log, metrics), whose storage ends with the instance.
    void release_host();

    /// Stores a copy (or recognises a duplicate id) and completes `done`; blocks while full.
    void publish(const sdk::Event &event, sdk::Completion done);

    /// Registers a consumer in the group `options.consumer_name` (created on first use).
    Group &attach(const sdk::ConsumerOptions &options, ConsumerState &consumer);
    /// Blocks until `consumer` may take a delivery; nullopt when it is closing or stopped.
    std::optional<Delivery> next_delivery(Group &group, ConsumerState &consumer);
    /// Settles one delivery with the outcome of its token ([any-thread]).
    void settle(Group &group, uint64_t seq, uint64_t generation, const fobs_outcome &outcome);
    /// Stops handing out deliveries to `consumer` and wakes its thread.
    void request_close(ConsumerState &consumer);
    /// Waits (up to ack_wait_ms) for the consumer's tokens, makes the rest redeliverable and
    /// detaches the consumer from its group.
    void detach(Group &group, ConsumerState &consumer);

    /// fobs.status/1 and fobs.dlq/1 (admin.cpp; shapes in abi.h): `op` is the request's op
    /// when empty ("list", "show", "replay", "purge"; the 1.0 names "dlq_list"... too). JSON
    /// in/out. Throws sdk::UnsupportedOperation for an unknown op, std::runtime_error for bad
    /// arguments.
    std::string answer(std::string_view request_json, std::string op);

    const Config &config() const { return config_; }
    const sdk::Host &host() const { return host_; }

  private:
    bool all_open_groups_settled(uint64_t seq) const;
    void maybe_erase(uint64_t seq);
    void sweep();
    void expire_deadlines(Group &g, Clock::time_point now);
    /// [under mu_] Publishes dlq_'s size to the dlq_depth gauge.
    void dlq_changed() { dlq_depth_.set(double(dlq_.size())); }
    void dead_letter(Group &g, uint64_t seq, const std::string &reason, const std::string &action,
                     uint32_t delivery_count);
    void update_gauges(Group &g);
    void prune_dedup(Clock::time_point now);
    uint64_t append(EventPtr event);
    int64_t backoff_for(uint32_t delivery_count) const;

    const Config config_;
    const sdk::Host host_;

    mutable std::mutex mu_;
    std::condition_variable work_cv_;   // delivery threads: new message, due time, close
    std::condition_variable space_cv_;  // publishers waiting for capacity
    std::condition_variable settle_cv_; // close waiting for outstanding tokens
    bool stopping_ = false;
    bool host_usable_ = true; // false once stop() returned: no host calls from late tokens

    std::map<uint64_t, EventPtr> log_;
    uint64_t bytes_ = 0;
    uint64_t last_seq_ = 0;
    std::unordered_map<std::string, Clock::time_point> dedup_;
    std::deque<std::pair<Clock::time_point, std::string>> dedup_order_;
    std::map<std::string, std::unique_ptr<Group>> groups_;
    uint64_t next_generation_ = 1;

    std::deque<DeadLetter> dlq_;
    uint64_t last_dlq_seq_ = 0;

    sdk::Metric published_;
    sdk::Metric dlq_depth_; // entries in dlq_ now; set by dlq_changed()
};

} // namespace fraiseql_observer::memory
