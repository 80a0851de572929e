// Test support: reads what a JetStream stream holds, straight from nats-server (cnats), so
// tests assert on what was stored rather than on what the observer says it did.
//
//   fobs_test::JsReader js(nats.url());
//   for (auto &m : js.messages("orders")) … m.subject, m.body, m.headers["Nats-Msg-Id"]
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

namespace fobs_test {

class JsReader {
  public:
    explicit JsReader(const std::string &url); // throws std::runtime_error when it cannot connect
    ~JsReader();
    JsReader(const JsReader &) = delete;
    JsReader &operator=(const JsReader &) = delete;

    struct Stored {
        uint64_t seq = 0;
        std::string subject, body;
        std::map<std::string, std::string> headers;
    };
    /// Every message the stream holds, in stream order (empty when the stream does not exist).
    std::vector<Stored> messages(const std::string &stream);
    /// How many messages the stream holds (0 when it does not exist or NATS is unreachable).
    uint64_t count(const std::string &stream);
    /// A durable consumer's FilterSubject ("" when it has none); throws when it does not exist.
    std::string consumer_filter(const std::string &stream, const std::string &consumer);
    /// A durable consumer's MaxDeliver as JetStream holds it (-1 = unlimited); throws when it
    /// does not exist.
    int64_t consumer_max_deliver(const std::string &stream, const std::string &consumer);
    /// The JetStream context, for the cnats calls a test needs beyond reading.
    jsCtx *js() const { return js_; }

  private:
    natsConnection *nc_ = nullptr;
    jsCtx *js_ = nullptr;
};

} // namespace fobs_test
