#!/usr/bin/env bash
# Builds the checkpoint readers' and media tests with AddressSanitizer + UBSan (build-asan/) and runs them: the
# malformed-file suites must produce errors, never memory faults.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="$ROOT/build-asan" BUILD_TYPE=Debug CMAKE_ARGS="-DLSYNC_SANITIZE=address,undefined" \
    "$ROOT/scripts/build.sh" --target test_torch_checkpoint test_safetensors test_tfjs test_weight_loader test_core
cd "$ROOT/build-asan"
# LibTorch is not instrumented and allocates in ways LeakSanitizer reports at exit; leaks are not the target here.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest -R "test_(torch_checkpoint|safetensors|tfjs|weight_loader|core)" --output-on-failure
