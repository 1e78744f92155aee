#!/usr/bin/env bash
# scripts/plot_bench.py on `bench render --json` files: one line per model and mode in each of its three panels,
# a length measured in two files drawn at its median, a row that did not run or cannot be read left out and named,
# the PNG rasterised by the ffmpeg CLI at the SVG's size, and a file with no row that ran, or not JSON, refused.
source "$(dirname "$0")/lib.sh"
PLOT="$(cd "$(dirname "$0")/../.." && pwd)/scripts/plot_bench.py"
cd "$WORK"

python3 - <<'PY' || fail "make inputs"
import json
def row(model, attention, frames, render, gpu_gib, host_gib, ok=True):
    return {"model": model, "attention": attention, "frames": frames, "ok": ok, "error": "" if ok else "out of memory",
            "stage_seconds": {"render": render}, "gpu_peak_bytes": gpu_gib * 2**30, "host_peak_rss_bytes": host_gib * 2**30}
a = {"device_description": "Test GPU", "date": "2026-12-07 08:15 UTC", "rows": [
    row("1.5", "flash", 50, 2.0, 3.4, 2.8), row("1.5", "flash", 200, 4.0, 3.6, 3.8),
    row("1.6", "flash", 50, 4.0, 5.3, 4.1), row("1.6", "flash", 200, 14.0, 5.5, 4.1),
    row("1.6", "standard", 200, 0, 0, 0, ok=False),
    {"ok": True, "model": "1.5", "attention": "flex", "frames": 50}]}  # ran, but its numbers are missing
b = {"device_description": "Test GPU", "date": "2026-12-08 09:00 UTC", "rows": [
    row("1.5", "flash", 200, 6.0, 3.6, 3.8), row("1.5", "flash", 200, 10.0, 3.6, 3.8),
    row("1.5", "flash", 500, 9.0, 3.5, 3.9)]}
json.dump(a, open("a.json", "w")); json.dump(b, open("b.json", "w"))
json.dump({"rows": [row("1.5", "flash", 50, 0, 0, 0, ok=False)]}, open("none.json", "w"))
PY
python3 "$PLOT" a.json b.json -o plot.svg --png plot.png 2> plot.err || fail "plot_bench exited $?: $(cat plot.err)"
grep -q "left out (did not run): 1.6 standard 200 frames: out of memory" plot.err || fail "the failed row is not named: $(cat plot.err)"
grep -q "left out (unreadable row in a.json): no 'stage_seconds'" plot.err || fail "the unreadable row is not named: $(cat plot.err)"
python3 - plot.svg <<'PY' || fail "plot.svg"
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
lines = root.findall(".//s:polyline[@class='series']", ns)
keys = [l.get("data-key") for l in lines]
assert sorted(keys) == sorted(["1.5 flash", "1.6 flash"] * 3), keys  # three panels, the failed and unreadable absent
texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
assert "2026-12-07 to 2026-12-08; medians where a length ran more than once" in texts, texts
# The render-stage panel (the first): 1.5's points at 50, 200 and 500 frames, 200 at the median of 4, 6 and 10 s.
first = next(l for l in lines if l.get("data-key") == "1.5 flash")
pts = [tuple(map(float, p.split(","))) for p in first.get("points").split()]
assert len(pts) == 3, pts
(x50, y50), (x200, y200), (x500, y500) = pts
assert x50 < x200 < x500, pts
# Linear axes from 0: the heights above the axis stand as 2 : 6 : 9 (a mean would give 6.67).
axis = [float(r.get("y")) + float(r.get("height")) for r in root.findall(".//s:rect", ns) if r.get("stroke")][0]
r50, r200, r500 = (axis - y50), (axis - y200), (axis - y500)
assert abs(r200 / r50 - 3.0) < 0.02 and abs(r500 / r50 - 4.5) < 0.02, (r50, r200, r500)
print(root.get("width") + "," + root.get("height"), file=open("svg-size", "w"))
PY
[ "$(ffprobe -v error -show_entries stream=width,height -of csv=p=0 plot.png)" = "$(cat svg-size)" ] \
    || fail "plot.png: $(ffprobe -v error -show_entries stream=width,height -of csv=p=0 plot.png), the SVG $(cat svg-size)"
python3 "$PLOT" none.json -o none.svg 2> none.err && fail "a file with no row that ran was plotted"
grep -q "no row ran in none.json" none.err || fail "no reason given: $(cat none.err)"
echo "{not json" > bad.json
python3 "$PLOT" bad.json -o bad.svg 2> bad.err && fail "a file that is not JSON was plotted"
grep -q "cannot read bad.json" bad.err && [ "$(wc -l < bad.err)" = 1 ] || fail "not one line naming the file: $(cat bad.err)"
finish
