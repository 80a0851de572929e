// Stream and durable-consumer provisioning: create when missing, reconcile the mutable
// settings when they differ (and log what changed), refuse impossible changes clearly.
#pragma once

#include "link.hpp"
#include "nats_config.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <stdexcept>
#include <string>

namespace fraiseql_observer::nats_transport {

/// A provisioning failure. `permanent` = retrying cannot help (e.g. storage type change):
/// reported as a startup error; otherwise retried in the background.
class ProvisionError : public std::runtime_error {
  public:
    ProvisionError(const std::string &msg, bool permanent)
        : std::runtime_error(msg), permanent_(permanent) {}
    bool permanent() const { return permanent_; }

  private:
    bool permanent_;
};

/// Ensures the event stream and the DLQ stream exist with the configured settings.
void provision_streams(Link &link, const NatsConfig &config, const sdk::Host &host);

/// Ensures the durable pull consumer exists with the configured settings. Returns the ack
/// wait the server applied, in milliseconds.
int64_t provision_consumer(Link &link, const NatsConfig &config, const std::string &durable,
                           const std::string &filter_subject, const sdk::Host &host);

} // namespace fraiseql_observer::nats_transport
