#include "link.hpp"

#include "nkey.hpp"

#include <stdexcept>
#include <vector>

namespace fraiseql_observer::nats_transport {

std::string nats_error(natsStatus s, const char *what) {
    std::string msg = std::string(what) + ": " + natsStatus_GetText(s);
    natsStatus last = NATS_OK;
    const char *detail = nats_GetLastError(&last);
    if (detail && *detail && last == s && msg.find(detail) == std::string::npos)
        msg += std::string(" (") + detail + ")";
    return msg;
}

namespace {
void check(natsStatus s, const char *what) {
    if (s != NATS_OK) throw std::runtime_error(nats_error(s, what));
}
} // namespace

Link::Link(const NatsConfig &config, sdk::Host host) : config_(config), host_(host) {}

Link::~Link() {
    close();
    if (js_) jsCtx_Destroy(js_);
    if (conn_) natsConnection_Destroy(conn_);
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

bool Link::connect() {
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
    // Buffers publishes while reconnecting; their PubAck timeouts re-send them anyway.
    natsOptions_SetReconnectBufSize(opts_, 32 * 1024 * 1024);
    natsOptions_SetMaxPendingMsgs(opts_, 1'000'000);
    natsOptions_SetDisconnectedCB(opts_, &Link::on_disconnected, this);
    natsOptions_SetReconnectedCB(opts_, &Link::on_reconnected, this);
    natsOptions_SetClosedCB(opts_, &Link::on_closed, this);
    natsOptions_SetErrorHandler(opts_, &Link::on_error, this);
    check(natsOptions_SetRetryOnFailedConnect(opts_, true, &Link::on_connected, this),
          "retry on failed connect");
    apply_auth(opts_);

    natsStatus s = natsConnection_Connect(&conn_, opts_);
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
        // With retry-on-failed-connect only option errors end up here.
        throw std::runtime_error(nats_error(s, "connect"));
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    check(natsConnection_JetStream(&js_, conn_, &jo), "jetstream context");
    if (s == NATS_OK) {
        generation_.fetch_add(1);
        return true;
    }
    host_.warn("NATS " + config_.url_list() + " unreachable; retrying in the background");
    return false;
}

void Link::close() {
    if (closed_.exchange(true)) return;
    if (!conn_) return;
    natsConnection_Close(conn_);
    std::unique_lock lk(closed_mu_);
    closed_cv_.wait_for(lk, std::chrono::seconds(5), [&] { return closed_cb_done_; });
}

bool Link::connected() const {
    return conn_ && natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED;
}

std::string Link::state() const {
    if (!conn_) return "not started";
    switch (natsConnection_Status(conn_)) {
    case NATS_CONN_STATUS_CONNECTED: {
        char url[256] = {0};
        natsConnection_GetConnectedUrl(conn_, url, sizeof(url));
        return std::string("connected to ") + url;
    }
    case NATS_CONN_STATUS_CONNECTING: return "connecting";
    case NATS_CONN_STATUS_RECONNECTING: return "reconnecting";
    case NATS_CONN_STATUS_CLOSED: return "closed";
    case NATS_CONN_STATUS_DISCONNECTED: return "disconnected";
    default: return "draining";
    }
}

void Link::on_connected(natsConnection *, void *closure) {
    auto *self = static_cast<Link *>(closure);
    self->generation_.fetch_add(1);
    self->host_.info("connected to NATS " + self->config_.url_list());
}

void Link::on_disconnected(natsConnection *, void *closure) {
    auto *self = static_cast<Link *>(closure);
    if (!self->closed_.load()) self->host_.warn("disconnected from NATS; reconnecting");
}

void Link::on_reconnected(natsConnection *, void *closure) {
    auto *self = static_cast<Link *>(closure);
    self->generation_.fetch_add(1);
    self->host_.info("reconnected to NATS");
}

void Link::on_closed(natsConnection *, void *closure) {
    auto *self = static_cast<Link *>(closure);
    self->host_.debug("NATS connection closed");
    std::lock_guard lk(self->closed_mu_);
    self->closed_cb_done_ = true;
    self->closed_cv_.notify_all();
}

void Link::on_error(natsConnection *, natsSubscription *, natsStatus err, void *closure) {
    auto *self = static_cast<Link *>(closure);
    self->host_.warn(std::string("NATS asynchronous error: ") + natsStatus_GetText(err));
}

} // namespace fraiseql_observer::nats_transport
