// The `nats` transport's capabilities fobs.status/1 and fobs.dlq/1 (JSON in, JSON out; shapes
// in abi.h, the nats-specific members in docs/plugins/nats.md).
#pragma once

#include "link.hpp"
#include "nats_config.hpp"

#include <nlohmann/json.hpp>

#include <functional>

namespace fraiseql_observer::nats_transport {

/// Receives one progress object of a long operation (dlq replay --all).
using Progress = std::function<void(const nlohmann::json &)>;

/// fobs.status/1: stream, consumer (request "consumer"; "" = none) and DLQ figures, with the
/// generic `summary` and `sections` (abi.h). Throws std::runtime_error when NATS fails.
nlohmann::json status_answer(Link &link, const NatsConfig &config, const nlohmann::json &request);

/// fobs.dlq/1: list, show, replay, purge. Throws sdk::UnsupportedOperation for an unknown op,
/// std::invalid_argument for bad arguments, std::runtime_error when NATS fails.
nlohmann::json dlq_answer(Link &link, const NatsConfig &config, const nlohmann::json &request,
                          const Progress &progress);

} // namespace fraiseql_observer::nats_transport
