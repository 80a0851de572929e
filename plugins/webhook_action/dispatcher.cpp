#include "dispatcher.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace fraiseql_observer::webhook {
namespace {

size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
    auto *job = static_cast<Job *>(userdata);
    size_t n = size * nmemb;
    size_t room = max_body_excerpt - job->body_excerpt.size();
    if (n > room) job->body_truncated = true;
    job->body_excerpt.append(data, n < room ? n : room);
    return n; // the rest is read and dropped: only an excerpt ever reaches a reason
}

// Adds the tls_ca_file certificates to the trust store curl built from the system CAs,
// so that the file *adds* a CA rather than replacing the system bundle.
CURLcode on_ssl_ctx(CURL *, void *ssl_ctx, void *userptr) {
    auto *cas = static_cast<const std::vector<X509 *> *>(userptr);
    X509_STORE *store = SSL_CTX_get_cert_store(static_cast<SSL_CTX *>(ssl_ctx));
    for (X509 *cert : *cas) X509_STORE_add_cert(store, cert); // duplicates are harmless
    return CURLE_OK;
}

std::vector<X509 *> load_pem_certificates(const std::string &path) {
    std::vector<X509 *> out;
    FILE *f = std::fopen(path.c_str(), "r");
    if (!f) throw std::runtime_error("cannot open tls_ca_file " + path);
    while (X509 *cert = PEM_read_X509(f, nullptr, nullptr, nullptr)) out.push_back(cert);
    std::fclose(f);
    if (out.empty()) throw std::runtime_error("tls_ca_file " + path + " holds no certificate");
    return out;
}

} // namespace

Dispatcher::Dispatcher(const WebhookConfig &config, sdk::Host host, FinishFn finish)
    : config_(config), host_(host), finish_(std::move(finish)) {}

Dispatcher::~Dispatcher() {
    stop();
    for (CURL *e : all_easy_) curl_easy_cleanup(e);
    if (multi_) curl_multi_cleanup(multi_); // closes the cached connections (on_close_socket)
    curl_url_cleanup(parsed_url_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    for (X509 *c : extra_cas_) X509_free(c);
}

bool Dispatcher::running() const {
    std::lock_guard lk(mu_);
    return running_ && !stopping_;
}


void Dispatcher::start() {
    if (!config_.tls_ca_file.empty()) extra_cas_ = load_pem_certificates(config_.tls_ca_file);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0)
        throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
    for (const char *var : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                            "no_proxy", "NO_PROXY"})
        if (std::getenv(var)) proxy_env_ = true;
    // Parsed once for every request (curl otherwise parses CURLOPT_URL at each transfer's start).
    // A URL curl cannot parse is still set as text, so that each request fails as it did.
    parsed_url_ = curl_url();
    if (parsed_url_ && curl_url_set(parsed_url_, CURLUPART_URL, config_.url.c_str(), 0) != CURLUE_OK) {
        curl_url_cleanup(parsed_url_);
        parsed_url_ = nullptr;
    }
    multi_ = curl_multi_init();
    if (!multi_) throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Dispatcher::on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Dispatcher::on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    long limit = static_cast<long>(config_.max_concurrency);
    // Never more connections than requests in flight, and keep them all cached for reuse.
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, limit);
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, limit);
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, limit);
    {
        std::lock_guard lk(mu_);
        running_ = true;
    }
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "webhook");
        run();
    });
}

void Dispatcher::submit(std::unique_ptr<Job> job) {
    std::unique_lock lk(mu_);
    // Up to 4 x max_concurrency requests (single events or webhook batches) wait: deep enough
    // that the submitting thread is not woken for every admitted group of requests (profiled:
    // 2-4 us per event), still bounded.
    const size_t cap = 4 * static_cast<size_t>(config_.max_concurrency);
    if (queue_.size() >= cap && !stopping_ && running_) {
        ++blocked_submitters_;
        not_full_.wait(lk, [&] { return queue_.size() < cap || stopping_ || !running_; });
        --blocked_submitters_;
    }
    if (stopping_ || !running_) {
        lk.unlock();
        job->retry_pending("webhook action is not running");
        return;
    }
    queue_.push_back(std::move(job));
    bool wake = sleeping_ && in_flight_ < static_cast<size_t>(config_.max_concurrency);
    if (wake) sleeping_ = false;
    lk.unlock();
    if (wake) {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one); // full only if never read
    }
}

void Dispatcher::stop() noexcept {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    not_full_.notify_all();
    if (thread_.joinable()) {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
        thread_.join();
    }
}

CURL *Dispatcher::acquire_easy() {
    if (!idle_easy_.empty()) {
        CURL *e = idle_easy_.back();
        idle_easy_.pop_back();
        return e;
    }
    CURL *e = curl_easy_init();
    if (!e) return nullptr;
    all_easy_.push_back(e);
    // Options that never change from one request to the next are set once per handle.
    if (parsed_url_) curl_easy_setopt(e, CURLOPT_CURLU, parsed_url_);
    else curl_easy_setopt(e, CURLOPT_URL, config_.url.c_str());
    if (!proxy_env_) {
        // No proxy variable is set: say so once, instead of curl looking up five of them in
        // the environment at every transfer. With one set, curl's own rules apply as before.
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    }
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout_ms));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.connect_timeout_ms));
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!extra_cas_.empty()) {
        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, &on_ssl_ctx);
        curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, &extra_cas_);
    }
    if (config_.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, config_.method.c_str());
    if (config_.follow_redirects) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
        // Keep the method and body on 301/302/303: the event must reach the new location.
        curl_easy_setopt(e, CURLOPT_POSTREDIR, static_cast<long>(CURL_REDIR_POST_ALL));
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    // Connection sockets are opened and closed through us, so that an idle kept-alive one may
    // stay in the epoll set (see SocketState::connection).
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &Dispatcher::on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &Dispatcher::on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);
    return e;
}

void Dispatcher::attach(Job &job) {
    CURL *e = job.easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, &job);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &job);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job.error);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, job.headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(job.body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, job.body.data());
}

void Dispatcher::finish(Job &job, CURLcode code) {
    Exchange x;
    x.curl_code = code;
    x.curl_error = job.error;
    curl_easy_getinfo(job.easy, CURLINFO_RESPONSE_CODE, &x.status);
    // The headers of the last response (after any redirects that were followed).
    curl_header *h = nullptr;
    if (curl_easy_header(job.easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
        x.retry_after = h->value;
    char *location = nullptr;
    if (curl_easy_getinfo(job.easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
        x.location = location;
    x.body_excerpt = job.body_excerpt;
    x.body_truncated = job.body_truncated;
    finish_(job, x);
}

void Dispatcher::fail_queued(const char *reason) {
    std::deque<std::unique_ptr<Job>> dropped;
    {
        std::lock_guard lk(mu_);
        dropped.swap(queue_);
    }
    not_full_.notify_all();
    for (auto &j : dropped) j->retry_pending(reason);
}

Dispatcher::SocketState &Dispatcher::state(curl_socket_t s) {
    auto i = static_cast<size_t>(s);
    if (i >= sockets_.size()) sockets_.resize(i + 16);
    return sockets_[i];
}

curl_socket_t Dispatcher::on_open_socket(void *userp, curlsocktype, curl_sockaddr *addr) {
    auto *d = static_cast<Dispatcher *>(userp);
    curl_socket_t s = ::socket(addr->family, addr->socktype, addr->protocol);
    if (s == CURL_SOCKET_BAD) return s;
    // A new descriptor is in no epoll set (the one that had this number was closed, through
    // on_close_socket, or it was not a connection and left the set when curl dropped it).
    d->state(s) = SocketState{};
    d->state(s).connection = true;
    return s;
}

int Dispatcher::on_close_socket(void *userp, curl_socket_t s) {
    static_cast<Dispatcher *>(userp)->forget(s);
    return ::close(s);
}

int Dispatcher::on_socket(CURL *, curl_socket_t s, int what, void *userp, void *) {
    static_cast<Dispatcher *>(userp)->want(s, what);
    return 0;
}

int Dispatcher::on_timer(CURLM *, long timeout_ms, void *userp) {
    auto *d = static_cast<Dispatcher *>(userp);
    d->timer_armed_ = timeout_ms >= 0;
    if (d->timer_armed_)
        d->timer_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    return 0;
}

void Dispatcher::want(curl_socket_t s, int what) {
    SocketState &st = state(s);
    if (what == CURL_POLL_REMOVE) {
        st.wanted = false;
        // A connection socket stays registered: curl usually asks for the same interest again
        // with the connection's next request. Any other descriptor (the threaded resolver's)
        // may be closed right after this without telling us, so it leaves the set now.
        if (st.registered && !st.connection) {
            epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, s, nullptr);
            st.registered = false;
        }
        return;
    }
    uint32_t events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    st.wanted = true;
    if (st.registered && st.events == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = s;
    int op = st.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(epoll_fd_, op, s, &ev) != 0) {
        // The set and our table disagree (a descriptor closed behind our back): take the
        // set's word for it.
        int alt = (errno == ENOENT) ? EPOLL_CTL_ADD : (errno == EEXIST) ? EPOLL_CTL_MOD : -1;
        if (alt < 0 || epoll_ctl(epoll_fd_, alt, s, &ev) != 0) {
            // Unwatchable: curl's own timeouts (timeout_ms) end the transfer with an error.
            host_.log(FOBS_LOG_WARN, std::string("webhook: epoll_ctl failed: ") + std::strerror(errno));
            st.registered = false;
            return;
        }
    }
    st.registered = true;
    st.events = events;
}

void Dispatcher::forget(curl_socket_t s) {
    SocketState &st = state(s);
    if (st.registered) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, s, nullptr);
    st = SocketState{};
}

void Dispatcher::socket_ready(int fd, uint32_t events) {
    if (fd == wake_fd_) {
        uint64_t count;
        while (::read(wake_fd_, &count, sizeof count) > 0) {}
        return;
    }
    SocketState &st = state(fd);
    if (!st.wanted) {
        // An idle kept-alive connection became readable: the server closed it, most likely.
        // curl finds out when it next considers the connection (its liveness check); until
        // then stop watching it, or level-triggered epoll would report it on every wait.
        if (st.registered) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
        st.registered = false;
        return;
    }
    int bits = 0;
    if (events & (EPOLLIN | EPOLLHUP)) bits |= CURL_CSELECT_IN;
    if (events & EPOLLOUT) bits |= CURL_CSELECT_OUT;
    if (events & EPOLLERR) bits |= CURL_CSELECT_ERR;
    int running = 0;
    curl_multi_socket_action(multi_, fd, bits, &running);
}

bool Dispatcher::timer_due() const {
    return timer_armed_ && std::chrono::steady_clock::now() >= timer_deadline_;
}

int Dispatcher::wait_ms(int cap_ms) const {
    if (!timer_armed_) return cap_ms;
    auto left = timer_deadline_ - std::chrono::steady_clock::now();
    // Rounded up: waking a little early would only spin until the deadline.
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    if (ms < 0) return 0;
    return ms < cap_ms ? static_cast<int>(ms) : cap_ms;
}

void Dispatcher::run() noexcept {
    const size_t cap = static_cast<size_t>(config_.max_concurrency);
    std::vector<std::unique_ptr<Job>> admitted;
    epoll_event ready[64];
    for (;;) {
        bool stopping, wake_submitters = false;
        {
            std::lock_guard lk(mu_);
            stopping = stopping_;
            while (!stopping && !queue_.empty() && in_flight_ < cap) {
                admitted.push_back(std::move(queue_.front()));
                queue_.pop_front();
                ++in_flight_;
            }
            wake_submitters = !admitted.empty() && blocked_submitters_ > 0;
        }
        if (stopping) fail_queued("webhook action stopped before the request was sent");
        if (wake_submitters) not_full_.notify_all();
        if (!admitted.empty()) {
            uint64_t now = static_cast<uint64_t>(host_.monotonic().count());
            for (auto &job : admitted) {
                job->easy = acquire_easy();
                job->started_ns = now;
                Job *raw = job.release();
                if (!raw->easy) {
                    std::unique_ptr<Job> j(raw);
                    j->retry_pending("curl_easy_init failed");
                    std::lock_guard lk(mu_);
                    --in_flight_;
                    continue;
                }
                attach(*raw);
                curl_multi_add_handle(multi_, raw->easy); // arms the timer at 0: started below
            }
            admitted.clear();
        }

        // Transfers whose timer expired: new ones (started here, all in one call), timeouts.
        if (timer_due()) {
            timer_armed_ = false; // curl re-arms it from inside the call when it needs to
            int running = 0;
            curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        int queued_msgs = 0;
        size_t finished = 0;
        while (CURLMsg *m = curl_multi_info_read(multi_, &queued_msgs)) {
            if (m->msg != CURLMSG_DONE) continue;
            Job *raw = nullptr;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &raw);
            CURLcode code = m->data.result;
            curl_multi_remove_handle(multi_, m->easy_handle);
            std::unique_ptr<Job> job(raw);
            finish(*job, code);
            job->retry_pending("webhook finished without an outcome");
            idle_easy_.push_back(job->easy);
            ++finished;
        }

        int timeout_ms = wait_ms(1000);
        {
            std::lock_guard lk(mu_);
            in_flight_ -= finished;
            if (stopping_ && in_flight_ == 0 && queue_.empty()) break;
            bool startable = !stopping_ && !queue_.empty() && in_flight_ < cap;
            if (startable) timeout_ms = 0;
            else sleeping_ = true;
        }
        int n = epoll_wait(epoll_fd_, ready, 64, timeout_ms);
        {
            std::lock_guard lk(mu_);
            sleeping_ = false;
        }
        for (int i = 0; i < n; ++i) socket_ready(ready[i].data.fd, ready[i].events);
    }
    // Tokens of requests submitted while the loop was ending.
    fail_queued("webhook action stopped before the request was sent");
}

} // namespace fraiseql_observer::webhook
