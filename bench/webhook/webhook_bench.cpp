// Webhook delivery benchmark (issue 5). In one run, against a local receiver answering 204 at
// once, it delivers the same fixed work through:
//   curl-multi     a plain libcurl multi loop keeping C requests in flight (the limit),
//   plugin         the webhook plugin loaded by the real host loader, C events in flight,
//   plugin-signed  the same with Standard Webhooks signing on,
//   plugin-open    the plugin fed as fast as execute() accepts (its bounded queue pushes back),
//   sequential     one request at a time on one kept-alive handle,
// and prints deliveries/s, p50/p99 latency (hand-off to completion), peak RSS, the receiver's
// CPU use (to show the receiver is not the bottleneck) and, for the plugin modes, the CPU per
// request of the plugin's `webhook` thread alone ("thread us": libcurl, the plugin's own work
// and the completion of each event).
//
//   webhook_bench [--requests N] [--concurrency C]
#include "bench_receiver.hpp"

#include "instance.hpp"
#include "plugin_loader.hpp"
#include "services.hpp"

#include <curl/curl.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace host = fraiseql_observer::host;
using Clock = std::chrono::steady_clock;

namespace {

struct Result {
    std::string mode;
    size_t requests = 0;
    size_t failures = 0;
    double seconds = 0;
    std::vector<double> latencies_ms;
    long peak_rss_kb = 0;
    double receiver_cpu = 0;
    double client_cpu_us = 0; // process CPU per request, the receiver's share taken out
    double thread_cpu_us = -1; // the plugin's `webhook` thread's CPU per request (plugin modes)
};

// CPU time so far of this process's thread named `name` (schedstat: nanoseconds on a CPU,
// finer than the 10 ms ticks of /proc/<tid>/stat), or -1 when there is none.
double thread_cpu_seconds(const std::string &name) {
    for (const auto &entry : std::filesystem::directory_iterator("/proc/self/task")) {
        std::string comm;
        std::getline(std::ifstream(entry.path() / "comm"), comm);
        if (comm != name) continue;
        unsigned long long ns = 0;
        std::ifstream(entry.path() / "schedstat") >> ns;
        return static_cast<double>(ns) / 1e9;
    }
    return -1;
}

double process_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string event_body(size_t i) {
    // ~210 bytes, like the events in NOTES.md.
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "{\"id\":\"0b6f7c1e-3f0c-5a59-9d3a-%012zu\",\"entity_type\":\"Order\","
                  "\"operation\":\"INSERT\",\"entity_id\":\"%zu\",\"timestamp\":"
                  "\"2026-11-27T04:23:51.123456Z\",\"txid\":812345,\"entity\":{\"id\":\"%zu\","
                  "\"status\":\"pending\"},\"changes\":null,\"source\":\"app_db\"}",
                  i, i, i);
    return buf;
}
std::string event_id(size_t i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "0b6f7c1e-3f0c-5a59-9d3a-%012zu", i);
    return buf;
}

void reset_peak_rss() {
    std::ofstream("/proc/self/clear_refs") << "5"; // resets VmHWM (Linux >= 4.0)
}
long peak_rss_kb() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
    return v[idx];
}

curl_slist *headers_for(size_t i) {
    curl_slist *h = curl_slist_append(nullptr, "Content-Type: application/json");
    h = curl_slist_append(h, "User-Agent: fraiseql-observer/bench");
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, ("Idempotency-Key: " + event_id(i)).c_str());
    return h;
}

size_t discard(char *, size_t size, size_t nmemb, void *) { return size * nmemb; }

// The limit: one thread, one multi handle, C transfers in flight, handles reused.
Result run_curl_multi(const std::string &url, size_t n, size_t concurrency) {
    Result r;
    r.mode = "curl-multi";
    r.latencies_ms.resize(n);
    struct Slot {
        CURL *easy;
        size_t index;
        std::string body;
        curl_slist *headers = nullptr;
        Clock::time_point t0;
    };
    std::vector<Slot> slots(concurrency);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(concurrency));
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(concurrency));
    size_t next = 0, done = 0;
    auto launch = [&](Slot &s) {
        s.index = next++;
        s.body = event_body(s.index);
        curl_slist_free_all(s.headers);
        s.headers = headers_for(s.index);
        curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, s.headers);
        curl_easy_setopt(s.easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(s.body.size()));
        curl_easy_setopt(s.easy, CURLOPT_POSTFIELDS, s.body.data());
        s.t0 = Clock::now();
        curl_multi_add_handle(multi, s.easy);
    };
    auto start = Clock::now();
    for (auto &s : slots) {
        s.easy = curl_easy_init();
        curl_easy_setopt(s.easy, CURLOPT_URL, url.c_str());
        curl_easy_setopt(s.easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, &discard);
        curl_easy_setopt(s.easy, CURLOPT_PRIVATE, &s);
        if (next < n) launch(s);
    }
    while (done < n) {
        int running = 0;
        curl_multi_perform(multi, &running);
        int q = 0;
        while (CURLMsg *m = curl_multi_info_read(multi, &q)) {
            if (m->msg != CURLMSG_DONE) continue;
            Slot *s = nullptr;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &s);
            long status = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (m->data.result != CURLE_OK || status / 100 != 2) ++r.failures;
            r.latencies_ms[s->index] =
                std::chrono::duration<double, std::milli>(Clock::now() - s->t0).count();
            curl_multi_remove_handle(multi, m->easy_handle);
            ++done;
            if (next < n) launch(*s);
        }
        if (done < n) curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (auto &s : slots) {
        curl_slist_free_all(s.headers);
        curl_easy_cleanup(s.easy);
    }
    curl_multi_cleanup(multi);
    r.requests = n;
    return r;
}

// One request at a time on one kept-alive handle.
Result run_sequential(const std::string &url, size_t n) {
    Result r;
    r.mode = "sequential";
    r.latencies_ms.resize(n);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &discard);
    auto start = Clock::now();
    for (size_t i = 0; i < n; ++i) {
        std::string body = event_body(i);
        curl_slist *h = headers_for(i);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
        auto t0 = Clock::now();
        CURLcode c = curl_easy_perform(e);
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (c != CURLE_OK || status / 100 != 2) ++r.failures;
        r.latencies_ms[i] = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        curl_slist_free_all(h);
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    curl_easy_cleanup(e);
    r.requests = n;
    return r;
}

// The plugin through the real host loader and ActionInstance. `window` > 0 keeps at most that
// many events outstanding (as the pipeline's max_in_flight does); 0 feeds as fast as execute()
// accepts, so the plugin's own bounded queue applies the back-pressure.
Result run_plugin(const std::string &mode, const std::string &url, size_t n, size_t concurrency,
                  size_t window, bool sign) {
    Result r;
    r.mode = mode;
    r.latencies_ms.resize(n);
    host::Services services(host::LogSettings{"warn", "text"});
    host::PluginRegistry registry;
    registry.discover({FOBS_BENCH_PLUGIN_DIR});
    auto plugin = registry.find("webhook");
    if (!plugin) throw std::runtime_error("webhook plugin not found in " FOBS_BENCH_PLUGIN_DIR);
    host::InstanceSpec spec;
    spec.component_name = "bench";
    spec.instance_name = "bench/webhook";
    spec.config_json = "{\"url\":\"" + url + "\",\"max_concurrency\":" + std::to_string(concurrency) +
                       (sign ? ",\"secret\":\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"" : "") + "}";
    host::ActionInstance action(plugin, spec, services);
    action.start();

    std::mutex mu;
    std::condition_variable cv;
    size_t outstanding = 0, done = 0;
    std::vector<Clock::time_point> t0(n);
    auto start = Clock::now();
    for (size_t i = 0; i < n; ++i) {
        if (window > 0) {
            std::unique_lock lk(mu);
            cv.wait(lk, [&] { return outstanding < window; });
        }
        host::EventData ev;
        ev.id = event_id(i);
        ev.entity_type = "Order";
        ev.operation = "INSERT";
        ev.entity_id = std::to_string(i);
        ev.body = event_body(i);
        {
            std::lock_guard lk(mu);
            ++outstanding;
        }
        t0[i] = Clock::now();
        action.execute(ev.view(), [&, i](const host::Outcome &o) {
            auto now = Clock::now();
            std::lock_guard lk(mu);
            r.latencies_ms[i] = std::chrono::duration<double, std::milli>(now - t0[i]).count();
            if (o.kind != FOBS_OUTCOME_OK) ++r.failures;
            --outstanding;
            ++done;
            cv.notify_all();
        });
    }
    {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return done == n; });
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    // Started with the action, so all of its CPU time is this run's (completions included).
    if (double t = thread_cpu_seconds("webhook"); t >= 0) r.thread_cpu_us = t / static_cast<double>(n) * 1e6;
    action.stop();
    r.requests = n;
    return r;
}

} // namespace

int main(int argc, char **argv) {
    size_t n = 20000, concurrency = 32;
    std::string only;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--requests")) n = std::stoul(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--concurrency")) concurrency = std::stoul(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--mode")) only = argv[i + 1];
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fobs_bench::BenchReceiver receiver;
    std::string url = "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook";

    std::vector<std::pair<std::string, std::function<Result()>>> modes = {
        {"curl-multi", [&] { return run_curl_multi(url, n, concurrency); }},
        {"plugin", [&] { return run_plugin("plugin", url, n, concurrency, concurrency, false); }},
        {"plugin-signed",
         [&] { return run_plugin("plugin-signed", url, n, concurrency, concurrency, true); }},
        {"plugin-open", [&] { return run_plugin("plugin-open", url, n, concurrency, 0, false); }},
        {"sequential", [&] { return run_sequential(url, std::min<size_t>(n, 5000)); }},
    };
    run_curl_multi(url, 2000, concurrency); // warm-up: connections, caches, CPU frequency

    std::printf("webhook delivery, %zu requests, concurrency %zu, ~%zu-byte events\n", n,
                concurrency, event_body(0).size());
    std::printf("%-14s %9s %8s %12s %9s %9s %9s %10s %10s %6s %10s\n", "mode", "requests",
                "seconds", "deliveries/s", "p50 ms", "p99 ms", "peak MB", "CPU us/req", "recv CPU%",
                "fails", "thread us");
    double limit = 0;
    std::vector<Result> results;
    for (auto &[name, m] : modes) {
        if (!only.empty() && only != name) continue;
        reset_peak_rss();
        uint64_t before = receiver.requests();
        double cpu0 = receiver.cpu_seconds();
        double proc0 = process_cpu_seconds();
        Result r = m();
        r.peak_rss_kb = peak_rss_kb();
        double recv_cpu = receiver.cpu_seconds() - cpu0;
        r.receiver_cpu = recv_cpu / r.seconds * 100.0;
        r.client_cpu_us = (process_cpu_seconds() - proc0 - recv_cpu) / r.requests * 1e6;
        if (receiver.requests() - before < r.requests) r.failures += r.requests - (receiver.requests() - before);
        double rate = static_cast<double>(r.requests) / r.seconds;
        if (r.mode == "curl-multi") limit = rate;
        std::printf("%-14s %9zu %8.2f %12.0f %9.3f %9.3f %9.1f %10.1f %10.0f %6zu",
                    r.mode.c_str(), r.requests, r.seconds, rate, percentile(r.latencies_ms, 0.5),
                    percentile(r.latencies_ms, 0.99), static_cast<double>(r.peak_rss_kb) / 1024.0,
                    r.client_cpu_us, r.receiver_cpu, r.failures);
        if (r.thread_cpu_us >= 0) std::printf(" %10.1f", r.thread_cpu_us);
        else std::printf(" %10s", "-");
        if (limit > 0 && r.mode != "curl-multi") std::printf("   %5.1f %% of curl-multi", rate / limit * 100);
        std::printf("\n");
        std::fflush(stdout);
        results.push_back(std::move(r));
    }
    for (auto &r : results)
        if (r.failures) return 1;
    return 0;
}
