#!/usr/bin/env bash
# Configures and builds latentsync into build/ (or $BUILD_DIR). Extra arguments go to `cmake --build`
# (e.g. `--target latentsync`). Set LSYNC_TESTS=OFF to skip the test targets, LSYNC_DEBUG_INFO=OFF to compile
# without debug info (the test build does: faster compiles and links), LSYNC_UNITY=ON to compile in batches of
# files (the test build does: half the cold build time); all apply when the folder is configured.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"

# ccache keeps its cache inside the repo's ignored .ccache/ so CI can cache one folder.
export CCACHE_DIR="${CCACHE_DIR:-$ROOT/.ccache}"
# Paths under the repo are hashed relative to it, so other checkouts and worktrees share hits.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-2G}"
# ccache only caches builds that use precompiled headers with these sloppiness settings.
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
        -DLSYNC_BUILD_TESTS="${LSYNC_TESTS:-ON}" -DLSYNC_DEBUG_INFO="${LSYNC_DEBUG_INFO:-ON}" \
        -DLSYNC_UNITY_BUILD="${LSYNC_UNITY:-OFF}" ${CMAKE_ARGS:-}
elif [ -n "${LSYNC_DEBUG_INFO:-}" ] && ! grep -qx "LSYNC_DEBUG_INFO:BOOL=${LSYNC_DEBUG_INFO}" "$BUILD_DIR/CMakeCache.txt"; then
    # The folder keeps what it was configured with (test.sh asks for OFF, a developer build is ON by default).
    echo "[build] $BUILD_DIR keeps LSYNC_DEBUG_INFO=$(sed -n 's/^LSYNC_DEBUG_INFO:BOOL=//p' "$BUILD_DIR/CMakeCache.txt")" \
         "(asked: $LSYNC_DEBUG_INFO); remove the folder or set BUILD_DIR to change it" >&2
fi
cmake --build "$BUILD_DIR" -j "$JOBS" "$@"
