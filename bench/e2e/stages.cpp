#include "stages.hpp"

#include "receiver_client.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace fobs_bench {

std::vector<Result> stage_breakdown(const std::string &tap_file, int receiver_port, const std::string &parent_kind,
                                    int wait_secs) {
    std::ifstream in;
    for (int i = 0; i < wait_secs * 10; ++i) {
        in.open(tap_file);
        if (in) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!in) {
        std::cerr << "drive: no stage-tap file " << tap_file << " after " << wait_secs << " s\n";
        return {};
    }
    const auto arrivals = receiver_arrivals(receiver_port);
    // source -> published (stream's stored time), published -> fetched (delivered to the
    // consumer), fetched -> action done (arrival at the receiver), and the whole way.
    std::vector<int64_t> lat[4];
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string id;
        int64_t event_us = 0, stored_us = 0, delivered_us = 0;
        if (!(f >> id >> event_us >> stored_us >> delivered_us)) continue;
        auto it = arrivals.find(id);
        if (it == arrivals.end()) continue;
        lat[0].push_back(stored_us - event_us);
        lat[1].push_back(delivered_us - stored_us);
        lat[2].push_back(it->second - delivered_us);
        lat[3].push_back(it->second - event_us);
    }
    static const char *names[4] = {"source -> published (stored in the stream)",
                                   "published -> fetched (delivered to the consumer)",
                                   "fetched -> action done (arrival at the receiver)", "whole way (these events)"};
    std::vector<Result> out;
    for (int i = 0; i < 4; ++i) {
        auto &v = lat[i];
        if (v.empty()) continue;
        std::sort(v.begin(), v.end());
        Result r;
        r.kind = "stage:" + parent_kind + ":" + std::to_string(i + 1);
        r.label = names[i];
        r.events = static_cast<int64_t>(v.size());
        r.p50_ms = v[(v.size() - 1) / 2] / 1000.0;
        r.p99_ms = v[(v.size() - 1) * 99 / 100] / 1000.0;
        r.max_ms = v.back() / 1000.0;
        out.push_back(r);
    }
    return out;
}

} // namespace fobs_bench
