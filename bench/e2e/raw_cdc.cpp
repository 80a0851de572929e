// `e2e_bench raw-cdc`: the limit of logical replication alone. The same INSERT load as the
// other stages, read by a bare libpq replication client (replication=database, a temporary
// pgoutput slot, protocol v1) that only counts the Insert messages, takes each row's
// created_at (clock_timestamp() at insert, the start of every latency figure) and answers the
// walsender's keepalives. It does no JSON, no publish and no delivery: what the observer's cdc
// mode could reach with a reader that cost nothing.
#include "common.hpp"
#include "load.hpp"
#include "subcommands.hpp"

#include <postgresql/libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <poll.h>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

namespace fobs_bench {
namespace {

// Big-endian reads over one CopyData frame; a short frame makes ok() false instead of reading
// past its end.
class Frame {
  public:
    Frame(const char *data, size_t size) : p_(data), end_(data + size) {}
    bool ok() const { return ok_; }
    uint64_t u(size_t bytes) {
        if (static_cast<size_t>(end_ - p_) < bytes) return fail();
        uint64_t v = 0;
        for (size_t i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(*p_++);
        return v;
    }
    std::string_view bytes(size_t n) {
        if (static_cast<size_t>(end_ - p_) < n) return fail(), std::string_view{};
        std::string_view v(p_, n);
        p_ += n;
        return v;
    }
    std::string_view cstring() {
        const char *z = static_cast<const char *>(std::memchr(p_, '\0', static_cast<size_t>(end_ - p_)));
        if (!z) return fail(), std::string_view{};
        std::string_view v(p_, static_cast<size_t>(z - p_));
        p_ = z + 1;
        return v;
    }

  private:
    uint64_t fail() {
        ok_ = false;
        p_ = end_;
        return 0;
    }
    const char *p_;
    const char *end_;
    bool ok_ = true;
};

constexpr int64_t k_pg_epoch_unix_us = 946684800LL * 1000000; // 2000-01-01 in Unix µs

void put_u64(std::string &out, uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

// Standby status update: write = flush = apply = lsn (every change read is "done" for a client
// that only counts), so the temporary slot never pins WAL during the run.
bool send_status(PGconn *conn, uint64_t lsn, bool reply) {
    std::string msg = "r";
    put_u64(msg, lsn);
    put_u64(msg, lsn);
    put_u64(msg, lsn);
    put_u64(msg, static_cast<uint64_t>(wall_us() - k_pg_epoch_unix_us));
    msg += static_cast<char>(reply ? 1 : 0);
    return PQputCopyData(conn, msg.data(), static_cast<int>(msg.size())) == 1 && PQflush(conn) >= 0;
}

PGresult *exec_ok(PGconn *conn, const std::string &sql) {
    PGresult *res = PQexec(conn, sql.c_str());
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_BOTH) {
        std::string msg = PQresultErrorMessage(res);
        PQclear(res);
        throw std::runtime_error(sql.substr(0, 60) + ": " + msg);
    }
    return res;
}

} // namespace

int run_raw_cdc(const Args &args) {
    LoadSpec spec = load_spec(args);
    const std::string publication = args.str("publication", "bench_raw_cdc");
    const std::string slot = args.str("slot", "bench_raw_cdc");
    const std::string column = args.str("latency-column", "created_at");

    // The publication (a normal connection); kept for the next run, re-created if missing.
    {
        PGconn *c = PQconnectdb(spec.conninfo.c_str());
        if (PQstatus(c) != CONNECTION_OK) throw std::runtime_error(std::string("connect: ") + PQerrorMessage(c));
        PGresult *r = PQexec(c, ("SELECT 1 FROM pg_publication WHERE pubname = '" + publication + "'").c_str());
        bool exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        PQclear(r);
        if (!exists) PQclear(exec_ok(c, "CREATE PUBLICATION " + publication + " FOR TABLE " + spec.table));
        PQfinish(c);
    }
    // TimeZone UTC: created_at arrives as pgoutput's text form, "2026-12-03 05:58:38.123456+00".
    PGconn *conn = PQconnectdb((spec.conninfo + " replication=database options='-c TimeZone=UTC'").c_str());
    if (PQstatus(conn) != CONNECTION_OK) throw std::runtime_error(std::string("replication connect: ") + PQerrorMessage(conn));
    // A temporary slot: dropped by PostgreSQL when this connection ends, whatever happens.
    PQclear(exec_ok(conn, "CREATE_REPLICATION_SLOT " + slot + " TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT"));
    PQclear(exec_ok(conn, "START_REPLICATION SLOT " + slot + " LOGICAL 0/0 (proto_version '1', publication_names '" +
                              publication + "')"));
    PQsetnonblocking(conn, 1);

    std::atomic<int64_t> received{0};
    int64_t last_us = 0;
    std::vector<int64_t> latency_us, commit_latency_us; // from the row's insert / its commit
    latency_us.reserve(static_cast<size_t>(spec.events));
    commit_latency_us.reserve(static_cast<size_t>(spec.events));
    std::atomic<bool> load_done{false};
    std::string error;
    const int64_t deadline = mono_us() + args.num("timeout-secs", 60) * 1000000;
    std::thread reader([&] {
        std::map<uint32_t, int> latency_col; // relation OID -> index of the latency column (-1: none)
        uint64_t last_lsn = 0;
        int64_t commit_us = 0; // the current transaction's commit time (wall-clock µs)
        int64_t last_status = mono_us();
        int64_t idle_since = mono_us();
        pollfd pfd{PQsocket(conn), POLLIN, 0};
        while (received < spec.events && mono_us() < deadline) {
            if (::poll(&pfd, 1, 100) < 0 || !PQconsumeInput(conn)) {
                error = PQerrorMessage(conn);
                break;
            }
            bool any = false;
            for (;;) {
                char *buf = nullptr;
                int n = PQgetCopyData(conn, &buf, 1);
                if (n == 0) break;
                if (n < 0) {
                    error = n == -1 ? "the server ended the replication stream" : PQerrorMessage(conn);
                    return;
                }
                Frame f(buf, static_cast<size_t>(n));
                char kind = static_cast<char>(f.u(1));
                if (kind == 'k') { // keepalive: walEnd, sendTime, replyRequested
                    uint64_t wal_end = f.u(8);
                    f.u(8);
                    bool reply = f.u(1) == 1;
                    last_lsn = std::max(last_lsn, wal_end);
                    if (reply) {
                        send_status(conn, last_lsn, false);
                        last_status = mono_us();
                    }
                } else if (kind == 'w') { // XLogData: dataStart, walEnd, sendTime, pgoutput message
                    f.u(8);
                    uint64_t wal_end = f.u(8);
                    f.u(8);
                    last_lsn = std::max(last_lsn, wal_end);
                    char msg = static_cast<char>(f.u(1));
                    if (msg == 'B') { // Begin: final LSN, commit timestamp (µs since 2000), xid
                        f.u(8);
                        commit_us = static_cast<int64_t>(f.u(8)) + k_pg_epoch_unix_us;
                    } else if (msg == 'R') { // Relation: oid, namespace, name, replident, columns
                        uint32_t oid = static_cast<uint32_t>(f.u(4));
                        f.cstring();
                        f.cstring();
                        f.u(1);
                        int ncols = static_cast<int>(f.u(2));
                        int found = -1;
                        for (int i = 0; i < ncols && f.ok(); ++i) {
                            f.u(1);
                            if (f.cstring() == column) found = i;
                            f.u(8); // type OID, type modifier
                        }
                        latency_col[oid] = found;
                    } else if (msg == 'I') { // Insert: oid, 'N', TupleData
                        int64_t now = wall_us();
                        uint32_t oid = static_cast<uint32_t>(f.u(4));
                        f.u(1);
                        int ncols = static_cast<int>(f.u(2));
                        auto col = latency_col.find(oid);
                        int want = col == latency_col.end() ? -1 : col->second;
                        for (int i = 0; i < ncols && i <= want && f.ok(); ++i) {
                            char k = static_cast<char>(f.u(1));
                            if (k != 't') continue; // 'n' null, 'u' unchanged TOAST: no bytes
                            std::string_view v = f.bytes(static_cast<size_t>(f.u(4)));
                            if (i == want) {
                                int64_t ts = parse_iso8601_us(v);
                                if (ts > 0) latency_us.push_back(now - ts);
                            }
                        }
                        if (commit_us > 0) commit_latency_us.push_back(now - commit_us);
                        last_us = now;
                        ++received;
                        any = true;
                    }
                }
                PQfreemem(buf);
            }
            if (mono_us() - last_status > 1000000) {
                send_status(conn, last_lsn, false);
                last_status = mono_us();
            }
            if (any) idle_since = mono_us();
            else if (load_done && mono_us() - idle_since > 5000000) break;
        }
    });
    LoadResult load;
    try {
        load = run_load(spec);
    } catch (...) {
        load_done = true;
        reader.join();
        PQfinish(conn);
        throw;
    }
    load_done = true;
    reader.join();
    PQfinish(conn);
    if (!error.empty() && received < spec.events) throw std::runtime_error("replication stream: " + error);

    Result r;
    r.label = args.str("label", "raw: INSERT -> logical replication (pgoutput)");
    r.kind = args.str("kind", "raw:cdc");
    r.events = spec.events;
    if (received > 0) r.rate = received / ((last_us - load.start_us) / 1e6);
    if (!latency_us.empty()) {
        std::sort(latency_us.begin(), latency_us.end());
        r.p50_ms = latency_us[(latency_us.size() - 1) / 2] / 1000.0;
        r.p99_ms = latency_us[(latency_us.size() - 1) * 99 / 100] / 1000.0;
        r.max_ms = latency_us.back() / 1000.0;
    }
    r.lost = spec.events - received;
    r.note = args.str("note", "");
    if (!commit_latency_us.empty()) {
        // The observer's cdc events carry the commit time as "timestamp" (what the receiver
        // measures from): the same figures from the commit show how much of the latency above
        // is the inserting transaction itself.
        std::sort(commit_latency_us.begin(), commit_latency_us.end());
        char buf[96];
        std::snprintf(buf, sizeof buf, "from the commit time: p50 %.1f ms, p99 %.1f ms",
                      commit_latency_us[(commit_latency_us.size() - 1) / 2] / 1000.0,
                      commit_latency_us[(commit_latency_us.size() - 1) * 99 / 100] / 1000.0);
        r.note += (r.note.empty() ? "" : "; ") + std::string(buf);
    }
    if (spec.rate > 0)
        r.note += (r.note.empty() ? "" : "; ") + std::string("paced ") + std::to_string(static_cast<int>(spec.rate)) +
                  "/s, insert lag max " + std::to_string(static_cast<int>(load.max_lag_ms)) + " ms";
    emit_result(r, args.str("results", ""));
    return 0;
}

} // namespace fobs_bench
