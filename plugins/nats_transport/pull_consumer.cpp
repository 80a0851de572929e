#include "pull_consumer.hpp"

#include "dlq_fields.hpp"
#include "consumer_filter.hpp"
#include "provisioning.hpp"
#include "wire_limits.hpp"

#include <pthread.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_set>

namespace fraiseql_observer::nats_transport {

using clock_type = std::chrono::steady_clock;

namespace {

// A pull subscription and how many delivered messages still point at it: cnats' ack, nak and
// in-progress use the message's subscription, and a message does not keep it alive. After a
// connection rebuild the old subscription is retired and destroyed only once its last message
// is gone.
struct SubRef {
    natsSubscription *sub = nullptr;
    std::atomic<int64_t> live{0};
};

// One delivered message and its completion token. Lives from the fetch until the message
// is settled with the server (ack / nak / term) AND the host completed the token.
struct Delivery {
    fobs_completion token{};
    std::shared_ptr<PullConsumer::Core> core;
    natsMsg *msg = nullptr;
    SubRef *subref = nullptr;
    uint64_t seq = 0;
    uint64_t delivery_count = 0;
    std::string id; // unescaped
    clock_type::time_point touched;
    std::atomic<bool> completed{false}; // the host's token was used
    bool abandoned = false;             // close() gave up waiting and nak'ed it (under mu)
};

// Reads delivery count and stream sequence from the ack reply subject, as natsMsg_GetMetaData
// would, without its allocations: "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>
// .<pending>" (9 tokens) or the newer "$JS.ACK.<domain>.<account hash>.<stream>.<consumer>
// .<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]" (11-12 tokens).
bool parse_ack_reply(const char *reply, uint64_t &delivered, uint64_t &stream_seq) {
    if (!reply || std::strncmp(reply, "$JS.ACK.", 8) != 0) return false;
    std::string_view r(reply);
    std::string_view tokens[16];
    size_t n = 0, start = 0;
    while (n < 16) {
        size_t dot = r.find('.', start);
        tokens[n++] = r.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    size_t base;
    if (n == 9) base = 4;                 // delivered is token 4
    else if (n == 11 || n == 12) base = 6;
    else return false;
    auto num = [](std::string_view t, uint64_t &out) {
        if (t.empty()) return false;
        uint64_t v = 0;
        for (char c : t) {
            if (c < '0' || c > '9') return false;
            v = v * 10 + static_cast<uint64_t>(c - '0');
        }
        out = v;
        return true;
    };
    return num(tokens[base], delivered) && num(tokens[base + 1], stream_seq);
}

} // namespace

struct PullConsumer::Core : std::enable_shared_from_this<PullConsumer::Core> {
    std::shared_ptr<Link> link;
    const NatsConfig &config;
    sdk::Host host;
    DeadLetters &dead_letters;
    sdk::ConsumerOptions options;
    sdk::ConsumerSink sink;
    std::function<bool()> transport_ready;
    ConsumerFilter filter;
    std::atomic<int64_t> ack_wait_ms;
    int64_t warned_deadline_ms = -1; // the ack deadline last warned about (setup only)
    std::atomic<int64_t> keepalive_ms; // in-progress after a message was held this long
    std::atomic<bool> subscribed{false};

    sdk::Metric dead_lettered, pending_gauge, ack_pending_gauge, dlq_depth_gauge;

    std::shared_ptr<SubRef> cur;                  // the pull subscription (fetch thread)
    std::vector<std::shared_ptr<SubRef>> retired; // of replaced connections (fetch thread)
    uint64_t sub_session = 0;                     // the Link session `cur` belongs to
    natsSubscription *adv_max = nullptr;
    natsSubscription *adv_term = nullptr;

    std::mutex mu;
    std::condition_variable cv;      // room freed / all settled (fetch thread, close)
    std::condition_variable tick_cv; // wakes the ticker early (close only)
    int space_waiters = 0;           // threads waiting on `cv`, under mu
    std::unordered_set<Delivery *> outstanding;
    std::atomic<bool> running{false};
    std::thread fetch_thread, ticker_thread;

    Core(std::shared_ptr<Link> l, const NatsConfig &c, sdk::Host h, DeadLetters &d,
         sdk::ConsumerOptions o, sdk::ConsumerSink s, std::function<bool()> ready)
        : link(std::move(l)), config(c), host(h), dead_letters(d), options(std::move(o)),
          sink(s), transport_ready(std::move(ready)),
          filter(config.subject_prefix, options.entity_types, options.operations) {
        set_ack_wait(config.ack_wait_secs * 1000);
        sdk::Labels labels{{"pipeline", options.pipeline}};
        dead_lettered = host.counter("events_dead_lettered_total",
                                     "Events moved to the dead-letter queue", labels);
        pending_gauge = host.gauge("consumer_pending",
                                   "Messages in the stream not yet delivered to the consumer",
                                   labels);
        ack_pending_gauge = host.gauge("consumer_ack_pending",
                                       "Messages delivered to the consumer and not yet acked",
                                       labels);
        // The DLQ stream is the transport's, shared by its pipelines: one series per transport,
        // refreshed by each of its consumers.
        dlq_depth_gauge = host.gauge("dlq_depth",
                                     "Entries in the transport's dead-letter queue now (falls after replay or purge)",
                                     {{"transport", std::string(host.component_name())}});
    }

    ~Core() {
        for (natsMsg *m : trash) natsMsg_Destroy(m);
        for (auto &r : retired) natsSubscription_Destroy(r->sub);
        if (cur) natsSubscription_Destroy(cur->sub);
    }

    // Settled messages wait here and are destroyed in batches by the fetch thread: libnats
    // frees every message on its garbage-collector thread and wakes it for each one it finds
    // idle, so destroying them one by one from the action's thread cost a thread wake-up (and
    // often a preemption of that thread) per event.
    std::mutex trash_mu;
    std::vector<natsMsg *> trash;

    void empty_trash() {
        std::vector<natsMsg *> batch;
        {
            std::lock_guard lk(trash_mu);
            batch.swap(trash);
        }
        for (natsMsg *m : batch) natsMsg_Destroy(m);
    }

    void set_ack_wait(int64_t ms) {
        ack_wait_ms = ms;
        int64_t shortest = ms;
        for (double b : config.backoff_secs)
            shortest = std::min<int64_t>(shortest, static_cast<int64_t>(b * 1000));
        keepalive_ms = std::max<int64_t>(shortest / 2, 50);
    }

    // The rule of docs/plugins/nats.md: the consumer's redelivery deadline (ack_wait, or the
    // first backoff step when shorter) must be at least twice the longest action attempt the
    // host reported, else a worker that stalls briefly has its events redelivered to others.
    void warn_short_ack_wait() {
        int64_t deadline = ack_wait_ms.load();
        for (double b : config.backoff_secs)
            deadline = std::min<int64_t>(deadline, static_cast<int64_t>(b * 1000));
        const auto attempt = static_cast<int64_t>(options.max_attempt_ms);
        if (attempt <= 0 || deadline >= 2 * attempt || deadline == warned_deadline_ms) return;
        warned_deadline_ms = deadline;
        host.warn("consumer " + options.consumer_name + " (pipeline " + options.pipeline +
                  "): JetStream redelivers an unacknowledged event after " +
                  std::to_string(deadline) + " ms, but one action attempt may take " +
                  std::to_string(attempt) + " ms; raise jetstream.ack_wait_secs to at least " +
                  std::to_string((2 * attempt + 999) / 1000) +
                  " s (2 x the longest attempt; see docs/plugins/nats.md)");
    }

    // Provisions the durable consumer and subscribes. Throws ProvisionError / runtime_error.
    void setup() {
        auto session = link->session();
        if (!session) throw std::runtime_error(link->state());
        set_ack_wait(provision_consumer(*link, config, options.consumer_name,
                                        filter.server_subject(), host));
        warn_short_ack_wait();
        if (sub_session != session->id) { // left over from a set-up on an older connection
            for (natsSubscription **adv : {&adv_max, &adv_term}) {
                if (*adv) natsSubscription_Destroy(*adv);
                *adv = nullptr;
            }
        }
        auto advisory = [&](const char *kind, natsSubscription **out) {
            if (*out) return;
            std::string subject = std::string("$JS.EVENT.ADVISORY.CONSUMER.") + kind + "." +
                                  config.stream_name + "." + options.consumer_name;
            natsStatus s = natsConnection_Subscribe(out, session->nc, subject.c_str(),
                                                    &Core::on_advisory, this);
            if (s != NATS_OK) throw std::runtime_error(nats_error(s, "advisory subscription"));
        };
        advisory("MAX_DELIVERIES", &adv_max);
        advisory("MSG_TERMINATED", &adv_term);
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = config.stream_name.c_str();
        so.Consumer = options.consumer_name.c_str(); // bind: provisioned above
        so.ManualAck = true;
        jsErrCode code = static_cast<jsErrCode>(0);
        natsSubscription *sub = nullptr;
        // cnats checks a bound subscription's subject against the consumer's filter.
        const std::string &subject = filter.server_subject().empty() ? config.subject_prefix
                                                                     : filter.server_subject();
        natsStatus s = js_PullSubscribe(&sub, session->js, subject.c_str(),
                                        options.consumer_name.c_str(), nullptr, &so, &code);
        if (s != NATS_OK)
            throw std::runtime_error(
                nats_error(s, ("pull subscription on " + options.consumer_name).c_str()));
        // Fetched messages sit in the subscription; cnats must never drop them.
        natsSubscription_SetPendingLimits(sub, -1, -1);
        cur = std::make_shared<SubRef>();
        cur->sub = sub;
        sub_session = session->id;
        subscribed = true;
        host.info("consuming " + config.stream_name + " with durable consumer " +
                  options.consumer_name + " (pipeline " + options.pipeline + ")");
    }

    // The connection was rebuilt (a new natsConnection): the subscriptions of the old one are
    // dead. Retire them and subscribe again on the new one.
    void resubscribe() {
        host.warn("consumer " + options.consumer_name +
                  ": the NATS connection was rebuilt; subscribing again");
        if (cur) retired.push_back(std::move(cur));
        cur.reset();
        for (natsSubscription **adv : {&adv_max, &adv_term}) {
            if (!*adv) continue;
            natsSubscription_Destroy(*adv); // its connection is closed: no callback is running
            *adv = nullptr;
        }
        subscribed = false;
    }

    // Destroys retired subscriptions none of whose messages is alive any more.
    void prune_retired() {
        if (retired.empty()) return;
        empty_trash(); // a message whose Delivery is gone may still wait here
        std::erase_if(retired, [](const std::shared_ptr<SubRef> &r) {
            if (r->live.load() != 0) return false;
            natsSubscription_Destroy(r->sub);
            return true;
        });
    }

    // Background set-up when NATS was not reachable at open() or after the connection was
    // rebuilt: retried with backoff.
    bool setup_in_background() {
        int64_t pause_ms = 250;
        while (running.load()) {
            if (transport_ready()) {
                try {
                    setup();
                    return true;
                } catch (const std::exception &e) {
                    host.warn(std::string("consumer set-up failed, retrying: ") + e.what());
                }
            }
            std::unique_lock lk(mu);
            cv.wait_for(lk, std::chrono::milliseconds(pause_ms), [&] { return !running.load(); });
            pause_ms = std::min<int64_t>(pause_ms * 2, 5000);
        }
        return false;
    }

    static void on_complete(const fobs_completion *token, const fobs_outcome *outcome) {
        auto *d = static_cast<Delivery *>(token->ctx);
        if (d->completed.exchange(true)) return; // second completion: contract violation
        // Keep the core alive while settling even if this was its last reference.
        std::shared_ptr<Core> core = d->core;
        core->settle(d, outcome);
    }

    // Removes `d` from the outstanding set; returns false when close() already abandoned it.
    bool release(Delivery *d) {
        std::lock_guard lk(mu);
        bool was_abandoned = d->abandoned;
        outstanding.erase(d);
        // Waking waiters costs a syscall per message; only do it when someone waits.
        if (space_waiters > 0) cv.notify_all();
        return !was_abandoned;
    }

    static void destroy(Delivery *d) {
        {
            std::lock_guard lk(d->core->trash_mu);
            d->core->trash.push_back(d->msg);
        }
        if (d->subref) d->subref->live.fetch_sub(1);
        delete d;
    }

    void settle(Delivery *d, const fobs_outcome *o) {
        fobs_outcome_kind kind = o ? o->kind : FOBS_OUTCOME_RETRY;
        std::string reason = o ? std::string(sdk::view(o->reason)) : std::string();
        std::string action;
        if (o && FOBS_HAS_FIELD(o, fobs_outcome, component)) action = sdk::view(o->component);
        if (kind == FOBS_OUTCOME_OK) {
            if (release(d)) natsMsg_Ack(d->msg, nullptr);
            destroy(d);
            return;
        }
        // max_deliver is counted here, not by JetStream (the consumer's MaxDeliver is
        // unlimited, provisioning.cpp): a delivery at or past it that fails goes to the DLQ.
        // Deliveries that never reached an action (lost with a killed worker or consumer
        // leader) still count, so such an event gets fewer retries, but it is always attempted
        // at least once and never dropped: a delivery past max_deliver is attempted once more
        // rather than dead-lettered unseen.
        if (kind == FOBS_OUTCOME_RETRY &&
            d->delivery_count < static_cast<uint64_t>(config.max_deliver)) {
            int64_t delay = (o && FOBS_HAS_FIELD(o, fobs_outcome, retry_after_ms) &&
                             o->retry_after_ms >= 0)
                                ? o->retry_after_ms
                                : config.nak_delay_ms(d->delivery_count);
            if (release(d)) natsMsg_NakWithDelay(d->msg, delay, nullptr);
            destroy(d);
            return;
        }
        {
            std::lock_guard lk(mu);
            if (d->abandoned) { // close() already handed it back to the server
                outstanding.erase(d);
                destroy(d);
                return;
            }
        }
        // FAILED, or RETRY on the last allowed delivery: DLQ first, term after its PubAck.
        DlqRecord r;
        r.original_subject = natsMsg_GetSubject(d->msg);
        r.original_stream = config.stream_name;
        r.original_sequence = d->seq;
        r.id = d->id;
        r.body.assign(natsMsg_GetData(d->msg), static_cast<size_t>(natsMsg_GetDataLength(d->msg)));
        r.reason = kind == FOBS_OUTCOME_FAILED
                       ? (reason.empty() ? std::string("failed") : reason)
                       : "max deliveries (" + std::to_string(config.max_deliver) +
                             ") reached; last error: " + (reason.empty() ? "retry" : reason);
        r.action = action;
        r.delivery_count = d->delivery_count;
        auto self = shared_from_this();
        dead_letters.write_async(std::move(r), [self, d](bool ok, const std::string &err) {
            if (ok) {
                if (self->release(d)) natsMsg_Term(d->msg, nullptr);
                self->dead_lettered.add(1);
            } else {
                // Not terminated: it comes back later (or, after its last delivery, through
                // the MAX_DELIVERIES advisory and the safety net).
                self->host.error("DLQ write failed, message " + printable(d->id, 80) +
                                 " left for redelivery: " + err);
                if (self->release(d)) natsMsg_NakWithDelay(d->msg, 5000, nullptr);
            }
            destroy(d);
        });
    }

    Delivery *make_delivery(natsMsg *msg) {
        auto *d = new Delivery();
        d->token.struct_size = sizeof(fobs_completion);
        d->token.ctx = d;
        d->token.complete = &Core::on_complete;
        d->core = shared_from_this();
        d->msg = msg;
        d->subref = cur.get();
        cur->live.fetch_add(1);
        if (!parse_ack_reply(natsMsg_GetReply(msg), d->delivery_count, d->seq)) {
            jsMsgMetaData *meta = nullptr;
            if (natsMsg_GetMetaData(&meta, msg) == NATS_OK && meta) {
                d->seq = meta->Sequence.Stream;
                d->delivery_count = meta->NumDelivered;
                jsMsgMetaData_Destroy(meta);
            }
        }
        d->touched = clock_type::now();
        return d;
    }

    void deliver(Delivery *d) {
        std::string_view subject = natsMsg_GetSubject(d->msg);
        std::string_view body(natsMsg_GetData(d->msg),
                              static_cast<size_t>(natsMsg_GetDataLength(d->msg)));
        std::string_view entity, operation;
        split_subject(subject, config.subject_prefix, entity, operation);
        if (filter.filters_locally() && !filter.wanted(entity, operation)) {
            sdk::Completion(&d->token).ok(); // not for this pipeline: acked, never delivered
            return;
        }
        // The host reads the envelope back from the body it made (abi.h decode_event); the
        // subject already says type and operation. The body's id is the event id (a replayed
        // DLQ entry's Nats-Msg-Id is "<id>:replay:<seq>"); the header is the fallback.
        std::string entity_id, source;
        d->id.clear();
        host.decode_event(body, [&](const sdk::Event &e) {
            d->id.assign(e.id);
            entity_id.assign(e.entity_id);
            source.assign(e.source);
        });
        const char *hdr_id = nullptr;
        if (d->id.empty() && natsMsgHeader_Get(d->msg, "Nats-Msg-Id", &hdr_id) == NATS_OK && hdr_id)
            d->id = hdr_id;
        fobs_event ev{};
        ev.struct_size = sizeof(ev);
        ev.id = sdk::str(d->id);
        ev.entity_type = sdk::str(entity);
        ev.operation = sdk::str(operation);
        ev.entity_id = sdk::str(entity_id);
        ev.source = sdk::str(source);
        ev.body = sdk::str(body);
        ev.delivery_count = static_cast<uint32_t>(d->delivery_count);
        ev.sequence = d->seq;
        sink.deliver(ev, &d->token); // may block: host back-pressure slows the fetching
    }

    void fetch_loop() {
        if (!subscribed.load() && !setup_in_background()) return;
        int errors = 0;
        while (running.load()) {
            empty_trash();
            prune_retired();
            uint64_t session_now = link->session_id();
            if (subscribed.load() && session_now != 0 && session_now != sub_session)
                resubscribe();
            if (!subscribed.load()) {
                if (!setup_in_background()) break;
                continue;
            }
            natsSubscription *sub = cur->sub;
            // Room for more: never hold more than max_in_flight fetched-but-unsettled
            // messages (their ack_wait is ticking even before the host takes them).
            size_t limit = options.max_in_flight ? options.max_in_flight : 1024;
            int batch = static_cast<int>(config.fetch_batch);
            {
                std::unique_lock lk(mu);
                ++space_waiters;
                cv.wait_for(lk, std::chrono::milliseconds(100),
                            [&] { return !running.load() || outstanding.size() < limit; });
                --space_waiters;
                if (!running.load()) break;
                if (outstanding.size() >= limit) continue;
                batch = static_cast<int>(std::min<size_t>(batch, limit - outstanding.size()));
            }
            // cnats 3.4.1 Fetch(B) first takes up to B messages already queued in the
            // subscription (count), asks the server for B - count more, then loops until it
            // holds exactly B - count: when count > B / 2 it never does, and every further
            // message (leftovers of earlier pull requests: requests cnats buffered while
            // disconnected and flushed on reconnect, requests whose fetch timed out first) is
            // written past its B-sized array (NOTES.md). Asking for at most what is pending is
            // not enough: status replies (404/408/409) count as pending but are dropped, so
            // fewer than B user messages are taken. Fetch(1) cannot overflow (count is 0 or 1),
            // so anything queued is drained one message at a time, without a round trip; a
            // full batch is asked for only when the queue is empty.
            int pending_msgs = 0, pending_bytes = 0;
            if (natsSubscription_GetPending(sub, &pending_msgs, &pending_bytes) != NATS_OK ||
                pending_msgs > 0)
                batch = 1;
            // Pull requests sent while disconnected wait in cnats' reconnect buffer and are all
            // answered at once after the reconnect, with nobody fetching: don't send any.
            if (!link->connected()) {
                std::unique_lock lk(mu);
                cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return !running.load(); });
                continue;
            }
            natsMsgList list{};
            jsErrCode code = static_cast<jsErrCode>(0);
            natsStatus s = natsSubscription_Fetch(&list, sub, batch, config.fetch_timeout_ms, &code);
            if (s != NATS_OK && list.Count == 0) {
                natsMsgList_Destroy(&list);
                if (s == NATS_TIMEOUT) {
                    errors = 0;
                    continue;
                }
                if (!running.load()) break;
                if (s == NATS_CONNECTION_CLOSED) {
                    // Wait for the Link's rebuild; the loop subscribes again on the new one.
                    std::unique_lock lk(mu);
                    cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return !running.load(); });
                    continue;
                }
                if (errors++ % 50 == 0)
                    host.warn("fetch on consumer " + options.consumer_name + " failed: " +
                              nats_error(s, "fetch") + " (retrying)");
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
                continue;
            }
            errors = 0;
            empty_trash();
            std::vector<Delivery *> batch_deliveries;
            batch_deliveries.reserve(static_cast<size_t>(list.Count));
            for (int i = 0; i < list.Count; ++i) {
                batch_deliveries.push_back(make_delivery(list.Msgs[i]));
                list.Msgs[i] = nullptr;
            }
            natsMsgList_Destroy(&list);
            {
                std::lock_guard lk(mu);
                for (Delivery *d : batch_deliveries) outstanding.insert(d);
            }
            for (Delivery *d : batch_deliveries) deliver(d);
        }
    }

    void refresh_gauges() {
        jsConsumerInfo *ci = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = 1000;
        if (js_GetConsumerInfo(&ci, link->js(), config.stream_name.c_str(),
                               options.consumer_name.c_str(), &jo, &code) == NATS_OK) {
            pending_gauge.set(static_cast<double>(ci->NumPending));
            ack_pending_gauge.set(static_cast<double>(ci->NumAckPending));
            jsConsumerInfo_Destroy(ci);
        }
        jsStreamInfo *si = nullptr;
        if (js_GetStreamInfo(&si, link->js(), config.dlq_stream.c_str(), &jo, &code) == NATS_OK) {
            dlq_depth_gauge.set(static_cast<double>(si->State.Msgs));
            jsStreamInfo_Destroy(si);
        }
    }

    void ticker_loop() {
        auto next_gauges = clock_type::now();
        std::unique_lock lk(mu);
        while (running.load()) {
            tick_cv.wait_for(lk, std::chrono::milliseconds(
                                std::clamp<int64_t>(keepalive_ms.load() / 4, 20, 1000)));
            if (!running.load()) break;
            auto now = clock_type::now();
            for (Delivery *d : outstanding) {
                if (now - d->touched >= std::chrono::milliseconds(keepalive_ms.load())) {
                    natsMsg_InProgress(d->msg, nullptr); // resets the server's ack timer
                    d->touched = now;
                }
            }
            if (now >= next_gauges && subscribed.load()) {
                next_gauges = now + std::chrono::seconds(5);
                lk.unlock();
                refresh_gauges();
                lk.lock();
            }
        }
    }

    static void on_advisory(natsConnection *, natsSubscription *, natsMsg *msg, void *closure) {
        auto *core = static_cast<Core *>(closure);
        try {
            std::string error;
            auto adv = parse_advisory(std::string_view(natsMsg_GetData(msg),
                                                       static_cast<size_t>(natsMsg_GetDataLength(msg))),
                                      error);
            if (!adv) {
                core->host.warn("unreadable JetStream advisory: " + error);
            } else if (adv->stream_seq != 0 && !core->dead_letters.already_dead_lettered(adv->stream_seq)) {
                std::string reason =
                    adv->max_deliveries
                        ? "max deliveries (" + std::to_string(core->config.max_deliver) +
                              ") reached without an outcome (worker lost or stuck)"
                        : "terminated outside the observer's DLQ path";
                core->dead_letters.ensure_copied(adv->stream_seq, adv->deliveries, reason,
                                                 core->options.consumer_name, core->dead_lettered);
            }
        } catch (const std::exception &e) {
            core->host.warn(std::string("JetStream advisory not handled: ") + e.what());
        }
        natsMsg_Destroy(msg);
    }
};

PullConsumer::PullConsumer(std::shared_ptr<Link> link, const NatsConfig &config, sdk::Host host,
                           DeadLetters &dead_letters, sdk::ConsumerOptions options,
                           sdk::ConsumerSink sink, std::function<bool()> transport_ready)
    : core_(std::make_shared<Core>(std::move(link), config, host, dead_letters,
                                   std::move(options), sink, std::move(transport_ready))) {}

PullConsumer::~PullConsumer() { close(); }

void PullConsumer::open() {
    Core &c = *core_;
    // Filters are applied here (server subject or after the fetch), never again by the host.
    c.options.set_filters_applied();
    if (c.filter.filters_locally())
        c.host.info("consumer " + c.options.consumer_name +
                    ": several entity_types/operations cannot be one JetStream filter subject "
                    "on this server version; unwanted events are fetched and acked without "
                    "delivery");
    if (c.transport_ready()) {
        try {
            c.setup();
        } catch (const ProvisionError &e) {
            if (e.permanent()) throw;
            c.host.warn(std::string("consumer set-up deferred: ") + e.what());
        }
    } else {
        c.host.warn("consumer " + c.options.consumer_name +
                    " will be set up once NATS is reachable");
    }
    c.running = true;
    c.fetch_thread = std::thread([core = core_] {
        pthread_setname_np(pthread_self(), "nats-fetch");
        core->fetch_loop();
    });
    c.ticker_thread = std::thread([core = core_] {
        pthread_setname_np(pthread_self(), "nats-keepalive");
        core->ticker_loop();
    });
}

void PullConsumer::close() noexcept {
    if (!core_) return;
    Core &c = *core_;
    c.running = false;
    c.cv.notify_all();
    if (c.fetch_thread.joinable()) c.fetch_thread.join();
    // Bounded wait for the host to complete what it holds (ack_wait, at most 30 s).
    {
        std::unique_lock lk(c.mu);
        auto limit = std::chrono::milliseconds(std::min<int64_t>(c.ack_wait_ms.load(), 30'000));
        ++c.space_waiters;
        bool settled = c.cv.wait_for(lk, limit, [&] { return c.outstanding.empty(); });
        --c.space_waiters;
        if (!settled) {
            c.host.warn("consumer " + c.options.consumer_name + " closed with " +
                        std::to_string(c.outstanding.size()) +
                        " event(s) still unsettled; handing them back for redelivery");
            for (Delivery *d : c.outstanding) {
                d->abandoned = true;
                natsMsg_Nak(d->msg, nullptr);
            }
            c.outstanding.clear();
        }
    }
    c.tick_cv.notify_all();
    if (c.ticker_thread.joinable()) c.ticker_thread.join();
    for (natsSubscription **adv : {&c.adv_max, &c.adv_term}) {
        if (!*adv) continue;
        // Drain: when it completes no advisory callback runs any more. Only while connected:
        // a drain on a connection that is down waits its whole timeout for nothing.
        if (c.link->connected() && natsSubscription_Drain(*adv) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(*adv, 2000);
        else
            natsSubscription_Unsubscribe(*adv);
        natsSubscription_Destroy(*adv);
        *adv = nullptr;
    }
    if (c.cur) natsSubscription_Unsubscribe(c.cur->sub); // destroyed with the core (late acks)
    core_.reset();
}

} // namespace fraiseql_observer::nats_transport
