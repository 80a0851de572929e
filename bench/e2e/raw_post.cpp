// `raw-post`: the raw HTTP stage — one thread, one curl multi handle, `concurrency` kept-alive
// easy handles POSTing event bodies to the same receiver the contenders use. The receiver's
// counters confirm every POST arrived, and its CPU time per request shows its own capacity.
#include "common.hpp"
#include "receiver_client.hpp"
#include "subcommands.hpp"

#include <curl/curl.h>

#include <ctime>
#include <stdexcept>
#include <string>
#include <vector>

namespace fobs_bench {
namespace {

size_t discard(char *, size_t size, size_t n, void *) { return size * n; }

std::string iso_now() {
    int64_t us = wall_us();
    std::time_t secs = static_cast<std::time_t>(us / 1000000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%06dZ", static_cast<int>(us % 1000000));
    return buf;
}

struct Slot {
    CURL *easy = nullptr;
    std::string body;
    curl_slist *headers = nullptr;
};

} // namespace

int run_raw_post(const Args &args) {
    const int port = static_cast<int>(args.num("receiver-port", 0));
    const int64_t events = args.num("events", 50000);
    const int concurrency = static_cast<int>(args.num("concurrency", 32));
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    receiver_reset(port);
    const ReceiverStats before = receiver_stats(port);

    CURLM *multi = curl_multi_init();
    std::vector<Slot> slots(static_cast<size_t>(concurrency));
    int64_t next = 0, done = 0, failed = 0;
    auto start = [&](Slot &s) {
        s.body = "{\"id\":\"post-" + std::to_string(next) + "\",\"entity_type\":\"Order\",\"operation\":\"INSERT\","
                 "\"entity_id\":\"" + std::to_string(next) + "\",\"timestamp\":\"" + iso_now() +
                 "\",\"txid\":812345,\"entity\":{\"id\":" + std::to_string(next) + ",\"customer\":\"customer-" +
                 std::to_string(next) + "\",\"status\":\"pending\",\"total\":42.5,\"note\":\"fraiseql-observer "
                 "bench\"},\"changes\":null,\"source\":\"db\"}";
        curl_easy_setopt(s.easy, CURLOPT_POSTFIELDS, s.body.c_str());
        curl_easy_setopt(s.easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(s.body.size()));
        curl_multi_add_handle(multi, s.easy);
        ++next;
    };
    for (auto &s : slots) {
        s.easy = curl_easy_init();
        s.headers = curl_slist_append(nullptr, "Content-Type: application/json");
        curl_easy_setopt(s.easy, CURLOPT_URL, url.c_str());
        curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, s.headers);
        curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(s.easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s.easy, CURLOPT_PRIVATE, &s);
    }
    const int64_t t0 = mono_us();
    for (auto &s : slots)
        if (next < events) start(s);
    int running = 0;
    while (done < events) {
        curl_multi_perform(multi, &running);
        int left = 0;
        while (CURLMsg *m = curl_multi_info_read(multi, &left)) {
            if (m->msg != CURLMSG_DONE) continue;
            long code = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (m->data.result != CURLE_OK || code / 100 != 2) ++failed;
            ++done;
            Slot *s = nullptr;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char **>(&s));
            curl_multi_remove_handle(multi, m->easy_handle);
            if (next < events) start(*s);
        }
        if (done < events) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    const int64_t t1 = mono_us();
    for (auto &s : slots) {
        curl_easy_cleanup(s.easy);
        curl_slist_free_all(s.headers);
    }
    curl_multi_cleanup(multi);
    const ReceiverStats after = receiver_stats(port);

    Result r;
    r.label = args.str("label", "raw curl multi POST");
    r.kind = args.str("kind", "raw:post");
    r.events = events;
    const double secs = (t1 - t0) / 1e6;
    r.rate = (done - failed) / secs;
    r.lost = events - after.distinct;
    r.duplicates = after.duplicates;
    if (after.p50_us >= 0) {
        r.p50_ms = after.p50_us / 1000.0;
        r.p99_ms = after.p99_us / 1000.0;
        r.max_ms = after.max_us / 1000.0;
    }
    r.receiver_busy = (after.cpu_s - before.cpu_s) / secs;
    const double cpu_per_req = (after.cpu_s - before.cpu_s) / static_cast<double>(after.requests);
    r.note = args.str("note", "");
    if (cpu_per_req > 0) {
        r.note += (r.note.empty() ? "" : "; ") + std::string("receiver capacity ~") +
                  std::to_string(static_cast<int64_t>(1.0 / cpu_per_req / 1000)) + " k/s (its CPU per request)";
    }
    if (failed) r.note += "; " + std::to_string(failed) + " failed";
    emit_result(r, args.str("results", ""));
    return 0;
}

} // namespace fobs_bench
