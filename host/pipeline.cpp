#include "pipeline.hpp"

#include "config_keys.hpp"
#include "config_suggest.hpp"
#include "event.hpp"
#include "key_order.hpp"

#include <fraiseql_observer/redact.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <time.h>

namespace fraiseql_observer::host {

namespace {

using Clock = std::chrono::steady_clock;

uint64_t realtime_ns() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// A counting gate bounding work in flight; acquire() blocks (back-pressure) until a slot is
// free or the gate is closed.
class Gate {
  public:
    explicit Gate(uint32_t limit) : limit_(std::max<uint32_t>(1, limit)) {}
    /// Publishes the number of slots in use (events in flight) to `gauge`.
    void observe_with(Series *gauge) { gauge_ = gauge; }
    bool acquire() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return closed_ || used_ < limit_; });
        if (closed_) return false;
        ++used_;
        if (gauge_) gauge_->set(used_);
        return true;
    }
    void release() {
        std::lock_guard lock(mu_);
        if (used_ > 0) --used_;
        if (gauge_) gauge_->set(used_);
        cv_.notify_all();
    }
    void close() {
        std::lock_guard lock(mu_);
        closed_ = true;
        cv_.notify_all();
    }
    bool wait_idle(Clock::time_point deadline) {
        std::unique_lock lock(mu_);
        return cv_.wait_until(lock, deadline, [&] { return used_ == 0; });
    }
    uint32_t in_use() {
        std::lock_guard lock(mu_);
        return used_;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    uint32_t limit_;
    uint32_t used_ = 0;
    bool closed_ = false;
    Series *gauge_ = nullptr;
};

// Outcome precedence when several parties settle one unit of work: failed > retry > ok.
void merge(Outcome &acc, const Outcome &o, bool &first) {
    if (first) {
        acc = o;
        first = false;
        return;
    }
    if (o.kind == FOBS_OUTCOME_FAILED && acc.kind != FOBS_OUTCOME_FAILED) acc = o;
    else if (o.kind == FOBS_OUTCOME_RETRY && acc.kind == FOBS_OUTCOME_OK) acc = o;
    else if (o.kind == FOBS_OUTCOME_RETRY && acc.kind == FOBS_OUTCOME_RETRY)
        acc.retry_after_ms = std::max(acc.retry_after_ms, o.retry_after_ms);
}

// One unit of work handed to several parties (transports, or a pipeline's actions): settles
// the upstream token once, with the merged outcome, when the last party answered, then frees
// the gate slot it held.
struct FanIn {
    FanIn(size_t parties, sdk::Completion upstream, Gate *slot)
        : remaining(parties), done(std::move(upstream)), gate(slot) {}
    void settle(const Outcome &o);

    std::mutex mu;
    size_t remaining;
    bool first = true;
    Outcome outcome;
    sdk::Completion done;
    Gate *gate;
    std::string event_id;     // for log lines (consuming side)
    uint32_t delivery = 0;    // delivery count (consuming side)
    // When set, receives the merged outcome instead of `done` and `gate` (ordered delivery
    // decides itself whether, and how, the upstream token is completed).
    std::function<void(const Outcome &)> hook;
};

fobs_outcome to_c(const Outcome &o) {
    fobs_outcome c{};
    c.struct_size = sizeof(c);
    c.kind = o.kind;
    c.retry_after_ms = o.retry_after_ms;
    c.reason = sdk::str(o.reason);
    c.component = sdk::str(o.component);
    return c;
}

void FanIn::settle(const Outcome &o) {
    std::unique_lock lock(mu);
    merge(outcome, o, first);
    if (--remaining > 0) return;
    Outcome final = outcome;
    lock.unlock();
    if (hook) {
        hook(final);
        return;
    }
    done.complete(to_c(final));
    gate->release();
}

// Runs callbacks after a delay on one thread: the re-runs of an ordered key's oldest event
// that the host retries itself (on_failure = "park" past the transport's last delivery).
// After stop() nothing runs any more; what was still waiting is cancelled.
class Retimer {
  public:
    struct Job {
        std::function<void()> fire, cancel;
    };
    Retimer() : thread_([this] { loop(); }) {}
    ~Retimer() { stop(); }
    /// False when stopped (the caller keeps the job).
    bool schedule(std::chrono::milliseconds delay, Job job) {
        std::lock_guard lock(mu_);
        if (stopped_) return false;
        jobs_.emplace(Clock::now() + delay, std::move(job));
        cv_.notify_all();
        return true;
    }
    void stop() {
        std::multimap<Clock::time_point, Job> left;
        {
            std::lock_guard lock(mu_);
            if (stopped_) return;
            stopped_ = true;
            left.swap(jobs_);
            cv_.notify_all();
        }
        if (thread_.joinable()) thread_.join();
        for (auto &[when, job] : left) job.cancel();
    }

  private:
    void loop() {
        std::unique_lock lock(mu_);
        while (!stopped_) {
            if (jobs_.empty()) {
                cv_.wait(lock);
                continue;
            }
            auto first = jobs_.begin();
            if (first->first > Clock::now()) {
                cv_.wait_until(lock, first->first);
                continue;
            }
            Job job = std::move(first->second);
            jobs_.erase(first);
            lock.unlock();
            job.fire();
            lock.lock();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::multimap<Clock::time_point, Job> jobs_;
    bool stopped_ = false;
    std::thread thread_;
};

// True while a thread settles an ordered event (an action's completion thread, usually).
thread_local bool t_in_ordered_settle = false;

// An ordered event the host holds (parked, running, or waiting for its own re-run): its own
// copy of the event and the transport's token.
struct HeldEvent {
    EventData event;
    sdk::Completion done;
    uint32_t local_retries = 0; // re-runs by the host itself (park past the last delivery)
};

} // namespace

std::unique_ptr<Instance> make_instance(const ComponentConfig &cfg, ComponentKind kind,
                                        const PluginRegistry &plugins, Services &services,
                                        const std::string &instance_name) {
    auto plugin = plugins.find(cfg.plugin);
    auto loc_of = [&](const std::string &key) {
        auto it = cfg.key_locations.find(key);
        return it != cfg.key_locations.end() ? it->second : cfg.where;
    };
    if (!plugin) {
        std::string hint = closest_match(cfg.plugin, plugins.names());
        std::string msg = "unknown plugin '" + cfg.plugin + "'" +
                          (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)") +
                          "; available plugins: ";
        auto names = plugins.names();
        for (size_t i = 0; i < names.size(); ++i) msg += (i ? ", " : "") + names[i];
        if (names.empty()) msg += "none (check the plugin search path)";
        throw ConfigError(loc_of("plugin"), cfg.section + ".plugin", msg);
    }
    if (!plugin->offers(kind)) {
        throw ConfigError(loc_of("plugin"), cfg.section + ".plugin",
                          "plugin '" + cfg.plugin + "' is not " + with_article(kind) +
                              " plugin (it offers: " + [&] {
                                  std::string k;
                                  for (const auto &s : plugin->kinds()) k += (k.empty() ? "" : ", ") + s;
                                  return k;
                              }() + ")");
    }
    // A plugin that publishes its keys has them checked here, before `create`, with the
    // file:line:col of each key and array element.
    const sdk::KeyTable table = key_table(*plugin, kind);
    check_component_keys(cfg, table);
    InstanceSpec spec{cfg.name, instance_name, cfg.config_json};
    try {
        switch (kind) {
        case ComponentKind::source:
            return std::make_unique<SourceInstance>(plugin, spec, services);
        case ComponentKind::transport:
            return std::make_unique<TransportInstance>(plugin, spec, services);
        case ComponentKind::action:
            return std::make_unique<ActionInstance>(plugin, spec, services);
        }
    } catch (const InstanceError &e) {
        throw component_config_error(cfg, table, e.key_path(), e.what(), cfg.plugin);
    }
    return nullptr;
}

// ---------------------------------------------------------------------------------------

struct Runtime::Impl {
    struct ActionRt {
        std::string name;
        ActionInstance *instance = nullptr;
        Series *processed = nullptr, *failed = nullptr, *retried = nullptr, *duration = nullptr;
    };
    struct PipelineRt {
        const PipelineConfig *cfg = nullptr;
        std::string source_name;
        SourceInstance *source = nullptr;
        TransportInstance *transport = nullptr;
        std::vector<ActionRt> actions;
        std::unique_ptr<TransportInstance::Consumer> consumer;
        std::unique_ptr<Gate> gate; // events in flight through the actions (parked included)
        // ordering = "entity": the per-key sequencer, and what the host knows of the
        // transport's deliveries (max_deliver 0 = unknown).
        std::unique_ptr<KeyOrder> order;
        bool skip = false;
        int64_t max_deliver = 0;
        int64_t warm_up_ms = 0; // the start-up hold (KeyOrder::hold)
        Series *parked = nullptr, *stalls = nullptr;
        std::set<std::string> types, ops;
        Series *source_events = nullptr, *source_rejected = nullptr, *published = nullptr,
               *publish_duration = nullptr;
        std::shared_ptr<spdlog::logger> log;
        bool publishes = false, consumes = false;
        bool transport_filters = false; // the consumer applies types/ops itself (abi.h)

        bool matches(std::string_view type, std::string_view op) const {
            return (types.empty() || types.count(std::string(type))) &&
                   (ops.empty() || ops.count(std::string(op)));
        }
    };
    struct SourceRt {
        std::string name;
        SourceInstance *instance = nullptr;
        std::vector<PipelineRt *> pipelines;
        std::unique_ptr<Gate> gate; // records in flight to the transports
        std::shared_ptr<spdlog::logger> log;
    };

    const Config &config;
    const PluginRegistry &plugins;
    Services &services;
    Role role;
    std::map<std::string, std::unique_ptr<Instance>> sources, transports, actions;
    std::vector<std::unique_ptr<PipelineRt>> pipelines;
    std::vector<std::unique_ptr<SourceRt>> source_rts;
    std::atomic<bool> started{false}, stopped{false}; // read by the HTTP thread (readiness)
    std::atomic<bool> starting{false};                 // start() still retrying a component
    mutable std::mutex start_mu;
    std::string start_problem; // the last retriable start failure (for /readyz)

    Impl(const Config &c, const PluginRegistry &p, Services &s, Role r)
        : config(c), plugins(p), services(s), role(r) {}

    bool role_publishes() const { return role != Role::worker; }
    bool role_consumes() const { return role != Role::publisher; }

    // Logger name for a component: "pipeline/component" when one pipeline uses it.
    std::string instance_name(const std::string &component,
                              const std::vector<std::string> &users) const {
        return users.size() == 1 ? users.front() + "/" + component : component;
    }

    std::unique_ptr<Retimer> retimer; // only when an ordered pipeline may retry in-process

    void build();
    void emit(SourceRt &src, const fobs_source_record &record, sdk::Completion done);
    void deliver(PipelineRt &p, const fobs_event &event, sdk::Completion done);
    void run_actions(PipelineRt &p, const fobs_event &event, const std::shared_ptr<FanIn> &agg);
    void deliver_ordered(PipelineRt &p, const fobs_event &event, sdk::Completion done);
    void run_ordered(PipelineRt &p, const std::shared_ptr<HeldEvent> &held, const KeyOrder::Ticket &t);
    void settle_ordered(PipelineRt &p, const std::shared_ptr<HeldEvent> &held,
                        const KeyOrder::Ticket &t, const Outcome &o);
    void ordering_warnings(const PipelineRt &p, std::vector<std::string> &out) const;
};

// A plugin may have registered one of the host's metric names with another type or other
// labels (the registry refuses the second registration): the host then counts into a private
// series instead of crashing, and says so.
Series *own_series(MetricsRegistry &m, spdlog::logger &log, MetricType type, const char *name,
                   const char *help, const LabelSet &labels) {
    std::string error;
    if (Series *s = m.series(type, name, help, labels, {}, &error)) return s;
    log.error("host metric {} unavailable: {}", name, error);
    static std::mutex mu;
    static std::vector<std::unique_ptr<Series>> orphans;
    std::lock_guard lock(mu);
    orphans.push_back(std::make_unique<Series>(type, type == MetricType::histogram
                                                         ? default_latency_buckets()
                                                         : std::vector<double>{}));
    return orphans.back().get();
}

void Runtime::Impl::build() {
    auto &m = services.metrics();
    auto mlog = services.logger("observer");
    auto series = [&](MetricType t, const char *name, const char *help, const LabelSet &l) {
        return own_series(m, *mlog, t, name, help, l);
    };
    // Which components each pipeline needs in this role.
    std::map<std::string, std::vector<std::string>> src_users, tr_users, act_users;
    for (const auto &pc : config.pipelines) {
        bool pub = role_publishes() && pc.source.has_value();
        bool con = role_consumes() && !pc.actions.empty();
        if (!pub && !con) continue;
        if (pub) src_users[*pc.source].push_back(pc.name);
        tr_users[pc.transport].push_back(pc.name);
        if (con)
            for (const auto &a : pc.actions) act_users[a].push_back(pc.name);
    }
    for (const auto &[name, users] : tr_users) {
        const ComponentConfig *c = config.find_transport(name);
        transports[name] = make_instance(*c, ComponentKind::transport, plugins, services,
                                         instance_name(name, users));
    }
    for (const auto &[name, users] : act_users) {
        const ComponentConfig *c = config.find_action(name);
        actions[name] = make_instance(*c, ComponentKind::action, plugins, services,
                                      instance_name(name, users));
    }
    for (const auto &[name, users] : src_users) {
        const ComponentConfig *c = config.find_source(name);
        sources[name] = make_instance(*c, ComponentKind::source, plugins, services,
                                      instance_name(name, users));
    }

    for (const auto &pc : config.pipelines) {
        bool pub = role_publishes() && pc.source.has_value();
        bool con = role_consumes() && !pc.actions.empty();
        if (!pub && !con) continue;
        auto p = std::make_unique<PipelineRt>();
        p->cfg = &pc;
        p->publishes = pub;
        p->consumes = con;
        p->log = services.logger(pc.name);
        p->transport = static_cast<TransportInstance *>(transports.at(pc.transport).get());
        p->types.insert(pc.entity_types.begin(), pc.entity_types.end());
        p->ops.insert(pc.operations.begin(), pc.operations.end());
        p->gate = std::make_unique<Gate>(pc.max_in_flight);
        LabelSet pl{{"pipeline", pc.name}};
        if (con)
            p->gate->observe_with(series(MetricType::gauge, "events_in_flight",
                                         "Events inside the pipeline's actions now (at most max_in_flight)",
                                         pl));
        if (pub) {
            p->source_name = *pc.source;
            p->source = static_cast<SourceInstance *>(sources.at(*pc.source).get());
            LabelSet sl{{"pipeline", pc.name}, {"source", *pc.source}};
            p->source_events = series(MetricType::counter, "source_events_total",
                                        "Records received from the source", sl);
            p->source_rejected = series(MetricType::counter, "source_rejected_total",
                                          "Records rejected as malformed or refused permanently by the "
                                          "transport (logged with the reason)",
                                          sl);
            p->published = series(MetricType::counter, "events_published_total",
                                    "Events the transport confirmed as stored", pl);
            p->publish_duration = series(MetricType::histogram, "publish_duration_seconds",
                                           "Time from hand-over to the transport's confirmation",
                                           pl);
        }
        if (con && pc.ordering == PipelineConfig::Ordering::entity) {
            p->order = std::make_unique<KeyOrder>(pc.max_in_flight);
            p->skip = pc.on_failure == PipelineConfig::OnFailure::skip;
            // The transport's max_deliver (fobs.limits/1; unlimited: no delivery is the last).
            const uint64_t deliveries = p->transport->max_deliveries();
            p->max_deliver = deliveries > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(deliveries);
            // "skip" needs to know the last delivery; without it the host retries a failing
            // key head itself, as "park" does (validate warns).
            if (p->max_deliver <= 0) p->skip = false;
            // Deliveries a previous worker left unsettled come back within the transport's
            // redelivery time (nats sends in-progress for what a live worker holds, so only a
            // dead one's expire); unknown: 30 s, the shipped transports' default ack wait.
            const uint64_t redelivery = p->transport->redelivery_after_ms();
            p->warm_up_ms = int64_t(std::min<uint64_t>(redelivery ? redelivery : 30'000, 86'400'000)) + 1000;
            if (!retimer) retimer = std::make_unique<Retimer>();
            p->parked = series(MetricType::gauge, "events_parked",
                               "Events waiting behind an earlier event of their key (ordering = "
                               "\"entity\"); they hold their delivery slot",
                               pl);
            p->stalls = series(MetricType::counter, "ordering_stalls_total",
                               "Deliveries that had to wait behind an earlier event of their key "
                               "(or the start-up hold)",
                               pl);
        }
        if (con) {
            for (const auto &a : pc.actions) {
                ActionRt ar;
                ar.name = a;
                ar.instance = static_cast<ActionInstance *>(actions.at(a).get());
                LabelSet al{{"pipeline", pc.name}, {"action", a}};
                ar.processed = series(MetricType::counter, "events_processed_total",
                                        "Events processed successfully", al);
                ar.failed = series(MetricType::counter, "events_failed_total",
                                     "Action executions that failed (transient or permanent)", al);
                ar.retried = series(MetricType::counter, "events_retried_total",
                                      "Deliveries after the first (redeliveries)", al);
                ar.duration = series(MetricType::histogram, "processing_duration_seconds",
                                       "Action execution time", al);
                p->actions.push_back(ar);
            }
        }
        pipelines.push_back(std::move(p));
    }
    for (auto &[name, inst] : sources) {
        auto s = std::make_unique<SourceRt>();
        s->name = name;
        s->instance = static_cast<SourceInstance *>(inst.get());
        uint32_t limit = 0;
        for (auto &p : pipelines)
            if (p->publishes && p->source_name == name) {
                s->pipelines.push_back(p.get());
                limit = std::max(limit, p->cfg->max_in_flight);
            }
        s->gate = std::make_unique<Gate>(limit);
        s->log = services.logger(name);
        source_rts.push_back(std::move(s));
    }
}

void Runtime::Impl::emit(SourceRt &src, const fobs_source_record &record, sdk::Completion done) {
    auto result = normalize_event(sdk::view(record.payload), src.name, record.txid, realtime_ns());
    if (auto *rej = std::get_if<Rejection>(&result)) {
        for (auto *p : src.pipelines) p->source_rejected->add(1);
        services.log(std::string(sdk::view(src.instance->host()->instance_name)), FOBS_LOG_WARN,
                     "rejected a record: " + rej->reason);
        done.fail(rej->reason);
        return;
    }
    const EventData &ev = std::get<EventData>(result);
    // One publish per distinct transport among the pipelines that want the event.
    std::vector<std::pair<TransportInstance *, std::vector<PipelineRt *>>> targets;
    for (auto *p : src.pipelines) {
        p->source_events->add(1);
        if (!p->matches(ev.entity_type, ev.operation)) continue;
        auto it = std::find_if(targets.begin(), targets.end(),
                               [&](const auto &t) { return t.first == p->transport; });
        if (it == targets.end()) targets.push_back({p->transport, {p}});
        else it->second.push_back(p);
    }
    if (targets.empty()) {
        done.ok(); // filtered out by every pipeline: nothing to deliver
        return;
    }
    if (!src.gate->acquire()) {
        done.retry("shutting down");
        return;
    }
    auto agg = std::make_shared<FanIn>(targets.size(), std::move(done), src.gate.get());
    agg->event_id = ev.id;
    fobs_event view = ev.view();
    auto started = Clock::now();
    for (auto &[transport, ps] : targets) {
        transport->publish(view, [this, &src, agg, ps = ps, started](const Outcome &o) {
            double secs = std::chrono::duration<double>(Clock::now() - started).count();
            for (auto *p : ps) {
                if (o.kind == FOBS_OUTCOME_OK) p->published->add(1);
                p->publish_duration->observe(secs);
            }
            if (o.kind == FOBS_OUTCOME_FAILED) {
                // A permanent refusal (the transport dead-lettered the event itself): the
                // record is rejected, not retried. FanIn hands FAILED and its reason to the
                // source (outbox: the row is kept as rejected; the next rows flow).
                // The reason may end up in a table (outbox): no secrets in it.
                Outcome refused = o;
                refused.reason = o.reason.empty() ? std::string("(no reason given)")
                                                  : sdk::redact_secrets(o.reason);
                for (auto *p : ps) p->source_rejected->add(1);
                services.log(std::string(sdk::view(src.instance->host()->instance_name)), FOBS_LOG_WARN,
                             "transport refused an event permanently: " + refused.reason, agg->event_id);
                agg->settle(refused);
                return;
            }
            agg->settle(o);
        });
    }
}

void Runtime::Impl::deliver(PipelineRt &p, const fobs_event &event, sdk::Completion done) {
    if (!p.transport_filters && !p.matches(sdk::view(event.entity_type), sdk::view(event.operation))) {
        done.ok(); // not for this pipeline
        return;
    }
    if (!p.gate->acquire()) {
        done.retry("shutting down");
        return;
    }
    // An event without an entity_id has no key to keep in order with: it is its own key.
    if (p.order && !sdk::view(event.entity_id).empty()) {
        deliver_ordered(p, event, std::move(done));
        return;
    }
    auto agg = std::make_shared<FanIn>(p.actions.size(), std::move(done), p.gate.get());
    agg->event_id = std::string(sdk::view(event.id));
    agg->delivery = event.delivery_count;
    run_actions(p, event, agg);
}

void Runtime::Impl::run_actions(PipelineRt &p, const fobs_event &event,
                                const std::shared_ptr<FanIn> &agg) {
    for (auto &a : p.actions) {
        if (event.delivery_count > 1) a.retried->add(1);
        auto started = Clock::now();
        ActionRt *ar = &a;
        PipelineRt *pr = &p;
        a.instance->execute(event, [this, agg, ar, pr, started](const Outcome &o0) {
            Outcome o = o0;
            o.component = ar->name;
            ar->duration->observe(std::chrono::duration<double>(Clock::now() - started).count());
            if (o.kind == FOBS_OUTCOME_OK) {
                ar->processed->add(1);
            } else {
                ar->failed->add(1);
                services.log(pr->cfg->name + "/" + ar->name, FOBS_LOG_WARN,
                             std::string("action ") + to_string(o.kind) + " (delivery " +
                                 std::to_string(agg->delivery) + "): " + o.reason,
                             agg->event_id);
            }
            agg->settle(o);
        });
    }
}

// ordering = "entity": the event holds its gate slot from here until it is settled or handed
// back, whether it runs at once or waits behind its key (the transport keeps an unsettled
// delivery alive: nats sends in-progress for it).
void Runtime::Impl::deliver_ordered(PipelineRt &p, const fobs_event &event, sdk::Completion done) {
    auto held = std::make_shared<HeldEvent>();
    held->event = EventData::from(event);
    held->done = std::move(done);
    KeyOrder::Item item;
    item.key = KeyOrder::key_of(held->event.entity_type, held->event.entity_id);
    item.position = event.sequence;
    item.id = held->event.id;
    PipelineRt *pr = &p;
    item.start = [this, pr, held](const KeyOrder::Ticket &t) {
        // The key's next event, started because its predecessor finished, would otherwise be
        // handed to the action on that action's own completion thread: an action that blocks
        // its submitter while its queue is full (webhook) would wait for itself. Those starts
        // go through the retimer's thread instead.
        if (t_in_ordered_settle) {
            Retimer::Job job;
            job.fire = [this, pr, held, t] { run_ordered(*pr, held, t); };
            job.cancel = [pr, held, t] {
                held->done.retry("shutting down");
                pr->gate->release();
                pr->order->finish(t, KeyOrder::Settled::done);
            };
            if (retimer && retimer->schedule(std::chrono::milliseconds(0), std::move(job))) return;
        }
        run_ordered(*pr, held, t);
    };
    // Handed back without running (shutdown, or a full window with nothing running): the
    // transport redelivers it later; the key's order is kept by the sequencer.
    item.give_back = [pr, held] {
        held->done.retry("handed back unprocessed: waiting behind an earlier event of its key");
        pr->gate->release();
    };
    if (p.order->admit(std::move(item))) p.stalls->add(1);
    p.parked->set(static_cast<double>(p.order->parked()));
}

void Runtime::Impl::run_ordered(PipelineRt &p, const std::shared_ptr<HeldEvent> &held,
                                const KeyOrder::Ticket &t) {
    p.parked->set(static_cast<double>(p.order->parked()));
    auto agg = std::make_shared<FanIn>(p.actions.size(), sdk::Completion{}, p.gate.get());
    agg->event_id = held->event.id;
    agg->delivery = held->event.delivery_count + held->local_retries;
    PipelineRt *pr = &p;
    agg->hook = [this, pr, held, t](const Outcome &o) { settle_ordered(*pr, held, t, o); };
    fobs_event view = held->event.view();
    view.delivery_count = agg->delivery; // a re-run by the host counts as one more attempt
    run_actions(p, view, agg);
}

void Runtime::Impl::settle_ordered(PipelineRt &p, const std::shared_ptr<HeldEvent> &held,
                                   const KeyOrder::Ticket &t, const Outcome &o) {
    const bool last = p.max_deliver > 0 && held->event.delivery_count >= p.max_deliver;
    auto settled = KeyOrder::Settled::done;
    if (o.kind == FOBS_OUTCOME_RETRY) {
        if (!p.skip && (last || p.max_deliver <= 0)) {
            // "park": the key waits until its oldest event succeeds, but the transport would
            // dead-letter it after this delivery (or the host cannot tell): the host keeps the
            // delivery (kept alive by the transport) and runs it again itself.
            const uint32_t n = held->local_retries++;
            const int64_t delay = o.retry_after_ms >= 0
                                      ? o.retry_after_ms
                                      : std::min<int64_t>(int64_t(1000) << std::min<uint32_t>(n, 6), 60'000);
            PipelineRt *pr = &p;
            Retimer::Job job;
            job.fire = [this, pr, held, t] { run_ordered(*pr, held, t); };
            job.cancel = [this, pr, held, t, o] {
                // Stopping: hand it back (after its last delivery the transport dead-letters it).
                held->done.complete(to_c(o));
                pr->gate->release();
                pr->order->finish(t, KeyOrder::Settled::done);
                pr->parked->set(static_cast<double>(pr->order->parked()));
            };
            if (retimer && retimer->schedule(std::chrono::milliseconds(delay), std::move(job))) {
                p.log->info("event {} failed on delivery {} (ordering park, past the transport's "
                            "last delivery): the host runs it again in {} ms; later events of its "
                            "key wait",
                            held->event.id, held->event.delivery_count + n, delay);
                return;
            }
        }
        // Redelivered by the transport unless this was its last delivery (then dead-lettered).
        if (!last) settled = KeyOrder::Settled::redelivery_expected;
    }
    t_in_ordered_settle = true; // on the action's thread: starts go elsewhere (see item.start)
    struct Reset {
        ~Reset() { t_in_ordered_settle = false; }
    } reset;
    if (settled == KeyOrder::Settled::redelivery_expected) {
        // The sequencer must await the redelivery before the nak goes out: with no delay it
        // can be back (on the fetch thread) before this thread gets any further.
        p.order->finish(t, settled);
        held->done.complete(to_c(o));
        p.gate->release();
    } else {
        // Acknowledged (or dead-lettered) before the key's next event starts.
        held->done.complete(to_c(o));
        p.gate->release();
        p.order->finish(t, settled);
    }
    p.parked->set(static_cast<double>(p.order->parked()));
}

// ---------------------------------------------------------------------------------------

Runtime::Runtime(const Config &config, const PluginRegistry &plugins, Services &services,
                 Role role)
    : config_(config), impl_(std::make_unique<Impl>(config, plugins, services, role)) {}

Runtime::~Runtime() {
    if (impl_->started && !impl_->stopped) stop(std::chrono::seconds(config_.observer.shutdown_timeout_secs));
    // A component may still complete tokens it holds when it is destroyed (abi.h), and those
    // completions reach the pipeline's aggregators, gates and metrics and the sources' tokens:
    // destroy consumers, actions and transports first, then sources, and the host's own
    // bookkeeping last.
    for (auto &p : impl_->pipelines) p->consumer.reset();
    if (impl_->retimer) impl_->retimer->stop(); // its jobs reach the pipelines below
    impl_->actions.clear();
    impl_->transports.clear();
    impl_->sources.clear();
    impl_->source_rts.clear();
    impl_->pipelines.clear();
}

void Runtime::build() { impl_->build(); }

bool Runtime::start(const RetryWait &wait) {
    impl_->started = true;
    impl_->starting = true;
    auto log = impl_->services.logger("observer");
    // A plugin may report a configuration problem only when it starts (FOBS_ERR_CONFIG with a
    // key): that is still a configuration error, shown with the key's file:line:col. A failure
    // the plugin calls retriable (peer not there yet) is tried again with backoff, so a
    // service started before its database or NATS server comes up by itself.
    auto start_one = [&](const ComponentConfig *cfg, ComponentKind kind, const std::string &what,
                         auto &&fn) -> bool {
        std::chrono::milliseconds pause(500);
        for (int attempt = 1;; ++attempt) {
            try {
                fn();
                if (attempt > 1) log->info("{} started (attempt {})", what, attempt);
                return true;
            } catch (const InstanceError &e) {
                const auto plugin = cfg ? impl_->plugins.find(cfg->plugin) : nullptr;
                const sdk::KeyTable table = plugin ? key_table(*plugin, kind) : sdk::KeyTable{};
                if (e.retriable() && wait) {
                    std::string why = e.what();
                    if (cfg)
                        for (const auto &v : secret_values(*cfg, table))
                            for (size_t at; (at = why.find(v)) != std::string::npos;)
                                why.replace(at, v.size(), "***");
                    why = sdk::redact_secrets(why);
                    {
                        std::lock_guard lock(impl_->start_mu);
                        impl_->start_problem = what + ": " + why;
                    }
                    log->warn("{} failed to start (attempt {}, retriable), retrying in {} ms: {}",
                              what, attempt, pause.count(), why);
                    if (!wait(pause)) return false;
                    pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::seconds(30));
                    continue;
                }
                if (!cfg || e.key_path().empty()) throw;
                throw component_config_error(*cfg, table, e.key_path(), e.what(), cfg->plugin);
            }
        }
    };
    auto finished = [&](bool ok) { // interrupted: stays "starting", i.e. never ready
        if (ok) {
            std::lock_guard lock(impl_->start_mu);
            impl_->start_problem.clear();
            impl_->starting = false;
        }
        return ok;
    };
    // (Plain pointers for the lambdas: clang before 16 cannot capture structured bindings.)
    for (auto &[name, t] : impl_->transports) {
        auto *transport = static_cast<TransportInstance *>(t.get());
        if (!start_one(config_.find_transport(name), ComponentKind::transport, "transport '" + name + "'",
                       [transport] { transport->start(); }))
            return finished(false);
    }
    for (auto &[name, a] : impl_->actions) {
        auto *action = static_cast<ActionInstance *>(a.get());
        if (!start_one(config_.find_action(name), ComponentKind::action, "action '" + name + "'",
                       [action] { action->start(); }))
            return finished(false);
    }
    for (auto &p : impl_->pipelines) {
        if (!p->consumes) continue;
        ConsumerSpec spec;
        spec.pipeline = p->cfg->name;
        spec.consumer_name = p->cfg->consumer;
        spec.entity_types = p->cfg->entity_types;
        spec.operations = p->cfg->operations;
        spec.max_in_flight = p->cfg->max_in_flight;
        // The transport's acknowledgement deadline must outlast the slowest action attempt.
        for (const auto &a : p->actions)
            spec.max_attempt_ms = std::max(spec.max_attempt_ms, a.instance->max_attempt_ms());
        Impl::PipelineRt *pr = p.get();
        Impl *impl = impl_.get();
        if (p->order) {
            // A worker that died may have left earlier events of a key unsettled: they come
            // back within ack_wait, and must go before the later events delivered meanwhile.
            p->order->hold();
            Retimer::Job release;
            release.fire = [pr] {
                if (pr->order->release())
                    pr->log->info("ordering: start-up hold over, running events by key");
                pr->parked->set(static_cast<double>(pr->order->parked()));
            };
            release.cancel = [pr] { pr->order->release(); };
            impl_->retimer->schedule(std::chrono::milliseconds(p->warm_up_ms), std::move(release));
            p->log->info("ordering = \"entity\": holding events for {} ms at start-up so that what "
                         "a previous worker left unsettled is redelivered first",
                         p->warm_up_ms);
        }
        if (!start_one(config_.find_transport(p->cfg->transport), ComponentKind::transport,
                       "consumer '" + p->cfg->consumer + "' of pipeline '" + p->cfg->name + "'", [&] {
                           p->consumer = p->transport->open_consumer(
                               spec, [impl, pr](const fobs_event &e, sdk::Completion done) {
                                   impl->deliver(*pr, e, std::move(done));
                               });
                       }))
            return finished(false);
        p->transport_filters = p->consumer->filters_applied();
    }
    for (auto &s : impl_->source_rts) {
        Impl::SourceRt *sr = s.get();
        Impl *impl = impl_.get();
        if (!start_one(config_.find_source(s->name), ComponentKind::source, "source '" + s->name + "'", [&] {
                s->instance->start([impl, sr](const fobs_source_record &r, sdk::Completion done) {
                    impl->emit(*sr, r, std::move(done));
                });
            }))
            return finished(false);
    }
    return finished(true);
}

void Runtime::stop(std::chrono::milliseconds timeout) {
    if (impl_->stopped) return;
    impl_->stopped = true;
    auto deadline = Clock::now() + timeout;
    auto log = impl_->services.logger("observer");
    // At the deadline every gate closes, so no thread stays blocked on back-pressure (and no
    // new action starts) however slow a peer is; work refused that way is completed RETRY.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread watchdog([&] {
        std::unique_lock lock(mu);
        if (cv.wait_until(lock, deadline, [&] { return done; })) return;
        log->warn("shutdown: shutdown_timeout_secs reached; refusing new work");
        for (auto &s : impl_->source_rts) s->gate->close();
        for (auto &p : impl_->pipelines) p->gate->close();
    });
    // 1. Sources: new records are refused (RETRY "shutting down"; an outbox keeps them), the
    //    sources stop, and what they handed over is still being published.
    for (auto &s : impl_->source_rts) s->gate->close();
    for (auto &s : impl_->source_rts) s->instance->stop();
    for (auto &s : impl_->source_rts) {
        if (!s->gate->wait_idle(deadline))
            log->warn("shutdown: {} publishes of source '{}' still unconfirmed at the deadline; "
                      "they were not acknowledged to the source: a source that keeps its records "
                      "publishes them again on its next start, one that keeps none loses them "
                      "(the source's own log says which)",
                      s->gate->in_use(), s->name);
    }
    // 2. Consumers stop fetching and settle what the actions are still doing (a transport that
    //    holds events only in this process, like `memory`, delivers them first).
    //    Ordered pipelines first hand back what waits behind its key (and what the host was
    //    about to run again itself): those would otherwise hold the consumers' close until
    //    their redelivery wait ran out.
    for (auto &p : impl_->pipelines)
        if (p->order) p->order->drain();
    if (impl_->retimer) impl_->retimer->stop();
    for (auto &p : impl_->pipelines)
        if (p->consumer) p->consumer->close();
    for (auto &p : impl_->pipelines) {
        if (p->consumes && !p->gate->wait_idle(deadline))
            log->warn("shutdown: pipeline '{}' still has {} events in its actions",
                      p->cfg->name, p->gate->in_use());
        p->gate->close();
    }
    {
        std::lock_guard lock(mu);
        done = true;
    }
    cv.notify_all();
    watchdog.join();
    // 3. Actions, then transports.
    for (auto &[n, a] : impl_->actions) a->stop();
    for (auto &[n, t] : impl_->transports) t->stop();
}

std::vector<std::string> Runtime::limit_warnings() const {
    std::vector<std::string> out;
    for (const auto &p : impl_->pipelines) {
        if (!p->consumes) continue;
        uint64_t attempt = 0;
        std::string slowest;
        for (const auto &a : p->actions)
            if (uint64_t ms = a.instance->max_attempt_ms(); ms > attempt) {
                attempt = ms;
                slowest = a.name;
            }
        uint64_t redelivery = p->transport->redelivery_after_ms();
        if (attempt != 0 && redelivery != 0 && redelivery < 2 * attempt)
            out.push_back("pipeline '" + p->cfg->name + "': transport '" + p->cfg->transport +
                          "' redelivers an unacknowledged event after " + std::to_string(redelivery) +
                          " ms, but one attempt of action '" + slowest + "' may take " +
                          std::to_string(attempt) + " ms; give the transport at least " +
                          std::to_string(2 * attempt) + " ms (2 x the longest attempt)");
        impl_->ordering_warnings(*p, out);
    }
    return out;
}

/// ordering = "entity" holds parked events in the pipeline's window (max_in_flight, and the
/// transport's max_ack_pending): warn when that window is too small to be useful, or when
/// the transport may fill it with parked events before a retried event comes back. The
/// figures come from the components themselves (fobs.limits/1).
void Runtime::Impl::ordering_warnings(const PipelineRt &p, std::vector<std::string> &out) const {
    const PipelineConfig &pc = *p.cfg;
    if (pc.ordering != PipelineConfig::Ordering::entity || p.actions.empty()) return;
    const std::string path = pc.path.empty() ? std::string("pipelines") : pc.path;
    const uint64_t unacked = p.transport->max_unacked(); // 0 unknown, UINT64_MAX unlimited
    const bool unlimited = unacked == UINT64_MAX;
    std::optional<int64_t> map;
    if (unacked != 0 && !unlimited) map = int64_t(std::min<uint64_t>(unacked, INT64_MAX));
    const int64_t window = map ? std::min<int64_t>(pc.max_in_flight, *map) : pc.max_in_flight;
    // Every key in the actions holds a slot and so does every event parked behind one: with
    // fewer than 4 slots per concurrent action attempt, a few busy keys leave the actions
    // idle. The actions' concurrency: the largest they report, else 4.
    int64_t concurrency = 4;
    for (const auto &a : p.actions)
        concurrency = std::max(concurrency, int64_t(std::min<uint64_t>(a.instance->max_concurrency(),
                                                                       uint64_t(1) << 32)));
    if (window < 4 * concurrency)
        out.push_back(format_error(
            pc.ordering_at, path + ".ordering",
            "pipeline `" + pc.name + "`: with ordering = \"entity\" parked events hold their "
            "delivery slot, and the window is only " + std::to_string(window) +
            " events (min of max_in_flight" + (map ? " and the transport's limit of unsettled events" : "") +
            ") for actions running up to " + std::to_string(concurrency) +
            " at once; a few keys with many events then leave the actions idle. Use at least " +
            std::to_string(4 * concurrency) + " (4 x the actions' concurrency)"));
    // The limit is the plugin's own key (nats: jetstream.max_ack_pending, memory: capacity):
    // the message names the transport and plugin, whose docs say which.
    const ComponentConfig *tc = config.find_transport(pc.transport);
    if (unlimited || (map && *map > static_cast<int64_t>(pc.max_in_flight)))
        out.push_back(format_error(
            pc.ordering_at, path + ".ordering",
            "pipeline `" + pc.name + "`: with ordering = \"entity\" lower the limit of unsettled "
            "events per consumer of transport `" + pc.transport + "` (plugin `" +
            (tc ? tc->plugin : pc.transport) + "`: " +
            (map ? std::to_string(*map) : std::string("unlimited")) +
            ") to at most max_in_flight (" + std::to_string(pc.max_in_flight) +
            "): otherwise new events can fill the window while a retried event waits for its "
            "redelivery, and the observer must hand parked events back (an extra delivery each) "
            "to let it in"));
    if (pc.on_failure == PipelineConfig::OnFailure::skip && p.transport->max_deliveries() == 0) {
        out.push_back(format_error(
            pc.on_failure_at, path + ".on_failure",
            "pipeline `" + pc.name + "`: the observer cannot read max_deliver of transport "
            "plugin `" + (tc ? tc->plugin : pc.transport) + "`, so it cannot tell a failing event's "
            "last delivery: \"skip\" behaves like \"park\""));
    }
}

std::vector<ComponentState> Runtime::readiness() const {
    std::vector<ComponentState> out;
    if (impl_->starting) {
        std::lock_guard lock(impl_->start_mu);
        ComponentState st;
        st.component = "startup";
        st.why = impl_->start_problem.empty() ? "starting" : "retrying " + impl_->start_problem;
        out.push_back(st);
    }
    for (const auto &p : impl_->pipelines) {
        auto check = [&](const std::string &what, const Instance *inst) {
            ComponentState st;
            st.pipeline = p->cfg->name;
            st.component = what;
            st.ready = inst->ready(st.why);
            if (!st.why.empty()) st.why = sdk::redact_secrets(st.why); // /readyz shows it
            out.push_back(st);
        };
        if (p->source) check("source " + p->source_name, p->source);
        check("transport " + p->cfg->transport, p->transport);
        for (const auto &a : p->actions) check("action " + a.name, a.instance);
    }
    return out;
}

bool Runtime::ready() const {
    if (!impl_->started || impl_->stopped || impl_->starting) return false;
    for (const auto &s : readiness())
        if (!s.ready) return false;
    return true;
}

TransportInstance *Runtime::transport(const std::string &name) const {
    auto it = impl_->transports.find(name);
    return it == impl_->transports.end() ? nullptr
                                         : static_cast<TransportInstance *>(it->second.get());
}

} // namespace fraiseql_observer::host
