// A NOTIFY payload becoming an event, as the notify source and the host do it: libpq hands the
// payload over as a C string (so it ends at the first NUL; PostgreSQL refuses payloads of 8000
// bytes or more), the source reads its txid (pg_listen::txid_of_payload), the host normalises it
// (host::normalize_event, exactly as pipeline.cpp calls it). Properties:
//  - neither step throws;
//  - a payload seen twice (NOTIFY re-sent, or re-emitted after a RETRY) gets the same event id,
//    also when the source knew no txid; two sources never derive the same id for one payload;
//  - the body's txid is the payload's integer txid, else the one the source read;
//  - an accepted event's body is valid JSON carrying the event's own fields.
#include "event.hpp"
#include "fuzz_check.hpp"
#include "json_text.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <string>

namespace fraiseql_observer::pg_listen {
int64_t txid_of_payload(const std::string &payload); // notify_reader.hpp
}

using fraiseql_observer::host::EventData;
using fraiseql_observer::host::normalize_event;
using fraiseql_observer::host::Rejection;
using fobs_fuzz::shown;
using json = nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // PGnotify::extra: a NUL-terminated string shorter than 8000 bytes.
    const char *bytes = reinterpret_cast<const char *>(data);
    const std::string payload(bytes, ::strnlen(bytes, std::min<size_t>(size, 7999)));

    const int64_t txid = fraiseql_observer::pg_listen::txid_of_payload(payload);
    auto r1 = normalize_event(payload, "app_db", txid, 1'700'000'000'000'000'000ull);
    if (std::holds_alternative<Rejection>(r1)) {
        FUZZ_CHECK(!std::get<Rejection>(r1).reason.empty());
        return 0;
    }
    const EventData &ev = std::get<EventData>(r1);
    FUZZ_CHECK(fraiseql_observer::host::json_valid(ev.body), shown(ev.body));
    const json body = json::parse(ev.body);
    FUZZ_CHECK(body.at("id") == ev.id && body.at("entity_type") == ev.entity_type &&
                   body.at("operation") == ev.operation && body.at("entity_id") == ev.entity_id &&
                   body.at("source") == "app_db",
               shown(ev.body));

    // The txid: the payload's own integer wins, else the one the source read (-1: none).
    const json p = json::parse(payload);
    const auto tx = p.find("txid");
    if (tx != p.end() && tx->is_number_integer())
        FUZZ_CHECK(body["txid"] == *tx, body["txid"].dump() + " vs " + tx->dump());
    else if (txid >= 0)
        FUZZ_CHECK(body["txid"] == txid, body["txid"].dump() + " vs " + std::to_string(txid));
    else
        FUZZ_CHECK(body["txid"].is_null(), body["txid"].dump());

    // Re-delivered later (a RETRY re-emits the same bytes): same id, so JetStream de-duplicates.
    auto r2 = normalize_event(payload, "app_db", txid, 1'700'000'123'000'000'000ull);
    FUZZ_CHECK(std::holds_alternative<EventData>(r2) && std::get<EventData>(r2).id == ev.id);

    // A derived id (no usable `id` in the payload) depends on the source: the same NOTIFY text
    // on two databases is two events.
    const auto pid = p.find("id");
    // (numbers count as the payload's own id: integers are; others are skipped, not judged)
    const bool own_id =
        pid != p.end() && ((pid->is_string() && !pid->get<std::string>().empty()) || pid->is_number());
    if (!own_id) {
        auto other = normalize_event(payload, "other_db", txid, 1'700'000'000'000'000'000ull);
        FUZZ_CHECK(std::holds_alternative<EventData>(other) && std::get<EventData>(other).id != ev.id,
                   shown(payload));
    }
    return 0;
}
