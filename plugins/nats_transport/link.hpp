// One NATS connection and its JetStream context, shared by the publisher, the consumers and
// the admin operations of a transport instance.
//
// Two layers of reconnection: cnats' own reconnect logic rides out a dropped socket (the
// connection object survives, subscriptions are re-sent), but cnats 3.4.1 never reopens a
// connection that reached CLOSED (the server closed it: authorization violation, "maximum
// control line exceeded", ...; NOTES.md). So the Link owns a thread that replaces a closed
// connection (and a first connect that failed) with a new one, with exponential backoff and
// jitter (250 ms doubling up to 30 s), forever, until close().
//
// Each connection lives in a Session held by shared_ptr: conn() / js() return handles that
// keep the session alive for the full expression that uses them, so a rebuild never frees a
// connection under a caller. Whoever keeps per-connection state (a subscription, an async
// publish context) compares session_id() and rebuilds that state when it changes.
#pragma once

#include "nats_config.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace fraiseql_observer::nats_transport {

/// "nats: <text of status>" plus the library's last error detail when there is one, with any
/// credential redacted.
std::string nats_error(natsStatus s, const char *what);

/// One natsConnection and its synchronous JetStream context. Destroyed (both freed) when the
/// last holder lets go; the Link only retires a session once its connection is closed.
struct Session {
    natsConnection *nc = nullptr;
    jsCtx *js = nullptr;
    uint64_t id = 0; // 1, 2, ... for each connection the Link built
    Session() = default;
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;
    ~Session();
};

/// Keeps a session alive while a raw pointer taken from it is in use; converts to that pointer
/// (nullptr when there is no session: cnats then answers NATS_INVALID_ARG).
template <typename T> class SessionRef {
  public:
    SessionRef(std::shared_ptr<Session> s, T *p) : s_(std::move(s)), p_(p) {}
    operator T *() const { return p_; }
    T *get() const { return p_; }

  private:
    std::shared_ptr<Session> s_;
    T *p_;
};

class Link {
  public:
    Link(const NatsConfig &config, sdk::Host host);
    ~Link();
    Link(const Link &) = delete;
    Link &operator=(const Link &) = delete;

    /// Makes the first connection attempt now and (`keep_trying`) starts the rebuild thread,
    /// which keeps trying in the background when that attempt failed. Returns true when
    /// connected now. Throws std::runtime_error on an option error (bad creds file, TLS ...).
    bool connect(bool keep_trying = true);
    /// Stops rebuilding and closes the connection (pending operations fail); idempotent.
    /// Waits at most `budget` for cnats' closed callback.
    void close(std::chrono::milliseconds budget = std::chrono::milliseconds(5000));

    /// The current session (nullptr before the first successful connect).
    std::shared_ptr<Session> session() const;
    SessionRef<natsConnection> conn() const;
    /// JetStream context for synchronous API calls (provisioning, admin, DLQ).
    SessionRef<jsCtx> js() const;
    /// Id of the current session, 0 when none; changes when the connection was rebuilt.
    uint64_t session_id() const;

    bool connected() const;
    /// "connected to nats://…" when connected, else why not, e.g. "NATS connection closed:
    /// Authorization Violation; reconnecting (attempt 7, next in 8 s)". Credentials redacted.
    std::string state() const;
    /// Incremented on every (re)connect, cnats' or ours: whoever provisions re-checks when it
    /// changes.
    uint64_t connect_generation() const { return generation_.load(); }
    /// The server's max_payload (from its INFO), 0 when not connected.
    int64_t max_payload() const;

  private:
    static void on_disconnected(natsConnection *nc, void *closure);
    static void on_reconnected(natsConnection *nc, void *closure);
    static void on_closed(natsConnection *nc, void *closure);
    static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                         void *closure);
    void build_options();
    void apply_auth(natsOptions *opts);
    // One connection attempt; on success the new session replaces the old one, else the next
    // attempt is scheduled. Returns true on success.
    bool attempt();
    void rebuild_loop();
    std::string state_locked(std::chrono::steady_clock::time_point now) const;

    const NatsConfig &config_;
    sdk::Host host_;
    natsOptions *opts_ = nullptr;
    std::atomic<uint64_t> generation_{0};

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::shared_ptr<Session> session_; // under mu_
    uint64_t sessions_built_ = 0;      // under mu_
    bool session_closed_ = false;      // the current session's connection reached CLOSED
    bool closing_ = false;             // close() called: no more rebuilding
    bool one_shot_ = false;            // connect(false): no rebuild thread
    bool closed_cb_done_ = false;      // cnats ran the closed callback of the session we closed
    int64_t failed_attempts_ = 0;      // since the last successful connect
    std::chrono::steady_clock::time_point next_attempt_{};
    std::string last_error_;           // why the connection is down (redacted)
    std::string closed_reason_;        // why the last session closed (redacted)
    std::thread rebuild_thread_;
    std::string nkey_public_; // derived from nkey_seed_file
};

} // namespace fraiseql_observer::nats_transport
