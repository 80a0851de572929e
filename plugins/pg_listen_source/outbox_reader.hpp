// outbox mode: reads committed outbox rows in a commit-safe, gap-free order, hands them to the
// host with a bounded number in flight, and deletes them / advances the durable checkpoint only
// once the host confirmed them (see docs/plugins/pg_listen.md, "Outbox design").
//
// Why it never skips a row: a row is read only when its transaction id is below the xmin of the
// reading statement's snapshot, i.e. when every transaction that could still insert a row sorting
// before it has finished. Rows are read in (txid, seq) order after an in-memory cursor, so a
// transaction that commits late is read when it commits, and never passed over.
#pragma once

#include "config.hpp"
#include "connection.hpp"
#include "reader.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

namespace fraiseql_observer::pg_listen {

class OutboxReader final : public Reader {
  public:
    /// `source_name` keys the checkpoint row (the component's config name).
    OutboxReader(Config config, sdk::Host host, std::string source_name);
    ~OutboxReader() override;
    void start(sdk::SourceSink sink) override;
    void stop() noexcept override;
    bool ready(std::string &why) override;
    /// When not started, opens a short-lived connection to read the counts.
    nlohmann::json status() override;

  private:
    struct Window; // rows handed to the host, in read order; shared with their tokens
    struct Position {
        uint64_t txid = 0;
        int64_t seq = 0;
        bool operator<(const Position &o) const { return txid < o.txid || (txid == o.txid && seq < o.seq); }
    };

    void run();
    std::string setup_session(Connection &conn);
    bool step(Connection &conn);
    bool flush(Connection &conn, bool force);
    bool read_batch(Connection &conn);
    void refresh_backlog(Connection &conn);
    void reemit_due();
    void sleep_interruptibly(std::chrono::milliseconds d);
    void set_reason(std::string why);
    void report_error(Connection &conn, const std::string &what, const std::string &error,
                      const std::string &sqlstate);

    Config config_;
    sdk::Host host_;
    std::string source_name_;
    std::string table_;      // "schema".outbox
    std::string checkpoint_table_;
    std::string channel_;    // schema.outbox, the record's channel
    sdk::SourceSink sink_;
    sdk::Metric backlog_gauge_;
    std::shared_ptr<Window> window_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> connected_{false};
    std::atomic<bool> installed_{false};
    std::thread thread_;

    // Reader-thread state.
    bool cursor_loaded_ = false;
    Position cursor_;               // last row read (handed over)
    bool need_read_ = true;         // a wake-up arrived or the last batch was full
    // After a reconnect the durable checkpoint may lie behind the cursor: the server may have
    // lost our last (asynchronously committed) deletes, so confirmed rows can be back. The
    // reader then lets the window drain, and reads again from the durable checkpoint.
    bool replaying_ = false;
    Position replay_from_;
    std::chrono::steady_clock::time_point next_poll_{};
    std::chrono::steady_clock::time_point next_backlog_{};
    std::chrono::steady_clock::time_point last_flush_{};

    // Shared with status() (guarded by status_mu_).
    std::mutex status_mu_;
    std::string not_ready_reason_ = "not started";
    bool have_checkpoint_ = false;
    Position checkpoint_;
    int64_t backlog_ = -1;
    int64_t rejected_rows_ = -1;
};

} // namespace fraiseql_observer::pg_listen
