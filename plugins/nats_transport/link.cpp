#include "link.hpp"

#include "nkey.hpp"

#include <fraiseql_observer/redact.hpp>

#include <pthread.h>

#include <algorithm>
#include <random>
#include <stdexcept>
#include <vector>

namespace fraiseql_observer::nats_transport {

using clock_type = std::chrono::steady_clock;

std::string nats_error(natsStatus s, const char *what) {
    std::string msg = std::string(what) + ": " + natsStatus_GetText(s);
    natsStatus last = NATS_OK;
    const char *raw = nats_GetLastError(&last);
    std::string detail = raw ? raw : "";
    // cnats prefixes its detail with where it was raised, "(conn.c:1905): ": not for people.
    if (!detail.empty() && detail[0] == '(') {
        auto end = detail.find("): ");
        if (end != std::string::npos && detail.find(".c:") < end) detail.erase(0, end + 3);
    }
    if (!detail.empty() && last == s && msg.find(detail) == std::string::npos)
        msg += " (" + detail + ")";
    return sdk::redact_secrets(msg);
}

namespace {
void check(natsStatus s, const char *what) {
    if (s != NATS_OK) throw std::runtime_error(nats_error(s, what));
}

// 250 ms doubling up to 30 s, then a random point in its upper half, so that many observers
// cut off by the same server event do not come back in lock-step.
std::chrono::milliseconds backoff(int64_t failed_attempts) {
    int64_t ms = 250;
    for (int64_t i = 1; i < failed_attempts && ms < 30'000; ++i) ms *= 2;
    ms = std::min<int64_t>(ms, 30'000);
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_int_distribution<int64_t> jitter(ms / 2, ms);
    return std::chrono::milliseconds(jitter(rng));
}

std::string seconds_text(clock_type::duration d) {
    auto ms = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    if (ms < 1000) return std::to_string(ms) + " ms";
    return std::to_string((ms + 500) / 1000) + " s";
}
} // namespace

Session::~Session() {
    if (js) jsCtx_Destroy(js);
    if (nc) natsConnection_Destroy(nc);
}

Link::Link(const NatsConfig &config, sdk::Host host) : config_(config), host_(host) {}

Link::~Link() {
    close();
    std::shared_ptr<Session> last;
    {
        std::lock_guard lk(mu_);
        last = std::move(session_);
    }
    last.reset();
    if (opts_) natsOptions_Destroy(opts_);
}

void Link::apply_auth(natsOptions *opts) {
    if (!config_.user.empty())
        check(natsOptions_SetUserInfo(opts, config_.user.c_str(), config_.password.c_str()),
              "user/password");
    if (!config_.token.empty()) check(natsOptions_SetToken(opts, config_.token.c_str()), "token");
    if (!config_.creds_file.empty())
        check(natsOptions_SetUserCredentialsFromFiles(opts, config_.creds_file.c_str(), nullptr),
              "creds_file");
    if (!config_.nkey_seed_file.empty()) {
        nkey_public_ = nkey_public_from_seed_file(config_.nkey_seed_file);
        check(natsOptions_SetNKeyFromSeed(opts, nkey_public_.c_str(),
                                          config_.nkey_seed_file.c_str()),
              "nkey_seed_file");
    }
    if (!config_.tls_ca_file.empty() || !config_.tls_cert_file.empty()) {
        check(natsOptions_SetSecure(opts, true), "tls");
        if (!config_.tls_ca_file.empty())
            check(natsOptions_LoadCATrustedCertificates(opts, config_.tls_ca_file.c_str()),
                  "tls_ca_file");
        if (!config_.tls_cert_file.empty())
            check(natsOptions_LoadCertificatesChain(opts, config_.tls_cert_file.c_str(),
                                                    config_.tls_key_file.c_str()),
                  "tls_cert_file/tls_key_file");
    }
}

void Link::build_options() {
    check(natsOptions_Create(&opts_), "options");
    std::vector<const char *> servers;
    for (const auto &u : config_.urls) servers.push_back(u.c_str());
    check(natsOptions_SetServers(opts_, servers.data(), static_cast<int>(servers.size())),
          "url");
    check(natsOptions_SetName(opts_, ("fraiseql-observer/" +
                                      std::string(host_.component_name())).c_str()),
          "name");
    natsOptions_SetTimeout(opts_, config_.connect_timeout_ms);
    natsOptions_SetMaxReconnect(opts_, -1);
    natsOptions_SetReconnectWait(opts_, config_.reconnect_wait_ms);
    natsOptions_SetReconnectJitter(opts_, 100, 1000);
    // cnats' defaults (PING every 2 min, 2 out) leave a pipeline on a hung server, or one cut
    // off without a reset, for 4-6 minutes before it moves to another member.
    natsOptions_SetPingInterval(opts_, config_.ping_interval_ms);
    natsOptions_SetMaxPingsOut(opts_, static_cast<int>(config_.max_pings_out));
    // Buffers publishes while reconnecting; their PubAck timeouts re-send them anyway.
    natsOptions_SetReconnectBufSize(opts_, 32 * 1024 * 1024);
    natsOptions_SetMaxPendingMsgs(opts_, 1'000'000);
    natsOptions_SetDisconnectedCB(opts_, &Link::on_disconnected, this);
    natsOptions_SetReconnectedCB(opts_, &Link::on_reconnected, this);
    natsOptions_SetClosedCB(opts_, &Link::on_closed, this);
    natsOptions_SetErrorHandler(opts_, &Link::on_error, this);
    // No RetryOnFailedConnect: a failed first connect is retried by rebuild_loop like any
    // other lost connection (cnats' own retry gives an auth failure exactly one try).
    apply_auth(opts_);
}

bool Link::connect(bool keep_trying) {
    build_options();
    if (!keep_trying) {
        std::lock_guard lk(mu_);
        one_shot_ = true;
    }
    bool ok = attempt();
    if (!keep_trying) return ok;
    rebuild_thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "nats-link");
        rebuild_loop();
    });
    return ok;
}

bool Link::attempt() {
    natsConnection *nc = nullptr;
    natsStatus s = natsConnection_Connect(&nc, opts_);
    jsCtx *js = nullptr;
    if (s == NATS_OK) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = 5000;
        s = natsConnection_JetStream(&js, nc, &jo);
        if (s != NATS_OK) {
            std::string why = nats_error(s, "jetstream context");
            natsConnection_Close(nc);
            natsConnection_Destroy(nc);
            nc = nullptr;
            std::unique_lock lk(mu_);
            last_error_ = why;
        }
    } else {
        std::string why = nats_error(s, "connect");
        if (nc) natsConnection_Destroy(nc);
        nc = nullptr;
        std::lock_guard lk(mu_);
        last_error_ = why;
    }
    std::shared_ptr<Session> old;
    std::string log_line;
    bool ok = nc != nullptr;
    std::unique_lock lk(mu_);
    if (ok && closing_) {
        // close() came while we were connecting: this connection is not wanted.
        lk.unlock();
        jsCtx_Destroy(js);
        natsConnection_Close(nc);
        natsConnection_Destroy(nc);
        return false;
    }
    if (ok) {
        auto fresh = std::make_shared<Session>();
        fresh->nc = nc;
        fresh->js = js;
        fresh->id = ++sessions_built_;
        bool rebuilt = session_ != nullptr;
        old = std::exchange(session_, std::move(fresh));
        session_closed_ = false;
        const int64_t attempts = failed_attempts_ + 1;
        failed_attempts_ = 0;
        generation_.fetch_add(1);
        log_line = rebuilt ? "NATS connection rebuilt (" + config_.url_list() + ") after " +
                                 std::to_string(attempts) + " attempt(s); it had closed: " + closed_reason_
                           : "connected to NATS " + config_.url_list();
        last_error_.clear();
        lk.unlock();
        host_.info(log_line);
        old.reset(); // a closed connection: freed once nobody uses it any more
        return true;
    }
    ++failed_attempts_;
    next_attempt_ = clock_type::now() + backoff(failed_attempts_);
    // Every attempt is worth a line while backing off quickly; once at the cap, one in ten.
    bool say = !one_shot_ && (failed_attempts_ <= 8 || failed_attempts_ % 10 == 0);
    log_line = state_locked(clock_type::now());
    lk.unlock();
    if (say) host_.warn(log_line);
    return false;
}

void Link::rebuild_loop() {
    std::unique_lock lk(mu_);
    while (!closing_) {
        bool need = !session_ || session_closed_;
        if (!need) {
            cv_.wait(lk, [&] { return closing_ || session_closed_; });
            continue;
        }
        if (clock_type::now() < next_attempt_) {
            cv_.wait_until(lk, next_attempt_, [&] { return closing_; });
            continue;
        }
        lk.unlock();
        attempt();
        lk.lock();
    }
}

void Link::close(std::chrono::milliseconds budget) {
    std::shared_ptr<Session> s;
    {
        std::lock_guard lk(mu_);
        if (closing_) return;
        closing_ = true;
        s = session_;
    }
    cv_.notify_all();
    if (rebuild_thread_.joinable()) rebuild_thread_.join();
    if (!s) return;
    bool already_closed;
    {
        std::lock_guard lk(mu_);
        already_closed = session_closed_;
    }
    if (already_closed || natsConnection_IsClosed(s->nc)) return;
    natsConnection_Close(s->nc);
    // cnats runs the closed callback on its own thread after Close returns; wait for it so no
    // callback ever touches a destroyed Link.
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, budget, [&] { return closed_cb_done_; });
}

std::shared_ptr<Session> Link::session() const {
    std::lock_guard lk(mu_);
    return session_;
}

SessionRef<natsConnection> Link::conn() const {
    auto s = session();
    natsConnection *nc = s ? s->nc : nullptr;
    return {std::move(s), nc};
}

SessionRef<jsCtx> Link::js() const {
    auto s = session();
    jsCtx *js = s ? s->js : nullptr;
    return {std::move(s), js};
}

uint64_t Link::session_id() const {
    std::lock_guard lk(mu_);
    return session_ ? session_->id : 0;
}

bool Link::connected() const {
    auto s = session();
    return s && natsConnection_Status(s->nc) == NATS_CONN_STATUS_CONNECTED;
}

int64_t Link::max_payload() const {
    auto s = session();
    // While cnats reconnects, the last server's INFO still holds (and cnats checks it too).
    if (!s || natsConnection_IsClosed(s->nc)) return 0;
    return natsConnection_GetMaxPayload(s->nc);
}

std::string Link::state() const {
    std::lock_guard lk(mu_);
    return state_locked(clock_type::now());
}

std::string Link::state_locked(clock_type::time_point now) const {
    std::string out;
    auto why = [&](const char *fallback) {
        return last_error_.empty() ? std::string(fallback) : last_error_;
    };
    auto retrying = [&] {
        if (one_shot_) return std::string();
        return "; reconnecting (attempt " + std::to_string(failed_attempts_ + 1) + ", next in " +
               seconds_text(next_attempt_ - now) + ")";
    };
    if (closing_) {
        out = "NATS connection closed by the observer";
    } else if (!session_) {
        out = failed_attempts_ == 0 ? std::string("connecting to NATS " + config_.url_list())
                                    : "NATS not connected: " + why("unreachable") + retrying();
    } else if (session_closed_) {
        out = "NATS connection closed: " + why("closed") + retrying();
    } else {
        switch (natsConnection_Status(session_->nc)) {
        case NATS_CONN_STATUS_CONNECTED: {
            char url[512] = {0};
            natsConnection_GetConnectedUrl(session_->nc, url, sizeof(url));
            out = std::string("connected to ") + url;
            break;
        }
        case NATS_CONN_STATUS_CONNECTING: out = "NATS connecting"; break;
        case NATS_CONN_STATUS_RECONNECTING:
            out = "NATS disconnected, reconnecting" +
                  (last_error_.empty() ? std::string() : " (" + last_error_ + ")");
            break;
        case NATS_CONN_STATUS_CLOSED: // on_closed has not run yet
            out = "NATS connection closed: " + why("closed by the server") +
                  "; reconnecting (attempt 1, next in 0 ms)";
            break;
        case NATS_CONN_STATUS_DISCONNECTED: out = "NATS disconnected"; break;
        default: out = "NATS draining"; break;
        }
    }
    out = sdk::redact_secrets(out);
    // The configured secrets themselves, wherever cnats may have echoed them.
    for (const std::string *secret : {&config_.password, &config_.token}) {
        if (secret->size() < 3) continue;
        for (size_t at; (at = out.find(*secret)) != std::string::npos;)
            out.replace(at, secret->size(), "***");
    }
    return out;
}

void Link::on_disconnected(natsConnection *nc, void *closure) {
    auto *self = static_cast<Link *>(closure);
    std::string why;
    const char *text = nullptr;
    natsStatus s = natsConnection_GetLastError(nc, &text);
    if (s != NATS_OK && text && *text) why = sdk::redact_secrets(text);
    bool closing;
    {
        std::lock_guard lk(self->mu_);
        closing = self->closing_;
        if (!why.empty()) self->last_error_ = why;
    }
    if (!closing)
        self->host_.warn("disconnected from NATS" + (why.empty() ? std::string() : " (" + why + ")") +
                         "; reconnecting");
}

void Link::on_reconnected(natsConnection *, void *closure) {
    auto *self = static_cast<Link *>(closure);
    {
        std::lock_guard lk(self->mu_);
        self->last_error_.clear();
    }
    self->generation_.fetch_add(1);
    self->host_.info("reconnected to NATS");
}

void Link::on_closed(natsConnection *nc, void *closure) {
    auto *self = static_cast<Link *>(closure);
    std::string why;
    const char *text = nullptr;
    natsStatus s = natsConnection_GetLastError(nc, &text);
    if (s != NATS_OK) why = (text && *text) ? sdk::redact_secrets(text) : natsStatus_GetText(s);
    std::string log_line;
    {
        std::lock_guard lk(self->mu_);
        if (self->closing_) {
            self->closed_cb_done_ = true;
        } else if (self->session_ && self->session_->nc == nc) {
            self->session_closed_ = true;
            self->last_error_ = why.empty() ? std::string("closed by the server") : why;
            self->closed_reason_ = self->last_error_;
            // The first rebuild attempt follows right away; the backoff grows from there.
            self->next_attempt_ = clock_type::now();
            log_line = "NATS connection closed: " + self->last_error_ +
                       "; rebuilding it (cnats does not reconnect a closed connection)";
        }
        self->cv_.notify_all();
    }
    if (!log_line.empty()) self->host_.warn(log_line);
}

void Link::on_error(natsConnection *, natsSubscription *, natsStatus err, void *closure) {
    auto *self = static_cast<Link *>(closure);
    self->host_.warn(std::string("NATS asynchronous error: ") + natsStatus_GetText(err));
}

} // namespace fraiseql_observer::nats_transport
