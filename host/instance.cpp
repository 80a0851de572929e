#include "instance.hpp"

#include "event.hpp"
#include "services.hpp"

#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <time.h>

namespace fraiseql_observer::host {

using sdk::str;
using sdk::view;

Outcome Outcome::from(const fobs_outcome *o) {
    Outcome r;
    if (!o) return Outcome::retry("completed without an outcome");
    r.kind = o->kind;
    if (r.kind != FOBS_OUTCOME_OK && r.kind != FOBS_OUTCOME_RETRY && r.kind != FOBS_OUTCOME_FAILED) {
        r.kind = FOBS_OUTCOME_RETRY;
        r.reason = "invalid outcome kind " + std::to_string(o->kind);
        return r;
    }
    if (FOBS_HAS_FIELD(o, fobs_outcome, retry_after_ms)) r.retry_after_ms = o->retry_after_ms;
    if (FOBS_HAS_FIELD(o, fobs_outcome, reason)) r.reason = std::string(view(o->reason));
    if (FOBS_HAS_FIELD(o, fobs_outcome, component)) r.component = std::string(view(o->component));
    return r;
}

const char *to_string(fobs_outcome_kind k) {
    switch (k) {
    case FOBS_OUTCOME_OK: return "ok";
    case FOBS_OUTCOME_RETRY: return "retry";
    case FOBS_OUTCOME_FAILED: return "failed";
    default: return "invalid";
    }
}

namespace {
struct HostCompletion {
    fobs_completion c;
    CompletionFn fn;
};
void host_complete(const fobs_completion *self, const fobs_outcome *outcome) {
    auto *hc = static_cast<HostCompletion *>(self->ctx);
    CompletionFn fn = std::move(hc->fn);
    delete hc;
    // Nothing may unwind into the plugin (not even bad_alloc).
    try {
        Outcome o = Outcome::from(outcome);
        if (fn) fn(o);
    } catch (...) {
    }
}
} // namespace

const fobs_completion *make_completion(CompletionFn fn) {
    auto *hc = new HostCompletion{};
    hc->c.struct_size = sizeof(fobs_completion);
    hc->c.ctx = hc;
    hc->c.complete = &host_complete;
    hc->fn = std::move(fn);
    return &hc->c;
}

fobs_event EventData::view() const {
    return sdk::Event{id, entity_type, operation, entity_id, source, body, delivery_count, sequence}.to_c();
}

EventData EventData::from(const fobs_event &e) {
    EventData d;
    d.id = std::string(sdk::view(e.id));
    d.entity_type = std::string(sdk::view(e.entity_type));
    d.operation = std::string(sdk::view(e.operation));
    d.entity_id = std::string(sdk::view(e.entity_id));
    d.body = std::string(sdk::view(e.body));
    if (FOBS_HAS_FIELD(&e, fobs_event, source)) d.source = std::string(sdk::view(e.source));
    if (FOBS_HAS_FIELD(&e, fobs_event, delivery_count)) d.delivery_count = e.delivery_count;
    if (FOBS_HAS_FIELD(&e, fobs_event, sequence)) d.sequence = e.sequence;
    return d;
}

// The smallest structs an ABI 1.x plugin may hand over (their 1.0 layout).
constexpr size_t k_event_v1_0_size = offsetof(fobs_event, sequence) + sizeof(uint64_t);
constexpr size_t k_record_v1_0_size = offsetof(fobs_source_record, channel) + sizeof(fobs_str);

// ---------------------------------------------------------------------------------------
// Host services for one instance

// The host's one reader of canonical event bodies (event.cpp), offered to transports.
fobs_status svc_decode_event(const fobs_host *h, fobs_str body,
                             void (*fn)(void *closure, const fobs_event *event), void *closure,
                             fobs_error *err);

struct Instance::HostBlock {
    fobs_host host{};
    Services *services = nullptr;
    std::string host_version = FOBS_VERSION;
    std::string instance_name, component_name, config_json;
    std::shared_ptr<spdlog::logger> logger;
};

namespace {

Instance::HostBlock *block(const fobs_host *h);

// Host services are called from plugin code: none of them lets an exception escape.
void svc_log(const fobs_host *h, fobs_log_level level, fobs_str msg, fobs_str event_id) {
    auto *b = block(h);
    if (level < FOBS_LOG_TRACE) level = FOBS_LOG_TRACE;
    if (level > FOBS_LOG_ERROR) level = FOBS_LOG_ERROR;
    try {
        b->services->log(b->instance_name, level, view(msg), view(event_id));
    } catch (...) {
    }
}

int32_t svc_log_enabled(const fobs_host *h, fobs_log_level level) {
    return block(h)->logger->should_log(static_cast<spdlog::level::level_enum>(level)) ? 1 : 0;
}

uint64_t clock_ns(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
uint64_t svc_monotonic(const fobs_host *) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t svc_realtime(const fobs_host *) { return clock_ns(CLOCK_REALTIME); }

fobs_metric *svc_metric_impl(const fobs_host *h, fobs_metric_type type, fobs_str name,
                             fobs_str help, const fobs_label *labels, size_t label_count,
                             const double *buckets, size_t bucket_count) {
    auto *b = block(h);
    MetricType t;
    switch (type) {
    case FOBS_METRIC_COUNTER: t = MetricType::counter; break;
    case FOBS_METRIC_GAUGE: t = MetricType::gauge; break;
    case FOBS_METRIC_HISTOGRAM: t = MetricType::histogram; break;
    default:
        b->logger->warn("metric '{}': unknown metric type {}", view(name), type);
        return nullptr;
    }
    LabelSet ls;
    for (size_t i = 0; i < label_count; ++i)
        ls.emplace_back(std::string(view(labels[i].name)), std::string(view(labels[i].value)));
    std::vector<double> bs;
    if (buckets) bs.assign(buckets, buckets + bucket_count);
    std::string error;
    Series *s = b->services->metrics().series(t, view(name), view(help), ls, bs, &error);
    if (!s) b->logger->warn("metric refused: {}", error);
    return reinterpret_cast<fobs_metric *>(s);
}

fobs_metric *svc_metric(const fobs_host *h, fobs_metric_type type, fobs_str name, fobs_str help,
                        const fobs_label *labels, size_t label_count, const double *buckets,
                        size_t bucket_count) {
    try {
        return svc_metric_impl(h, type, name, help, labels, label_count, buckets, bucket_count);
    } catch (...) {
        return nullptr;
    }
}

void svc_metric_add(const fobs_host *, fobs_metric *m, double v) {
    if (m) reinterpret_cast<Series *>(m)->add(v);
}
void svc_metric_set(const fobs_host *, fobs_metric *m, double v) {
    if (m) reinterpret_cast<Series *>(m)->set(v);
}
void svc_metric_observe(const fobs_host *, fobs_metric *m, double v) {
    if (m) reinterpret_cast<Series *>(m)->observe(v);
}

Instance::HostBlock *block(const fobs_host *h) { return static_cast<Instance::HostBlock *>(h->ctx); }

struct ErrorBuffers {
    char message[2048] = {0};
    char key[512] = {0};
    fobs_error err{};
    ErrorBuffers() {
        err.struct_size = sizeof(err);
        err.message = message;
        err.message_capacity = sizeof message;
        err.key_path = key;
        err.key_path_capacity = sizeof key;
        err.retriable = 0;
    }
    [[noreturn]] void raise(const std::string &what) const {
        std::string m = message[0] ? message : what;
        throw InstanceError(m, key, err.retriable != 0);
    }
};

// Generic accessors over the three descriptor types (they share their first fields' meaning).
struct Fns {
    void *(*create)(const fobs_host *, fobs_error *) = nullptr;
    void (*destroy)(void *) = nullptr;
    void (*stop)(void *) = nullptr;
    int32_t (*ready)(void *, fobs_error *) = nullptr;
    fobs_status (*admin)(void *, fobs_str, fobs_write_fn, void *, fobs_error *) = nullptr;
    const void *(*get_capability)(const char *) = nullptr;
};

template <class D> Fns fns_of(const D *d) {
    Fns f;
    f.create = d->create;
    f.destroy = d->destroy;
    f.stop = d->stop;
    if (FOBS_HAS_FIELD(d, D, ready)) f.ready = d->ready;
    if (FOBS_HAS_FIELD(d, D, admin)) f.admin = d->admin;
    if (FOBS_HAS_FIELD(d, D, get_capability)) f.get_capability = d->get_capability;
    return f;
}

Fns fns(const LoadedPlugin &p, ComponentKind k) {
    switch (k) {
    case ComponentKind::source: return fns_of(p.source);
    case ComponentKind::transport: return fns_of(p.transport);
    case ComponentKind::action: return fns_of(p.action);
    }
    return {};
}

} // namespace

Instance::Instance(std::shared_ptr<LoadedPlugin> plugin, ComponentKind kind,
                   const InstanceSpec &spec, Services &services)
    : plugin_(std::move(plugin)), kind_(kind), host_(std::make_unique<HostBlock>()) {
    if (!plugin_->offers(kind))
        throw InstanceError("plugin '" + plugin_->name + "' (" + plugin_->file.string() +
                                ") is not " + with_article(kind) + " plugin",
                            "plugin", false);
    HostBlock &b = *host_;
    b.services = &services;
    b.instance_name = spec.instance_name.empty() ? spec.component_name : spec.instance_name;
    b.component_name = spec.component_name;
    b.config_json = spec.config_json.empty() ? "{}" : spec.config_json;
    b.logger = services.logger(b.instance_name);
    fobs_host &h = b.host;
    h.struct_size = sizeof(fobs_host);
    h.abi_major = FOBS_ABI_MAJOR;
    h.abi_minor = FOBS_ABI_MINOR;
    h.ctx = &b;
    h.host_version = str(b.host_version);
    h.instance_name = str(b.instance_name);
    h.component_name = str(b.component_name);
    h.config_json = str(b.config_json);
    h.log = &svc_log;
    h.log_enabled = &svc_log_enabled;
    h.monotonic_ns = &svc_monotonic;
    h.realtime_ns = &svc_realtime;
    h.metric = &svc_metric;
    h.metric_add = &svc_metric_add;
    h.metric_set = &svc_metric_set;
    h.metric_observe = &svc_metric_observe;
    h.decode_event = &svc_decode_event;
}

void Instance::create_instance() {
    ErrorBuffers e;
    self_ = fns(*plugin_, kind_).create(&host_->host, &e.err);
    if (!self_)
        e.raise("plugin '" + plugin_->name + "' failed to create '" + host_->component_name +
                "' without saying why");
}

Instance::~Instance() {
    if (!self_) return;
    stop();
    fns(*plugin_, kind_).destroy(self_);
    self_ = nullptr;
}

const std::string &Instance::name() const { return host_->component_name; }
const fobs_host *Instance::host() const { return &host_->host; }

bool Instance::ready(std::string &why) const {
    auto f = fns(*plugin_, kind_);
    if (!f.ready || !self_) return self_ != nullptr;
    ErrorBuffers e;
    if (f.ready(self_, &e.err) == 1) return true;
    why = e.message[0] ? e.message : "not ready";
    return false;
}

bool Instance::has_admin() const { return fns(*plugin_, kind_).admin != nullptr; }

std::optional<std::string> Instance::admin(const std::string &request_json) const {
    auto f = fns(*plugin_, kind_);
    if (!f.admin) return std::nullopt;
    std::string answer;
    ErrorBuffers e;
    fobs_status st = f.admin(
        self_, str(request_json),
        [](void *closure, fobs_str chunk) {
            try {
                static_cast<std::string *>(closure)->append(chunk.data, chunk.size);
            } catch (...) {
            }
        },
        &answer, &e.err);
    if (st == FOBS_OK) return answer;
    if (st == FOBS_ERR_UNSUPPORTED) return std::nullopt;
    e.raise("admin request failed");
}

const void *Instance::capability(const char *id) const {
    auto f = fns(*plugin_, kind_);
    if (!f.get_capability || !id) return nullptr;
    try {
        return f.get_capability(id);
    } catch (...) {
        return nullptr;
    }
}

std::optional<std::string>
Instance::call_json(const char *id, const std::string &request_json,
                    const std::function<void(std::string_view)> &on_chunk) const {
    auto *cap = static_cast<const fobs_json_capability *>(capability(id));
    if (!cap || !FOBS_HAS_FIELD(cap, fobs_json_capability, call) || !cap->call) return std::nullopt;
    struct Sink {
        std::string answer;
        const std::function<void(std::string_view)> *on_chunk;
    } sink{{}, &on_chunk};
    ErrorBuffers e;
    fobs_status st = cap->call(
        self_, str(request_json),
        [](void *closure, fobs_str chunk) {
            auto *s = static_cast<Sink *>(closure);
            try {
                s->answer.append(chunk.data, chunk.size);
                if (*s->on_chunk) (*s->on_chunk)(view(chunk));
            } catch (...) {
            }
        },
        &sink, &e.err);
    if (st == FOBS_OK) return std::move(sink.answer);
    if (st == FOBS_ERR_UNSUPPORTED) return std::nullopt;
    e.raise(std::string(id) + " request failed");
}

// fobs.limits/1: each entry only when the component's struct is long enough to hold it (a
// plugin built before an entry was appended answers "unknown" for it) and not NULL.
#define FOBS_LIMIT(field)                                                                          \
    do {                                                                                           \
        auto *cap = static_cast<const fobs_limits_capability *>(capability(FOBS_CAP_LIMITS));      \
        if (!cap || !FOBS_HAS_FIELD(cap, fobs_limits_capability, field) || !cap->field) return 0;  \
        return cap->field(self_);                                                                  \
    } while (0)

uint64_t Instance::max_attempt_ms() const { FOBS_LIMIT(max_attempt_ms); }
uint64_t Instance::redelivery_after_ms() const { FOBS_LIMIT(redelivery_after_ms); }
uint64_t Instance::max_deliveries() const { FOBS_LIMIT(max_deliveries); }
uint64_t Instance::max_unacked() const { FOBS_LIMIT(max_unacked); }
uint64_t Instance::max_concurrency() const { FOBS_LIMIT(max_concurrency); }

#undef FOBS_LIMIT

void Instance::stop() {
    if (!self_ || !started_ || stopped_) return;
    stopped_ = true;
    fns(*plugin_, kind_).stop(self_);
}

fobs_status svc_decode_event(const fobs_host *, fobs_str body,
                             void (*fn)(void *closure, const fobs_event *event), void *closure,
                             fobs_error *err) {
    try {
        auto r = decode_event_body(view(body));
        if (auto *rej = std::get_if<Rejection>(&r))
            return sdk::detail::report(err, rej->reason, {}, false, FOBS_ERR);
        EventData &ev = std::get<EventData>(r);
        fobs_event e = ev.view();
        e.body = body;
        if (fn) fn(closure, &e);
        return FOBS_OK;
    } catch (...) {
        return sdk::detail::report(err, "the host could not decode the event body", {}, false, FOBS_ERR);
    }
}

// ---------------------------------------------------------------------------------------

namespace {
void raise_start_error(fobs_status st, const ErrorBuffers &e, const std::string &name) {
    if (st != FOBS_OK) e.raise("'" + name + "' failed to start");
}

Outcome wait_outcome(std::function<void(CompletionFn)> start, int64_t timeout_ms) {
    auto p = std::make_shared<std::promise<Outcome>>();
    auto fut = p->get_future();
    start([p](const Outcome &o) { p->set_value(o); });
    if (fut.wait_for(std::chrono::milliseconds(timeout_ms)) != std::future_status::ready)
        return Outcome::retry("timed out waiting for the completion");
    return fut.get();
}
} // namespace

ActionInstance::ActionInstance(std::shared_ptr<LoadedPlugin> plugin, const InstanceSpec &spec,
                               Services &services)
    : Instance(std::move(plugin), ComponentKind::action, spec, services) {
    create_instance();
}

void ActionInstance::start() {
    ErrorBuffers e;
    fobs_status st = plugin().action->start(self_, &e.err);
    raise_start_error(st, e, name());
    started_ = true;
}

void ActionInstance::execute(const fobs_event &event, CompletionFn fn) {
    plugin().action->execute(self_, &event, make_completion(std::move(fn)));
}

Outcome ActionInstance::execute_sync(const EventData &event, int64_t timeout_ms) {
    fobs_event ev = event.view();
    return wait_outcome([&](CompletionFn fn) { execute(ev, std::move(fn)); }, timeout_ms);
}

TransportInstance::TransportInstance(std::shared_ptr<LoadedPlugin> plugin,
                                     const InstanceSpec &spec, Services &services)
    : Instance(std::move(plugin), ComponentKind::transport, spec, services) {
    create_instance();
}

void TransportInstance::start() {
    ErrorBuffers e;
    fobs_status st = plugin().transport->start(self_, &e.err);
    raise_start_error(st, e, name());
    started_ = true;
}

void TransportInstance::publish(const fobs_event &event, CompletionFn fn) {
    plugin().transport->publish(self_, &event, make_completion(std::move(fn)));
}

Outcome TransportInstance::publish_sync(const EventData &event, int64_t timeout_ms) {
    fobs_event ev = event.view();
    return wait_outcome([&](CompletionFn fn) { publish(ev, std::move(fn)); }, timeout_ms);
}

struct TransportInstance::Consumer::State {
    fobs_consumer_sink sink{};
    DeliverFn deliver;
    const fobs_transport_desc *desc = nullptr;
    void *transport = nullptr;
    void *handle = nullptr;
    bool closed = false;
    int32_t filters_applied = 0;
};

TransportInstance::Consumer::~Consumer() { close(); }

bool TransportInstance::Consumer::filters_applied() const {
    return state_ && state_->filters_applied == 1;
}

void TransportInstance::Consumer::close() {
    if (!state_ || state_->closed) return;
    state_->closed = true;
    state_->desc->consumer_close(state_->transport, state_->handle);
}

std::unique_ptr<TransportInstance::Consumer>
TransportInstance::open_consumer(const ConsumerSpec &spec, DeliverFn deliver) {
    auto c = std::unique_ptr<Consumer>(new Consumer());
    c->state_ = std::make_unique<Consumer::State>();
    auto &st = *c->state_;
    st.deliver = std::move(deliver);
    st.desc = plugin().transport;
    st.transport = self_;
    st.sink.struct_size = sizeof(fobs_consumer_sink);
    st.sink.ctx = &st;
    st.sink.deliver = [](const fobs_consumer_sink *self, const fobs_event *event,
                         const fobs_completion *done) {
        auto *s = static_cast<Consumer::State *>(self->ctx);
        sdk::Completion c(done);
        if (!event || event->struct_size < k_event_v1_0_size) {
            c.retry("transport delivered an event struct older than ABI 1.0");
            return;
        }
        try {
            s->deliver(*event, std::move(c));
        } catch (const std::exception &e) {
            c.retry(std::string("host failed to accept the event: ") + e.what());
        } catch (...) {
            c.retry("host failed to accept the event");
        }
    };
    std::vector<fobs_str> types, ops;
    for (const auto &t : spec.entity_types) types.push_back(str(t));
    for (const auto &o : spec.operations) ops.push_back(str(o));
    fobs_consumer_options opts{};
    opts.struct_size = sizeof(opts);
    opts.pipeline = str(spec.pipeline);
    opts.consumer_name = str(spec.consumer_name);
    opts.entity_types = types.empty() ? nullptr : types.data();
    opts.entity_type_count = types.size();
    opts.operations = ops.empty() ? nullptr : ops.data();
    opts.operation_count = ops.size();
    opts.max_in_flight = spec.max_in_flight;
    opts.max_attempt_ms = spec.max_attempt_ms;
    opts.filters_applied = &st.filters_applied;
    ErrorBuffers e;
    fobs_status rc = st.desc->consumer_open(self_, &opts, &st.sink, &st.handle, &e.err);
    if (rc != FOBS_OK) {
        st.closed = true;
        e.raise("'" + name() + "' failed to open consumer '" + spec.consumer_name + "'");
    }
    return c;
}

struct SourceInstance::SinkBlock {
    fobs_source_sink sink{};
    EmitFn emit;
};

SourceInstance::SourceInstance(std::shared_ptr<LoadedPlugin> plugin, const InstanceSpec &spec,
                               Services &services)
    : Instance(std::move(plugin), ComponentKind::source, spec, services),
      sink_(std::make_unique<SinkBlock>()) {
    create_instance();
}

SourceInstance::~SourceInstance() { stop(); }

void SourceInstance::start(EmitFn emit) {
    sink_->emit = std::move(emit);
    sink_->sink.struct_size = sizeof(fobs_source_sink);
    sink_->sink.ctx = sink_.get();
    sink_->sink.emit = [](const fobs_source_sink *self, const fobs_source_record *record,
                          const fobs_completion *done) {
        auto *s = static_cast<SinkBlock *>(self->ctx);
        sdk::Completion c(done);
        if (!record || record->struct_size < k_record_v1_0_size) {
            c.fail("source emitted a record struct older than ABI 1.0");
            return;
        }
        try {
            s->emit(*record, std::move(c));
        } catch (const std::exception &e) {
            c.retry(std::string("host failed to accept the record: ") + e.what());
        } catch (...) {
            c.retry("host failed to accept the record");
        }
    };
    ErrorBuffers e;
    fobs_status st = plugin().source->start(self_, &sink_->sink, &e.err);
    raise_start_error(st, e, name());
    started_ = true;
}

} // namespace fraiseql_observer::host
