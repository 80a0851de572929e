// Environment interpolation of configuration string values (SPEC section 3).
//
// Applied to parsed TOML values, never to the raw text, so a variable's content can never
// inject TOML syntax. Syntax:
//   ${VAR}           the variable's value; an error when VAR is unset
//   ${VAR:-default}  VAR's value when set and non-empty, else `default` (taken literally, up to
//                    the first `}`; no nesting)
//   $$               a literal `$`
// A `$` followed by anything else is kept as it is (so "pa$word" or a regex ending in `$` need no
// escaping); only `${` starts a reference.
#pragma once

#include "config.hpp"

#include <stdexcept>
#include <string>
#include <string_view>

namespace fraiseql_observer::host {

/// Why a string could not be interpolated. The message names the variable when there is one and
/// never contains the string's text or any variable's value (either may be a secret).
class InterpolationError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct Interpolated {
    std::string value;
    bool used_env = false; // the text contained at least one ${...} reference
};

/// Expands `text`. Throws InterpolationError.
Interpolated interpolate_env(std::string_view text, const EnvLookup &env);

} // namespace fraiseql_observer::host
