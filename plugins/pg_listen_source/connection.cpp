#include "connection.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <stdexcept>

namespace fraiseql_observer::pg_listen {

using namespace std::chrono;

namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
    return s;
}

// One poll() on the connection socket with a short tick, so callers can check deadlines and the
// stop flag. Returns the revents of the socket (0 on timeout).
short poll_socket(int sock, short events, milliseconds timeout) {
    pollfd p{sock, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, timeout.count())));
    return r > 0 ? p.revents : 0;
}

} // namespace

Waker::Waker() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
}
Waker::~Waker() {
    if (fd_ >= 0) ::close(fd_);
}
void Waker::wake() const noexcept {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_, &one, sizeof(one));
}
void Waker::drain() const noexcept {
    uint64_t v;
    [[maybe_unused]] auto n = ::read(fd_, &v, sizeof(v));
}

void Waker::sleep_for(milliseconds d, const std::atomic<bool> &stopping) const noexcept {
    auto deadline = steady_clock::now() + d;
    while (!stopping) {
        auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
        if (left.count() <= 0) return;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) > 0) drain();
    }
}

std::string describe_conninfo(const std::string &conninfo) {
    char *err = nullptr;
    PQconninfoOption *opts = PQconninfoParse(conninfo.c_str(), &err);
    if (err) PQfreemem(err);
    if (!opts) return "(unparsable conninfo)";
    std::string host, port, db;
    for (auto *o = opts; o->keyword; ++o) {
        if (!o->val || !*o->val) continue;
        std::string_view k = o->keyword;
        if (k == "host" || (k == "hostaddr" && host.empty())) host = o->val;
        else if (k == "port") port = o->val;
        else if (k == "dbname") db = o->val;
    }
    PQconninfoFree(opts);
    std::string out = "host=" + (host.empty() ? std::string("(default)") : host);
    out += " port=" + (port.empty() ? std::string("(default)") : port);
    out += " dbname=" + (db.empty() ? std::string("(default)") : db);
    return out;
}

std::string quote_ident(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::string quote_qualified(std::string_view t) {
    auto dot = t.find('.');
    return quote_ident(t.substr(0, dot)) + "." + quote_ident(t.substr(dot + 1));
}

Result::Result(PGresult *res) : res_(res) {
    if (!res) {
        error_ = "no result";
        return;
    }
    switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
        break;
    default: {
        error_ = trim(PQresultErrorMessage(res));
        if (error_.empty()) error_ = PQresStatus(PQresultStatus(res));
        if (const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE)) sqlstate_ = s;
    }
    }
}

Connection::Connection(Options options, const Waker *waker, const std::atomic<bool> *stopping)
    : options_(std::move(options)), waker_(waker), stopping_(stopping) {}

Connection::~Connection() { close(); }

void Connection::close() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
}

std::string Connection::describe() const {
    if (!conn_) return describe_conninfo(options_.conninfo);
    std::string host = PQhost(conn_) ? PQhost(conn_) : "";
    std::string port = PQport(conn_) ? PQport(conn_) : "";
    std::string db = PQdb(conn_) ? PQdb(conn_) : "";
    return "host=" + host + " port=" + port + " dbname=" + db;
}

milliseconds Connection::client_deadline() const {
    // The server enforces statement_timeout; the client gives it a margin before it declares the
    // connection dead (a silent network partition never answers at all).
    if (options_.statement_timeout.count() > 0) return options_.statement_timeout + seconds(10);
    return minutes(10);
}

std::string Connection::connect() {
    close();
    last_error_.clear();
    // Our defaults come before "dbname" (the user's conninfo, expanded): libpq processes the
    // keywords in order, so anything the user wrote wins.
    std::string timeout_s = std::to_string(std::max<int64_t>(2, duration_cast<seconds>(options_.connect_timeout).count()));
    // A replication connection's "replication" keyword comes last: it is ours, not the user's.
    const char *keys[] = {"application_name", "connect_timeout", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "dbname",
                          options_.replication ? "replication" : nullptr, nullptr};
    const char *vals[] = {options_.application_name.c_str(), timeout_s.c_str(), "1", "30", "10", "3",
                          options_.conninfo.c_str(), options_.replication ? "database" : nullptr, nullptr};
    conn_ = PQconnectStartParams(keys, vals, 1);
    if (!conn_) return "out of memory";
    // Plugins never write to stdout/stderr: notices go to the reader's logger (or nowhere).
    PQsetNoticeProcessor(
        conn_,
        [](void *arg, const char *message) {
            auto *self = static_cast<Connection *>(arg);
            if (self->options_.on_notice && message) self->options_.on_notice(trim(message));
        },
        this);
    if (PQstatus(conn_) == CONNECTION_BAD) {
        std::string e = trim(PQerrorMessage(conn_));
        close();
        return e;
    }
    auto deadline = steady_clock::now() + options_.connect_timeout;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            std::string e = trim(PQerrorMessage(conn_));
            close();
            return e.empty() ? "connection failed" : e;
        }
        if (stopping_ && stopping_->load()) {
            close();
            return "stopping";
        }
        auto now = steady_clock::now();
        if (now >= deadline) {
            close();
            return "timed out after " + std::to_string(options_.connect_timeout.count()) + " ms";
        }
        auto tick = std::min<milliseconds>(milliseconds(100), duration_cast<milliseconds>(deadline - now) + milliseconds(1));
        short want = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (poll_socket(PQsocket(conn_), want, tick) != 0) st = PQconnectPoll(conn_);
    }
    if (PQsetnonblocking(conn_, 1) != 0) {
        std::string e = trim(PQerrorMessage(conn_));
        close();
        return "cannot switch to non-blocking mode: " + e;
    }
    auto r = exec("SET statement_timeout = " + std::to_string(options_.statement_timeout.count()));
    if (!r.ok()) {
        close();
        return "SET statement_timeout failed: " + r.error();
    }
    return "";
}

bool Connection::check_lost() {
    if (conn_ && PQstatus(conn_) == CONNECTION_BAD) {
        if (last_error_.empty()) last_error_ = trim(PQerrorMessage(conn_));
        close();
        return true;
    }
    return false;
}

bool Connection::read_input() {
    if (!conn_) return false;
    if (!PQconsumeInput(conn_)) {
        last_error_ = trim(PQerrorMessage(conn_));
        if (last_error_.empty()) last_error_ = "connection lost";
        close();
        return false;
    }
    return !check_lost();
}

Result Connection::exec(std::string_view sql, const std::vector<std::optional<std::string>> &params) {
    if (!conn_) return Result::failure("not connected");
    std::string text(sql);
    int sent;
    if (params.empty()) {
        sent = PQsendQuery(conn_, text.c_str());
    } else {
        std::vector<const char *> values;
        values.reserve(params.size());
        for (const auto &p : params) values.push_back(p ? p->c_str() : nullptr);
        sent = PQsendQueryParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0);
    }
    if (!sent) {
        std::string e = trim(PQerrorMessage(conn_));
        last_error_ = e;
        check_lost();
        return Result::failure(e);
    }
    auto deadline = steady_clock::now() + client_deadline();
    auto timed_out = [&] {
        if (steady_clock::now() < deadline) return false;
        last_error_ = "no answer from the server within " + std::to_string(client_deadline().count()) + " ms";
        close();
        return true;
    };
    // Non-blocking mode: push the whole query out, reading meanwhile so the server never stalls.
    for (;;) {
        int f = PQflush(conn_);
        if (f == 0) break;
        if (f < 0) {
            last_error_ = trim(PQerrorMessage(conn_));
            close();
            return Result::failure(last_error_);
        }
        short ev = poll_socket(PQsocket(conn_), POLLIN | POLLOUT, milliseconds(100));
        if ((ev & POLLIN) && !read_input()) return Result::failure(last_error_);
        if (timed_out()) return Result::failure(last_error_);
    }
    Result final_result = Result::failure("no result");
    bool have = false, failed = false;
    for (;;) {
        while (PQisBusy(conn_)) {
            if (poll_socket(PQsocket(conn_), POLLIN, milliseconds(100)) != 0 && !read_input())
                return Result::failure(last_error_);
            if (timed_out()) return Result::failure(last_error_);
        }
        PGresult *res = PQgetResult(conn_);
        if (!res) break;
        Result cur(res);
        // Keep the first error of a multi-statement string, else the last result.
        if (!failed) {
            failed = !cur.ok();
            final_result = std::move(cur);
            have = true;
        }
    }
    if (check_lost() && !have) return Result::failure(last_error_);
    return final_result;
}

bool Connection::wait(milliseconds timeout) {
    if (!conn_) return false;
    pollfd fds[2] = {{PQsocket(conn_), POLLIN, 0}, {waker_ ? waker_->fd() : -1, POLLIN, 0}};
    int r = ::poll(fds, waker_ ? 2 : 1, static_cast<int>(std::max<int64_t>(0, timeout.count())));
    if (r <= 0) return true;
    if (waker_ && fds[1].revents) waker_->drain();
    if (fds[0].revents) return read_input();
    return true;
}

std::string Connection::escape_literal(std::string_view text) const {
    if (!conn_) return "NULL";
    char *q = PQescapeLiteral(conn_, text.data(), text.size());
    if (!q) return "NULL";
    std::string out(q);
    PQfreemem(q);
    return out;
}

Result Connection::start_copy_both(std::string_view sql) {
    if (!conn_) return Result::failure("not connected");
    std::string text(sql);
    if (!PQsendQuery(conn_, text.c_str())) {
        last_error_ = trim(PQerrorMessage(conn_));
        check_lost();
        return Result::failure(last_error_);
    }
    auto deadline = steady_clock::now() + client_deadline();
    for (;;) {
        int f = PQflush(conn_);
        if (f == 0) break;
        if (f < 0 || (poll_socket(PQsocket(conn_), POLLIN | POLLOUT, milliseconds(100)) & POLLIN && !read_input())) {
            if (last_error_.empty()) last_error_ = trim(PQerrorMessage(conn_));
            close();
            return Result::failure(last_error_);
        }
    }
    for (;;) {
        while (PQisBusy(conn_)) {
            if (stopping_ && stopping_->load()) return Result::failure("stopping");
            if (poll_socket(PQsocket(conn_), POLLIN, milliseconds(100)) != 0 && !read_input())
                return Result::failure(last_error_);
            if (steady_clock::now() >= deadline) {
                last_error_ = "no answer to START_REPLICATION within " + std::to_string(client_deadline().count()) + " ms";
                close();
                return Result::failure(last_error_);
            }
        }
        PGresult *res = PQgetResult(conn_);
        if (!res) return Result::failure(check_lost() ? last_error_ : "the server ended the command without COPY BOTH");
        if (PQresultStatus(res) == PGRES_COPY_BOTH) {
            PQclear(res);
            return Result::success();
        }
        Result r(res);
        if (!r.ok()) {
            // Collect the end of the command so the connection is usable (or known lost).
            while (PGresult *more = PQgetResult(conn_)) PQclear(more);
            check_lost();
            return r;
        }
    }
}

int Connection::read_copy(std::string &out) {
    if (!conn_) return -1;
    char *buf = nullptr;
    int n = PQgetCopyData(conn_, &buf, 1);
    if (n > 0) {
        out.assign(buf, static_cast<size_t>(n));
        PQfreemem(buf);
        return 1;
    }
    if (n == 0) return 0;
    // -1: the server ended the COPY (its result says why); -2: an error.
    std::string why = trim(PQerrorMessage(conn_));
    while (PGresult *res = PQgetResult(conn_)) {
        Result r(res);
        if (!r.ok() && why.empty()) why = r.error();
    }
    last_error_ = why.empty() ? "the server ended the replication stream" : why;
    close();
    return -1;
}

bool Connection::write_copy(std::string_view data) {
    if (!conn_) return false;
    if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1) {
        last_error_ = trim(PQerrorMessage(conn_));
        close();
        return false;
    }
    auto deadline = steady_clock::now() + seconds(10);
    for (;;) {
        int f = PQflush(conn_);
        if (f == 0) return true;
        if (f < 0 || steady_clock::now() >= deadline) {
            last_error_ = f < 0 ? trim(PQerrorMessage(conn_)) : "cannot send to the server for 10 s";
            close();
            return false;
        }
        short ev = poll_socket(PQsocket(conn_), POLLIN | POLLOUT, milliseconds(100));
        if ((ev & POLLIN) && !read_input()) return false;
    }
}

void Connection::take_notifications(std::vector<Notification> &out) {
    if (!conn_) return;
    while (PGnotify *n = PQnotifies(conn_)) {
        out.push_back(Notification{n->relname ? n->relname : "", n->extra ? n->extra : ""});
        PQfreemem(n);
    }
}

milliseconds Backoff::next() {
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    auto d = milliseconds(static_cast<int64_t>(static_cast<double>(next_.count()) * jitter(rng)));
    next_ = std::min(max_, next_ * 2);
    return std::clamp(d, milliseconds(1), max_);
}

} // namespace fraiseql_observer::pg_listen
