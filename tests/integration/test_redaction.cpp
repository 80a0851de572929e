// Issue 12, item 6: no output shows a secret. Credentials come from the environment, as in
// production (`${NATS_URL}`, `${HOOK_URL}`): `status` (text and --json) against a nats-server
// that needs a password, and the run log (the webhook action's start-up line), show the URLs
// with `***` in place of the password and the token.
#include "nats_server.hpp"
#include "observer.hpp"
#include "webhook_receiver.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

using namespace fobs_test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string k_nats_password = "natsPW-must-not-show";
const std::string k_hook_password = "hookPW-must-not-show";
const std::string k_hook_token = "hookTOKEN-must-not-show";

std::string config() {
    return R"(
[observer]
metrics_listen = "127.0.0.1:{metrics_port}"
log_format = "text"
shutdown_timeout_secs = 10

[sources.feed]
plugin   = "test_jsonl"
path     = "{dir}/in.jsonl"
ack_path = "{dir}/acks.txt"

[transport]
transport = "nats"
[transport.nats]
url            = "${NATS_URL}"
stream_name    = "redact_events"
subject_prefix = "redact.mutation"
consumer_name  = "redact_worker"

[actions.hook]
plugin = "webhook"
url    = "${HOOK_URL}"

[[pipelines]]
name    = "orders"
source  = "feed"
actions = ["hook"]
)";
}

void expect_no_secret(const std::string &text, const std::string &what) {
    for (const auto &s : {k_nats_password, k_hook_password, k_hook_token})
        EXPECT_EQ(text.find(s), std::string::npos) << what << " shows a secret:\n" << text;
}

} // namespace

TEST(Redaction, status_and_run_log_never_show_passwords_or_tokens) {
    NatsServer nats({"--user", "observer", "--pass", k_nats_password});
    WebhookReceiver rx;
    const std::map<std::string, std::string> env = {
        {"NATS_URL", "nats://observer:" + k_nats_password + "@127.0.0.1:" + std::to_string(nats.port())},
        {"HOOK_URL", "http://hookuser:" + k_hook_password + "@127.0.0.1:" + std::to_string(rx.port()) +
                         "/ok?token=" + k_hook_token + "&tenant=t1"}};
    ObserverProcess obs(config(), {}, env);
    std::string why;
    ASSERT_TRUE(obs.wait_started(why)) << why;
    ASSERT_TRUE(eventually([&] { return obs.get("/readyz").first == 200; }, 30s))
        << obs.get("/readyz").second << obs.log();

    const std::string cfg = (obs.dir() / "observer.toml").string();
    auto [code, text] = run_command({observer_binary(), "status", "-c", cfg}, env);
    ASSERT_EQ(code, 0) << text;
    expect_no_secret(text, "status");
    EXPECT_NE(text.find("pipeline orders"), std::string::npos) << text;
    EXPECT_NE(text.find("nats://observer:***@127.0.0.1"), std::string::npos) << text;

    auto [jcode, jtext] = run_command({observer_binary(), "status", "--json", "-c", cfg}, env);
    ASSERT_EQ(jcode, 0) << jtext;
    expect_no_secret(jtext, "status --json");
    auto j = json::parse(jtext, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << jtext;
    EXPECT_TRUE(j["pipelines"][0].contains("transport_status")) << jtext;
    EXPECT_NE(jtext.find("nats://observer:***@127.0.0.1"), std::string::npos) << jtext;

    // The webhook action says where it posts, without the password or the token.
    std::string log = obs.log();
    expect_no_secret(log, "the run log");
    EXPECT_NE(log.find("webhook action started: POST http://hookuser:***@127.0.0.1:" + std::to_string(rx.port()) +
                       "/ok?token=***&tenant=t1"),
              std::string::npos)
        << log;

    // A readiness reason from a component is redacted too: NATS gone, /readyz says why.
    nats.stop();
    std::pair<int, std::string> r;
    ASSERT_TRUE(eventually([&] { return (r = obs.get("/readyz")).first == 503; }, 30s)) << r.second;
    expect_no_secret(r.second, "/readyz");
    auto [scode, stext] = run_command({observer_binary(), "status", "-c", cfg}, env, 60s);
    expect_no_secret(stext, "status with NATS down");
    nats.start();
    EXPECT_EQ(obs.stop(), 0) << obs.log();
    expect_no_secret(obs.log(), "the run log");
}
