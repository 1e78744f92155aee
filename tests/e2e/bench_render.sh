#!/usr/bin/env bash
# `latentsync bench render` end to end on the CPU with the tiny model: it makes its own 720p clip and speech
# (no ffmpeg CLI needed), renders them in process, and reports every stage; the JSON and the table agree, the
# stages inside the worker fit inside the render stage, and a mode that cannot run is a row, not an abort.
source "$(dirname "$0")/lib.sh"
FIX="$(cd "$(dirname "$0")/../fixtures/face-api" && pwd)"
cd "$WORK"

mkdir tmp  # its temporary folder goes here, to see that it is removed
TMPDIR="$WORK/tmp" "$BIN" bench render --models test-tiny --frames 20 --attention standard --device cpu \
    --model-dir "$FIX" --json bench.json > table.md 2> progress.txt || { fail "bench render exited $?"; cat progress.txt >&2; finish; }
[ -z "$(ls tmp)" ] || fail "temporary folder left behind: $(ls tmp)"
python3 - bench.json <<'PY' || fail "bench.json"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["device"] == "cpu" and r["command"].startswith("latentsync bench render"), r
assert r["gemm_peak"]["tflops"] > 0, r["gemm_peak"]
rows = r["rows"]
assert len(rows) == 1, rows
row = rows[0]
assert row["ok"] and row["model"] == "test-tiny" and row["attention"] == "standard" and row["frames"] == 20, row
assert row["frames_out"] == 20 and row["lipsynced"] > 0, row  # the face in the photo was found
assert row["wall_seconds"] > 0 and row["output_fps"] > 0, row
stages = row["stage_seconds"]
for k in ("models", "audio", "faces", "render"):
    assert k in stages and stages[k] >= 0, (k, stages)
assert stages["render"] > 0, stages
for k in ("decode", "faces_wait", "audio", "pack", "workers_wait", "encoder"):
    assert row["render_thread_seconds"][k] >= 0, (k, row["render_thread_seconds"])
assert len(row["worker_busy_seconds"]) == 1, row
names = ("align", "vae_encode", "unet", "vae_decode", "paste_back")
for w in row["worker_stage_seconds"]:
    assert all(k in w and w[k] >= 0 for k in names), w
    # The worker's stages happen inside its busy time, which happens inside the render stage.
    assert sum(w.values()) <= stages["render"], (w, stages)
assert row["chunk_stage_seconds"]["unet"] > 0, row
assert row["host_peak_rss_bytes"] > 0, row
assert row["gpu_peak_bytes"] == 0 and row["gpu_peak_after_faces_bytes"] == 0, row  # no GPU allocator on the CPU
assert "achieved_tflops" not in row, row  # the tiny model has no published FLOP counts
# Each run's own numbers (one run here: the row's medians are its values).
assert len(row["each_run"]) == row["runs"] == 1, row
run = row["each_run"][0]
assert run["wall_seconds"] == row["wall_seconds"] and run["render_fps"] == row["render_fps"], run
assert run["stage_seconds"]["render"] == stages["render"], run
assert run["gpu_peak_bytes"] == row["gpu_peak_bytes"], run  # each run's peak, since a memory target holds for each
print("ok:", row["wall_seconds"], "s wall,", row["chunk_stage_seconds"])
PY
grep -q '^| test-tiny (128) | standard | 20 | [0-9.]* |' table.md || { fail "table lacks the row"; cat table.md >&2; }
grep -q '^Command: `latentsync bench render --models test-tiny' table.md || fail "table header lacks the command"
# Every row has the header's columns; the GPU busy column says "-" where nothing was recorded.
header_cells=$(grep '^| model |' table.md | tr -cd '|' | wc -c)
row_cells=$(grep '^| test-tiny' table.md | tr -cd '|' | wc -c)
[ "$header_cells" -gt 10 ] && [ "$header_cells" = "$row_cells" ] || fail "header has $header_cells cell borders, the row $row_cells"
grep -q '^| test-tiny (128) | standard | 20 | .* | - |$' table.md || { fail "busy cell of a run without --busy"; cat table.md >&2; }
grep -q 'bench render \[1/1\] test-tiny standard 20 frames' progress.txt || { fail "progress line"; cat progress.txt >&2; }

# A mode this build cannot run strictly (flash needs LibTorch 2's SDPA) becomes a failed row and the exit is 0;
# where it can run (a LibTorch 2 build), the row has numbers. --work keeps the inputs there.
"$BIN" bench render --models test-tiny --frames 16 --attention flash --device cpu --model-dir "$FIX" \
    --work kept --json flash.json > flash.md 2>/dev/null || fail "bench render with flash exited $?"
python3 - flash.json <<'PY' || fail "flash.json"
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert len(rows) == 1 and (rows[0]["ok"] and rows[0]["frames_out"] == 16 or
                           not rows[0]["ok"] and "flash" in rows[0]["error"]), rows
PY
grep -q '^| test-tiny (128) | flash | 16 | \(failed: .*flash\|[0-9.]* |\)' flash.md || { fail "flash row"; cat flash.md >&2; }
[ -f kept/face720p_16.mp4 ] && [ -f kept/speech_16.wav ] || fail "--work folder lacks the inputs"
ls kept/render-* >/dev/null 2>&1 && fail "outputs kept without --keep"

# --inputs-only: the clips and nothing else, in --work (which it needs).
"$BIN" bench render --inputs-only --frames 16,24 --device cpu --model-dir "$FIX" --work inputs > inputs.txt 2>/dev/null \
    || fail "bench render --inputs-only exited $?"
[ "$(cd inputs && ls | sort | tr '\n' ' ')" = "face720p_16.mp4 face720p_24.mp4 speech_16.wav speech_24.wav " ] \
    || fail "--inputs-only made: $(ls inputs)"
grep -q "inputs in .*inputs" inputs.txt || fail "--inputs-only did not name its folder"
expect_rc 2 "needs --work" -- "$BIN" bench render --inputs-only --frames 16 --device cpu --model-dir "$FIX"

# --busy on the CPU: nothing to record, the run and its row as without it.
"$BIN" bench render --models test-tiny --frames 16 --attention standard --device cpu --model-dir "$FIX" --busy \
    --json busy.json > busy.md 2>/dev/null || fail "bench render --busy exited $?"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["rows"][0]; assert r["ok"] and "gpu_busy" not in r, r' busy.json \
    || fail "busy.json"

# --weights random-files: the random UNet and VAE written to the work folder and read back through the loaders
# give the video --weights random gives (on the CPU both draw the same values), and a second run reuses them.
files_run() {  # WEIGHTS
    "$BIN" bench render --models test-tiny --frames 16 --attention standard --device cpu --model-dir "$FIX" \
        --work files --keep --weights "$1" --json "files-$1.json" > /dev/null 2>&1 || fail "bench render --weights $1 exited $?"
}
files_run random-files
[ -s files/models/test-tiny/unet.safetensors ] && [ -s files/models/test-tiny/vae/config.json ] &&
    [ -s files/models/test-tiny/vae/diffusion_pytorch_model.safetensors ] || fail "random-files wrote: $(ls -R files/models)"
stamp=$(stat -c %Y:%i files/models/test-tiny/unet.safetensors)
mv files/render-test-tiny-standard-16.mp4 files/from-files.mp4
files_run random
cmp -s files/from-files.mp4 files/render-test-tiny-standard-16.mp4 || fail "random-files and random renders differ"
files_run random-files
[ "$(stat -c %Y:%i files/models/test-tiny/unet.safetensors)" = "$stamp" ] || fail "the model files were written again"
cmp -s files/from-files.mp4 files/render-test-tiny-standard-16.mp4 || fail "a second random-files render differs"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["weights"] == "random-files" and r["rows"][0]["ok"], r' \
    files-random-files.json || fail "files-random-files.json"

# Bad options: one error line, the usage exit code.
expect_rc 2 "--models" -- "$BIN" bench render --models 2.0 --device cpu
expect_rc 2 "--frames" -- "$BIN" bench render --frames 0 --device cpu
expect_rc 2 "--attention" -- "$BIN" bench render --attention fast --device cpu
expect_rc 2 "--weights" -- "$BIN" bench render --weights some --device cpu
finish
