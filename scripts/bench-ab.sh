#!/usr/bin/env bash
# A change against the tree before it, in one device call: both binaries are built in the call (the second from
# the first's build folder, after the change is taken back out of the sources, so only the changed files compile
# again) and `bench render` alternates between them. Timings drift between machines and days by more than most
# changes move them (docs/performance-notes.md), so a ratio is only worth quoting from one call.
#
# On the CPU machine, with the change committed (or in the working tree):
#   bash scripts/bench-ab.sh --prepare BASE_REV   # writes .bench-inputs/ab.patch: the change to lib, models,
#                                                 # kernels and apps since BASE_REV
# Then as the device command (carry .deps/src and .bench-inputs, as scripts/gpu-check.sh needs):
#   bash scripts/bench-ab.sh
# Or two settings of one build (environment switches; no patch, one build):
#   bash scripts/bench-ab.sh --env "LSYNC_VAE_IMAGES=4" "LSYNC_VAE_IMAGES=8"   # "before" first, "after" second
# Settings (environment):
#   LSYNC_AB_MODEL   default 1.5          LSYNC_AB_FRAMES  default 500
#   LSYNC_AB_RUNS    default 3 (per side) LSYNC_AB_ARGS    more `bench render` options, e.g. "--busy"
#   LSYNC_AB_ATTENTION default flash
#   LSYNC_AB_PRIME   1: one run per side before the alternation, left out of the table (a side whose first run
#                    differs from its later ones: e.g. LSYNC_FIRST_USE_DIR=/tmp/fu, an empty first-use journal
#                    folder, whose first run writes the journal the later ones read). With --env each side's
#                    settings have a first-use journal of their own (its key holds the LSYNC_ switches set), so the
#                    sides no longer hand each other their shapes; a side's prime run writes its journal
#   LSYNC_AB_TIMELINE 1: after the alternation, one traced render per side (scripts/render_timeline.py with
#                    LSYNC_TIME_CHUNKS=1: the start, each group's device times, the face pass's end), its summary in
#                    $OUT/ab-timeline-before.txt and -after.txt: where a side's time went, not only how much
#   LSYNC_AB_BUILD   the build command (default: scripts/gpu-build.sh; a CPU check of this script can use
#                    "bash scripts/build.sh --target latentsync" with LSYNC_AB_MODEL=test-tiny and
#                    LSYNC_AB_ATTENTION=standard)
# Output, in $OUT (or build-gpu/logs): ab.md, one row per run in the order run, then the medians per side and
# their ratio; the runs' tables and logs stay in a temporary folder (a device call returns few files).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PATCH="$ROOT/.bench-inputs/ab.patch"

if [ "${1:-}" = "--prepare" ]; then
    base=${2:?usage: bench-ab.sh --prepare BASE_REV}
    mkdir -p "$ROOT/.bench-inputs"
    git diff "$base" -- lib models kernels apps > "$PATCH.new"
    if [ ! -s "$PATCH.new" ]; then
        rm -f "$PATCH.new"
        echo "bench-ab: nothing in lib, models, kernels or apps changed since $base" >&2
        exit 2
    fi
    mv "$PATCH.new" "$PATCH"
    printf '%s\n' "$(git rev-parse --short "$base")" > "$ROOT/.bench-inputs/ab.base"
    echo "bench-ab: $(grep -c '^diff --git' "$PATCH") files changed since $base -> $PATCH"
    exit 0
fi

# --env: one binary, two sets of environment settings (each a space-separated list of NAME=VALUE).
ENV_MODE="" ENV_BEFORE="" ENV_AFTER=""
if [ "${1:-}" = "--env" ]; then
    [ $# -eq 3 ] || { echo "usage: bench-ab.sh --env 'BEFORE_SETTINGS' 'AFTER_SETTINGS'" >&2; exit 2; }
    ENV_MODE=1 ENV_BEFORE=$2 ENV_AFTER=$3
    for setting in $ENV_BEFORE $ENV_AFTER; do
        [[ $setting == *=* ]] || { echo "bench-ab: '$setting' is not NAME=VALUE" >&2; exit 2; }
    done
else
    [ -s "$PATCH" ] ||
        { echo "bench-ab: no $PATCH (run bash scripts/bench-ab.sh --prepare BASE_REV first)" >&2; exit 2; }
fi
LOGS="${OUT:-$ROOT/build-gpu/logs}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu}"
export BUILD_DIR
mkdir -p "$LOGS"
WORK=$(mktemp -d)
BASE_NAME=$(cat "$ROOT/.bench-inputs/ab.base" 2>/dev/null || echo "the base")
[ -n "$ENV_MODE" ] && BASE_NAME="${ENV_BEFORE:-no settings}; after: ${ENV_AFTER:-no settings}"

build() {  # LOG
    if [ -n "${LSYNC_AB_BUILD:-}" ]; then
        # shellcheck disable=SC2086  # a command line
        ${LSYNC_AB_BUILD} > "$1" 2>&1 || { tail -30 "$1"; return 1; }
    else
        bash scripts/gpu-build.sh "$1"
    fi
}

echo "== after: the tree as carried ($(date +%T))"
build "$WORK/build-after.log"
cp "$BUILD_DIR/bin/latentsync" "$WORK/after"
if [ -n "$ENV_MODE" ]; then
    cp "$WORK/after" "$WORK/before"  # one binary: the sides differ in their settings only
else
    echo "== before: $BASE_NAME, the change taken out of the sources ($(date +%T))"
    patch -R -p1 --quiet < "$PATCH"
    # The sources go back to the change whatever happens next.
    trap 'patch -p1 --quiet --forward < "$PATCH" > /dev/null || echo "bench-ab: could not re-apply $PATCH" >&2' EXIT
    if [ -n "${LSYNC_AB_BUILD:-}" ]; then
        build "$WORK/build-before.log"
    else
        cmake --build "$BUILD_DIR" -j "$(nproc)" --target latentsync > "$WORK/build-before.log" 2>&1 ||
            { grep -E "error" "$WORK/build-before.log" | head -20; exit 1; }
    fi
    cp "$BUILD_DIR/bin/latentsync" "$WORK/before"
    cmp -s "$WORK/after" "$WORK/before" && echo "bench-ab: warning: the two binaries are identical"
fi

run() {  # SIDE INDEX (INDEX "prime": a run left out of the table)
    local json="$WORK/$1-$2.json" settings=$ENV_AFTER
    [ "$2" = prime ] && json="$WORK/$1-prime.left-out"
    [ "$1" = before ] && settings=$ENV_BEFORE
    echo "-- $1 $2 ($(date +%T))"
    # shellcheck disable=SC2086  # LSYNC_AB_ARGS is a list of options, the settings a list of NAME=VALUE
    env $settings timeout 300 "$WORK/$1" bench render --models "${LSYNC_AB_MODEL:-1.5}" \
        --attention "${LSYNC_AB_ATTENTION:-flash}" --frames "${LSYNC_AB_FRAMES:-500}" \
        --model-dir "$ROOT/tests/fixtures/face-api" --json "$json" ${LSYNC_AB_ARGS:-} \
        > "$WORK/$1-$2.md" 2> "$WORK/$1-$2.err" || { tail -5 "$WORK/$1-$2.err"; return 0; }
}
if [ "${LSYNC_AB_PRIME:-0}" = 1 ]; then
    run after prime
    run before prime
fi
for i in $(seq 1 "${LSYNC_AB_RUNS:-3}"); do
    run after "$i"
    run before "$i"
done

# A timeline per side on one pair of inputs, in the order the runs went (after, then before).
timeline() {  # SIDE
    local settings=$ENV_AFTER frames=${LSYNC_AB_FRAMES:-500}
    [ "$1" = before ] && settings=$ENV_BEFORE
    echo "-- $1 timeline ($(date +%T))"
    # shellcheck disable=SC2086  # the settings are a list of NAME=VALUE
    env $settings LSYNC_TIME_CHUNKS=1 timeout 300 python3 "$ROOT/scripts/render_timeline.py" --label "$1" -- \
        "$WORK/$1" render "$WORK/inputs/face720p_$frames.mp4" "$WORK/inputs/speech_$frames.wav" \
        -o "$WORK/$1-timeline.mp4" --overwrite --weights random --model "${LSYNC_AB_MODEL:-1.5}" \
        --attention "${LSYNC_AB_ATTENTION:-flash}" --model-dir "$ROOT/tests/fixtures/face-api" --json-log \
        > "$WORK/$1-timeline.txt" 2>&1 || echo "bench-ab: the $1 timeline failed (see its last lines)"
    # The lines without the JSON events (a call returns few and small files).
    grep -v '^{' "$WORK/$1-timeline.txt" | cut -c1-240 > "$LOGS/ab-timeline-$1.txt"
}
if [ "${LSYNC_AB_TIMELINE:-0}" = 1 ]; then
    "$WORK/after" bench render --inputs-only --frames "${LSYNC_AB_FRAMES:-500}" --work "$WORK/inputs" \
        --model-dir "$ROOT/tests/fixtures/face-api" > /dev/null
    timeline after
    timeline before
fi

python3 - "$WORK" "$BASE_NAME" > "$LOGS/ab.md" <<'PY'
import glob, json, os, statistics, sys
work, base = sys.argv[1], sys.argv[2]
rows = {"after": [], "before": []}
# The pre-warmed column: the first-use journal each run met (convolutions / other operations). With a journal per
# side, each side's runs after its prime meet some of both, as the other side's do; a side that meets none of one
# kind where the other meets some (or whose runs differ in that) was handed another journal, and its times include
# first uses (session 49's call 49B).
print("| run | render stage s | render frames/s | wall s | GPU peak (allocator) GiB | host peak GiB | pre-warmed |")
print("|---|---|---|---|---|---|---|")
prewarmed = {"after": set(), "before": set()}  # per side: (no convolutions, no operations) of each run
for path in sorted(glob.glob(os.path.join(work, "*.json")), key=os.path.getmtime):
    side = os.path.basename(path).split("-")[0]
    for r in json.load(open(path)).get("rows", []):
        if not r.get("ok") or r.get("render_fps", 0) <= 0:
            continue
        row = (r["frames_out"] / r["render_fps"], r["render_fps"], r["wall_seconds"], r["gpu_peak_bytes"] / 2**30,
               r["host_peak_rss_bytes"] / 2**30)
        rows[side].append(row)
        convs, ops = r.get("prewarmed_convs", 0), r.get("prewarmed_ops", 0)
        warm = f"{convs:.0f} / {ops:.0f}"
        prewarmed[side].add((convs == 0, ops == 0))
        print(f"| {side} | {row[0]:.2f} | {row[1]:.1f} | {row[2]:.2f} | {row[3]:.2f} | {row[4]:.2f} | {warm} |")
if rows["after"] and rows["before"]:
    med = {s: [statistics.median(c) for c in zip(*v)] for s, v in rows.items()}
    for s in ("after", "before"):
        m = med[s]
        print(f"| **{s}, median of {len(rows[s])}** | {m[0]:.2f} | {m[1]:.1f} | {m[2]:.2f} | {m[3]:.2f} | {m[4]:.2f} | |")
    ratio = lambda k: f"{med['after'][k] / med['before'][k]:.3f}" if med["before"][k] > 0 else "-"
    print(f"\nafter / before ({base}), medians: render stage {ratio(0)}, wall {ratio(2)}, GPU peak {ratio(3)}, "
          f"host peak {ratio(4)}")
    if len(prewarmed["after"]) > 1 or len(prewarmed["before"]) > 1 or prewarmed["after"] != prewarmed["before"]:
        print("\nbench-ab: warning: the sides' runs did not all meet a first-use journal alike (the pre-warmed "
              "column): a run handed another setting's journal pays first uses in its time")
else:
    print("\nnot every side finished a run: see the .err files")
PY
cat "$LOGS/ab.md"
