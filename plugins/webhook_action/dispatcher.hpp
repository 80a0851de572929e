// One libcurl multi loop on one plugin-owned thread: runs up to `max_concurrency` requests at
// once over kept-alive connections (the multi handle's connection cache), queues at most 4 x as
// many more, and blocks submitters beyond that (back-pressure instead of unbounded memory). A
// request carries one event or one batch; it never retries in-process (a retry is the
// transport's redelivery).
//
// The loop is event-driven (curl_multi_socket_action on an epoll set): each wake-up runs only
// the transfers whose sockets are ready, and hands curl their readiness so that it does not poll
// each socket again. curl_multi_perform instead ran every transfer on every wake-up and made ~3
// zero-timeout poll() calls per request. A kept-alive connection's socket stays in the epoll
// set between requests (curl drops and re-asks the same interest around every request, which
// would otherwise cost two epoll_ctl calls per request).
#pragma once

#include "response.hpp"
#include "webhook_config.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <curl/curl.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

typedef struct x509_st X509;

namespace fraiseql_observer::webhook {

/// One request and, once it ran, what came back. Owns its header list and body, and the
/// completion token of every event it carries (one, or a batch's).
struct Job {
    std::string event_id; // the event's id, or a batch's webhook-id
    std::string body;
    // This request's own header lines; the last of them may link on to header lines shared
    // by every request (`own_last->next`), which are not freed with the job.
    curl_slist *headers = nullptr;
    curl_slist *own_last = nullptr;
    sdk::Completion done;                 // the first (or only) event's token
    std::vector<sdk::Completion> more;    // a batch's other tokens, in batch order
    uint64_t started_ns = 0; // host monotonic clock when handed to curl

    // Filled while the transfer runs.
    CURL *easy = nullptr;
    std::string body_excerpt;
    bool body_truncated = false;
    char error[CURL_ERROR_SIZE] = {0};

    /// Events this request carries.
    size_t events() const { return 1 + more.size(); }
    /// Completes every token still pending as RETRY (a request that could not run).
    void retry_pending(std::string_view reason) noexcept {
        if (done.pending()) done.retry(reason);
        for (auto &d : more)
            if (d.pending()) d.retry(reason);
    }

    Job() = default;
    Job(const Job &) = delete;
    Job &operator=(const Job &) = delete;
    ~Job() {
        if (own_last) own_last->next = nullptr;
        curl_slist_free_all(headers);
    }
};

class Dispatcher {
  public:
    /// Called on the loop thread for every transfer that ran to an end (answer or error);
    /// it must complete the job's token. `x` views into the job and the easy handle.
    using FinishFn = std::function<void(Job &job, const Exchange &x)>;

    Dispatcher(const WebhookConfig &config, sdk::Host host, FinishFn finish);
    ~Dispatcher();
    Dispatcher(const Dispatcher &) = delete;
    Dispatcher &operator=(const Dispatcher &) = delete;

    /// Creates the multi handle and starts the loop thread. Throws on failure.
    void start();
    /// [any-thread] Queues a request; blocks while the queue is full. After stop() began, the
    /// job is completed at once with RETRY.
    void submit(std::unique_ptr<Job> job);
    /// Stops admitting work: queued requests complete as RETRY at once, requests on the wire
    /// finish (each bounded by timeout_ms); then the thread ends. Idempotent.
    void stop() noexcept;

    bool running() const;

  private:
    void run() noexcept;
    CURL *acquire_easy();
    void attach(Job &job);
    void finish(Job &job, CURLcode code);
    void fail_queued(const char *reason);
    // curl's callbacks (loop thread).
    static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);
    static int on_timer(CURLM *multi, long timeout_ms, void *userp);
    static curl_socket_t on_open_socket(void *userp, curlsocktype purpose, curl_sockaddr *addr);
    static int on_close_socket(void *userp, curl_socket_t s);
    void want(curl_socket_t s, int what);
    void forget(curl_socket_t s);
    void socket_ready(int fd, uint32_t events);
    bool timer_due() const;
    int wait_ms(int cap_ms) const;

    // What the epoll set holds for one descriptor (indexed by fd).
    struct SocketState {
        uint32_t events = 0;     // registered interest, when `registered`
        bool registered = false; // in the epoll set
        bool wanted = false;     // curl currently asks for it
        bool connection = false; // a connection socket opened through on_open_socket: curl
                                 // tells us before it closes it, so it may stay registered idle
    };
    SocketState &state(curl_socket_t s);

    const WebhookConfig &config_;
    sdk::Host host_;
    FinishFn finish_;
    std::vector<X509 *> extra_cas_; // from tls_ca_file, added to every TLS context
    CURLM *multi_ = nullptr;
    std::vector<CURL *> idle_easy_; // loop thread only
    std::vector<CURL *> all_easy_;
    bool proxy_env_ = false;        // a proxy variable is set: curl reads them per request
    CURLU *parsed_url_ = nullptr; // config_.url parsed once; null if curl cannot parse it
    int epoll_fd_ = -1;
    int wake_fd_ = -1; // eventfd: submit() and stop() wake the loop
    std::vector<SocketState> sockets_; // loop thread only
    bool timer_armed_ = false;          // curl asked to be called back at timer_deadline_
    std::chrono::steady_clock::time_point timer_deadline_;

    mutable std::mutex mu_;
    std::condition_variable not_full_;
    std::deque<std::unique_ptr<Job>> queue_;
    size_t in_flight_ = 0;  // jobs handed to curl (changed by the loop, under mu_)
    size_t blocked_submitters_ = 0; // submit() calls waiting for room in the queue
    bool sleeping_ = false; // the loop is (about to be) blocked in epoll_wait
    bool running_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace fraiseql_observer::webhook
