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

expect_rc 3 "not found" -- "$BIN" debug faces --model-dir "$FIX" missing.jpg
echo "not an image" > text.jpg
expect_rc 7 "no decodable picture" -- "$BIN" debug faces --model-dir "$FIX" text.jpg
finish
