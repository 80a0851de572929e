#!/usr/bin/env bash
# CTest: fraiseql-observer(1) lists every command, subcommand, option, exit code, environment
# variable and file that `fraiseql-observer --help` lists, and man renders it without a warning
# (what lintian checks too), and the parser accepts every option --help lists. All come from
# host/cli_reference.cpp; this checks the generator, reading --help as a user would.
# Usage: check_man_page.sh <fraiseql-observer binary> <fraiseql-observer.1.gz>
set -euo pipefail
bin=$1
page=$2
fail() { echo "FAIL: $*"; exit 1; }
[[ -s $page ]] || fail "$page is missing or empty"
help=$("$bin" --help)

# The man page as text: rendered by man when it is installed, else the roff with its escapes
# and font changes removed.
if command -v man >/dev/null 2>&1; then
  warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null) \
    || fail "man -l $page failed: $warnings"
  [[ -z $warnings ]] || fail "man reports: $warnings"
  text=$(MANWIDTH=1000 man -E ascii -l "$page" 2>/dev/null | col -b)
else
  echo "note: man not installed, comparing the roff text"
  text=$(zcat "$page" | sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\e/\\/g' -e 's/\\(em/--/g')
fi
# man joins filled text with single spaces; --help wraps lines: compare word sequences.
text=$(tr -s ' \n' '  ' <<<"$text")

section() { awk -v s="$1:" '$0 == s {on=1; next} /^[A-Z][a-z ]*:$/ {on=0} on' <<<"$help"; }
missing=()
check() { grep -qF -- "$1" <<<"$text" || missing+=("$1"); }

# Commands and subcommands, from the synopsis lines.
count=0
while read -r cmd sub; do
  check "fraiseql-observer $cmd"
  [[ -z $sub || $sub == \[* || $sub == -* || $sub == \(* ]] || check "$cmd $sub"
  count=$((count + 1))
done < <(section Usage | sed -n 's/^  fraiseql-observer \([a-z]\+\)\( [a-z]\+\)\?.*/\1\2/p')
((count >= 8)) || fail "found only $count commands in --help: $help"
# Every option named anywhere in the Usage and Options sections.
options=$( { section Usage; section Options; } | grep -oE -- '(^|[][ (|,])--?[a-zA-Z][a-zA-Z-]*' \
           | sed 's/^[][ (|,]//' | sort -u)
(($(wc -l <<<"$options") >= 15)) || fail "found too few options in --help: $options"
for opt in $options; do
  grep -qE -- "(^|[^a-zA-Z-])$opt([^a-zA-Z-]|$)" <<<"$text" || missing+=("$opt")
done
# Exit codes, variables and files: the first word of each entry.
for s in "Exit codes" Environment Files; do
  entries=$(section "$s" | sed -n 's/^  \([^ ]\+\).*/\1/p')
  [[ -n $entries ]] || fail "no \"$s\" entries in --help"
  for e in $entries; do
    [[ $s == "Exit codes" ]] && { grep -qE "(^| )$e [A-Z]" <<<"$text" || missing+=("exit code $e"); continue; }
    check "$e"
  done
done
# Every option --help describes is one the parser accepts (an option added to the reference
# but not to cli.cpp's parser would be rejected as unknown, exit 2). Options with a value get
# one that parses ("1" for numbers, a word otherwise).
while read -r line; do
  flags=$(grep -oE -- '(^|[ ,])--?[a-zA-Z][a-zA-Z-]*' <<<"${line%%  [A-Za-z(]*}" | tr -d ' ,')
  value=$(sed -n 's/^ *[-a-zA-Z, ]*--[a-z-]* \([A-Z]\+\)  .*/\1/p' <<<"$line")
  for f in $flags; do
    args=("$f")
    [[ -n $value ]] && { [[ $value == N ]] && args+=(1) || args+=(x); }
    rc=0
    "$bin" "${args[@]}" --help >/dev/null 2>&1 || rc=$?
    [[ $rc -eq 0 ]] || missing+=("parser rejects ${args[*]} (exit $rc)")
  done
done < <(section Options | grep -E '^  -')
for heading in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS "EXIT STATUS" ENVIRONMENT FILES; do
  check "$heading"
done
((${#missing[@]} == 0)) || fail "the man page lacks what --help lists: ${missing[*]}"
echo "man page OK: $count synopsis lines, $(wc -l <<<"$options") options, every exit code, variable and file"
