// `e2e_bench tap`: a plain NATS subscriber on the subjects a contender publishes to, so one run
// can split its latency in two: PostgreSQL -> source -> nats-server (measured here: nats-server
// routes each published message to core subscribers as it hands it to the stream) and the rest,
// JetStream -> fetch -> webhook -> receiver. It only reads the first "timestamp" field of each message, like the
// receiver. It costs nats-server one more delivery per event, so bench/run.sh runs it only with
// --tap, on the paced runs.
#include "common.hpp"
#include "subcommands.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fobs_bench {
namespace {

// The first `"timestamp":"…"` value of a JSON text, in epoch µs; -1 when absent.
int64_t timestamp_us(std::string_view body) {
    const std::string_view key = "\"timestamp\"";
    size_t pos = body.find(key);
    if (pos == std::string_view::npos) return -1;
    pos = body.find('"', pos + key.size());
    if (pos == std::string_view::npos) return -1;
    size_t end = body.find('"', pos + 1);
    if (end == std::string_view::npos) return -1;
    return parse_iso8601_us(body.substr(pos + 1, end - pos - 1));
}

} // namespace

int run_tap(const Args &args) {
    const std::string url = args.required("nats-url");
    const std::string subject = args.required("subject");
    const int64_t events = args.num("events", 0);
    const std::string out = args.required("out");
    const int64_t idle_us = args.num("idle-secs", 5) * 1000000;
    const int64_t deadline = mono_us() + args.num("timeout-secs", 120) * 1000000;

    natsConnection *nc = nullptr;
    natsSubscription *sub = nullptr;
    if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK ||
        natsConnection_SubscribeSync(&sub, nc, subject.c_str()) != NATS_OK) {
        if (nc) natsConnection_Destroy(nc);
        throw std::runtime_error("tap: cannot subscribe to " + subject + " at " + url + ": " + nats_GetLastError(nullptr));
    }
    // Bursts at full speed would overflow the default pending limits and drop messages.
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_Flush(nc);
    if (args.has("ready-file")) std::ofstream(args.str("ready-file", "")) << "ready\n";

    std::vector<int64_t> latency_us;
    latency_us.reserve(static_cast<size_t>(std::max<int64_t>(events, 0)));
    int64_t received = 0, last_mono = mono_us();
    while ((events <= 0 || received < events) && mono_us() < deadline) {
        natsMsg *msg = nullptr;
        natsStatus s = natsSubscription_NextMsg(&msg, sub, 100);
        if (s == NATS_TIMEOUT) {
            if (received > 0 && mono_us() - last_mono > idle_us) break;
            continue;
        }
        if (s != NATS_OK) break;
        int64_t now = wall_us();
        int64_t ts = timestamp_us(std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))));
        if (ts > 0) latency_us.push_back(now - ts);
        ++received;
        last_mono = mono_us();
        natsMsg_Destroy(msg);
    }
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);

    std::sort(latency_us.begin(), latency_us.end());
    char line[160] = "at NATS: no messages";
    if (!latency_us.empty())
        std::snprintf(line, sizeof line, "at NATS: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                      latency_us[(latency_us.size() - 1) / 2] / 1000.0,
                      latency_us[(latency_us.size() - 1) * 99 / 100] / 1000.0, latency_us.back() / 1000.0);
    std::ofstream(out) << line;
    return 0;
}

} // namespace fobs_bench
