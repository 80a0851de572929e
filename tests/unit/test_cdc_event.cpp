// CDC changes -> event payloads (SPEC §4, §6), from pgoutput bytes captured from a real
// PostgreSQL 15 (data/pgoutput/*.hex). Every payload is also checked to be valid JSON.
#include "pgoutput_samples.hpp"

#include <cdc_event.hpp>
#include <event.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <set>

namespace pg = fraiseql_observer::pg_listen;
namespace pgo = fraiseql_observer::pg_listen::pgoutput;
using json = nlohmann::json;
using namespace std::string_literals;
using pgoutput_samples::decode_all;
using pgoutput_samples::load;

namespace {

const pg::TxContext k_tx{"7301234567890123456", 0x16B3748, 0, 812345};

// The events of one captured sample, built the way the reader does: relations cached, each
// change numbered within its transaction.
struct Events {
    std::vector<std::string> raw;
    std::vector<json> parsed;
};

// The host takes the payload as is: normalize_event accepts it and keeps its id, its typed
// entity and the CDC members it does not know (lsn, unchanged).
void expect_host_accepts(const std::string &payload) {
    auto r = fraiseql_observer::host::normalize_event(payload, "app_db", -1, 0);
    auto *ev = std::get_if<fraiseql_observer::host::EventData>(&r);
    ASSERT_NE(ev, nullptr) << std::get<fraiseql_observer::host::Rejection>(r).reason << "\n" << payload;
    json p = json::parse(payload), b = json::parse(ev->body);
    EXPECT_EQ(b["id"], p["id"]);
    EXPECT_EQ(b["entity_id"], p["entity_id"]);
    EXPECT_EQ(b["entity"], p["entity"]);
    EXPECT_EQ(b["changes"], p["changes"]);
    EXPECT_EQ(b["lsn"], p["lsn"]);
    EXPECT_EQ(b.contains("unchanged"), p.contains("unchanged"));
    if (p.contains("txid")) {
        EXPECT_EQ(b["txid"], p["txid"]);
    }
    if (p.contains("timestamp")) {
        EXPECT_EQ(b["timestamp"], p["timestamp"]);
    }
    EXPECT_EQ(b["source"], "app_db");
}

Events events_of(const std::vector<std::string> &msgs, const std::function<void(pgo::Relation &)> &adjust = {}) {
    Events ev;
    pgo::RelationCache cache;
    pg::TxContext tx = k_tx;
    uint32_t index = 0;
    for (const auto &d : decode_all(msgs)) {
        if (auto *b = std::get_if<pgo::Begin>(&d)) {
            tx.commit_lsn = b->final_lsn, tx.commit_time_us = b->commit_time_us, tx.xid = b->xid, index = 0;
            continue;
        }
        if (auto *r = std::get_if<pgo::Relation>(&d)) {
            pgo::Relation copy = *r;
            if (adjust) adjust(copy);
            cache.put(std::move(copy));
            continue;
        }
        uint32_t rel_oid = 0;
        if (auto *i = std::get_if<pgo::Insert>(&d)) rel_oid = i->relation;
        else if (auto *u = std::get_if<pgo::Update>(&d)) rel_oid = u->relation;
        else if (auto *x = std::get_if<pgo::Delete>(&d)) rel_oid = x->relation;
        else continue;
        const pgo::Relation *rel = cache.find(rel_oid);
        EXPECT_NE(rel, nullptr);
        if (!rel) continue;
        std::string out, error;
        EXPECT_TRUE(pg::change_payload(*rel, d, tx, index++, pg::entity_name(*rel, {}), out, error)) << error;
        ev.raw.push_back(out);
        ev.parsed.push_back(json::parse(out)); // throws (fails the test) on invalid JSON
        expect_host_accepts(out);
    }
    return ev;
}

} // namespace

TEST(CdcEvent, insert_payload_has_every_member_the_host_keeps) {
    auto ev = events_of(load("types"));
    ASSERT_EQ(ev.parsed.size(), 5u);
    const json &e = ev.parsed[0];
    EXPECT_TRUE(std::regex_match(e["id"].get<std::string>(),
                                 std::regex("[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
    EXPECT_EQ(e["entity_type"], "Sample");
    EXPECT_EQ(e["operation"], "INSERT");
    EXPECT_EQ(e["entity_id"], "1");
    EXPECT_TRUE(std::regex_match(e["timestamp"].get<std::string>(),
                                 std::regex(R"(20[2-9]\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
    EXPECT_TRUE(e["txid"].is_number_unsigned());
    EXPECT_TRUE(std::regex_match(e["lsn"].get<std::string>(), std::regex("[0-9A-F]+/[0-9A-F]+")));
    EXPECT_TRUE(e["changes"].is_null());
    EXPECT_FALSE(e.contains("unchanged"));
    // Rows of one multi-row INSERT share a commit LSN but get distinct ids.
    std::set<std::string> ids;
    for (const auto &p : ev.parsed) ids.insert(p["id"]);
    EXPECT_EQ(ids.size(), 5u);
}

TEST(CdcEvent, values_are_typed_per_spec) {
    auto ev = events_of(load("types"));
    const json &r1 = ev.parsed[0]["entity"];
    EXPECT_EQ(r1["id"], 1);
    EXPECT_EQ(r1["i2"], -32768);
    EXPECT_EQ(r1["i4"], 2147483647);
    EXPECT_EQ(r1["o"], 4294967295u);
    EXPECT_TRUE(r1["n"].is_number());
    // numeric keeps every digit PostgreSQL printed, on the wire.
    EXPECT_NE(ev.raw[0].find("\"n\":12345678901234567890.123456789012345678901234567890,"), std::string::npos);
    EXPECT_EQ(r1["f4"], 3.25);
    EXPECT_EQ(r1["f8"], -1.5e300);
    EXPECT_EQ(r1["b"], true);
    EXPECT_EQ(r1["j"], json::parse(R"({"a": [1, 2.50, null]})")); // embedded, not a string
    EXPECT_EQ(r1["jb"]["b"]["c"], "x\\ny");
    EXPECT_EQ(r1["t"], "tab\there \"quoted\" back\\slash \xC3\xA9\xE2\x82\xAC\x01 end");
    EXPECT_NE(ev.raw[0].find(R"("tab\u0009here \"quoted\" back\\slash )"), std::string::npos);
    EXPECT_NE(ev.raw[0].find(R"(\u0001 end")"), std::string::npos);
    EXPECT_EQ(r1["u"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    EXPECT_EQ(r1["ts"], "2026-11-27 04:23:51.123456+00");
    EXPECT_EQ(r1["tsn"], "1999-12-31 23:59:59");
    EXPECT_EQ(r1["d"], "2000-01-01");
    EXPECT_EQ(r1["by"], "\\xdeadbeef00ff");
    EXPECT_EQ(r1["arr"], "{1,NULL,3}");
    EXPECT_EQ(r1["tarr"], R"({"with space","q\"uote",NULL})");
    EXPECT_TRUE(r1.contains("nul"));
    EXPECT_TRUE(r1["nul"].is_null());

    const json &r2 = ev.parsed[1]["entity"];
    EXPECT_EQ(r2["n"], "NaN");
    EXPECT_EQ(r2["f4"], "Infinity");
    EXPECT_EQ(r2["f8"], "-Infinity");
    EXPECT_EQ(r2["b"], false);
    EXPECT_TRUE(r2["j"].is_null()); // the JSON text null, embedded
    EXPECT_EQ(r2["jb"], json::array());
    EXPECT_EQ(r2["t"], "");
    EXPECT_TRUE(r2["u"].is_null());
    EXPECT_EQ(r2["by"], "\\x");

    const json &r3 = ev.parsed[2]["entity"];
    EXPECT_TRUE(r3["n"].is_number());
    EXPECT_NE(ev.raw[2].find("\"n\":-0.000000000000000000001,"), std::string::npos);
    EXPECT_EQ(r3["f4"], "NaN");
    EXPECT_EQ(r3["j"], 100000.0);
    EXPECT_EQ(r3["jb"], "s");
    EXPECT_TRUE(r3["b"].is_null());
    EXPECT_EQ(r3["ts"], "infinity");
    const json &r4 = ev.parsed[3]["entity"];
    EXPECT_EQ(r4["n"], "Infinity");
    EXPECT_EQ(r4["f4"], 1.5e-40);
    EXPECT_EQ(r4["f8"], 1e308);
    EXPECT_EQ(ev.parsed[4]["entity"]["n"], "-Infinity");
}

TEST(CdcEvent, composite_key_joins_key_values_and_k_tuples_show_only_the_key) {
    auto ev = events_of(load("composite_key"));
    ASSERT_EQ(ev.parsed.size(), 5u);
    EXPECT_EQ(ev.parsed[0]["entity_type"], "OrderItem");
    EXPECT_EQ(ev.parsed[0]["entity_id"], "eu:1");
    EXPECT_EQ(ev.parsed[1]["entity_id"], "eu:2");
    EXPECT_TRUE(ev.parsed[1]["entity"]["note"].is_null());
    EXPECT_EQ(ev.parsed[2]["operation"], "UPDATE");
    EXPECT_EQ(ev.parsed[2]["entity"], json::parse(R"({"region":"eu","num":1,"qty":6,"note":"first"})"));
    EXPECT_TRUE(ev.parsed[2]["changes"].is_null()); // DEFAULT identity: no old image
    EXPECT_EQ(ev.parsed[3]["entity_id"], "eu:3"); // the key changed: the new key
    EXPECT_TRUE(ev.parsed[3]["changes"].is_null());
    const json &del = ev.parsed[4];
    EXPECT_EQ(del["operation"], "DELETE");
    EXPECT_EQ(del["entity_id"], "eu:1");
    // Non-key columns of a 'K' tuple are absent, not null.
    EXPECT_EQ(del["entity"], json::parse(R"({"region":"eu","num":1})"));
}

TEST(CdcEvent, replica_identity_full_gives_changes_and_the_whole_deleted_row) {
    auto with_pk = [](pgo::Relation &r) {
        r.primary_key_known = true;
        r.columns[0].primary_key = true;
    };
    auto ev = events_of(load("replica_full"), with_pk);
    ASSERT_EQ(ev.parsed.size(), 4u);
    for (const auto &e : ev.parsed) EXPECT_EQ(e["entity_id"], "1");
    EXPECT_EQ(ev.parsed[1]["changes"], json::parse(R"({"score":{"old":10.50,"new":11.25}})"));
    EXPECT_EQ(ev.parsed[1]["entity"], json::parse(R"({"id":1,"name":"ann","score":11.25})"));
    EXPECT_EQ(ev.parsed[2]["changes"], json::parse(R"({"name":{"old":"ann","new":null}})"));
    EXPECT_EQ(ev.parsed[3]["entity"], json::parse(R"({"id":1,"name":null,"score":11.25})"));
    EXPECT_TRUE(ev.parsed[3]["changes"].is_null());
    // Without the catalog's primary key, FULL marks every column as key: all of them make the
    // id, and a row with a NULL in any column has none (the reader must supply the key).
    auto msgs = load("replica_full");
    auto d = decode_all(msgs);
    const auto &rel = std::get<pgo::Relation>(d[1]);
    std::string out, error;
    ASSERT_TRUE(pg::change_payload(rel, d[2], k_tx, 0, "Full", out, error)) << error;
    EXPECT_EQ(json::parse(out)["entity_id"], "1:ann:10.50");
    EXPECT_FALSE(pg::change_payload(rel, d[4], k_tx, 2, "Full", out, error));
    EXPECT_NE(error.find("key column name"), std::string::npos) << error;
}

TEST(CdcEvent, unchanged_toast_is_listed_never_invented) {
    auto ev = events_of(load("toast"), [](pgo::Relation &r) { // the reader knows the primary key: id
        r.primary_key_known = true;
        r.columns[0].primary_key = true;
    });
    ASSERT_EQ(ev.parsed.size(), 5u);
    const json &ins = ev.parsed[0];
    std::string big = ins["entity"]["big"];
    EXPECT_EQ(big.size(), 6400u);
    const json &upd = ev.parsed[1]; // DEFAULT identity: PostgreSQL did not send it
    EXPECT_EQ(upd["entity"], json::parse(R"({"id":1,"counter":1})"));
    EXPECT_EQ(upd["unchanged"], json::parse(R"(["big"])"));
    const json &full = ev.parsed[3]; // FULL: the old image has it, and it is unchanged
    EXPECT_EQ(full["entity"]["big"], big);
    EXPECT_EQ(full["entity"]["counter"], 1);
    EXPECT_FALSE(full.contains("unchanged"));
    EXPECT_EQ(full["changes"], json::parse(R"({"counter":{"old":0,"new":1}})"));
    const json &del = ev.parsed[4];
    EXPECT_EQ(del["entity"], json::parse(R"({"id":1})"));
}

TEST(CdcEvent, ids_are_stable_and_distinct_per_change) {
    auto msgs = load("multi_row");
    auto a = events_of(msgs), b = events_of(msgs);
    ASSERT_EQ(a.raw, b.raw); // the same change read twice gives the same bytes
    auto d = decode_all(msgs);
    const auto &rel = std::get<pgo::Relation>(d[1]);
    std::string o1, o2, o3, error;
    pg::TxContext other_system = k_tx;
    other_system.system_id = "7301234567890123457";
    pg::TxContext other_lsn = k_tx;
    other_lsn.commit_lsn += 1;
    ASSERT_TRUE(pg::change_payload(rel, d[2], k_tx, 0, "A", o1, error));
    ASSERT_TRUE(pg::change_payload(rel, d[2], other_system, 0, "A", o2, error));
    ASSERT_TRUE(pg::change_payload(rel, d[2], other_lsn, 0, "A", o3, error));
    std::set<std::string> ids{json::parse(o1)["id"], json::parse(o2)["id"], json::parse(o3)["id"]};
    EXPECT_EQ(ids.size(), 3u);
    EXPECT_EQ(json::parse(o1)["id"], pg::uuid_v5("pg-cdc\n7301234567890123456\n0/16B3748\n0"));
}

TEST(CdcEvent, uuid_v5_matches_the_rfc_algorithm) {
    // Known answer computed independently (Python: uuid.uuid5(UUID('6f1c3a52-8e0b-4d7e-9a27-41c513b862f0'), 'x')).
    EXPECT_EQ(pg::uuid_v5("x"), "6817c395-438e-5e06-b5fd-69ce96e0aef0");
}

TEST(CdcEvent, timestamp_txid_and_lsn_come_from_the_transaction) {
    pgo::Relation rel{42, "public", "tb_order", 'd', {{"id", 23, -1, true}}};
    pgo::Insert ins{42, {{pgo::ValueKind::text, "7"}}};
    pg::TxContext tx = k_tx;
    tx.commit_time_us = 0;
    json e = [&] {
        std::string out, error;
        EXPECT_TRUE(pg::change_payload(rel, ins, tx, 3, "Order", out, error)) << error;
        return json::parse(out);
    }();
    EXPECT_EQ(e["timestamp"], "2000-01-01T00:00:00.000000Z");
    EXPECT_EQ(e["txid"], 812345);
    EXPECT_EQ(e["lsn"], "0/16B3748");
    EXPECT_EQ(e["entity"], json::parse(R"({"id":7})"));
    tx.commit_time_us = 849068631123456; // 2026-11-27T04:23:51.123456Z
    std::string out, error;
    ASSERT_TRUE(pg::change_payload(rel, ins, tx, 3, "Order", out, error));
    EXPECT_EQ(json::parse(out)["timestamp"], "2026-11-27T04:23:51.123456Z");
    tx.commit_time_us = -1; // before 2000: still a well-formed time
    ASSERT_TRUE(pg::change_payload(rel, ins, tx, 3, "Order", out, error));
    EXPECT_EQ(json::parse(out)["timestamp"], "1999-12-31T23:59:59.999999Z");
    tx.commit_time_us = 253402300799999999 - 946684800000000; // the last µs of year 9999
    ASSERT_TRUE(pg::change_payload(rel, ins, tx, 3, "Order", out, error));
    EXPECT_EQ(json::parse(out)["timestamp"], "9999-12-31T23:59:59.999999Z");
    for (int64_t corrupt : {INT64_MAX, INT64_MIN}) { // still a JSON string, no overflow
        tx.commit_time_us = corrupt;
        ASSERT_TRUE(pg::change_payload(rel, ins, tx, 3, "Order", out, error));
        EXPECT_TRUE(json::parse(out)["timestamp"].is_string()) << out;
    }
}

TEST(CdcEvent, changes_that_do_not_fit_the_relation_are_refused) {
    pgo::Relation rel{42, "public", "tb_order", 'd', {{"id", 23, -1, true}, {"note", 25, -1, false}}};
    std::string out, error;
    pgo::Insert short_row{42, {{pgo::ValueKind::text, "1"}}};
    EXPECT_FALSE(pg::change_payload(rel, short_row, k_tx, 0, "Order", out, error));
    EXPECT_NE(error.find("columns"), std::string::npos) << error;
    pgo::Insert other_table{43, {{pgo::ValueKind::text, "1"}, {}}};
    EXPECT_FALSE(pg::change_payload(rel, other_table, k_tx, 0, "Order", out, error));
    EXPECT_NE(error.find("relation 43"), std::string::npos) << error;
    pgo::Insert null_key{42, {{pgo::ValueKind::null, {}}, {}}};
    EXPECT_FALSE(pg::change_payload(rel, null_key, k_tx, 0, "Order", out, error));
    EXPECT_NE(error.find("key column id"), std::string::npos) << error;
    EXPECT_FALSE(pg::change_payload(rel, pgo::Begin{}, k_tx, 0, "Order", out, error));
    pgo::Relation keyless{44, "public", "tb_log", 'd', {{"msg", 25, -1, false}}};
    pgo::Insert log_row{44, {{pgo::ValueKind::text, "hi"}}};
    EXPECT_FALSE(pg::change_payload(keyless, log_row, k_tx, 0, "Log", out, error));
    EXPECT_NE(error.find("no primary key"), std::string::npos) << error;
}

TEST(CdcEvent, truncate_is_one_event_per_table) {
    auto msgs = load("truncate");
    auto d = decode_all(msgs);
    const auto &rel = std::get<pgo::Relation>(d[1]);
    std::string out;
    pg::truncate_payload(rel, k_tx, 4, pg::entity_name(rel, {}), out);
    json e = json::parse(out);
    EXPECT_EQ(e["operation"], "TRUNCATE");
    EXPECT_EQ(e["entity_type"], "A");
    EXPECT_EQ(e["entity_id"], "*");
    EXPECT_TRUE(e["entity"].is_null());
    EXPECT_EQ(e["lsn"], "0/16B3748");
    EXPECT_EQ(e["id"], pg::uuid_v5("pg-cdc\n7301234567890123456\n0/16B3748\n4"));
    expect_host_accepts(out);
}

TEST(CdcEvent, snapshot_rows_are_read_events_with_their_own_ids) {
    const char id[] = "5", region[] = "eu", note[] = "n\"1";
    std::vector<pg::SnapshotColumn> row = {{"region", 25, true, region, 2},
                                           {"id", 23, true, id, 1},
                                           {"note", 25, false, note, 3},
                                           {"gone", 16, false, nullptr, 0}};
    std::string out, error;
    ASSERT_TRUE(pg::snapshot_payload("public", "tb_order_item", row, "7301234567890123456", 0x16B3748,
                                     "OrderItem", out, error))
        << error;
    json e = json::parse(out);
    EXPECT_EQ(e["operation"], "READ");
    EXPECT_EQ(e["entity_type"], "OrderItem");
    EXPECT_EQ(e["entity_id"], "eu:5");
    EXPECT_EQ(e["lsn"], "0/16B3748");
    EXPECT_EQ(e["entity"], json::parse(R"({"region":"eu","id":5,"note":"n\"1","gone":null})"));
    EXPECT_EQ(e["id"], pg::uuid_v5("pg-cdc-snapshot\n7301234567890123456\n0/16B3748\npublic.tb_order_item\neu:5"));
    expect_host_accepts(out);
    row[1].text = nullptr;
    EXPECT_FALSE(pg::snapshot_payload("public", "tb_order_item", row, "s", 1, "OrderItem", out, error));
    EXPECT_NE(error.find("key column id"), std::string::npos) << error;
    std::vector<pg::SnapshotColumn> keyless = {{"msg", 25, false, note, 3}};
    EXPECT_FALSE(pg::snapshot_payload("public", "tb_log", keyless, "s", 1, "Log", out, error));
}

TEST(CdcEvent, entity_name_rule_and_overrides) {
    auto name = [](std::string schema, std::string table, std::map<std::string, std::string> o = {}) {
        pgo::Relation r;
        r.oid = 99;
        r.schema = std::move(schema);
        r.name = std::move(table);
        return pg::entity_name(r, o);
    };
    EXPECT_EQ(name("public", "tb_order_item"), "OrderItem");
    EXPECT_EQ(name("public", "order"), "Order");
    EXPECT_EQ(name("sales", "tb_order"), "Order");
    EXPECT_EQ(name("public", "orderLines"), "OrderLines");
    EXPECT_EQ(name("public", "my table.v2"), "MyTableV2"); // always a NATS subject token
    EXPECT_EQ(name("public", "tb_"), "Table99");
    EXPECT_EQ(name("public", "tb_\xC3\xA9t\xC3\xA9_x"), "\xC3\xA9t\xC3\xA9X"); // UTF-8 kept as is
    EXPECT_EQ(name("public", "a\xC2\x85" "b\xFF" "c"), "ABC"); // a C1 control and a stray byte separate words
    EXPECT_EQ(name("public", "tb_order", {{"public.tb_order", "Purchase"}}), "Purchase");
    EXPECT_EQ(name("public", "tb_order", {{"tb_order", "Purchase"}}), "Purchase");
    EXPECT_EQ(name("sales", "tb_order", {{"tb_order", "Purchase"}}), "Order"); // bare name: public only
    EXPECT_EQ(name("sales", "tb_order", {{"sales.tb_order", "Sale"}}), "Sale");
}

TEST(CdcEvent, hostile_text_still_gives_valid_json) {
    // Bytes that are not UTF-8 are replaced with U+FFFD; controls are \u00XX escapes; a number or
    // JSON column whose text is not what a JSON reader accepts goes out as a string.
    std::string s;
    pg::append_json_string(s, "a\x00"s + "b\xff\xc3(\xed\xa0\x80\x1f\x7f\xf0\x9f\x98\x80");
    EXPECT_EQ(json::parse(s), "a\x00" "b\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\x1f\x7f\xF0\x9F\x98\x80"s);
    auto value = [](uint32_t oid, std::string_view text) {
        std::string out;
        pg::append_json_value(out, oid, text);
        return out;
    };
    EXPECT_EQ(value(1700, std::string(400, '9')), "\"" + std::string(400, '9') + "\""); // beyond a double
    EXPECT_EQ(value(1700, std::string(300, '9')), std::string(300, '9'));
    EXPECT_EQ(value(23, "012"), "\"012\"");
    EXPECT_EQ(value(23, "1 "), "\"1 \"");
    EXPECT_EQ(value(701, "1e+308"), "1e+308");
    EXPECT_EQ(value(701, "-1.5e-7"), "-1.5e-7");
    EXPECT_EQ(value(16, "x"), "\"x\"");
    EXPECT_EQ(value(114, "{\"a\":1e400}"), "\"{\\\"a\\\":1e400}\"");
    EXPECT_EQ(value(3802, "[1, {\"b\": \"\\ud83d\\ude00\"}]"), "[1, {\"b\": \"\\ud83d\\ude00\"}]");
    EXPECT_EQ(value(114, "{\"a\":\"\\ud800\"}"), "\"{\\\"a\\\":\\\"\\\\ud800\\\"}\""); // a lone surrogate
    EXPECT_EQ(value(114, std::string("1\0", 2)), "\"1\\u0000\"");
    // nlohmann skips a leading byte order mark; inside a document it is not JSON (fuzz_pgoutput).
    EXPECT_EQ(value(114, "\xEF\xBB\xBF" "50"), "\"\xEF\xBB\xBF" "50\"");
    EXPECT_EQ(value(3802, "\xEF\xBB\xBF{}"), "\"\xEF\xBB\xBF{}\"");
}
