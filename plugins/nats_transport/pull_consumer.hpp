// A durable JetStream pull consumer feeding the host: batched fetches on a plugin thread,
// one completion token per message, and the settle mapping of SPEC section 5:
//   OK -> ack (only now, after the action finished);
//   RETRY -> nak with a delay (the action's retry_after, else the backoff by delivery count),
//            or, on the last allowed delivery, DLQ then term;
//   FAILED -> DLQ (wait for its PubAck) then term.
// A ticker keeps held messages alive (in-progress) and refreshes the pending gauges; the
// MAX_DELIVERIES / MSG_TERMINATED advisories of the consumer feed the DLQ safety net.
#pragma once

#include "dead_letters.hpp"
#include "link.hpp"
#include "nats_config.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <functional>
#include <memory>

namespace fraiseql_observer::nats_transport {

class PullConsumer final : public sdk::Consumer {
  public:
    /// `transport_ready` tells whether the streams are provisioned (the consumer is set up
    /// only then).
    PullConsumer(std::shared_ptr<Link> link, const NatsConfig &config, sdk::Host host,
                 DeadLetters &dead_letters, sdk::ConsumerOptions options, sdk::ConsumerSink sink,
                 std::function<bool()> transport_ready);
    ~PullConsumer() override;

    /// Provisions the durable consumer, subscribes (advisories first, then the pull
    /// subscription) and starts the threads. When the transport is not ready yet (NATS
    /// unreachable) the set-up is retried in the background instead; a permanent problem
    /// found now (e.g. a push consumer of that name) throws.
    void open();
    void close() noexcept override;

    struct Core; // shared with every delivered message's token

  private:
    std::shared_ptr<Core> core_;
};

} // namespace fraiseql_observer::nats_transport
