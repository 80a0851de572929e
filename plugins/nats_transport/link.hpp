// One NATS connection and its JetStream context, shared by the publisher, the consumers and
// the admin operations of a transport instance. Reconnects forever on its own (cnats'
// reconnect logic, also for the very first connect), so nothing above it ever has to
// re-create it; others hold it by shared_ptr so a late completion can still ack safely.
#pragma once

#include "nats_config.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>

namespace fraiseql_observer::nats_transport {

/// "nats: <text of status>" plus the library's last error detail when there is one.
std::string nats_error(natsStatus s, const char *what);

class Link {
  public:
    Link(const NatsConfig &config, sdk::Host host);
    ~Link();
    Link(const Link &) = delete;
    Link &operator=(const Link &) = delete;

    /// Starts connecting. Returns true when connected now, false when the first connect
    /// failed and cnats keeps trying in the background. Throws std::runtime_error on an
    /// option error (bad creds file, TLS files ...).
    bool connect();
    /// Closes the connection (pending operations fail); idempotent.
    void close();

    natsConnection *conn() const { return conn_; }
    /// JetStream context for synchronous API calls (provisioning, admin, DLQ).
    jsCtx *js() const { return js_; }
    bool connected() const;
    /// "connected to nats://…", "reconnecting", "closed", …
    std::string state() const;
    /// Incremented on every (re)connect: whoever provisions re-checks when it changes.
    uint64_t connect_generation() const { return generation_.load(); }

  private:
    static void on_connected(natsConnection *nc, void *closure);
    static void on_disconnected(natsConnection *nc, void *closure);
    static void on_reconnected(natsConnection *nc, void *closure);
    static void on_closed(natsConnection *nc, void *closure);
    static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                         void *closure);
    void apply_auth(natsOptions *opts);

    const NatsConfig &config_;
    sdk::Host host_;
    natsOptions *opts_ = nullptr;
    natsConnection *conn_ = nullptr;
    jsCtx *js_ = nullptr;
    std::atomic<uint64_t> generation_{0};
    std::atomic<bool> closed_{false};
    // cnats runs the closed callback on its own thread after Close returns; the destructor
    // waits for it so no callback ever touches a destroyed Link.
    std::mutex closed_mu_;
    std::condition_variable closed_cv_;
    bool closed_cb_done_ = false;
    std::string nkey_public_; // derived from nkey_seed_file
};

} // namespace fraiseql_observer::nats_transport
