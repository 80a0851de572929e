#include "cli_reference.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <vector>

namespace fraiseql_observer::host {

namespace {

constexpr std::string_view k_tagline =
    "turns PostgreSQL changes into events on NATS JetStream and runs actions on them";

// ---- The reference. One line per synopsis, command, option, exit code, variable, file. ------

constexpr CliUsage k_usages[] = {
    {"run", "[-c FILE] [--role all|publisher|worker]"},
    {"validate", "[-c FILE] [--role all|publisher|worker]"},
    {"plugins", "[-c FILE] [--json]"},
    {"plugins", "--describe (NAME... | --all) [--format text|json|markdown]"},
    {"status", "[-c FILE] [--json]"},
    {"dlq list", "[-c FILE] [--pipeline NAME] [--limit N] [--json]"},
    {"dlq show", "[-c FILE] [--pipeline NAME] --seq N"},
    {"dlq replay", "[-c FILE] [--pipeline NAME] (--seq N | --all)"},
    {"dlq purge", "[-c FILE] [--pipeline NAME] (--seq N | --all)"},
    {"sql", "[-c FILE] [--schema NAME] [--mode outbox|cdc]"},
    {"init", "[-c FILE] [--force]"},
    {"top", "[--url URL] [--once]"},
};

constexpr CliCommand k_commands[] = {
    {"run", "Run the configured pipelines until SIGTERM or SIGINT, then drain (up to [observer] "
            "shutdown_timeout_secs) and exit 0."},
    {"validate", "Check the config, load the plugins, let each plugin check its own config. Opens "
                 "no connection. Exit 0 when valid, 2 with file:line:col and key when not."},
    {"plugins", "List the plugins found on the plugin search path (file, name, kind, version, "
                "ABI). With --describe, the config keys each named plugin accepts (type, default, "
                "range or values, help), from its key table."},
    {"status", "Per pipeline, what its source and transport report about themselves "
               "(fobs.status/1): e.g. stream messages/bytes, consumer pending / ack-pending / "
               "redelivered, cluster replicas, DLQ depth, outbox backlog or replication slot lag."},
    {"dlq", "Inspect, replay or purge dead-lettered events of a pipeline's transport: list the "
            "entries, show one, replay (publish again, then remove) or purge one (--seq) or all "
            "(--all). replay --all counts up done/total and the rate on a terminal, and prints "
            "one progress line at a time otherwise."},
    {"sql", "Print the SQL that installs the outbox table, capture() trigger and emit() helper; "
            "with --mode cdc (or a config whose first source is in cdc mode), the publication, "
            "replica-identity and replication-slot SQL of the configured cdc source."},
    {"init", "Write a commented starter fraiseql-observer.toml (refuses to overwrite without "
             "--force)."},
    {"top", "A live view of a running instance, refreshed every second from its /metrics: per "
            "pipeline events/s in (from the source) and out (action executions that succeeded), "
            "action time p50/p99 over the last second, failures/s, retries/s, parked events, "
            "consumer pending, events dead-lettered, outbox backlog or replication slot lag. q "
            "quits. When stdout is not a terminal it prints a plain frame every second."},
};

constexpr CliOption k_options[] = {
    {"-c, --config", "FILE",
     "Config file. Default: $FRAISEQL_OBSERVER_CONFIG, else ./fraiseql-observer.toml when "
     "present, else built-in defaults ($DATABASE_URL, $NATS_URL). FraiseQL's fraiseql.toml is "
     "accepted too (its [observers] section). For init, the file to write.",
     "<file>"},
    {"--role", "ROLE",
     "all (default): publish and consume; publisher: sources to transports only; worker: "
     "transports to actions only.",
     "all publisher worker"},
    {"--plugin-dir", "DIR",
     "Extra plugin directory (repeatable). Search path: --plugin-dir, "
     "$FRAISEQL_OBSERVER_PLUGIN_PATH (colon-separated), [observer] plugin_dirs, then "
     "<prefix>/lib/fraiseql-observer/plugins next to the binary.",
     "<dir>", "run validate plugins status dlq sql"},
    {"--json", "", "Machine-readable output (plugins, status, dlq)."},
    {"--pipeline", "NAME", "The pipeline whose DLQ to use (needed when there are several)."},
    {"--limit", "N", "dlq list: at most N entries (default 100)."},
    {"--seq", "N", "dlq show, replay, purge: the entry with this sequence number."},
    {"--all", "", "dlq replay, purge: every entry. plugins --describe: every plugin found."},
    {"--describe", "", "plugins: print the config key tables of the named plugins."},
    {"--format", "FORMAT", "plugins --describe: text (default), json or markdown.",
     "text json markdown"},
    {"--schema", "NAME", "sql: the schema of the outbox objects (default fraiseql_observer)."},
    {"--mode", "MODE", "sql: outbox (default) or cdc.", "outbox cdc"},
    {"--force", "", "init: overwrite an existing file."},
    {"--url", "URL",
     "top: the instance's metrics endpoint, http://HOST:PORT or HOST:PORT (default "
     "http://127.0.0.1:9464)."},
    {"--once", "", "top: print one frame (rates over one second) and exit."},
    {"-h, --help", "", "This text."},
    {"-V, --version", "", "Print the version and the plugin ABI version."},
};

constexpr CliTerm k_exit_codes[] = {
    {"0", "Success (run: stopped by SIGTERM or SIGINT after draining)."},
    {"1", "Runtime failure: a connection or admin operation failed, a pipeline could not start."},
    {"2", "Usage or configuration error; the message names the file, line, column and key."},
};

constexpr CliTerm k_environment[] = {
    {"FRAISEQL_OBSERVER_CONFIG", "The config file when -c is not given."},
    {"FRAISEQL_OBSERVER_PLUGIN_PATH", "Colon-separated plugin directories, searched after "
                                      "--plugin-dir."},
    {"DATABASE_URL", "Connection string of the built-in source (used when the config declares "
                     "no [sources.*] table)."},
    {"NATS_URL", "Server URL of the built-in NATS transport (default nats://127.0.0.1:4222)."},
    {"Any ${VAR}", "Every string value in the config may use ${VAR}, ${VAR:-default} and $$ "
                   "(a literal $); an unset ${VAR} is a configuration error."},
};

constexpr CliTerm k_files[] = {
    {"./fraiseql-observer.toml", "The config file when neither -c nor "
                                 "$FRAISEQL_OBSERVER_CONFIG names one."},
    {"/etc/fraiseql-observer/fraiseql-observer.toml", "The packaged service's config."},
    {"/etc/default/fraiseql-observer", "The packaged service's environment (DATABASE_URL, "
                                       "NATS_URL, secrets), mode 0640."},
    {"<prefix>/lib/fraiseql-observer/plugins/", "The plugins installed with the binary "
                                                "(/usr/lib/fraiseql-observer/plugins/ from the "
                                                "package)."},
    {"/lib/systemd/system/fraiseql-observer.service", "The packaged systemd unit."},
};

// ---- Rendering. -----------------------------------------------------------------------------

constexpr size_t k_help_width = 100;

// Greedy word wrap: the first line continues after `first_indent` columns already printed,
// the others start with `indent` spaces.
std::string wrap(std::string_view text, size_t indent, size_t first_used) {
    std::string out;
    size_t col = first_used;
    std::istringstream words{std::string(text)};
    std::string w;
    bool line_start = true;
    while (words >> w) {
        if (!line_start && col + 1 + w.size() > k_help_width) {
            out += "\n" + std::string(indent, ' ');
            col = indent;
            line_start = true;
        }
        if (!line_start) {
            out += ' ';
            ++col;
        }
        out += w;
        col += w.size();
        line_start = false;
    }
    return out;
}

std::string pad(std::string_view s, size_t width) {
    std::string out(s);
    if (out.size() < width) out.append(width - out.size(), ' ');
    return out;
}

std::string option_head(const CliOption &o) {
    std::string head(o.flags);
    if (!o.value.empty()) head += " " + std::string(o.value);
    return head;
}

template <class T> void term_list(std::string &out, std::string_view title, std::span<const T> terms) {
    size_t width = 0;
    for (const auto &t : terms) width = std::max(width, t.term.size());
    width = std::min<size_t>(width, 30) + 2;
    out += std::string(title) + ":\n";
    for (const auto &t : terms) {
        std::string head = "  " + pad(t.term, width);
        if (head.size() > width + 2) { // too long for the column: the text on the next line
            out += "  " + std::string(t.term) + "\n" + std::string(width + 2, ' ');
            head.clear();
            out += wrap(t.text, width + 2, width + 2) + "\n";
            continue;
        }
        out += head + wrap(t.text, width + 2, head.size()) + "\n";
    }
}

// roff: backslashes and minus signs escaped, the few non-ASCII characters named, and a line
// never starting with a control character ('.' or ''').
std::string roff(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else if (s.substr(i, 3) == "\u2014") out += "\\(em", i += 2;
        else if (s.substr(i, 3) == "\u2026") out += "...", i += 2;
        else out += c;
    }
    if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
    return out;
}

// Synopsis arguments in roff: options bold, placeholders (FILE, N, …) italic.
std::string roff_args(std::string_view args) {
    std::string out;
    size_t i = 0;
    while (i < args.size()) {
        char c = args[i];
        if (c == '-' && (i == 0 || std::string_view("[( |").find(args[i - 1]) != std::string_view::npos)) {
            size_t j = args.find_first_of(" ]|)", i);
            if (j == std::string_view::npos) j = args.size();
            out += "\\fB" + roff(args.substr(i, j - i)) + "\\fR";
            i = j;
        } else if (c >= 'A' && c <= 'Z') {
            size_t j = i;
            while (j < args.size() && ((args[j] >= 'A' && args[j] <= 'Z') || args[j] == '_')) ++j;
            out += "\\fI" + roff(args.substr(i, j - i)) + "\\fR";
            i = j;
        } else {
            out += roff(args.substr(i, 1));
            ++i;
        }
    }
    return out;
}

std::string roff_option_head(const CliOption &o) {
    std::string out;
    std::string_view flags = o.flags;
    size_t start = 0;
    while (start < flags.size()) {
        size_t comma = flags.find(", ", start);
        std::string_view f = flags.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (!out.empty()) out += ", ";
        out += "\\fB" + roff(f) + "\\fR";
        if (comma == std::string_view::npos) break;
        start = comma + 2;
    }
    if (!o.value.empty()) out += " \\fI" + roff(o.value) + "\\fR";
    return out;
}

// The options a synopsis line names (tokens starting with '-').
std::vector<std::string> options_in(std::string_view args) {
    std::vector<std::string> out;
    size_t i = 0;
    while ((i = args.find('-', i)) != std::string_view::npos) {
        size_t j = args.find_first_of(" ]|)", i);
        if (j == std::string_view::npos) j = args.size();
        out.emplace_back(args.substr(i, j - i));
        i = j;
    }
    return out;
}

std::vector<std::string> split_words(std::string_view s) {
    std::vector<std::string> out;
    std::istringstream in{std::string(s)};
    std::string w;
    while (in >> w) out.push_back(w);
    return out;
}

std::vector<std::string> flags_of(const CliOption &o) {
    std::vector<std::string> out;
    for (auto &w : split_words(o.flags)) {
        if (!w.empty() && w.back() == ',') w.pop_back();
        out.push_back(w);
    }
    return out;
}

std::string join(const std::vector<std::string> &v) {
    std::string out;
    for (const auto &s : v) out += (out.empty() ? "" : " ") + s;
    return out;
}

} // namespace

std::span<const CliUsage> cli_usages() { return k_usages; }
std::span<const CliCommand> cli_commands() { return k_commands; }
std::span<const CliOption> cli_options() { return k_options; }
std::span<const CliTerm> cli_exit_codes() { return k_exit_codes; }
std::span<const CliTerm> cli_environment() { return k_environment; }
std::span<const CliTerm> cli_files() { return k_files; }

std::string cli_help_text() {
    std::string out = "fraiseql-observer " FOBS_VERSION " \u2014 " + std::string(k_tagline) + "\n\nUsage:\n";
    size_t cmd_width = 0;
    for (const auto &u : k_usages) cmd_width = std::max(cmd_width, u.command.size());
    for (const auto &u : k_usages)
        out += "  fraiseql-observer " + pad(u.command, cmd_width + 1) + std::string(u.args) + "\n";
    out += "  fraiseql-observer --version | --help\n\nCommands:\n";
    size_t name_width = 0;
    for (const auto &c : k_commands) name_width = std::max(name_width, c.name.size());
    for (const auto &c : k_commands)
        out += "  " + pad(c.name, name_width + 2) + wrap(c.text, name_width + 4, name_width + 4) + "\n";
    out += "\nOptions:\n";
    constexpr size_t opt_width = 20;
    for (const auto &o : k_options) {
        std::string head = option_head(o);
        if (head.size() + 2 > opt_width)
            out += "  " + head + "\n" + std::string(opt_width + 2, ' ');
        else
            out += "  " + pad(head, opt_width);
        out += wrap(o.text, opt_width + 2, opt_width + 2) + "\n";
    }
    out += "\n";
    term_list(out, "Exit codes", std::span<const CliTerm>(k_exit_codes));
    out += "\n";
    term_list(out, "Environment", std::span<const CliTerm>(k_environment));
    out += "\n";
    term_list(out, "Files", std::span<const CliTerm>(k_files));
    out += "\nSee fraiseql-observer(1) and /usr/share/doc/fraiseql-observer/.\n";
    return out;
}

std::string cli_man_page() {
    std::string out;
    out += ".\\\" Generated by `fraiseql-observer --help-man` from host/cli_reference.cpp; do not edit.\n";
    out += ".TH FRAISEQL\\-OBSERVER 1 \"\" \"fraiseql\\-observer " FOBS_VERSION "\" \"User Commands\"\n";
    out += ".SH NAME\nfraiseql\\-observer \\- " + roff(k_tagline) + "\n";
    out += ".SH SYNOPSIS\n.nf\n";
    for (const auto &u : k_usages)
        out += "\\fBfraiseql\\-observer " + roff(u.command) + "\\fR " + roff_args(u.args) + "\n";
    out += "\\fBfraiseql\\-observer\\fR \\fB\\-\\-version\\fR | \\fB\\-\\-help\\fR\n.fi\n";
    out += ".SH DESCRIPTION\n"
           "\\fBfraiseql\\-observer\\fR reads changes from PostgreSQL (LISTEN/NOTIFY, a "
           "transactional outbox or logical replication), publishes them as events on NATS "
           "JetStream and runs actions on them (signed webhooks, logs, plugins) with retries "
           "and a dead\\-letter queue. Sources, transports and actions are plugins. It exports "
           "Prometheus metrics and health endpoints on [observer] metrics_listen "
           "(default 127.0.0.1:9464).\n";
    out += ".SH COMMANDS\n";
    for (const auto &c : k_commands) {
        out += ".TP\n\\fB" + roff(c.name) + "\\fR\n.nf\n";
        for (const auto &u : k_usages)
            if (u.command.substr(0, u.command.find(' ')) == c.name)
                out += "\\fB" + roff(u.command) + "\\fR " + roff_args(u.args) + "\n";
        out += ".fi\n" + roff(c.text) + "\n";
    }
    out += ".SH OPTIONS\n";
    for (const auto &o : k_options) out += ".TP\n" + roff_option_head(o) + "\n" + roff(o.text) + "\n";
    out += ".SH EXIT STATUS\n";
    for (const auto &t : k_exit_codes) out += ".TP\n\\fB" + roff(t.term) + "\\fR\n" + roff(t.text) + "\n";
    out += ".SH ENVIRONMENT\n";
    for (const auto &t : k_environment) out += ".TP\n\\fB" + roff(t.term) + "\\fR\n" + roff(t.text) + "\n";
    out += ".SH FILES\n";
    for (const auto &t : k_files) out += ".TP\n\\fI" + roff(t.term) + "\\fR\n" + roff(t.text) + "\n";
    out += ".SH SEE ALSO\n"
           "\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1), \\fBnats\\-server\\fR(8); "
           "/usr/share/doc/fraiseql\\-observer/operations.md and configuration.md.\n";
    return out;
}

std::string cli_bash_completion() {
    // Options per command: those its synopsis lines name, the ones marked also_for it, and
    // --help. Long forms are offered; both forms are recognised as taking a value.
    std::map<std::string, std::set<std::string>> per_command; // "run", "dlq list"
    std::vector<std::string> commands;
    std::map<std::string, std::vector<std::string>> subcommands; // "dlq" -> list show …
    for (const auto &u : k_usages) {
        std::string cmd(u.command);
        std::string top = cmd.substr(0, cmd.find(' '));
        if (std::find(commands.begin(), commands.end(), top) == commands.end()) commands.push_back(top);
        if (cmd != top) subcommands[top].push_back(cmd.substr(top.size() + 1));
        for (const auto &named : options_in(u.args))
            for (const auto &o : k_options) {
                auto flags = flags_of(o);
                if (std::find(flags.begin(), flags.end(), named) != flags.end())
                    per_command[cmd].insert(flags.back());
            }
    }
    for (const auto &o : k_options)
        for (const auto &c : split_words(o.also_for))
            for (auto &[cmd, opts] : per_command)
                if (cmd == c || cmd.rfind(c + " ", 0) == 0) opts.insert(flags_of(o).back());
    for (auto &[cmd, opts] : per_command) opts.insert("--help");

    std::string with_value, value_cases;
    for (const auto &o : k_options) {
        if (o.value.empty()) continue;
        std::string pattern;
        for (const auto &f : flags_of(o)) pattern += (pattern.empty() ? "" : "|") + f;
        with_value += (with_value.empty() ? "" : "|") + pattern;
        std::string action;
        if (o.complete == "<file>") action = "_fobs_compreply -f";
        else if (o.complete == "<dir>") action = "_fobs_compreply -d";
        else if (!o.complete.empty()) action = "_fobs_compreply -W \"" + std::string(o.complete) + "\"";
        else action = "COMPREPLY=()";
        value_cases += "        " + pattern + ") " + action + "; return 0 ;;\n";
    }
    std::string out =
        "# bash completion for fraiseql-observer\n"
        "# Generated by `fraiseql-observer --help-completion` from host/cli_reference.cpp; do not edit.\n"
        "# _fobs_compreply -W WORDS | -f | -d: COMPREPLY from the words, files or directories\n"
        "# matching $cur (file names split on newlines only, so spaces in them survive).\n"
        "_fobs_compreply() {\n"
        "    if [[ $1 == -W ]]; then\n"
        "        COMPREPLY=($(compgen -W \"$2\" -- \"$cur\"))\n"
        "    else\n"
        "        local IFS=$'\\n'\n"
        "        COMPREPLY=($(compgen \"$1\" -- \"$cur\"))\n"
        "        compopt -o filenames 2>/dev/null\n"
        "    fi\n"
        "}\n"
        "_fraiseql_observer() {\n"
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
        "    COMPREPLY=()\n"
        "    case $prev in\n" +
        value_cases +
        "    esac\n"
        "    # The command (and dlq's subcommand): the first words that are neither options nor\n"
        "    # an option's value.\n"
        "    local i w cmd= sub=\n"
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        "        w=${COMP_WORDS[i]}\n"
        "        case $w in\n"
        "        " + with_value + ") ((i++)) ;;\n"
        "        -*) ;;\n"
        "        *) if [[ -z $cmd ]]; then cmd=$w; elif [[ -z $sub ]]; then sub=$w; fi ;;\n"
        "        esac\n"
        "    done\n"
        "    local opts\n"
        "    case $cmd in\n"
        "    '') if [[ $cur == -* ]]; then _fobs_compreply -W \"--help --version\";\n"
        "        else _fobs_compreply -W \"" + join(commands) + "\"; fi\n"
        "        return 0 ;;\n";
    for (const auto &c : commands) {
        out += "    " + c + ")\n";
        auto subs = subcommands.find(c);
        if (subs != subcommands.end()) {
            out += "        case $sub in\n";
            out += "        '') if [[ $cur != -* ]]; then _fobs_compreply -W \"" + join(subs->second) +
                   "\"; return 0; fi\n";
            out += "            opts=\"--help\" ;;\n";
            for (const auto &s : subs->second) {
                const auto &opts = per_command[c + " " + s];
                out += "        " + s + ") opts=\"" + join({opts.begin(), opts.end()}) + "\" ;;\n";
            }
            out += "        *) return 0 ;;\n        esac ;;\n";
        } else {
            const auto &opts = per_command[c];
            out += "        opts=\"" + join({opts.begin(), opts.end()}) + "\" ;;\n";
        }
    }
    out += "    *) return 0 ;;\n"
           "    esac\n"
           "    _fobs_compreply -W \"$opts\"\n"
           "    return 0\n"
           "}\n"
           "complete -F _fraiseql_observer fraiseql-observer\n";
    return out;
}

} // namespace fraiseql_observer::host
