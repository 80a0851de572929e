// The webhook action against real HTTP receivers on loopback: a Node.js receiver that verifies
// every request with the official Standard Webhooks library (tests/node/webhook_receiver.js),
// plain HTTP and TLS with a certificate made at test time.
#include "harness.hpp"
#include "process.hpp"
#include "webhook_receiver.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

namespace {

using fobs_test::Harness;
using fobs_test::make_event;
using fraiseql_observer::host::ActionInstance;
using fraiseql_observer::host::Outcome;
using json = nlohmann::json;
using namespace std::chrono_literals;

// The receiver knows these two secrets; the action signs with one of them unless a test says
// otherwise.
const std::string kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const std::string kRawSecret = "a plain shared secret, used as raw bytes";
const std::string kOtherSecret = "whsec_c2VjcmV0LXRoZS1yZWNlaXZlci1kb2VzLW5vdC1rbm93";

/// tests/node/webhook_receiver.js verifying with `secrets`, over HTTPS with a certificate.
class NodeReceiver : public fobs_test::WebhookReceiver {
  public:
    explicit NodeReceiver(std::vector<std::string> secrets, std::string tls_cert = {},
                          std::string tls_key = {})
        : WebhookReceiver(Options{std::move(secrets), std::move(tls_cert), std::move(tls_key), false}) {}
};

std::string config(const std::string &url, json extra = json::object()) {
    json c = {{"url", url}, {"secret", kSecret}};
    for (auto &[k, v] : extra.items()) c[k] = v;
    return c.dump();
}

std::string url_encode(const std::string &s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.') out.push_back(static_cast<char>(c));
        else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

class WebhookAction : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { receiver_ = new NodeReceiver({kSecret, kRawSecret}); }
    static void TearDownTestSuite() {
        delete receiver_;
        receiver_ = nullptr;
    }

    std::unique_ptr<ActionInstance> started(const std::string &cfg,
                                            const std::string &name = "test_webhook") {
        auto a = h_.action("webhook", cfg, name);
        a->start();
        return a;
    }
    Outcome run(ActionInstance &a, const std::string &id = "evt-1") {
        return a.execute_sync(make_event(id), 20000);
    }
    // Hands `n` events over at once and waits for all outcomes: how many were OK, and the
    // reason of the first that was not.
    struct Burst {
        int ok = 0, other = 0;
        std::string first_failure;
    };
    static Burst burst(ActionInstance &a, const std::string &prefix, int n) {
        std::mutex mu;
        std::condition_variable cv;
        Burst b;
        for (int i = 0; i < n; ++i) {
            auto ev = make_event(prefix + std::to_string(i));
            a.execute(ev.view(), [&](const Outcome &o) {
                std::lock_guard lk(mu);
                if (o.kind == FOBS_OUTCOME_OK) ++b.ok;
                else if (b.other++ == 0) b.first_failure = o.reason;
                cv.notify_all();
            });
        }
        std::unique_lock lk(mu);
        if (!cv.wait_for(lk, 60s, [&] { return b.ok + b.other == n; })) {
            ADD_FAILURE() << "outcomes missing: " << b.ok << " ok, " << b.other << " other of " << n;
            lk.unlock();
            a.stop(); // settles what is left while the counters above still exist
        }
        return b;
    }

    static NodeReceiver *receiver_;
    Harness h_;
};
NodeReceiver *WebhookAction::receiver_ = nullptr;

TEST_F(WebhookAction, signed_requests_verify_with_the_standardwebhooks_library) {
    auto before = receiver_->stats();
    auto a = started(config(receiver_->url("/ok"),
                            {{"fraiseql_signature", true}, {"headers", {{"X-Tenant", "acme"}}}}));
    for (int i = 0; i < 3; ++i) {
        auto o = run(*a, "sig-" + std::to_string(i));
        EXPECT_EQ(o.kind, FOBS_OUTCOME_OK) << o.reason;
    }
    auto after = receiver_->stats();
    EXPECT_EQ(after["verified"].get<int>() - before["verified"].get<int>(), 3);
    EXPECT_EQ(after["rejected"], before["rejected"]);
    EXPECT_EQ(after["fraiseql_verified"].get<int>() - before["fraiseql_verified"].get<int>(), 3);
    EXPECT_EQ(after["fraiseql_rejected"], before["fraiseql_rejected"]);

    const auto &last = after["last"];
    const auto &hd = last["headers"];
    auto event = make_event("sig-2");
    EXPECT_EQ(last["method"], "POST");
    EXPECT_EQ(last["body"], event.body);
    EXPECT_EQ(hd["content-type"], "application/json");
    EXPECT_EQ(hd["user-agent"].get<std::string>().rfind("fraiseql-observer/", 0), 0u);
    EXPECT_EQ(hd["idempotency-key"], "sig-2");
    EXPECT_EQ(hd["webhook-id"], "sig-2");
    EXPECT_EQ(hd["x-tenant"], "acme");
    // The timestamp is the host clock's unix seconds.
    long ts = std::stol(hd["webhook-timestamp"].get<std::string>());
    EXPECT_LE(std::labs(ts - static_cast<long>(std::time(nullptr))), 5);
    EXPECT_EQ(hd["webhook-signature"].get<std::string>().rfind("v1,", 0), 0u);
    EXPECT_EQ(hd["x-fraiseql-signature-256"].get<std::string>().rfind("t=" + std::to_string(ts) + ",v1=", 0), 0u);
}

TEST_F(WebhookAction, a_different_secret_is_rejected_by_the_receiver) {
    auto before = receiver_->stats();
    auto a = started(json({{"url", receiver_->url("/ok")}, {"secret", kOtherSecret}}).dump());
    auto o = run(*a);
    // The receiver answers 401, a permanent failure whose reason carries its body.
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED);
    EXPECT_NE(o.reason.find("401"), std::string::npos) << o.reason;
    EXPECT_NE(o.reason.find("No matching signature"), std::string::npos) << o.reason;
    auto after = receiver_->stats();
    EXPECT_EQ(after["rejected"].get<int>() - before["rejected"].get<int>(), 1);
    EXPECT_EQ(after["verified"], before["verified"]);
}

TEST_F(WebhookAction, unsigned_requests_are_rejected_by_a_verifying_receiver) {
    auto before = receiver_->stats();
    auto a = started(json({{"url", receiver_->url("/ok")}}).dump());
    auto o = run(*a);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED);
    EXPECT_NE(o.reason.find("Missing required headers"), std::string::npos) << o.reason;
    EXPECT_FALSE(receiver_->stats()["last"]["headers"].contains("webhook-signature"));
    EXPECT_EQ(receiver_->stats()["rejected"].get<int>() - before["rejected"].get<int>(), 1);
}

TEST_F(WebhookAction, rotation_sends_one_signature_per_secret) {
    auto before = receiver_->stats();
    // The receiver does not know the first secret; the second signature must carry it.
    auto a = started(json({{"url", receiver_->url("/ok")}, {"secret", {kOtherSecret, kSecret}}}).dump());
    auto o = run(*a);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_OK) << o.reason;
    auto after = receiver_->stats();
    EXPECT_EQ(after["verified"].get<int>() - before["verified"].get<int>(), 1);
    auto sig = after["last"]["headers"]["webhook-signature"].get<std::string>();
    auto space = sig.find(' ');
    ASSERT_NE(space, std::string::npos) << sig;
    EXPECT_EQ(sig.substr(space + 1).rfind("v1,", 0), 0u);
}

TEST_F(WebhookAction, a_plain_secret_signs_with_its_raw_bytes) {
    auto before = receiver_->stats();
    auto a = started(json({{"url", receiver_->url("/ok")},
                           {"secret", kRawSecret},
                           {"fraiseql_signature", true}})
                         .dump());
    EXPECT_EQ(run(*a).kind, FOBS_OUTCOME_OK);
    auto after = receiver_->stats();
    EXPECT_EQ(after["verified"].get<int>() - before["verified"].get<int>(), 1);
    EXPECT_EQ(after["fraiseql_verified"].get<int>() - before["fraiseql_verified"].get<int>(), 1);
}

TEST_F(WebhookAction, answers_200_and_204_are_ok) {
    auto a200 = started(config(receiver_->url("/ok")), "ok200");
    auto a204 = started(config(receiver_->url("/anything")), "ok204");
    EXPECT_EQ(run(*a200).kind, FOBS_OUTCOME_OK);
    EXPECT_EQ(run(*a204).kind, FOBS_OUTCOME_OK);
    EXPECT_EQ(h_.metric("webhook_responses_total", {{"action", "ok200"}, {"class", "2xx"}}), 1.0);
    EXPECT_EQ(h_.metric("webhook_responses_total", {{"action", "ok204"}, {"class", "2xx"}}), 1.0);
    EXPECT_EQ(h_.metric("webhook_request_duration_seconds", {{"action", "ok204"}}), 1.0);
}

TEST_F(WebhookAction, retries_on_503_with_retry_after_seconds) {
    auto a = started(config(receiver_->url("/status/503?retry_after=2&body=busy")), "busy");
    auto o = run(*a);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_EQ(o.retry_after_ms, 2000);
    EXPECT_NE(o.reason.find("503"), std::string::npos) << o.reason;
    EXPECT_EQ(h_.metric("webhook_responses_total", {{"action", "busy"}, {"class", "5xx"}}), 1.0);
}

TEST_F(WebhookAction, retries_on_503_with_retry_after_http_date) {
    char date[64];
    std::time_t when = std::time(nullptr) + 30;
    std::tm tm{};
    gmtime_r(&when, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    auto a = started(config(receiver_->url("/status/503?retry_after=" + url_encode(date))));
    auto o = run(*a);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_GE(o.retry_after_ms, 27000) << date;
    EXPECT_LE(o.retry_after_ms, 31000) << date;
}

TEST_F(WebhookAction, retries_on_429_408_and_500) {
    auto a429 = started(config(receiver_->url("/status/429?retry_after=7")), "a429");
    auto o = run(*a429);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_EQ(o.retry_after_ms, 7000);
    auto a408 = started(config(receiver_->url("/status/408")), "a408");
    o = run(*a408);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_EQ(o.retry_after_ms, -1); // no Retry-After: the transport's backoff decides
    auto a500 = started(config(receiver_->url("/status/500?retry_after=soon")), "a500");
    o = run(*a500);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_EQ(o.retry_after_ms, -1); // unparsable Retry-After is ignored
}

TEST_F(WebhookAction, fails_on_400_and_410_with_the_status_and_body_in_the_reason) {
    auto a400 = started(config(receiver_->url("/status/400?body=missing%20field%20total")), "a400");
    auto o = run(*a400);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED);
    EXPECT_NE(o.reason.find("HTTP 400"), std::string::npos) << o.reason;
    EXPECT_NE(o.reason.find("missing field total"), std::string::npos) << o.reason;
    auto a410 = started(config(receiver_->url("/status/410?body=gone")), "a410");
    o = run(*a410);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED);
    EXPECT_NE(o.reason.find("HTTP 410"), std::string::npos) << o.reason;
    EXPECT_EQ(h_.metric("webhook_responses_total", {{"action", "a410"}, {"class", "4xx"}}), 1.0);
}

TEST_F(WebhookAction, failure_reason_holds_a_bounded_body_excerpt) {
    std::string big(5000, 'x');
    auto a = started(config(receiver_->url("/status/422?body=" + big)));
    auto o = run(*a);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED);
    EXPECT_NE(o.reason.find("HTTP 422: xxxx"), std::string::npos);
    EXPECT_LE(o.reason.size(), 256u + 32u) << o.reason.size();
}

TEST_F(WebhookAction, redirect_fails_unless_follow_redirects) {
    auto before = receiver_->stats();
    auto plain = started(config(receiver_->url("/status/301?location=/ok")), "plain");
    auto o = run(*plain);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED);
    EXPECT_NE(o.reason.find("301"), std::string::npos) << o.reason;
    EXPECT_EQ(receiver_->stats()["by_path"].value("/ok", 0), before["by_path"].value("/ok", 0));

    auto follow = started(config(receiver_->url("/status/301?location=/ok"),
                                 {{"follow_redirects", true}}),
                          "follow");
    o = run(*follow, "redirected-1");
    EXPECT_EQ(o.kind, FOBS_OUTCOME_OK) << o.reason;
    auto after = receiver_->stats();
    EXPECT_EQ(after["by_path"].value("/ok", 0), before["by_path"].value("/ok", 0) + 1);
    // The event itself reached the new location: same method, body and signature.
    EXPECT_EQ(after["last"]["path"], "/ok");
    EXPECT_EQ(after["last"]["method"], "POST");
    EXPECT_EQ(after["last"]["body"], make_event("redirected-1").body);
    // Verified: the refused 301, then the followed 301 and the request at its target.
    EXPECT_EQ(after["verified"].get<int>() - before["verified"].get<int>(), 3);
    // Later requests (on the same reused curl handle) start at the configured URL again, not
    // at the last redirect's target.
    for (const char *id : {"redirected-2", "redirected-3"}) {
        o = run(*follow, id);
        EXPECT_EQ(o.kind, FOBS_OUTCOME_OK) << o.reason;
    }
    auto last = receiver_->stats();
    EXPECT_EQ(last["by_path"].value("/status/301", 0), after["by_path"].value("/status/301", 0) + 2);
    EXPECT_EQ(last["by_path"].value("/ok", 0), after["by_path"].value("/ok", 0) + 2);
}

TEST_F(WebhookAction, connection_refused_is_retried) {
    int port = fobs_test::free_port(); // nothing listens there
    auto a = started(config("http://127.0.0.1:" + std::to_string(port) + "/hook"), "refused");
    auto o = run(*a);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_NE(o.reason.find("onnect"), std::string::npos) << o.reason;
    EXPECT_EQ(h_.metric("webhook_responses_total", {{"action", "refused"}, {"class", "error"}}), 1.0);
}

TEST_F(WebhookAction, a_receiver_that_never_answers_times_out_and_is_retried) {
    auto a = started(config(receiver_->url("/hang"), {{"timeout_ms", 300}}));
    auto t0 = std::chrono::steady_clock::now();
    auto o = run(*a);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_NE(o.reason.find("imeout"), std::string::npos) << o.reason;
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 3s);
}

TEST_F(WebhookAction, ready_only_while_started) {
    auto a = h_.action("webhook", config(receiver_->url("/ok")));
    std::string why;
    EXPECT_FALSE(a->ready(why));
    a->start();
    EXPECT_TRUE(a->ready(why)) << why;
    a->stop();
    EXPECT_FALSE(a->ready(why));
    // After stop, work is handed back for redelivery, never dropped.
    auto o = run(*a);
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
}

TEST_F(WebhookAction, stop_settles_requests_in_flight) {
    auto a = started(config(receiver_->url("/delay/300")));
    std::mutex mu;
    std::condition_variable cv;
    int ok = 0, other = 0;
    for (int i = 0; i < 10; ++i) {
        auto ev = make_event("inflight-" + std::to_string(i));
        a->execute(ev.view(), [&](const Outcome &o) {
            std::lock_guard lk(mu);
            (o.kind == FOBS_OUTCOME_OK ? ok : other)++;
            cv.notify_all();
        });
    }
    std::this_thread::sleep_for(100ms); // the requests are on the wire
    a->stop();
    std::unique_lock lk(mu);
    // Every token was completed by the time stop() returned.
    EXPECT_EQ(ok + other, 10);
    EXPECT_EQ(ok, 10);
}

TEST_F(WebhookAction, many_events_never_exceed_max_concurrency) {
    NodeReceiver receiver({kSecret});
    // 200 ms per answer: the first 64 requests are all open long before the first answer, even
    // on a loaded machine (at 20 ms, a busy CI host once reached only 31 at the same time).
    auto a = started(config(receiver.url("/delay/200"), {{"max_concurrency", 64}}));
    constexpr int n = 300;
    Burst b = burst(*a, "burst-", n);
    EXPECT_EQ(b.ok, n) << b.first_failure;
    ASSERT_TRUE(fobs_test::eventually([&] { return receiver.stats().value("requests", 0) == n; }, 5s));
    auto s = receiver.stats();
    EXPECT_EQ(s["distinct_ids"], n);
    EXPECT_EQ(s["verified"], n);
    EXPECT_LE(s["peak_in_flight"].get<int>(), 64);
    // The limit is reached, not just respected: requests really run side by side.
    EXPECT_GE(s["peak_in_flight"].get<int>(), 32);
}

// Every answer closes its connection: curl opens a new socket per request, so sockets come and
// go (and their numbers are reused) all the time in the action's event loop.
TEST_F(WebhookAction, a_receiver_that_closes_every_connection_gets_every_event) {
    NodeReceiver receiver({kSecret});
    auto a = started(config(receiver.url("/close"), {{"max_concurrency", 8}}));
    constexpr int n = 300;
    Burst b = burst(*a, "close-", n);
    EXPECT_EQ(b.ok, n) << b.first_failure;
    ASSERT_TRUE(fobs_test::eventually([&] { return receiver.stats().value("distinct_ids", 0) == n; }, 5s));
}

class WebhookTls : public ::testing::Test {
  protected:
    void SetUp() override {
        auto [rc, out] = fobs_test::run_command(
            {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
             "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
             (dir_ / "key.pem").string(), "-out", (dir_ / "cert.pem").string()});
        ASSERT_EQ(rc, 0) << out;
        receiver_ = std::make_unique<NodeReceiver>(std::vector<std::string>{kSecret},
                                                   (dir_ / "cert.pem").string(),
                                                   (dir_ / "key.pem").string());
    }
    fobs_test::TempDir dir_{"fobs-webhook-tls"};
    std::unique_ptr<NodeReceiver> receiver_;
    Harness h_;
};

TEST_F(WebhookTls, self_signed_certificate_is_refused_by_default) {
    auto a = h_.action("webhook", config(receiver_->url("/ok", true)));
    a->start();
    auto o = a->execute_sync(make_event("tls-1"));
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_NE(o.reason.find("certificate"), std::string::npos) << o.reason;
    EXPECT_EQ(receiver_->stats()["requests"], 0);
}

TEST_F(WebhookTls, self_signed_certificate_is_accepted_with_tls_ca_file) {
    auto a = h_.action("webhook", config(receiver_->url("/ok", true),
                                         {{"tls_ca_file", (dir_ / "cert.pem").string()}}));
    a->start();
    for (int i = 0; i < 3; ++i) {
        auto o = a->execute_sync(make_event("tls-ok-" + std::to_string(i)));
        EXPECT_EQ(o.kind, FOBS_OUTCOME_OK) << o.reason;
    }
    auto s = receiver_->stats();
    EXPECT_EQ(s["verified"], 3);
}

} // namespace
