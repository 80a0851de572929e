// `e2e_bench stage-tap`: watches a contender's JetStream deliveries from outside, for the
// per-stage latency breakdown of the paced runs (issue 15). A plain core-NATS subscriber on
// "_INBOX.>" receives a copy of every message nats-server delivers to a pull request (cnats and
// the Node.js client reply to "_INBOX.…" subjects), at the moment the server sends it to the
// consumer. Each delivery's ack reply subject ("$JS.ACK.<stream>.<consumer>.<delivered>
// .<stream seq>.<consumer seq>.<stored ns>.<pending>") carries the time the stream stored the
// message. So, per event id (first delivery only), with no hook in the contender:
//   the event's own "timestamp" (PostgreSQL, at insert or commit)   -> source
//   the stored time                                                  -> published
//   the tap's arrival                                                -> fetched (delivered)
// and the receiver's arrival (GET /arrivals) -> action done; `drive --stages-file` joins them.
// Costs nats-server one more copy of each delivered message (and of each PubAck), so
// bench/run.sh runs it on the paced rows only.
#include "common.hpp"
#include "subcommands.hpp"

#include <nats/nats.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace fobs_bench {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// The value of the first top-level-looking `"name":"…"` string field.
std::string_view string_field(std::string_view body, std::string_view name) {
    const std::string key = "\"" + std::string(name) + "\"";
    size_t pos = body.find(key);
    if (pos == std::string_view::npos) return {};
    pos = body.find('"', pos + key.size());
    if (pos == std::string_view::npos) return {};
    size_t end = body.find('"', pos + 1);
    if (end == std::string_view::npos) return {};
    return body.substr(pos + 1, end - pos - 1);
}

// Splits "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>" (9 tokens) or
// "$JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<x>]".
bool parse_reply(std::string_view reply, std::string_view &stream, uint64_t &delivered, int64_t &stored_ns) {
    if (reply.rfind("$JS.ACK.", 0) != 0) return false;
    std::vector<std::string_view> t;
    size_t start = 0;
    for (;;) {
        size_t dot = reply.find('.', start);
        t.push_back(reply.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    size_t s;
    if (t.size() == 9) s = 2;
    else if (t.size() == 11 || t.size() == 12) s = 4;
    else return false;
    stream = t[s];
    try {
        delivered = std::stoull(std::string(t[s + 2]));
        stored_ns = std::stoll(std::string(t[s + 5]));
    } catch (const std::exception &) {
        return false;
    }
    return true;
}

} // namespace

int run_stage_tap(const Args &args) {
    const std::string url = args.required("nats-url");
    const std::string stream = args.required("stream");
    const std::string out = args.required("out");
    const int64_t events = args.num("events", 0);
    const int64_t idle_us = args.num("idle-secs", 5) * 1000000;
    const int64_t deadline = mono_us() + args.num("timeout-secs", 300) * 1000000;
    std::signal(SIGTERM, on_signal);

    natsConnection *nc = nullptr;
    natsSubscription *sub = nullptr;
    if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK ||
        natsConnection_SubscribeSync(&sub, nc, args.str("subject", "_INBOX.>").c_str()) != NATS_OK) {
        if (nc) natsConnection_Destroy(nc);
        throw std::runtime_error("stage-tap: cannot subscribe at " + url + ": " + nats_GetLastError(nullptr));
    }
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_Flush(nc);
    if (args.has("ready-file")) std::ofstream(args.str("ready-file", "")) << "ready\n";

    // id, event timestamp, stored, delivered (µs): written at the end, not while measuring.
    struct Row {
        std::string id;
        int64_t event_us, stored_us, delivered_us;
    };
    std::vector<Row> rows;
    rows.reserve(static_cast<size_t>(std::max<int64_t>(events, 1024)));
    std::unordered_set<std::string> seen;
    int64_t last_mono = mono_us();
    while (!g_stop && (events <= 0 || static_cast<int64_t>(rows.size()) < events) && mono_us() < deadline) {
        natsMsg *msg = nullptr;
        natsStatus s = natsSubscription_NextMsg(&msg, sub, 100);
        if (s == NATS_TIMEOUT) {
            if (!rows.empty() && mono_us() - last_mono > idle_us) break;
            continue;
        }
        if (s != NATS_OK) break;
        const int64_t now = wall_us();
        const char *reply = natsMsg_GetReply(msg);
        std::string_view stream_token;
        uint64_t delivered = 0;
        int64_t stored_ns = 0;
        if (reply && parse_reply(reply, stream_token, delivered, stored_ns) && stream_token == stream &&
            delivered == 1) {
            std::string_view body(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
            std::string id(string_field(body, "id"));
            int64_t ts = parse_iso8601_us(string_field(body, "timestamp"));
            if (!id.empty() && ts > 0 && seen.insert(id).second) {
                rows.push_back({std::move(id), ts, stored_ns / 1000, now});
                last_mono = mono_us();
            }
        }
        natsMsg_Destroy(msg);
    }
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);

    const std::string tmp = out + ".tmp";
    {
        std::ofstream f(tmp);
        for (const Row &r : rows)
            f << r.id << '\t' << r.event_us << '\t' << r.stored_us << '\t' << r.delivered_us << '\n';
    }
    std::rename(tmp.c_str(), out.c_str()); // the driver waits for the file to appear whole
    return 0;
}

} // namespace fobs_bench
