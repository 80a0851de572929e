// sdk::redact_secrets: the one redaction applied to status, logs and errors (issue 12, item 6).
#include <fraiseql_observer/redact.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

using fraiseql_observer::sdk::looks_like_credential_name;
using fraiseql_observer::sdk::redact_secrets;

TEST(Redact, url_password_is_hidden_user_and_host_kept) {
    EXPECT_EQ(redact_secrets("connected to nats://user:PASSWORD@127.0.0.1:4222"),
              "connected to nats://user:***@127.0.0.1:4222");
    EXPECT_EQ(redact_secrets("postgresql://app:s3cr%40t@db.example:5432/app?sslmode=require"),
              "postgresql://app:***@db.example:5432/app?sslmode=require");
    EXPECT_EQ(redact_secrets("https://u:p@h/x"), "https://u:***@h/x");
}

TEST(Redact, token_only_userinfo_is_hidden_whole) {
    EXPECT_EQ(redact_secrets("nats://s3cr3tT0ken@nats.internal:4222"), "nats://***@nats.internal:4222");
    EXPECT_EQ(redact_secrets("tls://TOKEN@h"), "tls://***@h");
}

TEST(Redact, password_with_at_sign_or_slash_is_still_hidden) {
    EXPECT_EQ(redact_secrets("nats://u:p@ss@h:4222"), "nats://u:***@h:4222");
    EXPECT_EQ(redact_secrets("nats://u:pa/ss@h:4222"), "nats://u:***@h:4222");
    // ...but a port followed by a path that holds an '@' is not userinfo.
    EXPECT_EQ(redact_secrets("https://h:8080/users/@me"), "https://h:8080/users/@me");
}

TEST(Redact, urls_without_secrets_are_unchanged) {
    for (const char *t : {"nats://127.0.0.1:4222", "https://example.com/hook?event=insert&x=1#top",
                          "http://[::1]:8080/a/b", "see https://example.com.", "no url here: a=b c=d",
                          "", "::::not a url::::", "mailto:someone@example.com"})
        EXPECT_EQ(redact_secrets(t), t);
}

TEST(Redact, credential_query_parameters_keep_name_lose_value) {
    EXPECT_EQ(redact_secrets("https://h/hook?token=abc123&event=insert"), "https://h/hook?token=***&event=insert");
    EXPECT_EQ(redact_secrets("https://h/?Access_Token=a&API_KEY=b&apikey=c&Secret=d&password=e&passwd=f&pwd=g"),
              "https://h/?Access_Token=***&API_KEY=***&apikey=***&Secret=***&password=***&passwd=***&pwd=***");
    EXPECT_EQ(redact_secrets("https://h/?sig=1;signature=2&auth=3&credentials=4&session=5&key=6&x=7"),
              "https://h/?sig=***;signature=***&auth=***&credentials=***&session=***&key=***&x=7");
    EXPECT_EQ(redact_secrets("https://s3/o?X-Amz-Credential=AK&X-Amz-Signature=ff&X-Amz-Security-Token=tt&v=1"),
              "https://s3/o?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***&v=1");
    // OAuth implicit flow puts the token in the fragment.
    EXPECT_EQ(redact_secrets("https://h/cb#access_token=xyz&state=1"), "https://h/cb#access_token=***&state=1");
    // Both at once, and the text around the URL kept.
    EXPECT_EQ(redact_secrets("posting to https://user:pw@hooks.example/in?token=t0k&a=1 failed: 503"),
              "posting to https://user:***@hooks.example/in?token=***&a=1 failed: 503");
}

TEST(Redact, several_urls_including_glued_server_lists) {
    EXPECT_EQ(redact_secrets("nats://a:b@h1:4222,nats://c:d@h2:4222"), "nats://a:***@h1:4222,nats://c:***@h2:4222");
    EXPECT_EQ(redact_secrets("nats://h1:4222,nats://TOK@h2"), "nats://h1:4222,nats://***@h2");
    EXPECT_EQ(redact_secrets("from \"nats://u:p@x\" to <https://v:q@y/?key=k>"),
              "from \"nats://u:***@x\" to <https://v:***@y/?key=***>");
    EXPECT_EQ(redact_secrets("dsn=postgres://u:p@h/db"), "dsn=postgres://u:***@h/db");
}

TEST(Redact, libpq_key_value_password) {
    EXPECT_EQ(redact_secrets("host=db port=5432 user=app password=s3cret dbname=app"),
              "host=db port=5432 user=app password=*** dbname=app");
    EXPECT_EQ(redact_secrets("host=db password = 's3 cr\\'et' dbname=app"), "host=db password = *** dbname=app");
    EXPECT_EQ(redact_secrets("sslpassword=x"), "sslpassword=***");
    EXPECT_EQ(redact_secrets("{\"dsn\":\"host=h password=pw\"}"), "{\"dsn\":\"host=h password=***\"}");
    EXPECT_EQ(redact_secrets("token=\"a b\" next"), "token=*** next");
    // Comparisons and names that are not credentials are left alone.
    EXPECT_EQ(redact_secrets("password==x user=bob"), "password==x user=bob");
    EXPECT_EQ(redact_secrets("author=ann entity_type=user"), "author=ann entity_type=user");
    EXPECT_EQ(redact_secrets("my_password=x"), "my_password=***");
    // Bare words common in prose count only in a URL's query.
    EXPECT_EQ(redact_secrets("is required (a libpq URI or key=value string)"),
              "is required (a libpq URI or key=value string)");
    EXPECT_EQ(redact_secrets("session=3 auth=basic"), "session=3 auth=basic");
    EXPECT_EQ(redact_secrets("api_key=abc session_token=def"), "api_key=*** session_token=***");
}

TEST(Redact, credential_names) {
    for (const char *n : {"token", "TOKEN", "access_token", "key", "api_key", "apikey", "Api-Key", "secret",
                          "client_secret", "password", "passwd", "pwd", "sig", "signature", "auth", "Authorization",
                          "credential", "credentials", "session", "sessionid", "private_key", "pass", "jwt"})
        EXPECT_TRUE(looks_like_credential_name(n)) << n;
    for (const char *n : {"event", "entity_type", "author", "sslmode", "host", "user", "id", "keyboard", "monkeys"})
        EXPECT_FALSE(looks_like_credential_name(n)) << n;
}

TEST(Redact, hostile_text_does_not_break_it) {
    // Every prefix of a tricky text: no crash, nothing read past the end, secrets never shown.
    std::string t = "x nats://u:SECRET@h?token=SECRET2&a=b#key=SECRET3 password='SECRET4";
    for (size_t n = 0; n <= t.size(); ++n) (void)redact_secrets(t.substr(0, n));
    std::string r = redact_secrets(t);
    EXPECT_EQ(r.find("SECRET"), std::string::npos) << r;
    EXPECT_EQ(redact_secrets(std::string("a\0b password=x\0y", 17)), std::string("a\0b password=***", 16));
}

TEST(Redact, linear_time_on_hostile_text) {
    // Many glued URLs, long names before '=', long userinfo: each ~1 MB, each well under a
    // second (a quadratic scan would take minutes).
    std::string glued, names, at;
    for (int i = 0; i < 100000; ++i) glued += "a://b:c@";
    for (int i = 0; i < 100000; ++i) names += "passwordx ";
    at = "nats://" + std::string(1000000, ':') + "@h";
    auto start = std::chrono::steady_clock::now();
    std::string r = redact_secrets(glued);
    EXPECT_EQ(r.find("b:c@"), std::string::npos);
    (void)redact_secrets(names);
    EXPECT_EQ(redact_secrets(at).substr(0, 8), "nats://:");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}
