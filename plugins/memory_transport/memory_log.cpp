#include "memory_log.hpp"

#include <algorithm>

namespace fraiseql_observer::memory {

fobs_event StoredEvent::view(uint32_t delivery_count, uint64_t sequence) const {
    fobs_event e{};
    e.struct_size = sizeof(e);
    e.id = sdk::str(id);
    e.entity_type = sdk::str(entity_type);
    e.operation = sdk::str(operation);
    e.entity_id = sdk::str(entity_id);
    e.source = sdk::str(source);
    e.body = sdk::str(body);
    e.delivery_count = delivery_count;
    e.sequence = sequence;
    return e;
}

bool Group::wants(const StoredEvent &e) const {
    auto match = [](const std::vector<std::string> &allowed, const std::string &v) {
        return allowed.empty() || std::find(allowed.begin(), allowed.end(), v) != allowed.end();
    };
    return match(entity_types, e.entity_type) && match(operations, e.operation);
}

MemoryLog::MemoryLog(Config config, sdk::Host host) : config_(std::move(config)), host_(host) {}

void MemoryLog::start() {
    published_ = host_.counter("transport_stored_total", "Events stored by the transport (after de-duplication)",
                               {{"transport", std::string(host_.component_name())}});
    dlq_depth_ = host_.gauge("dlq_depth", "Entries in the transport's dead-letter queue now (falls after replay or purge)",
                             {{"transport", std::string(host_.component_name())}});
}

void MemoryLog::stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    work_cv_.notify_all();
    space_cv_.notify_all();
    settle_cv_.notify_all();
}

void MemoryLog::release_host() {
    std::lock_guard lock(mu_);
    host_usable_ = false;
}

// ------------------------------------------------------------------------------------------
// Publishing
// ------------------------------------------------------------------------------------------

void MemoryLog::prune_dedup(Clock::time_point now) {
    const auto window = std::chrono::milliseconds(config_.dedup_window_ms);
    while (!dedup_order_.empty() && now - dedup_order_.front().first >= window) {
        auto it = dedup_.find(dedup_order_.front().second);
        if (it != dedup_.end() && it->second == dedup_order_.front().first) dedup_.erase(it);
        dedup_order_.pop_front();
    }
}

uint64_t MemoryLog::append(EventPtr event) {
    const uint64_t seq = ++last_seq_;
    bytes_ += event->body.size();
    log_.emplace(seq, std::move(event));
    // Every group, open or not, has this message ahead of its cursor.
    for (auto &[name, g] : groups_) {
        ++g->undelivered;
        update_gauges(*g);
    }
    work_cv_.notify_all();
    return seq;
}

void MemoryLog::publish(const sdk::Event &event, sdk::Completion done) {
    auto stored = std::make_shared<StoredEvent>(
        StoredEvent{std::string(event.id), std::string(event.entity_type),
                    std::string(event.operation), std::string(event.entity_id),
                    std::string(event.source), std::string(event.body)});
    {
        std::unique_lock lock(mu_);
        auto now = Clock::now();
        prune_dedup(now);
        if (config_.dedup_window_ms > 0 && dedup_.count(stored->id)) {
            lock.unlock();
            done.ok(); // already stored once within the window
            return;
        }
        // Back-pressure: wait for space, bounded by publish_timeout_ms.
        const auto deadline = now + std::chrono::milliseconds(config_.publish_timeout_ms);
        bool has_space = space_cv_.wait_until(lock, deadline, [&] {
            return stopping_ || log_.size() < config_.capacity;
        });
        if (stopping_ || !has_space) {
            lock.unlock();
            done.retry(stopping_ ? "transport full (stopping)" : "transport full");
            return;
        }
        // A concurrent publish of the same id may have won while we waited.
        now = Clock::now();
        if (config_.dedup_window_ms > 0) {
            prune_dedup(now);
            if (dedup_.count(stored->id)) {
                lock.unlock();
                done.ok();
                return;
            }
            dedup_.emplace(stored->id, now);
            dedup_order_.emplace_back(now, stored->id);
        }
        append(std::move(stored));
    }
    published_.add();
    done.ok();
}

// ------------------------------------------------------------------------------------------
// Retention
// ------------------------------------------------------------------------------------------

bool MemoryLog::all_open_groups_settled(uint64_t seq) const {
    bool any_open = false;
    for (const auto &[name, g] : groups_) {
        if (!g->open()) continue;
        any_open = true;
        if (seq >= g->cursor || g->unsettled.count(seq)) return false;
    }
    // With no consumer open, messages are kept for the first one that opens.
    return any_open;
}

void MemoryLog::maybe_erase(uint64_t seq) {
    auto it = log_.find(seq);
    if (it == log_.end() || !all_open_groups_settled(seq)) return;
    bytes_ -= it->second->body.size();
    log_.erase(it);
    // Closed groups lose the message too (retention follows the open groups only).
    for (auto &[name, g] : groups_) {
        if (g->open()) continue;
        if (seq >= g->cursor && g->undelivered > 0) --g->undelivered;
        auto u = g->unsettled.find(seq);
        if (u != g->unsettled.end()) {
            g->due.erase({u->second.deadline, seq});
            g->unsettled.erase(u);
        }
        update_gauges(*g);
    }
    space_cv_.notify_all();
}

void MemoryLog::sweep() {
    std::vector<uint64_t> seqs;
    seqs.reserve(log_.size());
    for (const auto &[seq, e] : log_) seqs.push_back(seq);
    for (uint64_t seq : seqs) maybe_erase(seq);
}

// ------------------------------------------------------------------------------------------
// Consuming
// ------------------------------------------------------------------------------------------

void MemoryLog::update_gauges(Group &g) {
    if (!host_usable_) return;
    g.pending_gauge.set(double(g.undelivered));
    g.ack_pending_gauge.set(double(g.unsettled.size()));
}

int64_t MemoryLog::backoff_for(uint32_t delivery_count) const {
    const auto &b = config_.backoff_ms;
    size_t i = delivery_count == 0 ? 0 : std::min<size_t>(delivery_count - 1, b.size() - 1);
    return b[i];
}

Group &MemoryLog::attach(const sdk::ConsumerOptions &options, ConsumerState &consumer) {
    std::lock_guard lock(mu_);
    auto &slot = groups_[options.consumer_name];
    if (!slot) {
        slot = std::make_unique<Group>();
        Group &g = *slot;
        g.name = options.consumer_name;
        g.pipeline = options.pipeline.empty() ? options.consumer_name : options.pipeline;
        g.entity_types = options.entity_types;
        g.operations = options.operations;
        // Deliver everything still stored.
        g.cursor = log_.empty() ? last_seq_ + 1 : log_.begin()->first;
        g.undelivered = log_.size();
        const sdk::Labels labels = {{"pipeline", g.pipeline}};
        g.pending_gauge = host_.gauge("consumer_pending", "Messages not yet delivered", labels);
        g.ack_pending_gauge =
            host_.gauge("consumer_ack_pending", "Messages delivered and not yet settled", labels);
        g.dead_lettered =
            host_.counter("events_dead_lettered_total", "Events moved to the DLQ", labels);
    } else if (!slot->open()) {
        // Reopened durable: resume at its cursor; recount what is still stored ahead of it.
        slot->cursor = std::max(slot->cursor, log_.empty() ? last_seq_ + 1 : log_.begin()->first);
        slot->undelivered = uint64_t(std::distance(log_.lower_bound(slot->cursor), log_.end()));
    }
    consumer.max_in_flight = options.max_in_flight == 0 ? 1024 : options.max_in_flight;
    slot->consumers[consumer.id] = &consumer;
    update_gauges(*slot);
    return *slot;
}

void MemoryLog::expire_deadlines(Group &g, Clock::time_point now) {
    while (!g.deadlines.empty() && g.deadlines.begin()->first <= now) {
        const uint64_t seq = g.deadlines.begin()->second;
        g.deadlines.erase(g.deadlines.begin());
        auto &u = g.unsettled.at(seq);
        auto holder = g.consumers.find(u.consumer);
        if (holder != g.consumers.end() && holder->second->in_flight > 0)
            --holder->second->in_flight;
        u.in_flight = false;
        u.generation = 0; // the late token, if it ever completes, is ignored
        if (u.delivery_count >= config_.max_deliver) {
            dead_letter(g, seq,
                        "ack wait (" + std::to_string(config_.ack_wait_ms) +
                            " ms) expired on the last allowed delivery",
                        "", u.delivery_count);
        } else {
            u.deadline = now;
            g.due.emplace(now, seq);
        }
        settle_cv_.notify_all();
    }
}

std::optional<Delivery> MemoryLog::next_delivery(Group &g, ConsumerState &c) {
    std::unique_lock lock(mu_);
    for (;;) {
        if (stopping_) return std::nullopt;
        const auto now = Clock::now();
        if (c.closing) {
            const bool work_left = log_.lower_bound(g.cursor) != log_.end() || !g.unsettled.empty();
            if (!work_left || now >= c.drain_until) return std::nullopt;
        }
        expire_deadlines(g, now);
        if (c.in_flight < c.max_in_flight) {
            // Redeliveries that are due come first.
            while (!g.due.empty() && g.due.begin()->first <= now) {
                const uint64_t seq = g.due.begin()->second;
                g.due.erase(g.due.begin());
                auto ev = log_.find(seq);
                if (ev == log_.end()) {
                    g.unsettled.erase(seq);
                    continue;
                }
                auto &u = g.unsettled.at(seq);
                u.delivery_count += 1;
                u.in_flight = true;
                u.generation = next_generation_++;
                u.consumer = c.id;
                u.deadline = now + std::chrono::milliseconds(config_.ack_wait_ms);
                g.deadlines.emplace(u.deadline, seq);
                ++g.redelivered;
                ++c.in_flight;
                update_gauges(g);
                return Delivery{ev->second, u.delivery_count, seq, u.generation};
            }
            // Then the next message after the cursor.
            for (auto it = log_.lower_bound(g.cursor); it != log_.end();
                 it = log_.lower_bound(g.cursor)) {
                const uint64_t seq = it->first;
                EventPtr ev = it->second;
                g.cursor = seq + 1;
                if (g.undelivered > 0) --g.undelivered;
                if (!g.wants(*ev)) {
                    maybe_erase(seq); // filtered out counts as settled for this group
                    update_gauges(g);
                    continue;
                }
                Group::Unsettled u;
                u.delivery_count = 1;
                u.in_flight = true;
                u.generation = next_generation_++;
                u.consumer = c.id;
                u.deadline = now + std::chrono::milliseconds(config_.ack_wait_ms);
                g.unsettled.emplace(seq, u);
                g.deadlines.emplace(u.deadline, seq);
                ++c.in_flight;
                update_gauges(g);
                return Delivery{std::move(ev), 1, seq, u.generation};
            }
        }
        // Sleep until new work, the next due redelivery or the next ack deadline.
        std::optional<Clock::time_point> wake;
        if (!g.deadlines.empty()) wake = g.deadlines.begin()->first;
        if (c.in_flight < c.max_in_flight && !g.due.empty())
            wake = wake ? std::min(*wake, g.due.begin()->first) : g.due.begin()->first;
        if (c.closing) wake = wake ? std::min(*wake, c.drain_until) : c.drain_until;
        if (wake) work_cv_.wait_until(lock, *wake);
        else work_cv_.wait(lock);
    }
}

void MemoryLog::dead_letter(Group &g, uint64_t seq, const std::string &reason,
                            const std::string &action, uint32_t delivery_count) {
    auto ev = log_.find(seq);
    auto u = g.unsettled.find(seq);
    if (u != g.unsettled.end()) {
        g.due.erase({u->second.deadline, seq});
        if (u->second.in_flight) g.deadlines.erase({u->second.deadline, seq});
        g.unsettled.erase(u);
    }
    if (ev != log_.end() && config_.dead_letter_capacity > 0) {
        DeadLetter d;
        d.seq = ++last_dlq_seq_;
        d.event = ev->second;
        d.original_seq = seq;
        d.delivery_count = delivery_count;
        d.reason = reason;
        d.action = action;
        d.pipeline = g.pipeline;
        d.consumer = g.name;
        if (host_usable_)
            d.time_unix_ms = uint64_t(host_.realtime().count() / 1000000);
        dlq_.push_back(std::move(d));
        if (dlq_.size() > config_.dead_letter_capacity) {
            if (host_usable_)
                host_.warn("dead-letter queue full (" +
                           std::to_string(config_.dead_letter_capacity) +
                           " entries): dropping the oldest entry, event " +
                           dlq_.front().event->id);
            dlq_.pop_front();
        }
        dlq_changed();
    }
    if (host_usable_) {
        g.dead_lettered.add();
        const std::string id = ev != log_.end() ? ev->second->id : std::string();
        host_.log(FOBS_LOG_WARN,
                  "event " + id + " dead-lettered by consumer " + g.name + " after " +
                      std::to_string(delivery_count) + " deliveries" +
                      (action.empty() ? std::string() : " (action " + action + ")") + ": " +
                      reason,
                  id);
    }
    maybe_erase(seq);
    update_gauges(g);
}

void MemoryLog::settle(Group &g, uint64_t seq, uint64_t generation, const fobs_outcome &o) {
    std::lock_guard lock(mu_);
    auto it = g.unsettled.find(seq);
    if (it == g.unsettled.end() || !it->second.in_flight || it->second.generation != generation)
        return; // late completion of a token that expired or was taken back at close
    auto &u = it->second;
    g.deadlines.erase({u.deadline, seq});
    auto holder = g.consumers.find(u.consumer);
    if (holder != g.consumers.end() && holder->second->in_flight > 0) --holder->second->in_flight;

    const std::string reason(sdk::view(o.reason));
    // `component` is a 1.0 field, but a peer may still pass a shorter struct.
    const bool has_component =
        o.struct_size >= offsetof(fobs_outcome, component) + sizeof(o.component);
    const std::string action(has_component ? sdk::view(o.component) : std::string_view{});
    const auto now = Clock::now();
    switch (o.kind) {
    case FOBS_OUTCOME_OK:
        g.unsettled.erase(it);
        maybe_erase(seq);
        update_gauges(g);
        break;
    case FOBS_OUTCOME_RETRY:
        if (u.delivery_count >= config_.max_deliver) {
            dead_letter(g, seq,
                        "max_deliver (" + std::to_string(config_.max_deliver) +
                            ") reached: " + (reason.empty() ? "retry requested" : reason),
                        action, u.delivery_count);
        } else {
            // Never an immediate storm: the action's delay, else the backoff schedule.
            const int64_t delay =
                o.retry_after_ms >= 0 ? o.retry_after_ms : backoff_for(u.delivery_count);
            u.in_flight = false;
            u.generation = 0;
            u.deadline = now + std::chrono::milliseconds(delay);
            g.due.emplace(u.deadline, seq);
            update_gauges(g);
        }
        break;
    default: // FAILED, or an unknown kind from a newer peer: do not retry
        dead_letter(g, seq, reason.empty() ? "failed" : reason, action, u.delivery_count);
        break;
    }
    work_cv_.notify_all();
    settle_cv_.notify_all();
}

void MemoryLog::request_close(ConsumerState &c) {
    std::lock_guard lock(mu_);
    c.closing = true;
    c.drain_until = Clock::now() + std::chrono::milliseconds(config_.drain_timeout_ms);
    work_cv_.notify_all();
}

void MemoryLog::detach(Group &g, ConsumerState &c) {
    std::unique_lock lock(mu_);
    const auto deadline = Clock::now() + std::chrono::milliseconds(config_.ack_wait_ms);
    settle_cv_.wait_until(lock, deadline, [&] { return c.in_flight == 0 || stopping_; });
    // Tokens still out are taken back: their message becomes due again (for a competing
    // consumer, or for this group when it reopens); a late completion is ignored.
    const auto now = Clock::now();
    for (auto &[seq, u] : g.unsettled) {
        if (!u.in_flight || u.consumer != c.id) continue;
        g.deadlines.erase({u.deadline, seq});
        u.in_flight = false;
        u.generation = 0;
        u.deadline = now;
        g.due.emplace(now, seq);
    }
    c.in_flight = 0;
    g.consumers.erase(c.id);
    if (!g.open()) sweep(); // the other groups may have been waiting only for this one
    update_gauges(g);
    work_cv_.notify_all();
}

} // namespace fraiseql_observer::memory
