// `e2e_bench table`: prints the results of one run as one table, the per-stage latency
// breakdown of the paced rows, then the goals of issue 15 (and issue 8's Node.js ones) as ratios
// computed from figures of that same run, and those of issue 13 (cdc mode).
#include "common.hpp"
#include "subcommands.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <unistd.h>
#include <vector>

namespace fobs_bench {
namespace {

std::string num(double v, int decimals) {
    if (v < 0) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string count(int64_t v) { return v < 0 ? "-" : std::to_string(v); }

// Display width: UTF-8 code points, not bytes ("µs").
size_t width(const std::string &s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xc0) != 0x80;
    return n;
}

void print_row(const std::vector<std::string> &cells, const std::vector<size_t> &widths) {
    std::string line = "|";
    for (size_t i = 0; i < cells.size(); ++i) {
        std::string c = cells[i];
        bool left = i == 0 || i + 1 == cells.size();
        std::string pad(widths[i] > width(c) ? widths[i] - width(c) : 0, ' ');
        line += " " + (left ? c + pad : pad + c) + " |";
    }
    std::cout << line << "\n";
}

} // namespace

int run_table(const Args &args) {
    std::ifstream in(args.required("results"));
    std::vector<Result> rows;
    std::map<std::string, Result> by_kind;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        rows.push_back(from_line(line));
        by_kind[rows.back().kind] = rows.back();
    }

    const std::vector<std::string> head = {"stage / contender", "events", "events/s", "p50 ms", "p99 ms", "max ms",
                                           "lost", "dup", "CPU s/100k", "peak RSS MiB", "all-CPU µs/ev", "notes"};
    std::vector<std::vector<std::string>> cells;
    for (const auto &r : rows) {
        if (r.kind.rfind("stage:", 0) == 0) continue; // printed below, as the breakdown
        cells.push_back({r.label, std::to_string(r.events), num(r.rate, 0), num(r.p50_ms, 1), num(r.p99_ms, 1),
                         num(r.max_ms, 1), count(r.lost), count(r.duplicates), num(r.cpu_s_per_100k, 2),
                         num(r.rss_mib, 1), num(r.all_cpu_us_per_event, 0),
                         r.note + (r.receiver_busy >= 0 ? (r.note.empty() ? "" : "; ") + std::string("receiver busy ") +
                                                              num(r.receiver_busy * 100, 0) + " %"
                                                        : "")});
    }
    std::vector<size_t> widths(head.size());
    for (size_t i = 0; i < head.size(); ++i) {
        widths[i] = width(head[i]);
        for (const auto &c : cells) widths[i] = std::max(widths[i], width(c[i]));
    }
    print_row(head, widths);
    std::string sep = "|";
    for (size_t i = 0; i < widths.size(); ++i)
        sep += (i == 0 || i + 1 == widths.size() ? ":" : "-") + std::string(widths[i], '-') +
               (i == 0 || i + 1 == widths.size() ? "-" : ":") + "|";
    std::cout << sep << "\n";
    for (auto &c : cells) print_row(c, widths);

    // The per-stage breakdown of the paced rows (e2e_bench stage-tap + the receiver's arrivals).
    bool any_stage = false;
    for (const auto &r : rows) {
        if (r.kind.rfind("stage:", 0) != 0) continue;
        const std::string parent = r.kind.substr(6, r.kind.rfind(':') - 6);
        if (!any_stage)
            std::cout << "\nLatency by stage, paced rows (ms; per event id: its timestamp -> stored in the stream -> "
                         "delivered to the consumer -> arrival at the receiver):\n";
        any_stage = true;
        if (r.kind.back() == '1') {
            auto it = by_kind.find(parent);
            std::cout << "  " << (it != by_kind.end() ? it->second.label : parent) << " (" << r.events
                      << " events seen at both ends)\n";
        }
        char line[200];
        std::snprintf(line, sizeof line, "    %-50s p50 %7s  p99 %7s  max %7s\n", r.label.c_str(), num(r.p50_ms, 2).c_str(),
                      num(r.p99_ms, 2).c_str(), num(r.max_ms, 1).c_str());
        std::cout << line;
    }

    // Goals, from this run's figures only.
    auto rate = [&](const std::string &kind) -> std::optional<double> {
        auto it = by_kind.find(kind);
        if (it == by_kind.end() || it->second.rate <= 0) return std::nullopt;
        return it->second.rate;
    };
    // The contender's own CPU per event (CPU s/100k x 10 = µs/event).
    auto cpu_us = [&](const std::string &kind) -> std::optional<double> {
        auto it = by_kind.find(kind);
        if (it == by_kind.end() || it->second.cpu_s_per_100k < 0) return std::nullopt;
        return it->second.cpu_s_per_100k * 10;
    };
    int missed = 0;
    auto goal = [&](bool ok, const std::string &text) {
        std::cout << "  [" << (ok ? "met   " : "MISSED") << "] " << text << "\n";
        missed += !ok;
    };
    auto absent = [&](const std::string &text) { std::cout << "  [  -   ] " << text << "\n"; };

    std::cout << "\nGoals of issue 15 (this run):\n";
    // 1. Against the hand-pipelined C bridge, both at full speed on the same load and receiver.
    {
        auto obs = rate("observer:notify:full"), bridge = rate("bridge:full");
        if (obs && bridge)
            goal(*obs >= 1.2 * *bridge, "notify, full speed: " + num(*obs, 0) + "/s = " + num(*obs / *bridge, 2) +
                                            "x the C bridge (" + num(*bridge, 0) + "/s); goal >= 1.2x");
        else absent("notify, full speed vs the C bridge: needs the notify and bridge sections");
        auto oc = cpu_us("observer:notify:full"), bc = cpu_us("bridge:full");
        if (oc && bc && *bc > 0)
            goal(*oc <= 0.8 * *bc, "notify, full speed: observer " + num(*oc, 1) + " CPU-µs/event = " +
                                       num(*oc / *bc, 2) + "x the C bridge's " + num(*bc, 1) + "; goal <= 0.8x");
    }
    // 2. Webhook batches of 100 against the unbatched notify run.
    {
        auto batched = rate("observer:notify:batch:full"), single = rate("observer:notify:full");
        if (batched && single)
            goal(*batched >= 2 * *single, "notify, batch_max_events = 100: " + num(*batched, 0) + "/s = " +
                                              num(*batched / *single, 2) + "x unbatched (" + num(*single, 0) +
                                              "/s); goal >= 2x");
        else absent("notify with batch_max_events = 100: not measured (batch section, or a build without batches)");
        if (auto c = cpu_us("observer:notify:batch:full"))
            goal(*c <= 10, "notify, batch_max_events = 100: observer " + num(*c, 1) + " CPU-µs/event; goal <= 10");
    }
    // 3. p99 at a steady 5 000 events/s, with PostgreSQL's own LISTEN p99 beside.
    {
        std::string base;
        auto raw = by_kind.find("raw:listen:paced");
        if (raw != by_kind.end() && raw->second.p99_ms >= 0)
            base = " (INSERT -> raw LISTEN alone at that rate: p99 " + num(raw->second.p99_ms, 1) + " ms)";
        const std::pair<std::string, double> p99_goals[] = {{"notify", 5}, {"outbox", 8}};
        for (const auto &[mode, limit] : p99_goals) {
            auto it = by_kind.find("observer:" + mode + ":paced");
            if (it == by_kind.end() || it->second.p99_ms < 0) {
                absent(mode + ": p99 at a steady rate: not measured");
                continue;
            }
            goal(it->second.p99_ms <= limit, mode + ": p99 " + num(it->second.p99_ms, 1) + " ms at a steady " +
                                                 "rate; goal <= " + num(limit, 0) + " ms" + base);
        }
        auto br = by_kind.find("bridge:paced");
        if (br != by_kind.end() && br->second.p99_ms >= 0)
            std::cout << "           the C bridge at the same rate: p99 " << num(br->second.p99_ms, 1) << " ms\n";
    }
    // 4. Per-key ordering over 1 000 keys against unordered notify mode.
    {
        auto ordered = rate("observer:notify:ordered:full"), unordered = rate("observer:notify:full");
        if (ordered && unordered) {
            const double cost = 100 * (1 - *ordered / *unordered);
            goal(*ordered >= 0.9 * *unordered,
                 "notify, ordering = entity over 1 000 keys: " + num(*ordered, 0) + "/s, " +
                     (cost >= 0 ? "costs " + num(cost, 0) + " %" : "costs nothing (" + num(-cost, 0) + " % faster)") +
                     " against unordered (" + num(*unordered, 0) + "/s); goal <= 10 %");
        }
        else absent("ordering = entity: not measured (ordering section, or a build without it)");
    }
    // 5. No loss, no duplicates anywhere; the observer's peak RSS.
    {
        int64_t lost = 0, dup = 0;
        for (const auto &r : rows) {
            if (r.kind.rfind("stage:", 0) == 0) continue;
            lost += std::max<int64_t>(0, r.lost);
            dup += std::max<int64_t>(0, r.duplicates);
        }
        goal(lost == 0 && dup == 0, "no loss, no duplicates in any run: " + std::to_string(lost) + " lost, " +
                                        std::to_string(dup) + " duplicates in total");
        double rss = -1;
        std::string where;
        for (const auto &r : rows)
            if (r.kind.rfind("observer:", 0) == 0 && r.rss_mib > rss) {
                rss = r.rss_mib;
                where = r.label;
            }
        if (rss >= 0) goal(rss < 32, "observer peak RSS " + num(rss, 1) + " MiB (" + where + "); goal < 32 MiB");
    }
    // Still printed from issue 8: the Node.js bridges.
    if (auto e2e = rate("observer:notify:full")) {
        if (auto naive = rate("node:naive"))
            goal(*e2e >= 10 * *naive, "vs naive Node.js bridge: " + num(*e2e / *naive, 1) + "x; goal >= 10x (issue 8)");
        if (auto piped = rate("node:pipelined"))
            goal(*e2e >= 3 * *piped, "vs pipelined Node.js bridge: " + num(*e2e / *piped, 1) + "x; goal >= 3x (issue 8)");
    }
    // Goals of issue 13: cdc mode in absolute terms (the peers publish ~20 k/s on bigger machines).
    if (auto e2e = rate("observer:cdc:full")) {
        std::cout << "\nGoals of issue 13, cdc mode (this run):\n";
        std::string raw;
        if (auto lim = rate("raw:cdc")) raw = " (" + num(100 * *e2e / *lim, 0) + " % of the raw replication stage, " + num(*lim, 0) + "/s)";
        goal(*e2e >= 20000, "cdc: end-to-end " + num(*e2e, 0) + "/s; goal >= 20000/s" + raw);
        const Result &full = by_kind.at("observer:cdc:full");
        if (full.all_cpu_us_per_event > 0 && full.cpu_s_per_100k >= 0) {
            const double observer_us = full.cpu_s_per_100k * 10;
            const double cores = static_cast<double>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
            std::cout << "           all processes used " << num(full.all_cpu_us_per_event, 0)
                      << " CPU-µs/event (ceiling " << num(cores * 1e6 / full.all_cpu_us_per_event, 0)
                      << "/s on " << num(cores, 0) << " cores), the observer " << num(observer_us, 0) << " of them\n";
        }
        auto it = by_kind.find("observer:cdc:paced");
        if (it != by_kind.end() && it->second.p99_ms >= 0) {
            std::string base;
            auto rawp = by_kind.find("raw:cdc:paced");
            if (rawp != by_kind.end() && rawp->second.p99_ms >= 0)
                base = " (INSERT -> raw replication client alone at that rate: p99 " + num(rawp->second.p99_ms, 1) + " ms)";
            goal(it->second.p99_ms <= 15, "cdc: p99 " + num(it->second.p99_ms, 1) + " ms at a steady rate; goal <= 15 ms" + base);
        }
        if (full.rss_mib >= 0) goal(full.rss_mib < 32, "cdc: host peak RSS " + num(full.rss_mib, 1) + " MiB; goal < 32 MiB");
        int64_t cdc_lost = 0, cdc_dup = 0;
        for (const auto &r : rows) {
            if (r.kind.rfind("observer:cdc:", 0) != 0) continue;
            cdc_lost += std::max<int64_t>(0, r.lost);
            cdc_dup += std::max<int64_t>(0, r.duplicates);
        }
        goal(cdc_lost == 0 && cdc_dup == 0, "cdc: " + std::to_string(cdc_lost) + " lost, " + std::to_string(cdc_dup) +
                                                " duplicates; goal 0 / 0");
        // The observer's own CPU per event, mode beside mode (CPU s/100k x 10 = µs/event).
        std::string line;
        for (const std::string mode : {"notify", "outbox", "cdc"}) {
            auto f = by_kind.find("observer:" + mode + ":full");
            auto p = by_kind.find("observer:" + mode + ":paced");
            if (f == by_kind.end() || f->second.cpu_s_per_100k < 0) continue;
            line += (line.empty() ? "" : ", ") + mode + " " + num(f->second.cpu_s_per_100k * 10, 0);
            if (p != by_kind.end() && p->second.cpu_s_per_100k >= 0) line += " (paced " + num(p->second.cpu_s_per_100k * 10, 0) + ")";
        }
        std::cout << "  observer CPU µs/event at full speed: " << line << "\n";
    }
    if (args.has("strict")) return missed ? 1 : 0;
    return 0;
}

} // namespace fobs_bench
