#include "notify_reader.hpp"

#include "emit_token.hpp"

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

// Records handed to the host and not settled yet. A RETRY outcome queues the record to be
// handed over again (NOTIFY cannot be re-read); FAILED is logged (the host counts it).
struct NotifyReader::Tracker final : OutcomeReceiver {
    struct Pending {
        // Shared so that the emitting thread keeps the bytes alive for the whole emit() call even
        // when the outcome arrives (and erases the entry) before emit() returns.
        std::shared_ptr<const std::string> payload;
        std::shared_ptr<const std::string> channel;
        int64_t txid = -1;
        steady_clock::time_point due{}; // set when waiting for a retry
        bool waiting_retry = false;
    };

    explicit Tracker(sdk::Host h) : host(h) {}

    void on_outcome(uint64_t key, EmitOutcome o) noexcept override {
        std::string log_line;
        {
            std::lock_guard lk(mu);
            auto it = pending.find(key);
            if (it == pending.end()) return; // detached after stop()
            if (o.kind == FOBS_OUTCOME_RETRY) {
                it->second.waiting_retry = true;
                it->second.due = steady_clock::now() +
                                 (o.retry_after_ms >= 0 ? milliseconds(o.retry_after_ms) : kDefaultRetryDelay);
                ++retry_waiting;
            } else {
                if (o.kind == FOBS_OUTCOME_FAILED) {
                    ++rejected;
                    log_line = "notification on channel \"" + *it->second.channel +
                               "\" rejected: " + (o.reason.empty() ? "(no reason given)" : o.reason);
                }
                pending.erase(it);
            }
            --in_flight;
        }
        cv.notify_all();
        if (o.kind == FOBS_OUTCOME_RETRY) waker.wake();
        if (!log_line.empty()) host.warn(log_line);
    }

    sdk::Host host;
    Waker waker;
    std::mutex mu;
    std::condition_variable cv;
    std::unordered_map<uint64_t, Pending> pending;
    uint64_t next_key = 1;
    size_t in_flight = 0;
    size_t retry_waiting = 0;
    uint64_t rejected = 0;
};

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
    tracker_->cv.wait_for(lk, config_.drain_timeout, [&] { return tracker_->in_flight == 0; });
    size_t unsettled = tracker_->pending.size();
    tracker_->pending.clear();
    tracker_->in_flight = 0;
    tracker_->retry_waiting = 0;
    lk.unlock();
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

void NotifyReader::emit(uint64_t key, std::shared_ptr<const std::string> payload,
                        std::shared_ptr<const std::string> channel, int64_t txid) {
    // The token may complete before emit() returns (a rejection), so the record is tracked
    // first, and this frame holds its own references to the bytes it lends to the host.
    sink_.emit(*payload, txid, *channel, EmitToken::make(tracker_, key));
}

void NotifyReader::reemit_due() {
    struct Again {
        uint64_t key;
        Tracker::Pending p;
    };
    std::vector<Again> again;
    {
        std::lock_guard lk(tracker_->mu);
        if (tracker_->retry_waiting == 0) return;
        auto now = steady_clock::now();
        for (auto &[key, p] : tracker_->pending) {
            if (p.waiting_retry && p.due <= now) {
                p.waiting_retry = false;
                --tracker_->retry_waiting;
                ++tracker_->in_flight;
                again.push_back({key, p});
            }
        }
    }
    for (auto &a : again) emit(a.key, a.p.payload, a.p.channel, a.p.txid);
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
            Tracker::Pending p;
            p.txid = txid_of_payload(n.payload);
            p.payload = std::make_shared<const std::string>(std::move(n.payload));
            p.channel = std::make_shared<const std::string>(std::move(n.channel));
            uint64_t key;
            {
                std::lock_guard lk(tracker_->mu);
                key = tracker_->next_key++;
                tracker_->pending.emplace(key, p);
                ++tracker_->in_flight;
            }
            emit(key, p.payload, p.channel, p.txid);
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
