// What an HTTP exchange means for the event (SPEC section 7): 2xx ok; 408, 429, 5xx and
// transport errors retry, honouring Retry-After; 410 and other 4xx fail for good; 3xx fails
// unless redirects are followed.
#pragma once

#include <fraiseql_observer/abi.h>

#include <curl/curl.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace fraiseql_observer::webhook {

/// At most this many bytes of a response body are kept for a failure reason.
inline constexpr size_t max_body_excerpt = 256;

/// What came back from one request.
struct Exchange {
    CURLcode curl_code = CURLE_OK;
    std::string_view curl_error; // libcurl's error buffer (may be empty)
    long status = 0;             // final HTTP status, 0 when none arrived
    std::string_view retry_after; // the final response's Retry-After header value ("" = none)
    std::string_view location;    // the final response's Location header value
    std::string_view body_excerpt; // first bytes of the body (<= max_body_excerpt)
    bool body_truncated = false;
};

struct Verdict {
    fobs_outcome_kind kind = FOBS_OUTCOME_OK;
    int64_t retry_after_ms = -1;
    std::string reason;
    const char *status_class = "error"; // metrics label: 2xx 3xx 4xx 5xx error
};

/// Retry-After as milliseconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3);
/// -1 when absent or unparsable. `now_unix_s` comes from the host clock.
int64_t parse_retry_after(std::string_view value, int64_t now_unix_s);

Verdict classify(const Exchange &x, bool follow_redirects, int64_t now_unix_s);

} // namespace fraiseql_observer::webhook
