// The SQL that installs the outbox (printed by `fraiseql-observer sql` through the source's
// `sql` admin op): the outbox and checkpoint tables, emit() for custom events and the capture()
// trigger function. Idempotent, so it can be run again after an upgrade.
#pragma once

#include <string>
#include <string_view>

namespace fraiseql_observer::pg_listen {

/// The DDL for `schema` (must pass check_schema_name()).
std::string outbox_sql(std::string_view schema);

/// The channel emit() NOTIFYs as a wake-up (payload empty): "<schema>_wakeup".
std::string wakeup_channel(std::string_view schema);

} // namespace fraiseql_observer::pg_listen
