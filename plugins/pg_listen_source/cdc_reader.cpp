#include "cdc_reader.hpp"

#include "cdc_event.hpp"
#include "emit_token.hpp"

#include <pthread.h>
#include <poll.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace fraiseql_observer::pg_listen {

using namespace std::chrono;
using nlohmann::json;

namespace {

constexpr milliseconds kDefaultRetryDelay{1000};
constexpr milliseconds kStandbyRetry{1000};   // how often a standby tries the slot again
constexpr milliseconds kPromptStatus{100};     // a moved flush position is reported this soon
constexpr size_t kEmitBatch = 256;
const char *const kHeartbeatPrefix = "fraiseql_observer_heartbeat";
const char *const kWalStates[4] = {"reserved", "extended", "unreserved", "lost"};

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }

template <class T> T to_number(std::string_view s) {
    T v{};
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

std::string qualified(std::string_view schema, std::string_view table) {
    return std::string(schema.empty() ? "pg_catalog" : schema) + "." + std::string(table);
}

} // namespace

// Records handed to the host and the transactions they belong to, in commit order. Only the
// stream thread adds records and transactions and pops settled transactions; the emit thread
// takes queued keys; completions (any thread) settle records. A reconnect detaches the window:
// its late outcomes are ignored and the new session re-reads from the slot's confirmed position.
struct CdcReader::Window final : OutcomeReceiver {
    struct Record {
        uint64_t tx = 0;
        std::shared_ptr<const std::string> payload;
        int64_t txid = -1;
        bool retry_wait = false;
        steady_clock::time_point due{};
    };
    struct Tx {
        uint64_t seq = 0;
        uint64_t end_lsn = 0;
        size_t pending = 0;
        bool committed = false;
    };

    Window(sdk::Host h, std::shared_ptr<Waker> w, size_t lim) : host(h), waker(std::move(w)), limit(lim) {}

    void on_outcome(uint64_t key, EmitOutcome o) noexcept override {
        std::string rejected_reason;
        bool wake = false;
        {
            std::lock_guard lk(mu);
            if (detached) return;
            auto it = records.find(key);
            if (it == records.end()) return;
            --in_flight;
            if (o.kind == FOBS_OUTCOME_RETRY) {
                it->second.retry_wait = true;
                it->second.due = steady_clock::now() +
                                 (o.retry_after_ms >= 0 ? milliseconds(o.retry_after_ms) : kDefaultRetryDelay);
                ++retry_waiting;
            } else {
                if (o.kind == FOBS_OUTCOME_FAILED) {
                    ++rejected;
                    rejected_reason = o.reason.empty() ? "(no reason given)" : std::move(o.reason);
                }
                if (!txs.empty() && it->second.tx >= txs.front().seq) {
                    Tx &t = txs[it->second.tx - txs.front().seq];
                    --t.pending;
                    wake = t.pending == 0 && t.committed && t.seq == txs.front().seq;
                }
                records.erase(it);
                wake = wake || (reader_waiting && records.size() < limit);
            }
        }
        cv.notify_all();
        if (wake) waker->wake();
        if (!rejected_reason.empty())
            host.warn("a change was rejected and will not be delivered: " + rejected_reason);
    }

    sdk::Host host;
    std::shared_ptr<Waker> waker;
    const size_t limit;
    std::mutex mu;
    std::condition_variable cv;
    std::unordered_map<uint64_t, Record> records; // unsettled
    std::deque<uint64_t> queue;                   // keys to hand to the host, in order
    std::deque<Tx> txs;
    uint64_t next_key = 1;
    uint64_t next_tx = 1;
    size_t in_flight = 0;     // handed to the host, no outcome yet
    size_t retry_waiting = 0;
    uint64_t rejected = 0;
    bool reader_waiting = false;
    bool detached = false;
};

struct CdcReader::Session {
    struct RelInfo {
        std::string entity;
        bool included = true;
    };
    std::unique_ptr<Connection> repl, sql;
    std::shared_ptr<Window> window;
    pgoutput::RelationCache relations;
    std::unordered_map<uint32_t, RelInfo> rel_info;
    std::unordered_map<uint32_t, uint32_t> base_types; // Y messages: domain OID -> built-in type OID
    std::string system_id;
    bool in_tx = false;
    pgoutput::Begin begin;
    uint64_t tx_seq = 0;
    uint32_t index = 0;
    uint64_t idle_position = 0; // keepalive / heartbeat position, usable when nothing is in flight
    uint64_t flushed = 0;       // the flush position last sent
    steady_clock::time_point last_status{}, next_heartbeat{}, next_slot_check{};
    std::string frame, payload, error;
};

void CdcReader::add_record(Window &w, uint64_t tx_seq, std::string payload, int64_t txid) {
    {
        std::lock_guard lk(w.mu);
        uint64_t key = w.next_key++;
        w.records.emplace(key, Window::Record{tx_seq, std::make_shared<const std::string>(std::move(payload)), txid});
        ++w.txs.back().pending;
        w.queue.push_back(key);
    }
    w.cv.notify_one();
}

CdcReader::CdcReader(Config config, sdk::Host host, std::string source_name)
    : config_(std::move(config)), host_(host), source_name_(std::move(source_name)) {}

CdcReader::~CdcReader() { stop(); }

std::string CdcReader::slot_name() const {
    return config_.slot.empty() ? default_slot_name(source_name_) : config_.slot;
}

void CdcReader::start(sdk::SourceSink sink) {
    sink_ = sink;
    sdk::Labels labels{{"source", source_name_}, {"slot", slot_name()}};
    lag_gauge_ = host_.gauge("cdc_slot_lag_bytes",
                             "WAL bytes the replication slot holds back (current WAL position - confirmed_flush_lsn)", labels);
    confirmed_gauge_ = host_.gauge("cdc_confirmed_lsn", "The slot's confirmed_flush_lsn, as a number", labels);
    transactions_counter_ = host_.counter("cdc_transactions_total", "Committed transactions read from the slot", labels);
    for (int i = 0; i < 4; ++i) {
        auto l = labels;
        l.emplace_back("state", kWalStates[i]);
        wal_status_gauges_[i] = host_.gauge("cdc_slot_wal_status", "1 for the slot's current wal_status", l);
    }
    snapshot_rows_gauge_ = host_.gauge("cdc_snapshot_rows", "Rows the initial snapshot has emitted so far", labels);
    snapshot_estimate_gauge_ =
        host_.gauge("cdc_snapshot_rows_estimated", "Rows the initial snapshot expects to emit (from pg_class.reltuples)", labels);
    waker_ = std::make_shared<Waker>();
    {
        std::lock_guard lk(window_mu_);
        window_ = std::make_shared<Window>(host_, waker_, config_.max_in_flight);
    }
    stopping_ = false;
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "pg-cdc");
        run();
    });
    emit_thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "pg-cdc-emit");
        emit_loop();
    });
}

void CdcReader::stop() noexcept {
    if (!thread_.joinable()) return;
    stopping_ = true;
    waker_->wake();
    {
        std::lock_guard lk(window_mu_);
        if (window_) window_->cv.notify_all();
    }
    thread_.join();
    emit_thread_.join();
    set_reason("stopped");
}

bool CdcReader::ready(std::string &why) {
    if (streaming_) return true;
    std::lock_guard lk(status_mu_);
    why = not_ready_reason_;
    return false;
}

void CdcReader::set_reason(std::string why) {
    std::lock_guard lk(status_mu_);
    not_ready_reason_ = std::move(why);
}

void CdcReader::sleep_interruptibly(milliseconds d) { waker_->sleep_for(d, stopping_); }

json CdcReader::status() {
    json out{{"mode", "cdc"}, {"publication", config_.publication}, {"slot", slot_name()},
             {"outbox_backlog", nullptr}, {"checkpoint", nullptr}};
    auto slot_json = [](const SlotInfo &s) {
        return json{{"exists", s.exists},
                    {"active", s.active},
                    {"wal_status", s.wal_status.empty() ? json(nullptr) : json(s.wal_status)},
                    {"confirmed_flush_lsn", s.exists ? json(pgoutput::lsn_text(s.confirmed_flush)) : json(nullptr)},
                    {"lag_bytes", s.lag_bytes >= 0 ? json(s.lag_bytes) : json(nullptr)}};
    };
    if (thread_.joinable()) {
        size_t in_flight = 0;
        uint64_t rejected = 0;
        {
            std::lock_guard lk(window_mu_);
            std::lock_guard wl(window_->mu);
            in_flight = window_->records.size();
        }
        std::lock_guard lk(status_mu_);
        rejected = rejected_;
        out["connected"] = streaming_.load();
        out["in_flight"] = in_flight;
        out["rejected"] = rejected;
        out["transactions"] = transactions_;
        out["confirmed_lsn"] = confirmed_ ? json(pgoutput::lsn_text(confirmed_)) : json(nullptr);
        if (!system_id_.empty()) out["system_id"] = system_id_;
        out["slot_state"] = slot_known_ ? slot_json(slot_) : json(nullptr);
        out["lag_bytes"] = slot_known_ && slot_.lag_bytes >= 0 ? json(slot_.lag_bytes) : json(nullptr);
        out["wal_status"] = slot_known_ && !slot_.wal_status.empty() ? json(slot_.wal_status) : json(nullptr);
        if (!snapshot_.state.empty()) {
            double secs = duration<double>(steady_clock::now() - snapshot_.started).count();
            double left = snapshot_.rate > 0 && snapshot_.rows_estimated > snapshot_.rows_done
                              ? static_cast<double>(snapshot_.rows_estimated - snapshot_.rows_done) / snapshot_.rate
                              : 0;
            out["snapshot"] = json{{"state", snapshot_.state},         {"table", snapshot_.table},
                                   {"rows_done", snapshot_.rows_done},   {"rows_estimated", snapshot_.rows_estimated},
                                   {"rows_per_sec", snapshot_.rate},     {"elapsed_secs", secs},
                                   {"eta_secs", snapshot_.state == "running" ? json(left) : json(nullptr)}};
        }
        if (!streaming_) out["error"] = not_ready_reason_;
        return out;
    }
    // Not running (e.g. `fraiseql-observer status`): read the slot directly.
    Connection::Options opts;
    opts.conninfo = config_.conninfo;
    opts.connect_timeout = config_.connect_timeout;
    opts.statement_timeout = config_.statement_timeout;
    Connection conn(opts, nullptr, nullptr);
    out["connected"] = false;
    out["rejected"] = nullptr;
    if (auto err = conn.connect(); !err.empty()) {
        out["error"] = "cannot connect to " + describe_conninfo(config_.conninfo) + ": " + err;
        return out;
    }
    SlotInfo info;
    std::string error;
    if (!read_slot(conn, info, error)) {
        out["error"] = error;
        return out;
    }
    out["slot_state"] = slot_json(info);
    out["lag_bytes"] = info.lag_bytes >= 0 ? json(info.lag_bytes) : json(nullptr);
    out["wal_status"] = info.wal_status.empty() ? json(nullptr) : json(info.wal_status);
    out["confirmed_lsn"] = info.exists ? json(pgoutput::lsn_text(info.confirmed_flush)) : json(nullptr);
    if (!info.exists) out["error"] = "replication slot \"" + slot_name() + "\" does not exist (yet)";
    return out;
}

bool CdcReader::read_slot(Connection &sql, SlotInfo &out, std::string &error) {
    auto r = sql.exec("SELECT active, coalesce(active_pid, 0), coalesce(wal_status, ''), "
                      "coalesce(confirmed_flush_lsn::text, ''), "
                      "CASE WHEN pg_is_in_recovery() OR confirmed_flush_lsn IS NULL THEN -1 "
                      "ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint END "
                      "FROM pg_replication_slots WHERE slot_name = $1",
                      {slot_name()});
    if (!r.ok()) {
        error = "cannot read pg_replication_slots: " + r.error();
        return false;
    }
    out = SlotInfo{};
    if (r.rows() == 0) return true;
    out.exists = true;
    out.active = r.value(0, 0) == "t";
    out.active_pid = to_number<int>(r.value(0, 1));
    out.wal_status = std::string(r.value(0, 2));
    pgoutput::parse_lsn(r.value(0, 3), out.confirmed_flush);
    out.lag_bytes = to_number<int64_t>(r.value(0, 4));
    return true;
}

void CdcReader::publish_slot(const SlotInfo &info) {
    {
        std::lock_guard lk(status_mu_);
        slot_ = info;
        slot_known_ = true;
    }
    if (info.lag_bytes >= 0) lag_gauge_.set(static_cast<double>(info.lag_bytes));
    if (info.exists) confirmed_gauge_.set(static_cast<double>(info.confirmed_flush));
    for (int i = 0; i < 4; ++i) wal_status_gauges_[i].set(info.wal_status == kWalStates[i] ? 1.0 : 0.0);
}

std::string CdcReader::ensure_publication(Connection &sql) {
    const std::string pub = quote_ident(config_.publication);
    auto r = sql.exec("SELECT puballtables FROM pg_publication WHERE pubname = $1", {config_.publication});
    if (!r.ok()) return "cannot read pg_publication: " + r.error();
    if (r.rows() == 0) {
        std::string ddl = "CREATE PUBLICATION " + pub;
        if (config_.tables.empty()) {
            ddl += " FOR ALL TABLES";
        } else {
            ddl += " FOR TABLE ";
            for (size_t i = 0; i < config_.tables.size(); ++i)
                ddl += (i ? ", " : "") + quote_qualified(config_.tables[i]);
        }
        if (!config_.create)
            return "publication \"" + config_.publication + "\" does not exist and create = false: run `" + ddl +
                   "` (or `fraiseql-observer sql --mode cdc`)";
        auto c = sql.exec(ddl);
        if (!c.ok() && c.sqlstate() != "42710") return "cannot create the publication (" + ddl + "): " + c.error();
        host_.info("created publication \"" + config_.publication + "\"" +
                   (config_.tables.empty() ? std::string(" for all tables") : " for " + std::to_string(config_.tables.size()) + " table(s)"));
        return "";
    }
    if (config_.tables.empty() || r.value(0, 0) == "t") return "";
    auto have = sql.exec("SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1",
                         {config_.publication});
    if (!have.ok()) return "cannot read pg_publication_tables: " + have.error();
    std::unordered_set<std::string> present;
    for (int i = 0; i < have.rows(); ++i) present.emplace(have.value(i, 0));
    for (const auto &t : config_.tables) {
        if (present.count(t)) continue;
        std::string ddl = "ALTER PUBLICATION " + pub + " ADD TABLE " + quote_qualified(t);
        if (!config_.create)
            return "table " + t + " is not in publication \"" + config_.publication + "\" and create = false: run `" + ddl + "`";
        auto c = sql.exec(ddl);
        if (!c.ok()) return "cannot add " + t + " to the publication (" + ddl + "): " + c.error();
        host_.info("added " + t + " to publication \"" + config_.publication + "\"");
    }
    return "";
}

void CdcReader::warn_about_tables(Connection &sql) {
    auto r = sql.exec("SELECT pt.schemaname || '.' || pt.tablename, c.relreplident, "
                      "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
                      "FROM pg_publication_tables pt "
                      "JOIN pg_namespace n ON n.nspname = pt.schemaname "
                      "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
                      "WHERE pt.pubname = $1 ORDER BY 1",
                      {config_.publication});
    if (!r.ok()) return;
    std::vector<std::string> no_changes;
    for (int i = 0; i < r.rows(); ++i) {
        std::string table(r.value(i, 0));
        if (!config_.tables.empty() && std::find(config_.tables.begin(), config_.tables.end(), table) == config_.tables.end())
            continue;
        char ident = r.value(i, 1).empty() ? 'd' : r.value(i, 1)[0];
        bool has_pk = r.value(i, 2) == "t";
        if (!has_pk && ident != 'f' && ident != 'i')
            host_.warn("table " + table + " has no primary key: its events have no entity_id and are rejected, and "
                       "PostgreSQL refuses its UPDATE/DELETE while it is published; add a primary key or "
                       "ALTER TABLE " + table + " REPLICA IDENTITY FULL");
        if (ident != 'f') no_changes.push_back(table);
    }
    if (!no_changes.empty()) {
        std::string list;
        for (const auto &t : no_changes) list += (list.empty() ? "" : ", ") + t;
        host_.info("UPDATE events carry no `changes` (old values) for tables without REPLICA IDENTITY FULL: " + list +
                   " (ALTER TABLE … REPLICA IDENTITY FULL to get them)");
    }
}

std::string CdcReader::prepare(Connection &sql, Session &) {
    auto wl = sql.exec("SHOW wal_level");
    if (!wl.ok()) return "cannot read wal_level: " + wl.error();
    if (wl.value(0, 0) != "logical")
        return "wal_level is \"" + std::string(wl.value(0, 0)) +
               "\"; mode = \"cdc\" needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)";
    if (!warned_unbounded_) {
        auto keep = sql.exec("SHOW max_slot_wal_keep_size");
        if (keep.ok() && keep.rows() == 1 && keep.value(0, 0) == "-1") {
            warned_unbounded_ = true;
            host_.warn("max_slot_wal_keep_size = -1: if this observer stops for long, its slot keeps WAL without "
                       "limit and can fill the disk; set a bound (e.g. ALTER SYSTEM SET max_slot_wal_keep_size = '10GB')");
        }
    }
    if (auto err = ensure_publication(sql); !err.empty()) return err;
    return "";
}

void CdcReader::run() {
    Backoff backoff(config_.reconnect_min, config_.reconnect_max);
    bool standby_logged = false;
    while (!stopping_) {
        bool was_streaming = false;
        std::string why = session(was_streaming);
        streaming_ = false;
        if (stopping_) break;
        if (was_streaming) backoff.reset();
        if (why.rfind("standby:", 0) == 0) {
            if (!standby_logged) host_.info(why);
            standby_logged = true;
            set_reason(why);
            sleep_interruptibly(kStandbyRetry);
            continue;
        }
        standby_logged = false;
        auto d = backoff.next();
        host_.warn(why + "; retrying in " + ms_text(d));
        set_reason(why);
        sleep_interruptibly(d);
    }
}

std::string CdcReader::session(bool &was_streaming) {
    Session s;
    {
        std::lock_guard lk(window_mu_);
        {
            std::lock_guard wl(window_->mu);
            window_->detached = true;
        }
        window_->cv.notify_all();
        window_ = std::make_shared<Window>(host_, waker_, config_.max_in_flight);
        s.window = window_;
    }
    Connection::Options opts;
    opts.conninfo = config_.conninfo;
    opts.connect_timeout = config_.connect_timeout;
    opts.statement_timeout = config_.statement_timeout;
    opts.application_name = "fraiseql-observer";
    opts.on_notice = [this](std::string_view m) { host_.debug("server notice: " + std::string(m)); };
    s.sql = std::make_unique<Connection>(opts, waker_.get(), &stopping_);
    if (auto err = s.sql->connect(); !err.empty())
        return "cannot connect to " + describe_conninfo(config_.conninfo) + ": " + err;
    if (auto err = prepare(*s.sql, s); !err.empty()) return err;

    auto repl_opts = opts;
    repl_opts.replication = true;
    repl_opts.statement_timeout = milliseconds(0);
    s.repl = std::make_unique<Connection>(repl_opts, waker_.get(), &stopping_);
    if (auto err = s.repl->connect(); !err.empty()) {
        if (err.find("replication") != std::string::npos || err.find("permission") != std::string::npos)
            err += " (the role needs the REPLICATION attribute: ALTER ROLE <name> REPLICATION, and pg_hba.conf must allow it)";
        return "cannot open a replication connection to " + describe_conninfo(config_.conninfo) + ": " + err;
    }
    auto ident = s.repl->exec("IDENTIFY_SYSTEM");
    if (!ident.ok() || ident.rows() != 1) return "IDENTIFY_SYSTEM failed: " + ident.error();
    s.system_id = std::string(ident.value(0, 0));
    {
        std::lock_guard lk(status_mu_);
        system_id_ = s.system_id;
    }

    SlotInfo info;
    std::string error;
    if (!read_slot(*s.sql, info, error)) return error;
    const std::string slot = slot_name();
    if (info.exists && info.wal_status == "lost") {
        publish_slot(info);
        return "replication slot \"" + slot + "\" is lost: PostgreSQL removed WAL it still needed "
               "(max_slot_wal_keep_size), so changes after " + pgoutput::lsn_text(info.confirmed_flush) +
               " can no longer be read and some events are missing. To recover: SELECT pg_drop_replication_slot('" +
               slot + "'); then restart the observer (snapshot = \"initial\" re-reads every row)";
    }
    if (info.exists && info.active)
        return "standby: replication slot \"" + slot + "\" is in use by another process (PostgreSQL pid " +
               std::to_string(info.active_pid) + "); this one takes over when it stops";
    // An initial snapshot in progress is marked by a replication origin named after the slot
    // (cluster-wide, durable, outside the application's schema): created before the slot,
    // dropped once every READ event was confirmed. A slot found with its marker belongs to a
    // snapshot that never finished, so it is dropped and the snapshot starts again.
    const std::string marker = "fraiseql_observer_snapshot_" + slot;
    const bool initial = config_.snapshot == Snapshot::initial;
    if (initial && info.exists) {
        auto m = s.sql->exec("SELECT 1 FROM pg_replication_origin WHERE roname = $1", {marker});
        if (!m.ok()) return "cannot read pg_replication_origin: " + m.error();
        if (m.rows() == 1) {
            host_.warn("the initial snapshot of slot \"" + slot + "\" did not finish (the process stopped during it): "
                       "dropping the slot and starting the snapshot again; rows already sent are sent again");
            auto d = s.sql->exec("SELECT pg_drop_replication_slot($1)", {slot});
            if (!d.ok()) return "cannot drop the unfinished snapshot's slot \"" + slot + "\": " + d.error();
            info = SlotInfo{};
        }
    }
    if (!info.exists) {
        if (!config_.create)
            return "replication slot \"" + slot + "\" does not exist and create = false: run SELECT "
                   "pg_create_logical_replication_slot('" + slot + "', 'pgoutput')";
        if (initial) {
            auto m = s.sql->exec("SELECT pg_replication_origin_create($1) WHERE NOT EXISTS "
                                 "(SELECT 1 FROM pg_replication_origin WHERE roname = $1)", {marker});
            if (!m.ok())
                return "cannot mark the initial snapshot (pg_replication_origin_create needs superuser or "
                       "GRANT EXECUTE ON FUNCTION pg_replication_origin_create(text), pg_replication_origin_drop(text)): " + m.error();
        }
        auto c = s.repl->exec("CREATE_REPLICATION_SLOT " + quote_ident(slot) + " LOGICAL pgoutput " +
                              (initial ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT"));
        if (!c.ok()) {
            if (c.sqlstate() == "42710")
                return "standby: replication slot \"" + slot + "\" was just created by another process";
            return "cannot create replication slot \"" + slot + "\": " + c.error();
        }
        host_.info("created replication slot \"" + slot + "\" at " + std::string(c.value(0, 1)));
        if (initial) {
            uint64_t consistent = 0;
            pgoutput::parse_lsn(c.value(0, 1), consistent);
            if (auto err = run_snapshot(s, std::string(c.value(0, 2)), consistent); !err.empty()) return err;
            auto d = s.sql->exec("SELECT pg_replication_origin_drop($1)", {marker});
            if (!d.ok()) return "cannot clear the snapshot marker: " + d.error();
        }
    }
    warn_about_tables(*s.sql);

    std::string start = "START_REPLICATION SLOT " + quote_ident(slot) +
                        " LOGICAL 0/0 (proto_version '1', publication_names " +
                        s.sql->escape_literal(quote_ident(config_.publication)) + ", messages 'true')";
    auto st = s.repl->start_copy_both(start);
    if (!st.ok()) {
        if (st.sqlstate() == "55006")
            return "standby: replication slot \"" + slot + "\" is in use by another process; this one takes over when it stops";
        return "START_REPLICATION failed: " + st.error();
    }
    if (!read_slot(*s.sql, info, error)) return error;
    publish_slot(info);
    s.flushed = info.confirmed_flush;
    s.idle_position = info.confirmed_flush;
    {
        std::lock_guard lk(status_mu_);
        confirmed_ = info.confirmed_flush;
    }
    host_.info("streaming changes of publication \"" + config_.publication + "\" from slot \"" + slot + "\" at " +
               pgoutput::lsn_text(info.confirmed_flush));
    streaming_ = true;
    was_streaming = true;
    set_reason("");

    auto now = steady_clock::now();
    s.last_status = now;
    s.next_heartbeat = now + config_.heartbeat;
    s.next_slot_check = now + config_.slot_check_interval;
    std::string why;
    while (why.empty() && !stopping_) {
        // Read what is there while the window has room.
        bool full = false;
        for (size_t n = 0; n < 4096 && why.empty(); ++n) {
            {
                std::lock_guard lk(s.window->mu);
                full = s.window->records.size() >= s.window->limit;
                s.window->reader_waiting = full;
            }
            if (full) break;
            int r = s.repl->read_copy(s.frame);
            if (r == 0) break;
            if (r < 0) {
                why = "replication stream ended: " + s.repl->last_error();
                break;
            }
            if (!handle_frame(s, s.frame, s.error)) why = s.error;
        }
        if (!why.empty()) break;
        now = steady_clock::now();
        uint64_t pos = settle_position(s);
        if ((pos > s.flushed && now - s.last_status >= kPromptStatus) || now - s.last_status >= config_.status_interval) {
            if (!send_status(s)) {
                why = "cannot send standby status: " + s.repl->last_error();
                break;
            }
        }
        if (config_.heartbeat.count() > 0 && now >= s.next_heartbeat) {
            s.next_heartbeat = now + config_.heartbeat;
            if (!s.sql->connected()) s.sql->connect();
            auto hb = s.sql->exec(std::string("SELECT pg_logical_emit_message(false, '") + kHeartbeatPrefix + "', '')");
            if (!hb.ok()) host_.debug("heartbeat failed: " + hb.error());
        }
        if (now >= s.next_slot_check) {
            s.next_slot_check = now + config_.slot_check_interval;
            if (!s.sql->connected()) s.sql->connect();
            SlotInfo si;
            std::string err;
            if (read_slot(*s.sql, si, err)) {
                publish_slot(si);
                if (si.wal_status == "lost") {
                    why = "replication slot \"" + slot + "\" was lost while streaming (WAL removed past max_slot_wal_keep_size)";
                    break;
                }
            }
        }
        // Wait for the server, a settled record or the next status.
        auto next_status = s.last_status + config_.status_interval;
        auto wait = std::clamp(duration_cast<milliseconds>(next_status - steady_clock::now()), milliseconds(1), milliseconds(100));
        if (full) {
            pollfd p{waker_->fd(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(std::min(wait, milliseconds(20)).count())) > 0) waker_->drain();
        } else if (!s.repl->wait(wait)) {
            why = "replication connection lost: " + s.repl->last_error();
        }
    }
    if (stopping_ && s.repl->connected()) {
        // Let what the host holds settle (bounded), report the final position, then leave.
        auto deadline = steady_clock::now() + config_.drain_timeout;
        for (;;) {
            settle_position(s);
            size_t in_flight;
            {
                std::lock_guard lk(s.window->mu);
                in_flight = s.window->in_flight;
            }
            if (in_flight == 0 || steady_clock::now() >= deadline) break;
            if (steady_clock::now() - s.last_status >= config_.status_interval) send_status(s);
            std::unique_lock lk(s.window->mu);
            s.window->cv.wait_for(lk, milliseconds(20));
        }
        send_status(s);
    }
    {
        std::lock_guard wl(s.window->mu);
        s.window->detached = true;
    }
    s.window->cv.notify_all();
    return why.empty() ? "stopped" : why;
}

bool CdcReader::send_status(Session &s) {
    uint64_t pos = settle_position(s);
    if (!s.repl->write_copy(pgoutput::standby_status(pos, pos, pos, pgoutput::pg_now_us(), false))) return false;
    s.last_status = steady_clock::now();
    if (pos != s.flushed) {
        s.flushed = pos;
        std::lock_guard lk(status_mu_);
        confirmed_ = pos;
    }
    return true;
}

uint64_t CdcReader::settle_position(Session &s) {
    std::lock_guard lk(s.window->mu);
    uint64_t pos = s.flushed;
    auto &txs = s.window->txs;
    while (!txs.empty() && txs.front().committed && txs.front().pending == 0) {
        pos = std::max(pos, txs.front().end_lsn);
        txs.pop_front();
    }
    if (txs.empty() && !s.in_tx && s.window->records.empty()) pos = std::max(pos, s.idle_position);
    return pos;
}

bool CdcReader::wait_for_room(Session &s) {
    for (;;) {
        {
            std::lock_guard lk(s.window->mu);
            s.window->reader_waiting = s.window->records.size() >= s.window->limit;
            if (!s.window->reader_waiting) return true;
        }
        if (stopping_) return false;
        pollfd p{waker_->fd(), POLLIN, 0};
        if (::poll(&p, 1, 20) > 0) waker_->drain();
    }
}

std::string CdcReader::run_snapshot(Session &s, const std::string &snapshot_name, uint64_t consistent_point) {
    Connection &sql = *s.sql;
    auto begin = sql.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!begin.ok()) return "snapshot: BEGIN failed: " + begin.error();
    auto imp = sql.exec("SET TRANSACTION SNAPSHOT " + sql.escape_literal(snapshot_name));
    if (!imp.ok()) return "snapshot: cannot import the slot's snapshot: " + imp.error();
    // reltuples is -1 for a table never vacuumed or analyzed: then its size over its row width guesses.
    auto tables = sql.exec("SELECT pt.schemaname || '.' || pt.tablename, CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint "
                           "ELSE (pg_relation_size(c.oid) / greatest(1, (SELECT sum(avg_width) + 28 FROM pg_stats s "
                           "WHERE s.schemaname = pt.schemaname AND s.tablename = pt.tablename), 64))::bigint END "
                           "FROM pg_publication_tables pt JOIN pg_namespace n ON n.nspname = pt.schemaname "
                           "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
                           "WHERE pt.pubname = $1 ORDER BY 1",
                           {config_.publication});
    if (!tables.ok()) return "snapshot: cannot list the published tables: " + tables.error();
    std::vector<std::string> todo;
    uint64_t estimate = 0;
    for (int i = 0; i < tables.rows(); ++i) {
        std::string t(tables.value(i, 0));
        if (!config_.tables.empty() && std::find(config_.tables.begin(), config_.tables.end(), t) == config_.tables.end())
            continue;
        todo.push_back(t);
        estimate += to_number<uint64_t>(tables.value(i, 1));
    }
    {
        std::lock_guard lk(status_mu_);
        snapshot_ = SnapshotProgress{"running", "", 0, estimate, 0, steady_clock::now()};
    }
    snapshot_estimate_gauge_.set(static_cast<double>(estimate));
    host_.info("initial snapshot: " + std::to_string(todo.size()) + " table(s), about " + std::to_string(estimate) +
               " rows, as of " + pgoutput::lsn_text(consistent_point));
    {
        std::lock_guard lk(s.window->mu);
        s.tx_seq = s.window->next_tx++;
        s.window->txs.push_back(Window::Tx{s.tx_seq, consistent_point, 0, false});
    }
    for (const auto &t : todo)
        if (auto err = snapshot_table(s, t, consistent_point); !err.empty()) return err;
    sql.exec("COMMIT");
    {
        std::lock_guard lk(s.window->mu);
        s.window->txs.back().committed = true;
    }
    // The marker goes only once every READ event was confirmed.
    for (;;) {
        {
            std::lock_guard lk(s.window->mu);
            if (s.window->records.empty()) break;
        }
        if (stopping_) return "stopped during the initial snapshot";
        sleep_interruptibly(milliseconds(20));
    }
    settle_position(s);
    uint64_t done;
    {
        std::lock_guard lk(status_mu_);
        snapshot_.state = "done";
        snapshot_.table.clear();
        done = snapshot_.rows_done;
    }
    host_.info("initial snapshot done: " + std::to_string(done) + " rows emitted as READ and confirmed");
    return "";
}

std::string CdcReader::snapshot_table(Session &s, const std::string &table, uint64_t consistent_point) {
    Connection &sql = *s.sql;
    auto dot = table.find('.');
    const std::string schema = table.substr(0, dot), name = table.substr(dot + 1);
    auto pk = sql.exec("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                       "AND a.attnum = ANY (i.indkey) WHERE i.indrelid = $1::regclass AND i.indisprimary",
                       {quote_qualified(table)});
    if (!pk.ok()) return "snapshot: cannot read the primary key of " + table + ": " + pk.error();
    std::unordered_set<std::string> keys;
    for (int i = 0; i < pk.rows(); ++i) keys.emplace(pk.value(i, 0));
    pgoutput::Relation rel;
    rel.schema = schema;
    rel.name = name;
    const std::string entity = entity_name(rel, config_.entity_names);
    {
        std::lock_guard lk(status_mu_);
        snapshot_.table = table;
    }
    auto declared = sql.exec("DECLARE fobs_snapshot NO SCROLL CURSOR FOR SELECT * FROM " + quote_qualified(table));
    if (!declared.ok()) return "snapshot: cannot read " + table + ": " + declared.error();
    auto last_log = steady_clock::now();
    std::vector<SnapshotColumn> row;
    std::string payload, error;
    for (;;) {
        if (stopping_) return "stopped during the initial snapshot";
        auto batch = sql.exec("FETCH FORWARD 1000 FROM fobs_snapshot");
        if (!batch.ok()) return "snapshot: reading " + table + " failed: " + batch.error();
        if (batch.rows() == 0) break;
        for (int r = 0; r < batch.rows(); ++r) {
            if (!wait_for_room(s)) return "stopped during the initial snapshot";
            row.clear();
            for (int c = 0; c < batch.columns(); ++c) {
                std::string_view col = batch.column_name(c);
                row.push_back(SnapshotColumn{col, batch.column_type(c), keys.count(std::string(col)) > 0,
                                            batch.is_null(r, c) ? nullptr : batch.raw_value(r, c),
                                            batch.value(r, c).size()});
            }
            if (!snapshot_payload(schema, name, row, s.system_id, consistent_point, entity, payload, error)) {
                host_.warn("snapshot: a row of " + table + " cannot become an event: " + error);
                std::lock_guard lk(status_mu_);
                ++rejected_;
                continue;
            }
            add_record(*s.window, s.tx_seq, std::move(payload), -1);
            payload.clear();
        }
        uint64_t done;
        {
            std::lock_guard lk(status_mu_);
            snapshot_.rows_done += static_cast<uint64_t>(batch.rows());
            double secs = duration<double>(steady_clock::now() - snapshot_.started).count();
            snapshot_.rate = secs > 0 ? static_cast<double>(snapshot_.rows_done) / secs : 0;
            done = snapshot_.rows_done;
        }
        snapshot_rows_gauge_.set(static_cast<double>(done));
        if (steady_clock::now() - last_log >= seconds(5)) {
            last_log = steady_clock::now();
            std::lock_guard lk(status_mu_);
            double left = snapshot_.rate > 0 && snapshot_.rows_estimated > done
                              ? static_cast<double>(snapshot_.rows_estimated - done) / snapshot_.rate : 0;
            host_.info("initial snapshot: " + table + ", " + std::to_string(done) + " of about " +
                       std::to_string(snapshot_.rows_estimated) + " rows, " + std::to_string(static_cast<int64_t>(snapshot_.rate)) +
                       " rows/s, about " + std::to_string(static_cast<int64_t>(left)) + " s left");
        }
    }
    sql.exec("CLOSE fobs_snapshot");
    return "";
}

bool CdcReader::handle_frame(Session &s, std::string_view frame, std::string &error) {
    pgoutput::CopyFrame f;
    if (!pgoutput::decode_copy_frame(frame, f, error)) {
        error = "bad replication frame: " + error;
        return false;
    }
    if (auto *k = std::get_if<pgoutput::Keepalive>(&f)) {
        s.idle_position = std::max(s.idle_position, k->wal_end);
        if (k->reply_requested && !send_status(s)) {
            error = "cannot answer a keepalive: " + s.repl->last_error();
            return false;
        }
        return true;
    }
    return handle_change(s, std::get<pgoutput::XLogData>(f).payload, error);
}

bool CdcReader::handle_change(Session &s, std::string_view msg, std::string &error) {
    pgoutput::Decoded d;
    if (!pgoutput::decode(msg, d, error)) {
        error = "cannot decode a pgoutput message: " + error;
        return false;
    }
    auto new_record = [&](std::string payload, int64_t txid) { add_record(*s.window, s.tx_seq, std::move(payload), txid); };
    TxContext tx{s.system_id, s.begin.final_lsn, s.begin.commit_time_us, s.begin.xid};
    auto relation = [&](uint32_t oid, const Session::RelInfo *&info) -> const pgoutput::Relation * {
        const pgoutput::Relation *rel = s.relations.find(oid);
        if (!rel) {
            error = "a change refers to relation " + std::to_string(oid) + ", which the stream never described";
            return nullptr;
        }
        info = &s.rel_info[oid];
        return rel;
    };

    return std::visit(
        [&](auto &m) -> bool {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, pgoutput::Begin>) {
                if (s.in_tx) {
                    error = "BEGIN inside a transaction";
                    return false;
                }
                s.in_tx = true;
                s.begin = m;
                s.index = 0;
                std::lock_guard lk(s.window->mu);
                s.tx_seq = s.window->next_tx++;
                s.window->txs.push_back(Window::Tx{s.tx_seq, 0, 0, false});
                return true;
            } else if constexpr (std::is_same_v<T, pgoutput::Commit>) {
                if (!s.in_tx) {
                    error = "COMMIT outside a transaction";
                    return false;
                }
                s.in_tx = false;
                {
                    std::lock_guard lk(s.window->mu);
                    Window::Tx &t = s.window->txs.back();
                    t.end_lsn = m.end_lsn;
                    t.committed = true;
                }
                transactions_counter_.add(1);
                std::lock_guard lk(status_mu_);
                ++transactions_;
                return true;
            } else if constexpr (std::is_same_v<T, pgoutput::Relation>) {
                Session::RelInfo info;
                std::string q = qualified(m.schema, m.name);
                info.included = config_.tables.empty() ||
                                std::find(config_.tables.begin(), config_.tables.end(), q) != config_.tables.end();
                pgoutput::Relation rel = m;
                // A domain column is announced by a Type message first; its values follow the
                // JSON rule of the built-in type underneath (a domain over int4 is a number).
                for (auto &c : rel.columns)
                    if (auto bt = s.base_types.find(c.type_oid); bt != s.base_types.end() && bt->second != 0)
                        c.type_oid = bt->second;
                // Under REPLICA IDENTITY FULL every column is flagged as key: the entity id must
                // still be the primary key, which only the catalog knows.
                if (rel.replica_identity == 'f' && s.sql && s.sql->connected()) {
                    auto pk = s.sql->exec("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                                          "AND a.attnum = ANY (i.indkey) WHERE i.indrelid = $1::oid AND i.indisprimary",
                                          {std::to_string(rel.oid)});
                    if (pk.ok() && pk.rows() > 0) {
                        std::unordered_set<std::string> keys;
                        for (int i = 0; i < pk.rows(); ++i) keys.emplace(pk.value(i, 0));
                        for (auto &c : rel.columns) c.key = keys.count(c.name) > 0;
                    }
                }
                info.entity = entity_name(rel, config_.entity_names);
                s.rel_info[rel.oid] = std::move(info);
                s.relations.put(std::move(rel));
                return true;
            } else if constexpr (std::is_same_v<T, pgoutput::Insert> || std::is_same_v<T, pgoutput::Update> ||
                                 std::is_same_v<T, pgoutput::Delete>) {
                if (!s.in_tx) {
                    error = "a change outside a transaction";
                    return false;
                }
                const Session::RelInfo *info = nullptr;
                const pgoutput::Relation *rel = relation(m.relation, info);
                if (!rel) return false;
                if (!info->included) return true;
                std::string why;
                uint32_t index = s.index++;
                if (!change_payload(*rel, d, tx, index, info->entity, s.payload, why)) {
                    // Counted and logged; the transaction still completes (SPEC §4: rejected, never silent).
                    host_.warn("a change of " + qualified(rel->schema, rel->name) + " at " + pgoutput::lsn_text(tx.commit_lsn) +
                               " cannot become an event: " + why);
                    std::lock_guard lk(status_mu_);
                    ++rejected_;
                    return true;
                }
                new_record(std::move(s.payload), static_cast<int64_t>(tx.xid));
                s.payload.clear();
                return true;
            } else if constexpr (std::is_same_v<T, pgoutput::Truncate>) {
                if (!s.in_tx) {
                    error = "TRUNCATE outside a transaction";
                    return false;
                }
                for (uint32_t oid : m.relations) {
                    const Session::RelInfo *info = nullptr;
                    const pgoutput::Relation *rel = relation(oid, info);
                    if (!rel) return false;
                    if (!info->included) continue;
                    truncate_payload(*rel, tx, s.index++, info->entity, s.payload);
                    new_record(std::move(s.payload), static_cast<int64_t>(tx.xid));
                    s.payload.clear();
                }
                return true;
            } else if constexpr (std::is_same_v<T, pgoutput::Message>) {
                if (!m.transactional) s.idle_position = std::max(s.idle_position, m.lsn);
                return true;
            } else if constexpr (std::is_same_v<T, pgoutput::Type>) {
                s.base_types[m.oid] = pgoutput::base_type_oid(m);
                return true;
            } else {
                return true; // Origin: nothing to do
            }
        },
        d);
}

void CdcReader::emit_loop() {
    std::vector<std::pair<uint64_t, Window::Record>> batch;
    while (!stopping_) {
        std::shared_ptr<Window> w;
        {
            std::lock_guard lk(window_mu_);
            w = window_;
        }
        batch.clear();
        {
            std::unique_lock lk(w->mu);
            w->cv.wait_for(lk, milliseconds(50), [&] { return stopping_ || w->detached || !w->queue.empty(); });
            if (stopping_) return;
            if (w->detached) {
                lk.unlock();
                std::this_thread::sleep_for(milliseconds(5));
                continue;
            }
            if (w->retry_waiting > 0) {
                auto now = steady_clock::now();
                std::vector<uint64_t> due;
                for (auto &[key, r] : w->records)
                    if (r.retry_wait && r.due <= now) due.push_back(key);
                std::sort(due.begin(), due.end());
                for (uint64_t key : due) {
                    w->records[key].retry_wait = false;
                    --w->retry_waiting;
                    w->queue.push_front(key);
                }
                std::sort(w->queue.begin(), w->queue.end());
            }
            while (!w->queue.empty() && batch.size() < kEmitBatch) {
                uint64_t key = w->queue.front();
                w->queue.pop_front();
                auto it = w->records.find(key);
                if (it == w->records.end()) continue;
                ++w->in_flight;
                batch.emplace_back(key, it->second);
            }
        }
        for (auto &[key, r] : batch) {
            if (stopping_) {
                // Not handed over: the slot never passes its transaction, so it is read again.
                std::lock_guard lk(w->mu);
                --w->in_flight;
                continue;
            }
            sink_.emit(*r.payload, r.txid, config_.publication, EmitToken::make(w, key));
        }
    }
}

} // namespace fraiseql_observer::pg_listen
