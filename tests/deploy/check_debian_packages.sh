#!/usr/bin/env bash
# CTest: builds both Debian packages from this build tree with CPack and checks them the way
# Debian does: control fields (Depends from dpkg-shlibdeps), contents, conffiles and modes,
# lintian (errors and warnings fail), then unpacks them into a scratch root and runs the
# installed binary against the installed plugins and example config (its man page and bash
# completion are what it prints), and builds the example plugin against the installed SDK
# (-dev package).
# Exit 77 = skipped (a tool is missing).
# Usage: check_debian_packages.sh <source dir> <build dir>
set -euo pipefail
src=$1
build=$2
for tool in cpack dpkg-deb dpkg-shlibdeps; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIPPED: $tool not found (Debian packages cmake, dpkg-dev)"
    exit 77
  fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Packages go to a scratch directory so the test never touches the build's own packages/.
if ! cpack --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log"
  fail "cpack"
fi
runtime=$(ls "$work"/out/fraiseql-observer_*_*.deb)
dev=$(ls "$work"/out/fraiseql-observer-dev_*_all.deb)
echo "built: $(basename "$runtime") $(basename "$dev")"

# Control fields.
depends=$(dpkg-deb --field "$runtime" Depends)
for lib in adduser libc6 libstdc++6 libpq5 libnats libcurl4 libssl3; do
  [[ ", $depends" == *", $lib"* ]] || fail "Depends lacks $lib (dpkg-shlibdeps): $depends"
done
[[ $(dpkg-deb --field "$dev" Architecture) == all ]] || fail "-dev is not Architecture: all"
version=$(dpkg-deb --field "$runtime" Version)

# Contents.
listing=$(dpkg-deb -c "$runtime")
for path in ./usr/bin/fraiseql-observer \
            ./usr/lib/fraiseql-observer/plugins/pg_listen_source.so \
            ./usr/lib/fraiseql-observer/plugins/nats_transport.so \
            ./usr/lib/fraiseql-observer/plugins/webhook_action.so \
            ./usr/lib/fraiseql-observer/plugins/log_action.so \
            ./usr/lib/fraiseql-observer/plugins/memory_transport.so \
            ./lib/systemd/system/fraiseql-observer.service \
            ./etc/fraiseql-observer/fraiseql-observer.toml \
            ./etc/default/fraiseql-observer \
            ./usr/share/doc/fraiseql-observer/copyright \
            ./usr/share/doc/fraiseql-observer/changelog.gz \
            ./usr/share/man/man1/fraiseql-observer.1.gz \
            ./usr/share/bash-completion/completions/fraiseql-observer; do
  grep -q " $path\$" <<<"$listing" || fail "$(basename "$runtime") lacks $path"
done
grep -q '^-rw-r----- .* ./etc/default/fraiseql-observer$' <<<"$listing" \
  || fail "/etc/default/fraiseql-observer is not mode 0640"
! grep -q -e '/usr/local/' -e 'include/' -e 'test_' <<<"$listing" \
  || fail "runtime package holds /usr/local, SDK or test files: $listing"
dev_listing=$(dpkg-deb -c "$dev")
for path in ./usr/include/fraiseql_observer/abi.h ./usr/include/fraiseql_observer/plugin.hpp \
            ./usr/lib/cmake/fraiseql-observer-sdk/fraiseql-observer-sdk-config.cmake \
            ./usr/share/doc/fraiseql-observer-dev/copyright; do
  grep -q " $path\$" <<<"$dev_listing" || fail "$(basename "$dev") lacks $path"
done
! grep -q -e '\.so$' -e '/bin/' <<<"$dev_listing" || fail "-dev package holds binaries"
dpkg-deb --ctrl-tarfile "$runtime" | tar -xO ./conffiles >"$work/conffiles"
for f in /etc/fraiseql-observer/fraiseql-observer.toml /etc/default/fraiseql-observer; do
  grep -qx "$f" "$work/conffiles" || fail "$f is not a conffile"
done

# The installed binary, its plugins and the example config, unpacked into a scratch root.
root="$work/root"
dpkg-deb -x "$runtime" "$root"
dpkg-deb -x "$dev" "$root"
run() { env -u FRAISEQL_OBSERVER_PLUGIN_PATH -u FRAISEQL_OBSERVER_CONFIG "$root/usr/bin/fraiseql-observer" "$@"; }
run --version | grep -q "^fraiseql-observer $version " || fail "--version is not $version: $(run --version)"
# The packaged man page and completion are the installed binary's own.
cmp <(zcat "$root/usr/share/man/man1/fraiseql-observer.1.gz") <(run --help-man) \
  || fail "the packaged man page is not what the packaged binary prints"
cmp "$root/usr/share/bash-completion/completions/fraiseql-observer" <(run --help-completion) \
  || fail "the packaged bash completion is not what the packaged binary prints"
plugins=$(run plugins)
echo "$plugins"
for name in pg_listen nats webhook log memory; do
  grep -q "^$name .* $root/usr/lib/fraiseql-observer/plugins/" <<<"$plugins" \
    || fail "installed binary does not find the installed $name plugin"
done
DATABASE_URL=postgres://observer@127.0.0.1/app run validate \
  -c "$root/etc/fraiseql-observer/fraiseql-observer.toml" || fail "example config does not validate"

# A third-party plugin builds against the -dev package alone and loads into the installed binary:
# both examples the -dev package ships (C++ and plain C), built from their installed copies.
examples="$root/usr/share/doc/fraiseql-observer-dev/examples"
for ex in action_plugin:jsonl_file c_action_plugin:udp_datagram; do
  dir=${ex%%:*} name=${ex#*:}
  [[ -f $examples/$dir/CMakeLists.txt ]] || fail "$(basename "$dev") lacks examples/$dir"
  if ! { cmake -S "$examples/$dir" -B "$work/$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_PREFIX_PATH="$root/usr" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF &&
          cmake --build "$work/$dir"; } >"$work/$dir.log" 2>&1; then
    cat "$work/$dir.log"
    fail "example $dir does not build against the -dev package"
  fi
  grep -q "fraiseql-observer-sdk_DIR:PATH=$root/usr/lib/cmake/fraiseql-observer-sdk" "$work/$dir/CMakeCache.txt" \
    || fail "example $dir found an SDK other than the packaged one"
  run plugins --plugin-dir "$work/$dir" | grep -q "^$name .*$work/$dir/" \
    || fail "installed binary does not load $dir built against the -dev package: $(run plugins --plugin-dir "$work/$dir")"
done

if ! command -v lintian >/dev/null 2>&1; then
  echo "SKIPPED (lintian part): lintian not found (scripts/install-deps.sh installs it); every other check passed"
  exit 77
fi
# The 0640 secrets file is overridden inside the package (usr/share/lintian/overrides/fraiseql-observer).
rc=0
out=$(lintian --fail-on error,warning "$runtime" "$dev" 2>&1) || rc=$?
grep -v 'running with root privileges' <<<"$out" || true
[[ $rc -eq 0 ]] || fail "lintian reports errors or warnings (exit $rc)"
echo "packages OK"
