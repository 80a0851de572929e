// The command line's reference (SPEC section 2): commands, options, exit codes, environment
// variables and files. `--help`, the man page fraiseql-observer(1) and the bash completion are
// all printed from these tables, so none of them can list what another lacks. Adding a command
// or an option is one entry in cli_reference.cpp (plus its parsing in cli.cpp).
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace fraiseql_observer::host {

/// One synopsis line: `fraiseql-observer <command> <args>`. A command may have several (dlq).
/// Every option named in `args` is offered by the completion after that command.
struct CliUsage {
    std::string_view command; // "run", "dlq list"
    std::string_view args;    // "[-c FILE] [--role all|publisher|worker]"
};

/// A command's description (one paragraph; --help wraps it, the man page fills it).
struct CliCommand {
    std::string_view name;
    std::string_view text;
};

/// An option. `value` names its argument ("" for a flag). `complete` says what the completion
/// offers for the value: a space-separated word list, "<file>", "<dir>" or "" (nothing).
/// `also_for`: commands that accept the option although their synopsis does not show it.
struct CliOption {
    std::string_view flags; // "-c, --config"
    std::string_view value; // "FILE"
    std::string_view text;
    std::string_view complete = {};
    std::string_view also_for = {};
};

/// An exit code, an environment variable or a file: a term and its meaning.
struct CliTerm {
    std::string_view term;
    std::string_view text;
};

std::span<const CliUsage> cli_usages();
std::span<const CliCommand> cli_commands();
std::span<const CliOption> cli_options();
std::span<const CliTerm> cli_exit_codes();
std::span<const CliTerm> cli_environment();
std::span<const CliTerm> cli_files();

/// What `--help` prints.
std::string cli_help_text();
/// The roff source of fraiseql-observer(1) (`--help-man`, run by the build).
std::string cli_man_page();
/// A bash completion script for fraiseql-observer (`--help-completion`, run by the build).
std::string cli_bash_completion();

} // namespace fraiseql_observer::host
