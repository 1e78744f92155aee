#!/usr/bin/env bash
# Installs what is missing, builds, and runs every CPU test (CTest labels unit and e2e).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/install-deps.sh"
LSYNC_TESTS=ON LSYNC_DEBUG_INFO="${LSYNC_DEBUG_INFO:-OFF}" LSYNC_UNITY="${LSYNC_UNITY:-ON}" "$ROOT/scripts/build.sh"
cd "${BUILD_DIR:-$ROOT/build}"
# install-deps.sh installed OpenBLAS: the doctor test then fails if LibTorch still runs on the reference BLAS.
export LSYNC_EXPECT_OPENBLAS=1
ctest -L "unit|e2e" --output-on-failure -j "${JOBS:-$(nproc)}"
