#include "config.hpp"

namespace fraiseql_observer::memory {

Config parse_config(std::string_view json_text) {
    // Every check is the table's (the host runs it before create; the reader again).
    const sdk::ConfigReader r(json_text, config_keys);
    Config c;
    c.capacity = static_cast<uint64_t>(r.integer("capacity"));
    c.max_deliver = static_cast<uint32_t>(r.integer("max_deliver"));
    c.ack_wait_ms = r.integer("ack_wait_ms");
    c.backoff_ms = r.integers("backoff_ms");
    c.dedup_window_ms = r.integer("dedup_window_ms");
    c.dead_letter_capacity = static_cast<uint64_t>(r.integer("dead_letter_capacity"));
    c.publish_timeout_ms = r.integer("publish_timeout_ms");
    c.drain_timeout_ms = r.integer("drain_timeout_ms");
    return c;
}

} // namespace fraiseql_observer::memory
