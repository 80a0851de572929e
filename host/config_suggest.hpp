// "Did you mean ...?" hints for misspelled configuration keys and names.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::host {

/// Levenshtein distance, case-insensitive (a wrong case counts as no edit).
size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word`, when it is close enough to be a plausible typo
/// (distance <= max(2, |word| / 3), or one is a prefix of the other, at least 3 characters
/// long); "" otherwise.
std::string closest_match(std::string_view word, const std::vector<std::string> &candidates);

/// " (did you mean `x`?)" or "" — ready to append to a message.
std::string did_you_mean(std::string_view word, const std::vector<std::string> &candidates);

} // namespace fraiseql_observer::host
