// What the NATS transport reads back about dead letters (plugins/nats_transport/dlq_fields.cpp):
// numeric DLQ headers, the event id of a DLQ entry (body "id", else the Nats-Msg-Id header
// "<id>:dlq:<seq>"), JetStream advisories, and the host's decode of a stored event body
// (decode_event_body, the fobs_host.decode_event service the consuming hot path uses). The input is used as each of these in turn. Properties:
//  - nothing throws or reads out of bounds on any bytes;
//  - header_u64 reads exactly the canonical decimals of 0..2^64-1 and refuses (0) anything else;
//  - dlq_event_id(body without id, "<id>:dlq:<seq>") gives back <id> for every id;
//  - an advisory written the way nats-server writes it reads back the same numbers and kind;
//  - on an event body the host built from the input (normalize_event), decode_event_body gives
//    back exactly the event's id, entity_type, operation, entity_id and source.
#include "dlq_fields.hpp"
#include "event.hpp"
#include "fuzz_check.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdint>
#include <string>

namespace nt = fraiseql_observer::nats_transport;
using fobs_fuzz::shown;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string text(reinterpret_cast<const char *>(data), size);

    // Numeric headers.
    const uint64_t n = nt::header_u64(text);
    {
        uint64_t expect = 0;
        bool digits = !text.empty();
        for (char c : text) digits &= c >= '0' && c <= '9';
        if (digits) {
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), expect);
            if (ec != std::errc()) expect = 0;
        }
        FUZZ_CHECK(n == expect, shown(text) + " -> " + std::to_string(n));
    }
    uint64_t seq = 0;
    for (size_t i = 0; i < size && i < 8; ++i) seq = seq << 8 | data[i];
    FUZZ_CHECK(nt::header_u64(std::to_string(seq)) == seq);

    // Event id of a DLQ entry: from the body when it has one, else from the header.
    (void)nt::dlq_event_id(text, text);
    const std::string hdr = text + ":dlq:" + std::to_string(seq);
    FUZZ_CHECK(nt::dlq_event_id(R"({"entity_type":"Order","operation":"INSERT"})", hdr) == text, shown(hdr));
    FUZZ_CHECK(nt::dlq_event_id("", hdr) == text);

    // Advisories: arbitrary bytes are read or refused, never thrown; a real one reads back.
    std::string error;
    if (auto a = nt::parse_advisory(text, error)) FUZZ_CHECK(error.empty());
    else FUZZ_CHECK(!error.empty());
    const bool max = seq & 1;
    const uint64_t deliveries = seq >> 48;
    const nlohmann::json adv = {
        {"type", max ? "io.nats.jetstream.advisory.v1.max_deliver" : "io.nats.jetstream.advisory.v1.terminated"},
        {"id", text.size() < 64 ? nlohmann::json(std::string(text.size(), 'x')) : nlohmann::json(nullptr)},
        {"stream", "FOBS"}, {"consumer", "worker"}, {"stream_seq", seq}, {"deliveries", deliveries}};
    error.clear();
    auto back = nt::parse_advisory(adv.dump(), error);
    FUZZ_CHECK(back && back->stream_seq == seq && back->deliveries == deliveries && back->max_deliveries == max,
               adv.dump() + " " + error);

    // The host's decode of a stored event body: never throws; on a body it built, exact.
    (void)fraiseql_observer::host::decode_event_body(text);
    auto r = fraiseql_observer::host::normalize_event(text, "src\"\\\n\xC3\xA9", -1, 0);
    if (auto *ev = std::get_if<fraiseql_observer::host::EventData>(&r)) {
        auto back = fraiseql_observer::host::decode_event_body(ev->body);
        auto *d = std::get_if<fraiseql_observer::host::EventData>(&back);
        FUZZ_CHECK(d != nullptr, shown(ev->body));
        FUZZ_CHECK(d->id == ev->id && d->entity_type == ev->entity_type && d->operation == ev->operation &&
                       d->entity_id == ev->entity_id && d->source == ev->source,
                   shown(ev->body));
        FUZZ_CHECK(nt::dlq_event_id(ev->body, "other:dlq:1") == ev->id);
    }
    return 0;
}
