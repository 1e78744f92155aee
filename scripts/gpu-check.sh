#!/usr/bin/env bash
# One call on the GPU host (no network, no FFmpeg dev files): build FFmpeg from the carried Debian sources,
# build latentsync against the host's CUDA LibTorch, run every test label, run `doctor`, and the benchmarks named
# in LSYNC_BENCH.
# Needs .deps/src from scripts/fetch-gpu-host-sources.sh, or .deps/prefix and .deps/nlohmann from
# scripts/prebuild-gpu-host-deps.sh (then its FFmpeg step is skipped). Logs go to $OUT (or build-gpu/logs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOGS="${OUT:-$ROOT/build-gpu/logs}"
mkdir -p "$LOGS"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu}"

step() { echo "== $* ($(date +%T))"; }

step "FFmpeg + x264 from Debian sources"
bash scripts/gpu-host-deps.sh > "$LOGS/deps.log" 2>&1 || { tail -40 "$LOGS/deps.log"; exit 1; }
export PKG_CONFIG_PATH="$ROOT/.deps/prefix/lib/pkgconfig" PKG_CONFIG_LIBDIR="$ROOT/.deps/prefix/lib/pkgconfig"

step "configure"
TORCH_PREFIX="$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')"
ARCH="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLSYNC_BUILD_TESTS=ON -DLSYNC_FFMPEG_STATIC=ON \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$ROOT/.deps/nlohmann/usr" -DTORCH_CUDA_ARCH_LIST="$ARCH" \
    -DCMAKE_CUDA_ARCHITECTURES="${ARCH/./}" > "$LOGS/configure.log" 2>&1 || { tail -60 "$LOGS/configure.log"; exit 1; }
grep -E "LibTorch|FFmpeg|CUDA kernels|Catch2" "$LOGS/configure.log" || true

# LSYNC_BUILD_TARGETS narrows the build (e.g. "latentsync test_gpu" with LSYNC_TEST_LABELS=gpu).
step "build${LSYNC_BUILD_TARGETS:+ ($LSYNC_BUILD_TARGETS)}"
# shellcheck disable=SC2086  # a list of target names
cmake --build "$BUILD_DIR" -j "$(nproc)" ${LSYNC_BUILD_TARGETS:+--target $LSYNC_BUILD_TARGETS} > "$LOGS/build.log" 2>&1 || { grep -E "error|Error" "$LOGS/build.log" | head -40; exit 1; }

# LSYNC_TEST_LABELS / LSYNC_TEST_REGEX narrow the run (device time is scarce), e.g. LSYNC_TEST_LABELS=gpu.
# Tests labelled ffmpeg-cli make and read their media with the ffmpeg/ffprobe programs, which the GPU host does
# not have (its FFmpeg is built as libraries only); they run in CPU CI, and the render itself runs here below.
EXCLUDE=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || EXCLUDE=(-LE ffmpeg-cli)
step "tests (${LSYNC_TEST_LABELS:-unit|e2e|gpu}${LSYNC_TEST_REGEX:+, matching $LSYNC_TEST_REGEX}${EXCLUDE:+; no ffmpeg CLI here: not the ffmpeg-cli label})"
set +e
(cd "$BUILD_DIR" && LSYNC_REQUIRE_GPU=1 ctest -L "${LSYNC_TEST_LABELS:-unit|e2e|gpu}" "${EXCLUDE[@]}" ${LSYNC_TEST_REGEX:+-R "$LSYNC_TEST_REGEX"} \
    --output-on-failure -j "$(nproc)") > "$LOGS/ctest.log" 2>&1
rc=$?
set -e
grep -E "Test +#|tests passed|FAILED|skipped" "$LOGS/ctest.log" || true
# A crashing unit test: its backtrace (the host has cuda-gdb, which also debugs CPU code, but no gdb).
if [ $rc != 0 ] && command -v cuda-gdb >/dev/null; then
    for t in test_core test_media test_attention test_doctor test_gpu; do
        [ -x "$BUILD_DIR/tests/$t" ] || continue
        grep -q "$t .*SegFault" "$LOGS/ctest.log" || continue
        echo "-- backtrace of $t"
        (cd "$BUILD_DIR/tests" && cuda-gdb -batch -ex run -ex bt --args "./$t" --order decl) 2>&1 | grep -E "^#|signal" | head -30
    done
fi

# The render on the GPU (the ffmpeg-cli render scripts cannot run here): a talking head from a photo with the tiny
# model, two chunks per call, and one injected out-of-memory error that must be survived.
step "render on the GPU (test-tiny, random weights)"
RW="$LOGS/render-check"
mkdir -p "$RW"
"$BUILD_DIR/bin/latentsync" -q debug synth "$RW/speech.wav" --seconds 3 --audio-rate 16000 --channels 1 --overwrite
if LSYNC_TEST_INJECT_OOM=1 "$BUILD_DIR/bin/latentsync" render tests/fixtures/face-api/sample2.jpg "$RW/speech.wav" \
        -o "$RW/render.mp4" --overwrite --model test-tiny --weights random --model-dir tests/fixtures/face-api \
        --device cuda --batch-chunks 4 --json-log 2> "$RW/events.jsonl" &&
    python3 -c 'import json,sys; f=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert f["event"]=="finish" and f["frames"]==75 and f["lipsynced"]==75 and f["oom_retries"]==1, f; assert 0 < f["gpu_peak_after_faces_bytes"] <= f["gpu_peak_bytes"], f; print("render ok:", f["frames"], "frames,", round(f["stage_seconds"]["render"], 2), "s, GPU peak", f["gpu_peak_bytes"] >> 20, "MiB")' "$RW/events.jsonl"; then
    rm -rf "$RW"
else
    # The error's first lines say where it came from (a CUDA error's text ends in generic advice).
    grep -v '^{' "$RW/events.jsonl" | head -15
    grep '^{' "$RW/events.jsonl" | tail -2 | cut -c1-800
    rc=1
fi

step "doctor"
"$BUILD_DIR/bin/latentsync" doctor > "$LOGS/doctor.txt" 2>&1 || true
"$BUILD_DIR/bin/latentsync" doctor --json > "$LOGS/doctor.json" 2>/dev/null || true
cat "$LOGS/doctor.txt"

# Benchmarks named in LSYNC_BENCH (e.g. "attention unet"): `latentsync bench <name>`, tables into $LOGS.
for b in ${LSYNC_BENCH:-}; do
    step "bench $b"
    "$BUILD_DIR/bin/latentsync" bench $b > "$LOGS/bench-$b.md" 2> "$LOGS/bench-$b.err" || { tail -5 "$LOGS/bench-$b.err"; rc=1; }
    cat "$LOGS/bench-$b.md"
done
exit $rc
