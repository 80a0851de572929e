// Text log lines cannot be broken or forged (issue 12, item 4): escape_log_text, and the host's
// log sink applying it (and redaction) to every field in text lines; JSON lines stay JSON.
#include "log_text.hpp"
#include "services.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <string>

using fraiseql_observer::host::escape_log_text;
using fraiseql_observer::host::LogSettings;
using fraiseql_observer::host::Services;

TEST(LogText, line_breaks_tabs_and_c0_are_escaped) {
    EXPECT_EQ(escape_log_text("a\r\nb\tc"), "a\\r\\nb\\tc");
    EXPECT_EQ(escape_log_text(std::string("n\0l", 3)), "n\\x00l");
    EXPECT_EQ(escape_log_text("\x01\x1b[31mred\x7f"), "\\x01\\x1b[31mred\\x7f");
}

TEST(LogText, c1_controls_line_separators_and_bad_utf8_are_escaped) {
    EXPECT_EQ(escape_log_text("nel\xC2\x85x"), "nel\\x85x");
    EXPECT_EQ(escape_log_text("csi\xC2\x9b"), "csi\\x9b");
    EXPECT_EQ(escape_log_text("a\xE2\x80\xA8" "b\xE2\x80\xA9"), "a\\u2028b\\u2029");
    EXPECT_EQ(escape_log_text("lone\x85"), "lone\\x85");
    EXPECT_EQ(escape_log_text("cut\xE2\x82"), "cut\\xe2\\x82");
    EXPECT_EQ(escape_log_text("\xC0\xAF"), "\\xc0\\xaf");        // overlong '/'
    EXPECT_EQ(escape_log_text("\xED\xA0\x80"), "\\xed\\xa0\\x80"); // surrogate
}

TEST(LogText, printable_text_and_unicode_are_unchanged) {
    for (const char *t : {"", "plain text: 42 [a/b] \\n stays", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
                          "nbsp\xC2\xA0ok"})
        EXPECT_EQ(escape_log_text(t), t);
}

namespace {
// A forged line: what issue 12 printed as a second, convincing log line.
const std::string k_forged = "id-1\n2026-01-01T00:00:00.000000Z error [observer] FORGED LINE";
} // namespace

TEST(LogText, text_log_lines_escape_message_logger_and_event_id) {
    Services s(LogSettings{"info", "text"});
    s.capture_logs(true);
    s.log("orders/web\nhook", 3 /* warn */, "failed: " + k_forged, "ev\r\nX-Injected: yes");
    auto lines = s.captured_logs();
    ASSERT_EQ(lines.size(), 1u);
    const std::string &l = lines[0];
    EXPECT_EQ(l.find('\n'), std::string::npos) << l;
    EXPECT_EQ(l.find('\r'), std::string::npos) << l;
    EXPECT_NE(l.find("[orders/web\\nhook]"), std::string::npos) << l;
    EXPECT_NE(l.find("failed: id-1\\n2026-01-01T00:00:00.000000Z error [observer] FORGED LINE"), std::string::npos) << l;
    EXPECT_NE(l.find("event_id=ev\\r\\nX-Injected: yes"), std::string::npos) << l;
}

TEST(LogText, host_own_logger_calls_are_escaped_too) {
    Services s(LogSettings{"info", "text"});
    s.capture_logs(true);
    s.logger("observer")->info("rejected a record: {}", k_forged);
    auto lines = s.captured_logs();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].find('\n'), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("id-1\\n2026"), std::string::npos) << lines[0];
}

TEST(LogText, json_log_lines_are_one_json_object_with_the_text_intact) {
    Services s(LogSettings{"info", "json"});
    s.capture_logs(true);
    s.log("orders/webhook", 3, "failed: " + k_forged + "\xC2\x85", "ev\r\nX: y");
    auto lines = s.captured_logs();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].find('\n'), std::string::npos) << lines[0];
    EXPECT_EQ(lines[0].find('\r'), std::string::npos) << lines[0];
    auto j = nlohmann::json::parse(lines[0]);
    EXPECT_EQ(j["msg"], "failed: " + k_forged + "\xC2\x85");
    EXPECT_EQ(j["event_id"], "ev\r\nX: y");
}

TEST(LogText, secrets_are_redacted_in_both_formats) {
    for (const char *format : {"text", "json"}) {
        Services s(LogSettings{"info", format});
        s.capture_logs(true);
        s.log("orders/webhook", 2 /* info */,
              "webhook action started: POST https://u:hunter2@hooks.example/in?token=t0psecret&a=1");
        s.logger("nats")->warn("connected to nats://user:PASSWORD@127.0.0.1:4222");
        auto lines = s.captured_logs();
        ASSERT_EQ(lines.size(), 2u);
        for (const auto &l : lines) {
            EXPECT_EQ(l.find("hunter2"), std::string::npos) << l;
            EXPECT_EQ(l.find("t0psecret"), std::string::npos) << l;
            EXPECT_EQ(l.find("PASSWORD"), std::string::npos) << l;
        }
        EXPECT_NE(lines[0].find("https://u:***@hooks.example/in?token=***&a=1"), std::string::npos) << lines[0];
        EXPECT_NE(lines[1].find("nats://user:***@127.0.0.1:4222"), std::string::npos) << lines[1];
    }
}
