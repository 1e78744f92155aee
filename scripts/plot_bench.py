#!/usr/bin/env python3
"""Plots `latentsync bench render --json` results: render-stage time, GPU peak and host peak against the number of
frames, one line per model and attention mode. Writes an SVG (Python's standard library only) and, with --png, a
PNG rasterised by the ffmpeg CLI (its librsvg decoder), so no plotting package is needed on either machine.

    python3 scripts/plot_bench.py bench-a.json [bench-b.json ...] -o plot.svg [--png plot.png]

Rows of several files are pooled: the same model, mode and length measured more than once is drawn at its median.
Rows that did not run (`"ok": false`) are left out and named on stderr.
"""
import argparse
import json
import math
import statistics
import subprocess
import sys
from xml.sax.saxutils import escape as xml_escape

GIB = 1024.0 ** 3
PANELS = (
    ("render stage, s", lambda r: r["stage_seconds"]["render"]),
    ("GPU peak (allocator), GiB", lambda r: r["gpu_peak_bytes"] / GIB),
    ("host peak, GiB", lambda r: r["host_peak_rss_bytes"] / GIB),
)
COLOURS = {"flash": "#1f77b4", "flex": "#2ca02c", "standard": "#d62728"}
DASHES = ["", "8,4", "2,3", "10,3,2,3"]  # one per model, in the order met
PANEL_W, PANEL_H, MARGIN_L, MARGIN_B, TOP = 330, 250, 60, 48, 70


def escape(text):
    """Text for an SVG element or a double-quoted attribute."""
    return xml_escape(str(text), {'"': "&quot;"})


def usable(row):
    """Why a row that ran cannot be drawn, or "" when it can."""
    try:
        frames = row["frames"]
        if isinstance(frames, bool) or not isinstance(frames, int) or frames <= 0:
            return f"frames {frames!r} is not a positive whole number"
        for _, value in PANELS:
            v = value(row)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                return f"a value is not a finite number >= 0: {v!r}"
    except KeyError as e:
        return f"no {e}"
    except TypeError as e:
        return f"a value is not a number ({e})"
    return ""


def read_rows(paths):
    """{(model, attention): {frames: [row, ...]}} and the devices and dates named by the files."""
    series, devices, dates = {}, [], []
    for path in paths:
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"plot_bench: cannot read {path}: {e}")
        if not isinstance(doc, dict) or not isinstance(doc.get("rows", []), list):
            sys.exit(f"plot_bench: {path} is not a bench render --json file")
        devices.append(str(doc.get("device_description") or doc.get("device") or "?"))
        dates.append(str(doc.get("date") or "?"))
        for row in doc.get("rows", []):
            if not isinstance(row, dict):
                print(f"plot_bench: left out (unreadable row in {path}): {row!r}", file=sys.stderr)
                continue
            if not row.get("ok"):
                print(f"plot_bench: left out (did not run): {row.get('model')} {row.get('attention')} "
                      f"{row.get('frames')} frames: {row.get('error', '')}", file=sys.stderr)
                continue
            why = usable(row)
            if why:
                print(f"plot_bench: left out (unreadable row in {path}): {why}", file=sys.stderr)
                continue
            key = (str(row.get("model", "?")), str(row.get("attention", "?")))
            series.setdefault(key, {}).setdefault(int(row["frames"]), []).append(row)
    if not series:
        sys.exit("plot_bench: no row ran in " + ", ".join(paths))
    return series, devices, dates


def nice_ticks(top):
    """About five round ticks from 0 to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / 5.0
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= raw:
            step *= m
            break
    n = int(math.ceil(top / step - 1e-9))
    return [i * step for i in range(n + 1)]


def date_span(dates):
    """The files' dates as one day ("2026-12-07") or a span of days, without the times of day."""
    days = sorted({d.split(" ")[0] for d in dates})
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def label(v):
    return f"{v:g}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}"


def panel(x0, title, points_by_key, frames_all, style):
    """One chart: `points_by_key` {key: [(frames, value), ...]}."""
    out = []
    xmax = max(frames_all)
    yticks = nice_ticks(max(v for pts in points_by_key.values() for _, v in pts))
    ymax = yticks[-1]
    w, h = PANEL_W - MARGIN_L - 15, PANEL_H - MARGIN_B
    px = lambda f: x0 + MARGIN_L + w * f / xmax
    py = lambda v: TOP + h - h * v / ymax
    out.append(f'<text x="{x0 + MARGIN_L + w / 2}" y="{TOP - 12}" text-anchor="middle" font-size="13">'
               f'{escape(title)}</text>')
    out.append(f'<rect x="{x0 + MARGIN_L}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="#888"/>')
    for t in yticks:
        y = py(t)
        out.append(f'<line x1="{x0 + MARGIN_L}" y1="{y:.1f}" x2="{x0 + MARGIN_L + w}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 + MARGIN_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label(t)}</text>')
    for f in frames_all:
        x = px(f)
        out.append(f'<line x1="{x:.1f}" y1="{TOP + h}" x2="{x:.1f}" y2="{TOP + h + 4}" stroke="#888"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + h + 17}" text-anchor="middle" font-size="11">{f}</text>')
    out.append(f'<text x="{x0 + MARGIN_L + w / 2}" y="{TOP + h + 36}" text-anchor="middle" font-size="11">'
               f'frames</text>')
    for key, pts in points_by_key.items():
        colour, dash = style[key]
        coords = " ".join(f"{px(f):.1f},{py(v):.1f}" for f, v in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline class="series" data-key="{escape(" ".join(key))}" points="{coords}" fill="none" '
                   f'stroke="{colour}" stroke-width="2"{dash_attr}/>')
        for f, v in pts:
            out.append(f'<circle cx="{px(f):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}"/>')
    return out


def svg(series, devices, dates):
    keys = sorted(series)
    models = sorted({m for m, _ in keys})
    style = {k: (COLOURS.get(k[1], "#555"), DASHES[models.index(k[0]) % len(DASHES)]) for k in keys}
    frames_all = sorted({f for by_frames in series.values() for f in by_frames})
    width = PANEL_W * len(PANELS) + 20
    per_row = 3  # legend entries a line
    height = TOP + PANEL_H + 30 + 18 * ((len(keys) + per_row - 1) // per_row)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="DejaVu Sans, sans-serif">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">latentsync bench render: '
             f'{escape(", ".join(sorted(set(devices))))}</text>',
             f'<text x="{width / 2}" y="40" text-anchor="middle" font-size="11" fill="#555">'
             f'{escape(date_span(dates))}; medians where a length ran more than once</text>']
    for i, (title, value) in enumerate(PANELS):
        points = {k: [(f, statistics.median(value(r) for r in series[k][f])) for f in sorted(series[k])]
                  for k in keys}
        parts += panel(10 + i * PANEL_W, title, points, frames_all, style)
    for i, k in enumerate(keys):
        colour, dash = style[k]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        x, y = MARGIN_L + 200 * (i % per_row), TOP + PANEL_H + 24 + 18 * (i // per_row)
        parts.append(f'<line x1="{x}" y1="{y}" x2="{x + 36}" y2="{y}" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        parts.append(f'<text x="{x + 44}" y="{y + 4}" font-size="12">{escape(k[0])} {escape(k[1])}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+", help="bench render --json files")
    ap.add_argument("-o", "--output", required=True, help="SVG to write")
    ap.add_argument("--png", help="also rasterise to this PNG (needs the ffmpeg CLI with librsvg)")
    a = ap.parse_args()
    series, devices, dates = read_rows(a.json)
    with open(a.output, "w") as f:
        f.write(svg(series, devices, dates))
    if a.png:
        try:
            r = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", a.output, "-frames:v", "1", a.png],
                               capture_output=True, text=True)
        except OSError as e:
            sys.exit(f"plot_bench: the SVG is written; no PNG: cannot run ffmpeg ({e})")
        if r.returncode != 0:
            sys.exit("plot_bench: ffmpeg could not rasterise the SVG: " + r.stderr.strip())


if __name__ == "__main__":
    main()
