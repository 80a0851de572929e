// Plugin discovery and loading (SPEC sections 2 and 9) on Boost.DLL.
//
// Loading a plugin runs its code (dlopen runs its constructors), so `run`, `validate` and the
// admin commands load only the plugins their config names, each found by its file name
// (load_named); only `plugins`, whose job is listing, opens every `*.so` file on the search
// path (discover). Both warn about search directories and plugin files that other users can
// write (world-writable, or group-writable by a group other than root's).
//
// Loading resolves symbols immediately (RTLD_NOW) from an absolute path, fetches `fobs_plugin_get_entry`, and checks
// the entry: ABI major equal, the oldest host minor it needs (`min_host_minor`, or for a 1.0
// entry its own minor) not newer than the host's, struct sizes large enough, required
// functions non-NULL, a name and version present, key tables well-formed. Each refusal has its
// own message that names the file. Then the entry's `init` runs (ABI 1.1; its failure refuses
// the plugin with its message). A LoadedPlugin keeps its library mapped for as long as anything
// holds a shared_ptr to it, so instances keep their plugin alive; when the last one goes, the
// entry's `deinit` runs, then the library is unloaded.
#pragma once

#include <fraiseql_observer/abi.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace boost::dll {
class shared_library;
}

namespace fraiseql_observer::host {

/// A plugin that was refused, with the reason (message names the file).
class PluginLoadError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

enum class ComponentKind { source, transport, action };
const char *to_string(ComponentKind k);
/// The kind with its article, for messages: "a source", "a transport", "an action".
const char *with_article(ComponentKind k);

struct LoadedPlugin {
    LoadedPlugin() = default;
    LoadedPlugin(const LoadedPlugin &) = delete;
    LoadedPlugin &operator=(const LoadedPlugin &) = delete;
    /// Calls the entry's `deinit` (when `init` ran), then unloads the library.
    ~LoadedPlugin();

    std::filesystem::path file; // absolute
    std::string name;
    std::string version;
    std::string description;
    uint16_t abi_major = 0;
    uint16_t abi_minor = 0;
    const fobs_plugin_entry *entry = nullptr;
    // Validated descriptors; nullptr when the plugin does not offer that kind.
    const fobs_source_desc *source = nullptr;
    const fobs_transport_desc *transport = nullptr;
    const fobs_action_desc *action = nullptr;
    std::shared_ptr<boost::dll::shared_library> library; // keeps the code mapped
    void (*deinit)(void) = nullptr; // set once `init` succeeded

    bool offers(ComponentKind k) const;
    std::vector<std::string> kinds() const; // {"source","transport","action"} subset
};

/// Loads and checks one file. Throws PluginLoadError with a message naming the file.
std::shared_ptr<LoadedPlugin> load_plugin(const std::filesystem::path &file);

struct PluginProblem {
    std::filesystem::path file;
    std::string message; // already names the file
};

/// The file names under which load_named looks for plugin `name`, in this order: `name.so`,
/// `libname.so`, and the SDK's `<name>_<kind>.so` (`name_source.so`, `name_transport.so`,
/// `name_action.so`; `fraiseql_observer_add_plugin(nats_transport …)` builds nats_transport.so).
std::vector<std::string> plugin_file_names(const std::string &name);

/// Why `path` (a plugin directory or file) is unsafe to load from: a sentence naming the path
/// when it is world-writable, or group-writable by a group other than root's (gid 0); empty
/// when it is not (or cannot be examined).
std::string writable_by_others(const std::filesystem::path &path);

/// All plugins found on a search path. First one wins on duplicate names; the later file is
/// reported as a problem naming both files.
class PluginRegistry {
  public:
    /// Scans `dirs` in order (non-existing dirs are skipped, recorded as a problem only when
    /// `strict`), loading every regular `*.so` file (sorted by name within a dir).
    void discover(const std::vector<std::filesystem::path> &dirs, bool strict = false);
    /// Loads the plugins called `names` and, when each is found by its file name
    /// (plugin_file_names, first match along `dirs`), nothing else. A file named like a plugin
    /// but declaring another name is a problem and the search goes on. A name no such file
    /// declares falls back to opening the remaining `*.so` files in search order until one
    /// declares it (all of them when none does, so "did you mean" hints see every name), and
    /// records a problem saying so. Writable-by-others directories and opened files are problems
    /// too (warnings: loading goes on).
    void load_named(const std::vector<std::filesystem::path> &dirs,
                    const std::vector<std::string> &names);
    /// Adds one already-loaded plugin (fails like discover on a duplicate name).
    void add(std::shared_ptr<LoadedPlugin> plugin);

    std::shared_ptr<LoadedPlugin> find(const std::string &name) const;
    const std::vector<std::shared_ptr<LoadedPlugin>> &plugins() const { return plugins_; }
    const std::vector<PluginProblem> &problems() const { return problems_; }
    /// Names of all loaded plugins (for "unknown plugin, did you mean" messages).
    std::vector<std::string> names() const;

  private:
    // Loads `file` unless it was tried before; adds the plugin (or records the problem).
    void try_load(const std::filesystem::path &file);
    void warn_if_writable(const std::filesystem::path &path);

    std::vector<std::shared_ptr<LoadedPlugin>> plugins_;
    std::vector<PluginProblem> problems_;
    std::vector<std::filesystem::path> tried_;  // every file opened, loaded or not
    std::vector<std::filesystem::path> checked_; // paths already examined by warn_if_writable
};

/// The search path of SPEC section 2: --plugin-dir values, $FRAISEQL_OBSERVER_PLUGIN_PATH
/// (colon-separated), [observer] plugin_dirs, then <exe dir>/../lib/fraiseql-observer/plugins.
std::vector<std::filesystem::path> plugin_search_path(
    const std::vector<std::string> &cli_dirs, const std::string &env_path,
    const std::vector<std::string> &config_dirs, const std::filesystem::path &executable);
// Details of plugin_search_path: empty entries (and an empty `executable`) are skipped; every
// directory is made absolute (relative ones against the current directory, so callers resolve
// config-relative dirs first), symlinks resolved where they exist, and duplicates dropped
// (first position wins).

/// Absolute path of the running executable (for plugin_search_path); empty if unknown.
std::filesystem::path executable_path();

} // namespace fraiseql_observer::host
