#include "js_reader.hpp"

#include <nats/nats.h>

#include <cstdlib>
#include <stdexcept>

namespace fobs_test {

JsReader::JsReader(const std::string &url) {
    natsOptions *o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url.c_str());
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 200);
    natsOptions_SetRetryOnFailedConnect(o, true, nullptr, nullptr);
    natsStatus s = natsConnection_Connect(&nc_, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) throw std::runtime_error("JsReader: cannot connect to " + url);
    natsConnection_JetStream(&js_, nc_, nullptr);
}

JsReader::~JsReader() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
}

std::vector<JsReader::Stored> JsReader::messages(const std::string &stream) {
    std::vector<Stored> out;
    jsStreamInfo *si = nullptr;
    if (js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, nullptr) != NATS_OK) return out;
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq, n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    out.reserve(n);
    for (uint64_t seq = first; n > 0 && seq <= last; ++seq) {
        natsMsg *m = nullptr;
        if (js_GetMsg(&m, js_, stream.c_str(), seq, nullptr, nullptr) != NATS_OK) continue;
        Stored st{seq, natsMsg_GetSubject(m), std::string(natsMsg_GetData(m), natsMsg_GetDataLength(m)), {}};
        const char **keys = nullptr;
        int count = 0;
        if (natsMsgHeader_Keys(m, &keys, &count) == NATS_OK) {
            for (int i = 0; i < count; ++i) {
                const char *v = nullptr;
                natsMsgHeader_Get(m, keys[i], &v);
                st.headers[keys[i]] = v ? v : "";
            }
            free(keys);
        }
        natsMsg_Destroy(m);
        out.push_back(std::move(st));
    }
    return out;
}

uint64_t JsReader::count(const std::string &stream) {
    jsStreamInfo *si = nullptr;
    if (js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, nullptr) != NATS_OK) return 0;
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

std::string JsReader::consumer_filter(const std::string &stream, const std::string &consumer) {
    jsConsumerInfo *ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetConsumerInfo(&ci, js_, stream.c_str(), consumer.c_str(), nullptr, &code) != NATS_OK)
        throw std::runtime_error("no consumer " + consumer + " on " + stream);
    std::string filter = ci->Config->FilterSubject ? ci->Config->FilterSubject : "";
    jsConsumerInfo_Destroy(ci);
    return filter;
}

int64_t JsReader::consumer_max_deliver(const std::string &stream, const std::string &consumer) {
    jsConsumerInfo *ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetConsumerInfo(&ci, js_, stream.c_str(), consumer.c_str(), nullptr, &code) != NATS_OK)
        throw std::runtime_error("no consumer " + consumer + " on " + stream);
    int64_t max_deliver = ci->Config->MaxDeliver;
    jsConsumerInfo_Destroy(ci);
    return max_deliver;
}

} // namespace fobs_test
