// The `nats` transport plugin (SPEC section 5): JetStream on cnats. This file wires the
// pieces together: config (nats_config), the connection (link), provisioning, the publisher,
// pull consumers, the DLQ writer and the admin operations.
#include "admin_ops.hpp"
#include "dead_letters.hpp"
#include "link.hpp"
#include "nats_config.hpp"
#include "provisioning.hpp"
#include "publisher.hpp"
#include "pull_consumer.hpp"

#include <pthread.h>
#include <fraiseql_observer/plugin.hpp>
#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#ifndef FOBS_NATS_VERSION
#define FOBS_NATS_VERSION "0.1.0"
#endif

namespace fraiseql_observer::nats_transport {

// A JetStream consumer limit in fobs.limits/1 terms: -1 (any negative) is unlimited.
inline uint64_t jetstream_limit(int64_t value) {
    return value < 0 ? UINT64_MAX : static_cast<uint64_t>(value);
}

class NatsTransport final : public sdk::Transport {
  public:
    static constexpr const auto &config_keys = nats_transport::config_keys;

    explicit NatsTransport(sdk::Host host) : Transport(host) {
        std::vector<std::string> warnings;
        config_ = parse_config(host.config_json(), warnings);
        for (const auto &w : warnings) host.warn(w);
    }

    ~NatsTransport() override { stop(); }

    void start() override {
        link_ = std::make_shared<Link>(config_, host());
        bool connected = link_->connect();
        if (connected) {
            try {
                provision_streams(*link_, config_, host());
                provisioned_gen_ = link_->connect_generation();
                provisioned_ = true;
            } catch (const ProvisionError &e) {
                if (e.permanent()) throw;
                set_not_ready(e.what());
                host().warn(std::string("stream provisioning deferred: ") + e.what());
            }
        } else {
            set_not_ready("NATS unreachable (" + config_.url_list() + ")");
        }
        dead_letters_ = std::make_unique<DeadLetters>(link_, config_, host());
        dead_letters_->start();
        publisher_ = std::make_unique<Publisher>(link_, config_, host(), *dead_letters_,
                                                 [this] { return provisioned_.load(); });
        publisher_->start();
        running_ = true;
        supervisor_ = std::thread([this] {
            pthread_setname_np(pthread_self(), "nats-supervise");
            supervise();
        });
    }

    void stop() noexcept override {
        if (!link_ || stopped_.exchange(true)) return;
        running_ = false;
        cv_.notify_all();
        if (supervisor_.joinable()) supervisor_.join();
        // The host calls this after its own shutdown deadline work, so every wait here adds to
        // shutdown_timeout_secs: wait for PubAcks and DLQ writes only while a server can still
        // answer them, never for a connection that is closed or reconnecting.
        const bool up = link_->connected();
        const auto grace = std::chrono::milliseconds(up ? std::min<int64_t>(config_.publish_timeout_ms, 5000) : 0);
        // Outstanding publishes get their PubAck first (bounded), then the rest is handed back.
        if (publisher_) publisher_->stop(grace);
        if (dead_letters_) dead_letters_->stop(grace);
        link_->close(std::chrono::milliseconds(up ? 2000 : 500));
    }

    bool ready(std::string &why) override {
        if (!link_) {
            why = "not started";
            return false;
        }
        if (!link_->connected()) {
            why = link_->state();
            return false;
        }
        if (!provisioned_.load()) {
            std::lock_guard lk(mu_);
            why = not_ready_reason_.empty() ? "provisioning streams" : not_ready_reason_;
            return false;
        }
        // Connected is not enough on a cluster: the server we are connected to may have lost
        // its peers. A stream leader election (one member lost) leaves the stream without a
        // leader for a few seconds and must not flap readiness; longer than kJetStreamGrace
        // means no quorum (or no JetStream at all): nothing can be stored or consumed.
        const int64_t silent_ms = now_ms() - last_js_answer_ms_.load();
        if (silent_ms > kJetStreamGrace.count()) {
            std::lock_guard lk(mu_);
            why = "JetStream stream " + config_.stream_name + " unusable for " +
                  std::to_string(silent_ms / 1000) + " s (" + js_probe_error_ +
                  "): on a cluster, fewer than a quorum of its servers are reachable";
            return false;
        }
        return true;
    }

    std::string status_json(std::string_view request_json) override {
        nlohmann::json req = parse_request(request_json);
        return with_link([&](Link &link) { return status_answer(link, config_, req); }).dump();
    }

    std::string dlq_json(std::string_view request_json, const sdk::Writer &progress) override {
        nlohmann::json req = parse_request(request_json);
        return with_link([&](Link &link) {
                   return dlq_answer(link, config_, req,
                                     [&](const nlohmann::json &p) { progress.line(p.dump()); });
               })
            .dump();
    }

    // fobs.limits/1: what the config asks for (validate warns against the actions' longest
    // attempt; at run time the consumer checks the server's actual value).
    uint64_t redelivery_after_ms() const override {
        int64_t ms = config_.ack_wait_secs * 1000;
        for (double b : config_.backoff_secs) ms = std::min<int64_t>(ms, static_cast<int64_t>(b * 1000));
        return ms > 0 ? static_cast<uint64_t>(ms) : 0;
    }

    // JetStream's max_deliver and max_ack_pending as configured (-1 is JetStream's "unlimited";
    // the consumer is created, or updated, with these values: provisioning.cpp).
    uint64_t max_deliveries() const override { return jetstream_limit(config_.max_deliver); }
    uint64_t max_unacked() const override { return jetstream_limit(config_.max_ack_pending); }

    void publish(const sdk::Event &event, sdk::Completion done) override {
        if (!publisher_) {
            done.retry("nats transport not started");
            return;
        }
        publisher_->publish(event, std::move(done));
    }

    std::unique_ptr<sdk::Consumer> open_consumer(const sdk::ConsumerOptions &options,
                                                 sdk::ConsumerSink sink) override {
        if (!link_) throw std::runtime_error("nats transport not started");
        sdk::ConsumerOptions o = options;
        if (o.consumer_name.empty()) o.consumer_name = config_.consumer_name;
        if (!valid_subject_token(o.consumer_name))
            throw sdk::ConfigError("consumer_name", "consumer name \"" + o.consumer_name +
                                                        "\" is not a valid JetStream name");
        auto consumer = std::make_unique<PullConsumer>(link_, config_, host(), *dead_letters_,
                                                       std::move(o), sink,
                                                       [this] { return provisioned_.load(); });
        consumer->open();
        return consumer;
    }

  private:
    static nlohmann::json parse_request(std::string_view request_json) {
        nlohmann::json req = nlohmann::json::parse(request_json, nullptr, false);
        if (req.is_discarded() || !req.is_object())
            throw std::invalid_argument("request is not a JSON object");
        return req;
    }

    // The running connection, or (the CLI's `status`/`dlq`, which never start the transport)
    // one made just for this request: a connection failure here is an error, not a retry.
    template <class F> nlohmann::json with_link(F &&fn) {
        if (link_) return fn(*link_);
        Link link(config_, host());
        if (!link.connect(false)) throw std::runtime_error(link.state());
        return fn(link);
    }

    // How long the stream may be without a working leader before the transport says it is
    // not ready: longer than a Raft election after a member is lost (nats-server's election timeout is 4-9 s,
    // measured up to ~11 s on a loaded host), so a single node loss never flaps /readyz.
    static constexpr std::chrono::milliseconds kJetStreamGrace{15'000};
    static constexpr int64_t kProbeEveryMs = 2'000;
    static constexpr int64_t kProbeWaitMs = 2'000;

    static int64_t now_ms() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }

    // One stream-info request: records when the stream last had a working leader, and
    // otherwise why not. On a cluster that lost its quorum, nats-server (2.9) still answers
    // stream info from a surviving replica, with no leader (the old leader steps down ~10 s
    // after losing its peers), and other requests get "JetStream system temporarily
    // unavailable" (error 10008): so a missing leader counts as no answer. "Stream not found"
    // is an answer (provisioning recreates it).
    void probe_jetstream() {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = kProbeWaitMs;
        jsStreamInfo *si = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        natsStatus s = js_GetStreamInfo(&si, link_->js(), config_.stream_name.c_str(), &jo, &code);
        std::string why;
        if (s == NATS_OK) {
            const jsClusterInfo *ci = si->Cluster;
            const bool clustered = ci && ci->Name && *ci->Name;
            if (clustered && !(ci->Leader && *ci->Leader)) why = "the stream has no leader";
        } else if (s != NATS_NOT_FOUND && code != JSStreamNotFoundErr) {
            why = nats_error(s, "stream info");
            if (code != 0) why += " [JetStream error " + std::to_string(static_cast<int>(code)) + "]";
        }
        if (si) jsStreamInfo_Destroy(si);
        if (why.empty()) {
            last_js_answer_ms_ = now_ms();
            return;
        }
        std::lock_guard lk(mu_);
        js_probe_error_ = why;
    }

    void set_not_ready(const std::string &why) {
        std::lock_guard lk(mu_);
        not_ready_reason_ = why;
    }

    // Provisions once NATS is reachable, and re-checks after every reconnect (the server may
    // have been replaced by one without our streams). Backs off on failures.
    void supervise() {
        int64_t pause_ms = 250;
        int64_t next_provision_ms = 0, last_probe_ms = 0;
        while (running_.load()) {
            uint64_t gen = link_->connect_generation();
            bool need = !provisioned_.load() || gen != provisioned_gen_;
            const bool up = link_->connected();
            if (need && up && now_ms() >= next_provision_ms) {
                try {
                    provision_streams(*link_, config_, host());
                    provisioned_gen_ = gen;
                    if (!provisioned_.exchange(true)) host().info("NATS transport ready");
                    pause_ms = 250;
                    last_js_answer_ms_ = now_ms();
                    set_not_ready("");
                    need = false;
                } catch (const std::exception &e) {
                    set_not_ready(e.what());
                    {
                        std::lock_guard lk(mu_);
                        js_probe_error_ = e.what();
                    }
                    host().warn(std::string("stream provisioning failed, retrying in ") +
                                std::to_string(pause_ms) + " ms: " + e.what());
                    next_provision_ms = now_ms() + pause_ms;
                    pause_ms = std::min<int64_t>(pause_ms * 2, 30'000);
                }
            }
            // Once provisioned, JetStream is probed every kProbeEveryMs, also while the
            // re-check after a reconnect backs off: readiness comes back as soon as JetStream
            // answers again, not at the next provisioning attempt.
            if (up && provisioned_.load() && now_ms() - last_probe_ms >= kProbeEveryMs) {
                last_probe_ms = now_ms();
                probe_jetstream();
            } else if (!up) {
                // ready() reports the connection itself; JetStream's silence counts from the
                // moment we can ask again.
                last_js_answer_ms_ = now_ms();
            }
            std::unique_lock lk(mu_);
            cv_.wait_for(lk, std::chrono::milliseconds(200), [&] { return !running_.load(); });
        }
    }

    NatsConfig config_;
    std::shared_ptr<Link> link_;
    std::unique_ptr<DeadLetters> dead_letters_;
    std::unique_ptr<Publisher> publisher_;
    std::atomic<bool> provisioned_{false};
    uint64_t provisioned_gen_ = 0;
    std::atomic<bool> running_{false};
    std::atomic<bool> stopped_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    std::string not_ready_reason_;
    std::atomic<int64_t> last_js_answer_ms_{now_ms()}; // steady clock: stream last had a leader
    std::string js_probe_error_ = "no answer"; // under mu_
    std::thread supervisor_;
};

// cnats keeps process-wide state and threads (timers, async callbacks, subscription
// dispatchers) that outlive every connection. The host calls deinit after the last component
// was destroyed and before unloading this library: waiting there until those threads have
// unrolled closes cnats cleanly. The library is still linked `-z nodelete` (CMakeLists.txt):
// CloseAndWait can return a moment before the last cnats thread has left libnats code.
struct CnatsLibrary {
    static void init() {
        if (natsStatus s = nats_Open(-1); s != NATS_OK)
            throw std::runtime_error(std::string("cannot initialise cnats: ") + natsStatus_GetText(s));
    }
    static void deinit() noexcept {
        // Bounded: a leaked cnats object must not hang the shutdown forever.
        nats_CloseAndWait(30'000);
    }
};

} // namespace fraiseql_observer::nats_transport

FOBS_PLUGIN_WITH_LIBRARY("nats", FOBS_NATS_VERSION, "NATS JetStream transport (durable, at-least-once, DLQ)",
                         fraiseql_observer::nats_transport::CnatsLibrary,
                         fraiseql_observer::nats_transport::NatsTransport)
