#include "consumer_filter.hpp"

namespace fraiseql_observer::nats_transport {

ConsumerFilter::ConsumerFilter(std::string_view prefix, const std::vector<std::string> &entity_types,
                               const std::vector<std::string> &operations)
    : types_(entity_types.begin(), entity_types.end()), ops_(operations.begin(), operations.end()) {
    if (types_.empty() && ops_.empty()) return; // everything: no filter at all
    if (types_.size() <= 1 && ops_.size() <= 1) {
        server_subject_ = std::string(prefix) + "." + (types_.empty() ? "*" : *types_.begin()) + "." +
                          (ops_.empty() ? "*" : *ops_.begin());
        return;
    }
    local_ = true;
}

bool ConsumerFilter::wanted(std::string_view entity_type, std::string_view operation) const {
    return (types_.empty() || types_.count(entity_type)) && (ops_.empty() || ops_.count(operation));
}

} // namespace fraiseql_observer::nats_transport
