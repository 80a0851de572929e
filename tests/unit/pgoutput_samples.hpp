// Captured pgoutput messages (tests/unit/data/pgoutput/*.hex, made by capture.sh there from a
// real PostgreSQL 15): comment lines with the SQL, then one message per line in hex.
#pragma once

#include <pgoutput.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

namespace pgoutput_samples {

inline std::vector<std::string> load(const std::string &name) {
    std::ifstream in(std::string(FOBS_TEST_SOURCE_DIR) + "/tests/unit/data/pgoutput/" + name + ".hex");
    EXPECT_TRUE(in) << name;
    std::vector<std::string> msgs;
    auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::string bytes;
        for (size_t i = 0; i + 1 < line.size(); i += 2)
            bytes += static_cast<char>(nibble(line[i]) << 4 | nibble(line[i + 1]));
        msgs.push_back(std::move(bytes));
    }
    return msgs;
}

inline const char *names[] = {"types", "composite_key", "replica_full", "toast", "type_messages",
                              "truncate", "messages", "origin", "alter_table", "multi_row"};

/// Decodes every message of a sample (the vector of raw messages must outlive the views).
inline std::vector<fraiseql_observer::pg_listen::pgoutput::Decoded> decode_all(const std::vector<std::string> &msgs) {
    std::vector<fraiseql_observer::pg_listen::pgoutput::Decoded> out;
    for (const auto &m : msgs) {
        fraiseql_observer::pg_listen::pgoutput::Decoded d;
        std::string error;
        EXPECT_TRUE(fraiseql_observer::pg_listen::pgoutput::decode(m, d, error)) << error;
        out.push_back(std::move(d));
    }
    return out;
}

} // namespace pgoutput_samples
