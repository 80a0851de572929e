#include "outbox_reader.hpp"

#include "emit_token.hpp"
#include "outbox_sql.hpp"

#include <pthread.h>
#include <poll.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <vector>

namespace fraiseql_observer::pg_listen {

using namespace std::chrono;
using nlohmann::json;

namespace {

constexpr milliseconds kDefaultRetryDelay{1000};
constexpr milliseconds kFlushDelay{10};      // batches checkpoint writes under a trickle of acks
constexpr milliseconds kBacklogPeriod{1000}; // how often the outbox_backlog gauge is refreshed
constexpr milliseconds kBacklogMaxPeriod{60000}; // ... at the least, when counting gets slow

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }

template <class T> T to_number(std::string_view s) {
    T v{};
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

milliseconds until(steady_clock::time_point t, steady_clock::time_point now) {
    return t <= now ? milliseconds(0) : duration_cast<milliseconds>(t - now) + milliseconds(1);
}

} // namespace

// Rows handed to the host, in (txid, seq) order. Entry k (k counted from the first row ever
// read) lives at entries[k - base_key]; only the reader thread pushes and pops, completion
// callbacks only change an entry's state.
struct OutboxReader::Window final : OutcomeReceiver {
    enum class State { in_flight, ok, rejected, retry_wait };
    struct Entry {
        Position pos;
        std::string payload;
        State state = State::in_flight;
        std::string reason;
        steady_clock::time_point due{};
    };

    void on_outcome(uint64_t key, EmitOutcome o) noexcept override {
        {
            std::lock_guard lk(mu);
            if (key < base_key || key - base_key >= entries.size()) return; // after stop()
            Entry &e = entries[key - base_key];
            if (e.state != State::in_flight) return;
            --in_flight;
            switch (o.kind) {
            case FOBS_OUTCOME_OK:
                e.state = State::ok;
                break;
            case FOBS_OUTCOME_FAILED:
                e.state = State::rejected;
                e.reason = o.reason.empty() ? "rejected (no reason given)" : std::move(o.reason);
                break;
            default:
                e.state = State::retry_wait;
                e.due = steady_clock::now() +
                        (o.retry_after_ms >= 0 ? milliseconds(o.retry_after_ms) : kDefaultRetryDelay);
                ++retry_waiting;
            }
        }
        cv.notify_all();
        waker.wake();
    }

    static bool settled(const Entry &e) { return e.state == State::ok || e.state == State::rejected; }

    Waker waker;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Entry> entries;
    uint64_t base_key = 0;
    size_t in_flight = 0;
    size_t retry_waiting = 0;
};

OutboxReader::OutboxReader(Config config, sdk::Host host, std::string source_name)
    : config_(std::move(config)), host_(host), source_name_(std::move(source_name)),
      window_(std::make_shared<Window>()) {
    std::string schema = quote_ident(config_.schema);
    table_ = schema + ".outbox";
    checkpoint_table_ = schema + ".checkpoint";
    channel_ = config_.schema + ".outbox";
}

OutboxReader::~OutboxReader() { stop(); }

void OutboxReader::start(sdk::SourceSink sink) {
    sink_ = sink;
    backlog_gauge_ = host_.gauge("outbox_backlog", "Rows waiting in the PostgreSQL outbox (pending, not yet confirmed)",
                                 {{"source", source_name_}});
    stopping_ = false;
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "pg-outbox");
        run();
    });
}

void OutboxReader::stop() noexcept {
    if (!thread_.joinable()) return;
    stopping_ = true;
    window_->waker.wake();
    thread_.join();
    set_reason("stopped");
}

bool OutboxReader::ready(std::string &why) {
    if (connected_ && installed_) return true;
    std::lock_guard lk(status_mu_);
    why = not_ready_reason_.empty() ? "not connected" : not_ready_reason_;
    return false;
}

void OutboxReader::set_reason(std::string why) {
    std::lock_guard lk(status_mu_);
    not_ready_reason_ = std::move(why);
}

json OutboxReader::status() {
    json out{{"mode", "outbox"}, {"schema", config_.schema}};
    if (thread_.joinable()) {
        size_t in_flight;
        {
            std::lock_guard lk(window_->mu);
            in_flight = window_->in_flight;
        }
        std::lock_guard lk(status_mu_);
        out["connected"] = connected_.load();
        out["outbox_backlog"] = backlog_ >= 0 ? json(backlog_) : json(nullptr);
        out["rejected"] = rejected_rows_ >= 0 ? json(rejected_rows_) : json(nullptr);
        out["checkpoint"] = have_checkpoint_ ? json{{"txid", checkpoint_.txid}, {"seq", checkpoint_.seq}} : json(nullptr);
        out["in_flight"] = in_flight;
        if (!connected_ || !installed_) out["error"] = not_ready_reason_;
        return out;
    }
    // Not running (e.g. `fraiseql-observer status`): look at the database directly.
    Connection::Options opts;
    opts.conninfo = config_.conninfo;
    opts.connect_timeout = config_.connect_timeout;
    opts.statement_timeout = config_.statement_timeout;
    Connection conn(opts, nullptr, nullptr);
    out["connected"] = false;
    out["outbox_backlog"] = nullptr;
    out["rejected"] = nullptr;
    out["checkpoint"] = nullptr;
    if (auto err = conn.connect(); !err.empty()) {
        out["error"] = "cannot connect to " + describe_conninfo(config_.conninfo) + ": " + err;
        return out;
    }
    auto counts = conn.exec("SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER "
                            "(WHERE state = 'rejected') FROM " + table_);
    if (!counts.ok()) {
        out["error"] = counts.error();
        return out;
    }
    out["outbox_backlog"] = to_number<int64_t>(counts.value(0, 0));
    out["rejected"] = to_number<int64_t>(counts.value(0, 1));
    auto cp = conn.exec("SELECT txid::text, seq FROM " + checkpoint_table_ + " WHERE source = $1",
                        {source_name_});
    if (cp.ok() && cp.rows() == 1)
        out["checkpoint"] = json{{"txid", to_number<uint64_t>(cp.value(0, 0))},
                                 {"seq", to_number<int64_t>(cp.value(0, 1))}};
    return out;
}

void OutboxReader::sleep_interruptibly(milliseconds d) { window_->waker.sleep_for(d, stopping_); }

void OutboxReader::report_error(Connection &conn, const std::string &what, const std::string &error,
                                const std::string &sqlstate) {
    if (!conn.connected()) return; // the caller reports the lost connection
    if (sqlstate == "42P01" || sqlstate == "3F000" || sqlstate == "42883") {
        installed_ = false;
        std::string why = "the outbox is not installed in schema \"" + config_.schema +
                          "\" (run `fraiseql-observer sql --schema " + config_.schema +
                          "` and apply its output with psql): " + error;
        set_reason(why);
        host_.error(why);
        return;
    }
    host_.warn(what + " failed: " + error);
}

std::string OutboxReader::setup_session(Connection &conn) {
    // Deletes and checkpoint writes commit asynchronously: if PostgreSQL crashes right after, a
    // few confirmed rows come back and are published again with the same event ids (the
    // transport de-duplicates them); nothing is lost, and the reader is not bound by fsync.
    auto r = conn.exec("SET synchronous_commit = off");
    if (!r.ok()) return "SET synchronous_commit failed: " + r.error();
    // The read must walk the (txid, seq) index from the cursor and stop after `batch_size`
    // rows. Without statistics on a table that fills and empties fast, the planner otherwise
    // picks a bitmap scan of *every* pending row plus a top-N sort: each read then costs the
    // whole backlog (120 ms instead of 1 ms at 50 000 rows), and a backlog feeds on itself.
    // This connection runs only the reader's own statements, none of which needs a sort.
    r = conn.exec("SET enable_sort = off");
    if (!r.ok()) return "SET enable_sort failed: " + r.error();
    // One reader per source and outbox: a session-level advisory lock (released when this
    // connection ends, also when the process is killed) decides who reads; the others are
    // standbys that try again every second and take over when it dies.
    r = conn.exec("SELECT pg_try_advisory_lock(hashtext('fraiseql_observer.outbox'), hashtext($1))",
                  {config_.schema + "." + source_name_});
    if (!r.ok()) return "taking the reader lock failed: " + r.error();
    if (r.value(0, 0) != "t")
        return "standby: another process reads outbox \"" + config_.schema + "\" for source \"" + source_name_ +
               "\" (it holds the advisory lock); this one takes over when it stops";
    r = conn.exec("LISTEN " + quote_ident(wakeup_channel(config_.schema)));
    if (!r.ok()) return "LISTEN failed: " + r.error();
    r = conn.exec("SELECT txid::text, seq FROM " + checkpoint_table_ + " WHERE source = $1", {source_name_});
    if (!r.ok()) {
        report_error(conn, "reading the checkpoint", r.error(), r.sqlstate());
        return "reading the checkpoint failed: " + r.error();
    }
    Position durable;
    if (r.rows() == 1) durable = Position{to_number<uint64_t>(r.value(0, 0)), to_number<int64_t>(r.value(0, 1))};
    if (!cursor_loaded_) {
        cursor_ = durable;
        cursor_loaded_ = true;
        if (r.rows() == 1) {
            std::lock_guard lk(status_mu_);
            have_checkpoint_ = true;
            checkpoint_ = durable;
        }
    } else if (durable < cursor_) {
        replaying_ = true;
        replay_from_ = durable;
    }
    installed_ = true;
    return "";
}

void OutboxReader::run() {
    Connection::Options opts;
    opts.conninfo = config_.conninfo;
    opts.connect_timeout = config_.connect_timeout;
    opts.statement_timeout = config_.statement_timeout;
    opts.on_notice = [this](std::string_view m) { host_.info(std::string("server: ") + std::string(m)); };
    Connection conn(opts, &window_->waker, &stopping_);
    Backoff backoff(config_.reconnect_min, config_.reconnect_max);
    const std::string where = describe_conninfo(config_.conninfo);
    bool had_connection = false;
    bool standby_logged = false;

    while (!stopping_) {
        if (!conn.connected()) {
            std::string err = conn.connect();
            bool connect_failed = !err.empty();
            if (!connect_failed) err = setup_session(conn);
            if (!err.empty() && err.rfind("standby:", 0) == 0) {
                conn.close();
                if (stopping_) break;
                if (!standby_logged) host_.info("outbox reader: " + err);
                standby_logged = true;
                set_reason(err);
                sleep_interruptibly(milliseconds(1000));
                continue;
            }
            standby_logged = false;
            if (!err.empty()) {
                conn.close();
                if (stopping_) break;
                auto d = backoff.next();
                // A missing outbox keeps the reason report_error() gave.
                if (connect_failed) set_reason("cannot connect to " + where + ": " + err);
                else if (installed_) set_reason(err);
                host_.warn("outbox reader: " + std::string(connect_failed ? "cannot connect to " : "cannot set up the session at ") +
                           where + ": " + err + "; retrying in " + ms_text(d));
                sleep_interruptibly(d);
                continue;
            }
            backoff.reset();
            connected_ = true;
            set_reason("");
            host_.info(std::string(had_connection ? "reconnected to " : "reading the outbox at ") +
                       conn.describe() + " (table " + table_ + ", checkpoint \"" + source_name_ +
                       "\", from txid " + std::to_string(cursor_.txid) + " seq " + std::to_string(cursor_.seq) + ")");
            had_connection = true;
            need_read_ = true;
        }
        if (step(conn)) {
            backoff.reset();
            continue;
        }
        if (!conn.connected()) {
            connected_ = false;
            set_reason("connection lost: " + conn.last_error());
            host_.warn("outbox reader: connection to " + where + " lost (" + conn.last_error() +
                       "); reconnecting. Rows wait in the outbox meanwhile; nothing is lost");
            continue;
        }
        sleep_interruptibly(backoff.next()); // a statement failed on a live connection
    }

    // Drain: give the records in flight a bounded time to settle, record what settled, and
    // leave the rest in the outbox for the next start.
    {
        std::unique_lock lk(window_->mu);
        window_->cv.wait_for(lk, config_.drain_timeout, [&] { return window_->in_flight == 0; });
    }
    if (conn.connected()) flush(conn, true);
    conn.close();
    connected_ = false;
    size_t left;
    {
        std::lock_guard lk(window_->mu);
        left = window_->entries.size();
        window_->base_key += left;
        window_->entries.clear();
        window_->in_flight = 0;
        window_->retry_waiting = 0;
    }
    if (left > 0)
        host_.info(std::to_string(left) + " outbox row(s) were handed over but not confirmed before stop; "
                   "they stay in the outbox and are published again on the next start, with the same event ids");
}

bool OutboxReader::step(Connection &conn) {
    if (!flush(conn, false)) return false;
    reemit_due();
    if (replaying_) {
        std::lock_guard lk(window_->mu);
        if (window_->entries.empty()) {
            replaying_ = false;
            cursor_ = replay_from_;
            need_read_ = true;
            host_.info("reading again from the durable checkpoint (txid " + std::to_string(cursor_.txid) + " seq " +
                       std::to_string(cursor_.seq) + "): rows confirmed just before the connection loss may come "
                       "back and are published again with the same event ids");
        }
    }
    if (!replaying_ && (need_read_ || steady_clock::now() >= next_poll_)) {
        if (!read_batch(conn)) return false;
    }
    if (steady_clock::now() >= next_backlog_) {
        refresh_backlog(conn);
        if (!conn.connected()) return false;
    }

    auto now = steady_clock::now();
    milliseconds timeout = std::min(until(next_poll_, now), until(next_backlog_, now));
    {
        std::lock_guard lk(window_->mu);
        bool room = window_->entries.size() < config_.max_in_flight;
        if (need_read_ && room) timeout = milliseconds(0);
        if (!window_->entries.empty() && Window::settled(window_->entries.front()))
            timeout = std::min(timeout, kFlushDelay);
        if (window_->retry_waiting > 0) timeout = std::min(timeout, milliseconds(20));
    }
    bool alive = conn.wait(timeout);
    std::vector<Notification> notes;
    conn.take_notifications(notes);
    if (!notes.empty()) need_read_ = true;
    return alive;
}

bool OutboxReader::flush(Connection &conn, bool force) {
    std::vector<int64_t> ok_seqs;
    std::vector<const Window::Entry *> rejected;
    Position last;
    size_t n = 0;
    {
        std::lock_guard lk(window_->mu);
        auto &es = window_->entries;
        while (n < es.size() && Window::settled(es[n])) ++n;
        if (n == 0) return true;
        if (!force && n < config_.batch_size && steady_clock::now() - last_flush_ < kFlushDelay) return true;
        ok_seqs.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            if (es[i].state == Window::State::ok) ok_seqs.push_back(es[i].pos.seq);
            else rejected.push_back(&es[i]); // settled entries never change again
        }
        last = es[n - 1].pos;
    }
    // One round trip, one implicit transaction: delete what is confirmed, keep what was rejected
    // (with its reason), and advance the checkpoint past both.
    std::string sql;
    if (!ok_seqs.empty()) {
        sql = "DELETE FROM " + table_ + " WHERE seq = ANY('{";
        for (size_t i = 0; i < ok_seqs.size(); ++i) {
            if (i) sql += ',';
            sql += std::to_string(ok_seqs[i]);
        }
        sql += "}'::bigint[]);";
    }
    for (const auto *e : rejected)
        sql += "UPDATE " + table_ + " SET state = 'rejected', reason = " + conn.escape_literal(e->reason) +
               " WHERE seq = " + std::to_string(e->pos.seq) + ";";
    // While replaying, the checkpoint stays where the server has it durably, so a crash of ours
    // now still re-reads the rows that may have come back.
    if (!replaying_)
        sql += "INSERT INTO " + checkpoint_table_ + " (source, txid, seq, updated_at) VALUES (" +
               conn.escape_literal(source_name_) + ", '" + std::to_string(last.txid) + "'::xid8, " +
               std::to_string(last.seq) +
               ", clock_timestamp()) ON CONFLICT (source) DO UPDATE SET txid = EXCLUDED.txid, seq = "
               "EXCLUDED.seq, updated_at = EXCLUDED.updated_at";
    auto r = conn.exec(sql);
    if (!r.ok()) {
        report_error(conn, "recording confirmed outbox rows", r.error(), r.sqlstate());
        return false;
    }
    for (const auto *e : rejected)
        host_.warn("outbox row seq " + std::to_string(e->pos.seq) + " (txid " + std::to_string(e->pos.txid) +
                   ") rejected: " + e->reason + "; kept in " + table_ + " with state 'rejected'");
    {
        std::lock_guard lk(window_->mu);
        for (size_t i = 0; i < n; ++i) window_->entries.pop_front();
        window_->base_key += n;
    }
    last_flush_ = steady_clock::now();
    std::lock_guard lk(status_mu_);
    if (!replaying_) {
        have_checkpoint_ = true;
        checkpoint_ = last;
    }
    if (rejected_rows_ >= 0) rejected_rows_ += static_cast<int64_t>(rejected.size());
    return true;
}

bool OutboxReader::read_batch(Connection &conn) {
    size_t room;
    {
        std::lock_guard lk(window_->mu);
        room = window_->entries.size() >= config_.max_in_flight ? 0 : config_.max_in_flight - window_->entries.size();
    }
    if (room == 0) return true;
    size_t limit = std::min<size_t>(config_.batch_size, room);
    // Only rows of transactions below the snapshot's xmin are final: every transaction that
    // could still add a row sorting before them has ended. pg_current_snapshot() is the
    // statement's own snapshot, so visibility and the xmin test agree.
    // Careful: the output columns are text, so ORDER BY names the table's columns explicitly (a
    // bare "txid" would sort by the text output column: '1000' < '729').
    auto r = conn.exec("SELECT o.seq, o.txid::text, o.payload::text, pg_snapshot_xmin(pg_current_snapshot())::text FROM " +
                           table_ + " AS o WHERE o.state = 'pending' AND o.txid < pg_snapshot_xmin(pg_current_snapshot())"
                           " AND (o.txid, o.seq) > ($1::xid8, $2::bigint) ORDER BY o.txid, o.seq LIMIT $3",
                       {std::to_string(cursor_.txid), std::to_string(cursor_.seq), std::to_string(limit)});
    if (!r.ok()) {
        report_error(conn, "reading the outbox", r.error(), r.sqlstate());
        return false;
    }
    next_poll_ = steady_clock::now() + config_.poll_interval;
    int rows = r.rows();
    need_read_ = static_cast<size_t>(rows) == limit;
    if (rows > 0 && host_.log_enabled(FOBS_LOG_DEBUG))
        host_.debug("read " + std::to_string(rows) + " rows after (" + std::to_string(cursor_.txid) + "," + std::to_string(cursor_.seq) +
                    "): first txid " + std::string(r.value(0, 1)) + " seq " + std::string(r.value(0, 0)) + ", last txid " +
                    std::string(r.value(rows - 1, 1)) + " seq " + std::string(r.value(rows - 1, 0)) + ", xmin " + std::string(r.value(0, 3)));
    for (int i = 0; i < rows && !stopping_; ++i) {
        Position pos{to_number<uint64_t>(r.value(i, 1)), to_number<int64_t>(r.value(i, 0))};
        const std::string *payload;
        uint64_t key;
        {
            std::lock_guard lk(window_->mu);
            key = window_->base_key + window_->entries.size();
            window_->entries.push_back(Window::Entry{pos, std::string(r.value(i, 2)), Window::State::in_flight, {}, {}});
            ++window_->in_flight;
            payload = &window_->entries.back().payload; // deque: stable until this thread pops it
        }
        cursor_ = pos;
        sink_.emit(*payload, static_cast<int64_t>(pos.txid), channel_, EmitToken::make(window_, key));
    }
    return true;
}

void OutboxReader::reemit_due() {
    std::vector<std::pair<uint64_t, const Window::Entry *>> again;
    {
        std::lock_guard lk(window_->mu);
        if (window_->retry_waiting == 0) return;
        auto now = steady_clock::now();
        for (size_t i = 0; i < window_->entries.size(); ++i) {
            auto &e = window_->entries[i];
            if (e.state == Window::State::retry_wait && e.due <= now) {
                e.state = Window::State::in_flight;
                --window_->retry_waiting;
                ++window_->in_flight;
                again.emplace_back(window_->base_key + i, &e);
            }
        }
    }
    for (auto &[key, e] : again) {
        if (stopping_) {
            // Not handed over again: put it back so the drain does not wait for it.
            std::lock_guard lk(window_->mu);
            auto &mut = window_->entries[key - window_->base_key];
            mut.state = Window::State::retry_wait;
            ++window_->retry_waiting;
            --window_->in_flight;
            continue;
        }
        sink_.emit(e->payload, static_cast<int64_t>(e->pos.txid), channel_, EmitToken::make(window_, key));
    }
}

void OutboxReader::refresh_backlog(Connection &conn) {
    const auto started = steady_clock::now();
    auto r = conn.exec("SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = "
                       "'rejected') FROM " + table_);
    // count(*) reads the whole table: with a large backlog (an outage of the transport) it can
    // take a noticeable time, which the reader then does not spend draining. Keep it below ~5 %
    // (also when it failed, e.g. on statement_timeout), but refresh at least every minute.
    const auto now = steady_clock::now();
    const auto spent = duration_cast<milliseconds>(now - started);
    next_backlog_ = now + std::clamp<milliseconds>(20 * spent, kBacklogPeriod, kBacklogMaxPeriod);
    if (!r.ok()) {
        report_error(conn, "counting the outbox backlog", r.error(), r.sqlstate());
        return;
    }
    int64_t backlog = to_number<int64_t>(r.value(0, 0));
    backlog_gauge_.set(static_cast<double>(backlog));
    std::lock_guard lk(status_mu_);
    backlog_ = backlog;
    rejected_rows_ = to_number<int64_t>(r.value(0, 1));
}

} // namespace fraiseql_observer::pg_listen
