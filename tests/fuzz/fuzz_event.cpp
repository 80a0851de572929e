// Event normalisation and the JSON checker (host/event.cpp, host/json_text.cpp) on arbitrary
// bytes. Properties:
//  - json_valid agrees with nlohmann::json::accept on every text without a NUL byte, and refuses
//    every text with one (nlohmann stops reading at a NUL; we refuse the text);
//  - normalize_event never throws, rejects every payload json_valid refuses, and an accepted
//    event's body is valid JSON (for both checkers) whose fields are the event's fields, in the
//    canonical order, with entity / changes / every extra member equal (as JSON values) to what
//    the payload held;
//  - what reaches the wire is bounded and header-safe: entity_type / operation within
//    k_max_subject_token_bytes, an id of at most k_max_event_id_bytes without control characters
//    (C0 incl. CR, LF, NUL; DEL; C1), an entity_id within k_max_entity_id_bytes without NUL;
//  - the same payload normalised again (later) gets the same id.
#include "event.hpp"
#include "fuzz_check.hpp"
#include "json_text.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

using fraiseql_observer::host::EventData;
using fraiseql_observer::host::json_valid;
using fraiseql_observer::host::normalize_event;
using fraiseql_observer::host::Rejection;
using fraiseql_observer::host::valid_subject_token;
using fobs_fuzz::shown;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

// The member `name` (else `alias`) that normalize_event reads: the last value of the key, skipping
// JSON null; nullptr when absent.
const json *payload_field(const json &p, const char *name, const char *alias = nullptr) {
    for (const char *k : {name, alias}) {
        if (!k) continue;
        auto it = p.find(k);
        if (it != p.end() && !it->is_null()) return &*it;
    }
    return nullptr;
}

void check_event(std::string_view payload, const EventData &ev, std::string_view source,
                 const json &p) {
    FUZZ_CHECK(json_valid(ev.body), "body " + shown(ev.body));
    FUZZ_CHECK(json::accept(ev.body), "body " + shown(ev.body));
    const ojson b = ojson::parse(ev.body);
    FUZZ_CHECK(b.is_object());
    static const char *canonical[] = {"id",   "entity_type", "operation", "entity_id", "timestamp",
                                      "txid", "entity",      "changes",   "source"};
    size_t k = 0;
    for (auto it = b.begin(); it != b.end() && k < 9; ++it, ++k)
        FUZZ_CHECK(it.key() == canonical[k], "key " + std::to_string(k) + " is " + it.key());
    FUZZ_CHECK(k == 9, "body has " + std::to_string(k) + " keys");

    FUZZ_CHECK(!ev.id.empty());
    FUZZ_CHECK(b["id"] == ev.id, shown(ev.id));
    FUZZ_CHECK(b["entity_type"] == ev.entity_type);
    FUZZ_CHECK(b["operation"] == ev.operation);
    FUZZ_CHECK(b["entity_id"] == ev.entity_id);
    FUZZ_CHECK(b["source"] == source && ev.source == source);
    FUZZ_CHECK(b["timestamp"].is_string());
    FUZZ_CHECK(b["txid"].is_null() || b["txid"].is_number_integer(), b["txid"].dump());
    FUZZ_CHECK(valid_subject_token(ev.entity_type), shown(ev.entity_type));
    FUZZ_CHECK(valid_subject_token(ev.operation), shown(ev.operation));
    for (char c : ev.operation) FUZZ_CHECK(!(c >= 'a' && c <= 'z'), "operation " + shown(ev.operation));
    FUZZ_CHECK(!ev.entity_id.empty());
    // What goes on the wire is bounded and header-safe (issue 12): the subject stays far below
    // NATS's 4096-byte control line, the id is one short printable line, no NUL anywhere.
    using namespace fraiseql_observer::host;
    FUZZ_CHECK(ev.entity_type.size() <= k_max_subject_token_bytes && ev.operation.size() <= k_max_subject_token_bytes);
    FUZZ_CHECK(ev.id.size() <= k_max_event_id_bytes, shown(ev.id));
    FUZZ_CHECK(ev.entity_id.size() <= k_max_entity_id_bytes && ev.entity_id.find('\0') == std::string::npos,
               shown(ev.entity_id));
    for (size_t i = 0; i < ev.id.size(); ++i) {
        const auto c = static_cast<unsigned char>(ev.id[i]);
        const bool c1 = c == 0xC2 && i + 1 < ev.id.size() && static_cast<unsigned char>(ev.id[i + 1]) <= 0x9f &&
                        static_cast<unsigned char>(ev.id[i + 1]) >= 0x80;
        FUZZ_CHECK(c >= 0x20 && c != 0x7f && !c1, "id " + shown(ev.id));
    }

    // The producer's values travel unchanged (as JSON values; whitespace may go).
    const json body = json::parse(ev.body);
    const json *entity = payload_field(p, "entity", "data");
    FUZZ_CHECK(entity ? body["entity"] == *entity : body["entity"].is_null(),
               "entity " + body["entity"].dump() + " in " + shown(payload));
    const json *changes = payload_field(p, "changes");
    FUZZ_CHECK(changes ? body["changes"] == *changes : body["changes"].is_null());
    if (const json *ts = payload_field(p, "timestamp"); ts && ts->is_string())
        FUZZ_CHECK(body["timestamp"] == *ts);
    static const char *standard[] = {"id",     "entity_type", "operation", "entity_id",  "timestamp", "txid",
                                     "entity", "changes",     "source",    "event_type", "data"};
    for (auto it = p.begin(); it != p.end(); ++it) {
        bool is_standard = false;
        for (const char *s : standard) is_standard |= it.key() == s;
        if (is_standard) continue;
        FUZZ_CHECK(body.contains(it.key()) && body[it.key()] == it.value(), "extra member " + shown(it.key()));
    }
    if (const json *id = payload_field(p, "id"); id && id->is_string() && !id->get<std::string>().empty())
        FUZZ_CHECK(ev.id == id->get<std::string>(), "id " + shown(ev.id));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view text(reinterpret_cast<const char *>(data), size);

    const bool ours = json_valid(text);
    if (text.find('\0') != std::string_view::npos) {
        FUZZ_CHECK(!ours, "json_valid accepted a text with a NUL byte");
    } else {
        const bool theirs = json::accept(text);
        FUZZ_CHECK(ours == theirs, std::string("json_valid ") + (ours ? "accepts" : "refuses") +
                                       " what nlohmann " + (theirs ? "accepts" : "refuses") + ": " +
                                       shown(text));
    }

    const std::string_view source = "fuzz_source";
    auto first = normalize_event(text, source, 42, 1'700'000'000'000'000'000ull);
    if (!ours) {
        FUZZ_CHECK(std::holds_alternative<Rejection>(first), "accepted invalid JSON " + shown(text));
        return 0;
    }
    if (auto *rej = std::get_if<Rejection>(&first)) {
        FUZZ_CHECK(!rej->reason.empty());
        return 0;
    }
    const EventData &ev = std::get<EventData>(first);
    const json p = json::parse(text);
    FUZZ_CHECK(p.is_object(), "a non-object became an event: " + shown(text));
    check_event(text, ev, source, p);

    // Seen again a minute later (a re-delivery): same event id, same fields.
    auto again = normalize_event(text, source, 42, 1'700'000'060'000'000'000ull);
    FUZZ_CHECK(std::holds_alternative<EventData>(again));
    const EventData &ev2 = std::get<EventData>(again);
    FUZZ_CHECK(ev2.id == ev.id && ev2.entity_type == ev.entity_type && ev2.operation == ev.operation &&
               ev2.entity_id == ev.entity_id);
    return 0;
}
