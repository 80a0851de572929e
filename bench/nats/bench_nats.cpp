// NATS transport benchmark: the `nats` plugin, loaded by the real host loader, against raw
// cnats doing the same work in the same run on the same server.
//
//   publish: plugin publish() with PubAck completions  vs  raw js_PublishAsync with
//            Nats-Msg-Id and the same window (1000 by default)
//   consume: plugin consumer with a no-op completion (ack)  vs  raw Fetch(batch) + natsMsg_Ack
//
// Prints events/s, p50/p99 publish latency (publish call -> PubAck) and the peak RSS of each
// phase, then the plugin/raw ratios. Starts its own nats-server (loopback, temp store dir)
// unless --url is given.
//
//   bench_nats [--events 100000] [--window 1000] [--batch 256] [--url nats://…] [--json]
#include "instance.hpp"
#include "plugin_loader.hpp"
#include "services.hpp"

#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace host = fraiseql_observer::host;
namespace sdk = fraiseql_observer::sdk;
using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;

namespace {

struct Options {
    int events = 100'000;
    int window = 1000;
    int batch = 256;
    std::string url;
    bool json_out = false;
};

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

bool port_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
    close(fd);
    return ok;
}

// A nats-server of our own, stopped by PID.
struct Server {
    pid_t pid = -1;
    std::filesystem::path dir;
    int port = 0;
    std::string start() {
        char tmpl[] = "/tmp/fobs-bench-nats-XXXXXX";
        dir = mkdtemp(tmpl);
        port = free_port();
        int mport = free_port();
        pid = fork();
        if (pid == 0) {
            std::string log = (dir / "nats-server.log").string();
            FILE *f = freopen(log.c_str(), "w", stdout);
            (void)f;
            dup2(1, 2);
            std::string p = std::to_string(port), m = std::to_string(mport), sd = (dir / "store").string();
            execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", p.c_str(), "-m",
                   m.c_str(), "-sd", sd.c_str(), static_cast<char *>(nullptr));
            _exit(127);
        }
        for (int i = 0; i < 300 && !port_open(port); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (!port_open(port)) throw std::runtime_error("nats-server did not start");
        return "nats://127.0.0.1:" + std::to_string(port);
    }
    ~Server() {
        if (pid > 0) {
            kill(pid, SIGTERM);
            waitpid(pid, nullptr, 0);
        }
        if (!dir.empty()) std::filesystem::remove_all(dir);
    }
};

// Peak RSS of a phase: reset the high-water mark, run, read VmHWM.
void reset_peak_rss() {
    std::ofstream("/proc/self/clear_refs") << "5";
}
long peak_rss_kb() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

std::string event_body(const std::string &id, int i) {
    // ~210 bytes, the shape of SPEC section 4.
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"id\":\"%s\",\"entity_type\":\"Order\",\"operation\":\"INSERT\",\"entity_id\":\"%08d\","
             "\"timestamp\":\"2026-11-27T04:23:51.123456Z\",\"txid\":%d,\"entity\":{\"id\":\"%08d\","
             "\"status\":\"pending\",\"total_amount\":42.5},\"changes\":null,\"source\":\"app_db\"}",
             id.c_str(), i, 800000 + i, i);
    return buf;
}

struct Result {
    std::string name;
    double seconds = 0;
    int events = 0;
    double p50_ms = -1, p99_ms = -1;
    long peak_rss_kb = -1;
    double rate() const { return events / seconds; }
};

void percentiles(std::vector<double> &lat, Result &r) {
    if (lat.empty()) return;
    std::sort(lat.begin(), lat.end());
    r.p50_ms = lat[lat.size() / 2] * 1e3;
    r.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)] * 1e3;
}

void check(natsStatus s, const char *what) {
    if (s != NATS_OK) throw std::runtime_error(std::string(what) + ": " + natsStatus_GetText(s));
}

void make_stream(jsCtx *js, const std::string &name, const std::string &subject) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {subject.c_str()};
    cfg.Name = name.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = 5LL * 60 * 1'000'000'000;
    cfg.MaxAge = 7LL * 86400 * 1'000'000'000;
    jsStreamInfo *si = nullptr;
    check(js_AddStream(&si, js, &cfg, nullptr, nullptr), "add stream");
    jsStreamInfo_Destroy(si);
}

// ---- raw cnats publish -------------------------------------------------------------------
struct RawPub {
    std::vector<clock_type::time_point> sent;
    std::vector<double> lat;
    std::atomic<int> acked{0}, errors{0};
};

void raw_ack(jsCtx *, natsMsg *msg, jsPubAck *pa, jsPubAckErr *, void *closure) {
    auto *st = static_cast<RawPub *>(closure);
    const char *id = nullptr;
    natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
    int i = id ? std::atoi(std::strrchr(id, '-') + 1) : -1;
    if (pa && i >= 0) st->lat[static_cast<size_t>(i)] =
        std::chrono::duration<double>(clock_type::now() - st->sent[static_cast<size_t>(i)]).count();
    if (!pa) st->errors++;
    st->acked++;
    natsMsg_Destroy(msg);
}

Result raw_publish(natsConnection *nc, const Options &o, const std::string &subject) {
    RawPub st;
    st.sent.resize(static_cast<size_t>(o.events));
    st.lat.assign(static_cast<size_t>(o.events), -1);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = o.window;
    jo.PublishAsync.StallWait = 10'000;
    jo.PublishAsync.AckHandler = &raw_ack;
    jo.PublishAsync.AckHandlerClosure = &st;
    jsCtx *js = nullptr;
    check(natsConnection_JetStream(&js, nc, &jo), "js");
    reset_peak_rss();
    auto t0 = clock_type::now();
    for (int i = 0; i < o.events; ++i) {
        std::string id = "raw-" + std::to_string(i);
        std::string body = event_body(id, i);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id.c_str();
        st.sent[static_cast<size_t>(i)] = clock_type::now();
        check(js_PublishAsync(js, subject.c_str(), body.data(), static_cast<int>(body.size()), &po),
              "publish async");
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60'000;
    check(js_PublishAsyncComplete(js, &po), "publish complete");
    while (st.acked < o.events) std::this_thread::sleep_for(std::chrono::microseconds(100));
    Result r{"raw cnats js_PublishAsync", std::chrono::duration<double>(clock_type::now() - t0).count(),
             o.events};
    r.peak_rss_kb = peak_rss_kb();
    std::vector<double> lat;
    for (double l : st.lat) if (l >= 0) lat.push_back(l);
    percentiles(lat, r);
    jsCtx_Destroy(js);
    if (st.errors) std::cerr << "raw publish errors: " << st.errors << "\n";
    return r;
}

// ---- plugin publish ----------------------------------------------------------------------
Result plugin_publish(host::TransportInstance &t, const Options &o) {
    std::vector<double> lat(static_cast<size_t>(o.events), -1);
    std::atomic<int> done{0}, failed{0};
    reset_peak_rss();
    auto t0 = clock_type::now();
    host::EventData e;
    e.entity_type = "Order";
    e.operation = "INSERT";
    e.source = "app_db";
    for (int i = 0; i < o.events; ++i) {
        e.id = "plg-" + std::to_string(i);
        e.entity_id = std::to_string(i);
        e.body = event_body(e.id, i);
        fobs_event v = e.view();
        auto sent = clock_type::now();
        t.publish(v, [&, i, sent](const host::Outcome &out) {
            if (out.kind == FOBS_OUTCOME_OK)
                lat[static_cast<size_t>(i)] =
                    std::chrono::duration<double>(clock_type::now() - sent).count();
            else
                failed++;
            done++;
        });
    }
    while (done < o.events) std::this_thread::sleep_for(std::chrono::microseconds(100));
    Result r{"plugin publish (PubAck completions)",
             std::chrono::duration<double>(clock_type::now() - t0).count(), o.events};
    r.peak_rss_kb = peak_rss_kb();
    std::vector<double> l;
    for (double x : lat) if (x >= 0) l.push_back(x);
    percentiles(l, r);
    if (failed) std::cerr << "plugin publish failures: " << failed << "\n";
    return r;
}

// ---- raw cnats consume -------------------------------------------------------------------
Result raw_consume(natsConnection *nc, const Options &o, const std::string &stream,
                   const std::string &subject) {
    jsCtx *js = nullptr;
    check(natsConnection_JetStream(&js, nc, nullptr), "js");
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.ManualAck = true;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = 30LL * 1'000'000'000;
    so.Config.MaxAckPending = 10'000;
    natsSubscription *sub = nullptr;
    // The clock includes creating the durable, as the plugin's open_consumer does.
    reset_peak_rss();
    auto t0 = clock_type::now();
    check(js_PullSubscribe(&sub, js, subject.c_str(), "raw_bench", nullptr, &so, nullptr), "pull sub");
    natsSubscription_SetPendingLimits(sub, -1, -1);
    int got = 0;
    while (got < o.events) {
        int batch = o.batch, pending = 0, bytes = 0;
        if (natsSubscription_GetPending(sub, &pending, &bytes) == NATS_OK && pending > 0)
            batch = std::min(batch, pending); // NOTES.md: cnats Fetch overflow work-around
        natsMsgList list{};
        natsStatus s = natsSubscription_Fetch(&list, sub, batch, 1000, nullptr);
        if (s != NATS_OK && s != NATS_TIMEOUT) check(s, "fetch");
        for (int i = 0; i < list.Count; ++i) natsMsg_Ack(list.Msgs[i], nullptr);
        got += list.Count;
        natsMsgList_Destroy(&list);
    }
    natsConnection_Flush(nc);
    Result r{"raw cnats Fetch + Ack", std::chrono::duration<double>(clock_type::now() - t0).count(),
             got};
    r.peak_rss_kb = peak_rss_kb();
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    return r;
}

// ---- plugin consume ----------------------------------------------------------------------
Result plugin_consume(host::TransportInstance &t, const Options &o) {
    std::atomic<int> got{0};
    host::ConsumerSpec spec;
    spec.pipeline = "bench";
    spec.consumer_name = "plugin_bench";
    spec.max_in_flight = 4096;
    reset_peak_rss();
    auto t0 = clock_type::now();
    auto consumer = t.open_consumer(spec, [&](const fobs_event &, sdk::Completion done) {
        done.ok(); // no-op action: ack right away
        got++;
    });
    while (got < o.events) std::this_thread::sleep_for(std::chrono::microseconds(200));
    Result r{"plugin consumer, no-op completion (ack)",
             std::chrono::duration<double>(clock_type::now() - t0).count(), got.load()};
    r.peak_rss_kb = peak_rss_kb();
    consumer->close();
    return r;
}

void print(const Result &r) {
    std::printf("  %-42s %8d events  %7.3f s  %9.0f events/s", r.name.c_str(), r.events, r.seconds,
                r.rate());
    if (r.p50_ms >= 0) std::printf("  p50 %6.2f ms  p99 %6.2f ms", r.p50_ms, r.p99_ms);
    std::printf("  peak RSS %ld MiB\n", r.peak_rss_kb / 1024);
}

json to_json(const Result &r) {
    return {{"name", r.name}, {"events", r.events}, {"seconds", r.seconds}, {"events_per_s", r.rate()},
            {"p50_ms", r.p50_ms}, {"p99_ms", r.p99_ms}, {"peak_rss_kb", r.peak_rss_kb}};
}

} // namespace

int main(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error("missing value for " + a);
            return argv[++i];
        };
        if (a == "--events") o.events = std::stoi(next());
        else if (a == "--window") o.window = std::stoi(next());
        else if (a == "--batch") o.batch = std::stoi(next());
        else if (a == "--url") o.url = next();
        else if (a == "--json") o.json_out = true;
        else {
            std::cerr << "usage: bench_nats [--events N] [--window N] [--batch N] [--url URL] [--json]\n";
            return 2;
        }
    }
    try {
        Server server;
        if (o.url.empty()) o.url = server.start();
        nats_Open(-1);
        natsConnection *nc = nullptr;
        check(natsConnection_ConnectTo(&nc, o.url.c_str()), "connect");
        jsCtx *js = nullptr;
        check(natsConnection_JetStream(&js, nc, nullptr), "js");
        make_stream(js, "bench_raw", "benchraw.>");

        host::Services services(host::LogSettings{"warn", "text"});
        host::PluginRegistry registry;
        registry.discover({FOBS_BENCH_PLUGIN_DIR});
        auto plugin = registry.find("nats");
        if (!plugin) throw std::runtime_error("nats plugin not found in " FOBS_BENCH_PLUGIN_DIR);
        host::InstanceSpec spec;
        spec.component_name = "nats";
        spec.instance_name = "bench/nats";
        spec.config_json = json{{"url", o.url},
                                {"stream_name", "bench_plugin"},
                                {"subject_prefix", "benchplg.mutation"},
                                {"dlq_prefix", "benchplg.dlq"},
                                {"publish_window", o.window},
                                {"fetch_batch", o.batch},
                                {"jetstream", {{"max_bytes", 1LL << 30}}}}
                               .dump();
        host::TransportInstance transport(plugin, spec, services);
        transport.start();

        std::printf("NATS transport benchmark: %d events of ~%zu bytes, window %d, fetch batch %d\n",
                    o.events, event_body("00000000-0000-0000-0000-000000000000", 1).size(),
                    o.window, o.batch);
        Result rp = raw_publish(nc, o, "benchraw.mutation.Order.INSERT");
        print(rp);
        Result pp = plugin_publish(transport, o);
        print(pp);
        Result rc = raw_consume(nc, o, "bench_raw", "benchraw.>");
        print(rc);
        Result pc = plugin_consume(transport, o);
        print(pc);
        std::printf("  plugin/raw: publish %.0f %%, consume %.0f %%\n", 100.0 * pp.rate() / rp.rate(),
                    100.0 * pc.rate() / rc.rate());
        if (o.json_out)
            std::cout << json{{"raw_publish", to_json(rp)}, {"plugin_publish", to_json(pp)},
                              {"raw_consume", to_json(rc)}, {"plugin_consume", to_json(pc)},
                              {"publish_ratio", pp.rate() / rp.rate()},
                              {"consume_ratio", pc.rate() / rc.rate()}}
                             .dump()
                      << "\n";
        transport.stop();
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
    } catch (const std::exception &e) {
        std::cerr << "bench_nats: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
