#include "metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace fraiseql_observer::host;

TEST(Metrics, counter_gauge_and_histogram_exposition) {
    MetricsRegistry r;
    auto *c = r.series(MetricType::counter, "events_processed_total", "Processed",
                       {{"pipeline", "orders"}, {"action", "hook"}});
    ASSERT_NE(c, nullptr);
    c->add(3);
    c->add(-1); // counters never go down
    auto *g = r.series(MetricType::gauge, "consumer_pending", "Pending", {{"pipeline", "orders"}});
    g->set(7);
    g->add(-2);
    auto *h = r.series(MetricType::histogram, "processing_duration_seconds", "Latency",
                       {{"pipeline", "orders"}});
    h->observe(0.0004);
    h->observe(0.2);
    h->observe(100);
    std::string text = r.exposition();
    EXPECT_NE(text.find("# TYPE fraiseql_observer_events_processed_total counter\n"), std::string::npos);
    EXPECT_NE(text.find("fraiseql_observer_events_processed_total{pipeline=\"orders\",action=\"hook\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("fraiseql_observer_consumer_pending{pipeline=\"orders\"} 5\n"), std::string::npos);
    EXPECT_NE(text.find("fraiseql_observer_processing_duration_seconds_bucket{pipeline=\"orders\",le=\"0.0005\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("fraiseql_observer_processing_duration_seconds_bucket{pipeline=\"orders\",le=\"0.25\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("fraiseql_observer_processing_duration_seconds_bucket{pipeline=\"orders\",le=\"60\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("fraiseql_observer_processing_duration_seconds_bucket{pipeline=\"orders\",le=\"+Inf\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("fraiseql_observer_processing_duration_seconds_count{pipeline=\"orders\"} 3\n"), std::string::npos);
}

TEST(Metrics, same_arguments_return_the_same_series_and_conflicts_are_refused) {
    MetricsRegistry r;
    auto *a = r.series(MetricType::counter, "x_total", "", {{"pipeline", "p"}});
    EXPECT_EQ(a, r.series(MetricType::counter, "fraiseql_observer_x_total", "", {{"pipeline", "p"}}));
    std::string err;
    EXPECT_EQ(r.series(MetricType::gauge, "x_total", "", {{"pipeline", "p"}}, {}, &err), nullptr);
    EXPECT_NE(err.find("another type"), std::string::npos);
    EXPECT_EQ(r.series(MetricType::counter, "x_total", "", {{"transport", "p"}}, {}, &err), nullptr);
    EXPECT_NE(err.find("label names"), std::string::npos);
    EXPECT_EQ(r.series(MetricType::counter, "bad-name", "", {}, {}, &err), nullptr);
    EXPECT_EQ(r.series(MetricType::histogram, "h", "", {}, {1, 0.5}, &err), nullptr);
}

TEST(Metrics, label_values_are_escaped) {
    MetricsRegistry r;
    r.series(MetricType::counter, "e_total", "help with \\ and\nnewline", {{"pipeline", "a\"b\\c\nd"}})->add(1);
    std::string text = r.exposition();
    EXPECT_NE(text.find("fraiseql_observer_e_total{pipeline=\"a\\\"b\\\\c\\nd\"} 1"), std::string::npos) << text;
    EXPECT_NE(text.find("# HELP fraiseql_observer_e_total help with \\\\ and\\nnewline"), std::string::npos);
}

TEST(Metrics, concurrent_updates_are_not_lost) {
    MetricsRegistry r;
    auto *c = r.series(MetricType::counter, "n_total", "", {});
    auto *h = r.series(MetricType::histogram, "d_seconds", "", {});
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) {
                c->add(1);
                h->observe(0.001);
            }
        });
    for (auto &t : ts) t.join();
    EXPECT_EQ(c->value(), 40000);
    EXPECT_EQ(h->count(), 40000u);
}
