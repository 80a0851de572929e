// bench_pg: pg_listen throughput on a real PostgreSQL 15 (fsync on), fixed work per mode.
//
//   raw     INSERT (trigger + pg_notify) -> a plain libpq LISTEN client counts notifications
//   notify  same inserts -> pg_listen notify mode -> host sink that confirms (OK) at once
//   outbox  same rows through fraiseql_observer.capture() -> pg_listen outbox mode -> OK at once
//
// Each figure is events / (time from the first INSERT to the last confirmation). The loader is
// the same in every mode: C connections, R rows per transaction, N rows in total.
//
//   bench_pg [--events N] [--connections C] [--rows-per-tx R] [--runs K]
#include "harness.hpp"
#include "pg_cluster.hpp"
#include "process.hpp"

#include <libpq-fe.h>
#include <nlohmann/json.hpp>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

using namespace std::chrono;
using nlohmann::json;
namespace host = fraiseql_observer::host;
namespace sdk = fraiseql_observer::sdk;

namespace {

struct Options {
    int events = 50000;
    int connections = 4;
    int rows_per_tx = 100;
    int runs = 1;
};


// C connections insert `events` rows into `table`, R rows per transaction.
void load(const fobs_test::PgCluster &pg, const Options &o, const std::string &table) {
    std::vector<std::thread> ts;
    for (int c = 0; c < o.connections; ++c) {
        ts.emplace_back([&, c] {
            fobs_test::PgSession s(pg.conninfo("bench"));
            int mine = o.events / o.connections + (c < o.events % o.connections ? 1 : 0);
            for (int done = 0; done < mine;) {
                int n = std::min(o.rows_per_tx, mine - done);
                s.exec("INSERT INTO " + table + " (customer, status, total, note) SELECT 'customer-' || g, "
                       "'pending', g * 1.5, 'benchmark row' FROM generate_series(1, " + std::to_string(n) + ") g");
                done += n;
            }
        });
    }
    for (auto &t : ts) t.join();
}

struct Counter {
    std::atomic<int> n{0};
    std::atomic<int64_t> last_ns{0};
    void hit() {
        n.fetch_add(1, std::memory_order_relaxed);
        last_ns.store(steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    }
};

double seconds_since(steady_clock::time_point start, const Counter &c) {
    return static_cast<double>(c.last_ns.load() - start.time_since_epoch().count()) / 1e9;
}

bool wait_count(const Counter &c, int n, seconds timeout) {
    return fobs_test::eventually([&] { return c.n.load() >= n; }, timeout);
}

double run_raw(const fobs_test::PgCluster &pg, const Options &o) {
    PGconn *conn = PQconnectdb(pg.conninfo("bench").c_str());
    PQclear(PQexec(conn, "LISTEN bench_events"));
    Counter c;
    std::atomic<bool> stop{false};
    std::thread listener([&] {
        while (!stop && c.n.load() < o.events) {
            pollfd p{PQsocket(conn), POLLIN, 0};
            if (::poll(&p, 1, 100) > 0) PQconsumeInput(conn);
            while (PGnotify *n = PQnotifies(conn)) {
                c.hit();
                PQfreemem(n);
            }
        }
    });
    auto start = steady_clock::now();
    load(pg, o, "bench_notify");
    bool ok = wait_count(c, o.events, seconds(300));
    stop = true;
    listener.join();
    PQfinish(conn);
    if (!ok) throw std::runtime_error("raw: only " + std::to_string(c.n.load()) + " notifications");
    return seconds_since(start, c);
}

host::EmitFn confirm_at_once(Counter &c) {
    return [&c](const fobs_source_record &, sdk::Completion done) {
        done.ok();
        c.hit();
    };
}

double run_notify(fobs_test::Harness &h, const fobs_test::PgCluster &pg, const Options &o) {
    Counter c;
    auto src = h.source("pg_listen", json{{"conninfo", pg.conninfo("bench")}, {"channels", {"bench_events"}}}.dump(), "bench_notify");
    src->start(confirm_at_once(c));
    if (!fobs_test::eventually([&] { std::string w; return src->ready(w); }, seconds(10)))
        throw std::runtime_error("notify source not ready");
    auto start = steady_clock::now();
    load(pg, o, "bench_notify");
    bool ok = wait_count(c, o.events, seconds(300));
    src->stop();
    if (!ok) throw std::runtime_error("notify: only " + std::to_string(c.n.load()) + " confirmations");
    return seconds_since(start, c);
}

double run_outbox(fobs_test::Harness &h, const fobs_test::PgCluster &pg, const Options &o, double &drained_s) {
    Counter c;
    auto src = h.source("pg_listen", json{{"conninfo", pg.conninfo("bench")}, {"mode", "outbox"}}.dump(), "bench_outbox");
    src->start(confirm_at_once(c));
    if (!fobs_test::eventually([&] { std::string w; return src->ready(w); }, seconds(10)))
        throw std::runtime_error("outbox source not ready");
    auto start = steady_clock::now();
    load(pg, o, "bench_outbox");
    bool ok = wait_count(c, o.events, seconds(300));
    double s = seconds_since(start, c);
    // Confirmed rows are deleted in batches right after; report when the table is empty too.
    fobs_test::eventually([&] { return pg.scalar("SELECT count(*) FROM fraiseql_observer.outbox", "bench") == "0"; },
                          seconds(60));
    drained_s = duration<double>(steady_clock::now() - start).count();
    src->stop();
    if (!ok) throw std::runtime_error("outbox: only " + std::to_string(c.n.load()) + " confirmations");
    return s;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

} // namespace

int main(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
        if (a == "--events") o.events = next();
        else if (a == "--connections") o.connections = next();
        else if (a == "--rows-per-tx") o.rows_per_tx = next();
        else if (a == "--runs") o.runs = next();
        else {
            std::cerr << "usage: bench_pg [--events N] [--connections C] [--rows-per-tx R] [--runs K]\n";
            return 2;
        }
    }
    if (o.events <= 0 || o.connections <= 0 || o.rows_per_tx <= 0 || o.runs <= 0) return 2;
    try {
        fobs_test::PgCluster::Options po;
        po.fsync = true; // benchmarks keep PostgreSQL durable
        po.settings = {"max_connections=50"};
        fobs_test::PgCluster pg(po);
        pg.exec("CREATE DATABASE bench");
        fobs_test::Harness h({}, "warn");
        {
            auto installer = h.source("pg_listen", json{{"conninfo", pg.conninfo("bench")}, {"mode", "outbox"}}.dump(), "sql");
            pg.exec(json::parse(*installer->admin(R"({"op":"sql"})"))["sql"].get<std::string>(), "bench");
        }
        // The same tables and triggers as the end-to-end benchmark.
        pg.exec(fobs_test::read_file(std::string(FOBS_TEST_SOURCE_DIR) + "/bench/schema.sql"), "bench");

        std::map<std::string, std::vector<double>> secs;
        std::vector<double> drained;
        for (int r = 0; r < o.runs; ++r) {
            secs["raw"].push_back(run_raw(pg, o));
            secs["notify"].push_back(run_notify(h, pg, o));
            double d = 0;
            secs["outbox"].push_back(run_outbox(h, pg, o, d));
            drained.push_back(d);
            pg.exec("TRUNCATE bench_notify, bench_outbox", "bench");
            pg.exec("VACUUM ANALYZE fraiseql_observer.outbox", "bench");
        }
        double raw = o.events / median(secs["raw"]);
        std::printf("pg_listen benchmark: %d events, %d connections, %d rows/transaction, fsync on, median of %d run(s)\n",
                    o.events, o.connections, o.rows_per_tx, o.runs);
        std::printf("%-58s %10s %10s %8s\n", "path", "seconds", "events/s", "vs raw");
        auto line = [&](const char *label, double s) {
            double rate = o.events / s;
            std::printf("%-58s %10.3f %10.0f %7.0f%%\n", label, s, rate, 100.0 * rate / raw);
        };
        line("raw: INSERT + pg_notify trigger -> libpq LISTEN", median(secs["raw"]));
        line("notify: INSERT + pg_notify -> pg_listen -> confirmed", median(secs["notify"]));
        line("outbox: INSERT + capture() -> pg_listen outbox -> confirmed", median(secs["outbox"]));
        line("outbox: ... and every confirmed row deleted", median(drained));
        return 0;
    } catch (const std::exception &e) {
        std::cerr << "bench_pg: " << e.what() << "\n";
        return 1;
    }
}
