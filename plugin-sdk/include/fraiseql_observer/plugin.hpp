// fraiseql-observer plugin SDK: header-only C++17 wrapper over abi.h.
//
// Write a class deriving from Source, Transport or Action, give it a constructor taking
// `sdk::Host`, override the virtual functions, and export the plugin with one macro:
//
//     class Echo final : public fraiseql_observer::sdk::Action {
//       public:
//         explicit Echo(fraiseql_observer::sdk::Host host) : Action(host) {}
//         void execute(const fraiseql_observer::sdk::Event &event,
//                      fraiseql_observer::sdk::Completion done) override {
//             host().info("got " + std::string(event.id));
//             done.ok();
//         }
//     };
//     FOBS_PLUGIN("echo", "1.0.0", "Logs every event", Echo)
//
// The wrapper keeps C++ out of the ABI: every call from the host goes through a noexcept
// trampoline that turns an escaping exception into an error (create/start), a RETRY outcome
// (execute/publish) or a log line (stop/destroy). A Completion that is destroyed without being
// completed completes as RETRY, so a dropped unit of work is redelivered, never lost.
//
// Depends only on the C and C++ standard libraries.
#ifndef FRAISEQL_OBSERVER_PLUGIN_HPP
#define FRAISEQL_OBSERVER_PLUGIN_HPP

#include <fraiseql_observer/abi.h>
#include <fraiseql_observer/config_keys.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fraiseql_observer::sdk {

inline std::string_view view(fobs_str s) noexcept {
    return s.size == 0 ? std::string_view{} : std::string_view(s.data, s.size);
}
inline fobs_str str(std::string_view s) noexcept { return fobs_str{s.data(), s.size()}; }

/// Thrown from admin() for an op the component does not offer (reported as
/// FOBS_ERR_UNSUPPORTED; any other exception is an error of a supported op).
class UnsupportedOperation : public std::invalid_argument {
  public:
    using std::invalid_argument::invalid_argument;
};

/// Thrown from start() for a failure that may go away (peer unreachable, ...).
class TransientError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// Handle to one metric series, owned by the host. Cheap to copy; safe from any thread.
class Metric {
  public:
    Metric() = default;
    Metric(const fobs_host *host, fobs_metric *metric) : host_(host), metric_(metric) {}
    void add(double v = 1.0) const noexcept {
        if (metric_) host_->metric_add(host_, metric_, v);
    }
    void set(double v) const noexcept {
        if (metric_) host_->metric_set(host_, metric_, v);
    }
    void observe(double v) const noexcept {
        if (metric_) host_->metric_observe(host_, metric_, v);
    }
    explicit operator bool() const noexcept { return metric_ != nullptr; }

  private:
    const fobs_host *host_ = nullptr;
    fobs_metric *metric_ = nullptr;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

/// Borrowed view of one event (valid only during the call that received it).
struct Event {
    std::string_view id, entity_type, operation, entity_id, source, body;
    uint32_t delivery_count = 0;
    uint64_t sequence = 0;

    static Event from(const fobs_event *e) noexcept {
        Event ev;
        ev.id = view(e->id);
        ev.entity_type = view(e->entity_type);
        ev.operation = view(e->operation);
        ev.entity_id = view(e->entity_id);
        ev.source = view(e->source);
        ev.body = view(e->body);
        ev.delivery_count = e->delivery_count;
        ev.sequence = e->sequence;
        return ev;
    }
    fobs_event to_c() const noexcept {
        fobs_event e{};
        e.struct_size = sizeof(e);
        e.id = str(id);
        e.entity_type = str(entity_type);
        e.operation = str(operation);
        e.entity_id = str(entity_id);
        e.source = str(source);
        e.body = str(body);
        e.delivery_count = delivery_count;
        e.sequence = sequence;
        return e;
    }
};


/// The host's services for this instance: logging, metrics, clock, config. Valid for the
/// whole life of the component; cheap to copy.
class Host {
  public:
    explicit Host(const fobs_host *h) noexcept : h_(h) {}

    const fobs_host *raw() const noexcept { return h_; }
    std::string_view config_json() const noexcept { return view(h_->config_json); }
    std::string_view instance_name() const noexcept { return view(h_->instance_name); }
    std::string_view component_name() const noexcept { return view(h_->component_name); }
    std::string_view host_version() const noexcept { return view(h_->host_version); }

    bool log_enabled(fobs_log_level level) const noexcept {
        return h_->log_enabled(h_, level) != 0;
    }
    void log(fobs_log_level level, std::string_view msg,
             std::string_view event_id = {}) const noexcept {
        h_->log(h_, level, str(msg), str(event_id));
    }
    void trace(std::string_view m) const noexcept { log(FOBS_LOG_TRACE, m); }
    void debug(std::string_view m) const noexcept { log(FOBS_LOG_DEBUG, m); }
    void info(std::string_view m) const noexcept { log(FOBS_LOG_INFO, m); }
    void warn(std::string_view m) const noexcept { log(FOBS_LOG_WARN, m); }
    void error(std::string_view m) const noexcept { log(FOBS_LOG_ERROR, m); }

    std::chrono::nanoseconds monotonic() const noexcept {
        return std::chrono::nanoseconds(h_->monotonic_ns(h_));
    }
    std::chrono::nanoseconds realtime() const noexcept {
        return std::chrono::nanoseconds(h_->realtime_ns(h_));
    }

    /// The host owns the envelope (ABI 1.1): decodes a canonical event body the host made
    /// into the event's fields and calls `fn(const Event &)` with them (views valid during the
    /// call). False, with the reason in `*error` when given, when the body is not a canonical
    /// event body or the host is older than 1.1 (then `fn` is not called).
    template <class F>
    bool decode_event(std::string_view body, F &&fn, std::string *error = nullptr) const {
        if (!FOBS_HAS_FIELD(h_, fobs_host, decode_event) || !h_->decode_event) {
            if (error) *error = "the host is older than ABI 1.1 (no decode_event)";
            return false;
        }
        char message[256] = {0};
        fobs_error err{};
        err.struct_size = sizeof(err);
        err.message = message;
        err.message_capacity = sizeof message;
        auto trampoline = [](void *closure, const fobs_event *e) {
            (*static_cast<std::remove_reference_t<F> *>(closure))(Event::from(e));
        };
        if (h_->decode_event(h_, str(body), trampoline, &fn, &err) == FOBS_OK) return true;
        if (error) *error = message;
        return false;
    }

    Metric counter(std::string_view name, std::string_view help, const Labels &labels = {}) const {
        return metric(FOBS_METRIC_COUNTER, name, help, labels, nullptr, 0);
    }
    Metric gauge(std::string_view name, std::string_view help, const Labels &labels = {}) const {
        return metric(FOBS_METRIC_GAUGE, name, help, labels, nullptr, 0);
    }
    /// Empty `buckets` = the host's default latency buckets (0.5 ms ... 60 s).
    Metric histogram(std::string_view name, std::string_view help, const Labels &labels = {},
                     const std::vector<double> &buckets = {}) const {
        return metric(FOBS_METRIC_HISTOGRAM, name, help, labels, buckets.data(), buckets.size());
    }

  private:
    Metric metric(fobs_metric_type type, std::string_view name, std::string_view help,
                  const Labels &labels, const double *buckets, size_t nbuckets) const {
        std::vector<fobs_label> ls;
        ls.reserve(labels.size());
        for (const auto &kv : labels) ls.push_back(fobs_label{str(kv.first), str(kv.second)});
        return Metric(h_, h_->metric(h_, type, str(name), str(help), ls.data(), ls.size(),
                                     buckets, nbuckets));
    }
    const fobs_host *h_;
};

/// A unit of work's completion token, owned by this object until completed. Move-only.
/// Completes exactly once; destroying it uncompleted completes it as RETRY ("dropped").
class Completion {
  public:
    Completion() = default;
    explicit Completion(const fobs_completion *c) noexcept : c_(c) {}
    Completion(Completion &&o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    Completion &operator=(Completion &&o) noexcept {
        if (this != &o) {
            drop();
            c_ = std::exchange(o.c_, nullptr);
        }
        return *this;
    }
    Completion(const Completion &) = delete;
    Completion &operator=(const Completion &) = delete;
    ~Completion() { drop(); }

    bool pending() const noexcept { return c_ != nullptr; }

    void ok() noexcept { finish(FOBS_OUTCOME_OK, -1, {}); }
    /// Transient failure; `after` < 0 lets the receiver choose the delay.
    void retry(std::string_view reason = {},
               std::chrono::milliseconds after = std::chrono::milliseconds(-1)) noexcept {
        finish(FOBS_OUTCOME_RETRY, after.count(), reason);
    }
    /// Permanent failure.
    void fail(std::string_view reason) noexcept { finish(FOBS_OUTCOME_FAILED, -1, reason); }
    /// Pass on an outcome received from elsewhere.
    void complete(const fobs_outcome &outcome) noexcept {
        if (!c_) return;
        const fobs_completion *c = std::exchange(c_, nullptr);
        c->complete(c, &outcome);
    }
    /// Give up ownership without completing (the caller takes over the raw token).
    const fobs_completion *release() noexcept { return std::exchange(c_, nullptr); }

  private:
    void finish(fobs_outcome_kind kind, int64_t after_ms, std::string_view reason) noexcept {
        fobs_outcome o{};
        o.struct_size = sizeof(o);
        o.kind = kind;
        o.retry_after_ms = after_ms;
        o.reason = str(reason);
        complete(o);
    }
    void drop() noexcept {
        if (!c_) return;
        // Destroyed while an exception unwinds (e.g. the by-value Completion of an execute()
        // that threw): say so; the trampoline logs the exception itself.
        if (std::uncaught_exceptions() > 0) retry("an exception escaped before completing");
        else retry("completion dropped without an outcome");
    }
    const fobs_completion *c_ = nullptr;
};

/// Writes (part of) a capability's answer to the host, e.g. progress lines of fobs.dlq/1.
class Writer {
  public:
    Writer(fobs_write_fn fn, void *closure) noexcept : fn_(fn), closure_(closure) {}
    void write(std::string_view chunk) const noexcept { fn_(closure_, str(chunk)); }
    /// One JSON object followed by a newline (the line-oriented answers of abi.h).
    void line(std::string_view json_object) const noexcept {
        write(json_object);
        write("\n");
    }

  private:
    fobs_write_fn fn_;
    void *closure_;
};

/// Base of every component: lifecycle hooks with sensible defaults.
///
/// Capabilities (ABI 1.1, shapes in abi.h): a component offers fobs.status/1, fobs.dlq/1,
/// fobs.sql/1 or fobs.limits/1 by overriding status_json, dlq_json, sql_json or any of
/// max_attempt_ms, redelivery_after_ms, max_deliveries, max_unacked, max_concurrency (the
/// others then answer 0, "unknown"); any other capability by declaring
///     static const void *capability(const char *id);
/// in its class (returning its own static struct for `id`, or nullptr).
class Component {
  public:
    explicit Component(Host host) noexcept : host_(host) {}
    virtual ~Component() = default;
    Component(const Component &) = delete;
    Component &operator=(const Component &) = delete;

    /// Connect and spawn threads. Throw ConfigError / TransientError / anything on failure.
    virtual void start() {}
    /// Stop and settle in-flight work (see abi.h).
    virtual void stop() noexcept {}
    /// Return true when working; else false with a reason in `why`.
    virtual bool ready(std::string & /*why*/) { return true; }
    /// Answer an admin request (JSON in, JSON out). Throw UnsupportedOperation for an unknown
    /// op (reported as FOBS_ERR_UNSUPPORTED) and anything else for errors.
    virtual std::string admin(std::string_view /*request_json*/) {
        throw UnsupportedOperation("no admin operations");
    }

    /// fobs.status/1: the answer object for `request_json` (abi.h). [main-thread]
    virtual std::string status_json(std::string_view /*request_json*/) {
        throw UnsupportedOperation("no status");
    }
    /// fobs.dlq/1: the final answer; progress lines (replay) go through `progress.line`.
    /// Throw UnsupportedOperation for an op not offered. [main-thread]
    virtual std::string dlq_json(std::string_view /*request_json*/, const Writer & /*progress*/) {
        throw UnsupportedOperation("no dead-letter queue");
    }
    /// fobs.sql/1: {"sql": "..."} for the requested mode; UnsupportedOperation for a mode the
    /// component does not serve. Called on a created, never started instance. [main-thread]
    virtual std::string sql_json(std::string_view /*request_json*/) {
        throw UnsupportedOperation("no SQL");
    }
    /// fobs.limits/1: the longest single attempt in ms, 0 = unknown. [any-thread]
    virtual uint64_t max_attempt_ms() const { return 0; }
    /// fobs.limits/1, transports: ms before an unsettled delivery comes again, 0 = unknown.
    virtual uint64_t redelivery_after_ms() const { return 0; }
    /// fobs.limits/1, transports: deliveries of one event before the transport gives up on it
    /// (dead-letters it; JetStream max_deliver). 0 = unknown, which makes the host treat
    /// on_failure = "skip" like "park" (with a warning); UINT64_MAX = unlimited. [any-thread]
    virtual uint64_t max_deliveries() const { return 0; }
    /// fobs.limits/1, transports: events one consumer may hold unsettled at once, those
    /// awaiting a redelivery included (JetStream max_ack_pending). 0 = unknown, UINT64_MAX =
    /// unlimited. The host warns when, with ordering = "entity", it exceeds max_in_flight or
    /// leaves a window under 4 x the actions' concurrency. [any-thread]
    virtual uint64_t max_unacked() const { return 0; }
    /// fobs.limits/1, actions: attempts run at once (webhook: requests in flight,
    /// max_concurrency). 0 = unknown. [any-thread]
    virtual uint64_t max_concurrency() const { return 0; }

    const Host &host() const noexcept { return host_; }

  private:
    Host host_;
};

/// Handed to a Source in start(): emit records to the host.
class SourceSink {
  public:
    SourceSink() = default;
    explicit SourceSink(const fobs_source_sink *s) noexcept : s_(s) {}
    /// See fobs_source_sink::emit. `done` is always completed exactly once.
    void emit(std::string_view payload, int64_t txid, std::string_view channel,
              const fobs_completion *done) const noexcept {
        fobs_source_record r{};
        r.struct_size = sizeof(r);
        r.payload = str(payload);
        r.txid = txid;
        r.channel = str(channel);
        s_->emit(s_, &r, done);
    }
    explicit operator bool() const noexcept { return s_ != nullptr; }

  private:
    const fobs_source_sink *s_ = nullptr;
};

class Source : public Component {
  public:
    using Component::Component;
    /// Start producing into `sink` (valid until stop() returns).
    virtual void start(SourceSink sink) = 0;

  private:
    void start() final {}
};

/// Handed to a Transport's consumer: deliver events to the host.
class ConsumerSink {
  public:
    ConsumerSink() = default;
    explicit ConsumerSink(const fobs_consumer_sink *s) noexcept : s_(s) {}
    void deliver(const fobs_event &event, const fobs_completion *done) const noexcept {
        s_->deliver(s_, &event, done);
    }

  private:
    const fobs_consumer_sink *s_ = nullptr;
};

struct ConsumerOptions {
    std::string pipeline;
    std::string consumer_name;
    std::vector<std::string> entity_types;
    std::vector<std::string> operations;
    uint32_t max_in_flight = 0;
    uint64_t max_attempt_ms = 0; // 1.1: the pipeline's longest action attempt, 0 = unknown

    /// Tell the host the filter hints are applied (only matching events will be delivered),
    /// so it skips its own filter. Only during open_consumer.
    void set_filters_applied() const noexcept {
        if (filters_applied_) *filters_applied_ = 1;
    }

    static ConsumerOptions from(const fobs_consumer_options *o) {
        ConsumerOptions r;
        r.pipeline = std::string(view(o->pipeline));
        r.consumer_name = std::string(view(o->consumer_name));
        for (size_t i = 0; i < o->entity_type_count; ++i)
            r.entity_types.emplace_back(view(o->entity_types[i]));
        for (size_t i = 0; i < o->operation_count; ++i)
            r.operations.emplace_back(view(o->operations[i]));
        r.max_in_flight = o->max_in_flight;
        if (FOBS_HAS_FIELD(o, fobs_consumer_options, max_attempt_ms))
            r.max_attempt_ms = o->max_attempt_ms;
        if (FOBS_HAS_FIELD(o, fobs_consumer_options, filters_applied))
            r.filters_applied_ = o->filters_applied;
        return r;
    }

  private:
    int32_t *filters_applied_ = nullptr;
};

/// A consumer opened by a Transport. Destroying it must stop deliveries (see consumer_close).
class Consumer {
  public:
    virtual ~Consumer() = default;
    /// Stop fetching and settle delivered events; no deliver() after it returns.
    virtual void close() noexcept = 0;
};

class Transport : public Component {
  public:
    using Component::Component;
    virtual void publish(const Event &event, Completion done) = 0;
    virtual std::unique_ptr<Consumer> open_consumer(const ConsumerOptions &options,
                                                    ConsumerSink sink) = 0;
};

class Action : public Component {
  public:
    using Component::Component;
    virtual void execute(const Event &event, Completion done) = 0;
};

// --------------------------------------------------------------------------------------
// Trampolines (implementation detail)
// --------------------------------------------------------------------------------------
namespace detail {

inline void copy_text(char *dst, size_t cap, std::string_view s) noexcept {
    if (!dst || cap == 0) return;
    size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
    if (n) std::memcpy(dst, s.data(), n);
    dst[n] = '\0';
}

inline fobs_status report(fobs_error *err, std::string_view msg, std::string_view key,
                          bool retriable, fobs_status status) noexcept {
    if (err) {
        if (FOBS_HAS_FIELD(err, fobs_error, message_capacity))
            copy_text(err->message, err->message_capacity, msg);
        if (FOBS_HAS_FIELD(err, fobs_error, key_path_capacity))
            copy_text(err->key_path, err->key_path_capacity, key);
        if (FOBS_HAS_FIELD(err, fobs_error, retriable)) err->retriable = retriable ? 1 : 0;
    }
    return status;
}

// Turns the exception in flight into an error report.
inline fobs_status report_current(fobs_error *err) noexcept {
    try {
        throw;
    } catch (const ConfigError &e) {
        return report(err, e.what(), e.key(), false, FOBS_ERR_CONFIG);
    } catch (const TransientError &e) {
        return report(err, e.what(), {}, true, FOBS_ERR);
    } catch (const std::exception &e) {
        return report(err, e.what(), {}, false, FOBS_ERR);
    } catch (...) {
        return report(err, "unknown exception", {}, false, FOBS_ERR);
    }
}

inline void log_current(Component *c, const char *where) noexcept {
    try {
        throw;
    } catch (const std::exception &e) {
        c->host().error(std::string(where) + " threw: " + e.what());
    } catch (...) {
        c->host().error(std::string(where) + " threw an unknown exception");
    }
}

template <class T> void *create(const fobs_host *host, fobs_error *err) noexcept {
    try {
        return static_cast<Component *>(new T(Host(host)));
    } catch (...) {
        report_current(err);
        return nullptr;
    }
}

inline Component *self(void *p) noexcept { return static_cast<Component *>(p); }

inline void destroy(void *p) noexcept {
    try {
        delete self(p);
    } catch (...) {
    }
}

inline void stop(void *p) noexcept {
    try {
        self(p)->stop();
    } catch (...) {
        log_current(self(p), "stop");
    }
}

inline int32_t ready(void *p, fobs_error *why) noexcept {
    try {
        std::string reason;
        if (self(p)->ready(reason)) return 1;
        report(why, reason, {}, true, FOBS_ERR);
        return 0;
    } catch (...) {
        report_current(why);
        return 0;
    }
}

template <class Fn>
fobs_status answer_json(void *p, fobs_str request, fobs_write_fn write, void *closure,
                        fobs_error *err, Fn &&fn) noexcept {
    try {
        std::string answer = fn(self(p), view(request), Writer(write, closure));
        write(closure, str(answer));
        return FOBS_OK;
    } catch (const UnsupportedOperation &e) {
        return report(err, e.what(), {}, false, FOBS_ERR_UNSUPPORTED);
    } catch (...) {
        return report_current(err);
    }
}
inline fobs_status admin(void *p, fobs_str request, fobs_write_fn write, void *closure,
                         fobs_error *err) noexcept {
    return answer_json(p, request, write, closure, err,
                       [](Component *c, std::string_view r, const Writer &) { return c->admin(r); });
}

inline fobs_status start_plain(void *p, fobs_error *err) noexcept {
    try {
        self(p)->start();
        return FOBS_OK;
    } catch (...) {
        return report_current(err);
    }
}

inline fobs_status start_source(void *p, const fobs_source_sink *sink, fobs_error *err) noexcept {
    try {
        static_cast<Source *>(self(p))->start(SourceSink(sink));
        return FOBS_OK;
    } catch (...) {
        return report_current(err);
    }
}

// The Completion moved into execute()/publish() completes itself as RETRY while an escaping
// exception unwinds; the catch here only adds the exception's text to the log.
inline void execute(void *p, const fobs_event *event, const fobs_completion *done) noexcept {
    Completion c(done);
    try {
        static_cast<Action *>(self(p))->execute(Event::from(event), std::move(c));
    } catch (...) {
        log_current(self(p), "execute");
        c.retry("action threw an exception");
    }
}

inline void publish(void *p, const fobs_event *event, const fobs_completion *done) noexcept {
    Completion c(done);
    try {
        static_cast<Transport *>(self(p))->publish(Event::from(event), std::move(c));
    } catch (...) {
        log_current(self(p), "publish");
        c.retry("publish threw an exception");
    }
}

inline fobs_status consumer_open(void *p, const fobs_consumer_options *options,
                                 const fobs_consumer_sink *sink, void **consumer,
                                 fobs_error *err) noexcept {
    try {
        auto c = static_cast<Transport *>(self(p))->open_consumer(ConsumerOptions::from(options),
                                                                  ConsumerSink(sink));
        if (!c) return report(err, "open_consumer returned no consumer", {}, false, FOBS_ERR);
        *consumer = c.release();
        return FOBS_OK;
    } catch (...) {
        return report_current(err);
    }
}

inline void consumer_close(void *, void *consumer) noexcept {
    auto *c = static_cast<Consumer *>(consumer);
    try {
        c->close();
    } catch (...) {
    }
    delete c;
}

// A component's key table: its `static constexpr fobs_config_key config_keys[]` (or a
// constexpr reference to such an array), if any.
template <class T, class = void> struct key_table_of {
    static constexpr const fobs_config_key *data = nullptr;
    static constexpr size_t size = 0;
};
template <class T> struct key_table_of<T, std::void_t<decltype(T::config_keys)>> {
    static constexpr const fobs_config_key *data = T::config_keys;
    static constexpr size_t size = std::extent_v<std::remove_reference_t<decltype(T::config_keys)>>;
};

// A component offers admin operations when it overrides Component::admin.
template <class T>
constexpr bool has_admin_v =
    !std::is_same_v<decltype(&T::admin), decltype(&Component::admin)>;

// ... and a standard capability when it overrides its function.
template <class T>
constexpr bool has_status_v =
    !std::is_same_v<decltype(&T::status_json), decltype(&Component::status_json)>;
template <class T>
constexpr bool has_dlq_v = !std::is_same_v<decltype(&T::dlq_json), decltype(&Component::dlq_json)>;
template <class T>
constexpr bool has_sql_v = !std::is_same_v<decltype(&T::sql_json), decltype(&Component::sql_json)>;
template <class T>
constexpr bool has_limits_v =
    !std::is_same_v<decltype(&T::max_attempt_ms), decltype(&Component::max_attempt_ms)> ||
    !std::is_same_v<decltype(&T::redelivery_after_ms), decltype(&Component::redelivery_after_ms)> ||
    !std::is_same_v<decltype(&T::max_deliveries), decltype(&Component::max_deliveries)> ||
    !std::is_same_v<decltype(&T::max_unacked), decltype(&Component::max_unacked)> ||
    !std::is_same_v<decltype(&T::max_concurrency), decltype(&Component::max_concurrency)>;
template <class T, class = void> struct has_own_capability : std::false_type {};
template <class T>
struct has_own_capability<T, std::void_t<decltype(T::capability(static_cast<const char *>(nullptr)))>>
    : std::true_type {};

inline fobs_status status_call(void *p, fobs_str request, fobs_write_fn write, void *closure,
                               fobs_error *err) noexcept {
    return answer_json(p, request, write, closure, err,
                       [](Component *c, std::string_view r, const Writer &) { return c->status_json(r); });
}
inline fobs_status dlq_call(void *p, fobs_str request, fobs_write_fn write, void *closure,
                            fobs_error *err) noexcept {
    return answer_json(p, request, write, closure, err,
                       [](Component *c, std::string_view r, const Writer &w) { return c->dlq_json(r, w); });
}
inline fobs_status sql_call(void *p, fobs_str request, fobs_write_fn write, void *closure,
                            fobs_error *err) noexcept {
    return answer_json(p, request, write, closure, err,
                       [](Component *c, std::string_view r, const Writer &) { return c->sql_json(r); });
}
// fobs.limits/1 entries: a throwing override answers 0 ("unknown").
template <uint64_t (Component::*Fn)() const> uint64_t limit_call(void *p) noexcept {
    try {
        return (self(p)->*Fn)();
    } catch (...) {
        return 0;
    }
}

template <class T> const void *get_capability(const char *id) noexcept {
    if (!id) return nullptr;
    if constexpr (has_own_capability<T>::value) {
        if (const void *own = T::capability(id)) return own;
    }
    static const fobs_json_capability status_cap = {sizeof(fobs_json_capability), &status_call};
    static const fobs_json_capability dlq_cap = {sizeof(fobs_json_capability), &dlq_call};
    static const fobs_json_capability sql_cap = {sizeof(fobs_json_capability), &sql_call};
    static const fobs_limits_capability limits_cap = {
        sizeof(fobs_limits_capability),          &limit_call<&Component::max_attempt_ms>,
        &limit_call<&Component::redelivery_after_ms>, &limit_call<&Component::max_deliveries>,
        &limit_call<&Component::max_unacked>,     &limit_call<&Component::max_concurrency>};
    std::string_view want(id);
    if (has_status_v<T> && want == FOBS_CAP_STATUS) return &status_cap;
    if (has_dlq_v<T> && want == FOBS_CAP_DLQ) return &dlq_cap;
    if (has_sql_v<T> && want == FOBS_CAP_SQL) return &sql_cap;
    if (has_limits_v<T> && want == FOBS_CAP_LIMITS) return &limits_cap;
    return nullptr;
}

template <class T> const fobs_source_desc *source_desc() noexcept {
    if constexpr (std::is_base_of_v<Source, T>) {
        static const fobs_source_desc d = {sizeof(fobs_source_desc),
                                           &create<T>,
                                           &destroy,
                                           &start_source,
                                           &stop,
                                           &ready,
                                           has_admin_v<T> ? &admin : nullptr,
                                           key_table_of<T>::data,
                                           key_table_of<T>::size,
                                           &get_capability<T>};
        return &d;
    } else {
        return nullptr;
    }
}

template <class T> const fobs_transport_desc *transport_desc() noexcept {
    if constexpr (std::is_base_of_v<Transport, T>) {
        static const fobs_transport_desc d = {sizeof(fobs_transport_desc),
                                              &create<T>,
                                              &destroy,
                                              &start_plain,
                                              &stop,
                                              &ready,
                                              has_admin_v<T> ? &admin : nullptr,
                                              &publish,
                                              &consumer_open,
                                              &consumer_close,
                                              key_table_of<T>::data,
                                              key_table_of<T>::size,
                                              &get_capability<T>};
        return &d;
    } else {
        return nullptr;
    }
}

template <class T> const fobs_action_desc *action_desc() noexcept {
    if constexpr (std::is_base_of_v<Action, T>) {
        static const fobs_action_desc d = {sizeof(fobs_action_desc),
                                           &create<T>,
                                           &destroy,
                                           &start_plain,
                                           &stop,
                                           &ready,
                                           has_admin_v<T> ? &admin : nullptr,
                                           &execute,
                                           key_table_of<T>::data,
                                           key_table_of<T>::size,
                                           &get_capability<T>};
        return &d;
    } else {
        return nullptr;
    }
}

// Picks, for each kind, the one listed component class of that kind (at most one per kind).
template <class... Ts> const fobs_source_desc *pick_source() noexcept {
    static_assert(((std::is_base_of_v<Source, Ts> ? 1 : 0) + ... + 0) <= 1,
                  "at most one Source per plugin");
    const fobs_source_desc *r = nullptr;
    ((r = r ? r : source_desc<Ts>()), ...);
    return r;
}
template <class... Ts> const fobs_transport_desc *pick_transport() noexcept {
    static_assert(((std::is_base_of_v<Transport, Ts> ? 1 : 0) + ... + 0) <= 1,
                  "at most one Transport per plugin");
    const fobs_transport_desc *r = nullptr;
    ((r = r ? r : transport_desc<Ts>()), ...);
    return r;
}
template <class... Ts> const fobs_action_desc *pick_action() noexcept {
    static_assert(((std::is_base_of_v<Action, Ts> ? 1 : 0) + ... + 0) <= 1,
                  "at most one Action per plugin");
    const fobs_action_desc *r = nullptr;
    ((r = r ? r : action_desc<Ts>()), ...);
    return r;
}

// Library-wide setup and teardown (FOBS_PLUGIN_WITH_LIBRARY): `Lib::init()` may throw, which
// refuses the plugin with the exception's text; `Lib::deinit()` must not throw.
struct NoLibrary {};
template <class Lib> fobs_status library_init(fobs_error *err) noexcept {
    try {
        Lib::init();
        return FOBS_OK;
    } catch (...) {
        return report_current(err);
    }
}
template <class Lib> void library_deinit() noexcept { Lib::deinit(); }

template <class Lib, class... Ts>
fobs_plugin_entry make_entry(const char *name, const char *version,
                             const char *description) noexcept {
    static_assert(sizeof...(Ts) >= 1, "a plugin offers at least one component");
    static_assert((std::is_base_of_v<Component, Ts> && ...),
                  "components derive from Source, Transport or Action");
    fobs_plugin_entry e{};
    e.struct_size = sizeof(e);
    e.abi_major = FOBS_ABI_MAJOR;
    e.abi_minor = FOBS_ABI_MINOR;
    e.min_host_minor = FOBS_ABI_MINOR;
    e.name = name;
    e.version = version;
    e.description = description;
    e.source = pick_source<Ts...>();
    e.transport = pick_transport<Ts...>();
    e.action = pick_action<Ts...>();
    if constexpr (!std::is_same_v<Lib, NoLibrary>) {
        e.init = &library_init<Lib>;
        e.deinit = &library_deinit<Lib>;
    }
    return e;
}

} // namespace detail
} // namespace fraiseql_observer::sdk

/// Exports the plugin: its name (as configs use it), version, one-line description and the
/// component classes it offers (at most one per kind). Use once, at namespace scope.
#define FOBS_PLUGIN(NAME, VERSION, DESCRIPTION, ...)                                           \
    FOBS_PLUGIN_WITH_LIBRARY(NAME, VERSION, DESCRIPTION,                                       \
                             ::fraiseql_observer::sdk::detail::NoLibrary, __VA_ARGS__)

/// Like FOBS_PLUGIN, with a class LIB whose `static void init()` runs once before the first
/// component is created (throw to refuse the plugin with the exception's text) and whose
/// `static void deinit() noexcept` runs once after the last component was destroyed, before
/// the library is unloaded: for client libraries with process-wide state (threads, TLS).
#define FOBS_PLUGIN_WITH_LIBRARY(NAME, VERSION, DESCRIPTION, LIB, ...)                        \
    extern "C" FOBS_EXPORT const fobs_plugin_entry *fobs_plugin_get_entry(void) {              \
        static const fobs_plugin_entry entry =                                                 \
            ::fraiseql_observer::sdk::detail::make_entry<LIB, __VA_ARGS__>(NAME, VERSION,      \
                                                                           DESCRIPTION);       \
        return &entry;                                                                         \
    }

#endif // FRAISEQL_OBSERVER_PLUGIN_HPP
