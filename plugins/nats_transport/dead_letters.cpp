#include "dead_letters.hpp"

#include "event_fields.hpp"
#include <pthread.h>

namespace fraiseql_observer::nats_transport {

bool split_subject(std::string_view subject, std::string_view prefix, std::string_view &entity,
                   std::string_view &operation) {
    if (subject.size() <= prefix.size() + 1 || subject.compare(0, prefix.size(), prefix) != 0 ||
        subject[prefix.size()] != '.')
        return false;
    std::string_view rest = subject.substr(prefix.size() + 1);
    auto dot = rest.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 >= rest.size()) return false;
    entity = rest.substr(0, dot);
    operation = rest.substr(dot + 1);
    return operation.find('.') == std::string_view::npos;
}

DeadLetters::DeadLetters(std::shared_ptr<Link> link, const NatsConfig &config, sdk::Host host)
    : link_(std::move(link)), config_(config), host_(host) {}

DeadLetters::~DeadLetters() { stop(); }

void DeadLetters::start() {
    std::lock_guard lk(mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "nats-dlq");
        run();
    });
}

void DeadLetters::stop() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void DeadLetters::run() {
    std::unique_lock lk(mu_);
    while (true) {
        cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return; // stopping and nothing left
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        lk.unlock();
        job();
        lk.lock();
    }
}

void DeadLetters::write_async(DlqRecord record,
                              std::function<void(bool, const std::string &)> then) {
    std::unique_lock lk(mu_);
    if (stopping_ && !thread_.joinable()) {
        lk.unlock();
        then(false, "transport stopped");
        return;
    }
    jobs_.emplace_back([this, r = std::move(record), then = std::move(then)] {
        std::string err;
        bool ok = write(r, err);
        then(ok, err);
    });
    cv_.notify_one();
}

void DeadLetters::ensure_copied(uint64_t seq, uint64_t deliveries, std::string reason,
                                std::string consumer, sdk::Metric counter) {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    jobs_.emplace_back([=, this] { copy_from_stream(seq, deliveries, reason, consumer, counter); });
    cv_.notify_one();
}

bool DeadLetters::already_dead_lettered(uint64_t seq) {
    std::lock_guard lk(mu_);
    return done_seqs_.count(seq) != 0;
}

void DeadLetters::remember(uint64_t seq) {
    std::lock_guard lk(mu_);
    done_seqs_.insert(seq);
    while (done_seqs_.size() > 100'000) done_seqs_.erase(done_seqs_.begin());
}

bool DeadLetters::write(const DlqRecord &r, std::string &error) {
    std::string_view entity, operation;
    std::string subject;
    if (split_subject(r.original_subject, config_.subject_prefix, entity, operation))
        subject = config_.dlq_prefix + "." + std::string(entity) + "." + std::string(operation);
    else
        subject = config_.dlq_prefix + ".unknown.UNKNOWN";
    natsMsg *msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, r.body.data(),
                                  static_cast<int>(r.body.size()));
    auto set = [&](const char *k, const std::string &v) {
        if (s == NATS_OK) s = natsMsgHeader_Set(msg, k, v.c_str());
    };
    set("Nats-Msg-Id", r.id + ":dlq:" + std::to_string(r.original_sequence));
    set("Content-Type", "application/json");
    set("Fobs-Dlq-Reason", r.reason.empty() ? std::string("unknown") : r.reason);
    // cnats mis-parses an empty header value (the next header swallows it), hence "unknown".
    set("Fobs-Dlq-Action", r.action.empty() ? std::string("unknown") : r.action);
    set("Fobs-Dlq-Delivery-Count", std::to_string(r.delivery_count));
    set("Fobs-Original-Subject", r.original_subject);
    set("Fobs-Original-Sequence", std::to_string(r.original_sequence));
    set("Fobs-Original-Stream", r.original_stream);
    if (s != NATS_OK) {
        natsMsg_Destroy(msg);
        error = nats_error(s, "building DLQ message");
        return false;
    }
    jsPubAck *pa = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = config_.publish_timeout_ms;
    po.ExpectStream = config_.dlq_stream.c_str();
    s = js_PublishMsg(&pa, link_->js(), msg, &po, &code);
    natsMsg_Destroy(msg);
    if (s != NATS_OK) {
        error = nats_error(s, "DLQ publish");
        return false;
    }
    jsPubAck_Destroy(pa);
    remember(r.original_sequence);
    host_.log(FOBS_LOG_WARN,
              "dead-lettered event " + r.id + " (stream seq " +
                  std::to_string(r.original_sequence) + ", delivery " +
                  std::to_string(r.delivery_count) + "): " + r.reason,
              r.id);
    return true;
}

void DeadLetters::copy_from_stream(uint64_t seq, uint64_t deliveries, const std::string &reason,
                                   const std::string &consumer, const sdk::Metric &counter) {
    if (already_dead_lettered(seq)) return;
    natsMsg *msg = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetMsg(&msg, link_->js(), config_.stream_name.c_str(), seq, nullptr, &code);
    if (s != NATS_OK) {
        host_.error("safety net: cannot read stream " + config_.stream_name + " seq " +
                    std::to_string(seq) + " to dead-letter it (" + nats_error(s, "get") +
                    "); it is lost to the DLQ");
        return;
    }
    DlqRecord r;
    r.original_subject = natsMsg_GetSubject(msg);
    r.original_stream = config_.stream_name;
    r.original_sequence = seq;
    r.body.assign(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    const char *id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id) r.id = id;
    if (r.id.empty()) r.id = std::string(top_level_string(r.body, "id"));
    natsMsg_Destroy(msg);
    r.reason = reason;
    r.action = consumer;
    r.delivery_count = deliveries;
    std::string err;
    if (write(r, err)) {
        counter.add(1);
        host_.warn("safety net: copied stream seq " + std::to_string(seq) +
                   " to the DLQ (" + reason + ")");
    } else {
        host_.error("safety net: DLQ write for stream seq " + std::to_string(seq) +
                    " failed: " + err);
    }
}

} // namespace fraiseql_observer::nats_transport
