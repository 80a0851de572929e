// The per-stage latency breakdown of one paced run: joins what `e2e_bench stage-tap` saw at
// nats-server with the receiver's arrivals, per event id.
#pragma once

#include "common.hpp"

#include <string>
#include <vector>

namespace fobs_bench {

/// Waits up to `wait_secs` for the tap's file, fetches the receiver's arrivals and returns one
/// Result per stage (kind "stage:<parent_kind>:<n>", label the stage's name, p50/p99/max set,
/// events = ids seen at both ends). Empty (with a message on stderr) when the file never came.
std::vector<Result> stage_breakdown(const std::string &tap_file, int receiver_port, const std::string &parent_kind,
                                    int wait_secs);

} // namespace fobs_bench
