// `e2e_bench receive`: the webhook receiver every contender posts to. One epoll thread, HTTP/1.1
// keep-alive, answers 204 at once; records each event's id (first "id" field of the JSON body)
// and latency (arrival minus the body's "timestamp", written by PostgreSQL at insert time).
// GET /stats returns the counters as JSON, POST /reset clears them; its own CPU time is part
// of /stats so every run shows whether the receiver was anywhere near its limit.
// For bench/chaos.sh it can also misbehave on purpose: POST /mode/fail answers every event with
// 503 (not recorded), POST /mode/hang reads events and never answers them (the client must time
// out; the held connections are closed when the mode changes), POST /mode/ok is the default.
// GET /ids lists every distinct event id with its entity_id ("<id>\t<entity_id>\n"), so a
// chaos run can tell exactly which rows never arrived; GET /arrivals lists each distinct id with
// its first arrival ("<id>\t<wall-clock µs>\n"), for the per-stage latency breakdown.
// A body that is a JSON array (a webhook batch) counts each element as one event; `requests`
// counts HTTP requests, `events` the events they carried.
#include "common.hpp"
#include "subcommands.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace fobs_bench {
namespace {

struct Connection {
    int fd = -1;
    std::string in;
    size_t consumed = 0;
    std::string out;
    bool close_after = false;
    bool want_write = false;
    bool hung = false; // holds an unanswered event (hang mode); further input is ignored
};

enum class Mode { ok, fail, hang };

struct Counters {
    struct Seen {
        std::string entity_id;
        int64_t arrival_us = 0;
    };
    uint64_t requests = 0, events = 0, distinct = 0, duplicates = 0, bad = 0, failed = 0, hung = 0;
    int64_t first_us = 0, last_us = 0;
    std::unordered_map<std::string, Seen> seen; // event id -> entity_id, first arrival
    std::vector<int64_t> latency_us;
    Mode mode = Mode::ok;
    bool release_hung = false; // the mode left "hang": close the held connections
    void reset() {
        requests = events = distinct = duplicates = bad = failed = hung = 0;
        first_us = last_us = 0;
        seen.clear();
        seen.reserve(1 << 20);
        latency_us.clear();
        latency_us.reserve(1 << 20);
    }
};

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// The value of the first `"name"` field in a JSON text: a string's contents or a bare token.
std::string_view json_field(std::string_view body, std::string_view name) {
    std::string key = "\"" + std::string(name) + "\"";
    size_t pos = body.find(key);
    if (pos == std::string_view::npos) return {};
    pos += key.size();
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (pos >= body.size() || body[pos] != ':') return {};
    ++pos;
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (pos >= body.size()) return {};
    if (body[pos] == '"') {
        size_t end = body.find('"', pos + 1);
        return end == std::string_view::npos ? std::string_view{} : body.substr(pos + 1, end - pos - 1);
    }
    size_t end = body.find_first_of(",} \t\r\n", pos);
    return body.substr(pos, end == std::string_view::npos ? body.size() - pos : end - pos);
}

bool header_equals(std::string_view headers, std::string_view name, std::string_view *value) {
    // Case-insensitive search for "\r\n<name>:".
    for (size_t pos = headers.find("\r\n"); pos != std::string_view::npos; pos = headers.find("\r\n", pos + 2)) {
        size_t start = pos + 2;
        if (headers.size() - start < name.size() + 1) continue;
        if (strncasecmp(headers.data() + start, name.data(), name.size()) != 0 ||
            headers[start + name.size()] != ':')
            continue;
        size_t vstart = start + name.size() + 1;
        while (vstart < headers.size() && headers[vstart] == ' ') ++vstart;
        size_t vend = headers.find("\r\n", vstart);
        *value = headers.substr(vstart, (vend == std::string_view::npos ? headers.size() : vend) - vstart);
        return true;
    }
    return false;
}

std::string stats_json(const Counters &c) {
    std::vector<int64_t> lat = c.latency_us;
    int64_t p50 = -1, p99 = -1, mx = -1;
    if (!lat.empty()) {
        std::sort(lat.begin(), lat.end());
        p50 = lat[(lat.size() - 1) * 50 / 100];
        p99 = lat[(lat.size() - 1) * 99 / 100];
        mx = lat.back();
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return "{\"requests\":" + std::to_string(c.requests) + ",\"events\":" + std::to_string(c.events) +
           ",\"distinct\":" + std::to_string(c.distinct) +
           ",\"duplicates\":" + std::to_string(c.duplicates) + ",\"bad\":" + std::to_string(c.bad) +
           ",\"failed\":" + std::to_string(c.failed) + ",\"hung\":" + std::to_string(c.hung) +
           ",\"mode\":\"" + (c.mode == Mode::ok ? "ok" : c.mode == Mode::fail ? "fail" : "hang") + "\"" +
           ",\"first_us\":" + std::to_string(c.first_us) + ",\"last_us\":" + std::to_string(c.last_us) +
           ",\"latencies\":" + std::to_string(lat.size()) + ",\"p50_us\":" + std::to_string(p50) +
           ",\"p99_us\":" + std::to_string(p99) + ",\"max_us\":" + std::to_string(mx) +
           ",\"cpu_s\":" + std::to_string(cpu) + "}";
}

std::string ids_text(const Counters &c) {
    std::string out;
    out.reserve(c.seen.size() * 64);
    for (const auto &[id, seen] : c.seen) {
        out += id;
        out += '\t';
        out += seen.entity_id;
        out += '\n';
    }
    return out;
}

std::string arrivals_text(const Counters &c) {
    std::string out;
    out.reserve(c.seen.size() * 40);
    for (const auto &[id, seen] : c.seen) {
        out += id;
        out += '\t';
        out += std::to_string(seen.arrival_us);
        out += '\n';
    }
    return out;
}

// The elements of a top-level JSON array (a webhook batch), or the body itself when it is
// not an array. Only brackets, braces and strings are tracked: enough to split valid JSON.
std::vector<std::string_view> events_of(std::string_view body) {
    size_t i = body.find_first_not_of(" \t\r\n");
    if (i == std::string_view::npos || body[i] != '[') return {body};
    std::vector<std::string_view> out;
    int depth = 0;
    bool in_string = false;
    size_t start = std::string_view::npos;
    for (++i; i < body.size(); ++i) {
        char ch = body[i];
        if (in_string) {
            if (ch == '\\') ++i;
            else if (ch == '"') in_string = false;
            continue;
        }
        if (ch == '"') in_string = true;
        else if (ch == '{' || ch == '[') {
            if (depth++ == 0) start = i;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0) break; // the array's own ']'
            if (--depth == 0 && start != std::string_view::npos) {
                out.push_back(body.substr(start, i + 1 - start));
                start = std::string_view::npos;
            }
        }
    }
    return out;
}

void record_event(Counters &counters, std::string_view event, int64_t now) {
    ++counters.events;
    std::string_view id = json_field(event, "id");
    if (id.empty()) {
        ++counters.bad;
        return;
    }
    auto [it, fresh] = counters.seen.try_emplace(std::string(id));
    if (!fresh) {
        ++counters.duplicates;
        return;
    }
    it->second.entity_id = std::string(json_field(event, "entity_id"));
    it->second.arrival_us = now;
    ++counters.distinct;
    int64_t ts = parse_iso8601_us(json_field(event, "timestamp"));
    if (ts > 0) counters.latency_us.push_back(now - ts);
}

void respond(Connection &conn, int status, std::string_view reason, const std::string &body,
             std::string_view type = "application/json") {
    conn.out += "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
    if (status != 204) {
        conn.out += "Content-Type: " + std::string(type) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    conn.out += conn.close_after ? "Connection: close\r\n\r\n" : "\r\n";
    conn.out += body;
}

// Handles every complete request in the buffer; false when the connection must be dropped.
bool handle_input(Connection &conn, Counters &counters) {
    for (;;) {
        if (conn.hung) { // the client waits for an answer that never comes; it sends nothing else
            conn.in.clear();
            conn.consumed = 0;
            return true;
        }
        std::string_view buf(conn.in);
        buf.remove_prefix(conn.consumed);
        size_t head_end = buf.find("\r\n\r\n");
        if (head_end == std::string_view::npos) return buf.size() < 64 * 1024;
        std::string_view head = buf.substr(0, head_end + 2);
        size_t body_len = 0;
        std::string_view v;
        if (header_equals(head, "content-length", &v)) body_len = std::strtoul(std::string(v).c_str(), nullptr, 10);
        else if (header_equals(head, "transfer-encoding", &v)) return false; // chunked: not supported
        if (buf.size() < head_end + 4 + body_len) return true;
        std::string_view body = buf.substr(head_end + 4, body_len);
        conn.close_after = header_equals(head, "connection", &v) && strncasecmp(v.data(), "close", 5) == 0;
        size_t sp1 = head.find(' ');
        size_t sp2 = head.find(' ', sp1 + 1);
        std::string_view method = head.substr(0, sp1);
        std::string_view path = head.substr(sp1 + 1, sp2 - sp1 - 1);

        if (method == "GET" && path == "/stats") {
            respond(conn, 200, "OK", stats_json(counters));
        } else if (method == "POST" && path == "/reset") {
            counters.reset();
            respond(conn, 200, "OK", "{}");
        } else if (method == "GET" && path == "/ids") {
            respond(conn, 200, "OK", ids_text(counters), "text/plain");
        } else if (method == "GET" && path == "/arrivals") {
            respond(conn, 200, "OK", arrivals_text(counters), "text/plain");
        } else if (method == "POST" && (path == "/mode/ok" || path == "/mode/fail" || path == "/mode/hang")) {
            Mode next = path == "/mode/ok" ? Mode::ok : path == "/mode/fail" ? Mode::fail : Mode::hang;
            if (counters.mode == Mode::hang && next != Mode::hang) counters.release_hung = true;
            counters.mode = next;
            respond(conn, 200, "OK", "{}");
        } else if (counters.mode == Mode::fail) {
            ++counters.failed;
            respond(conn, 503, "Service Unavailable", "{\"error\":\"chaos: failing on purpose\"}");
        } else if (counters.mode == Mode::hang) {
            ++counters.hung;
            conn.hung = true;
            conn.in.clear();
            conn.consumed = 0;
            return true;
        } else {
            int64_t now = wall_us();
            ++counters.requests;
            if (counters.first_us == 0) counters.first_us = now;
            counters.last_us = now;
            for (std::string_view event : events_of(body)) record_event(counters, event, now);
            respond(conn, 204, "No Content", "");
        }
        conn.consumed += head_end + 4 + body_len;
        if (conn.consumed == conn.in.size()) {
            conn.in.clear();
            conn.consumed = 0;
        }
        if (conn.close_after) return true;
    }
}

} // namespace

int run_free_port(const Args &) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        ::close(fd);
        return 1;
    }
    std::cout << ntohs(addr.sin_port) << std::endl;
    ::close(fd);
    return 0;
}

int run_receiver(const Args &args) {
    int port = static_cast<int>(args.num("port", 0));
    int listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(listen_fd, 1024) != 0) {
        std::cerr << "receiver: cannot listen on 127.0.0.1:" << port << ": " << std::strerror(errno) << "\n";
        return 1;
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd, reinterpret_cast<sockaddr *>(&addr), &len);
    std::cout << "listening 127.0.0.1:" << ntohs(addr.sin_port) << std::endl;

    // SIGTERM only: run.sh starts it in the background, where SIGINT stays ignored, so a Ctrl-C
    // reaches run.sh's trap (which stops it by PID) instead of failing the running measurement.
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr; // the listening socket
    ::epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);

    Counters counters;
    counters.reset();
    std::unordered_map<int, std::unique_ptr<Connection>> conns;
    std::vector<epoll_event> events(256);
    char chunk[64 * 1024];
    auto drop = [&](Connection *c) {
        ::close(c->fd);
        conns.erase(c->fd);
    };
    while (!g_stop) {
        if (counters.release_hung) {
            counters.release_hung = false;
            std::vector<Connection *> held;
            for (auto &[fd, c] : conns)
                if (c->hung) held.push_back(c.get());
            for (Connection *c : held) drop(c);
        }
        int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
        for (int i = 0; i < n; ++i) {
            auto *c = static_cast<Connection *>(events[i].data.ptr);
            if (!c) {
                for (;;) {
                    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    auto conn = std::make_unique<Connection>();
                    conn->fd = fd;
                    epoll_event cev{};
                    cev.events = EPOLLIN;
                    cev.data.ptr = conn.get();
                    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                    conns.emplace(fd, std::move(conn));
                }
                continue;
            }
            bool ok = true;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t r = ::recv(c->fd, chunk, sizeof chunk, 0);
                if (r > 0) {
                    c->in.append(chunk, static_cast<size_t>(r));
                    ok = handle_input(*c, counters);
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    ok = false;
                }
            }
            if (ok && !c->out.empty()) {
                ssize_t w = ::send(c->fd, c->out.data(), c->out.size(), MSG_NOSIGNAL);
                if (w > 0) c->out.erase(0, static_cast<size_t>(w));
                else if (w < 0 && errno != EAGAIN && errno != EINTR) ok = false;
            }
            if (ok && c->out.empty() && c->close_after) ok = false;
            if (!ok) {
                drop(c);
                continue;
            }
            bool want_write = !c->out.empty();
            if (want_write != c->want_write) {
                c->want_write = want_write;
                epoll_event cev{};
                cev.events = EPOLLIN | (want_write ? EPOLLOUT : 0u);
                cev.data.ptr = c;
                ::epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
            }
        }
    }
    for (auto &[fd, c] : conns) ::close(fd);
    ::close(ep);
    ::close(listen_fd);
    return 0;
}

} // namespace fobs_bench
