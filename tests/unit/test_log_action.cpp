// The `log` action through the real host loader: output goes through the host logger, and the
// failure knobs produce the documented outcomes. Also run behind the memory transport, the way
// a demo pipeline uses the pair.
#include "harness.hpp"
#include "process.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace {

namespace host = fraiseql_observer::host;
namespace sdk = fraiseql_observer::sdk;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

host::EventData event(const std::string &id, uint32_t delivery_count = 1,
                      const std::string &entity_type = "Order") {
    auto e = fobs_test::make_event(id, entity_type, "INSERT", "ent-" + id);
    e.delivery_count = delivery_count;
    return e;
}

class LogAction : public ::testing::Test {
  protected:
    fobs_test::Harness h;
    std::unique_ptr<host::ActionInstance> make(const std::string &config = "{}") {
        auto a = h.action("log", config, "audit_log");
        a->start();
        return a;
    }
    // The captured log lines that mention `needle`.
    std::vector<std::string> lines_with(const std::string &needle) {
        std::vector<std::string> r;
        for (const auto &l : h.services().captured_logs())
            if (l.find(needle) != std::string::npos) r.push_back(l);
        return r;
    }
};

TEST_F(LogAction, writes_a_summary_line_through_the_host_logger_not_stdout) {
    auto a = make();
    testing::internal::CaptureStdout();
    auto o = a->execute_sync(event("evt-summary-1"));
    const std::string out = testing::internal::GetCapturedStdout();
    EXPECT_EQ(o.kind, FOBS_OUTCOME_OK);
    EXPECT_EQ(out.find("evt-summary-1"), std::string::npos) << out;
    auto lines = lines_with("evt-summary-1");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("info"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("[test/audit_log]"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("Order.INSERT"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("entity_id=ent-evt-summary-1"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(" id=evt-summary-1"), std::string::npos) << lines[0];
}

TEST_F(LogAction, body_format_writes_the_whole_event_json_at_the_configured_level) {
    auto a = make(R"({"format": "body", "level": "warn"})");
    auto e = event("evt-body-1");
    EXPECT_EQ(a->execute_sync(e).kind, FOBS_OUTCOME_OK);
    auto lines = lines_with(e.body);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("warn"), std::string::npos) << lines[0];
}

TEST_F(LogAction, fail_every_fails_every_nth_execution_with_retry_and_the_configured_delay) {
    auto a = make(R"({"fail_every": 3, "retry_after_ms": 250})");
    std::vector<fobs_outcome_kind> kinds;
    for (int i = 1; i <= 6; ++i) {
        auto o = a->execute_sync(event("evt-every-" + std::to_string(i)));
        kinds.push_back(o.kind);
        if (o.kind == FOBS_OUTCOME_RETRY) {
            EXPECT_EQ(o.retry_after_ms, 250);
            EXPECT_NE(o.reason.find("fail_every"), std::string::npos) << o.reason;
        }
    }
    EXPECT_EQ(kinds, (std::vector<fobs_outcome_kind>{FOBS_OUTCOME_OK, FOBS_OUTCOME_OK,
                                                     FOBS_OUTCOME_RETRY, FOBS_OUTCOME_OK,
                                                     FOBS_OUTCOME_OK, FOBS_OUTCOME_RETRY}));
    // The failing executions are logged too, saying why.
    auto lines = lines_with("evt-every-3");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("retry on purpose"), std::string::npos) << lines[0];
}

TEST_F(LogAction, fail_mode_failed_makes_the_failures_permanent) {
    auto a = make(R"({"fail_every": 2, "fail_mode": "failed"})");
    EXPECT_EQ(a->execute_sync(event("evt-mode-1")).kind, FOBS_OUTCOME_OK);
    auto o = a->execute_sync(event("evt-mode-2"));
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED);
    EXPECT_NE(o.reason.find("fail_every"), std::string::npos);
}

TEST_F(LogAction, retry_after_defaults_to_minus_one) {
    auto a = make(R"({"fail_every": 1})");
    auto o = a->execute_sync(event("evt-default-delay"));
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_EQ(o.retry_after_ms, -1);
}

TEST_F(LogAction, fail_first_deliveries_retries_until_the_delivery_count_passes_n) {
    auto a = make(R"({"fail_first_deliveries": 2})");
    EXPECT_EQ(a->execute_sync(event("evt-first", 1)).kind, FOBS_OUTCOME_RETRY);
    EXPECT_EQ(a->execute_sync(event("evt-first", 2)).kind, FOBS_OUTCOME_RETRY);
    EXPECT_EQ(a->execute_sync(event("evt-first", 3)).kind, FOBS_OUTCOME_OK);
    // delivery_count 0 means "unknown": the knob does not apply.
    EXPECT_EQ(a->execute_sync(event("evt-first-unknown", 0)).kind, FOBS_OUTCOME_OK);
}

TEST_F(LogAction, fail_entity_types_fail_permanently_for_those_types_only) {
    auto a = make(R"({"fail_entity_types": ["Payment", "Refund"]})");
    auto o = a->execute_sync(event("evt-pay", 1, "Payment"));
    EXPECT_EQ(o.kind, FOBS_OUTCOME_FAILED);
    EXPECT_NE(o.reason.find("Payment"), std::string::npos) << o.reason;
    EXPECT_EQ(a->execute_sync(event("evt-order", 1, "Order")).kind, FOBS_OUTCOME_OK);
}

TEST_F(LogAction, delay_ms_delays_completion_and_stop_cuts_it_short_with_retry) {
    auto a = make(R"({"delay_ms": 200})");
    auto start = Clock::now();
    EXPECT_EQ(a->execute_sync(event("evt-slow-1")).kind, FOBS_OUTCOME_OK);
    EXPECT_GE(Clock::now() - start, 200ms);

    auto slow = make(R"({"delay_ms": 60000})");
    auto pending = std::async(std::launch::async,
                              [&] { return slow->execute_sync(event("evt-slow-2"), 10000); });
    std::this_thread::sleep_for(100ms);
    slow->stop();
    ASSERT_EQ(pending.wait_for(2s), std::future_status::ready);
    auto o = pending.get();
    EXPECT_EQ(o.kind, FOBS_OUTCOME_RETRY);
    EXPECT_NE(o.reason.find("stopping"), std::string::npos);
}

TEST_F(LogAction, behind_the_memory_transport_fail_first_deliveries_ends_in_success) {
    auto action = make(R"({"fail_first_deliveries": 2})");
    auto transport = h.transport("memory", R"({"backoff_ms": [50]})", "mem");
    transport->start();
    std::atomic<int> settled_ok{0};
    host::ConsumerSpec spec;
    spec.pipeline = "demo";
    spec.consumer_name = "demo_worker";
    auto consumer = transport->open_consumer(spec, [&](const fobs_event &e, sdk::Completion done) {
        auto token = std::make_shared<sdk::Completion>(std::move(done));
        action->execute(e, [&, token](const host::Outcome &o) {
            if (o.kind == FOBS_OUTCOME_OK) ++settled_ok;
            fobs_outcome raw{};
            raw.struct_size = sizeof(raw);
            raw.kind = o.kind;
            raw.retry_after_ms = o.retry_after_ms;
            raw.reason = sdk::str(o.reason);
            token->complete(raw);
        });
    });
    ASSERT_EQ(transport->publish_sync(fobs_test::make_event("evt-demo-1")).kind, FOBS_OUTCOME_OK);
    ASSERT_TRUE(fobs_test::eventually([&] { return settled_ok == 1; }, 3s));
    EXPECT_EQ(lines_with("evt-demo-1").size(), 3u); // two failing deliveries, then success
    EXPECT_EQ(lines_with("delivery=3").size(), 1u);
    consumer->close();
}

using fobs_test::BadConfig;

class LogActionConfig : public ::testing::TestWithParam<BadConfig> {
  protected:
    fobs_test::Harness h;
};

TEST_P(LogActionConfig, errors_name_the_key) {
    fobs_test::expect_refused(h, host::ComponentKind::action, "log", GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Keys, LogActionConfig,
    ::testing::Values(
        BadConfig{R"({"levle": "info"})", "levle", "did you mean `level`"},
        BadConfig{R"({"fail_evry": 2})", "fail_evry", "did you mean `fail_every`"},
        BadConfig{R"({"level": "loud"})", "level", "expected one of trace|debug|info|warn|error, got `loud`"},
        BadConfig{R"({"level": 3})", "level", "expected a string, got an integer"},
        BadConfig{R"({"format": "xml"})", "format", "summary"},
        BadConfig{R"({"fail_mode": "sometimes"})", "fail_mode", "retry"},
        BadConfig{R"({"fail_every": -1})", "fail_every", "between"},
        BadConfig{R"({"fail_entity_types": "Order"})", "fail_entity_types", "array"},
        BadConfig{R"({"fail_entity_types": ["Order", 1]})", "fail_entity_types[1]", "expected a string"},
        BadConfig{R"({"delay_ms": "slow"})", "delay_ms", "integer"},
        BadConfig{R"({"retry_after_ms": -2})", "retry_after_ms", "between -1"}),
    fobs_test::bad_config_name);

TEST(LogActionDefaults, every_documented_key_is_accepted) {
    fobs_test::Harness h;
    EXPECT_NO_THROW(h.action("log", "{}"));
    EXPECT_NO_THROW(h.action("log", R"({"level": "debug", "format": "body", "fail_every": 0,
                                        "fail_mode": "retry", "fail_first_deliveries": 0,
                                        "fail_entity_types": [], "delay_ms": 0,
                                        "retry_after_ms": -1})"));
}

} // namespace
