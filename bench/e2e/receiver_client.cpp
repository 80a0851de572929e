#include "receiver_client.hpp"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace fobs_bench {

std::string http_call(int port, const std::string &method, const std::string &path) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("receiver on port " + std::to_string(port) + " is not reachable");
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string resp;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
    ::close(fd);
    size_t body = resp.find("\r\n\r\n");
    if (resp.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos)
        throw std::runtime_error("receiver answered: " + resp.substr(0, 80));
    return resp.substr(body + 4);
}

ReceiverStats receiver_stats(int port) {
    auto j = nlohmann::json::parse(http_call(port, "GET", "/stats"));
    ReceiverStats s;
    s.requests = j["requests"];
    s.events = j.value("events", s.requests);
    s.distinct = j["distinct"];
    s.duplicates = j["duplicates"];
    s.bad = j["bad"];
    s.first_us = j["first_us"];
    s.last_us = j["last_us"];
    s.p50_us = j["p50_us"];
    s.p99_us = j["p99_us"];
    s.max_us = j["max_us"];
    s.cpu_s = j["cpu_s"];
    return s;
}

std::unordered_map<std::string, int64_t> receiver_arrivals(int port) {
    std::unordered_map<std::string, int64_t> out;
    const std::string text = http_call(port, "GET", "/arrivals");
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        size_t tab = text.find('\t', pos);
        if (tab != std::string::npos && tab < nl)
            out.emplace(text.substr(pos, tab - pos), std::stoll(text.substr(tab + 1, nl - tab - 1)));
        pos = nl + 1;
    }
    return out;
}

void receiver_reset(int port) { http_call(port, "POST", "/reset"); }

} // namespace fobs_bench
