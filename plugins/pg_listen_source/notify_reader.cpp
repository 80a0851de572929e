#include "notify_reader.hpp"


#include <pthread.h>
#include <poll.h>

#include <charconv>
#include <condition_variable>
#include <unordered_map>
#include <vector>

namespace fraiseql_observer::pg_listen {

using namespace std::chrono;
using nlohmann::json;

namespace {
constexpr milliseconds kDefaultRetryDelay{1000};

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }
} // namespace

int64_t txid_of_payload(const std::string &payload) {
    // Cheap test first: most payloads (the reference trigger's) carry no txid.
    if (payload.find("\"txid\"") == std::string::npos) return -1;
    auto j = json::parse(payload, nullptr, false);
    if (!j.is_object()) return -1;
    auto it = j.find("txid");
    if (it == j.end()) return -1;
    if (it->is_number_unsigned()) return static_cast<int64_t>(it->get<uint64_t>());
    if (it->is_number_integer()) return it->get<int64_t>() >= 0 ? it->get<int64_t>() : -1;
    if (it->is_string()) {
        const auto &s = it->get_ref<const std::string &>();
        int64_t v = -1;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec == std::errc() && p == s.data() + s.size() && v >= 0) return v;
    }
    return -1;
}

// One notification from its arrival to its settlement: the bytes lent to the host, the
// completion token handed with them and the retry state, in one allocation (a notification used
// to cost five: the bytes twice over, the channel, a map node and a token).
//
// Its lifetime is counted: one reference for the token while the host holds it (or while the
// record waits for a retry), one for the reader while emit() lends the bytes, so a completion
// that arrives before emit() returns never frees what the host may still read.
struct NotifyReader::Record {
    fobs_completion raw{};            // the token; raw.ctx == this
    std::shared_ptr<Tracker> tracker; // keeps the receiver alive for a late completion
    std::string payload;
    std::shared_ptr<const std::string> channel; // shared by every record of the channel
    int64_t txid = -1;
    steady_clock::time_point due{}; // set when waiting for a retry
    bool waiting_retry = false;
    bool detached = false; // stop() forgot it; its completion only frees it
    Record *prev = nullptr, *next = nullptr; // Tracker's list, under its mutex
    std::atomic<int> refs{2};

    void release() {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }
    static void complete(const fobs_completion *self, const fobs_outcome *o);
};

// Records handed to the host and not settled yet. A RETRY outcome queues the record to be
// handed over again (NOTIFY cannot be re-read); FAILED is logged (the host counts it).
struct NotifyReader::Tracker final {
    explicit Tracker(sdk::Host h) : host(h) {}

    void link(Record *r) { // under mu
        r->next = head;
        if (head) head->prev = r;
        head = r;
    }
    void unlink(Record *r) { // under mu
        if (r->prev) r->prev->next = r->next;
        else head = r->next;
        if (r->next) r->next->prev = r->prev;
        r->prev = r->next = nullptr;
    }

    sdk::Host host;
    Waker waker;
    std::mutex mu;
    std::condition_variable cv;
    Record *head = nullptr; // every record not settled yet
    size_t pending = 0;     // records in the list
    size_t in_flight = 0;
    size_t retry_waiting = 0;
    uint64_t rejected = 0;
    bool draining = false; // stop() waits on cv: outcomes notify it
};

void NotifyReader::Record::complete(const fobs_completion *self, const fobs_outcome *o) {
    auto *r = static_cast<Record *>(self->ctx);
    fobs_outcome_kind kind = o ? o->kind : FOBS_OUTCOME_RETRY;
    int64_t retry_after_ms = -1;
    if (o && FOBS_HAS_FIELD(o, fobs_outcome, retry_after_ms)) retry_after_ms = o->retry_after_ms;
    std::shared_ptr<Tracker> t = r->tracker; // the record may go with its last reference
    std::string log_line;
    bool keep = false, notify;
    {
        std::lock_guard lk(t->mu);
        if (!r->detached) {
            if (kind == FOBS_OUTCOME_RETRY) {
                r->waiting_retry = true;
                r->due = steady_clock::now() +
                         (retry_after_ms >= 0 ? milliseconds(retry_after_ms) : kDefaultRetryDelay);
                ++t->retry_waiting;
                keep = true; // the token's reference becomes the waiting one
            } else {
                if (kind == FOBS_OUTCOME_FAILED) {
                    ++t->rejected;
                    std::string_view reason;
                    if (o && FOBS_HAS_FIELD(o, fobs_outcome, reason)) reason = sdk::view(o->reason);
                    log_line = "notification on channel \"" + *r->channel + "\" rejected: " +
                               (reason.empty() ? std::string("(no reason given)") : std::string(reason));
                }
                t->unlink(r);
                --t->pending;
            }
            --t->in_flight;
        }
        notify = t->draining;
    }
    if (notify) t->cv.notify_all();
    if (keep) t->waker.wake();
    else r->release();
    if (!log_line.empty()) t->host.warn(log_line);
}

NotifyReader::NotifyReader(Config config, sdk::Host host)
    : config_(std::move(config)), host_(host), tracker_(std::make_shared<Tracker>(host)) {}

NotifyReader::~NotifyReader() { stop(); }

void NotifyReader::start(sdk::SourceSink sink) {
    sink_ = sink;
    stopping_ = false;
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "pg-notify");
        run();
    });
}

void NotifyReader::stop() noexcept {
    if (!thread_.joinable()) return;
    stopping_ = true;
    tracker_->waker.wake();
    thread_.join();
    // Bounded wait for records already handed over; then forget them (late outcomes are ignored).
    std::unique_lock lk(tracker_->mu);
    tracker_->draining = true;
    tracker_->cv.wait_for(lk, config_.drain_timeout, [&] { return tracker_->in_flight == 0; });
    tracker_->draining = false;
    size_t unsettled = tracker_->pending;
    std::vector<Record *> waiting; // freed here; the others when their late completion comes
    while (Record *r = tracker_->head) {
        tracker_->unlink(r);
        if (r->waiting_retry) waiting.push_back(r);
        else r->detached = true;
    }
    tracker_->pending = 0;
    tracker_->in_flight = 0;
    tracker_->retry_waiting = 0;
    lk.unlock();
    for (Record *r : waiting) r->release();
    if (unsettled > 0)
        host_.warn(std::to_string(unsettled) +
                   " notification(s) were not confirmed before stop and are lost (notify mode keeps "
                   "no copy; use mode = \"outbox\" for zero loss)");
    connected_ = false;
    set_reason("stopped");
}

bool NotifyReader::ready(std::string &why) {
    if (connected_) return true;
    std::lock_guard lk(reason_mu_);
    why = not_ready_reason_;
    return false;
}

void NotifyReader::set_reason(std::string why) {
    std::lock_guard lk(reason_mu_);
    not_ready_reason_ = std::move(why);
}

json NotifyReader::status() {
    std::lock_guard lk(tracker_->mu);
    return json{{"mode", "notify"},
                {"connected", connected_.load()},
                {"channels", config_.channels},
                {"outbox_backlog", nullptr},
                {"rejected", tracker_->rejected},
                {"in_flight", tracker_->in_flight},
                {"checkpoint", nullptr}};
}

std::string NotifyReader::listen_all(Connection &conn) {
    for (const auto &ch : config_.channels) {
        auto r = conn.exec("LISTEN " + quote_ident(ch));
        if (!r.ok()) return "LISTEN " + quote_ident(ch) + " failed: " + r.error();
    }
    return "";
}

void NotifyReader::sleep_interruptibly(milliseconds d) { tracker_->waker.sleep_for(d, stopping_); }

void NotifyReader::emit(Record *r) {
    // The token may complete before emit() returns (a rejection, a fast PubAck on another
    // thread): the caller's reference keeps the lent bytes alive until the call is over.
    sink_.emit(r->payload, r->txid, *r->channel, &r->raw);
    r->release();
}

void NotifyReader::reemit_due() {
    std::vector<Record *> again;
    {
        std::lock_guard lk(tracker_->mu);
        if (tracker_->retry_waiting == 0) return;
        auto now = steady_clock::now();
        for (Record *r = tracker_->head; r; r = r->next) {
            if (r->waiting_retry && r->due <= now) {
                r->waiting_retry = false;
                --tracker_->retry_waiting;
                ++tracker_->in_flight;
                r->refs.fetch_add(1, std::memory_order_relaxed); // this thread's, for emit()
                again.push_back(r);
            }
        }
    }
    for (Record *r : again) emit(r);
}

void NotifyReader::run() {
    Connection::Options opts;
    opts.conninfo = config_.conninfo;
    opts.connect_timeout = config_.connect_timeout;
    opts.statement_timeout = config_.statement_timeout;
    opts.on_notice = [this](std::string_view m) { host_.info(std::string("server: ") + std::string(m)); };
    Connection conn(opts, &tracker_->waker, &stopping_);
    Backoff backoff(config_.reconnect_min, config_.reconnect_max);
    const std::string where = describe_conninfo(config_.conninfo);
    bool had_connection = false;
    steady_clock::time_point lost_at{};
    std::vector<Notification> notes;
    std::string channel_list;
    for (const auto &c : config_.channels) channel_list += (channel_list.empty() ? "" : ", ") + c;
    // The channel's name is shared by its records, not copied into each.
    std::vector<std::shared_ptr<const std::string>> channels;
    auto channel_text = [&](const std::string &name) {
        for (const auto &c : channels)
            if (*c == name) return c;
        channels.push_back(std::make_shared<const std::string>(name));
        return channels.back();
    };

    while (!stopping_) {
        if (!conn.connected()) {
            std::string err = conn.connect();
            if (err.empty()) err = listen_all(conn);
            if (!err.empty()) {
                conn.close();
                if (stopping_) break;
                auto d = backoff.next();
                set_reason("cannot connect to " + where + ": " + err);
                host_.warn("cannot connect to " + where + ": " + err + "; retrying in " + ms_text(d));
                sleep_interruptibly(d);
                continue;
            }
            backoff.reset();
            connected_ = true;
            set_reason("");
            if (had_connection) {
                auto down = duration_cast<milliseconds>(steady_clock::now() - lost_at);
                host_.warn("reconnected to " + conn.describe() + " after " + ms_text(down) +
                           " and listening again on " + channel_list +
                           ": notifications raised while disconnected were lost (NOTIFY is "
                           "fire-and-forget); use mode = \"outbox\" for zero loss");
            } else {
                host_.info("listening on " + channel_list + " at " + conn.describe() +
                           " (notify mode: events raised while disconnected cannot be seen; "
                           "mode = \"outbox\" loses nothing)");
            }
            had_connection = true;
        }

        reemit_due();
        milliseconds timeout{1000};
        {
            std::lock_guard lk(tracker_->mu);
            if (tracker_->retry_waiting > 0) timeout = milliseconds(50);
        }
        bool alive = conn.wait(timeout);
        conn.take_notifications(notes);
        for (auto &n : notes) {
            auto *r = new Record;
            r->raw.struct_size = sizeof(r->raw);
            r->raw.ctx = r;
            r->raw.complete = &Record::complete;
            r->tracker = tracker_;
            r->txid = txid_of_payload(n.payload);
            r->payload = std::move(n.payload);
            r->channel = channel_text(n.channel);
            {
                std::lock_guard lk(tracker_->mu);
                tracker_->link(r);
                ++tracker_->pending;
                ++tracker_->in_flight;
            }
            emit(r);
        }
        notes.clear();
        if (!alive) {
            connected_ = false;
            lost_at = steady_clock::now();
            set_reason("connection lost: " + conn.last_error());
            host_.warn("connection to " + where + " lost (" + conn.last_error() +
                       "); reconnecting. Notifications raised until the reconnect are lost (NOTIFY "
                       "is fire-and-forget); use mode = \"outbox\" for zero loss");
        }
    }
    conn.close();
    connected_ = false;
}

} // namespace fraiseql_observer::pg_listen
