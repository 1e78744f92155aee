#!/usr/bin/env bash
# scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]: builds the libFuzzer targets (build-fuzz/, clang with
# ASan + UBSan, only the readers; see tests/fuzz/) and fuzzes TARGET (safetensors, torch_zip, tfjs,
# media_probe, batch_manifest) for SECONDS, starting from the committed seeds in tests/fuzz/corpus/TARGET. New inputs go to
# build-fuzz/corpus/TARGET, crashes to build-fuzz/crashes/TARGET/; copy a fixed crash into the committed corpus
# so corpus_replay keeps it fixed. Runs at low priority (nice 10), one process.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options]}"
SECONDS_TO_RUN="${2:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options]}"
shift 2
case "$TARGET" in safetensors | torch_zip | tfjs | media_probe | batch_manifest) ;; *) echo "unknown target $TARGET" >&2; exit 2 ;; esac
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
command -v clang++ >/dev/null || { echo "clang++ is missing: bash scripts/install-deps.sh" >&2; exit 1; }

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    CXX=clang++ cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLSYNC_FUZZ=ON
fi
nice -n 10 cmake --build "$BUILD" -j "${JOBS:-2}" --target "fuzz_$TARGET"

mkdir -p "$BUILD/corpus/$TARGET" "$BUILD/crashes/$TARGET" "$BUILD/tmp"
# LibTorch is not instrumented and keeps allocations LeakSanitizer would report; leaks are not the target.
# A malloc above -malloc_limit_mb (default: -rss_limit_mb) is reported: tiny inputs must not ask for gigabytes.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:handle_sigbus=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSYNC_FUZZ_TMP="$BUILD/tmp" LSYNC_THREADS=1
cd "$BUILD"
exec nice -n 10 "./tests/fuzz/fuzz_$TARGET" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=3072 -timeout=20 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="crashes/$TARGET/" "$@" \
    "corpus/$TARGET" "$ROOT/tests/fuzz/corpus/$TARGET"
