#!/usr/bin/env bash
# CTest: the generated bash completion completes every command --help lists, dlq's
# subcommands, each command's options from its synopsis line and the values of --role and
# --mode, by calling the completion function the way bash does.
# Usage: check_bash_completion.sh <fraiseql-observer binary> <completion file>
set -euo pipefail
bin=$1
file=$2
fail() { echo "FAIL: $*"; exit 1; }
[[ -s $file ]] || fail "$file is missing or empty"
bash -n "$file" || fail "$file is not valid bash"

# complete WORD...: the completions bash would offer for the last word.
complete_words() {
  bash -c 'source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _fraiseql_observer; printf "%s\n" "${COMPREPLY[@]}"' \
    "$file" fraiseql-observer "$@"
}
expect() { # expect "WANTED" WORD...
  local wanted=$1
  shift
  local got
  got=$(complete_words "$@")
  grep -qx -- "$wanted" <<<"$got" || fail "completing '$*' offers [$(tr '\n' ' ' <<<"$got")], not $wanted"
}
grep -q '^complete -F _fraiseql_observer fraiseql-observer$' "$file" || fail "no complete -F line"

help=$("$bin" --help)
usages=$(sed -n 's/^  fraiseql-observer \([a-z]\+\( [a-z]\+\)\?\) \+\([[(-].*\)$/\1|\3/p' <<<"$help")
[[ $(wc -l <<<"$usages") -ge 8 ]] || fail "too few synopsis lines in --help"
while IFS='|' read -r cmd args; do
  read -r top sub <<<"$cmd"
  expect "$top" "${top:0:2}"          # the command from its first two letters
  expect "$top" ""
  words=("$top")
  if [[ -n $sub ]]; then
    expect "$sub" "$top" "${sub:0:1}"
    words+=("$sub")
  fi
  for opt in $(grep -oE -- '(^|[][ (|])--[a-z][a-z-]*' <<<"$args" | sed 's/^[][ (|]//'); do
    expect "$opt" "${words[@]}" "${opt:0:4}"
  done
done <<<"$usages"
expect publisher run --role p
expect cdc sql --mode ""
expect status -c x.toml st          # an option's value is not the command
expect --help --h
n=$(wc -l <<<"$usages")
echo "bash completion OK: $n synopsis lines, their commands, subcommands and options"
