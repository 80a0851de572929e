// Which events a pipeline's durable consumer asks JetStream for. The host hands the pipeline's
// entity_types / operations filters to the transport (fobs_consumer_options); the transport
// applies them once, so the host does not filter again (abi.h `filters_applied`):
//  - on the server where one filter subject can say it: at most one entity type and at most
//    one operation -> "{prefix}.{type|*}.{op|*}". Unwanted events are then never fetched.
//  - otherwise in the transport, right after the fetch (acked without reaching the host):
//    several subjects need the consumer's FilterSubjects, which nats-server 2.10 added
//    (Debian 12 ships 2.9.10) and cnats 3.4.1 cannot send.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::nats_transport {

class ConsumerFilter {
  public:
    ConsumerFilter(std::string_view subject_prefix, const std::vector<std::string> &entity_types,
                   const std::vector<std::string> &operations);
    /// The consumer's FilterSubject, "" when the server cannot filter (no filter, or several).
    const std::string &server_subject() const { return server_subject_; }
    /// True when events must be checked after the fetch (the server does not filter them all).
    bool filters_locally() const { return local_; }
    /// Whether the pipeline wants an event of this type and operation.
    bool wanted(std::string_view entity_type, std::string_view operation) const;

  private:
    std::set<std::string, std::less<>> types_, ops_;
    std::string server_subject_;
    bool local_ = false;
};

} // namespace fraiseql_observer::nats_transport
