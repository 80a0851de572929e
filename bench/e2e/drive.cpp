// `e2e_bench drive`: one end-to-end measurement. Resets the receiver, inserts the rows, waits
// until the receiver saw every event id (or nothing arrived for --stall-secs), and reports the
// rate from the first INSERT to the last arrival, the latency percentiles the receiver
// measured, lost/duplicate counts, and the CPU and peak RSS of the contender's processes.
#include "common.hpp"
#include "load.hpp"
#include "receiver_client.hpp"
#include "stages.hpp"
#include "subcommands.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <thread>

namespace fobs_bench {

int run_drive(const Args &args) {
    const LoadSpec spec = load_spec(args);
    const int port = static_cast<int>(args.num("receiver-port", 0));
    const auto pids = parse_pids(args.str("pids", ""));
    const int64_t timeout_us = args.num("timeout-secs", 120) * 1000000;
    const int64_t stall_us = args.num("stall-secs", 10) * 1000000;

    if (!args.has("backlog")) receiver_reset(port); // --backlog: reset before the contender started
    const ReceiverStats before = receiver_stats(port);
    // --backlog: the contender was started just before this command, so all of its CPU counts.
    double cpu0 = 0;
    if (!args.has("backlog"))
        for (pid_t p : pids) cpu0 += std::max(0.0, process_cpu_seconds(p));
    const double busy0 = machine_busy_seconds();
    const auto by_command0 = cpu_seconds_by_command();

    // --backlog: the rows are already in the table (inserted while the contender was stopped);
    // measure how fast it catches up, from --start-us (when it was started) to the last arrival.
    const bool backlog = args.has("backlog");
    LoadResult load;
    if (backlog) {
        load.start_us = args.num("start-us", wall_us());
    } else {
        load = run_load(spec);
    }

    // Wait for the receiver to see every event, or for the flow to stop.
    ReceiverStats s = receiver_stats(port);
    int64_t last_change = mono_us(), last_requests = -1;
    const int64_t deadline = mono_us() + timeout_us;
    while (s.distinct < spec.events && mono_us() < deadline) {
        if (s.requests != last_requests) {
            last_requests = s.requests;
            last_change = mono_us();
        } else if (mono_us() - last_change > stall_us) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        s = receiver_stats(port);
    }
    const int64_t done_wall = wall_us();
    double cpu1 = 0;
    int64_t rss_kib = 0;
    for (pid_t p : pids) {
        cpu1 += std::max(0.0, process_cpu_seconds(p));
        rss_kib += std::max<int64_t>(0, process_peak_rss_kib(p));
    }
    const double busy1 = machine_busy_seconds();
    const auto by_command1 = cpu_seconds_by_command();
    // Late duplicates (a redelivery racing the last ack) would show up right after.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    s = receiver_stats(port);

    Result r;
    r.label = args.str("label", spec.table);
    r.kind = args.str("kind", "e2e");
    r.events = spec.events;
    const double elapsed_s = (s.last_us - load.start_us) / 1e6;
    if (s.distinct > 0 && elapsed_s > 0) r.rate = s.distinct / elapsed_s;
    if (s.p50_us >= 0 && !backlog) { // a backlog's latency is mostly the time it waited
        r.p50_ms = s.p50_us / 1000.0;
        r.p99_ms = s.p99_us / 1000.0;
        r.max_ms = s.max_us / 1000.0;
    }
    r.lost = spec.events - s.distinct;
    r.duplicates = s.duplicates;
    if (!pids.empty()) {
        r.cpu_s_per_100k = (cpu1 - cpu0) * 100000.0 / spec.events;
        r.rss_mib = rss_kib / 1024.0;
    }
    r.all_cpu_us_per_event = (busy1 - busy0) * 1e6 / spec.events;
    const double wall_s = (done_wall - load.start_us) / 1e6;
    if (wall_s > 0) r.receiver_busy = (s.cpu_s - before.cpu_s) / wall_s;
    std::string note = args.str("note", "");
    if (spec.rate > 0) {
        note += (note.empty() ? "" : "; ") + std::string("paced ") + std::to_string(static_cast<int>(spec.rate)) +
                "/s, insert lag max " + std::to_string(static_cast<int>(load.max_lag_ms)) + " ms";
    }
    // Where the machine's CPU went, per event: the biggest process groups (PostgreSQL includes
    // its exited backends, e2e_bench is this driver and the receiver).
    {
        std::vector<std::pair<double, std::string>> groups;
        for (const auto &[comm, after] : by_command1) {
            auto it = by_command0.find(comm);
            double used = after - (it == by_command0.end() ? 0.0 : it->second);
            if (used > 0) groups.emplace_back(used * 1e6 / spec.events, comm);
        }
        std::sort(groups.rbegin(), groups.rend());
        std::string cpu = "CPU µs/ev:";
        for (size_t i = 0; i < groups.size() && i < 5 && groups[i].first >= 1.0; ++i)
            cpu += (i ? ", " : " ") + groups[i].second + " " + std::to_string(static_cast<int>(groups[i].first + 0.5));
        note += (note.empty() ? "" : "; ") + cpu;
    }
    if (s.bad > 0) note += "; " + std::to_string(s.bad) + " bodies without id";
    if (args.has("note-file")) {
        // A line another process (e2e_bench tap) writes when it is done: wait for it a little.
        const std::string path = args.str("note-file", "");
        std::string extra;
        for (int i = 0; i < 100 && extra.empty(); ++i) {
            std::ifstream f(path);
            if (f) std::getline(f, extra);
            if (extra.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (!extra.empty()) note += "; " + extra;
    }
    r.note = note;
    emit_result(r, args.str("results", ""));
    // --stages-file: the per-stage breakdown of this run (e2e_bench stage-tap wrote the file).
    if (args.has("stages-file"))
        for (const Result &stage : stage_breakdown(args.str("stages-file", ""), port, r.kind, 30))
            emit_result(stage, args.str("results", ""));
    return 0;
}

} // namespace fobs_bench
