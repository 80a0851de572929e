#include "load.hpp"

#include "common.hpp"

#include <postgresql/libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace fobs_bench {

std::string insert_sql(const std::string &table, int rows) {
    // ~210-byte events: a handful of columns like an order row.
    return "INSERT INTO " + table +
           " (customer, status, total, note) SELECT 'customer-' || g, 'pending', (g % 997) * 1.25,"
           " 'fraiseql-observer bench' FROM generate_series(1, " + std::to_string(rows) + ") AS g";
}

LoadSpec load_spec(const Args &args) {
    LoadSpec spec;
    spec.conninfo = args.required("conninfo");
    spec.table = args.required("table");
    spec.events = args.num("events", 50000);
    spec.connections = static_cast<int>(args.num("connections", 4));
    spec.rows_per_tx = static_cast<int>(args.num("rows-per-tx", 100));
    spec.rate = args.real("rate", 0);
    return spec;
}

LoadResult run_load(const LoadSpec &spec) {
    if (spec.events <= 0 || spec.connections <= 0 || spec.rows_per_tx <= 0)
        throw std::runtime_error("load: events, connections and rows-per-tx must be positive");
    std::vector<PGconn *> conns;
    for (int i = 0; i < spec.connections; ++i) {
        PGconn *c = PQconnectdb(spec.conninfo.c_str());
        if (PQstatus(c) != CONNECTION_OK) {
            std::string msg = PQerrorMessage(c);
            PQfinish(c);
            for (auto *o : conns) PQfinish(o);
            throw std::runtime_error("load: connect failed: " + msg);
        }
        conns.push_back(c);
    }
    const int64_t total_tx = (spec.events + spec.rows_per_tx - 1) / spec.rows_per_tx;
    // Transaction k belongs to connection k % C and is due at start + k / tx_rate.
    const double tx_interval_us = spec.rate > 0 ? 1e6 * spec.rows_per_tx / spec.rate : 0;
    std::atomic<int64_t> inserted{0};
    std::mutex error_mutex;
    std::string error;
    std::vector<double> lag_ms(conns.size(), 0);
    LoadResult result;
    result.start_us = wall_us();
    const int64_t start_mono = mono_us();
    std::vector<std::thread> threads;
    for (size_t ci = 0; ci < conns.size(); ++ci) {
        threads.emplace_back([&, ci] {
            for (int64_t k = static_cast<int64_t>(ci); k < total_tx; k += spec.connections) {
                int rows = static_cast<int>(std::min<int64_t>(spec.rows_per_tx, spec.events - k * spec.rows_per_tx));
                if (tx_interval_us > 0) {
                    int64_t due = start_mono + static_cast<int64_t>(k * tx_interval_us);
                    int64_t now = mono_us();
                    if (due > now) std::this_thread::sleep_for(std::chrono::microseconds(due - now));
                    else lag_ms[ci] = std::max(lag_ms[ci], (now - due) / 1000.0);
                }
                PGresult *res = PQexec(conns[ci], insert_sql(spec.table, rows).c_str());
                bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
                if (!ok) {
                    std::lock_guard lock(error_mutex);
                    if (error.empty()) error = PQresultErrorMessage(res);
                }
                PQclear(res);
                if (!ok) return;
                inserted += rows;
            }
        });
    }
    for (auto &t : threads) t.join();
    result.end_us = wall_us();
    for (auto *c : conns) PQfinish(c);
    if (!error.empty()) throw std::runtime_error("load: INSERT failed: " + error);
    result.inserted = inserted.load();
    result.max_lag_ms = *std::max_element(lag_ms.begin(), lag_ms.end());
    return result;
}

} // namespace fobs_bench
