#include "batcher.hpp"

#include "signing.hpp"

#include <pthread.h>

#include <utility>

namespace fraiseql_observer::webhook {

std::string batch_webhook_id(const std::vector<BatchItem> &batch) {
    size_t n = 0;
    for (const auto &item : batch) n += item.id.size() + 1;
    std::string ids;
    ids.reserve(n);
    for (const auto &item : batch) {
        ids += item.id;
        ids += '\n';
    }
    return "batch_" + to_hex(sha256(ids)).substr(0, 32);
}

std::string batch_body(const std::vector<BatchItem> &batch) {
    size_t n = 2;
    for (const auto &item : batch) n += item.body.size() + 1;
    std::string body;
    body.reserve(n);
    body += '[';
    for (size_t i = 0; i < batch.size(); ++i) {
        if (i) body += ',';
        body += batch[i].body;
    }
    body += ']';
    return body;
}

Batcher::Batcher(size_t max_events, std::chrono::milliseconds max_wait, CloseFn close)
    : max_events_(max_events), max_wait_(max_wait), close_(std::move(close)) {
    open_.reserve(max_events_);
}

Batcher::~Batcher() { stop(); }

void Batcher::start() {
    std::lock_guard lk(mu_);
    if (started_ || stopping_) return;
    started_ = true;
    timer_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "webhook-batch");
        run();
    });
}

void Batcher::add(std::string_view id, std::string_view body, sdk::Completion done) {
    std::vector<BatchItem> full;
    {
        std::unique_lock lk(mu_);
        if (stopping_ || !started_) {
            lk.unlock();
            done.retry("webhook action is not running");
            return;
        }
        if (open_.empty()) {
            opened_at_ = Clock::now();
            // The timer sleeps without a deadline while no batch is open; otherwise it wakes at
            // the deadline it is waiting for anyway and then looks at the batch open by then.
            // Only the timer clears timer_idle_: this batch may fill and close before the timer
            // runs, and the next batch must wake it again.
            if (timer_idle_) cv_.notify_one();
        }
        open_.push_back(BatchItem{std::string(id), std::string(body), std::move(done)});
        if (open_.size() < max_events_) return;
        full.swap(open_);
        open_.reserve(max_events_);
        ++generation_;
    }
    close_(std::move(full));
}

void Batcher::stop() noexcept {
    std::vector<BatchItem> unsent;
    {
        std::lock_guard lk(mu_);
        if (stopping_ && !timer_.joinable()) return;
        stopping_ = true;
        unsent.swap(open_);
        ++generation_;
    }
    cv_.notify_all();
    if (timer_.joinable()) timer_.join();
    for (auto &item : unsent) item.done.retry("webhook action stopped before the batch was sent");
}

void Batcher::run() noexcept {
    std::unique_lock lk(mu_);
    while (!stopping_) {
        if (open_.empty()) {
            timer_idle_ = true;
            cv_.wait(lk, [&] { return stopping_ || !open_.empty(); });
            timer_idle_ = false; // under the lock, with a batch open (or stopping)
            continue;
        }
        const uint64_t gen = generation_;
        const Clock::time_point deadline = opened_at_ + max_wait_;
        // Woken early only by stop(); a batch filled meanwhile is seen through the generation.
        cv_.wait_until(lk, deadline, [&] { return stopping_; });
        if (stopping_) break;
        if (generation_ != gen || open_.empty()) continue; // closed full; look at the next one
        if (Clock::now() < deadline) continue;              // spurious wake-up
        std::vector<BatchItem> due;
        due.swap(open_);
        open_.reserve(max_events_);
        ++generation_;
        lk.unlock();
        try {
            close_(std::move(due));
        } catch (...) {
            // Out of memory building the request: the tokens still in `due` (or in the
            // half-built request, already destroyed) complete as RETRY when destroyed.
        }
        due.clear();
        lk.lock();
    }
}

} // namespace fraiseql_observer::webhook
