#include "response.hpp"

#include <algorithm>
#include <cctype>

namespace fraiseql_observer::webhook {
namespace {

// Longest a Retry-After may push an event back: a misbehaving peer must not park it for weeks.
constexpr int64_t max_retry_after_ms = 24LL * 3600 * 1000;

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

// A one-line, printable rendering of the body excerpt for a reason string.
std::string printable(std::string_view body, bool truncated) {
    // Do not end in the middle of a UTF-8 sequence.
    size_t end = body.size();
    if (truncated) {
        size_t i = end;
        while (i > 0 && i + 4 > end && (static_cast<unsigned char>(body[i - 1]) & 0xC0) == 0x80) --i;
        if (i > 0 && static_cast<unsigned char>(body[i - 1]) >= 0xC0) end = i - 1;
    }
    std::string out;
    out.reserve(end + 3);
    for (size_t i = 0; i < end; ++i) {
        unsigned char c = static_cast<unsigned char>(body[i]);
        out.push_back(c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c));
    }
    std::string_view t = trim(out);
    std::string r(t);
    if (truncated) r += "...";
    return r;
}

std::string http_reason(long status, const Exchange &x) {
    std::string r = "HTTP " + std::to_string(status);
    std::string body = printable(x.body_excerpt, x.body_truncated);
    if (!body.empty()) r += ": " + body;
    return r;
}

// Errors that another attempt cannot fix: the configuration (or a redirect) is wrong.
bool permanent_curl_error(CURLcode c) {
    switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_NOT_BUILT_IN:
        return true;
    default:
        return false;
    }
}

} // namespace

int64_t parse_retry_after(std::string_view value, int64_t now_unix_s) {
    value = trim(value);
    if (value.empty()) return -1;
    if (std::all_of(value.begin(), value.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        if (value.size() > 9) return max_retry_after_ms;
        int64_t secs = std::stoll(std::string(value));
        return std::min(secs * 1000, max_retry_after_ms);
    }
    std::string text(value);
    time_t when = curl_getdate(text.c_str(), nullptr);
    if (when == static_cast<time_t>(-1)) return -1;
    // Clamp in seconds first: a date far away (curl reads years up to 2^63 s) must not overflow.
    const int64_t max_s = max_retry_after_ms / 1000;
    const int64_t when_s = static_cast<int64_t>(when);
    if (when_s <= now_unix_s) return 0;
    if (when_s - now_unix_s > max_s) return max_retry_after_ms;
    return (when_s - now_unix_s) * 1000;
}

Verdict classify(const Exchange &x, bool follow_redirects, int64_t now_unix_s) {
    Verdict v;
    if (x.curl_code != CURLE_OK) {
        v.status_class = "error";
        v.kind = permanent_curl_error(x.curl_code) ? FOBS_OUTCOME_FAILED : FOBS_OUTCOME_RETRY;
        v.reason = curl_easy_strerror(x.curl_code);
        if (!x.curl_error.empty()) v.reason += std::string(": ") + std::string(x.curl_error);
        return v;
    }
    long s = x.status;
    if (s >= 200 && s < 300) {
        v.status_class = "2xx";
        v.kind = FOBS_OUTCOME_OK;
        return v;
    }
    if (s >= 300 && s < 400) {
        v.status_class = "3xx";
        v.kind = FOBS_OUTCOME_FAILED;
        v.reason = "HTTP " + std::to_string(s) + " redirect";
        if (!x.location.empty()) v.reason += " to " + std::string(trim(x.location));
        v.reason += follow_redirects ? " could not be followed"
                                     : " not followed (follow_redirects = false)";
        return v;
    }
    if (s == 408 || s == 429 || (s >= 500 && s < 600)) {
        v.status_class = s >= 500 ? "5xx" : "4xx";
        v.kind = FOBS_OUTCOME_RETRY;
        v.retry_after_ms = parse_retry_after(x.retry_after, now_unix_s);
        v.reason = http_reason(s, x);
        return v;
    }
    if (s >= 400 && s < 500) {
        v.status_class = "4xx";
        v.kind = FOBS_OUTCOME_FAILED;
        v.reason = http_reason(s, x);
        return v;
    }
    // 1xx as a final answer or a status outside 100..599: the peer does not speak HTTP
    // properly; another attempt may meet a fixed peer.
    v.status_class = "error";
    v.kind = FOBS_OUTCOME_RETRY;
    v.reason = "unexpected " + http_reason(s, x);
    return v;
}

} // namespace fraiseql_observer::webhook
