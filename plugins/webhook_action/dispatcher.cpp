#include "dispatcher.hpp"

#include <pthread.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdio>
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
    if (multi_) curl_multi_cleanup(multi_);
    for (X509 *c : extra_cas_) X509_free(c);
}

bool Dispatcher::running() const {
    std::lock_guard lk(mu_);
    return running_ && !stopping_;
}


void Dispatcher::start() {
    if (!config_.tls_ca_file.empty()) extra_cas_ = load_pem_certificates(config_.tls_ca_file);
    multi_ = curl_multi_init();
    if (!multi_) throw std::runtime_error("curl_multi_init failed");
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
    if (wake) curl_multi_wakeup(multi_);
}

void Dispatcher::stop() noexcept {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    not_full_.notify_all();
    if (thread_.joinable()) {
        curl_multi_wakeup(multi_);
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
    curl_easy_setopt(e, CURLOPT_URL, config_.url.c_str());
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

void Dispatcher::run() noexcept {
    const size_t cap = static_cast<size_t>(config_.max_concurrency);
    std::vector<std::unique_ptr<Job>> admitted;
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
                curl_multi_add_handle(multi_, raw->easy);
            }
            admitted.clear();
        }

        int still_running = 0;
        curl_multi_perform(multi_, &still_running);
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

        int timeout_ms = 1000;
        {
            std::lock_guard lk(mu_);
            in_flight_ -= finished;
            if (stopping_ && in_flight_ == 0 && queue_.empty()) break;
            bool startable = !stopping_ && !queue_.empty() && in_flight_ < cap;
            if (startable) timeout_ms = 0;
            else sleeping_ = true;
        }
        curl_multi_poll(multi_, nullptr, 0, timeout_ms, nullptr);
        std::lock_guard lk(mu_);
        sleeping_ = false;
    }
    // Tokens of requests submitted while the loop was ending.
    fail_queued("webhook action stopped before the request was sent");
}

} // namespace fraiseql_observer::webhook
