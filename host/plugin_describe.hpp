// `fraiseql-observer plugins --describe`: a plugin's config key tables (ABI 1.1) as text, JSON
// or Markdown. The Markdown form is what docs/configuration.md's plugin sections are generated
// from (tests/unit/test_docs_generated.cpp keeps the committed text equal to it).
#pragma once

#include "plugin_loader.hpp"

#include <string>
#include <vector>

namespace fraiseql_observer::host {

enum class DescribeFormat { text, json, markdown };

/// Renders `plugins` (each component of each, in the order given). A component with no key
/// table says that it checks its config itself.
std::string describe_plugins(const std::vector<const LoadedPlugin *> &plugins, DescribeFormat format);

} // namespace fraiseql_observer::host
