// Raw PostgreSQL stages: `raw-listen` (the same trigger + pg_notify the notify-mode contenders
// use, drained by a bare non-blocking libpq LISTEN client) and `raw-insert` (the INSERT rate
// alone, e.g. through the outbox's capture() trigger).
#include "common.hpp"
#include "load.hpp"
#include "subcommands.hpp"

#include <postgresql/libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <poll.h>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

namespace fobs_bench {
namespace {

// The "timestamp" string of a notification payload (json_build_object's "key" : "value" form).
int64_t payload_timestamp_us(std::string_view payload) {
    size_t pos = payload.find("\"timestamp\"");
    if (pos == std::string_view::npos) return -1;
    pos = payload.find('"', payload.find(':', pos) + 1);
    if (pos == std::string_view::npos) return -1;
    return parse_iso8601_us(payload.substr(pos + 1, 32));
}

} // namespace

int run_raw_listen(const Args &args) {
    LoadSpec spec = load_spec(args);
    const std::string channel = args.required("channel");
    PGconn *conn = PQconnectdb(spec.conninfo.c_str());
    if (PQstatus(conn) != CONNECTION_OK) throw std::runtime_error(std::string("connect: ") + PQerrorMessage(conn));
    PGresult *res = PQexec(conn, ("LISTEN " + channel).c_str());
    PQclear(res);
    PQsetnonblocking(conn, 1);

    std::atomic<int64_t> received{0};
    int64_t last_us = 0;
    std::vector<int64_t> latency_us;
    latency_us.reserve(static_cast<size_t>(spec.events));
    std::atomic<bool> load_done{false};
    const int64_t deadline = mono_us() + args.num("timeout-secs", 60) * 1000000;
    std::thread listener([&] {
        pollfd pfd{PQsocket(conn), POLLIN, 0};
        int64_t idle_since = mono_us();
        while (received < spec.events && mono_us() < deadline) {
            if (::poll(&pfd, 1, 100) < 0) break;
            if (!PQconsumeInput(conn)) break;
            bool any = false;
            while (PGnotify *n = PQnotifies(conn)) {
                int64_t now = wall_us();
                last_us = now;
                int64_t ts = payload_timestamp_us(n->extra);
                if (ts > 0) latency_us.push_back(now - ts);
                ++received;
                any = true;
                PQfreemem(n);
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
        listener.join();
        PQfinish(conn);
        throw;
    }
    load_done = true;
    listener.join();
    PQfinish(conn);

    Result r;
    r.label = args.str("label", "raw NOTIFY->LISTEN");
    r.kind = args.str("kind", "raw:listen");
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
    if (spec.rate > 0)
        r.note += (r.note.empty() ? "" : "; ") + std::string("paced ") + std::to_string(static_cast<int>(spec.rate)) +
                  "/s, insert lag max " + std::to_string(static_cast<int>(load.max_lag_ms)) + " ms";
    emit_result(r, args.str("results", ""));
    return 0;
}

int run_raw_insert(const Args &args) {
    LoadSpec spec = load_spec(args);
    LoadResult load = run_load(spec);
    Result r;
    r.label = args.str("label", "raw INSERT " + spec.table);
    r.kind = args.str("kind", "raw:insert");
    r.events = spec.events;
    r.rate = load.inserted / ((load.end_us - load.start_us) / 1e6);
    r.note = args.str("note", "");
    emit_result(r, args.str("results", ""));
    return 0;
}

} // namespace fobs_bench
