// Admin operations of the `nats` transport (JSON in, JSON out; shapes documented in
// docs/plugins/nats.md): status, dlq_list, dlq_show, dlq_replay, dlq_purge.
#pragma once

#include "link.hpp"
#include "nats_config.hpp"

#include <nlohmann/json.hpp>

namespace fraiseql_observer::nats_transport {

/// Runs one admin request. Throws std::invalid_argument for an unknown op or bad arguments,
/// std::runtime_error when NATS fails.
nlohmann::json run_admin(Link &link, const NatsConfig &config, const nlohmann::json &request);

} // namespace fraiseql_observer::nats_transport
