#include "config_suggest.hpp"

#include <algorithm>
#include <cctype>

namespace fraiseql_observer::host {

size_t edit_distance(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t above = row[j];
            const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string closest_match(std::string_view word, const std::vector<std::string> &candidates) {
    const size_t limit = std::max<size_t>(2, word.size() / 3);
    std::string best;
    size_t best_distance = limit + 1;
    // A longer spelling of a short candidate ("warning" for "warn") is a typo too, whatever the
    // edit distance says.
    for (const auto &candidate : candidates) {
        const std::string_view shorter = candidate.size() < word.size() ? std::string_view(candidate) : word;
        const std::string_view longer = candidate.size() < word.size() ? word : std::string_view(candidate);
        if (shorter.size() >= 3 && edit_distance(longer.substr(0, shorter.size()), shorter) == 0)
            return candidate;
    }
    for (const auto &candidate : candidates) {
        const size_t d = edit_distance(word, candidate);
        if (d < best_distance) {
            best_distance = d;
            best = candidate;
        }
    }
    return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string> &candidates) {
    const std::string best = closest_match(word, candidates);
    return best.empty() ? std::string() : " (did you mean `" + best + "`?)";
}

} // namespace fraiseql_observer::host
