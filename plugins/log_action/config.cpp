#include "config.hpp"

namespace fraiseql_observer::log_action {

Config parse_config(std::string_view json_text) {
    // Types, ranges, choices and unknown keys are the table's (checked by the host before
    // create, and again by the reader); only the mapping to enums is left here.
    const sdk::ConfigReader r(json_text, config_keys);
    Config c;
    const std::string level = r.string("level");
    c.level = level == "trace"   ? FOBS_LOG_TRACE
              : level == "debug" ? FOBS_LOG_DEBUG
              : level == "warn"  ? FOBS_LOG_WARN
              : level == "error" ? FOBS_LOG_ERROR
                                 : FOBS_LOG_INFO;
    c.format = r.string("format") == "body" ? Format::body : Format::summary;
    c.fail_every = static_cast<uint64_t>(r.integer("fail_every"));
    c.fail_mode = r.string("fail_mode") == "failed" ? FailMode::failed : FailMode::retry;
    c.fail_first_deliveries = static_cast<uint32_t>(r.integer("fail_first_deliveries"));
    c.fail_entity_types = r.strings("fail_entity_types");
    c.delay_ms = r.integer("delay_ms");
    c.retry_after_ms = r.integer("retry_after_ms");
    return c;
}

} // namespace fraiseql_observer::log_action
