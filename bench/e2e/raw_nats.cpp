// Raw JetStream stages with cnats, the library the nats transport uses: `raw-publish`
// (js_PublishMsgAsync with a Nats-Msg-Id each, a bounded window) and `raw-fetch` (a durable
// pull consumer, Fetch(batch) + natsMsg_Ack) over the messages raw-publish left in the stream.
#include "common.hpp"
#include "subcommands.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

namespace fobs_bench {
namespace {

void check(natsStatus s, const char *what) {
    if (s != NATS_OK)
        throw std::runtime_error(std::string(what) + ": " + natsStatus_GetText(s) + " " + nats_GetLastError(nullptr));
}

// An event like the observer publishes (~210 bytes): only the id and timestamp differ.
std::string event_body(const std::string &id, int64_t i, const std::string &timestamp) {
    return "{\"id\":\"" + id + "\",\"entity_type\":\"Order\",\"operation\":\"INSERT\",\"entity_id\":\"" +
           std::to_string(i) + "\",\"timestamp\":\"" + timestamp + "\",\"txid\":812345,\"entity\":{\"id\":" +
           std::to_string(i) + ",\"customer\":\"customer-" + std::to_string(i) +
           "\",\"status\":\"pending\",\"total\":42.5,\"note\":\"fraiseql-observer bench\"},\"changes\":null,"
           "\"source\":\"db\"}";
}

struct Nats {
    natsConnection *nc = nullptr;
    jsCtx *js = nullptr;
    ~Nats() {
        if (js) jsCtx_Destroy(js);
        if (nc) natsConnection_Destroy(nc);
    }
};

struct AckCounter {
    std::atomic<int64_t> ok{0}, failed{0};
};

void on_ack(jsCtx *, natsMsg *msg, jsPubAck *, jsPubAckErr *pae, void *closure) {
    auto *c = static_cast<AckCounter *>(closure);
    if (pae) ++c->failed;
    else ++c->ok;
    natsMsg_Destroy(msg);
}

void connect(Nats &n, const std::string &url, jsOptions *jo) {
    natsOptions *opts = nullptr;
    check(natsOptions_Create(&opts), "options");
    natsOptions_SetURL(opts, url.c_str());
    natsStatus s = natsConnection_Connect(&n.nc, opts);
    natsOptions_Destroy(opts);
    check(s, "connect");
    check(natsConnection_JetStream(&n.js, n.nc, jo), "jetstream");
}

} // namespace

int run_raw_publish(const Args &args) {
    const std::string url = args.required("nats-url"), stream = args.required("stream");
    const std::string prefix = args.required("subject-prefix");
    const int64_t events = args.num("events", 100000);
    AckCounter acks;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = args.num("window", 1000);
    jo.PublishAsync.StallWait = 10000;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &acks;
    Nats n;
    connect(n, url, &jo);

    // A fresh stream configured like the transport provisions it (file storage, dedup window).
    jsErrCode jerr = static_cast<jsErrCode>(0);
    js_DeleteStream(n.js, stream.c_str(), nullptr, &jerr);
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = stream.c_str();
    std::string subjects = prefix + ".>";
    const char *subj_list[] = {subjects.c_str()};
    cfg.Subjects = subj_list;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = 5LL * 60 * 1000000000LL;
    jsStreamInfo *si = nullptr;
    check(js_AddStream(&si, n.js, &cfg, nullptr, &jerr), "add stream");
    jsStreamInfo_Destroy(si);

    const std::string subject = prefix + ".Order.INSERT";
    const std::string ts = "2026-01-01T00:00:00.000000Z";
    std::vector<std::string> bodies;
    bodies.reserve(static_cast<size_t>(events));
    for (int64_t i = 0; i < events; ++i) bodies.push_back(event_body("raw-" + std::to_string(i), i, ts));

    const int64_t t0 = mono_us();
    for (int64_t i = 0; i < events; ++i) {
        natsMsg *msg = nullptr;
        check(natsMsg_Create(&msg, subject.c_str(), nullptr, bodies[i].data(), static_cast<int>(bodies[i].size())), "msg");
        natsMsgHeader_Set(msg, "Nats-Msg-Id", ("raw-" + std::to_string(i)).c_str());
        natsStatus s = js_PublishMsgAsync(n.js, &msg, nullptr);
        if (s != NATS_OK) {
            natsMsg_Destroy(msg);
            check(s, "publish async");
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    check(js_PublishAsyncComplete(n.js, &po), "publish complete");
    const int64_t t1 = mono_us();

    Result r;
    r.label = args.str("label", "raw js_PublishAsync");
    r.kind = args.str("kind", "raw:publish");
    r.events = events;
    r.rate = acks.ok / ((t1 - t0) / 1e6);
    r.lost = events - acks.ok;
    r.note = args.str("note", "");
    if (acks.failed) r.note += " " + std::to_string(acks.failed.load()) + " publish errors";
    emit_result(r, args.str("results", ""));
    return 0;
}

int run_raw_fetch(const Args &args) {
    const std::string url = args.required("nats-url"), stream = args.required("stream");
    const std::string prefix = args.required("subject-prefix");
    const int64_t events = args.num("events", 100000);
    const int batch = static_cast<int>(args.num("batch", 500));
    jsOptions jo;
    jsOptions_Init(&jo);
    Nats n;
    connect(n, url, &jo);

    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    const std::string durable = "raw_fetch";
    cc.Durable = durable.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.MaxAckPending = 20000;
    cc.AckWait = 30LL * 1000000000LL;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    jsConsumerInfo *ci = nullptr;
    check(js_AddConsumer(&ci, n.js, stream.c_str(), &cc, nullptr, &jerr), "add consumer");
    jsConsumerInfo_Destroy(ci);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Consumer = durable.c_str();
    natsSubscription *sub = nullptr;
    check(js_PullSubscribe(&sub, n.js, (prefix + ".>").c_str(), durable.c_str(), &jo, &so, &jerr), "pull subscribe");

    int64_t acked = 0;
    const int64_t t0 = mono_us();
    const int64_t deadline = t0 + args.num("timeout-secs", 60) * 1000000;
    while (acked < events && mono_us() < deadline) {
        // cnats 3.4.1 overflows its result array when more than half a batch is already
        // pending from an expired pull (NOTES.md): ask for at most what is pending then.
        int pending = 0;
        natsSubscription_GetPending(sub, &pending, nullptr);
        int want = pending > 0 ? std::min(batch, pending) : batch;
        natsMsgList list{};
        natsStatus s = natsSubscription_Fetch(&list, sub, want, 2000, &jerr);
        if (s != NATS_OK && s != NATS_TIMEOUT) {
            natsMsgList_Destroy(&list);
            check(s, "fetch");
        }
        for (int i = 0; i < list.Count; ++i)
            if (natsMsg_Ack(list.Msgs[i], nullptr) == NATS_OK) ++acked;
        natsMsgList_Destroy(&list);
    }
    natsConnection_Flush(n.nc);
    const int64_t t1 = mono_us();
    natsSubscription_Destroy(sub);
    // The next contenders should not share the disk and memory with 100k leftover messages.
    if (args.has("delete-stream")) js_DeleteStream(n.js, stream.c_str(), nullptr, &jerr);

    Result r;
    r.label = args.str("label", "raw Fetch+Ack");
    r.kind = args.str("kind", "raw:fetch");
    r.events = events;
    r.rate = acked / ((t1 - t0) / 1e6);
    r.lost = events - acked;
    r.note = args.str("note", "");
    emit_result(r, args.str("results", ""));
    return 0;
}

} // namespace fobs_bench
