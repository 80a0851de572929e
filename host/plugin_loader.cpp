// Plugin discovery and loading on Boost.DLL (SPEC sections 2 and 9).
#include "plugin_loader.hpp"

#include <fraiseql_observer/config_keys.hpp>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>
#include <grp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string_view>
#include <system_error>

namespace fraiseql_observer::host {

namespace fs = std::filesystem;

namespace {

// Sizes of the ABI 1.0 layouts. They are spelled as "offset of the last 1.0 field + its size"
// rather than sizeof() so that they stay the 1.0 sizes when a later minor appends fields.
constexpr uint32_t entry_size_1_0 =
    offsetof(fobs_plugin_entry, action) + sizeof(fobs_plugin_entry::action);
constexpr uint32_t entry_fixed_size =
    offsetof(fobs_plugin_entry, abi_minor) + sizeof(fobs_plugin_entry::abi_minor);
constexpr uint32_t source_desc_size_1_0 =
    offsetof(fobs_source_desc, admin) + sizeof(fobs_source_desc::admin);
constexpr uint32_t transport_desc_size_1_0 =
    offsetof(fobs_transport_desc, consumer_close) + sizeof(fobs_transport_desc::consumer_close);
constexpr uint32_t action_desc_size_1_0 =
    offsetof(fobs_action_desc, execute) + sizeof(fobs_action_desc::execute);

std::string version_text(unsigned major, unsigned minor) {
    return std::to_string(major) + "." + std::to_string(minor);
}

[[noreturn]] void refuse(const fs::path &file, const std::string &reason) {
    throw PluginLoadError("plugin '" + file.string() + "' refused: " + reason);
}

bool valid_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

// Refuses a descriptor that is too small or lacks a required function.
struct DescCheck {
    const fs::path &file;
    const char *kind;

    void size(uint32_t got, uint32_t need) const {
        if (got < need)
            refuse(file, std::string(kind) + " descriptor struct_size " + std::to_string(got) +
                             " is smaller than the ABI 1.0 " + kind + " descriptor (" +
                             std::to_string(need) + " bytes)");
    }
    template <class F> void required(F *fn, const char *name) const {
        if (fn == nullptr)
            refuse(file, std::string(kind) + " descriptor has no '" + name +
                             "' function (NULL), which is required");
    }
};

void check_source(const fs::path &file, const fobs_source_desc *d) {
    DescCheck c{file, "source"};
    c.size(d->struct_size, source_desc_size_1_0);
    c.required(d->create, "create");
    c.required(d->destroy, "destroy");
    c.required(d->start, "start");
    c.required(d->stop, "stop");
}

void check_transport(const fs::path &file, const fobs_transport_desc *d) {
    DescCheck c{file, "transport"};
    c.size(d->struct_size, transport_desc_size_1_0);
    c.required(d->create, "create");
    c.required(d->destroy, "destroy");
    c.required(d->start, "start");
    c.required(d->stop, "stop");
    c.required(d->publish, "publish");
    c.required(d->consumer_open, "consumer_open");
    c.required(d->consumer_close, "consumer_close");
}

void check_action(const fs::path &file, const fobs_action_desc *d) {
    DescCheck c{file, "action"};
    c.size(d->struct_size, action_desc_size_1_0);
    c.required(d->create, "create");
    c.required(d->destroy, "destroy");
    c.required(d->start, "start");
    c.required(d->stop, "stop");
    c.required(d->execute, "execute");
}

// A key table must be readable by this host (entries at least as large as its own
// fobs_config_key) and well-formed (names, types, defaults of the right type).
void check_keys(const fs::path &file, const char *kind, const fobs_config_key *keys, size_t count) {
    if (!keys || count == 0) return;
    if (keys[0].struct_size < sizeof(fobs_config_key))
        refuse(file, std::string(kind) + " config key table entries are " +
                         std::to_string(keys[0].struct_size) + " bytes, smaller than ABI 1.1's " +
                         std::to_string(sizeof(fobs_config_key)));
    if (std::string why = sdk::check_key_table(sdk::KeyTable(keys, count)); !why.empty())
        refuse(file, std::string(kind) + " " + why);
}

// Absolute, normalised, symlinks resolved where the path exists; never throws.
fs::path absolute_path(const fs::path &p) {
    std::error_code ec;
    fs::path abs = fs::absolute(p, ec);
    if (ec) abs = p;
    fs::path canon = fs::weakly_canonical(abs, ec);
    fs::path r = ec ? abs.lexically_normal() : canon;
    // "dir/" and "dir" are the same directory.
    if (!r.has_filename() && r.has_relative_path()) r = r.parent_path();
    return r;
}

// Regular `*.so` files of `dir` (symlinks followed), sorted by file name. Records a problem
// when `dir` is missing or unreadable and `strict` is set.
std::vector<fs::path> so_files(const fs::path &dir, bool strict, std::vector<PluginProblem> &problems) {
    std::vector<fs::path> files;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        if (strict)
            problems.push_back({dir, "plugin directory '" + dir.string() +
                                         "' does not exist or is not a directory"});
        return files;
    }
    fs::directory_iterator it(dir, ec), end;
    if (ec) {
        if (strict)
            problems.push_back(
                {dir, "plugin directory '" + dir.string() + "' is unreadable: " + ec.message()});
        return files;
    }
    for (; it != end; it.increment(ec)) {
        if (ec) break;
        std::error_code sec;
        if (it->path().extension() == ".so" && it->is_regular_file(sec)) // follows symlinks
            files.push_back(absolute_path(it->path()));
    }
    std::sort(files.begin(), files.end(),
              [](const fs::path &a, const fs::path &b) { return a.filename() < b.filename(); });
    return files;
}

std::string group_name(gid_t gid) {
    std::vector<char> buf(4096);
    group g{}, *found = nullptr;
    if (::getgrgid_r(gid, &g, buf.data(), buf.size(), &found) == 0 && found)
        return "'" + std::string(found->gr_name) + "' (gid " + std::to_string(gid) + ")";
    return "gid " + std::to_string(gid);
}

} // namespace

std::vector<std::string> plugin_file_names(const std::string &name) {
    return {name + ".so", "lib" + name + ".so", name + "_source.so", name + "_transport.so",
            name + "_action.so"};
}

std::string writable_by_others(const fs::path &path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {};
    const bool dir = S_ISDIR(st.st_mode);
    const std::string what = std::string(dir ? "plugin directory '" : "plugin file '") +
                             path.string() + "'";
    const std::string harm = dir ? "put a plugin into it that the observer would load and run"
                                 : "change the code the observer loads and runs";
    if (st.st_mode & S_IWOTH)
        return what + " is world-writable: any user of this machine can " + harm +
               " (chmod o-w '" + path.string() + "')";
    if ((st.st_mode & S_IWGRP) && st.st_gid != 0)
        return what + " is writable by group " + group_name(st.st_gid) + ": any member can " +
               harm + " (chmod g-w '" + path.string() + "')";
    return {};
}

const char *with_article(ComponentKind k) {
    switch (k) {
    case ComponentKind::source:
        return "a source";
    case ComponentKind::transport:
        return "a transport";
    case ComponentKind::action:
        return "an action";
    }
    return "an unknown kind of";
}

const char *to_string(ComponentKind k) {
    switch (k) {
    case ComponentKind::source:
        return "source";
    case ComponentKind::transport:
        return "transport";
    case ComponentKind::action:
        return "action";
    }
    return "unknown";
}

bool LoadedPlugin::offers(ComponentKind k) const {
    switch (k) {
    case ComponentKind::source:
        return source != nullptr;
    case ComponentKind::transport:
        return transport != nullptr;
    case ComponentKind::action:
        return action != nullptr;
    }
    return false;
}

std::vector<std::string> LoadedPlugin::kinds() const {
    std::vector<std::string> r;
    for (auto k : {ComponentKind::source, ComponentKind::transport, ComponentKind::action})
        if (offers(k)) r.emplace_back(to_string(k));
    return r;
}

std::shared_ptr<LoadedPlugin> load_plugin(const fs::path &file_in) {
    // An absolute path keeps dlopen from searching LD_LIBRARY_PATH and the system dirs.
    const fs::path file = absolute_path(file_in);
    std::error_code fec;
    if (!fs::exists(file, fec)) refuse(file, "no such file");
    if (!fs::is_regular_file(file, fec)) refuse(file, "not a regular file");

    auto library = std::make_shared<boost::dll::shared_library>();
    std::error_code ec;
    // RTLD_NOW: a plugin with an unresolvable symbol fails here, with a message, instead of
    // crashing the host on first call. RTLD_LOCAL (Boost.DLL's default) keeps plugins apart.
    library->load(file, boost::dll::load_mode::rtld_now, ec);
    if (ec || !library->is_loaded()) {
        const char *why = ::dlerror();
        refuse(file, std::string("not a loadable shared library (") +
                         (why ? why : ec.message().c_str()) + ")");
    }
    if (!library->has(FOBS_ENTRY_SYMBOL))
        refuse(file, std::string("not a fraiseql-observer plugin: it does not export '") +
                         FOBS_ENTRY_SYMBOL + "'");

    auto get_entry = library->get<const fobs_plugin_entry *()>(FOBS_ENTRY_SYMBOL);
    const fobs_plugin_entry *entry = get_entry();
    if (entry == nullptr) refuse(file, std::string(FOBS_ENTRY_SYMBOL) + "() returned NULL");

    if (entry->struct_size < entry_fixed_size)
        refuse(file, "entry struct_size " + std::to_string(entry->struct_size) +
                         " is too small to hold even the ABI version");
    const std::string plugin_abi = version_text(entry->abi_major, entry->abi_minor);
    const std::string host_abi = version_text(FOBS_ABI_MAJOR, FOBS_ABI_MINOR);
    if (entry->abi_major != FOBS_ABI_MAJOR)
        refuse(file, "built for ABI " + plugin_abi + ", this host speaks " + host_abi +
                         " (the ABI major must match)");
    // The oldest host minor the plugin works with: a 1.1+ entry says so; a 1.0 entry has no
    // such field and needs its own minor. A newer plugin that needs nothing new loads, and the
    // host reads only the fields it knows (each struct says its size).
    const bool states_min = FOBS_HAS_FIELD(entry, fobs_plugin_entry, min_host_minor);
    const unsigned needs_minor = states_min ? entry->min_host_minor : entry->abi_minor;
    if (states_min && entry->min_host_minor > entry->abi_minor)
        refuse(file, "min_host_minor " + std::to_string(entry->min_host_minor) +
                         " is newer than the ABI " + plugin_abi + " the plugin was built with");
    if (needs_minor > FOBS_ABI_MINOR)
        refuse(file, "plugin (built for ABI " + plugin_abi + ") needs a host of ABI " +
                         version_text(entry->abi_major, needs_minor) + " or newer, this host provides " +
                         host_abi + " (upgrade the host or rebuild the plugin against SDK " +
                         host_abi + ")");
    if (entry->struct_size < entry_size_1_0)
        refuse(file, "entry struct_size " + std::to_string(entry->struct_size) +
                         " is smaller than the ABI 1.0 entry (" + std::to_string(entry_size_1_0) +
                         " bytes)");

    if (entry->name == nullptr || entry->name[0] == '\0') refuse(file, "the plugin has no name");
    const std::string name = entry->name;
    if (!valid_name(name))
        refuse(file, "invalid plugin name '" + name +
                         "' (only lower-case letters, digits and '_' are allowed)");
    if (entry->version == nullptr || entry->version[0] == '\0')
        refuse(file, "plugin '" + name + "' has no version");
    if (!entry->source && !entry->transport && !entry->action)
        refuse(file, "plugin '" + name + "' offers no component (no source, transport or action)");

    if (entry->source) check_source(file, entry->source);
    if (entry->transport) check_transport(file, entry->transport);
    if (entry->action) check_action(file, entry->action);
    if (entry->source && FOBS_HAS_FIELD(entry->source, fobs_source_desc, config_key_count))
        check_keys(file, "source", entry->source->config_keys, entry->source->config_key_count);
    if (entry->transport && FOBS_HAS_FIELD(entry->transport, fobs_transport_desc, config_key_count))
        check_keys(file, "transport", entry->transport->config_keys, entry->transport->config_key_count);
    if (entry->action && FOBS_HAS_FIELD(entry->action, fobs_action_desc, config_key_count))
        check_keys(file, "action", entry->action->config_keys, entry->action->config_key_count);

    auto p = std::make_shared<LoadedPlugin>();
    p->file = file;
    p->name = name;
    p->version = entry->version;
    p->description = entry->description ? entry->description : "";
    p->abi_major = entry->abi_major;
    p->abi_minor = entry->abi_minor;
    p->entry = entry;
    p->source = entry->source;
    p->transport = entry->transport;
    p->action = entry->action;
    p->library = std::move(library);

    // Library-wide setup, once, before any component exists (ABI 1.1).
    if (FOBS_HAS_FIELD(entry, fobs_plugin_entry, deinit) && (entry->init || entry->deinit)) {
        if (entry->init) {
            char message[512] = "";
            fobs_error err{};
            err.struct_size = sizeof(err);
            err.message = message;
            err.message_capacity = sizeof(message);
            if (entry->init(&err) != FOBS_OK)
                refuse(file, "plugin '" + name + "' failed to initialise: " +
                                 (message[0] ? std::string(message) : std::string("no reason given")));
        }
        p->deinit = entry->deinit;
    }
    return p;
}

LoadedPlugin::~LoadedPlugin() {
    // Every instance holds a shared_ptr to its plugin, so this runs after the last component
    // was destroyed; the library member is released after this body: deinit, then unload.
    if (deinit) deinit();
}

void PluginRegistry::warn_if_writable(const fs::path &path) {
    if (std::find(checked_.begin(), checked_.end(), path) != checked_.end()) return;
    checked_.push_back(path);
    if (std::string why = writable_by_others(path); !why.empty()) problems_.push_back({path, why});
}

void PluginRegistry::try_load(const fs::path &file) {
    if (std::find(tried_.begin(), tried_.end(), file) != tried_.end()) return;
    tried_.push_back(file);
    warn_if_writable(file);
    try {
        add(load_plugin(file));
    } catch (const std::exception &e) {
        problems_.push_back({file, e.what()});
    }
}

void PluginRegistry::discover(const std::vector<fs::path> &dirs, bool strict) {
    for (const auto &dir_in : dirs) {
        const fs::path dir = absolute_path(dir_in);
        auto files = so_files(dir, strict, problems_);
        std::error_code ec;
        if (fs::is_directory(dir, ec)) warn_if_writable(dir);
        // The same file reached twice (symlinked dirs) is one plugin, not a duplicate.
        for (const auto &f : files) try_load(f);
    }
}

void PluginRegistry::load_named(const std::vector<fs::path> &dirs,
                                const std::vector<std::string> &names) {
    std::vector<fs::path> search;
    for (const auto &d : dirs) {
        fs::path dir = absolute_path(d);
        std::error_code ec;
        if (!fs::is_directory(dir, ec) ||
            std::find(search.begin(), search.end(), dir) != search.end())
            continue;
        warn_if_writable(dir); // any of them could receive a file named like a plugin
        search.push_back(std::move(dir));
    }
    std::vector<std::string> missing;
    for (const auto &name : names) {
        if (find(name) || std::find(missing.begin(), missing.end(), name) != missing.end())
            continue;
        for (const auto &dir : search) {
            for (const auto &file_name : plugin_file_names(name)) {
                const fs::path f = dir / file_name;
                std::error_code ec;
                if (!fs::is_regular_file(f, ec)) continue;
                const fs::path abs = absolute_path(f);
                const bool new_file = std::find(tried_.begin(), tried_.end(), abs) == tried_.end();
                try_load(abs);
                if (find(name)) break;
                const auto declared = std::find_if(plugins_.begin(), plugins_.end(),
                                                   [&](const auto &p) { return p->file == abs; });
                if (new_file && declared != plugins_.end())
                    problems_.push_back({abs, "plugin file '" + abs.string() +
                                                  "' is named for plugin '" + name +
                                                  "' but declares '" + (*declared)->name +
                                                  "'; looking further"});
            }
            if (find(name)) break;
        }
        if (!find(name)) missing.push_back(name);
    }
    if (missing.empty()) return;

    // Not found by file name: open the other files, in search order, until every missing name
    // is found. This runs their code, which is what the file name rule avoids: say so.
    auto all_found = [&] {
        return std::all_of(missing.begin(), missing.end(), [&](const auto &n) { return find(n) != nullptr; });
    };
    for (const auto &dir : search) {
        for (const auto &f : so_files(dir, false, problems_)) {
            if (all_found()) break;
            try_load(f);
        }
    }
    for (const auto &name : missing) {
        std::string expected;
        for (const auto &f : plugin_file_names(name)) expected += (expected.empty() ? "" : ", ") + f;
        std::string why = "no file named for plugin '" + name + "' (" + expected +
                          ") on the plugin search path, so other plugin files were opened (which "
                          "runs their code) to look for it: ";
        if (auto p = find(name))
            problems_.push_back({p->file, why + "it is '" + p->file.string() + "'; rename it to " +
                                              name + ".so so that only it is opened"});
        else
            problems_.push_back({{}, why + "no plugin file declares it"});
    }
}

void PluginRegistry::add(std::shared_ptr<LoadedPlugin> plugin) {
    if (auto existing = find(plugin->name))
        throw PluginLoadError("plugin '" + plugin->file.string() + "' refused: its name '" +
                              plugin->name + "' is already taken by '" +
                              existing->file.string() + "' (the first one found wins)");
    plugins_.push_back(std::move(plugin));
}

std::shared_ptr<LoadedPlugin> PluginRegistry::find(const std::string &name) const {
    for (const auto &p : plugins_)
        if (p->name == name) return p;
    return nullptr;
}

std::vector<std::string> PluginRegistry::names() const {
    std::vector<std::string> r;
    r.reserve(plugins_.size());
    for (const auto &p : plugins_) r.push_back(p->name);
    std::sort(r.begin(), r.end());
    return r;
}

std::vector<fs::path> plugin_search_path(const std::vector<std::string> &cli_dirs,
                                         const std::string &env_path,
                                         const std::vector<std::string> &config_dirs,
                                         const fs::path &executable) {
    std::vector<fs::path> r;
    auto push = [&r](const fs::path &p) {
        if (p.empty()) return;
        fs::path abs = absolute_path(p);
        if (std::find(r.begin(), r.end(), abs) == r.end()) r.push_back(std::move(abs));
    };
    for (const auto &d : cli_dirs) push(d);
    for (std::size_t start = 0; start <= env_path.size();) {
        std::size_t colon = env_path.find(':', start);
        if (colon == std::string::npos) colon = env_path.size();
        push(env_path.substr(start, colon - start)); // empty entries are skipped by push
        start = colon + 1;
    }
    for (const auto &d : config_dirs) push(d);
    if (!executable.empty())
        push(absolute_path(executable).parent_path() / ".." / "lib" / "fraiseql-observer" /
             "plugins");
    return r;
}

fs::path executable_path() {
    std::error_code ec;
    fs::path p = boost::dll::program_location(ec);
    return ec ? fs::path() : p;
}

} // namespace fraiseql_observer::host
