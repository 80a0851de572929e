// Test support: a throw-away PostgreSQL 15 cluster on a free loopback port.
//
//   fobs_test::PgCluster pg;                     // initdb + start (fsync off: tests only)
//   pg.exec("CREATE TABLE t (id int)");           // libpq; throws on error
//   auto n = pg.scalar("SELECT count(*) FROM t"); // first column of the first row
//   fobs_test::PgSession s(pg.conninfo());       // a connection of its own (transactions)
//   pg.restart();                                 // fast shutdown + start, same port and data
//
// initdb and pg_ctl run as the `postgres` user when the test runs as root (the data directory
// is then owned by postgres). Binaries come from /usr/lib/postgresql/15/bin (or $FOBS_PG_BIN).
// The server is stopped by the PID in postmaster.pid and its directory removed on destruction.
// Linking needs libpq (`PkgConfig::LIBPQ`).
#pragma once

#include "process.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

typedef struct pg_conn PGconn;

namespace fobs_test {

class PgCluster {
  public:
    struct Options {
        bool fsync = false;                 // benchmarks set true
        std::vector<std::string> settings;  // extra "-c name=value" server settings
    };
    /// initdb + start; throws std::runtime_error (with the tool's output) on failure.
    PgCluster();
    explicit PgCluster(Options options);
    ~PgCluster();
    PgCluster(const PgCluster &) = delete;
    PgCluster &operator=(const PgCluster &) = delete;

    int port() const { return port_; }
    /// key=value conninfo for user postgres on 127.0.0.1 (database `dbname`).
    std::string conninfo(const std::string &dbname = "postgres") const;

    /// Runs SQL (several statements allowed) on a fresh connection; throws on error.
    void exec(const std::string &sql, const std::string &dbname = "postgres") const;
    /// All rows of a query as text ("" for NULL); throws on error.
    std::vector<std::vector<std::string>> query(const std::string &sql,
                                                const std::string &dbname = "postgres") const;
    /// First column of the first row; throws when there is none.
    std::string scalar(const std::string &sql, const std::string &dbname = "postgres") const;

    /// pg_ctl start (same port and data directory).
    void start();
    /// Shuts the server down ("fast", or "immediate" to simulate a crash) and waits for its PID
    /// to be gone.
    void stop(const std::string &mode = "fast");
    void restart(const std::string &mode = "fast") {
        stop(mode);
        start();
    }
    bool running() const;
    /// The postmaster's PID (-1 when not running).
    pid_t pid() const;
    const std::string &log_file() const { return log_file_; }

  private:
    std::vector<std::string> as_postgres(std::vector<std::string> argv) const;
    Options options_;
    TempDir dir_;
    std::string data_dir_, socket_dir_, log_file_;
    int port_ = 0;
};

/// One libpq connection of its own (e.g. to hold a transaction open). Throws on errors.
class PgSession {
  public:
    explicit PgSession(const std::string &conninfo);
    ~PgSession();
    PgSession(const PgSession &) = delete;
    PgSession &operator=(const PgSession &) = delete;
    void exec(const std::string &sql);
    std::vector<std::vector<std::string>> query(const std::string &sql);
    std::string scalar(const std::string &sql);
    PGconn *raw() const { return conn_; }

  private:
    PGconn *conn_ = nullptr;
};

} // namespace fobs_test
