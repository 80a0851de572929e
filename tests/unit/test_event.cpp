#include "event.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace fraiseql_observer::host;
using json = nlohmann::json;

namespace {
constexpr uint64_t k_now = 1795753431123456000ull; // 2026-11-27T04:23:51.123456Z

EventData ok(std::string_view payload, int64_t txid = -1) {
    auto r = normalize_event(payload, "app_db", txid, k_now);
    if (auto *rej = std::get_if<Rejection>(&r)) ADD_FAILURE() << "rejected: " << rej->reason;
    return std::holds_alternative<EventData>(r) ? std::get<EventData>(r) : EventData{};
}

std::string rejected(std::string_view payload) {
    auto r = normalize_event(payload, "app_db", -1, k_now);
    if (std::holds_alternative<EventData>(r)) {
        ADD_FAILURE() << "accepted: " << payload;
        return {};
    }
    return std::get<Rejection>(r).reason;
}
} // namespace

TEST(Event, reference_trigger_payload_becomes_canonical_event) {
    // What the reference document's notify_order_created trigger sends.
    EventData e = ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":"8e5b","timestamp":"2026-11-27T04:23:51.1+00:00"})", 812345);
    EXPECT_EQ(e.entity_type, "Order");
    EXPECT_EQ(e.operation, "INSERT");
    EXPECT_EQ(e.entity_id, "8e5b");
    EXPECT_EQ(e.source, "app_db");
    json body = json::parse(e.body);
    EXPECT_EQ(body["id"], e.id);
    EXPECT_EQ(body["txid"], 812345);
    EXPECT_EQ(body["timestamp"], "2026-11-27T04:23:51.1+00:00");
    EXPECT_TRUE(body["entity"].is_null());
    EXPECT_TRUE(body["changes"].is_null());
    EXPECT_EQ(body["source"], "app_db");
    // Canonical field order.
    EXPECT_EQ(e.body.find("\"id\""), 1u);
}

TEST(Event, derived_id_is_stable_and_depends_on_source_txid_and_bytes) {
    const char *p = R"({"entity_type":"Order","operation":"INSERT","entity_id":"1"})";
    std::string a = ok(p, 7).id, b = ok(p, 7).id;
    EXPECT_EQ(a, b);
    EXPECT_NE(a, ok(p, 8).id);
    EXPECT_NE(a, ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":"2"})", 7).id);
    auto other_source = normalize_event(p, "other_db", 7, k_now);
    EXPECT_NE(a, std::get<EventData>(other_source).id);
    // UUID v5 text form.
    ASSERT_EQ(a.size(), 36u);
    EXPECT_EQ(a[14], '5');
    EXPECT_TRUE(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');
}

TEST(Event, payload_id_is_kept) {
    EXPECT_EQ(ok(R"({"id":"abc","entity_type":"Order","operation":"INSERT","entity_id":"1"})").id, "abc");
}

TEST(Event, fraiseql_names_are_normalised_and_operation_upper_cased) {
    EventData e = ok(R"({"entity_type":"User","event_type":"update","entity_id":5,"data":{"id":5,"name":"x"}})");
    EXPECT_EQ(e.operation, "UPDATE");
    EXPECT_EQ(e.entity_id, "5");
    json body = json::parse(e.body);
    EXPECT_EQ(body["entity"]["name"], "x");
    EXPECT_FALSE(body.contains("data"));
    EXPECT_FALSE(body.contains("event_type"));
}

TEST(Event, extra_fields_are_kept_after_the_standard_ones) {
    json body = json::parse(ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":"1","tenant":"t1"})").body);
    EXPECT_EQ(body["tenant"], "t1");
}

TEST(Event, malformed_payloads_are_rejected_with_a_reason) {
    EXPECT_NE(rejected("{not json").find("not valid JSON"), std::string::npos);
    EXPECT_NE(rejected("[1,2]").find("not a JSON object"), std::string::npos);
    EXPECT_NE(rejected(R"({"operation":"INSERT","entity_id":"1"})").find("missing entity_type"), std::string::npos);
    EXPECT_NE(rejected(R"({"entity_type":"Order","entity_id":"1"})").find("missing operation"), std::string::npos);
    EXPECT_NE(rejected(R"({"entity_type":"Order","operation":"INSERT"})").find("missing entity_id"), std::string::npos);
    EXPECT_NE(rejected(R"({"entity_type":"Or.der","operation":"INSERT","entity_id":"1"})").find("subject token"), std::string::npos);
    EXPECT_NE(rejected(R"({"entity_type":"Order","operation":"IN SERT","entity_id":"1"})").find("subject token"), std::string::npos);
    EXPECT_NE(rejected(R"({"entity_type":"Order>","operation":"INSERT","entity_id":"1"})").find("subject token"), std::string::npos);
    EXPECT_NE(rejected(R"({"entity_type":"","operation":"INSERT","entity_id":"1"})").find("subject token"), std::string::npos);
    EXPECT_NE(rejected(R"({"entity_type":7,"operation":"INSERT","entity_id":"1"})").find("not a string"), std::string::npos);
    EXPECT_NE(rejected(R"({"entity_type":"Order","operation":"INSERT","entity_id":{}})").find("entity_id"), std::string::npos);
    EXPECT_FALSE(rejected("").empty());
}

TEST(Event, subject_tokens) {
    EXPECT_TRUE(valid_subject_token("Order"));
    EXPECT_TRUE(valid_subject_token("order_line-2"));
    for (const char *bad : {"", "a.b", "a*", ">", "a b", "a\tb", "a\x01"}) EXPECT_FALSE(valid_subject_token(bad)) << bad;
}

TEST(Event, timestamp_defaults_to_now_in_rfc3339_utc) {
    json body = json::parse(ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":"1"})").body);
    EXPECT_EQ(body["timestamp"], "2026-11-27T04:23:51.123456Z");
    EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000000Z");
}

TEST(Event, body_is_the_canonical_object_with_escaping_and_extras_in_order) {
    EventData e = ok(R"({"z_extra":1,"entity_type":"Order","operation":"INSERT","entity_id":"q\"1","a_extra":{"k":[1,2]},"source":"ignored","data":{"n":"é"}})", 5);
    json body = json::parse(e.body);
    EXPECT_EQ(body["entity_id"], "q\"1");
    EXPECT_EQ(body["source"], "app_db");
    EXPECT_EQ(body["entity"]["n"], "é");
    EXPECT_EQ(body["a_extra"]["k"][1], 2);
    EXPECT_LT(e.body.find("\"z_extra\""), e.body.find("\"a_extra\"")); // producer's order
    EXPECT_GT(e.body.find("\"z_extra\""), e.body.find("\"source\""));  // after the standard fields
    EXPECT_EQ(e.body.find("\"data\""), std::string::npos);
    EXPECT_EQ(body.size(), 11u);
}

TEST(Event, producer_values_are_copied_as_written_so_numbers_keep_every_digit) {
    // A tree would turn these into doubles: 1.2345678901234568e+16, 42.5, 1.2345678901234568e+29.
    EventData e = ok(R"({"entity_type":"Order","operation":"UPDATE","entity_id":123456789012345678901234567890,
        "entity": {"total": 12345678901234567.89, "price": 42.50, "big": 123456789012345678901234567890, "e": 1E+2},
        "changes": {"total": {"old": 0.10, "new": 12345678901234567.89}}, "weight": 1.000})");
    EXPECT_EQ(e.entity_id, "123456789012345678901234567890");
    EXPECT_NE(e.body.find(R"("entity":{"total":12345678901234567.89,"price":42.50,"big":123456789012345678901234567890,"e":1E+2})"),
              std::string::npos) << e.body;
    EXPECT_NE(e.body.find(R"("changes":{"total":{"old":0.10,"new":12345678901234567.89}})"), std::string::npos) << e.body;
    EXPECT_NE(e.body.find(R"("weight":1.000)"), std::string::npos) << e.body;
    EXPECT_TRUE(json::accept(e.body));
}

TEST(Event, whitespace_between_tokens_is_dropped_and_kept_inside_strings) {
    // PostgreSQL's jsonb text output puts a space after every ':' and ','.
    EventData e = ok("{\"entity_type\": \"Order\", \"operation\": \"INSERT\", \"entity_id\": \"1\",\n"
                     "  \"entity\": {\"note\": \"two  spaces, a\\ttab\", \"tags\": [1, 2,\t3]}, \"x\" : { } }");
    EXPECT_NE(e.body.find(R"("entity":{"note":"two  spaces, a\ttab","tags":[1,2,3]})"), std::string::npos) << e.body;
    EXPECT_NE(e.body.find(R"("x":{})"), std::string::npos) << e.body;
    EXPECT_EQ(json::parse(e.body)["entity"]["note"], "two  spaces, a\ttab");
}

TEST(Event, a_repeated_key_keeps_its_last_value_in_its_first_place) {
    EventData e = ok(R"({"entity_type":"A","z":1,"operation":"insert","entity_id":"1","z":2,"entity_type":"Order","y":null})");
    EXPECT_EQ(e.entity_type, "Order");
    json body = json::parse(e.body);
    EXPECT_EQ(body["z"], 2);
    EXPECT_TRUE(body["y"].is_null());
    EXPECT_EQ(e.body.find("\"z\""), e.body.rfind("\"z\"")) << "once";
    EXPECT_LT(e.body.find("\"z\""), e.body.find("\"y\""));
}

TEST(Event, escaped_keys_and_values_are_decoded_for_the_standard_fields) {
    EventData e = ok(R"({"entity\u005ftype":"Ord\u0065r","operation":"INSERT","entity_id":"a\"b","id":"e\/1","k\"ey":"v"})");
    EXPECT_EQ(e.entity_type, "Order");
    EXPECT_EQ(e.entity_id, "a\"b");
    EXPECT_EQ(e.id, "e/1");
    json body = json::parse(e.body);
    EXPECT_EQ(body["k\"ey"], "v");
    EXPECT_EQ(body["entity_type"], "Order");
    // Written back escaped: quotes, backslashes and control characters.
    EventData c = ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":"x\u0001\n\t\\y\"\u007f\u00e9"})");
    EXPECT_EQ(c.entity_id, "x\x01\n\t\\y\"\x7f\xc3\xa9");
    EXPECT_EQ(json::parse(c.body)["entity_id"], c.entity_id);
}

TEST(Event, deep_nesting_is_copied_without_recursion) {
    constexpr int depth = 200000;
    std::string deep = std::string(depth, '[') + "1" + std::string(depth, ']');
    EventData e = ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":"1","entity":)" + deep + "}");
    EXPECT_NE(e.body.find(deep), std::string::npos);
    EXPECT_NE(rejected(R"({"entity_type":"Order","operation":"INSERT","entity_id":"1","entity":)" + deep + "]}"), "");
}

TEST(Event, integers_in_id_fields_are_canonical_when_they_fit_64_bits_and_kept_when_longer) {
    EXPECT_EQ(ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":-0})").entity_id, "0");
    EXPECT_EQ(ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":18446744073709551615})").entity_id,
              "18446744073709551615");
    // A numeric(38) key: a JSON tree made it a double and refused it; now it is the id as written.
    EXPECT_EQ(ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":123456789012345678901234567890})").entity_id,
              "123456789012345678901234567890");
    // A payload txid must fit 64 bits to win over the one the source knows.
    EXPECT_EQ(json::parse(ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":"1","txid":99999999999999999999999})", 42).body)["txid"], 42);
    EXPECT_EQ(json::parse(ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":"1","txid":-0})", 42).body)["txid"], 0);
    EXPECT_EQ(json::parse(ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":"1","txid":"7"})", 42).body)["txid"], 42);
}

TEST(Event, a_byte_order_mark_is_skipped_and_the_derived_id_hashes_the_bytes_as_received) {
    const std::string plain = R"({"entity_type":"Order","operation":"INSERT","entity_id":"1"})";
    EventData with_bom = ok("\xEF\xBB\xBF" + plain, 7);
    EXPECT_EQ(with_bom.entity_type, "Order");
    EXPECT_NE(with_bom.id, ok(plain, 7).id);
    EXPECT_EQ(with_bom.id, ok("\xEF\xBB\xBF" + plain, 7).id);
}

TEST(Event, numbers_a_double_cannot_hold_are_rejected_and_nested_values_are_copied_as_written) {
    EXPECT_NE(rejected(R"({"entity_type":"Order","operation":"INSERT","entity_id":"1","entity":{"x":1e400}})"), "");
    // Repeated keys inside a value are the producer's (jsonb never has them; hand-built json may).
    EventData e = ok(R"({"entity_type":"Order","operation":"INSERT","entity_id":"1","entity":{"a":1,"a":2}})");
    EXPECT_NE(e.body.find(R"("entity":{"a":1,"a":2})"), std::string::npos) << e.body;
}

// Issue 12: the event model bounds and checks what later goes on the wire (NATS subject and
// headers, HTTP headers, log lines); a violation is a rejection that names the limit, never a
// truncation.
namespace {
// A good payload with one member replaced (a repeated key keeps its last value), as text so that
// numbers stay as written.
std::string payload_with(const std::string &member_json) {
    return R"({"entity_type":"Order","operation":"INSERT","entity_id":"1",)" + member_json + "}";
}
} // namespace

TEST(Event, entity_type_longer_than_the_subject_token_limit_is_rejected_not_truncated) {
    std::string r = rejected(payload_with(R"("entity_type":")" + std::string(4100, 'P') + "\""));
    EXPECT_NE(r.find("entity_type is 4100 bytes, more than the 128 allowed"), std::string::npos) << r;
    EXPECT_NE(r.find("NATS subject"), std::string::npos) << r;
    r = rejected(payload_with(R"("operation":")" + std::string(129, 'X') + "\""));
    EXPECT_NE(r.find("operation is 129 bytes, more than the 128 allowed"), std::string::npos) << r;
    // At the limit: accepted, whole.
    EXPECT_EQ(ok(payload_with(R"("entity_type":")" + std::string(128, 'P') + "\"")).entity_type, std::string(128, 'P'));
    EXPECT_EQ(ok(payload_with(R"("operation":")" + std::string(128, 'x') + "\"")).operation, std::string(128, 'X'));
}

TEST(Event, id_with_line_breaks_or_any_control_character_is_rejected) {
    for (const char *bad : {R"("inj-1\r\nX-Injected: yes")",
                            R"("a\r\nContent-Length: 0\r\n\r\nPOST /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")",
                            R"("line\n2026-01-01T00:00:00.000000Z error [observer] FORGED LINE")", R"("tab\there")",
                            R"("del\u007f")", R"("nel\u0085")", R"("csi\u009b")", R"("bell\u0007")"}) {
        std::string r = rejected(payload_with(std::string(R"("id":)") + bad));
        EXPECT_NE(r.find("id contains a control character"), std::string::npos) << bad << " -> " << r;
        EXPECT_NE(r.find("must be printable"), std::string::npos) << r;
    }
    EXPECT_NE(rejected(payload_with(R"("id":"inj-1\r\nX")")).find("(0x0d at byte 5)"), std::string::npos);
    EXPECT_NE(rejected(payload_with(R"("id":"nel\u0085")")).find("(0x85 at byte 3)"), std::string::npos);
}

TEST(Event, id_with_nul_is_rejected_so_two_ids_never_collapse_into_one) {
    std::string a = rejected(payload_with(R"("id":"nulid\u0000aaa")"));
    std::string b = rejected(payload_with(R"("id":"nulid\u0000bbb")"));
    EXPECT_NE(a.find("(0x00 at byte 5)"), std::string::npos) << a;
    EXPECT_NE(b.find("control character"), std::string::npos) << b;
}

TEST(Event, id_length_and_spacing_are_bounded) {
    std::string r = rejected(payload_with(R"("id":")" + std::string(201, 'i') + "\""));
    EXPECT_NE(r.find("id is 201 bytes, more than the 200 allowed"), std::string::npos) << r;
    EXPECT_EQ(ok(payload_with(R"("id":")" + std::string(200, 'i') + "\"")).id, std::string(200, 'i'));
    EXPECT_NE(rejected(payload_with(R"("id":" lead")")).find("starts or ends with a space"), std::string::npos);
    EXPECT_NE(rejected(payload_with(R"("id":"trail ")")).find("starts or ends with a space"), std::string::npos);
    // Printable text, inner spaces and non-ASCII letters are fine.
    EXPECT_EQ(ok(payload_with(R"("id":"order 42/é-✓:x")")).id, "order 42/é-✓:x");
    // A numeric id too long for 64 bits is kept as written, and bounded the same way.
    EXPECT_NE(rejected(payload_with(R"("id":)" + std::string(201, '9'))).find("more than the 200 allowed"), std::string::npos);
}

TEST(Event, entity_id_is_bounded_and_nul_free) {
    std::string r = rejected(payload_with(R"("entity_id":")" + std::string(1025, 'e') + "\""));
    EXPECT_NE(r.find("entity_id is 1025 bytes, more than the 1024 allowed"), std::string::npos) << r;
    EXPECT_EQ(ok(payload_with(R"("entity_id":")" + std::string(1024, 'e') + "\"")).entity_id, std::string(1024, 'e'));
    r = rejected(payload_with(R"("entity_id":"a\u0000b")"));
    EXPECT_NE(r.find("entity_id contains a NUL character (byte 1)"), std::string::npos) << r;
}

TEST(Event, subject_tokens_refuse_c1_controls_and_accept_other_unicode) {
    EXPECT_FALSE(valid_subject_token("Or\xC2\x85" "der"));
    EXPECT_FALSE(valid_subject_token("\xC2\x9b"));
    EXPECT_TRUE(valid_subject_token("Bestellung\xC3\xA9"));
    EXPECT_NE(rejected(payload_with(R"("entity_type":"Or\u0085der")")).find("not a valid NATS subject token"), std::string::npos);
}
