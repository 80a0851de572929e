// The pgoutput decoder on bytes captured from a real PostgreSQL 15 (data/pgoutput/*.hex), on
// every truncation of them, and on the COPY BOTH framing around them.
#include "pgoutput_samples.hpp"

#include <pgoutput.hpp>

#include <gtest/gtest.h>

#include <chrono>

namespace pgo = fraiseql_observer::pg_listen::pgoutput;
using pgoutput_samples::decode_all;
using pgoutput_samples::load;

namespace {

template <typename T> const T &as(const pgo::Decoded &d) {
    EXPECT_TRUE(std::holds_alternative<T>(d)) << "variant index " << d.index();
    static const T empty{};
    return std::holds_alternative<T>(d) ? std::get<T>(d) : empty;
}

std::string text(const pgo::Value &v) {
    EXPECT_EQ(v.kind, pgo::ValueKind::text);
    return std::string(v.text);
}

std::vector<char> tags(const std::vector<std::string> &msgs) {
    std::vector<char> t;
    for (const auto &m : msgs) t.push_back(m[0]);
    return t;
}

} // namespace

TEST(Pgoutput, begin_and_commit_frame_a_transaction) {
    auto msgs = load("types");
    auto d = decode_all(msgs);
    ASSERT_GE(d.size(), 3u);
    const auto &b = as<pgo::Begin>(d.front());
    const auto &c = as<pgo::Commit>(d.back());
    EXPECT_NE(b.xid, 0u);
    EXPECT_EQ(b.final_lsn, c.commit_lsn); // Begin announces the commit's LSN
    EXPECT_GT(c.end_lsn, c.commit_lsn);
    EXPECT_EQ(b.commit_time_us, c.commit_time_us);
    EXPECT_EQ(c.flags, 0);
    // Captured in 2026: µs since 2000-01-01 between 2020 and 2100.
    EXPECT_GT(c.commit_time_us, int64_t(20) * 365 * 86400 * 1000000);
    EXPECT_LT(c.commit_time_us, int64_t(100) * 366 * 86400 * 1000000);
}

TEST(Pgoutput, relation_message_gives_names_types_and_key) {
    auto msgs = load("types");
    auto d = decode_all(msgs);
    const auto &r = as<pgo::Relation>(d[1]);
    EXPECT_NE(r.oid, 0u);
    EXPECT_EQ(r.schema, "public");
    EXPECT_EQ(r.name, "tb_sample");
    EXPECT_EQ(r.replica_identity, 'd');
    std::vector<std::pair<std::string, uint32_t>> want = {
        {"id", 20},   {"i2", 21},    {"i4", 23},   {"o", 26},    {"n", 1700},    {"f4", 700},     {"f8", 701},
        {"b", 16},    {"j", 114},    {"jb", 3802}, {"t", 25},    {"u", 2950},    {"ts", 1184},    {"tsn", 1114},
        {"d", 1082},  {"by", 17},    {"arr", 1007}, {"tarr", 1009}, {"nul", 25}};
    ASSERT_EQ(r.columns.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(r.columns[i].name, want[i].first);
        EXPECT_EQ(r.columns[i].type_oid, want[i].second) << want[i].first;
        EXPECT_EQ(r.columns[i].key, i == 0) << want[i].first;
        EXPECT_EQ(r.columns[i].type_mod, -1);
    }
}

TEST(Pgoutput, insert_carries_every_value_in_text_form) {
    auto msgs = load("types");
    auto d = decode_all(msgs);
    const auto &rel = as<pgo::Relation>(d[1]);
    const auto &row1 = as<pgo::Insert>(d[2]);
    EXPECT_EQ(row1.relation, rel.oid);
    const auto &v = row1.new_tuple;
    ASSERT_EQ(v.size(), 19u);
    EXPECT_EQ(text(v[0]), "1");
    EXPECT_EQ(text(v[1]), "-32768");
    EXPECT_EQ(text(v[2]), "2147483647");
    EXPECT_EQ(text(v[3]), "4294967295");
    EXPECT_EQ(text(v[4]), "12345678901234567890.123456789012345678901234567890");
    EXPECT_EQ(text(v[5]), "3.25");
    EXPECT_EQ(text(v[6]), "-1.5e+300");
    EXPECT_EQ(text(v[7]), "t");
    EXPECT_EQ(text(v[8]), R"({"a": [1, 2.50, null]})"); // json: as written
    EXPECT_EQ(text(v[9]), R"({"b": {"c": "x\\ny"}})");  // jsonb: normalised by PostgreSQL
    EXPECT_EQ(text(v[10]), "tab\there \"quoted\" back\\slash \xC3\xA9\xE2\x82\xAC\x01 end");
    EXPECT_EQ(text(v[11]), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    EXPECT_EQ(text(v[12]), "2026-11-27 04:23:51.123456+00");
    EXPECT_EQ(text(v[13]), "1999-12-31 23:59:59");
    EXPECT_EQ(text(v[14]), "2000-01-01");
    EXPECT_EQ(text(v[15]), "\\xdeadbeef00ff");
    EXPECT_EQ(text(v[16]), "{1,NULL,3}");
    EXPECT_EQ(text(v[17]), R"({"with space","q\"uote",NULL})");
    EXPECT_EQ(v[18].kind, pgo::ValueKind::null);

    const auto &row2 = as<pgo::Insert>(d[3]).new_tuple;
    EXPECT_EQ(text(row2[4]), "NaN");
    EXPECT_EQ(text(row2[5]), "Infinity");
    EXPECT_EQ(text(row2[6]), "-Infinity");
    EXPECT_EQ(text(row2[7]), "f");
    EXPECT_EQ(text(row2[10]), ""); // an empty string is 't' with length 0, not NULL
    EXPECT_EQ(row2[11].kind, pgo::ValueKind::null);
    EXPECT_EQ(text(row2[15]), "\\x");
    EXPECT_EQ(text(row2[16]), "{}");

    const auto &row3 = as<pgo::Insert>(d[4]).new_tuple;
    EXPECT_EQ(text(row3[4]), "-0.000000000000000000001");
    EXPECT_EQ(text(row3[12]), "infinity");
    EXPECT_EQ(text(row3[16]), "{{1,2},{3,4}}");
    const auto &row4 = as<pgo::Insert>(d[5]).new_tuple;
    EXPECT_EQ(text(row4[5]), "1.5e-40");
    EXPECT_EQ(text(row4[6]), "1e+308");
}

TEST(Pgoutput, composite_key_updates_and_deletes_send_key_tuples) {
    auto msgs = load("composite_key");
    EXPECT_EQ(tags(msgs), (std::vector<char>{'B', 'R', 'I', 'I', 'U', 'U', 'D', 'C'}));
    auto d = decode_all(msgs);
    const auto &r = as<pgo::Relation>(d[1]);
    ASSERT_EQ(r.columns.size(), 4u);
    EXPECT_TRUE(r.columns[0].key);
    EXPECT_TRUE(r.columns[1].key);
    EXPECT_FALSE(r.columns[2].key);
    EXPECT_FALSE(r.columns[3].key);

    const auto &same_key = as<pgo::Update>(d[4]); // key unchanged: no old tuple at all
    EXPECT_EQ(same_key.old_kind, 0);
    EXPECT_TRUE(same_key.old_tuple.empty());
    EXPECT_EQ(text(same_key.new_tuple[2]), "6");

    const auto &new_key = as<pgo::Update>(d[5]); // key changed: the old key as 'K'
    EXPECT_EQ(new_key.old_kind, 'K');
    ASSERT_EQ(new_key.old_tuple.size(), 4u);
    EXPECT_EQ(text(new_key.old_tuple[0]), "eu");
    EXPECT_EQ(text(new_key.old_tuple[1]), "2");
    EXPECT_EQ(new_key.old_tuple[2].kind, pgo::ValueKind::null); // not sent, which is not NULL
    EXPECT_EQ(text(new_key.new_tuple[1]), "3");

    const auto &del = as<pgo::Delete>(d[6]);
    EXPECT_EQ(del.relation, r.oid);
    EXPECT_EQ(del.old_kind, 'K');
    EXPECT_EQ(text(del.old_tuple[0]), "eu");
    EXPECT_EQ(text(del.old_tuple[1]), "1");
    EXPECT_EQ(del.old_tuple[3].kind, pgo::ValueKind::null);
}

TEST(Pgoutput, replica_identity_full_sends_whole_old_rows) {
    auto msgs = load("replica_full");
    EXPECT_EQ(tags(msgs), (std::vector<char>{'B', 'R', 'I', 'U', 'U', 'D', 'C'}));
    auto d = decode_all(msgs);
    const auto &r = as<pgo::Relation>(d[1]);
    EXPECT_EQ(r.replica_identity, 'f');
    for (const auto &c : r.columns) EXPECT_TRUE(c.key) << c.name; // FULL flags every column
    const auto &u = as<pgo::Update>(d[3]);
    EXPECT_EQ(u.old_kind, 'O');
    EXPECT_EQ(text(u.old_tuple[2]), "10.50");
    EXPECT_EQ(text(u.new_tuple[2]), "11.25");
    const auto &to_null = as<pgo::Update>(d[4]);
    EXPECT_EQ(text(to_null.old_tuple[1]), "ann");
    EXPECT_EQ(to_null.new_tuple[1].kind, pgo::ValueKind::null);
    const auto &del = as<pgo::Delete>(d[5]);
    EXPECT_EQ(del.old_kind, 'O');
    EXPECT_EQ(text(del.old_tuple[0]), "1");
    EXPECT_EQ(text(del.old_tuple[2]), "11.25");
}

TEST(Pgoutput, unchanged_toast_is_sent_as_u_without_bytes) {
    auto msgs = load("toast");
    EXPECT_EQ(tags(msgs), (std::vector<char>{'B', 'R', 'I', 'U', 'R', 'I', 'U', 'D', 'C'}));
    auto d = decode_all(msgs);
    std::string big = text(as<pgo::Insert>(d[2]).new_tuple[2]);
    EXPECT_EQ(big.size(), 6400u);
    const auto &u = as<pgo::Update>(d[3]); // DEFAULT identity: the value is simply not there
    EXPECT_EQ(u.old_kind, 0);
    EXPECT_EQ(text(u.new_tuple[1]), "1");
    EXPECT_EQ(u.new_tuple[2].kind, pgo::ValueKind::unchanged);
    EXPECT_LT(msgs[3].size(), 100u);

    const auto &full = as<pgo::Update>(d[6]); // FULL: the old row carries it, the new one does not
    EXPECT_EQ(full.old_kind, 'O');
    EXPECT_EQ(text(full.old_tuple[2]), big);
    EXPECT_EQ(full.new_tuple[2].kind, pgo::ValueKind::unchanged);
}

TEST(Pgoutput, type_messages_announce_enum_and_domain_types) {
    auto msgs = load("type_messages");
    EXPECT_EQ(tags(msgs), (std::vector<char>{'B', 'Y', 'Y', 'R', 'I', 'C'}));
    auto d = decode_all(msgs);
    const auto &mood = as<pgo::Type>(d[1]);
    const auto &positive = as<pgo::Type>(d[2]);
    EXPECT_EQ(mood.schema, "public");
    EXPECT_EQ(mood.name, "mood");
    // A domain is announced under its own OID with its base type's name (pg_catalog is sent as "").
    EXPECT_EQ(positive.schema, "");
    EXPECT_EQ(positive.name, "int4");
    EXPECT_EQ(pgo::base_type_oid(positive), 23u); // its values are JSON numbers like int4's
    EXPECT_EQ(pgo::base_type_oid(mood), 0u);      // an enum's values are text
    EXPECT_EQ(pgo::base_type_oid(pgo::Type{1, "pg_catalog", "jsonb"}), 3802u);
    EXPECT_EQ(pgo::base_type_oid(pgo::Type{1, "public", "int4"}), 0u); // a user type named int4
    const auto &r = as<pgo::Relation>(d[3]);
    EXPECT_EQ(r.columns[1].type_oid, mood.oid);
    EXPECT_EQ(r.columns[2].type_oid, positive.oid);
    const auto &ins = as<pgo::Insert>(d[4]);
    EXPECT_EQ(text(ins.new_tuple[1]), "happy");
    EXPECT_EQ(text(ins.new_tuple[2]), "42");
}

TEST(Pgoutput, truncate_lists_every_relation_and_its_options) {
    auto msgs = load("truncate");
    auto d = decode_all(msgs);
    std::vector<uint32_t> oids;
    for (const auto &x : d)
        if (auto *r = std::get_if<pgo::Relation>(&x)) oids.push_back(r->oid);
    ASSERT_EQ(msgs[msgs.size() - 2][0], 'T');
    const auto &t = as<pgo::Truncate>(d[d.size() - 2]);
    EXPECT_EQ(t.options, 3); // CASCADE | RESTART IDENTITY
    ASSERT_EQ(t.relations.size(), 2u);
    EXPECT_NE(std::find(oids.begin(), oids.end(), t.relations[0]), oids.end());
    EXPECT_NE(std::find(oids.begin(), oids.end(), t.relations[1]), oids.end());
    EXPECT_NE(t.relations[0], t.relations[1]);
}

TEST(Pgoutput, logical_messages_transactional_or_not) {
    auto msgs = load("messages");
    EXPECT_EQ(tags(msgs), (std::vector<char>{'M', 'B', 'M', 'R', 'I', 'C'}));
    auto d = decode_all(msgs);
    const auto &hb = as<pgo::Message>(d[0]); // outside any transaction, like the heartbeat
    EXPECT_FALSE(hb.transactional);
    EXPECT_EQ(hb.prefix, "fraiseql_observer");
    EXPECT_EQ(hb.content, "heartbeat");
    EXPECT_NE(hb.lsn, 0u);
    const auto &tx = as<pgo::Message>(d[2]);
    EXPECT_TRUE(tx.transactional);
    EXPECT_EQ(tx.prefix, "app");
    EXPECT_EQ(tx.content, std::string_view("\x00\xff", 2));
}

TEST(Pgoutput, origin_names_the_upstream_and_its_lsn) {
    auto msgs = load("origin");
    EXPECT_EQ(tags(msgs), (std::vector<char>{'B', 'O', 'R', 'I', 'C'}));
    auto d = decode_all(msgs);
    const auto &o = as<pgo::Origin>(d[1]);
    EXPECT_EQ(o.name, "upstream");
    EXPECT_EQ(pgo::lsn_text(o.lsn), "0/ABCDEF");
}

TEST(Pgoutput, alter_table_sends_a_new_relation_that_replaces_the_cached_one) {
    auto msgs = load("alter_table");
    EXPECT_EQ(tags(msgs), (std::vector<char>{'B', 'R', 'I', 'R', 'I', 'R', 'U', 'C'}));
    auto d = decode_all(msgs);
    pgo::RelationCache cache;
    std::vector<size_t> widths;
    for (const auto &x : d) {
        if (auto *r = std::get_if<pgo::Relation>(&x)) cache.put(*r);
        if (auto *i = std::get_if<pgo::Insert>(&x)) {
            const pgo::Relation *r = cache.find(i->relation);
            ASSERT_NE(r, nullptr);
            EXPECT_EQ(r->columns.size(), i->new_tuple.size());
            widths.push_back(r->columns.size());
        }
    }
    EXPECT_EQ(widths, (std::vector<size_t>{2, 3}));
    EXPECT_EQ(cache.size(), 1u);
    const auto &u = as<pgo::Update>(d[6]);
    const pgo::Relation *now = cache.find(u.relation);
    ASSERT_NE(now, nullptr);
    ASSERT_EQ(now->columns.size(), 2u); // a dropped column disappears from the shape
    EXPECT_EQ(now->columns[1].name, "b");
    EXPECT_EQ(text(u.new_tuple[1]), "21");
    EXPECT_EQ(cache.find(u.relation + 1), nullptr);
    cache.clear();
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_EQ(cache.find(u.relation), nullptr);
}

TEST(Pgoutput, multi_row_insert_is_one_message_per_row) {
    auto msgs = load("multi_row");
    auto d = decode_all(msgs);
    std::vector<std::string> ids;
    for (const auto &x : d)
        if (auto *i = std::get_if<pgo::Insert>(&x)) ids.push_back(text(i->new_tuple[0]));
    EXPECT_EQ(ids, (std::vector<std::string>{"10", "11", "12", "13", "14"}));
}

TEST(Pgoutput, every_truncation_of_every_sample_is_refused) {
    size_t checked = 0;
    for (const char *name : pgoutput_samples::names) {
        for (const auto &m : load(name)) {
            for (size_t len = 0; len < m.size(); ++len) {
                // A copy of exactly `len` bytes, so a read past the end is caught by ASan.
                std::string cut = m.substr(0, len);
                pgo::Decoded d;
                std::string error;
                EXPECT_FALSE(pgo::decode(cut, d, error)) << name << " " << m[0] << " cut at " << len;
                EXPECT_FALSE(error.empty());
                ++checked;
            }
            pgo::Decoded d;
            std::string error;
            EXPECT_FALSE(pgo::decode(m + '\0', d, error)) << name << " " << m[0] << ": trailing byte accepted";
            EXPECT_FALSE(error.empty());
        }
    }
    EXPECT_GT(checked, 10000u);
}

TEST(Pgoutput, malformed_messages_are_refused_with_a_reason) {
    auto refused = [](std::string_view msg) {
        pgo::Decoded d;
        std::string error;
        bool ok = pgo::decode(msg, d, error);
        EXPECT_FALSE(ok);
        return error;
    };
    EXPECT_EQ(refused(""), "empty message");
    EXPECT_EQ(refused("Z"), "unknown message type 'Z'");
    EXPECT_EQ(refused(std::string("\x01", 1)), "unknown message type 0x01");
    auto msgs = load("composite_key");
    std::string insert = msgs[2];
    // A tuple value kind that does not exist.
    std::string bad_kind = insert;
    bad_kind[8] = 'x';
    EXPECT_EQ(refused(bad_kind), "unknown tuple value kind");
    // A column count larger than what is present.
    std::string more = insert;
    more[7] = 0x7f;
    EXPECT_FALSE(refused(more).empty());
    // A value length that overruns the message.
    std::string long_value = insert;
    long_value[9] = '\x7f';
    EXPECT_EQ(refused(long_value), "tuple value overruns the message");
    // Binary values are only sent when asked for; the source never asks.
    std::string binary = insert;
    binary[8] = 'b';
    EXPECT_NE(refused(binary).find("binary"), std::string::npos);
    // An Insert must carry 'N'; an Update's old tuple must be followed by 'N'.
    std::string no_new = insert;
    no_new[5] = 'K';
    EXPECT_EQ(refused(no_new), "Insert without a new tuple");
    // A Relation whose column count the message cannot hold.
    std::string big_rel = std::string("R") + std::string("\0\0\0\1", 4) + std::string("s\0t\0d", 5) +
                          std::string("\xff\xff", 2);
    EXPECT_EQ(refused(big_rel), "Relation column count overruns the message");
    // A Truncate whose count disagrees with the OIDs present.
    std::string trunc = std::string("T") + std::string("\0\0\0\2", 4) + '\0' + std::string("\0\0\0\1", 4);
    EXPECT_EQ(refused(trunc), "Truncate relation count does not match the message");
    std::string huge_trunc = std::string("T") + std::string("\xff\xff\xff\xff", 4) + '\0';
    EXPECT_FALSE(refused(huge_trunc).empty());
    // A Delete without an old tuple.
    std::string del = msgs[6];
    del[5] = 'N';
    EXPECT_EQ(refused(del), "Delete without an old tuple");
}

TEST(Pgoutput, lsn_text_and_parse_lsn_round_trip) {
    EXPECT_EQ(pgo::lsn_text(0x16B3748), "0/16B3748");
    EXPECT_EQ(pgo::lsn_text(0), "0/0");
    EXPECT_EQ(pgo::lsn_text(0xFFFFFFFF00000001ull), "FFFFFFFF/1");
    uint64_t lsn = 0;
    ASSERT_TRUE(pgo::parse_lsn("0/16B3748", lsn));
    EXPECT_EQ(lsn, 0x16B3748u);
    ASSERT_TRUE(pgo::parse_lsn("a/ffffffff", lsn));
    EXPECT_EQ(lsn, 0xAFFFFFFFFull);
    EXPECT_EQ(pgo::lsn_text(lsn), "A/FFFFFFFF");
    for (const char *bad : {"", "/", "0/", "/1", "0-1", "0/1/2", "123456789/0", "0/123456789", "g/0", " 0/1", "0/1 "})
        EXPECT_FALSE(pgo::parse_lsn(bad, lsn)) << bad;
}

namespace {
std::string be64(uint64_t v) {
    std::string s;
    for (int shift = 56; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
    return s;
}
} // namespace

TEST(Pgoutput, xlogdata_frame_carries_one_message) {
    auto msgs = load("types");
    std::string frame = "w" + be64(0x21D1DE0) + be64(0x21D1E10) + be64(123456789) + msgs[2];
    pgo::CopyFrame f;
    std::string error;
    ASSERT_TRUE(pgo::decode_copy_frame(frame, f, error)) << error;
    const auto &x = std::get<pgo::XLogData>(f);
    EXPECT_EQ(x.data_start, 0x21D1DE0u);
    EXPECT_EQ(x.wal_end, 0x21D1E10u);
    EXPECT_EQ(x.send_time_us, 123456789);
    EXPECT_EQ(x.payload, msgs[2]);
    pgo::Decoded d;
    ASSERT_TRUE(pgo::decode(x.payload, d, error)) << error;
    EXPECT_TRUE(std::holds_alternative<pgo::Insert>(d));
    for (size_t len = 0; len < 25; ++len)
        EXPECT_FALSE(pgo::decode_copy_frame(frame.substr(0, len), f, error)) << len;
}

TEST(Pgoutput, keepalive_frame_and_reply_request) {
    std::string k = "k" + be64(0x1234567890ull) + be64(static_cast<uint64_t>(-5)) + '\1';
    pgo::CopyFrame f;
    std::string error;
    ASSERT_TRUE(pgo::decode_copy_frame(k, f, error)) << error;
    const auto &ka = std::get<pgo::Keepalive>(f);
    EXPECT_EQ(ka.wal_end, 0x1234567890ull);
    EXPECT_EQ(ka.send_time_us, -5);
    EXPECT_TRUE(ka.reply_requested);
    k.back() = '\0';
    ASSERT_TRUE(pgo::decode_copy_frame(k, f, error));
    EXPECT_FALSE(std::get<pgo::Keepalive>(f).reply_requested);
    for (size_t len = 0; len < k.size(); ++len) EXPECT_FALSE(pgo::decode_copy_frame(k.substr(0, len), f, error)) << len;
    EXPECT_FALSE(pgo::decode_copy_frame(k + 'x', f, error));
    EXPECT_FALSE(pgo::decode_copy_frame("r" + k.substr(1), f, error));
    EXPECT_NE(error.find("unknown CopyData"), std::string::npos);
}

TEST(Pgoutput, standby_status_is_34_bytes_big_endian) {
    std::string s = pgo::standby_status(0x0102030405060708ull, 0x1112131415161718ull, 0x2122232425262728ull, -2, true);
    ASSERT_EQ(s.size(), 34u);
    EXPECT_EQ(s[0], 'r');
    EXPECT_EQ(s.substr(1, 8), be64(0x0102030405060708ull));
    EXPECT_EQ(s.substr(9, 8), be64(0x1112131415161718ull));
    EXPECT_EQ(s.substr(17, 8), be64(0x2122232425262728ull));
    EXPECT_EQ(s.substr(25, 8), be64(static_cast<uint64_t>(-2)));
    EXPECT_EQ(s[33], 1);
    EXPECT_EQ(pgo::standby_status(0, 0, 0, 0, false)[33], 0);
}

TEST(Pgoutput, pg_now_counts_from_2000) {
    int64_t unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
    int64_t pg = pgo::pg_now_us();
    EXPECT_NEAR(static_cast<double>(unix_us - pg), 946684800.0 * 1e6, 5e6);
}

TEST(Pgoutput, key_columns_prefer_the_primary_key_under_full_identity) {
    pgo::Relation r;
    r.replica_identity = 'f';
    r.columns = {{"id", 23, -1, true}, {"name", 25, -1, true}};
    EXPECT_EQ(pgo::key_columns(r), (std::vector<size_t>{0, 1})); // unknown primary key: all flagged
    r.columns[0].primary_key = true;
    r.primary_key_known = true;
    EXPECT_EQ(pgo::key_columns(r), (std::vector<size_t>{0}));
    r.replica_identity = 'i'; // the identity index is what every tuple carries
    r.columns[0].key = false;
    EXPECT_EQ(pgo::key_columns(r), (std::vector<size_t>{1}));
    r.replica_identity = 'n';
    EXPECT_EQ(pgo::key_columns(r), (std::vector<size_t>{0}));
    r.primary_key_known = false; // nothing known: the key flags as sent
    EXPECT_EQ(pgo::key_columns(r), (std::vector<size_t>{1}));
    r.columns[1].key = false;
    EXPECT_TRUE(pgo::key_columns(r).empty());
}
