#include "provisioning.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <vector>

namespace fraiseql_observer::nats_transport {
namespace {

std::string js_error(natsStatus s, jsErrCode code, const std::string &what) {
    std::string m = nats_error(s, what.c_str());
    if (code != 0) m += " [JetStream error " + std::to_string(static_cast<int>(code)) + "]";
    return m;
}

// Transport-level failures (no connection, timeout, JetStream not answering) are worth
// retrying; a JetStream API error about the config itself is not.
bool transient(natsStatus s, jsErrCode code) {
    return code == 0 || s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ||
           s == NATS_CONNECTION_CLOSED || s == NATS_CONNECTION_DISCONNECTED;
}

std::string fmt_ns(int64_t ns) {
    if (ns == 0) return "unlimited";
    double secs = ns / 1e9;
    if (secs >= 86400 && static_cast<int64_t>(secs) % 86400 == 0)
        return std::to_string(static_cast<int64_t>(secs / 86400)) + "d";
    if (secs >= 60 && static_cast<int64_t>(secs) % 60 == 0)
        return std::to_string(static_cast<int64_t>(secs / 60)) + "m";
    return std::to_string(secs) + "s";
}

// What nats-server says when a stream asks for more replicas than there are JetStream servers
// ("no suitable peers for placement", or "replicas > 1 not supported in non-clustered mode")
// names neither the setting nor the fix; say both, with the servers this client knows of
// (the configured URLs plus those the cluster announced).
std::string replicas_hint(Link &link, natsStatus s, jsErrCode code, int64_t replicas) {
    if (s == NATS_OK || replicas <= 1 ||
        (code != JSClusterNoPeersErr && code != JSStreamReplicasNotSupportedErr))
        return {};
    int known = 1;
    if (code == JSClusterNoPeersErr) {
        auto nc = link.conn();
        char **servers = nullptr;
        int count = 0;
        if (nc && natsConnection_GetServers(nc.get(), &servers, &count) == NATS_OK) {
            known = count;
            for (int i = 0; i < count; ++i) free(servers[i]);
            free(servers);
        }
        // With enough servers the placement failed for another reason (storage, tags): the
        // server's own text says which.
        if (replicas <= known) return {};
    }
    std::string head = "jetstream.replicas = " + std::to_string(replicas) + " but ";
    if (code == JSStreamReplicasNotSupportedErr)
        return head + "nats-server is not clustered (replicas > 1 needs a JetStream cluster); "
                      "set jetstream.replicas = 1 or point url at a cluster: ";
    return head + "JetStream cannot place that many copies (the cluster has " +
           std::to_string(known) + " servers that this client knows of); set "
           "jetstream.replicas to at most the number of JetStream servers, or add servers: ";
}


struct StreamWanted {
    std::string name;
    std::string subject; // "{prefix}.>"
    int64_t max_bytes;
    int64_t max_age_ns;
    int64_t duplicates_ns;
    int64_t replicas;
    bool memory;
};

std::string fmt_bytes(int64_t b) {
    std::string out = std::to_string(b) + " bytes";
    if (b >= (1LL << 30) && b % (1LL << 30) == 0)
        out += " (" + std::to_string(b >> 30) + " GiB)";
    else if (b >= (1LL << 20) && b % (1LL << 20) == 0)
        out += " (" + std::to_string(b >> 20) + " MiB)";
    return out;
}

// "insufficient storage resources available" names neither the setting nor the fix. JetStream
// reserves a stream's whole max_bytes when the stream is created (or its max_bytes raised),
// against max_file_store (max_memory_store for memory streams), which by default is 75 % of the
// disk (memory) free when nats-server started; the stream itself is still empty.
std::string resources_hint(jsErrCode code, const StreamWanted &w) {
    if (code != JSStorageResourcesExceededErr && code != JSMemoryResourcesExceededErr &&
        code != JSInsufficientResourcesErr)
        return {};
    const char *limit = w.memory ? "max_memory_store" : "max_file_store";
    const char *free = w.memory ? "memory" : "disk";
    if (w.max_bytes <= 0)
        return std::string("nats-server has no JetStream ") + (w.memory ? "memory" : "storage") +
               " left for stream " + w.name + " (its " + limit +
               " is used up); free space, raise " + limit + ", or set jetstream.max_bytes: ";
    return "stream " + w.name + " reserves its whole max_bytes, " + fmt_bytes(w.max_bytes) +
           ", when it is created (jetstream.max_bytes; the DLQ stream takes the same, at most "
           "1 GiB), and nats-server has less than that left to reserve (its " + limit +
           ", by default 75 % of the " + free + " free when it started, minus what other "
           "streams reserve); lower jetstream.max_bytes or raise " + limit +
           " in the server's jetstream block: ";
}

void ensure_stream(Link &link, const StreamWanted &w, const sdk::Host &host) {
    jsStreamInfo *si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, link.js(), w.name.c_str(), nullptr, &code);
    if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) {
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        const char *subjects[] = {w.subject.c_str()};
        cfg.Name = w.name.c_str();
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = w.memory ? js_MemoryStorage : js_FileStorage;
        cfg.MaxBytes = w.max_bytes;
        cfg.MaxAge = w.max_age_ns;
        cfg.Duplicates = w.duplicates_ns;
        cfg.Replicas = w.replicas;
        cfg.Retention = js_LimitsPolicy;
        cfg.Discard = js_DiscardOld;
        jsStreamInfo *created = nullptr;
        code = static_cast<jsErrCode>(0);
        s = js_AddStream(&created, link.js(), &cfg, nullptr, &code);
        if (s != NATS_OK)
            throw ProvisionError(replicas_hint(link, s, code, w.replicas) +
                                     resources_hint(code, w) +
                                     js_error(s, code, "creating stream " + w.name),
                                 !transient(s, code));
        jsStreamInfo_Destroy(created);
        host.info("created stream " + w.name + " (subjects " + w.subject + ", " +
                  (w.memory ? "memory" : "file") + " storage, max_age " +
                  fmt_ns(w.max_age_ns) + ", duplicate window " + fmt_ns(w.duplicates_ns) + ")");
        return;
    }
    if (s != NATS_OK)
        throw ProvisionError(js_error(s, code, "looking up stream " + w.name),
                             !transient(s, code));

    jsStreamConfig *cfg = si->Config;
    bool want_memory = w.memory;
    bool is_memory = cfg->Storage == js_MemoryStorage;
    if (want_memory != is_memory) {
        std::string msg = "stream " + w.name + " exists with " +
                          (is_memory ? "memory" : "file") + " storage but the config asks for " +
                          (want_memory ? "memory" : "file") +
                          "; JetStream cannot change a stream's storage type (delete the stream "
                          "or set jetstream.storage = \"" + (is_memory ? "memory" : "file") +
                          "\")";
        jsStreamInfo_Destroy(si);
        throw ProvisionError(msg, true);
    }

    std::vector<std::string> changes;
    std::vector<const char *> subjects(cfg->Subjects, cfg->Subjects + cfg->SubjectsLen);
    const char **old_subjects = cfg->Subjects;
    int old_len = cfg->SubjectsLen;
    if (std::none_of(subjects.begin(), subjects.end(),
                     [&](const char *x) { return w.subject == x; })) {
        subjects.push_back(w.subject.c_str());
        changes.push_back("subjects += " + w.subject);
    }
    if (cfg->MaxBytes != w.max_bytes) {
        changes.push_back("max_bytes " + std::to_string(cfg->MaxBytes) + " -> " +
                          std::to_string(w.max_bytes));
        cfg->MaxBytes = w.max_bytes;
    }
    if (cfg->MaxAge != w.max_age_ns) {
        changes.push_back("max_age " + fmt_ns(cfg->MaxAge) + " -> " + fmt_ns(w.max_age_ns));
        cfg->MaxAge = w.max_age_ns;
    }
    if (cfg->Duplicates != w.duplicates_ns) {
        changes.push_back("duplicate_window " + fmt_ns(cfg->Duplicates) + " -> " +
                          fmt_ns(w.duplicates_ns));
        cfg->Duplicates = w.duplicates_ns;
    }
    if (cfg->Replicas != w.replicas && !(cfg->Replicas == 0 && w.replicas == 1)) {
        changes.push_back("replicas " + std::to_string(cfg->Replicas) + " -> " +
                          std::to_string(w.replicas));
        cfg->Replicas = w.replicas;
    }
    if (changes.empty()) {
        jsStreamInfo_Destroy(si);
        return;
    }
    cfg->Subjects = subjects.data();
    cfg->SubjectsLen = static_cast<int>(subjects.size());
    jsStreamInfo *updated = nullptr;
    code = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&updated, link.js(), cfg, nullptr, &code);
    cfg->Subjects = old_subjects; // owned by si
    cfg->SubjectsLen = old_len;
    jsStreamInfo_Destroy(si);
    std::string what;
    for (const auto &c : changes) what += (what.empty() ? "" : ", ") + c;
    if (s != NATS_OK)
        throw ProvisionError(replicas_hint(link, s, code, w.replicas) + resources_hint(code, w) +
                                 js_error(s, code, "updating stream " + w.name + " (" + what + ")"),
                             !transient(s, code));
    jsStreamInfo_Destroy(updated);
    host.info("updated stream " + w.name + ": " + what);
}

} // namespace

void provision_streams(Link &link, const NatsConfig &config, const sdk::Host &host) {
    ensure_stream(link,
                  StreamWanted{config.stream_name, config.subject_prefix + ".>", config.max_bytes,
                               config.max_age_ns(), config.duplicates_ns(), config.replicas,
                               config.memory_storage},
                  host);
    // The DLQ keeps its entries until they are replayed or purged (no max_age). It should stay
    // small, and JetStream reserves max_bytes up front, so it gets the stream's max_bytes
    // capped at 1 GiB.
    constexpr int64_t dlq_cap = 1LL << 30;
    int64_t dlq_bytes = config.max_bytes < 0 ? dlq_cap : std::min(config.max_bytes, dlq_cap);
    ensure_stream(link,
                  StreamWanted{config.dlq_stream, config.dlq_prefix + ".>", dlq_bytes, 0,
                               config.duplicates_ns(), config.replicas, config.memory_storage},
                  host);
}

int64_t provision_consumer(Link &link, const NatsConfig &config, const std::string &durable,
                           const std::string &filter_subject, const sdk::Host &host) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = config.ack_wait_secs * 1'000'000'000LL;
    // Unlimited on the server; the observer dead-letters at config.max_deliver itself
    // (pull_consumer.cpp, settle()). With a server-side limit JetStream stops delivering a
    // message whose last delivery was never settled (its worker died, or the delivery was lost
    // with a consumer leader) and says so only in an advisory: the event then reaches the DLQ
    // through the safety net at best, never having been attempted, and is lost when the
    // advisory is missed. nats-server 2.9 refuses -1 beside a BackOff list ("max deliver is
    // required to be > length of backoff values"), so there the limit is one no event reaches.
    cc.MaxDeliver = config.backoff_secs.empty() ? -1 : std::numeric_limits<int32_t>::max();
    cc.MaxAckPending = config.max_ack_pending;
    cc.MaxWaiting = 512;
    if (!filter_subject.empty()) cc.FilterSubject = filter_subject.c_str();
    std::vector<int64_t> backoff;
    for (double b : config.backoff_secs) backoff.push_back(static_cast<int64_t>(b * 1e9));
    if (!backoff.empty()) {
        cc.BackOff = backoff.data();
        cc.BackOffLen = static_cast<int>(backoff.size());
    }

    jsConsumerInfo *ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetConsumerInfo(&ci, link.js(), config.stream_name.c_str(), durable.c_str(),
                                      nullptr, &code);
    bool exists = s == NATS_OK;
    if (!exists && s != NATS_NOT_FOUND && code != JSConsumerNotFoundErr)
        throw ProvisionError(js_error(s, code, "looking up consumer " + durable),
                             !transient(s, code));
    std::string what;
    if (exists) {
        const jsConsumerConfig *old = ci->Config;
        auto note = [&](const std::string &c) { what += (what.empty() ? "" : ", ") + c; };
        if (old->AckWait != cc.AckWait && backoff.empty())
            note("ack_wait " + fmt_ns(old->AckWait) + " -> " + fmt_ns(cc.AckWait));
        if (old->MaxDeliver != cc.MaxDeliver)
            note("max_deliver " + std::to_string(old->MaxDeliver) + " -> " +
                 std::to_string(cc.MaxDeliver));
        if (old->MaxAckPending != cc.MaxAckPending)
            note("max_ack_pending " + std::to_string(old->MaxAckPending) + " -> " +
                 std::to_string(cc.MaxAckPending));
        bool same_backoff = old->BackOffLen == cc.BackOffLen &&
                            std::equal(backoff.begin(), backoff.end(), old->BackOff);
        if (!same_backoff) note("backoff changed");
        std::string old_filter = old->FilterSubject ? old->FilterSubject : "";
        if (old_filter != filter_subject)
            note("filter_subject \"" + old_filter + "\" -> \"" + filter_subject + "\"");
        if (old->AckPolicy != js_AckExplicit || old->DeliverSubject != nullptr) {
            std::string msg = "consumer " + durable + " on stream " + config.stream_name +
                              " exists but is not a pull consumer with explicit acks; delete it "
                              "or choose another consumer name";
            jsConsumerInfo_Destroy(ci);
            throw ProvisionError(msg, true);
        }
        jsConsumerInfo_Destroy(ci);
        ci = nullptr;
        if (what.empty()) {
            s = js_GetConsumerInfo(&ci, link.js(), config.stream_name.c_str(), durable.c_str(),
                                   nullptr, &code);
        } else {
            code = static_cast<jsErrCode>(0);
            s = js_UpdateConsumer(&ci, link.js(), config.stream_name.c_str(), &cc, nullptr, &code);
        }
    } else {
        code = static_cast<jsErrCode>(0);
        s = js_AddConsumer(&ci, link.js(), config.stream_name.c_str(), &cc, nullptr, &code);
    }
    if (s != NATS_OK)
        throw ProvisionError(js_error(s, code, (exists ? "updating consumer " : "creating consumer ") +
                                                   durable),
                             !transient(s, code));
    int64_t ack_wait_ms = ci->Config->AckWait / 1'000'000;
    jsConsumerInfo_Destroy(ci);
    if (!exists)
        host.info("created durable consumer " + durable + " on stream " + config.stream_name);
    else if (!what.empty())
        host.info("updated durable consumer " + durable + ": " + what);
    return ack_wait_ms > 0 ? ack_wait_ms : config.ack_wait_secs * 1000;
}

} // namespace fraiseql_observer::nats_transport
