#include "admin_ops.hpp"

#include "dlq_fields.hpp"
#include "wire_limits.hpp"

#include <memory>
#include <stdexcept>

namespace fraiseql_observer::nats_transport {
namespace {

using nlohmann::json;

[[noreturn]] void fail(natsStatus s, jsErrCode code, const std::string &what) {
    std::string m = nats_error(s, what.c_str());
    if (code != 0) m += " [JetStream error " + std::to_string(static_cast<int>(code)) + "]";
    throw std::runtime_error(m);
}

std::string header(natsMsg *msg, const char *key) {
    const char *v = nullptr;
    if (natsMsgHeader_Get(msg, key, &v) == NATS_OK && v) return v;
    return {};
}

std::string event_id(natsMsg *msg) {
    std::string_view body(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    return dlq_event_id(body, header(msg, "Nats-Msg-Id"));
}

json entry_json(natsMsg *msg, uint64_t dlq_seq, bool with_body) {
    json e = {
        {"seq", dlq_seq}, // the name the memory transport and the CLI use
        {"dlq_seq", dlq_seq},
        {"id", event_id(msg)},
        {"subject", header(msg, "Fobs-Original-Subject")},
        {"dlq_subject", natsMsg_GetSubject(msg)},
        {"reason", header(msg, "Fobs-Dlq-Reason")},
        {"action", header(msg, "Fobs-Dlq-Action")},
        {"delivery_count", header_u64(header(msg, "Fobs-Dlq-Delivery-Count"))},
        {"original_seq", header_u64(header(msg, "Fobs-Original-Sequence"))},
        {"original_stream", header(msg, "Fobs-Original-Stream")},
        {"time_ns", natsMsg_GetTime(msg)},
    };
    std::string omitted = header(msg, "Fobs-Dlq-Body-Omitted");
    if (!omitted.empty()) e["body_omitted"] = omitted;
    if (with_body)
        e["body"] = std::string(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    return e;
}

// nullptr when the sequence holds no message (deleted / never there).
natsMsg *get_dlq(Link &link, const NatsConfig &config, uint64_t seq) {
    natsMsg *msg = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetMsg(&msg, link.js(), config.dlq_stream.c_str(), seq, nullptr, &code);
    if (s == NATS_OK) return msg;
    if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr) return nullptr;
    fail(s, code, "reading DLQ seq " + std::to_string(seq));
}

struct StreamState {
    uint64_t msgs = 0, bytes = 0, first = 0, last = 0;
    int64_t consumers = 0;
    bool exists = false;
    json cluster; // null when the server reports none
};

// nats-server (2.9) keeps a SIGKILLed member's `offline` false for as long as the group
// remembers it; what changes is `active`, the time since the leader last heard from it, which
// Raft heartbeats (1 s) keep below ~1-2 s for a live member. Five missed heartbeats: offline.
constexpr int64_t kOfflineAfterNs = 5'000'000'000;

const char *peer_state(const jsPeerInfo &p) {
    if (p.Offline || p.Active > kOfflineAfterNs) return "offline";
    return p.Current ? "current" : "lagging";
}

// The Raft group of a stream or consumer as JetStream reports it (StreamInfo/ConsumerInfo
// .cluster): its leader, and each other replica's state. `replicas` lists the followers only
// (JetStream leaves the leader out); a replica is "offline" when the leader has lost it,
// "lagging" while it is behind (lag_ops: Raft operations it misses), else "current". No leader
// (an election, or no quorum) is an empty string, which the CLI shows as "none".
json cluster_json(const jsClusterInfo *ci) {
    if (!ci) return nullptr;
    json replicas = json::array();
    for (int i = 0; i < ci->ReplicasLen; ++i) {
        const jsPeerInfo *p = ci->Replicas[i];
        if (!p) continue;
        replicas.push_back({{"name", p->Name ? p->Name : ""},
                            {"state", peer_state(*p)},
                            {"current", p->Current},
                            {"offline", p->Offline},
                            {"lag_ops", p->Lag},
                            // Active: nanoseconds since the leader last heard from it.
                            {"active_ms", p->Active / 1'000'000}});
    }
    return {{"name", ci->Name ? ci->Name : ""},
            {"leader", ci->Leader ? ci->Leader : ""},
            {"replicas", replicas}};
}

StreamState stream_state(Link &link, const std::string &name) {
    jsStreamInfo *si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, link.js(), name.c_str(), nullptr, &code);
    StreamState st;
    if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) return st;
    if (s != NATS_OK) fail(s, code, "stream info " + name);
    st.exists = true;
    st.msgs = si->State.Msgs;
    st.bytes = si->State.Bytes;
    st.first = si->State.FirstSeq;
    st.last = si->State.LastSeq;
    st.consumers = si->State.Consumers;
    st.cluster = cluster_json(si->Cluster);
    jsStreamInfo_Destroy(si);
    return st;
}

json status(Link &link, const NatsConfig &config, const json &req) {
    // An empty consumer (a publisher-only pipeline) means: no consumer section.
    std::string consumer = req.value("consumer", config.consumer_name);
    json out;
    out["connection"] = link.state();
    StreamState st = stream_state(link, config.stream_name);
    out["stream"] = st.exists ? json{{"name", config.stream_name},
                                     {"messages", st.msgs},
                                     {"bytes", st.bytes},
                                     {"first_seq", st.first},
                                     {"last_seq", st.last},
                                     {"consumers", st.consumers},
                                     {"cluster", st.cluster}}
                              : json(nullptr);
    jsConsumerInfo *ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = consumer.empty()
                       ? NATS_NOT_FOUND
                       : js_GetConsumerInfo(&ci, link.js(), config.stream_name.c_str(),
                                            consumer.c_str(), nullptr, &code);
    if (s == NATS_OK) {
        out["consumer"] = {{"name", consumer},
                           {"num_pending", ci->NumPending},
                           {"num_ack_pending", ci->NumAckPending},
                           {"num_redelivered", ci->NumRedelivered},
                           {"num_waiting", ci->NumWaiting},
                           {"delivered_stream_seq", ci->Delivered.Stream},
                           {"ack_floor_stream_seq", ci->AckFloor.Stream},
                           {"cluster", cluster_json(ci->Cluster)}};
        jsConsumerInfo_Destroy(ci);
    } else if (s == NATS_NOT_FOUND || code == JSConsumerNotFoundErr || code == JSStreamNotFoundErr) {
        out["consumer"] = nullptr;
    } else {
        fail(s, code, "consumer info " + consumer);
    }
    StreamState dlq = stream_state(link, config.dlq_stream);
    out["dlq"] = {{"name", config.dlq_stream}, {"depth", dlq.msgs}, {"bytes", dlq.bytes},
                  {"cluster", dlq.cluster}};
    return out;
}

json dlq_list(Link &link, const NatsConfig &config, const json &req) {
    int64_t limit = req.value("limit", int64_t{100});
    if (limit <= 0) throw std::invalid_argument("dlq_list: `limit` must be > 0");
    StreamState st = stream_state(link, config.dlq_stream);
    json entries = json::array();
    if (st.msgs > 0) {
        for (uint64_t seq = st.first; seq <= st.last && static_cast<int64_t>(entries.size()) < limit;
             ++seq) {
            natsMsg *msg = get_dlq(link, config, seq);
            if (!msg) continue;
            entries.push_back(entry_json(msg, seq, false));
            natsMsg_Destroy(msg);
        }
    }
    return {{"dlq", config.dlq_stream}, {"depth", st.msgs}, {"entries", entries}};
}

uint64_t require_seq(const json &req, const char *op) {
    auto it = req.find("seq");
    if (it == req.end() || !it->is_number_unsigned() || it->get<uint64_t>() == 0)
        throw std::invalid_argument(std::string(op) + ": `seq` (a positive integer) is required");
    return it->get<uint64_t>();
}

json dlq_show(Link &link, const NatsConfig &config, const json &req) {
    uint64_t seq = require_seq(req, "dlq_show");
    natsMsg *msg = get_dlq(link, config, seq);
    if (!msg) throw std::invalid_argument("dlq_show: no DLQ entry at seq " + std::to_string(seq));
    json e = entry_json(msg, seq, true);
    natsMsg_Destroy(msg);
    return e;
}

// Republishes one DLQ entry to its original subject with a fresh Nats-Msg-Id, then deletes
// it from the DLQ. Returns the new stream sequence.
uint64_t replay_one(Link &link, const NatsConfig &config, uint64_t seq, natsMsg *dlq_msg) {
    std::string subject = header(dlq_msg, "Fobs-Original-Subject");
    // Entries of events the transport refused (dead_letters.hpp) say why they cannot go back.
    if (subject.empty())
        throw std::runtime_error("DLQ entry " + std::to_string(seq) +
                                 " has no Fobs-Original-Subject (an event whose subject NATS "
                                 "cannot carry is not replayable)");
    std::string omitted = header(dlq_msg, "Fobs-Dlq-Body-Omitted");
    if (!omitted.empty())
        throw std::runtime_error("DLQ entry " + std::to_string(seq) +
                                 " was stored without its body (" + printable(omitted, 200) +
                                 "); it cannot be replayed");
    std::string id = event_id(dlq_msg);
    std::string id_problem = header_value_problem(id);
    if (!id_problem.empty())
        throw std::runtime_error("DLQ entry " + std::to_string(seq) + ": its event id " +
                                 id_problem + "; it cannot be a Nats-Msg-Id, so it is not replayable");
    natsMsg *msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, natsMsg_GetData(dlq_msg),
                                  natsMsg_GetDataLength(dlq_msg));
    std::string msg_id = id + ":replay:" + std::to_string(seq);
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id.c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Content-Type", "application/json");
    if (s != NATS_OK) {
        natsMsg_Destroy(msg);
        fail(s, static_cast<jsErrCode>(0), "building replay message");
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.ExpectStream = config.stream_name.c_str();
    po.MaxWait = config.publish_timeout_ms;
    jsPubAck *pa = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    s = js_PublishMsg(&pa, link.js(), msg, &po, &code);
    natsMsg_Destroy(msg);
    if (s != NATS_OK) fail(s, code, "replaying DLQ seq " + std::to_string(seq));
    uint64_t new_seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    // Only now: a failed replay leaves the entry in place.
    s = js_DeleteMsg(link.js(), config.dlq_stream.c_str(), seq, nullptr, &code);
    if (s != NATS_OK) fail(s, code, "deleting replayed DLQ seq " + std::to_string(seq));
    return new_seq;
}

json dlq_replay(Link &link, const NatsConfig &config, const json &req) {
    json replayed = json::array();
    // Replays the entry and destroys it, also when the replay throws.
    auto one = [&](uint64_t seq, natsMsg *entry) {
        std::unique_ptr<natsMsg, void (*)(natsMsg *)> msg(entry, natsMsg_Destroy);
        uint64_t new_seq = replay_one(link, config, seq, msg.get());
        replayed.push_back({{"dlq_seq", seq}, {"id", event_id(msg.get())}, {"seq", new_seq}});
    };
    if (req.value("all", false)) {
        StreamState st = stream_state(link, config.dlq_stream);
        for (uint64_t seq = st.first; st.msgs > 0 && seq <= st.last; ++seq)
            if (natsMsg *msg = get_dlq(link, config, seq)) one(seq, msg);
    } else {
        uint64_t seq = require_seq(req, "dlq_replay");
        natsMsg *msg = get_dlq(link, config, seq);
        if (!msg)
            throw std::invalid_argument("dlq_replay: no DLQ entry at seq " + std::to_string(seq));
        one(seq, msg);
    }
    return {{"replayed", replayed.size()}, {"entries", replayed}};
}

json dlq_purge(Link &link, const NatsConfig &config, const json &req) {
    jsErrCode code = static_cast<jsErrCode>(0);
    if (req.contains("seq")) {
        uint64_t seq = require_seq(req, "dlq_purge");
        natsStatus s = js_DeleteMsg(link.js(), config.dlq_stream.c_str(), seq, nullptr, &code);
        if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr || code == JSSequenceNotFoundErr || code == JSStreamMsgDeleteFailed)
            return {{"purged", 0}};
        if (s != NATS_OK) fail(s, code, "deleting DLQ seq " + std::to_string(seq));
        return {{"purged", 1}};
    }
    StreamState st = stream_state(link, config.dlq_stream);
    natsStatus s = js_PurgeStream(link.js(), config.dlq_stream.c_str(), nullptr, &code);
    if (s != NATS_OK) fail(s, code, "purging " + config.dlq_stream);
    return {{"purged", st.msgs}};
}

} // namespace

json run_admin(Link &link, const NatsConfig &config, const json &request) {
    if (!request.is_object() || !request.contains("op") || !request["op"].is_string())
        throw std::invalid_argument("admin request must be an object with a string `op`");
    std::string op = request["op"];
    if (op == "status") return status(link, config, request);
    if (op == "dlq_list") return dlq_list(link, config, request);
    if (op == "dlq_show") return dlq_show(link, config, request);
    if (op == "dlq_replay") return dlq_replay(link, config, request);
    if (op == "dlq_purge") return dlq_purge(link, config, request);
    throw sdk::UnsupportedOperation("unknown admin op `" + op +
                                "` (nats offers status, dlq_list, dlq_show, dlq_replay, "
                                "dlq_purge)");
}

} // namespace fraiseql_observer::nats_transport
