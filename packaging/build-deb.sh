#!/usr/bin/env bash
# Builds the Debian packages fraiseql-observer and fraiseql-observer-dev from a release build
# with Debian's hardening flags (dpkg-buildflags, hardening=+all: fortify, stack protector,
# full RELRO, bind-now), then checks both with lintian when it is installed.
#   packaging/build-deb.sh [BUILD_DIR]      (default: <source>/build-deb)
# The packages land in BUILD_DIR/packages/. Needs: cmake, ninja, dpkg-dev (dpkg-buildflags,
# dpkg-shlibdeps) and the build dependencies from scripts/install-deps.sh.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$src/build-deb}

export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cppflags=$(dpkg-buildflags --get CPPFLAGS)
cflags="$(dpkg-buildflags --get CFLAGS) $cppflags"
cxxflags="$(dpkg-buildflags --get CXXFLAGS) $cppflags"
ldflags=$(dpkg-buildflags --get LDFLAGS)

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

# CMAKE_BUILD_TYPE=None: the optimisation and debug flags are dpkg-buildflags' (-O2 -g); CPack
# strips the debug information from what it packages.
cmake -S "$src" -B "$build" -G Ninja "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=None -DCMAKE_INSTALL_PREFIX=/usr \
  -DFOBS_BUILD_TESTS=OFF -DFOBS_BUILD_BENCH=OFF \
  -DCMAKE_C_FLAGS="$cflags" -DCMAKE_CXX_FLAGS="$cxxflags" \
  -DCMAKE_EXE_LINKER_FLAGS="$ldflags" -DCMAKE_SHARED_LINKER_FLAGS="$ldflags" \
  -DCMAKE_MODULE_LINKER_FLAGS="$ldflags"
cmake --build "$build" --target fraiseql-observer fobs_all_plugins fobs_package_files fobs_cli_docs \
  -j "${JOBS:-$(nproc)}"
(cd "$build" && cpack --config CPackConfig.cmake)

debs=("$build"/packages/*.deb)
for deb in "${debs[@]}"; do
  echo "== $deb"
  dpkg-deb --field "$deb" Package Version Architecture Depends
done
if command -v lintian >/dev/null 2>&1; then
  # The 0640 secrets file is overridden inside the package (docs/operations.md, "Install from
  # the package").
  lintian --fail-on error,warning "${debs[@]}"
  echo "lintian: no errors, no warnings"
else
  echo "lintian not installed: packages not checked (apt-get install lintian)"
fi
