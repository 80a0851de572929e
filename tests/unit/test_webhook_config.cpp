// The webhook action's config checks, as `fraiseql-observer validate` runs them: create +
// destroy through the real host loader, no connection. Each refusal names the offending key.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using fobs_test::Harness;
using fraiseql_observer::host::InstanceError;

struct Refusal {
    std::string key;
    std::string message;
};

Refusal refusal(const std::string &cfg) {
    Harness h;
    try {
        h.action("webhook", cfg);
    } catch (const InstanceError &e) {
        return {e.key_path(), e.what()};
    }
    return {"<accepted>", ""};
}

TEST(WebhookConfig, accepts_a_full_config) {
    auto r = refusal(R"({"url":"https://hooks.example.com/x?a=1","method":"put",
        "headers":{"X-Tenant":"acme","Authorization":"Bearer t"},
        "secret":["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","plain"],"fraiseql_signature":true,
        "timeout_ms":5000,"connect_timeout_ms":1000,"max_concurrency":1024,
        "follow_redirects":true})");
    EXPECT_EQ(r.key, "<accepted>") << r.message;
}

TEST(WebhookConfig, url_must_be_http_or_https) {
    EXPECT_EQ(refusal(R"({"url":"ftp://example.com/x"})").key, "url");
    EXPECT_EQ(refusal(R"({"url":"example.com/x"})").key, "url");
    EXPECT_EQ(refusal(R"({"url":"http:///nohost"})").key, "url");
    EXPECT_EQ(refusal(R"({"url":"http://a b/"})").key, "url");
    EXPECT_EQ(refusal(R"({"url":42})").key, "url");
    EXPECT_EQ(refusal(R"({})").key, "url");
    EXPECT_EQ(refusal(R"({"url":"HTTPS://example.com/"})").key, "<accepted>");
}

TEST(WebhookConfig, malformed_secret_is_refused_without_echoing_it) {
    auto r = refusal(R"({"url":"http://127.0.0.1/x","secret":"whsec_!!not*base64!!"})");
    EXPECT_EQ(r.key, "secret");
    EXPECT_EQ(r.message.find("not*base64"), std::string::npos) << r.message;
    EXPECT_EQ(refusal(R"({"url":"http://127.0.0.1/x","secret":"whsec_abc"})").key, "secret");
    EXPECT_EQ(refusal(R"({"url":"http://127.0.0.1/x","secret":"whsec_"})").key, "secret");
    EXPECT_EQ(refusal(R"({"url":"http://127.0.0.1/x","secret":""})").key, "secret");
    EXPECT_EQ(refusal(R"({"url":"http://127.0.0.1/x","secret":[]})").key, "secret");
    EXPECT_EQ(refusal(R"({"url":"http://127.0.0.1/x","secret":["plain","whsec_%%%%"]})").key,
              "secret[1]");
    EXPECT_EQ(refusal(R"({"url":"http://127.0.0.1/x","secret":7})").key, "secret");
}

TEST(WebhookConfig, numbers_out_of_range_are_refused) {
    const std::string u = R"("url":"http://127.0.0.1/x")";
    EXPECT_EQ(refusal("{" + u + R"(,"max_concurrency":0})").key, "max_concurrency");
    EXPECT_EQ(refusal("{" + u + R"(,"max_concurrency":1025})").key, "max_concurrency");
    EXPECT_EQ(refusal("{" + u + R"(,"max_concurrency":1.5})").key, "max_concurrency");
    EXPECT_EQ(refusal("{" + u + R"(,"timeout_ms":0})").key, "timeout_ms");
    EXPECT_EQ(refusal("{" + u + R"(,"timeout_ms":-5})").key, "timeout_ms");
    EXPECT_EQ(refusal("{" + u + R"(,"timeout_ms":"10s"})").key, "timeout_ms");
    EXPECT_EQ(refusal("{" + u + R"(,"connect_timeout_ms":99999999999})").key,
              "connect_timeout_ms");
    EXPECT_EQ(refusal("{" + u + R"(,"max_concurrency":1})").key, "<accepted>");
}

TEST(WebhookConfig, unknown_keys_get_a_did_you_mean_hint) {
    auto r = refusal(R"({"url":"http://127.0.0.1/x","timeout":1000})");
    EXPECT_EQ(r.key, "timeout");
    EXPECT_NE(r.message.find("did you mean `timeout_ms`"), std::string::npos) << r.message;
    r = refusal(R"({"url":"http://127.0.0.1/x","zzz":1})");
    EXPECT_EQ(r.key, "zzz");
}

TEST(WebhookConfig, tls_verification_cannot_be_turned_off) {
    auto r = refusal(R"({"url":"https://127.0.0.1/x","tls_verify":false})");
    EXPECT_EQ(r.key, "tls_verify");
    EXPECT_EQ(refusal(R"({"url":"https://127.0.0.1/x","tls_ca_file":"/nonexistent/ca.pem"})").key,
              "tls_ca_file");
}

TEST(WebhookConfig, method_headers_and_flags_are_checked) {
    const std::string u = R"("url":"http://127.0.0.1/x")";
    EXPECT_EQ(refusal("{" + u + R"(,"method":"GET"})").key, "method");
    EXPECT_EQ(refusal("{" + u + R"(,"headers":["a"]})").key, "headers");
    EXPECT_EQ(refusal("{" + u + R"(,"headers":{"Bad Name":"x"}})").key, "headers.Bad Name");
    EXPECT_EQ(refusal("{" + u + R"(,"headers":{"X-A":"x\r\nInjected: 1"}})").key, "headers.X-A");
    EXPECT_EQ(refusal("{" + u + R"(,"headers":{"webhook-signature":"forged"}})").key,
              "headers.webhook-signature");
    EXPECT_EQ(refusal("{" + u + R"(,"headers":{"X-A":1}})").key, "headers.X-A");
    EXPECT_EQ(refusal("{" + u + R"(,"follow_redirects":"yes"})").key, "follow_redirects");
    EXPECT_EQ(refusal("{" + u + R"(,"fraiseql_signature":true})").key, "fraiseql_signature");
}

TEST(WebhookConfig, batch_keys_are_checked) {
    const std::string u = R"("url":"http://127.0.0.1/x")";
    EXPECT_EQ(refusal("{" + u + R"(,"batch_max_events":1,"batch_max_wait_ms":1})").key, "<accepted>");
    EXPECT_EQ(refusal("{" + u + R"(,"batch_max_events":1000,"batch_max_wait_ms":10000})").key,
              "<accepted>");
    EXPECT_EQ(refusal("{" + u + R"(,"batch_max_events":0})").key, "batch_max_events");
    EXPECT_EQ(refusal("{" + u + R"(,"batch_max_events":1001})").key, "batch_max_events");
    EXPECT_EQ(refusal("{" + u + R"(,"batch_max_events":"100"})").key, "batch_max_events");
    EXPECT_EQ(refusal("{" + u + R"(,"batch_max_events":10.5})").key, "batch_max_events");
    EXPECT_EQ(refusal("{" + u + R"(,"batch_max_wait_ms":0})").key, "batch_max_wait_ms");
    EXPECT_EQ(refusal("{" + u + R"(,"batch_max_wait_ms":10001})").key, "batch_max_wait_ms");
    EXPECT_EQ(refusal("{" + u + R"(,"batch_max_wait_ms":-1})").key, "batch_max_wait_ms");
    auto r = refusal("{" + u + R"(,"batch_max_event":10})");
    EXPECT_EQ(r.key, "batch_max_event");
    EXPECT_NE(r.message.find("did you mean `batch_max_events`"), std::string::npos) << r.message;
}

// The host names an action instance "pipeline/component" when one pipeline uses it and
// "component" when several do (abi.h); a batching action shared by pipelines is refused, since
// a batch never mixes pipelines.
TEST(WebhookConfig, a_batching_action_shared_by_several_pipelines_is_refused) {
    Harness h;
    auto create = [&](const std::string &instance_name, const std::string &cfg) -> Refusal {
        fraiseql_observer::host::InstanceSpec spec{"hook", instance_name, cfg};
        try {
            fraiseql_observer::host::ActionInstance a(h.plugin("webhook"), spec, h.services());
        } catch (const InstanceError &e) {
            return {e.key_path(), e.what()};
        }
        return {"<accepted>", ""};
    };
    const std::string batching = R"({"url":"http://127.0.0.1/x","batch_max_events":10})";
    const std::string single = R"({"url":"http://127.0.0.1/x"})";
    EXPECT_EQ(create("orders/hook", batching).key, "<accepted>");
    auto r = create("hook", batching);
    EXPECT_EQ(r.key, "batch_max_events");
    EXPECT_NE(r.message.find("never mixes pipelines"), std::string::npos) << r.message;
    EXPECT_EQ(create("hook", single).key, "<accepted>"); // no batches: sharing is fine
}

} // namespace

// Issue 12: validate checks the whole URL, not just its scheme, and never echoes a secret in it.
TEST(WebhookConfig, url_is_fully_checked_at_validate) {
    for (const char *bad : {"::::not a url::::", "http://", "http://:8080/x", "http://user:pw@/x",
                            "https://h:99999999/x", "https://h:65536/x", "https://h:0/x", "https://h:-1/x",
                            "https://h:8o/x", "http://h/a b", "http://h/\\u0001", "http://h\\r\\nX: y/"}) {
        auto r = refusal(std::string(R"({"url":")") + bad + "\"}");
        EXPECT_EQ(r.key, "url") << bad << " -> " << r.message;
    }
    EXPECT_NE(refusal(R"({"url":"https://h:99999999/x"})").message.find("port outside 1..65535"), std::string::npos);
    EXPECT_NE(refusal(R"({"url":"http://:8080/x"})").message.find("no host"), std::string::npos);
    for (const char *good : {"https://h:65535/x", "http://127.0.0.1:1/", "https://[::1]:8443/in?x=1",
                             "https://user:pw@hooks.example.com/in", "http://localhost"})
        EXPECT_EQ(refusal(std::string(R"({"url":")") + good + "\"}").key, "<accepted>") << good;
}

TEST(WebhookConfig, url_refusals_do_not_show_its_secrets) {
    auto r = refusal(R"({"url":"ftp://user:hunter2@h/x?token=t0psecret"})");
    EXPECT_EQ(r.key, "url");
    EXPECT_EQ(r.message.find("hunter2"), std::string::npos) << r.message;
    EXPECT_EQ(r.message.find("t0psecret"), std::string::npos) << r.message;
    r = refusal(R"({"url":"https://user:hunter2@h:99999/x"})");
    EXPECT_EQ(r.message.find("hunter2"), std::string::npos) << r.message;
}

TEST(WebhookConfig, header_values_with_any_control_character_are_refused) {
    const std::string u = R"("url":"http://127.0.0.1/x")";
    for (const char *bad : {"a\\r\\nX-Injected: yes", "a\\nb", "a\\rb", "a\\u0000b", "a\\u0007b", "a\\u007fb"}) {
        auto r = refusal("{" + u + R"(,"headers":{"X-A":")" + bad + "\"}}");
        EXPECT_EQ(r.key, "headers.X-A") << bad;
        EXPECT_NE(r.message.find("control character"), std::string::npos) << r.message;
    }
    EXPECT_EQ(refusal("{" + u + R"(,"headers":{"X-A":"tab\tand space ok"}})").key, "<accepted>");
}
