// `fraiseql-observer top`'s pure parts: the Prometheus text parser, the histogram quantile, the
// per-pipeline summary of a scrape, rates between two scrapes and the 80-column frame.
#include "metrics.hpp"
#include "top.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace fraiseql_observer::host;

TEST(TopParse, reads_names_labels_values_and_skips_comments) {
    auto s = parse_metrics_text("# HELP x_total help text\n"
                                "# TYPE x_total counter\n"
                                "\n"
                                "x_total{pipeline=\"orders\",action=\"sink\"} 42\n"
                                "y 1.5e3 1700000000000\n"
                                "z{a=\"q\\\"uo,te\\\\\",b=\"line\\nbreak\",} +Inf\n"
                                "w NaN\r\n"
                                "v -Inf\n");
    ASSERT_EQ(s.size(), 5u);
    EXPECT_EQ(s[0].name, "x_total");
    EXPECT_EQ(s[0].label("pipeline"), "orders");
    EXPECT_EQ(s[0].label("action"), "sink");
    EXPECT_EQ(s[0].label("absent"), "");
    EXPECT_EQ(s[0].value, 42);
    EXPECT_EQ(s[1].name, "y");
    EXPECT_EQ(s[1].value, 1500); // the timestamp is not the value
    EXPECT_EQ(s[2].label("a"), "q\"uo,te\\");
    EXPECT_EQ(s[2].label("b"), "line\nbreak");
    EXPECT_TRUE(std::isinf(s[2].value) && s[2].value > 0);
    EXPECT_TRUE(std::isnan(s[3].value));
    EXPECT_TRUE(std::isinf(s[4].value) && s[4].value < 0);
}

TEST(TopParse, skips_malformed_lines_and_keeps_the_rest) {
    auto s = parse_metrics_text("good 1\n"
                                "{no_name=\"x\"} 1\n"
                                "bad{unterminated=\"x} 2\n"
                                "bad{novalue=\"x\"}\n"
                                "bad 12abc\n"
                                "also_good{l=\"v\"} 3\n");
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].name, "good");
    EXPECT_EQ(s[1].name, "also_good");
    EXPECT_EQ(s[1].value, 3);
}

TEST(TopParse, reads_the_hosts_own_exposition) {
    MetricsRegistry reg;
    reg.series(MetricType::counter, "events_processed_total", "h", {{"pipeline", "p \"1\""}, {"action", "a"}})->add(7);
    auto *h = reg.series(MetricType::histogram, "processing_duration_seconds", "h", {{"pipeline", "p \"1\""}, {"action", "a"}});
    h->observe(0.003);
    auto snap = summarize_metrics(parse_metrics_text(reg.exposition()));
    ASSERT_EQ(snap.pipelines.count("p \"1\""), 1u);
    const auto &p = snap.pipelines.at("p \"1\"");
    EXPECT_EQ(p.processed, 7);
    EXPECT_EQ(p.buckets.size(), default_latency_buckets().size() + 1);
    EXPECT_EQ(p.buckets.at(0.0025), 0);
    EXPECT_EQ(p.buckets.at(0.005), 1);
    EXPECT_EQ(p.buckets.at(HUGE_VAL), 1);
}

TEST(TopQuantile, interpolates_inside_the_bucket_like_prometheus) {
    // 100 observations: 10 <= 0.1, 50 <= 0.2 (40 in (0.1, 0.2]), 100 <= 0.4.
    std::vector<std::pair<double, double>> b = {{0.1, 10}, {0.2, 50}, {0.4, 100}, {HUGE_VAL, 100}};
    // rank 50 is the last of the second bucket: its upper bound.
    EXPECT_DOUBLE_EQ(*bucket_quantile(0.5, b), 0.2);
    // rank 30: 20 of the 40 in (0.1, 0.2] -> halfway.
    EXPECT_DOUBLE_EQ(*bucket_quantile(0.3, b), 0.15);
    // rank 99: 49 of the 50 in (0.2, 0.4].
    EXPECT_NEAR(*bucket_quantile(0.99, b), 0.2 + 0.2 * 49.0 / 50.0, 1e-12);
    // rank 5 in the first bucket: from 0 to 0.1.
    EXPECT_DOUBLE_EQ(*bucket_quantile(0.05, b), 0.05);
}

TEST(TopQuantile, rank_in_the_inf_bucket_is_the_highest_finite_bound) {
    std::vector<std::pair<double, double>> b = {{1, 1}, {60, 2}, {HUGE_VAL, 10}};
    EXPECT_DOUBLE_EQ(*bucket_quantile(0.99, b), 60);
}

TEST(TopQuantile, no_observations_or_no_inf_bucket_is_no_answer) {
    EXPECT_FALSE(bucket_quantile(0.5, {{0.1, 0}, {HUGE_VAL, 0}}));
    EXPECT_FALSE(bucket_quantile(0.5, {{0.1, 3}, {0.2, 5}}));
    EXPECT_FALSE(bucket_quantile(0.5, {}));
}

namespace {

std::string scrape(double in, double processed, double failed, double retried, double fast, double slow,
                   bool parked = false) {
    auto n = [](double v) { return std::to_string(v); };
    std::string t = "fraiseql_observer_ready 1\n"
                    "fraiseql_observer_source_events_total{pipeline=\"orders\",source=\"pg\"} " + n(in) + "\n"
                    "fraiseql_observer_events_processed_total{pipeline=\"orders\",action=\"hook\"} " + n(processed) + "\n"
                    "fraiseql_observer_events_processed_total{pipeline=\"orders\",action=\"log\"} " + n(processed) + "\n"
                    "fraiseql_observer_events_failed_total{pipeline=\"orders\",action=\"hook\"} " + n(failed) + "\n"
                    "fraiseql_observer_events_retried_total{pipeline=\"orders\",action=\"hook\"} " + n(retried) + "\n"
                    "fraiseql_observer_events_dead_lettered_total{pipeline=\"orders\"} 4\n"
                    "fraiseql_observer_consumer_pending{pipeline=\"orders\"} 17\n"
                    "fraiseql_observer_outbox_backlog{source=\"pg\"} 250\n"
                    "fraiseql_observer_consumer_pending{pipeline=\"audit\"} 0\n"
                    "fraiseql_observer_cdc_slot_lag_bytes{source=\"cdc\",slot=\"s\"} 3221225472\n"
                    "fraiseql_observer_source_events_total{pipeline=\"audit\",source=\"cdc\"} 0\n";
    // Two actions' histograms: "hook" has the fast observations, "log" the slow ones.
    t += "fraiseql_observer_processing_duration_seconds_bucket{pipeline=\"orders\",action=\"hook\",le=\"0.001\"} " + n(fast) + "\n"
         "fraiseql_observer_processing_duration_seconds_bucket{pipeline=\"orders\",action=\"hook\",le=\"0.1\"} " + n(fast) + "\n"
         "fraiseql_observer_processing_duration_seconds_bucket{pipeline=\"orders\",action=\"hook\",le=\"+Inf\"} " + n(fast) + "\n"
         "fraiseql_observer_processing_duration_seconds_bucket{pipeline=\"orders\",action=\"log\",le=\"0.001\"} 0\n"
         "fraiseql_observer_processing_duration_seconds_bucket{pipeline=\"orders\",action=\"log\",le=\"0.1\"} " + n(slow) + "\n"
         "fraiseql_observer_processing_duration_seconds_bucket{pipeline=\"orders\",action=\"log\",le=\"+Inf\"} " + n(slow) + "\n";
    if (parked) t += "fraiseql_observer_events_parked{pipeline=\"orders\",action=\"hook\"} 2\n";
    t += "fraiseql_observer_dlq_depth{transport=\"default\"} 3\n";
    return t;
}

} // namespace

TEST(TopRows, summarizes_per_pipeline_with_the_sources_backlog_and_slot_lag) {
    auto snap = summarize_metrics(parse_metrics_text(scrape(10, 5, 1, 2, 3, 0)));
    ASSERT_TRUE(snap.ready && *snap.ready);
    ASSERT_EQ(snap.pipelines.size(), 2u);
    const auto &o = snap.pipelines.at("orders");
    EXPECT_TRUE(o.has_source);
    EXPECT_EQ(o.source_events, 10);
    EXPECT_EQ(o.processed, 10); // both actions
    EXPECT_EQ(o.dead_lettered, 4);
    EXPECT_EQ(o.pending, 17);
    EXPECT_EQ(o.backlog, 250);
    EXPECT_FALSE(o.slot_lag);
    EXPECT_FALSE(o.parked); // the instance exports no such series
    const auto &a = snap.pipelines.at("audit");
    EXPECT_EQ(a.slot_lag, 3221225472.0);
    EXPECT_FALSE(a.backlog);
    // The DLQ's depth is the transport's: not a pipeline row.
    EXPECT_EQ(snap.dlq_depth, (std::map<std::string, double>{{"default", 3}}));
}

TEST(TopRows, rates_and_quantiles_cover_only_the_interval) {
    // Before: 100 fast observations. During the 2 s interval: 0 fast, 10 slow ones.
    auto before = summarize_metrics(parse_metrics_text(scrape(100, 50, 3, 1, 100, 0)));
    auto after = summarize_metrics(parse_metrics_text(scrape(140, 70, 5, 7, 100, 10, true)));
    auto rows = pipeline_rows(&before, after, 2.0);
    ASSERT_EQ(rows.size(), 2u);
    const auto &o = rows[1];
    ASSERT_EQ(o.name, "orders");
    EXPECT_DOUBLE_EQ(*o.in_rate, 20);
    EXPECT_DOUBLE_EQ(*o.out_rate, 20); // 2 actions x 20 executions / 2 s
    EXPECT_DOUBLE_EQ(*o.fail_rate, 1);
    EXPECT_DOUBLE_EQ(*o.retry_rate, 3);
    // Only this interval's observations, all in (0.001, 0.1]: p50 halfway through that bucket.
    EXPECT_NEAR(*o.p50, 0.001 + 0.099 * 0.5, 1e-12);
    EXPECT_EQ(o.parked, 2);
    EXPECT_EQ(o.dead_lettered, 4);
}

TEST(TopRows, first_scrape_and_idle_interval_have_no_quantiles) {
    auto one = summarize_metrics(parse_metrics_text(scrape(1, 1, 0, 0, 1, 0)));
    auto first = pipeline_rows(nullptr, one, 0);
    EXPECT_FALSE(first[1].in_rate);
    EXPECT_FALSE(first[1].p99);
    auto idle = pipeline_rows(&one, one, 1.0);
    EXPECT_DOUBLE_EQ(*idle[1].in_rate, 0);
    EXPECT_FALSE(idle[1].p50); // nothing observed in the interval
}

TEST(TopRows, a_restarted_instance_counts_from_zero) {
    auto before = summarize_metrics(parse_metrics_text(scrape(1000, 900, 0, 0, 900, 0)));
    auto after = summarize_metrics(parse_metrics_text(scrape(30, 10, 0, 0, 10, 0)));
    auto rows = pipeline_rows(&before, after, 1.0);
    EXPECT_DOUBLE_EQ(*rows[1].in_rate, 30);
    EXPECT_DOUBLE_EQ(*rows[1].out_rate, 20);
    EXPECT_NEAR(*rows[1].p50, 0.0005, 1e-12); // the 10 fast ones since the restart
}

TEST(TopFrame, fits_80_columns_and_shows_the_numbers) {
    auto before = summarize_metrics(parse_metrics_text(scrape(100, 50, 3, 1, 100, 0)));
    auto after = summarize_metrics(parse_metrics_text(scrape(12445, 12395, 5, 7, 12445, 0)));
    FrameInfo info{"http://127.0.0.1:9464", "10:00:00", true, "", true, after.dlq_depth};
    auto lines = render_frame(info, pipeline_rows(&before, after, 1.0), 80);
    std::string all;
    for (const auto &l : lines) {
        EXPECT_LE(l.size(), 79u) << l;
        all += l + "\n";
    }
    EXPECT_NE(all.find("READY"), std::string::npos) << all;
    EXPECT_NE(all.find("(q quits)"), std::string::npos) << all;
    // orders: 12345 in/s, 250 backlog rows, 17 pending, fast actions (< 1 ms).
    EXPECT_NE(all.find("orders"), std::string::npos) << all;
    EXPECT_NE(all.find("  12k"), std::string::npos) << all;
    EXPECT_NE(all.find("500us"), std::string::npos) << all;
    EXPECT_NE(all.find(" 250"), std::string::npos) << all;
    // audit: the slot lag in bytes, 3 GiB.
    EXPECT_NE(all.find("3.0GiB"), std::string::npos) << all;
    EXPECT_NE(all.find("DLQ now:  default 3\n"), std::string::npos) << all;
}

TEST(TopFrame, hostile_names_cannot_reach_the_terminal_and_narrow_terminals_truncate) {
    PipelineRow r;
    r.name = "evil\x1b[2Jname-that-is-long";
    FrameInfo info{"http://h:1\x1b]0;x\x07", "10:00:00", std::nullopt, "boom\n", false};
    auto lines = render_frame(info, {r}, 40);
    for (const auto &l : lines) {
        EXPECT_LE(l.size(), 40u);
        for (char c : l) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "control character in: " << l;
    }
    EXPECT_EQ(lines[3].substr(0, 11), "evil?[2Jna~");
}
