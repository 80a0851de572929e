#include "dead_letters.hpp"

#include "dlq_fields.hpp"
#include "wire_limits.hpp"

#include <fraiseql_observer/redact.hpp>

#include <openssl/sha.h>
#include <pthread.h>

#include <cstdio>
#include <utility>
#include <vector>

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

void DeadLetters::stop(std::chrono::milliseconds budget) {
    {
        std::lock_guard lk(mu_);
        if (!stopping_) give_up_at_ = std::chrono::steady_clock::now() + budget;
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

namespace {

std::string sha256_hex(std::string_view text) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char *>(text.data()), text.size(), digest);
    std::string out;
    char buf[3];
    for (unsigned char c : digest) {
        std::snprintf(buf, sizeof(buf), "%02x", c);
        out += buf;
    }
    return out;
}

// A header value NATS carries as written: control characters escaped, bounded, never empty
// (cnats mis-parses an empty value: the next header swallows it).
std::string header_safe(std::string_view v) {
    if (v.empty()) return "unknown";
    if (header_value_problem(v).empty()) {
        bool plain = true;
        for (unsigned char c : v) plain = plain && c >= 0x20 && c != 0x7f;
        if (plain) return std::string(v);
    }
    return printable(v, max_header_value_bytes / 4);
}

} // namespace

bool DeadLetters::write(const DlqRecord &r, std::string &error) {
    using clock_type = std::chrono::steady_clock;
    int64_t wait_ms = config_.publish_timeout_ms;
    {
        std::lock_guard lk(mu_);
        if (stopping_) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up_at_ -
                                                                              clock_type::now());
            if (left.count() <= 0 || !link_->connected()) {
                error = "transport stopped (NATS " + std::string(link_->connected() ? "still busy"
                                                                                     : "unreachable") +
                        ")";
                return false;
            }
            wait_ms = std::min<int64_t>(wait_ms, left.count());
        }
    }
    std::string_view entity, operation;
    std::string subject;
    bool subject_ok = split_subject(r.original_subject, config_.subject_prefix, entity, operation) &&
                      subject_problem(config_.dlq_prefix, entity, operation).empty();
    if (subject_ok)
        subject = config_.dlq_prefix + "." + std::string(entity) + "." + std::string(operation);
    else
        subject = config_.dlq_prefix + "._invalid._invalid";
    // The DLQ's own Nats-Msg-Id de-duplicates copies of one original (workers racing, the
    // same refused event published again); an id that cannot be a header value is hashed.
    std::string msg_id = header_value_problem(r.id).empty() && r.id.size() <= 256
                             ? r.id
                             : "sha256-" + sha256_hex(r.id);
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Nats-Msg-Id", msg_id + ":dlq:" + std::to_string(r.original_sequence)},
        {"Content-Type", "application/json"},
        {"Fobs-Dlq-Reason", header_safe(sdk::redact_secrets(r.reason))},
        {"Fobs-Dlq-Action", header_safe(r.action)},
        {"Fobs-Dlq-Delivery-Count", std::to_string(r.delivery_count)},
        {"Fobs-Original-Sequence", std::to_string(r.original_sequence)},
        {"Fobs-Original-Stream", header_safe(r.original_stream)},
    };
    // Only a subject that could be published again: `dlq replay` refuses an entry without one.
    if (subject_problem(config_.subject_prefix, entity, operation).empty() && subject_ok)
        headers.emplace_back("Fobs-Original-Subject", r.original_subject);
    std::string_view body = r.body;
    const int64_t max_payload = link_->max_payload();
    auto omit_body = [&](const std::string &why) {
        headers.emplace_back("Fobs-Dlq-Body-Omitted",
                             std::to_string(r.body.size()) + " bytes: " + why);
        body = {};
    };
    if (max_payload > 0 && static_cast<int64_t>(header_bytes(headers) + body.size() + 64) > max_payload)
        omit_body("over the server's max_payload (" + std::to_string(max_payload) + ")");

    for (int round = 0;; ++round) {
        natsMsg *msg = nullptr;
        natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(),
                                      static_cast<int>(body.size()));
        for (const auto &[k, v] : headers)
            if (s == NATS_OK) s = natsMsgHeader_Set(msg, k.c_str(), v.c_str());
        if (s != NATS_OK) {
            natsMsg_Destroy(msg);
            error = nats_error(s, "building DLQ message");
            return false;
        }
        jsPubAck *pa = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = wait_ms;
        po.ExpectStream = config_.dlq_stream.c_str();
        s = js_PublishMsg(&pa, link_->js(), msg, &po, &code);
        natsMsg_Destroy(msg);
        if (s == NATS_OK) {
            jsPubAck_Destroy(pa);
            break;
        }
        error = nats_error(s, "DLQ publish");
        if (code != 0) error += " [JetStream error " + std::to_string(static_cast<int>(code)) + "]";
        // The DLQ stream (or the server) takes no message this big: keep the record, not the body.
        bool too_big = s == NATS_MAX_PAYLOAD || code == JSStreamMessageExceedsMaximumErr;
        if (too_big && round == 0 && !body.empty()) {
            omit_body("refused by the DLQ (" + error + ")");
            continue;
        }
        return false;
    }
    if (r.original_sequence != 0) remember(r.original_sequence);
    host_.log(FOBS_LOG_WARN,
              "dead-lettered event " + printable(r.id, 80) + " (stream seq " +
                  std::to_string(r.original_sequence) + ", delivery " +
                  std::to_string(r.delivery_count) + "): " +
                  printable(sdk::redact_secrets(r.reason), 600),
              printable(r.id, 200));
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
    if (r.id.empty()) r.id = dlq_event_id(r.body, "");
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
