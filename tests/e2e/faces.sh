#!/usr/bin/env bash
# `latentsync debug faces` on a real photo (face-api's sample1.jpg, three faces): JSON with every face, the
# chosen one and its alignment matrix; --dump writes the overlay and the aligned crop. Bad inputs are refused
# before any model is loaded.
source "$(dirname "$0")/lib.sh"
FIX="$(cd "$(dirname "$0")/../fixtures/face-api" && pwd)"
cd "$WORK"

"$BIN" -q debug faces --model-dir "$FIX" "$FIX/sample1.jpg" --json --dump dump > faces.json || fail "debug faces"
python3 - faces.json <<'PY' || fail "debug faces JSON"
import json, sys
d = json.load(open(sys.argv[1]))
f = d["frames"][0]
assert len(f["faces"]) == 3, len(f["faces"])
assert all(len(x["landmarks"]) == 68 and x["score"] > 0.5 for x in f["faces"])
assert f["chosen"] is not None and len(f["alignment"]) == 6, f.get("alignment")
# A similarity transform: [a b; -b a] up to rounding.
a, b, _, c, e, _ = f["alignment"]
assert abs(a - e) < 1e-6 and abs(b + c) < 1e-6, f["alignment"]
PY
[ -s dump/faces_000000.png ] && [ -s dump/aligned_000000.png ] || fail "--dump did not write the overlay and the crop"

# The face options are render's: the same one-line errors, before anything heavy runs.
expect_rc 2 "--face:" -- "$BIN" debug faces --model-dir "$FIX" "$FIX/sample1.jpg" --face foo
expect_rc 2 "--face-box" -- "$BIN" debug faces --model-dir "$FIX" "$FIX/sample1.jpg" --face-box 1,2,3
expect_rc 2 "--detect-every" -- "$BIN" debug faces --model-dir "$FIX" "$FIX/sample1.jpg" --detect-every 0
expect_rc 2 "give one" -- "$BIN" debug faces --model-dir "$FIX" "$FIX/sample1.jpg" --face-box 1,2,30,40 \
    --face-track "$FIX/sample1.jpg"
expect_rc 3 "not found" -- "$BIN" debug faces --model-dir "$FIX" "$FIX/sample1.jpg" --face-track nope.json
# InsightFace: the missing file is named; with the files present, a clear "not in this build".
expect_rc 12 "det_10g.onnx" -- "$BIN" debug faces --model-dir "$WORK" --face-models insightface "$FIX/sample1.jpg"
touch det_10g.onnx 2d106det.onnx
expect_rc 2 "cannot run the InsightFace" -- "$BIN" debug faces --model-dir "$WORK" --face-models insightface \
    "$FIX/sample1.jpg"

# --face 0 picks the leftmost woman, --face-box skips the detector; the summary counts the frame.
"$BIN" -q debug faces --model-dir "$FIX" "$FIX/sample1.jpg" --face 0 --json > left.json || fail "--face 0"
"$BIN" -q debug faces --model-dir "$FIX" "$FIX/sample1.jpg" --face-box 820,400,220,260 --json > box.json \
    || fail "--face-box"
python3 - <<'PY' || fail "--face / --face-box JSON"
import json
left = json.load(open("left.json"))
f = left["frames"][0]
xs = [x["box"][0] for x in f["faces"]]
assert f["chosen"] == xs.index(min(xs)), (f["chosen"], xs)
assert left["summary"]["aligned"] == 1 and left["summary"]["detector_frames"] == 1, left["summary"]
box = json.load(open("box.json"))
b = box["frames"][0]
assert b["ran"] == "landmarks in region" and b["alignment"] is not None, b["ran"]
assert box["summary"]["detector_frames"] == 0, box["summary"]
PY

# A --face-track file with landmarks needs no face models at all (the model folder here is empty).
python3 - <<'PY' || fail "writing the track file"
import json
f = json.load(open("left.json"))["frames"][0]
face = f["faces"][f["chosen"]]
json.dump({"version": 1, "scheme": "ibug68", "frames": [{"frame": 0, "landmarks": face["landmarks"]}]},
          open("track.json", "w"))
PY
mkdir -p empty_models
"$BIN" -q debug faces --model-dir empty_models "$FIX/sample1.jpg" --face-track track.json --json > tracked.json \
    || fail "--face-track without face models"
python3 - <<'PY' || fail "--face-track JSON"
import json
d = json.load(open("tracked.json"))
f = d["frames"][0]
assert f["ran"] == "track file" and f["chosen"] == 0 and f["alignment"] is not None, f
assert d["detector"].startswith("none"), d["detector"]
PY

# bench face-detect runs the same face step on frames made from the photo (tiny here: the table's shape only).
"$BIN" -q bench face-detect "$FIX/sample1.jpg" --model-dir "$FIX" --device cpu --width 480 --height 320 \
    --batch 2 --iters 1 --detect-every 2 > bench.md || fail "bench face-detect"
grep -q '^| 2 | ' bench.md || fail "bench face-detect: no row for --detect-every 2: $(cat bench.md)"
expect_rc 3 "not found" -- "$BIN" bench face-detect missing.jpg --model-dir "$FIX"

expect_rc 3 "not found" -- "$BIN" debug faces --model-dir "$FIX" missing.jpg
echo "not an image" > text.jpg
expect_rc 7 "no decodable picture" -- "$BIN" debug faces --model-dir "$FIX" text.jpg
finish
