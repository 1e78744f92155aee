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

expect_rc 3 "not found" -- "$BIN" debug faces --model-dir "$FIX" missing.jpg
echo "not an image" > text.jpg
expect_rc 7 "no decodable picture" -- "$BIN" debug faces --model-dir "$FIX" text.jpg
finish
