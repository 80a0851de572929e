// One non-blocking libpq connection, driven by a single reader thread: connect with a deadline,
// run commands, wait for notifications or a wake-up, detect loss. Nothing here throws on the
// event path; failures are returned as text and a lost connection reports connected() == false.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::pg_listen {

/// Wakes a thread blocked in Connection::wait() (an eventfd). [any-thread]
class Waker {
  public:
    Waker();
    ~Waker();
    Waker(const Waker &) = delete;
    Waker &operator=(const Waker &) = delete;
    void wake() const noexcept;
    void drain() const noexcept;
    int fd() const noexcept { return fd_; }
    /// Sleeps up to `d`, returning early when `stopping` is set (and the waker fired).
    void sleep_for(std::chrono::milliseconds d, const std::atomic<bool> &stopping) const noexcept;

  private:
    int fd_ = -1;
};

/// The host/port/dbname of a conninfo, for logs ("host=db port=5432 dbname=app"); never the
/// password or any other option.
std::string describe_conninfo(const std::string &conninfo);

/// Quotes an identifier the way PostgreSQL's quote_ident does (always quoted).
std::string quote_ident(std::string_view name);
/// "schema.table" -> "schema"."table" (each part quoted; config checks the shape).
std::string quote_qualified(std::string_view schema_dot_table);

/// A command's result: ok() or an error text. Owns the PGresult.
class Result {
  public:
    Result() = default;
    static Result failure(std::string error) {
        Result r;
        r.error_ = std::move(error);
        return r;
    }
    /// An ok() result with no rows (e.g. a command that switched to COPY).
    static Result success() { return Result(); }
    explicit Result(PGresult *res);
    bool ok() const { return error_.empty(); }
    const std::string &error() const { return error_; }
    /// The SQLSTATE of a server error ("" when none).
    const std::string &sqlstate() const { return sqlstate_; }
    int rows() const { return res_ ? PQntuples(res_.get()) : 0; }
    int columns() const { return res_ ? PQnfields(res_.get()) : 0; }
    std::string_view column_name(int col) const { return PQfname(res_.get(), col); }
    uint32_t column_type(int col) const { return PQftype(res_.get(), col); }
    const char *raw_value(int row, int col) const { return PQgetvalue(res_.get(), row, col); }
    bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
    std::string_view value(int row, int col) const {
        return {PQgetvalue(res_.get(), row, col),
                static_cast<size_t>(PQgetlength(res_.get(), row, col))};
    }

  private:
    struct Clear {
        void operator()(PGresult *r) const { PQclear(r); }
    };
    std::unique_ptr<PGresult, Clear> res_;
    std::string error_;
    std::string sqlstate_;
};

struct Notification {
    std::string channel;
    std::string payload;
};

class Connection {
  public:
    struct Options {
        std::string conninfo;
        std::chrono::milliseconds connect_timeout{10000};
        std::chrono::milliseconds statement_timeout{30000}; // also bounds client-side waits
        std::string application_name = "fraiseql-observer";
        /// A logical replication connection (replication=database): SQL plus the replication
        /// commands (IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT, START_REPLICATION).
        bool replication = false;
        /// Server notices and asynchronous messages (libpq would print them to stderr).
        std::function<void(std::string_view)> on_notice;
    };
    Connection(Options options, const Waker *waker, const std::atomic<bool> *stopping);
    ~Connection();
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;

    /// Connects without blocking the thread beyond the deadline (aborts early when `stopping`
    /// is set), then applies statement_timeout. "" on success, else the reason.
    std::string connect();
    bool connected() const { return conn_ != nullptr; }
    void close();
    /// host/port/dbname of the live connection (or of the conninfo when not connected).
    std::string describe() const;

    /// Runs `sql` (one statement when `params` is not empty) and waits for its result. A lost
    /// connection closes this object (connected() turns false).
    Result exec(std::string_view sql, const std::vector<std::optional<std::string>> &params = {});

    /// Waits until the server sent something, the waker fired or `timeout` passed, then reads
    /// what arrived. false when the connection was lost.
    bool wait(std::chrono::milliseconds timeout);
    /// A quoted SQL string literal (PQescapeLiteral); "NULL" when not connected.
    std::string escape_literal(std::string_view text) const;
    /// Moves the notifications received so far into `out` (appends).
    void take_notifications(std::vector<Notification> &out);
    /// Sends `sql` (START_REPLICATION) and returns once the server switched to COPY BOTH, or
    /// with the server's error.
    Result start_copy_both(std::string_view sql);
    /// Non-blocking read of one COPY message: 1 = `out` holds it, 0 = none buffered (wait()
    /// for more), -1 = the stream ended or the connection was lost (see last_error()).
    int read_copy(std::string &out);
    /// Queues one COPY message and pushes it out (bounded wait); false when the connection was lost.
    bool write_copy(std::string_view data);
    /// The server process id of the live connection (0 when not connected).
    int backend_pid() const { return conn_ ? PQbackendPID(conn_) : 0; }

    /// The last connection-level error text (why the connection was lost).
    const std::string &last_error() const { return last_error_; }

  private:
    bool read_input(); // PQconsumeInput; false (and close) on loss
    bool check_lost(); // closes when PQstatus is bad; true when it did
    std::chrono::milliseconds client_deadline() const;

    Options options_;
    const Waker *waker_;
    const std::atomic<bool> *stopping_;
    PGconn *conn_ = nullptr;
    std::string last_error_;
};

/// Exponential backoff with jitter between `min` and `max`.
class Backoff {
  public:
    Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max) : min_(min), max_(max), next_(min) {}
    std::chrono::milliseconds next();
    void reset() { next_ = min_; }

  private:
    std::chrono::milliseconds min_, max_, next_;
};

} // namespace fraiseql_observer::pg_listen
