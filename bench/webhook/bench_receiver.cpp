#include "bench_receiver.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fobs_bench {
namespace {

constexpr std::string_view response = "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n";

struct Conn {
    std::string in;
    std::string out;
};

// Length of the Content-Length header's value in a header block, 0 when absent.
size_t content_length(std::string_view head) {
    size_t pos = 0;
    while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
        pos += 2;
        constexpr std::string_view name = "content-length:";
        if (head.size() - pos < name.size()) break;
        bool match = true;
        for (size_t i = 0; i < name.size() && match; ++i)
            match = std::tolower(static_cast<unsigned char>(head[pos + i])) == name[i];
        if (match) return std::strtoul(head.data() + pos + name.size(), nullptr, 10);
    }
    return 0;
}

uint64_t thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

} // namespace

BenchReceiver::BenchReceiver() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 1024) != 0)
        throw std::runtime_error(std::string("bench receiver: ") + std::strerror(errno));
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    ev.data.fd = stop_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev);
    thread_ = std::thread([this] { run(); });
}

BenchReceiver::~BenchReceiver() {
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof one);
    thread_.join();
    close(stop_fd_);
    close(epoll_fd_);
    close(listen_fd_);
}

void BenchReceiver::run() {
    std::unordered_map<int, Conn> conns;
    epoll_event events[256];
    char buf[65536];
    for (;;) {
        int n = epoll_wait(epoll_fd_, events, 256, 100);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == stop_fd_) {
                for (auto &[cfd, c] : conns) close(cfd);
                cpu_ns_.store(thread_cpu_ns(), std::memory_order_relaxed);
                return;
            }
            if (fd == listen_fd_) {
                int c;
                while ((c = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.fd = c;
                    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c, &ev);
                    conns.emplace(c, Conn{});
                }
                continue;
            }
            Conn &c = conns[fd];
            bool closed = false;
            if (events[i].events & EPOLLIN) {
                for (;;) {
                    ssize_t r = read(fd, buf, sizeof buf);
                    if (r > 0) c.in.append(buf, static_cast<size_t>(r));
                    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) closed = true;
                    if (r <= 0) break;
                }
                // Answer every complete request in the buffer (pipelining works too).
                size_t start = 0;
                for (;;) {
                    size_t end = c.in.find("\r\n\r\n", start);
                    if (end == std::string::npos) break;
                    size_t body = content_length(std::string_view(c.in).substr(start, end + 2 - start));
                    if (c.in.size() < end + 4 + body) break;
                    start = end + 4 + body;
                    c.out.append(response);
                    requests_.fetch_add(1, std::memory_order_relaxed);
                }
                c.in.erase(0, start);
            }
            if (!c.out.empty() && !closed) {
                ssize_t w = write(fd, c.out.data(), c.out.size());
                if (w > 0) c.out.erase(0, static_cast<size_t>(w));
                epoll_event ev{};
                ev.events = c.out.empty() ? EPOLLIN : (EPOLLIN | EPOLLOUT);
                ev.data.fd = fd;
                epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
            }
            if (closed) {
                epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
                close(fd);
                conns.erase(fd);
            }
        }
        cpu_ns_.store(thread_cpu_ns(), std::memory_order_relaxed);
    }
}

} // namespace fobs_bench
