#include "webhook_config.hpp"

#include "signing.hpp"

#include <curl/curl.h>
#include <fraiseql_observer/plugin.hpp>
#include <fraiseql_observer/redact.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <limits>
#include <memory>

namespace fraiseql_observer::webhook {
namespace {

using json = nlohmann::json;
using sdk::ConfigError;

constexpr std::array<std::string_view, 12> known_keys = {
    "url",        "method",          "headers",   "secret",          "fraiseql_signature",
    "timeout_ms", "connect_timeout_ms", "max_concurrency", "follow_redirects", "tls_ca_file",
    "batch_max_events", "batch_max_wait_ms"};

// Headers the plugin sets itself: configuring them would break signing or idempotency.
constexpr std::array<std::string_view, 7> reserved_headers = {
    "idempotency-key", "webhook-id", "webhook-timestamp", "webhook-signature",
    "x-fraiseql-signature-256", "content-length", "host"};

std::string did_you_mean(std::string_view key) {
    std::string best = sdk::closest_match(key, known_keys);
    return best.empty() ? std::string() : " (did you mean \"" + best + "\"?)";
}

std::string lower(std::string_view s) {
    std::string r(s);
    for (auto &c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

const std::string &get_string(const json &v, const std::string &key) {
    if (!v.is_string()) throw ConfigError(key, "\"" + key + "\" must be a string");
    return v.get_ref<const std::string &>();
}

bool get_bool(const json &v, const std::string &key) {
    if (!v.is_boolean()) throw ConfigError(key, "\"" + key + "\" must be true or false");
    return v.get<bool>();
}

int64_t get_int(const json &v, const std::string &key, int64_t lo, int64_t hi) {
    if (!v.is_number_integer())
        throw ConfigError(key, "\"" + key + "\" must be an integer");
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
        throw ConfigError(key, "\"" + key + "\" must be between " + std::to_string(lo) +
                                   " and " + std::to_string(hi));
    int64_t n = v.get<int64_t>();
    if (n < lo || n > hi)
        throw ConfigError(key, "\"" + key + "\" must be between " + std::to_string(lo) +
                                   " and " + std::to_string(hi) + ", got " + std::to_string(n));
    return n;
}

// The whole URL is checked here, so that `validate` refuses what would only fail at the first
// request: http or https, a host, a port in 1..65535 when one is given, no whitespace or control
// characters. libcurl's own URL parser decides what a URL is (the one that sends the request);
// messages show the URL redacted (it may carry userinfo or a ?token=).
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

Secret parse_secret(const json &v, const std::string &key) {
    if (!v.is_string()) throw ConfigError(key, "\"" + key + "\" must be a string");
    const auto &s = v.get_ref<const std::string &>();
    // The message never repeats the secret: secrets stay out of logs and validate output.
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
    json doc;
    try {
        doc = json::parse(text.begin(), text.end());
    } catch (const json::exception &e) {
        throw ConfigError("", std::string("config is not valid JSON: ") + e.what());
    }
    if (!doc.is_object()) throw ConfigError("", "config must be a table");

    for (const auto &[key, value] : doc.items()) {
        if (std::find(known_keys.begin(), known_keys.end(), key) != known_keys.end()) continue;
        if (key == "tls_verify")
            throw ConfigError(key, "TLS verification cannot be turned off; use \"tls_ca_file\" "
                                   "to trust a private CA");
        throw ConfigError(key, "unknown key \"" + key + "\"" + did_you_mean(key));
    }

    WebhookConfig c;
    if (!doc.contains("url")) throw ConfigError("url", "\"url\" is required");
    c.url = get_string(doc["url"], "url");
    check_url(c.url);

    if (doc.contains("method")) {
        c.method = get_string(doc["method"], "method");
        for (auto &ch : c.method) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        if (c.method != "POST" && c.method != "PUT" && c.method != "PATCH")
            throw ConfigError("method", "\"method\" must be POST, PUT or PATCH (the request "
                                        "carries the event as its body), got \"" +
                                            c.method + "\"");
    }

    if (doc.contains("headers")) {
        const auto &h = doc["headers"];
        if (!h.is_object())
            throw ConfigError("headers", "\"headers\" must be a table of name = \"value\"");
        for (const auto &[name, value] : h.items()) {
            std::string key = "headers." + name;
            if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char))
                throw ConfigError(key, "\"" + name + "\" is not a valid HTTP header name");
            if (std::find(reserved_headers.begin(), reserved_headers.end(), lower(name)) !=
                reserved_headers.end())
                throw ConfigError(key, "header \"" + name + "\" is set by the webhook action "
                                                            "itself and cannot be configured");
            const auto &v = get_string(value, key);
            // RFC 9110 field values: visible characters, spaces and tabs. CR, LF or NUL would
            // end the header line (or the request) early: header injection.
            for (char ch : v) {
                auto b = static_cast<unsigned char>(ch);
                if ((b < 0x20 && b != '\t') || b == 0x7f)
                    throw ConfigError(key, "header \"" + name + "\" contains a control character "
                                           "(CR, LF, NUL or another); header values must be one line of text");
            }
            c.headers.emplace_back(name, v);
        }
    }

    if (doc.contains("secret")) {
        const auto &s = doc["secret"];
        if (s.is_array()) {
            if (s.empty()) throw ConfigError("secret", "\"secret\" is an empty list");
            for (size_t i = 0; i < s.size(); ++i)
                c.secrets.push_back(parse_secret(s[i], "secret." + std::to_string(i)));
        } else if (s.is_string()) {
            c.secrets.push_back(parse_secret(s, "secret"));
        } else {
            throw ConfigError("secret", "\"secret\" must be a string or a list of strings");
        }
    }

    if (doc.contains("fraiseql_signature")) {
        c.fraiseql_signature = get_bool(doc["fraiseql_signature"], "fraiseql_signature");
        if (c.fraiseql_signature && c.secrets.empty())
            throw ConfigError("fraiseql_signature",
                              "\"fraiseql_signature\" needs a \"secret\" to sign with");
    }
    if (doc.contains("timeout_ms"))
        c.timeout_ms = get_int(doc["timeout_ms"], "timeout_ms", 1, 600000);
    if (doc.contains("connect_timeout_ms"))
        c.connect_timeout_ms = get_int(doc["connect_timeout_ms"], "connect_timeout_ms", 1, 600000);
    if (doc.contains("max_concurrency"))
        c.max_concurrency = get_int(doc["max_concurrency"], "max_concurrency", 1, 1024);
    if (doc.contains("follow_redirects"))
        c.follow_redirects = get_bool(doc["follow_redirects"], "follow_redirects");
    if (doc.contains("batch_max_events"))
        c.batch_max_events = get_int(doc["batch_max_events"], "batch_max_events", 1, 1000);
    // Bounded well below the transports' redelivery timers (nats ack_wait defaults to 30 s):
    // a batch waiting to fill must never look like a lost delivery.
    if (doc.contains("batch_max_wait_ms"))
        c.batch_max_wait_ms = get_int(doc["batch_max_wait_ms"], "batch_max_wait_ms", 1, 10000);
    if (doc.contains("tls_ca_file")) {
        c.tls_ca_file = get_string(doc["tls_ca_file"], "tls_ca_file");
        check_ca_file(c.tls_ca_file);
    }
    return c;
}

} // namespace fraiseql_observer::webhook
