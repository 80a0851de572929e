// Configuration of the `log` action (docs/plugins/log.md is the reference).
#pragma once

#include <fraiseql_observer/abi.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::log_action {

enum class Format { summary, body };
enum class FailMode { retry, failed };

struct Config {
    fobs_log_level level = FOBS_LOG_INFO;
    Format format = Format::summary;
    // Failure knobs, for tests and demos.
    uint64_t fail_every = 0;            // every Nth execution fails (0 = never)
    FailMode fail_mode = FailMode::retry;
    uint32_t fail_first_deliveries = 0; // RETRY while delivery_count <= N
    std::vector<std::string> fail_entity_types; // permanent failure for these types
    int64_t delay_ms = 0;               // sleep before completing
    int64_t retry_after_ms = -1;        // delay requested with RETRY (-1 = transport's backoff)
};

/// Parses the component's JSON config; throws sdk::ConfigError naming the key.
Config parse_config(std::string_view json_text);

} // namespace fraiseql_observer::log_action
