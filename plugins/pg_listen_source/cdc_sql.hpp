// The SQL a DBA runs to prepare a database for mode = "cdc" when the observer must not create
// anything itself (create = false): settings, a replication role, the publication, replica
// identity for old values, and the slot. Printed by `fraiseql-observer sql --mode cdc`.
#pragma once

#include "config.hpp"

#include <string>
#include <string_view>

namespace fraiseql_observer::pg_listen {

/// `slot` is the slot this source uses (its configured or default name).
std::string cdc_sql(const Config &config, std::string_view slot);

} // namespace fraiseql_observer::pg_listen
