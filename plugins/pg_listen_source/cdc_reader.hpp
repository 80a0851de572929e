// cdc mode: logical replication with the built-in pgoutput plugin (SPEC section 6). Every
// committed INSERT/UPDATE/DELETE/TRUNCATE of the published tables becomes an event; no trigger.
//
// Threads: "pg-cdc" owns both libpq connections (the replication stream and a plain SQL session
// for heartbeats and slot statistics), decodes, and acknowledges; "pg-cdc-emit" hands records to
// the host, whose emit() may block for back-pressure, so the stream thread never stops sending
// standby status (wal_sender_timeout would otherwise cut it).
//
// The acknowledgement rule (zero loss): the slot's flush position moves to the Commit end LSN of
// the newest transaction whose events, and every earlier transaction's, were all settled by the
// host (confirmed by the transport, or rejected with a reason); with nothing in flight it adopts
// the server's keepalive position, so an idle database never pins WAL. Re-read changes keep
// their ids (system id + commit LSN + index in the transaction), so JetStream absorbs them.
#pragma once

#include "config.hpp"
#include "connection.hpp"
#include "pgoutput.hpp"
#include "reader.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

namespace fraiseql_observer::pg_listen {

class CdcReader final : public Reader {
  public:
    CdcReader(Config config, sdk::Host host, std::string source_name);
    ~CdcReader() override;
    void start(sdk::SourceSink sink) override;
    void stop() noexcept override;
    bool ready(std::string &why) override;
    /// When not started, opens a short-lived connection to read the slot.
    nlohmann::json status() override;

  private:
    struct Window;  // records and transactions handed to the host; shared with their tokens
    struct Session; // one connected replication session (reader-thread state)
    struct SlotInfo {
        bool exists = false;
        bool active = false;
        int active_pid = 0;
        std::string wal_status;      // reserved | extended | unreserved | lost | ""
        uint64_t confirmed_flush = 0;
        int64_t lag_bytes = -1;      // pg_current_wal_lsn() - confirmed_flush_lsn
    };

    void run();
    void emit_loop();
    /// One session: connect, check, (create,) stream until lost or stopping. Returns why it ended.
    std::string session(bool &was_streaming);
    std::string prepare(Connection &sql, Session &s);
    std::string ensure_publication(Connection &sql);
    void warn_about_tables(Connection &sql);
    bool read_slot(Connection &sql, SlotInfo &out, std::string &error);
    void publish_slot(const SlotInfo &info);
    /// snapshot = "initial": emits every row of the published tables as READ from the snapshot
    /// exported by the slot's creation, and returns once all of them were settled.
    std::string run_snapshot(Session &s, const std::string &snapshot_name, uint64_t consistent_point);
    std::string snapshot_table(Session &s, const std::string &table, uint64_t consistent_point);
    bool wait_for_room(Session &s);
    /// Hands one payload to the emit thread as part of transaction `tx_seq` (the newest one).
    static void add_record(Window &w, uint64_t tx_seq, std::string payload, int64_t txid);
    bool handle_frame(Session &s, std::string_view frame, std::string &error);
    bool handle_change(Session &s, std::string_view msg, std::string &error);
    bool send_status(Session &s);
    uint64_t settle_position(Session &s);
    void sleep_interruptibly(std::chrono::milliseconds d);
    void set_reason(std::string why);
    std::string slot_name() const;

    Config config_;
    sdk::Host host_;
    std::string source_name_;
    sdk::SourceSink sink_;
    std::shared_ptr<Waker> waker_;   // wakes the stream thread (settled records, stop)
    std::mutex window_mu_;           // guards window_ (replaced by every new session)
    std::shared_ptr<Window> window_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> streaming_{false};
    std::thread thread_;
    std::thread emit_thread_;

    sdk::Metric lag_gauge_, confirmed_gauge_, transactions_counter_;
    sdk::Metric wal_status_gauges_[4];
    sdk::Metric snapshot_rows_gauge_, snapshot_estimate_gauge_; // reserved, extended, unreserved, lost

    // Shared with status() (guarded by status_mu_).
    std::mutex status_mu_;
    std::string not_ready_reason_ = "not started";
    SlotInfo slot_;
    bool slot_known_ = false;
    std::string system_id_;
    uint64_t confirmed_ = 0;  // what this process last acknowledged
    uint64_t transactions_ = 0;
    uint64_t rejected_ = 0;
    bool warned_unbounded_ = false;
    struct SnapshotProgress {
        std::string state;   // "" (none), "running", "done"
        std::string table;
        uint64_t rows_done = 0, rows_estimated = 0;
        double rate = 0;     // rows/s
        std::chrono::steady_clock::time_point started{};
    } snapshot_;
};

} // namespace fraiseql_observer::pg_listen
