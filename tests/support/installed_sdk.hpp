// Test support: fraiseql-observer as a third party has it -- installed from the build tree to a
// prefix -- and an out-of-tree plugin project built against that installed SDK only.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace fobs_test {

/// `cmake --install` of the build tree (binary, shipped plugins, SDK) to `prefix`.
/// Returns {exit code, output}.
std::pair<int, std::string> install_build_tree(const std::filesystem::path &prefix);

/// Configures the CMake project `source` in `build` (Ninja, CMAKE_PREFIX_PATH = `prefix`, then
/// `cmake_args`), builds it and installs it to `prefix`. Returns {0, ""}, or the exit code and
/// output of the first step that failed.
std::pair<int, std::string> build_and_install_plugin(const std::filesystem::path &source,
                                                     const std::filesystem::path &build,
                                                     const std::filesystem::path &prefix,
                                                     const std::vector<std::string> &cmake_args = {});

/// Names of the dynamic symbols a shared library defines (`nm -D --defined-only`).
std::vector<std::string> exported_symbols(const std::filesystem::path &library);

} // namespace fobs_test
