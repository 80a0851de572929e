// host::json_valid must accept what nlohmann::json::accept accepts (the parser the host used
// before; the one difference, text after a NUL byte, is tested on its own): fixed cases with the
// expected answer, then random texts built from JSON's sharp edges, compared one by one.
#include "json_text.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>
#include <string>
#include <vector>

using fraiseql_observer::host::json_valid;

namespace {

void expect(const std::string &text, bool valid) {
    EXPECT_EQ(nlohmann::json::accept(text), valid) << "nlohmann disagrees with the expectation for: " << text;
    EXPECT_EQ(json_valid(text), valid) << text;
}

} // namespace

TEST(JsonText, fixed_cases) {
    for (const char *t : {"{}", "[]", "0", "-0", "1.5e-7", "-12.0E+3", "true", "false", "null", "\"\"", " {\"a\" : [1, {\"b\":null}] } ",
                          "\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"",
                          "[[[[[]]]]]", "{\"a\":{\"a\":{\"a\":[]}}}", "\xEF\xBB\xBF{}", "123456789012345678901234567890.123"})
        expect(t, true);
    for (const char *t : {"", " ", "{", "}", "[", "{]", "[}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[,1]", "{,}", "01", "-", "1.", ".5",
                          "1e", "1e+", "+1", "tru", "nul", "True", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"",
                          "\"\\ud800\\u0041\"", "\"\x01\"", "\"\xC0\xAF\"", "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"", "\"\xC3\"",
                          "\"\xE2\x82\"", "\"\xFF\"", "{} {}", "1 2", "{\"a\":1 \"b\":2}", "[1 2]", "\"a\":1", "{1:2}", "nan",
                          "{\"a\":tru}", "//c\n{}", "{}x"})
        expect(t, false);
    // Numbers a double cannot hold are refused (nlohmann: "number overflow"); underflow is zero.
    for (const char *t : {"1e-99999", "0e999999", "-1e-400", "1.7976931348623157e308", "0.0000e+400"}) expect(t, true);
    for (const char *t : {"1e400", "-1e400", "[1e309]", "{\"a\":1E+999}", "1.7976931348623159e308", "10e308"}) expect(t, false);
    expect(std::string(308, '9'), true);
    expect(std::string(400, '9'), false);
    expect("0." + std::string(400, '9') + "e10", true);
    // nlohmann stops reading at a NUL byte and accepts what came before; we refuse the text.
    const std::string with_nul("{\"a\":1}\0junk", 12);
    EXPECT_TRUE(nlohmann::json::accept(with_nul));
    EXPECT_FALSE(json_valid(with_nul));
    EXPECT_FALSE(json_valid(std::string("\"a\0b\"", 5)));

    std::string deep = std::string(100000, '[') + std::string(100000, ']');
    EXPECT_TRUE(json_valid(deep));
    EXPECT_FALSE(json_valid(deep + "]"));
}

TEST(JsonText, agrees_with_nlohmann_on_random_texts) {
    const std::vector<std::string> pieces = {
        "{", "}", "[", "]", ",", ":", "\"", "\"k\"", "\"v\"", " ", "\n", "\t", "0", "1", "9", "-", "+", ".", "e", "E", "01",
        "true", "false", "null", "tru", "\\", "\\\"", "\\n", "\\u", "\\u00e9", "\\ud83d", "\\ude00", "\\uD800\\uDC00",
        "\\x", "a", "\xC3\xA9", "\xC3", "\xA9", "\xE2\x82\xAC", "\xED\xA0\x80", "\xF0\x9F\x98\x80", "\xF4\x90\x80\x80",
        "\xC0\xAF", "\xFF", "\x01", "\x7F", "\xEF\xBB\xBF", "{\"a\":1}", "[1,2]", "\"s p\"", "1.5e+3",
        "e308", "e309", "e-400", "e400", "1.8", "17976931348623157", "99999999999999999999", "0000"};
    const std::vector<std::string> seeds = {
        R"({"entity_type":"Order","operation":"INSERT","entity_id":"1","entity":{"total":12.50,"tags":["a","b"]}})",
        R"([1,-2.5e3,true,false,null,"x\u00e9",{"k":[]}])", R"({"a":{"b":{"c":[1,[2,[3]]]}}})", R"("\ud83d\ude00")", "-0.0e-0"};
    std::mt19937 rng(20261127);
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    int valid_seen = 0, disagreements = 0;
    for (int i = 0; i < 200000; ++i) {
        std::string t;
        if (i % 2 == 0) { // a mutated seed
            t = seeds[pick(seeds.size())];
            for (int m = 1 + static_cast<int>(pick(3)); m > 0; --m) {
                size_t at = pick(t.size() + 1);
                switch (pick(3)) {
                case 0: t.insert(at, pieces[pick(pieces.size())]); break;
                case 1: if (at < t.size()) t.erase(at, 1 + pick(3)); break;
                default: if (at < t.size()) t[at] = pieces[pick(pieces.size())][0];
                }
            }
        } else { // a random sequence of pieces
            for (size_t n = 1 + pick(12); n > 0; --n) t += pieces[pick(pieces.size())];
        }
        bool want = nlohmann::json::accept(t);
        valid_seen += want;
        if (json_valid(t) != want && ++disagreements <= 10)
            ADD_FAILURE() << "nlohmann says " << (want ? "valid" : "invalid") << ": " << ::testing::PrintToString(t);
    }
    EXPECT_EQ(disagreements, 0);
    EXPECT_GT(valid_seen, 5000) << "the generator must also produce valid texts";
}

namespace {

// What the member-collecting json_valid must say about `t`: the same verdict as the plain
// check, and for a valid object, members that are exactly the tree's (key decoded, value equal
// to the tree's, a repeated key in its first place with its last value).
void expect_members_agree(const std::string &t) {
    using fraiseql_observer::host::JsonMember;
    std::vector<JsonMember> members;
    const bool valid = json_valid(t, members);
    ASSERT_EQ(valid, json_valid(t)) << ::testing::PrintToString(t);
    if (!valid) return;
    auto tree = nlohmann::ordered_json::parse(t);
    if (!tree.is_object()) {
        EXPECT_TRUE(members.empty()) << ::testing::PrintToString(t);
        return;
    }
    nlohmann::ordered_json rebuilt = nlohmann::ordered_json::object();
    for (const auto &m : members) {
        ASSERT_TRUE(!m.key.empty() && m.key.front() == '"' && m.key.back() == '"') << ::testing::PrintToString(t);
        ASSERT_FALSE(m.value.empty()) << ::testing::PrintToString(t);
        ASSERT_NE(m.value.front(), ' ') << ::testing::PrintToString(t);
        ASSERT_NE(m.value.back(), ' ') << ::testing::PrintToString(t);
        auto key = nlohmann::ordered_json::parse(m.key);
        rebuilt[key.get<std::string>()] = nlohmann::ordered_json::parse(m.value);
    }
    EXPECT_EQ(rebuilt.dump(), tree.dump()) << ::testing::PrintToString(t);
}

} // namespace

TEST(JsonText, collects_the_top_level_members_of_an_object) {
    using fraiseql_observer::host::JsonMember;
    std::vector<JsonMember> members;
    ASSERT_TRUE(json_valid("\xEF\xBB\xBF { \"a\" : 1 , \"b\":{\"c\":[1,{}]},\"d\" :\"x\\\"y\", \"e\":[] ,\"f\":{}}\n", members));
    ASSERT_EQ(members.size(), 5u);
    EXPECT_EQ(members[0].key, "\"a\"");
    EXPECT_EQ(members[0].value, "1");
    EXPECT_EQ(members[1].key, "\"b\"");
    EXPECT_EQ(members[1].value, "{\"c\":[1,{}]}");
    EXPECT_EQ(members[2].value, "\"x\\\"y\"");
    EXPECT_EQ(members[3].value, "[]");
    EXPECT_EQ(members[4].value, "{}");
    EXPECT_EQ(members[4].key, "\"f\"");
    ASSERT_TRUE(json_valid("[{\"a\":1}]", members));
    EXPECT_TRUE(members.empty()) << "only an object's own members";
    ASSERT_TRUE(json_valid("{\"a\":1,\"a\":2}", members));
    EXPECT_EQ(members.size(), 2u) << "repeated keys are reported as written; the event model keeps the last";
    for (const char *t : {"{}", "{\"\\u0061\":true,\"b\":null,\"a\":false}", " {\"x\":-1.5e3} ", "\"s\"", "{\"a\":{\"a\":{\"a\":[]}}}",
                          "{\"k\":[[[]]],\"n\":12345678901234567890}"})
        expect_members_agree(t);
    // Random objects and near-objects: mutated event-like texts.
    const std::vector<std::string> pieces = {"{", "}", "[", "]", ",", ":", "\"", "\"k\"", " ", "\n", "0", "-", "true", "null",
                                             "\\\"", "\\u0061", "{\"a\":1}", "[1,2]", "\"id\":", ",\"entity\":{}"};
    const std::string seed =
        R"({"id":"n1","entity_type":"Order","operation":"INSERT","entity_id":"1","entity":{"total":12.50,"tags":["a","b"]},"id":"n2"})";
    std::mt19937 rng(20261203);
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    for (int i = 0; i < 50000; ++i) {
        std::string t = seed;
        for (int m = static_cast<int>(pick(3)); m > 0; --m) {
            size_t at = pick(t.size() + 1);
            if (pick(2) == 0) t.insert(at, pieces[pick(pieces.size())]);
            else if (at < t.size()) t.erase(at, 1 + pick(3));
        }
        expect_members_agree(t);
        if (::testing::Test::HasFatalFailure()) return;
    }
}
