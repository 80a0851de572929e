// The insert load: C connections, each committing transactions of R rows (one multi-row
// INSERT ... SELECT generate_series, its own implicit transaction), either as fast as possible
// or paced to a steady total rate.
#pragma once

#include "common.hpp"

#include <cstdint>
#include <string>

namespace fobs_bench {

struct LoadSpec {
    std::string conninfo;
    std::string table;
    int64_t events = 0;
    int connections = 4;
    int rows_per_tx = 100;
    double rate = 0; // events/s over all connections; 0 = full speed
};

struct LoadResult {
    int64_t start_us = 0; // wall clock before the first INSERT
    int64_t end_us = 0;   // wall clock after the last COMMIT
    int64_t inserted = 0;
    double max_lag_ms = 0; // paced: how far behind schedule a transaction started, at worst
};

/// The load the command line asks for: --conninfo, --table (required), --events 50000,
/// --connections 4, --rows-per-tx 100, --rate 0 (full speed).
LoadSpec load_spec(const Args &args);

/// Runs the load; throws std::runtime_error on a connection or SQL error.
LoadResult run_load(const LoadSpec &spec);

/// The SQL statement that inserts `rows` rows into `table` (bench schema, see run.sh).
std::string insert_sql(const std::string &table, int rows);

} // namespace fobs_bench
