#include "webhook_config.hpp"

#include "signing.hpp"

#include <curl/curl.h>
#include <fraiseql_observer/plugin.hpp>
#include <fraiseql_observer/redact.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <limits>
#include <memory>

namespace fraiseql_observer::webhook {
namespace {

using sdk::ConfigError;

constexpr std::array<std::string_view, 7> reserved_headers = {
    "idempotency-key", "webhook-id", "webhook-timestamp", "webhook-signature",
    "x-fraiseql-signature-256", "content-length", "host"};

std::string lower(std::string_view s) {
    std::string r(s);
    for (auto &c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void check_url(const std::string &url) {
    const std::string shown = sdk::redact_secrets(url);
    for (char c : url)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            throw ConfigError("url", "\"url\" contains whitespace or control characters");
    auto scheme_end = url.find("://");
    std::string scheme = scheme_end == std::string::npos ? "" : lower(url.substr(0, scheme_end));
    if (scheme != "http" && scheme != "https")
        throw ConfigError("url", "\"url\" must be an http:// or https:// URL, got \"" + shown + "\"");
    // curl reads "http:///x" as host "x"; the URL as written must name its host.
    auto authority_end = url.find_first_of("/?#", scheme_end + 3);
    std::string authority = url.substr(scheme_end + 3, authority_end == std::string::npos
                                                            ? std::string::npos
                                                            : authority_end - scheme_end - 3);
    auto at = authority.rfind('@');
    std::string host_port = at == std::string::npos ? authority : authority.substr(at + 1);
    if (host_port.empty() || host_port.front() == ':')
        throw ConfigError("url", "\"url\" has no host: \"" + shown + "\"");
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), curl_url_cleanup);
    if (!u) throw std::bad_alloc();
    CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0);
    if (rc == CURLUE_NO_HOST)
        throw ConfigError("url", "\"url\" has no host: \"" + shown + "\"");
    if (rc == CURLUE_BAD_PORT_NUMBER)
        throw ConfigError("url", "\"url\" has a port outside 1..65535: \"" + shown + "\"");
    if (rc != CURLUE_OK)
        throw ConfigError("url", "\"url\" is not a valid URL (" + std::string(curl_url_strerror(rc)) +
                                     "): \"" + shown + "\"");
    auto part = [&](CURLUPart which, std::string &out) {
        char *text = nullptr;
        CURLUcode r = curl_url_get(u.get(), which, &text, 0);
        if (r == CURLUE_OK && text) out = text;
        curl_free(text);
        return r == CURLUE_OK;
    };
    std::string host, port;
    if (!part(CURLUPART_HOST, host) || host.empty() || host == "[]")
        throw ConfigError("url", "\"url\" has no host: \"" + shown + "\"");
    if (part(CURLUPART_PORT, port)) {
        // curl refuses ports above 65535; port 0 is no port to send to either.
        bool digits = !port.empty() && port.size() <= 5 &&
                      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits || std::stol(port) < 1 || std::stol(port) > 65535)
            throw ConfigError("url", "\"url\" has a port outside 1..65535: \"" + shown + "\"");
    }
}

Secret parse_secret(const std::string &s, const std::string &key) {
    if (s.empty()) throw ConfigError(key, "\"" + key + "\" is empty");
    Secret out;
    out.raw = s;
    constexpr std::string_view prefix = "whsec_";
    if (s.compare(0, prefix.size(), prefix) == 0) {
        auto decoded = base64_decode(std::string_view(s).substr(prefix.size()));
        if (!decoded || decoded->empty())
            throw ConfigError(key, "\"" + key + "\" is not a valid whsec_<base64> secret "
                                                "(the part after whsec_ must be base64)");
        out.key = std::move(*decoded);
    } else {
        out.key = s;
    }
    return out;
}

void check_ca_file(const std::string &path) {
    if (path.empty()) throw ConfigError("tls_ca_file", "\"tls_ca_file\" is empty");
    std::ifstream in(path);
    if (!in) throw ConfigError("tls_ca_file", "cannot read \"tls_ca_file\" " + path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
        throw ConfigError("tls_ca_file", "\"tls_ca_file\" " + path +
                                             " holds no PEM certificate");
}

} // namespace

WebhookConfig WebhookConfig::parse(std::string_view text) {
    // Types, ranges, unknown and required keys are the table's (checked by the host before
    // create, and again by the reader).
    const sdk::ConfigReader r(text, config_keys);
    WebhookConfig c;
    c.url = r.string("url");
    check_url(c.url);

    c.method = r.string("method");
    for (auto &ch : c.method) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (c.method != "POST" && c.method != "PUT" && c.method != "PATCH")
        throw ConfigError("method", "\"method\" must be POST, PUT or PATCH (the request "
                                    "carries the event as its body), got \"" +
                                        c.method + "\"");

    for (const auto &[name, v] : r.string_map("headers")) {
        std::string key = "headers." + name;
        if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char))
            throw ConfigError(key, "\"" + name + "\" is not a valid HTTP header name");
        if (std::find(reserved_headers.begin(), reserved_headers.end(), lower(name)) !=
            reserved_headers.end())
            throw ConfigError(key, "header \"" + name + "\" is set by the webhook action "
                                                        "itself and cannot be configured");
        for (char ch : v) {
            auto b = static_cast<unsigned char>(ch);
            if ((b < 0x20 && b != '\t') || b == 0x7f)
                throw ConfigError(key, "header \"" + name + "\" contains a control character "
                                       "(CR, LF, NUL or another); header values must be one line of text");
        }
        c.headers.emplace_back(name, v);
    }

    if (r.has("secret")) {
        const bool list = r.root().find("secret")->kind == sdk::JsonValue::Kind::array;
        const auto secrets = r.strings("secret");
        for (size_t i = 0; i < secrets.size(); ++i)
            c.secrets.push_back(parse_secret(secrets[i], list ? "secret[" + std::to_string(i) + "]" : "secret"));
    }

    c.fraiseql_signature = r.boolean("fraiseql_signature");
    if (c.fraiseql_signature && c.secrets.empty())
        throw ConfigError("fraiseql_signature", "\"fraiseql_signature\" needs a \"secret\" to sign with");
    c.timeout_ms = r.integer("timeout_ms");
    c.connect_timeout_ms = r.integer("connect_timeout_ms");
    c.max_concurrency = r.integer("max_concurrency");
    c.follow_redirects = r.boolean("follow_redirects");
    c.batch_max_events = r.integer("batch_max_events");
    c.batch_max_wait_ms = r.integer("batch_max_wait_ms");
    if (r.has("tls_ca_file")) {
        c.tls_ca_file = r.string("tls_ca_file");
        check_ca_file(c.tls_ca_file);
    }
    return c;
}

} // namespace fraiseql_observer::webhook
