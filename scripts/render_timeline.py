#!/usr/bin/env python3
"""A render's timeline: when each stage began, how many frames were done, and how busy the GPU was, second by
second (docs/performance-notes.md section 10). Runs the command given after `--` (a `latentsync render ...
--json-log`), time-stamps its JSON events as they arrive and samples nvidia-smi's utilisation every 100 ms.

    python3 scripts/render_timeline.py [--label TEXT] -- BIN render IN.mp4 IN.wav -o OUT.mp4 ... --json-log

Prints the stages, the lines that are not JSON events (LSYNC_TIME_CHUNKS=1's groups and segment closes,
time-stamped), one line per half
second of the render stage (frames done, mean GPU utilisation) and a summary: when the
face pass ended (the finish event's stage times), when the GPU first stayed busy, and the frame rate before and
after that point. Exit status: the command's.
"""
import json
import shutil
import subprocess
import sys
import threading
import time


def sample_gpu(samples, stop, start):
    if not shutil.which("nvidia-smi"):
        return
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                            "-lms", "100"], stdout=subprocess.PIPE, text=True)
    for line in smi.stdout:
        if stop.is_set():
            break
        try:
            samples.append((time.monotonic() - start, float(line.split(",")[0])))
        except ValueError:
            pass
    smi.kill()


def main():
    args = sys.argv[1:]
    label = ""
    if args[:1] == ["--label"]:
        label, args = args[1], args[2:]
    if args[:1] != ["--"] or len(args) < 2:
        sys.exit("usage: render_timeline.py [--label TEXT] -- COMMAND ... --json-log")
    command = args[1:]
    start = time.monotonic()
    samples, stop = [], threading.Event()
    sampler = threading.Thread(target=sample_gpu, args=(samples, stop, start), daemon=True)
    sampler.start()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    events, other = [], []
    for line in proc.stderr:
        now = time.monotonic() - start
        try:
            events.append((now, json.loads(line)))
        except ValueError:
            other.append((now, line.rstrip()))
    rc = proc.wait()
    stop.set()
    end = time.monotonic() - start

    print("== %s (exit %d, %.2f s)" % (label or " ".join(command[:2]), rc, end))
    stages = [(t, e["stage"]) for t, e in events if e.get("event") == "stage"]
    for t, name in stages:
        print("  %6.2f s  stage %s" % (t, name))
    for t, e in events:
        if e.get("event") == "finish":
            print("  %6.2f s  finish event (the process ended %.2f s later)" % (t, end - t))
    for t, line in other:  # LSYNC_TIME_CHUNKS lines, diagnostics
        print("  %6.2f s  %s" % (t, line))
    render_start = next((t for t, name in stages if name == "render"), None)
    finish = next((e for t, e in events if e.get("event") == "finish"), None)
    progress = [(t, e["done"]) for t, e in events if e.get("event") == "progress" and e.get("stage") == "render"]
    if render_start is None or not progress:
        return rc

    def util_between(a, b):
        vals = [u for t, u in samples if a <= t < b]
        return sum(vals) / len(vals) if vals else float("nan")

    def done_at(t):
        return max([d for s, d in progress if s <= t], default=0)

    t = render_start
    while t < progress[-1][0]:
        print("  %6.2f s  %4d frames  GPU %5.1f %%" % (t - render_start, done_at(t + 0.5), util_between(t, t + 0.5)))
        t += 0.5
    # The steady state: from the first half second at >= 80 % utilisation on.
    busy_from = next((s for s in [render_start + 0.5 * k for k in range(int((end - render_start) / 0.5) + 1)]
                      if util_between(s, s + 0.5) >= 80), None)
    if finish:
        faces = finish.get("stage_seconds", {}).get("faces")
        print("  face pass: %.2f s (from before the models; the render stage began at %.2f s)" %
              (faces or float("nan"), render_start))
    last_t, total = progress[-1]
    if busy_from is not None:
        before = done_at(busy_from)
        print("  slow start: %.2f s at %.1f %% GPU, %d frames (%.1f frames/s); then %.2f s at %.1f %%, %d frames "
              "(%.1f frames/s)" % (busy_from - render_start, util_between(render_start, busy_from), before,
                                  before / max(busy_from - render_start, 1e-9), last_t - busy_from,
                                  util_between(busy_from, last_t), total - before,
                                  (total - before) / max(last_t - busy_from, 1e-9)))
    return rc


if __name__ == "__main__":
    sys.exit(main())
