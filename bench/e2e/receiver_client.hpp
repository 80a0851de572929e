// The driver's side of the receiver's control endpoints (GET /stats, GET /arrivals, POST /reset).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace fobs_bench {

struct ReceiverStats {
    int64_t requests = 0, events = 0, distinct = 0, duplicates = 0, bad = 0;
    int64_t first_us = 0, last_us = 0;
    int64_t p50_us = -1, p99_us = -1, max_us = -1;
    double cpu_s = 0;
};

/// Blocking HTTP/1.0 request to 127.0.0.1:port; returns the body; throws on failure.
std::string http_call(int port, const std::string &method, const std::string &path);
ReceiverStats receiver_stats(int port);
/// Each distinct event id with its first arrival (wall-clock µs), from GET /arrivals.
std::unordered_map<std::string, int64_t> receiver_arrivals(int port);
void receiver_reset(int port);

} // namespace fobs_bench
