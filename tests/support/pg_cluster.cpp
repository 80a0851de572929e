#include "pg_cluster.hpp"

#include <postgresql/libpq-fe.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <pwd.h>
#include <stdexcept>
#include <thread>
#include <unistd.h>

namespace fobs_test {

namespace fs = std::filesystem;
using namespace std::chrono;

namespace {

std::string pg_bin(const std::string &tool) {
    const char *dir = std::getenv("FOBS_PG_BIN");
    return std::string(dir && *dir ? dir : "/usr/lib/postgresql/15/bin") + "/" + tool;
}

bool is_root() { return ::geteuid() == 0; }

void chown_postgres(const fs::path &p) {
    if (!is_root()) return;
    passwd *pw = ::getpwnam("postgres");
    if (!pw) throw std::runtime_error("running as root but there is no `postgres` user");
    if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        throw std::runtime_error("chown postgres " + p.string() + " failed");
}

std::vector<std::vector<std::string>> rows_of(PGresult *res) {
    std::vector<std::vector<std::string>> rows;
    for (int r = 0; r < PQntuples(res); ++r) {
        std::vector<std::string> row;
        for (int c = 0; c < PQnfields(res); ++c)
            row.emplace_back(PQgetisnull(res, r, c) ? "" : PQgetvalue(res, r, c));
        rows.push_back(std::move(row));
    }
    return rows;
}

// Runs `sql` on `conn`; returns the rows of the last result; throws on the first error.
std::vector<std::vector<std::string>> run(PGconn *conn, const std::string &sql) {
    if (!PQsendQuery(conn, sql.c_str())) throw std::runtime_error(std::string("libpq: ") + PQerrorMessage(conn));
    std::vector<std::vector<std::string>> rows;
    std::string error;
    while (PGresult *res = PQgetResult(conn)) {
        auto st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK) rows = rows_of(res);
        else if (st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY && error.empty())
            error = PQresultErrorMessage(res);
        PQclear(res);
    }
    if (!error.empty()) throw std::runtime_error("SQL failed: " + error + "in: " + sql.substr(0, 200));
    return rows;
}

} // namespace

PgCluster::PgCluster() : PgCluster(Options{}) {}

PgCluster::PgCluster(Options options) : options_(std::move(options)), dir_("fobs-pg") {
    // TempDir is 0755 and owned by root; the server's own directories belong to postgres.
    data_dir_ = (dir_ / "data").string();
    socket_dir_ = (dir_ / "run").string();
    fs::create_directories(socket_dir_);
    chown_postgres(socket_dir_);
    log_file_ = (fs::path(socket_dir_) / "server.log").string();
    fs::create_directories(data_dir_);
    fs::permissions(data_dir_, fs::perms::owner_all, fs::perm_options::replace);
    chown_postgres(data_dir_);
    auto [code, out] = run_command(as_postgres({pg_bin("initdb"), "-D", data_dir_, "-U", "postgres",
                                                "--auth=trust", "-E", "UTF8", "--no-instructions"}),
                                   {}, seconds(120));
    if (code != 0) throw std::runtime_error("initdb failed (" + std::to_string(code) + "):\n" + out);
    // The port was free when picked; another process may bind it before PostgreSQL does. Then
    // pg_ctl fails with "Address already in use" and another port is tried.
    for (int attempt = 1;; ++attempt) {
        port_ = free_port();
        try {
            start();
            break;
        } catch (const std::runtime_error &e) {
            if (attempt == 3 || std::string(e.what()).find("already in use") == std::string::npos)
                throw;
        }
    }
}

PgCluster::~PgCluster() {
    try {
        if (running()) stop("immediate");
    } catch (...) {
    }
}

std::vector<std::string> PgCluster::as_postgres(std::vector<std::string> argv) const {
    if (!is_root()) return argv;
    argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
    return argv;
}

std::string PgCluster::conninfo(const std::string &dbname) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
}

void PgCluster::start() {
    std::string opts = "-p " + std::to_string(port_) + " -k " + socket_dir_ +
                       " -c listen_addresses=127.0.0.1 -c fsync=" + (options_.fsync ? "on" : "off");
    for (const auto &s : options_.settings) opts += " -c " + s;
    auto [code, out] = run_command(as_postgres({pg_bin("pg_ctl"), "-D", data_dir_, "-o", opts, "-l",
                                                log_file_, "-w", "-t", "60", "start"}),
                                   {}, seconds(90));
    if (code != 0)
        throw std::runtime_error("pg_ctl start failed (" + std::to_string(code) + "):\n" + out +
                                 "\nserver log:\n" + read_file(log_file_));
    if (!wait_for_port(port_, seconds(30))) throw std::runtime_error("PostgreSQL does not accept connections");
}

pid_t PgCluster::pid() const {
    std::string text = read_file(fs::path(data_dir_) / "postmaster.pid");
    if (text.empty()) return -1;
    pid_t p = static_cast<pid_t>(std::atol(text.c_str()));
    return p > 0 && ::kill(p, 0) == 0 ? p : -1;
}

bool PgCluster::running() const { return pid() > 0; }

void PgCluster::stop(const std::string &mode) {
    pid_t p = pid();
    if (p <= 0) return;
    // The postmaster's shutdown signals: SIGTERM smart, SIGINT fast, SIGQUIT immediate.
    int sig = mode == "immediate" ? SIGQUIT : mode == "smart" ? SIGTERM : SIGINT;
    ::kill(p, sig);
    auto deadline = steady_clock::now() + seconds(60);
    while (::kill(p, 0) == 0 && steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(20));
    if (::kill(p, 0) == 0) throw std::runtime_error("PostgreSQL (pid " + std::to_string(p) + ") did not stop");
}

void PgCluster::exec(const std::string &sql, const std::string &dbname) const {
    PgSession s(conninfo(dbname));
    s.exec(sql);
}

std::vector<std::vector<std::string>> PgCluster::query(const std::string &sql, const std::string &dbname) const {
    PgSession s(conninfo(dbname));
    return s.query(sql);
}

std::string PgCluster::scalar(const std::string &sql, const std::string &dbname) const {
    PgSession s(conninfo(dbname));
    return s.scalar(sql);
}

PgSession::PgSession(const std::string &conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
        std::string e = conn_ ? PQerrorMessage(conn_) : "out of memory";
        if (conn_) PQfinish(conn_);
        conn_ = nullptr;
        throw std::runtime_error("cannot connect to PostgreSQL: " + e);
    }
}

PgSession::~PgSession() {
    if (conn_) PQfinish(conn_);
}

void PgSession::exec(const std::string &sql) { run(conn_, sql); }

std::vector<std::vector<std::string>> PgSession::query(const std::string &sql) { return run(conn_, sql); }

std::string PgSession::scalar(const std::string &sql) {
    auto rows = run(conn_, sql);
    if (rows.empty() || rows[0].empty()) throw std::runtime_error("no value from: " + sql);
    return rows[0][0];
}

} // namespace fobs_test
