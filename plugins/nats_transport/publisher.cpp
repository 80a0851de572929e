#include "publisher.hpp"

#include <pthread.h>
#include <algorithm>

namespace fraiseql_observer::nats_transport {

using clock_type = std::chrono::steady_clock;

Publisher::Publisher(std::shared_ptr<Link> link, const NatsConfig &config, sdk::Host host,
                     std::function<bool()> ready)
    : link_(std::move(link)), config_(config), host_(host), ready_(std::move(ready)) {
    // events_published_total / publish_duration_seconds are the host's (per pipeline, from
    // hand-over to this completion); registering them here too would clash with its labels.
}

Publisher::~Publisher() {
    stop(std::chrono::milliseconds(0));
    if (js_) jsCtx_Destroy(js_);
}

void Publisher::start() {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = config_.publish_timeout_ms;
    // Our own window (pending_) is the real bound; cnats' limit only has to never bite first.
    jo.PublishAsync.MaxPending = config_.publish_window + 16;
    jo.PublishAsync.StallWait = config_.publish_timeout_ms;
    jo.PublishAsync.AckHandler = &Publisher::on_ack;
    jo.PublishAsync.AckHandlerClosure = this;
    natsStatus s = natsConnection_JetStream(&js_, link_->conn(), &jo);
    if (s != NATS_OK) throw std::runtime_error(nats_error(s, "publish context"));
    retry_thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "nats-pub-retry");
        retry_loop();
    });
}

int64_t Publisher::in_flight() const {
    std::lock_guard lk(mu_);
    return static_cast<int64_t>(pending_.size());
}

void Publisher::publish(const sdk::Event &event, sdk::Completion done) {
    const auto started = clock_type::now();
    if (!ready_()) {
        // Not provisioned yet (NATS unreachable at startup, or the stream was missing): wait a
        // little, then hand the event back; the source retries.
        auto deadline = started + std::chrono::milliseconds(std::min<int64_t>(
                                      config_.publish_timeout_ms, 2000));
        while (!ready_() && clock_type::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (!ready_()) {
            done.retry("NATS transport not ready: " + link_->state());
            return;
        }
    }
    std::string subject;
    subject.reserve(config_.subject_prefix.size() + event.entity_type.size() +
                    event.operation.size() + 2);
    subject.append(config_.subject_prefix).append(".").append(event.entity_type).append(".")
        .append(event.operation);
    natsMsg *msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, event.body.data(),
                                  static_cast<int>(event.body.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", std::string(event.id).c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Content-Type", "application/json");
    if (s != NATS_OK) {
        natsMsg_Destroy(msg);
        done.retry(nats_error(s, "building message"));
        return;
    }
    {
        std::unique_lock lk(mu_);
        ++window_waiters_;
        window_cv_.wait(lk, [&] {
            return stopping_ || static_cast<int64_t>(pending_.size()) < config_.publish_window;
        });
        --window_waiters_;
        if (stopping_) {
            lk.unlock();
            natsMsg_Destroy(msg);
            done.retry("transport stopping");
            return;
        }
        Pending &p = pending_[msg];
        p.done = std::move(done);
    }
    send(msg);
}

void Publisher::send(natsMsg *msg) {
    {
        std::lock_guard lk(mu_);
        auto it = pending_.find(msg);
        if (it == pending_.end()) return;
        it->second.attempts++;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = config_.publish_timeout_ms; // PubAck timeout -> ack handler with NATS_TIMEOUT
    natsMsg *m = msg;
    natsStatus s = js_PublishMsgAsync(js_, &m, &po);
    if (s != NATS_OK) attempt_failed(msg, nats_error(s, "publish"));
}

void Publisher::on_ack(jsCtx *, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    static_cast<Publisher *>(closure)->handle_ack(msg, pa, pae);
}

void Publisher::handle_ack(natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae) {
    if (pa) {
        finish(msg, FOBS_OUTCOME_OK, {});
        return;
    }
    std::string why = "PubAck error";
    if (pae) {
        why = std::string("PubAck: ") + natsStatus_GetText(pae->Err);
        if (pae->ErrText && *pae->ErrText) why += std::string(" (") + pae->ErrText + ")";
    }
    attempt_failed(msg, why);
}

void Publisher::attempt_failed(natsMsg *msg, const std::string &why) {
    std::unique_lock lk(mu_);
    auto it = pending_.find(msg);
    if (it == pending_.end()) { // already settled by stop() - free it
        lk.unlock();
        natsMsg_Destroy(msg);
        return;
    }
    Pending &p = it->second;
    p.last_error = why;
    if (stopping_ || p.attempts >= config_.publish_max_attempts) {
        lk.unlock();
        finish(msg, FOBS_OUTCOME_RETRY,
               "publish failed after " + std::to_string(p.attempts) + " attempt(s): " + why);
        return;
    }
    // 100 ms doubling up to 2 s (NatsConfig::publish_retry_horizon_ms assumes the same).
    int64_t pause = 100;
    for (int64_t i = 1; i < p.attempts; ++i) pause = std::min<int64_t>(pause * 2, 2000);
    if (p.attempts == 1)
        host_.debug("publish attempt failed, retrying with the same Nats-Msg-Id: " + why);
    retries_.emplace(clock_type::now() + std::chrono::milliseconds(pause), msg);
    retry_cv_.notify_one();
}

void Publisher::finish(natsMsg *msg, fobs_outcome_kind kind, const std::string &reason) {
    sdk::Completion done;
    {
        std::lock_guard lk(mu_);
        auto it = pending_.find(msg);
        if (it == pending_.end()) {
            natsMsg_Destroy(msg);
            return;
        }
        done = std::move(it->second.done);
        pending_.erase(it);
        // A blocked publisher is woken once the window drained a little (1/16), not for every
        // PubAck: one wake-up per slot would cost a context switch per event.
        int64_t low_mark = config_.publish_window - std::max<int64_t>(1, config_.publish_window / 16);
        if (window_waiters_ > 0 && static_cast<int64_t>(pending_.size()) <= low_mark)
            window_cv_.notify_all();
    }
    natsMsg_Destroy(msg);
    if (kind == FOBS_OUTCOME_OK) {
        done.ok();
    } else {
        host_.warn(reason);
        done.retry(reason);
    }
}

void Publisher::retry_loop() {
    std::unique_lock lk(mu_);
    while (!stopping_) {
        if (retries_.empty()) {
            retry_cv_.wait(lk);
            continue;
        }
        auto due = retries_.begin()->first;
        if (clock_type::now() < due) {
            retry_cv_.wait_until(lk, due);
            continue;
        }
        natsMsg *msg = retries_.begin()->second;
        retries_.erase(retries_.begin());
        lk.unlock();
        send(msg);
        lk.lock();
    }
}

void Publisher::stop(std::chrono::milliseconds grace) {
    {
        std::unique_lock lk(mu_);
        if (!js_ && !retry_thread_.joinable()) {
            stopping_ = true;
            return;
        }
        // Let what is in flight reach its PubAck first (SPEC section 8: outstanding publishes
        // are confirmed before exit).
        ++window_waiters_;
        window_cv_.wait_for(lk, grace, [&] { return pending_.empty() && retries_.empty(); });
        --window_waiters_;
        stopping_ = true;
    }
    retry_cv_.notify_all();
    window_cv_.notify_all();
    if (retry_thread_.joinable()) retry_thread_.join();
    // Take back what cnats still holds (no ack handler will run for those any more), and the
    // attempts waiting for a retry; complete them RETRY so the source keeps them.
    std::vector<natsMsg *> leftovers;
    bool any_pending;
    {
        std::lock_guard lk(mu_);
        any_pending = !pending_.empty();
    }
    // Only when needed: cnats 3.4.1's js_PublishAsyncGetPendingList crashes on a context that
    // never published asynchronously.
    if (js_ && any_pending) {
        natsMsgList list{};
        if (js_PublishAsyncGetPendingList(&list, js_) == NATS_OK) {
            for (int i = 0; i < list.Count; ++i) {
                leftovers.push_back(list.Msgs[i]);
                list.Msgs[i] = nullptr;
            }
            natsMsgList_Destroy(&list);
        }
    }
    {
        std::lock_guard lk(mu_);
        for (auto &[_, m] : retries_) leftovers.push_back(m);
        retries_.clear();
    }
    for (natsMsg *m : leftovers) finish(m, FOBS_OUTCOME_RETRY, "transport stopped before the PubAck");
    // Anything else is inside an ack handler right now or owned by cnats; complete it here
    // and let the handler free the message when it finds no entry.
    std::vector<sdk::Completion> rest;
    {
        std::lock_guard lk(mu_);
        for (auto &[_, p] : pending_) rest.push_back(std::move(p.done));
        pending_.clear();
    }
    for (auto &c : rest) c.retry("transport stopped before the PubAck");
}

} // namespace fraiseql_observer::nats_transport
