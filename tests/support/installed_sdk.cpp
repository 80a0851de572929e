#include "installed_sdk.hpp"

#include "process.hpp"

#include <sstream>

namespace fobs_test {

namespace fs = std::filesystem;

std::pair<int, std::string> install_build_tree(const fs::path &prefix) {
    return run_command({"cmake", "--install", FOBS_TEST_BINARY_DIR, "--prefix", prefix.string()}, {},
                       std::chrono::seconds(120));
}

std::pair<int, std::string> build_and_install_plugin(const fs::path &source, const fs::path &build,
                                                     const fs::path &prefix,
                                                     const std::vector<std::string> &cmake_args) {
    std::vector<std::string> configure = {"cmake", "-S", source.string(), "-B", build.string(), "-G",
                                          "Ninja", "-DCMAKE_PREFIX_PATH=" + prefix.string()};
    configure.insert(configure.end(), cmake_args.begin(), cmake_args.end());
    // Building is slow on a loaded machine; configuring and installing are not.
    const std::pair<std::vector<std::string>, std::chrono::seconds> steps[] = {
        {configure, std::chrono::seconds(120)},
        {{"cmake", "--build", build.string()}, std::chrono::seconds(300)},
        {{"cmake", "--install", build.string(), "--prefix", prefix.string()}, std::chrono::seconds(60)},
    };
    for (const auto &[argv, timeout] : steps) {
        auto result = run_command(argv, {}, timeout);
        if (result.first != 0) return result;
    }
    return {0, {}};
}

std::vector<std::string> exported_symbols(const fs::path &library) {
    std::istringstream in(run_command({"nm", "-D", "--defined-only", library.string()}).second);
    std::vector<std::string> names;
    std::string line;
    // "<address> <type> <name>"
    while (std::getline(in, line)) {
        auto space = line.rfind(' ');
        if (space != std::string::npos) names.push_back(line.substr(space + 1));
    }
    return names;
}

} // namespace fobs_test
