// The CLI reference (host/cli_reference.cpp) is the one source of --help, the man page and the
// bash completion: its tables must agree with each other, so that adding an option or a
// command there is enough for all three.
#include "cli_reference.hpp"

#include <gtest/gtest.h>

#include <set>
#include <sstream>

using namespace fraiseql_observer::host;

namespace {

std::set<std::string> flags_of(const CliOption &o) {
    std::set<std::string> out;
    std::istringstream in{std::string(o.flags)};
    std::string w;
    while (in >> w) out.insert(w.back() == ',' ? w.substr(0, w.size() - 1) : w);
    return out;
}

std::set<std::string> all_flags() {
    std::set<std::string> out;
    for (const auto &o : cli_options()) out.merge(flags_of(o));
    return out;
}

} // namespace

TEST(CliReference, every_option_in_a_synopsis_is_described) {
    auto known = all_flags();
    for (const auto &u : cli_usages()) {
        std::istringstream in{std::string(u.args)};
        std::string w;
        while (in >> w) {
            auto start = w.find('-');
            if (start == std::string::npos || (start > 0 && w[start - 1] != '[' && w[start - 1] != '('))
                continue;
            auto flag = w.substr(start, w.find_first_of("]|)", start) - start);
            EXPECT_TRUE(known.count(flag)) << u.command << ": " << flag << " is not in the options table";
        }
    }
}

TEST(CliReference, every_command_has_a_synopsis_and_a_description) {
    std::set<std::string> described, with_usage;
    for (const auto &c : cli_commands()) described.insert(std::string(c.name));
    for (const auto &u : cli_usages()) with_usage.insert(std::string(u.command.substr(0, u.command.find(' '))));
    EXPECT_EQ(described, with_usage);
}

TEST(CliReference, every_option_is_offered_by_the_completion) {
    std::string completion = cli_bash_completion();
    for (const auto &o : cli_options()) {
        auto flags = flags_of(o);
        std::string longest = *std::max_element(flags.begin(), flags.end(),
                                                [](const auto &a, const auto &b) { return a.size() < b.size(); });
        EXPECT_NE(completion.find(longest), std::string::npos) << longest;
    }
    for (const auto &c : cli_commands())
        EXPECT_NE(completion.find("    " + std::string(c.name) + ")"), std::string::npos) << c.name;
}

TEST(CliReference, help_lines_fit_100_columns_and_man_page_is_ascii_roff) {
    std::istringstream help(cli_help_text());
    std::string line;
    std::getline(help, line); // the title line: name, version and tagline
    while (std::getline(help, line)) {
        // UTF-8 continuation bytes take no column.
        size_t columns = 0;
        for (unsigned char c : line) columns += (c & 0xC0) != 0x80;
        EXPECT_LE(columns, 100u) << line;
    }
    std::string man = cli_man_page();
    for (unsigned char c : man) ASSERT_LT(c, 0x80) << "non-ASCII byte in the man page";
    std::istringstream in(man);
    while (std::getline(in, line)) {
        // A text line starting with . or ' would be read as a request: only the requests the
        // generator writes may start that way.
        if (!line.empty() && (line[0] == '.' || line[0] == '\'')) {
            std::string request = line.substr(0, line.find(' '));
            EXPECT_TRUE(request == ".\\\"" || request == ".TH" || request == ".SH" || request == ".TP" ||
                        request == ".nf" || request == ".fi")
                << line;
        }
    }
    std::istringstream again(man);
    while (std::getline(again, line)) {
        if (line.rfind(".\\\"", 0) == 0) continue; // a comment
        EXPECT_EQ(line.find(" -"), std::string::npos) << "unescaped minus sign: " << line;
    }
}
