#include "publisher.hpp"

#include "wire_limits.hpp"

#include <pthread.h>
#include <algorithm>

namespace fraiseql_observer::nats_transport {

using clock_type = std::chrono::steady_clock;

namespace {

// PubAck or send errors that the same message will meet again however often it is re-sent.
bool permanent_error(natsStatus s, int err_code, std::string_view text) {
    return s == NATS_MAX_PAYLOAD || s == NATS_INVALID_SUBJECT ||
           err_code == JSStreamMessageExceedsMaximumErr ||
           text.find("maximum message payload exceeded") != std::string_view::npos ||
           text.find("message size exceeds maximum") != std::string_view::npos;
}

DlqRecord record_of(const NatsConfig &config, std::string subject, std::string_view id,
                    std::string_view body) {
    DlqRecord r;
    r.original_subject = std::move(subject);
    r.original_stream = config.stream_name;
    r.original_sequence = 0; // never stored in the stream
    r.id = std::string(id);
    r.body = std::string(body);
    r.action = "nats publish";
    r.delivery_count = 0;
    return r;
}

} // namespace

Publisher::Publisher(std::shared_ptr<Link> link, const NatsConfig &config, sdk::Host host,
                     DeadLetters &dead_letters, std::function<bool()> ready)
    : link_(std::move(link)), config_(config), host_(host), dead_letters_(dead_letters),
      ready_(std::move(ready)) {
    // events_published_total / publish_duration_seconds are the host's (per pipeline, from
    // hand-over to this completion); registering them here too would clash with its labels.
}

Publisher::~Publisher() {
    stop(std::chrono::milliseconds(0));
    if (js_) jsCtx_Destroy(js_);
}

void Publisher::start() {
    {
        // Sized for a full window once: no rehash while the window fills and drains.
        std::lock_guard lk(mu_);
        pending_.reserve(static_cast<size_t>(std::max<int64_t>(config_.publish_window, 16)));
    }
    retry_thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "nats-pub-retry");
        retry_loop();
    });
}

int64_t Publisher::in_flight() const {
    std::lock_guard lk(mu_);
    return static_cast<int64_t>(pending_.size());
}

bool Publisher::context_stale() {
    std::shared_lock lk(ctx_mu_);
    if (!js_) return link_->session_id() != 0;
    return js_session_->id != link_->session_id() || natsConnection_IsClosed(js_session_->nc);
}

void Publisher::refresh_context() {
    std::vector<natsMsg *> taken_back;
    {
        std::unique_lock lk(ctx_mu_);
        auto current = link_->session();
        bool usable = current && !natsConnection_IsClosed(current->nc);
        if (js_ && usable && js_session_ == current) return;
        if (js_) {
            // cnats delivers no PubAck or timeout for these any more (their connection is
            // closed or replaced); each counts as a failed attempt and is re-sent.
            if (js_used_.load()) {
                natsMsgList list{};
                if (js_PublishAsyncGetPendingList(&list, js_) == NATS_OK) {
                    for (int i = 0; i < list.Count; ++i) {
                        taken_back.push_back(list.Msgs[i]);
                        list.Msgs[i] = nullptr;
                    }
                    natsMsgList_Destroy(&list);
                }
            }
            jsCtx_Destroy(js_);
            js_ = nullptr;
            js_session_.reset();
            js_used_ = false;
        }
        if (usable) {
            jsOptions jo;
            jsOptions_Init(&jo);
            jo.Wait = config_.publish_timeout_ms;
            // Our own window (pending_) is the real bound; cnats' limit only has to never bite.
            jo.PublishAsync.MaxPending = config_.publish_window + 16;
            jo.PublishAsync.StallWait = config_.publish_timeout_ms;
            jo.PublishAsync.AckHandler = &Publisher::on_ack;
            jo.PublishAsync.AckHandlerClosure = this;
            natsStatus s = natsConnection_JetStream(&js_, current->nc, &jo);
            if (s == NATS_OK) js_session_ = current;
            else {
                js_ = nullptr;
                host_.warn(nats_error(s, "publish context"));
            }
        }
    }
    for (natsMsg *m : taken_back)
        attempt_failed(m, "the NATS connection was closed before the PubAck");
}

void Publisher::publish(const sdk::Event &event, sdk::Completion done) {
    const auto started = clock_type::now();
    std::string subject;
    subject.reserve(config_.subject_prefix.size() + event.entity_type.size() +
                    event.operation.size() + 2);
    subject.append(config_.subject_prefix).append(".").append(event.entity_type).append(".")
        .append(event.operation);
    // Refusals that need no server: what the subject and the headers can carry.
    std::string refusal = subject_problem(config_.subject_prefix, event.entity_type,
                                          event.operation);
    if (refusal.empty()) {
        std::string id_problem = header_value_problem(event.id);
        if (!id_problem.empty()) refusal = "event id " + id_problem + " (it is the Nats-Msg-Id header)";
    }
    if (!refusal.empty()) {
        refuse(record_of(config_, std::move(subject), event.id, event.body), std::move(done),
               refusal);
        return;
    }
    if (!ready_()) {
        // Not provisioned yet (NATS unreachable, or the stream was missing): wait a little,
        // then hand the event back; the source retries. (Once provisioned, a publish while
        // cnats reconnects is buffered and retried by PubAck timeout, see send().)
        auto deadline = started + std::chrono::milliseconds(std::min<int64_t>(
                                      config_.publish_timeout_ms, 2000));
        while (!ready_() && clock_type::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (!ready_()) {
            done.retry("NATS transport not ready: " + link_->state());
            return;
        }
    }
    const std::string id(event.id);
    const size_t hdr = header_bytes({{"Nats-Msg-Id", id}, {"Content-Type", "application/json"}});
    const int64_t max_payload = link_->max_payload();
    if (max_payload > 0 && static_cast<int64_t>(event.body.size() + hdr) > max_payload) {
        refuse(record_of(config_, std::move(subject), event.id, event.body), std::move(done),
               "message is " + std::to_string(event.body.size() + hdr) +
                   " bytes (body and headers), more than the server's max_payload (" +
                   std::to_string(max_payload) + ")");
        return;
    }
    natsMsg *msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, event.body.data(),
                                  static_cast<int>(event.body.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id.c_str());
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
        p.attempts = 1; // counted here, under the lock already held (send() would lock again)
        p.sent = clock_type::now();
        p.in_cnats = true;
    }
    send(msg, true);
}

void Publisher::refuse(DlqRecord record, sdk::Completion done, const std::string &why) {
    host_.log(FOBS_LOG_WARN,
              "event " + printable(record.id, 80) + " refused permanently, writing it to the DLQ: " + why,
              printable(record.id, 200));
    record.reason = "refused by the nats transport: " + why;
    auto token = std::make_shared<sdk::Completion>(std::move(done));
    dead_letters_.write_async(std::move(record), [token, why](bool ok, const std::string &err) {
        if (ok) token->fail("refused by the nats transport (written to the DLQ): " + why);
        else
            token->retry("refused by the nats transport (" + why +
                         ") and the DLQ write failed: " + err);
    });
}

void Publisher::refuse_sent(natsMsg *msg, const std::string &why) {
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
        if (window_waiters_ > 0) window_cv_.notify_all();
    }
    const char *id = nullptr;
    natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
    DlqRecord r = record_of(config_, natsMsg_GetSubject(msg), id ? id : "",
                            std::string_view(natsMsg_GetData(msg),
                                             static_cast<size_t>(natsMsg_GetDataLength(msg))));
    natsMsg_Destroy(msg);
    refuse(std::move(r), std::move(done), why);
}

void Publisher::send(natsMsg *msg, bool counted) {
    if (!counted) {
        std::lock_guard lk(mu_);
        auto it = pending_.find(msg);
        if (it == pending_.end()) return;
        it->second.attempts++;
        it->second.sent = clock_type::now();
        it->second.in_cnats = true;
    }
    if (context_stale()) refresh_context();
    // No MaxWait: the PubAck timeout is the retry thread's (take_back_overdue). cnats' own
    // costs per message an allocation, a timer entry that outlives the PubAck and, at the
    // deadline, a dummy message through the PubAck thread and the garbage collector: with it
    // the publish path cost 4-6 CPU-us more per event (bench/run.sh, batch section).
    natsStatus s;
    {
        std::shared_lock lk(ctx_mu_);
        if (!js_) {
            lk.unlock();
            attempt_failed(msg, link_->state());
            return;
        }
        js_used_ = true;
        natsMsg *m = msg;
        s = js_PublishMsgAsync(js_, &m, nullptr);
    }
    if (s == NATS_OK) return;
    std::string why = nats_error(s, "publish");
    if (permanent_error(s, 0, why)) refuse_sent(msg, why);
    else attempt_failed(msg, why);
}

void Publisher::on_ack(jsCtx *, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    static_cast<Publisher *>(closure)->handle_ack(msg, pa, pae);
}

void Publisher::handle_ack(natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae) {
    // PubAcks run on the delivery thread cnats starts for the context's reply subscription
    // (its own thread, not a pool's). It starts on the first publish and inherits that
    // thread's name ("pg-notify" for the notify source), so per-thread CPU figures counted the
    // PubAck work as the source's; named, it shows on its own line.
    thread_local bool named = false;
    if (!named) {
        pthread_setname_np(pthread_self(), "nats-puback");
        named = true;
    }
    if (pa) {
        finish(msg, FOBS_OUTCOME_OK, {});
        return;
    }
    std::string why = "PubAck error";
    if (pae) {
        why = std::string("PubAck: ") + natsStatus_GetText(pae->Err);
        if (pae->ErrText && *pae->ErrText) why += std::string(" (") + pae->ErrText + ")";
        if (pae->ErrCode != 0) why += " [JetStream error " + std::to_string(static_cast<int>(pae->ErrCode)) + "]";
        if (permanent_error(pae->Err, static_cast<int>(pae->ErrCode), why)) {
            refuse_sent(msg, why);
            return;
        }
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
    p.in_cnats = false;
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

bool Publisher::take_back_overdue() {
    std::vector<natsMsg *> back;
    {
        std::unique_lock lk(ctx_mu_);
        // Only a context that published: cnats 3.4.1's js_PublishAsyncGetPendingList crashes
        // on one that never did.
        if (!js_ || !js_used_.load()) return false;
        natsMsgList list{};
        if (js_PublishAsyncGetPendingList(&list, js_) != NATS_OK) return false;
        for (int i = 0; i < list.Count; ++i) {
            back.push_back(list.Msgs[i]);
            list.Msgs[i] = nullptr;
        }
        natsMsgList_Destroy(&list);
    }
    // cnats lets go of every message at once: the overdue ones count a failed attempt, the
    // others go out again now with the same Nats-Msg-Id (the stream keeps one copy) and a
    // fresh timeout. A PubAck that still comes for an earlier send finds nothing and is dropped.
    const auto timeout = std::chrono::milliseconds(config_.publish_timeout_ms);
    const auto now = clock_type::now();
    std::vector<natsMsg *> overdue, resend, settled;
    {
        std::lock_guard lk(mu_);
        for (natsMsg *m : back) {
            auto it = pending_.find(m);
            if (it == pending_.end()) settled.push_back(m); // completed by stop()
            else if (it->second.sent + timeout <= now) overdue.push_back(m);
            else {
                it->second.sent = now;
                resend.push_back(m);
            }
        }
    }
    for (natsMsg *m : settled) natsMsg_Destroy(m);
    const std::string why = "no PubAck within " + std::to_string(config_.publish_timeout_ms) + " ms";
    for (natsMsg *m : overdue) attempt_failed(m, why);
    for (natsMsg *m : resend) send(m, true);
    return !back.empty();
}

void Publisher::retry_loop() {
    // Also wakes every 250 ms to notice a closed or replaced connection (what waits for a
    // PubAck on it would otherwise wait forever), and at the first PubAck deadline.
    constexpr auto check_every = std::chrono::milliseconds(250);
    const auto timeout = std::chrono::milliseconds(config_.publish_timeout_ms);
    std::unique_lock lk(mu_);
    while (!stopping_) {
        if (!pending_.empty()) {
            lk.unlock();
            if (context_stale()) refresh_context();
            lk.lock();
            if (stopping_) break;
        }
        auto now = clock_type::now();
        auto first_deadline = clock_type::time_point::max();
        for (const auto &[m, p] : pending_)
            if (p.in_cnats) first_deadline = std::min(first_deadline, p.sent + timeout);
        if (first_deadline <= now) {
            lk.unlock();
            bool took = take_back_overdue();
            lk.lock();
            // Nothing to take back: the overdue PubAck is being handled right now.
            if (!took) retry_cv_.wait_until(lk, clock_type::now() + std::chrono::milliseconds(5));
            continue;
        }
        if (retries_.empty() || now < retries_.begin()->first) {
            auto until = std::min(now + check_every, first_deadline);
            if (!retries_.empty()) until = std::min(until, retries_.begin()->first);
            retry_cv_.wait_until(lk, until);
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
        if (!retry_thread_.joinable()) {
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
    {
        std::unique_lock lk(ctx_mu_);
        // Only when needed: cnats 3.4.1's js_PublishAsyncGetPendingList crashes on a context
        // that never published asynchronously.
        if (js_ && any_pending && js_used_.load()) {
            natsMsgList list{};
            if (js_PublishAsyncGetPendingList(&list, js_) == NATS_OK) {
                for (int i = 0; i < list.Count; ++i) {
                    leftovers.push_back(list.Msgs[i]);
                    list.Msgs[i] = nullptr;
                }
                natsMsgList_Destroy(&list);
            }
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
