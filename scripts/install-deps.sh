#!/usr/bin/env bash
# Installs the Debian 12 packages fraiseql-observer needs to build, test and run.
# Idempotent and quiet when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libboost-dev libtomlplusplus-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libssl-dev libcurl4-openssl-dev libnats-dev libpq-dev libcpp-httplib-dev
  googletest libgtest-dev libgmock-dev
  clang libc++-dev libc++abi-dev
  nats-server postgresql postgresql-contrib
  nodejs npm
  prometheus curl procps
  systemd lintian             # deploy tests: systemd-analyze verify, lintian
  tmux                        # top's terminal test drives it in a tmux pane
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js may come from outside Debian's packages (the node binary is what the tests need).
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's postgresql package starts a cluster on 5432; our tests and run.sh use their own
# throw-away clusters, so the system one is left alone.
