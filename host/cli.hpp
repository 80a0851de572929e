// The command line (SPEC section 2).
#pragma once

namespace fraiseql_observer::host {

/// Runs the CLI; returns the process exit code: 0 success, 2 usage or configuration error,
/// 1 runtime failure.
int cli_main(int argc, char **argv);

} // namespace fraiseql_observer::host
