// The webhook action's reading of an HTTP answer (plugins/webhook_action/response.cpp): the
// final status, Retry-After (delta-seconds or an HTTP-date), Location and the body excerpt.
// Input layout: 2 bytes status, 1 byte flags (follow_redirects, curl error), then Retry-After,
// Location and body separated by '\n'. Properties:
//  - parse_retry_after never throws, answers -1 or 0..24 h, reads delta-seconds exactly and
//    reads back an IMF-fixdate it is given (now + N s -> N s);
//  - classify follows SPEC section 7: 2xx ok; 408, 429, 5xx retry with Retry-After honoured;
//    3xx and other 4xx fail; anything else retries; a transport error never reads a status;
//  - a reason built from a response body holds no control characters (it goes to logs and the
//    DLQ) and keeps at most max_body_excerpt bytes of it.
#include "fuzz_check.hpp"
#include "response.hpp"

#include <cstdint>
#include <ctime>
#include <string>

namespace webhook = fraiseql_observer::webhook;
using fobs_fuzz::shown;

namespace {

constexpr int64_t k_now = 1'760'000'000; // 2025-10-09
constexpr int64_t k_max_ms = 24LL * 3600 * 1000;

std::string imf_fixdate(int64_t unix_s) {
    std::time_t t = static_cast<std::time_t>(unix_s);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return buf;
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    const long status = static_cast<long>((data[0] << 8 | data[1]) % 1000);
    const bool follow = data[2] & 1;
    const CURLcode curl_code = (data[2] & 0x80) ? static_cast<CURLcode>((data[2] >> 1) & 0x3f) : CURLE_OK;
    std::string_view rest(reinterpret_cast<const char *>(data) + 3, size - 3);
    auto next = [&rest]() {
        size_t nl = rest.find('\n');
        std::string_view part = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        return part;
    };
    const std::string retry_after(next());
    const std::string location(next());
    const std::string body_all(rest);

    // Retry-After on its own.
    const int64_t ra = webhook::parse_retry_after(retry_after, k_now);
    FUZZ_CHECK(ra == -1 || (ra >= 0 && ra <= k_max_ms), shown(retry_after) + " -> " + std::to_string(ra));
    if (all_digits(retry_after) && retry_after.size() <= 9)
        FUZZ_CHECK(ra == std::min<int64_t>(std::stoll(retry_after) * 1000, k_max_ms), shown(retry_after));
    if (retry_after.size() >= 2) {
        // A date N seconds ahead (N from the input) reads back as N seconds.
        const int64_t n = (static_cast<unsigned char>(retry_after[0]) << 8 | static_cast<unsigned char>(retry_after[1])) * 3;
        const std::string date = imf_fixdate(k_now + n);
        FUZZ_CHECK(webhook::parse_retry_after(date, k_now) == std::min<int64_t>(n * 1000, k_max_ms), date);
        FUZZ_CHECK(webhook::parse_retry_after(" " + std::to_string(n) + "\t", k_now) == std::min<int64_t>(n * 1000, k_max_ms));
    }

    webhook::Exchange x;
    x.curl_code = curl_code;
    x.curl_error = curl_code != CURLE_OK ? std::string_view(location) : std::string_view();
    x.status = status;
    x.retry_after = retry_after;
    x.location = location;
    x.body_truncated = body_all.size() > webhook::max_body_excerpt;
    x.body_excerpt = std::string_view(body_all).substr(0, webhook::max_body_excerpt);
    const webhook::Verdict v = webhook::classify(x, follow, k_now);
    const std::string_view cls = v.status_class;

    if (curl_code != CURLE_OK) {
        FUZZ_CHECK(cls == "error" && v.kind != FOBS_OUTCOME_OK && !v.reason.empty());
        return 0;
    }
    if (status >= 200 && status < 300) {
        FUZZ_CHECK(v.kind == FOBS_OUTCOME_OK && cls == "2xx");
    } else if (status >= 300 && status < 400) {
        FUZZ_CHECK(v.kind == FOBS_OUTCOME_FAILED && cls == "3xx", v.reason);
    } else if (status == 408 || status == 429 || (status >= 500 && status < 600)) {
        FUZZ_CHECK(v.kind == FOBS_OUTCOME_RETRY && cls == (status >= 500 ? "5xx" : "4xx"));
        FUZZ_CHECK(v.retry_after_ms == ra, std::to_string(v.retry_after_ms) + " vs " + std::to_string(ra));
    } else if (status >= 400 && status < 500) {
        FUZZ_CHECK(v.kind == FOBS_OUTCOME_FAILED && cls == "4xx");
    } else {
        FUZZ_CHECK(v.kind == FOBS_OUTCOME_RETRY && cls == "error", std::to_string(status));
    }
    if (status >= 400 || status < 200) {
        // "HTTP <status>: <printable excerpt>[...]"
        FUZZ_CHECK(v.reason.find("HTTP " + std::to_string(status)) != std::string::npos, v.reason);
        for (unsigned char c : v.reason) FUZZ_CHECK(c >= 0x20 && c != 0x7f, shown(v.reason));
        FUZZ_CHECK(v.reason.size() <= 40 + webhook::max_body_excerpt, shown(v.reason));
    }
    if (v.kind != FOBS_OUTCOME_OK) FUZZ_CHECK(!v.reason.empty());
    return 0;
}
