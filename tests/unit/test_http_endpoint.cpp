#include "http_endpoint.hpp"
#include "metrics.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <string>

using namespace fraiseql_observer::host;

namespace {

std::string get(int port, const char *path, int *status = nullptr) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(5, 0);
    auto res = c.Get(path);
    if (!res) return "<no response>";
    if (status) *status = res->status;
    return res->body;
}

} // namespace

// The alert rules page on fraiseql_observer_ready; it must follow /readyz scrape by scrape.
TEST(HttpEndpoint, ready_gauge_follows_readiness_at_scrape_time) {
    MetricsRegistry metrics;
    std::atomic<bool> ready{false};
    HttpEndpoint http("127.0.0.1:0", metrics, [&ready] {
        Readiness r;
        r.ready = ready.load();
        r.json = r.ready ? "{\"ready\":true}" : "{\"ready\":false}";
        return r;
    });
    http.start();
    ASSERT_GT(http.port(), 0);

    std::string text = get(http.port(), "/metrics");
    EXPECT_NE(text.find("# TYPE fraiseql_observer_ready gauge\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\nfraiseql_observer_ready 0\n"), std::string::npos) << text;
    int status = 0;
    get(http.port(), "/readyz", &status);
    EXPECT_EQ(status, 503);

    ready = true;
    text = get(http.port(), "/metrics");
    EXPECT_NE(text.find("\nfraiseql_observer_ready 1\n"), std::string::npos) << text;
    get(http.port(), "/readyz", &status);
    EXPECT_EQ(status, 200);

    ready = false;
    text = get(http.port(), "/metrics");
    EXPECT_NE(text.find("\nfraiseql_observer_ready 0\n"), std::string::npos) << text;
    http.stop();
}
