#!/usr/bin/env bash
# `latentsync batch`: jobs spread over two workers on the CPU, failing jobs (missing input, no face with
# --on-missing-face fail, output folder missing) next to good ones, the summary and --json-log events, per-job
# options, the models kept warm, outputs equal to `render`'s, reruns that skip what is done, and bad manifests
# refused naming the line before anything is written.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/render_lib.sh"
cd "$WORK"

make_face_clip clip.mp4 0.5 30 || fail "make clip"
make_speech speech.wav 0.4 || fail "make speech"   # 10 frames
"$BIN" -q debug synth noface.mp4 --seconds 0.5 --size 160x120 --no-audio || fail "make a clip without a face"
B=("$BIN" batch --model test-tiny --weights random --model-dir "$FIX" --steps 2 --crf 0 --detect-every 4)  # as render_lib.sh's R
mkdir -p out
cat > jobs.csv <<'EOF'
video,audio,output,seed,on_missing_face
clip.mp4,speech.wav,out/a.mkv,,
clip.mp4,speech.wav,out/b.mkv,9,
missing.mp4,speech.wav,out/c.mkv,,
noface.mp4,speech.wav,out/d.mkv,,fail
clip.mp4,speech.wav,no-such-folder/e.mkv,,
"clip.mp4","speech.wav","out/f, the last.mkv",,pass
EOF

# 1. Two job threads on the CPU; three jobs fail, three succeed; exit 17.
"${B[@]}" jobs.csv --devices cpu,cpu --json-summary summary.json --json-log 2> log.jsonl
rc=$?
[ "$rc" = 17 ] || fail "batch with failing jobs: exit $rc (want 17)"$'\n'"$(tail -5 log.jsonl)"
python3 - <<'PY' || fail "first run: summary or events wrong (above)"
import json
s = json.load(open("summary.json"))
t = s["totals"]
assert (t["jobs"], t["ok"], t["failed"], t["skipped"]) == (6, 3, 3, 0), t
assert s["devices"] == ["cpu", "cpu"] and s["shard"] == {"index": 0, "count": 1, "source": "all"}, s
jobs = {j["output"].rsplit("/", 1)[-1]: j for j in s["jobs"]}
for name in ("a.mkv", "b.mkv", "f, the last.mkv"):
    j = jobs[name]
    assert j["status"] == "ok" and j["exit_code"] == 0 and j["frames"] == 10 and j["seconds"] > 0, j
want = {"c.mkv": (3, "input-missing", "missing.mp4"), "d.mkv": (2, "usage", "--on-missing-face fail"),
        "e.mkv": (11, "output-unwritable", "no-such-folder")}
for name, (code, error, text) in want.items():
    j = jobs[name]
    assert j["status"] == "failed" and j["exit_code"] == code and j["error"] == error, j
    assert text in j["message"], j
assert [j["line"] for j in s["jobs"]] == [2, 3, 4, 5, 6, 7], s["jobs"]
events = [json.loads(l) for l in open("log.jsonl") if l.startswith("{")]
kinds = [e["event"] for e in events]
assert (kinds.count("job_start"), kinds.count("job_done"), kinds.count("job_failed")) == (6, 3, 3), kinds
assert kinds[0] == "batch_start" and kinds[-1] == "batch_done", kinds
failed = [e for e in events if e["event"] == "job_failed"]
assert sorted(e["exit_code"] for e in failed) == [2, 3, 11], failed
PY

# Outputs: the good ones, nothing of the failed ones, no work folders or partial files.
for f in out/a.mkv out/b.mkv "out/f, the last.mkv"; do [ -s "$f" ] || fail "$f missing"; done
for f in out/c.mkv out/d.mkv; do [ ! -e "$f" ] || fail "$f written by a failed job"; done
find . -name '*.lsync-work' -o -name '*.partial-*' | grep -q . && fail "work folders or partial files left"
# The per-job seed reached the render; the default elsewhere.
ffprobe -v error -show_entries format_tags=comment -of csv=p=0 out/b.mkv | grep -q "seed 9," || fail "b: seed 9 not used"
ffprobe -v error -show_entries format_tags=comment -of csv=p=0 out/a.mkv | grep -q "seed 1247," || fail "a: default seed"
# A batch job renders what `render` renders with the same options (models from the cache or not).
"${R[@]}" clip.mp4 speech.wav --steps 2 --crf 0 -o ref.mkv || fail "reference render"
[ "$(frame_md5 out/a.mkv)" = "$(frame_md5 ref.mkv)" ] || fail "batch job a differs from render"
[ "$(frame_md5 'out/f, the last.mkv')" = "$(frame_md5 ref.mkv)" ] || fail "batch job f differs from render"

# 2. A rerun on one thread: a is skipped, b and f are rendered again (the second with the warm models), the
#    failing jobs fail again.
b_frames=$(frame_md5 out/b.mkv)
rm out/b.mkv "out/f, the last.mkv"
"${B[@]}" jobs.csv --devices cpu --json-summary summary2.json 2> log2.txt
rc=$?
[ "$rc" = 17 ] || fail "rerun: exit $rc"
[ "$(grep -c 'already loaded' log2.txt)" -ge 1 ] || fail "models were not kept warm: $(grep -c 'already loaded' log2.txt) reuses"$'\n'"$(cat log2.txt)"
[ "$(grep -c '^\[error\]' log2.txt)" = 1 ] || fail "not one error line for failed jobs"
grep -q "skipped: the output exists" log2.txt || fail "no skip line"
python3 -c '
import json; t = json.load(open("summary2.json"))["totals"]
assert (t["ok"], t["skipped"], t["failed"]) == (2, 1, 3), t' || fail "rerun totals"
[ "$(frame_md5 out/b.mkv)" = "$b_frames" ] || fail "b rendered again differs"

# 3. Only the good jobs: everything is skipped, exit 0, the summary on stdout.
grep -v -e missing.mp4 -e noface.mp4 -e no-such-folder jobs.csv > good.csv
before=$(md5sum out/*.mkv)
"${B[@]}" good.csv --devices cpu,cpu > summary3.json 2> log3.txt || fail "rerun of finished jobs: exit $?"
python3 -c '
import json; t = json.load(open("summary3.json"))["totals"]
assert (t["jobs"], t["skipped"]) == (3, 3), t' || fail "rerun: not all skipped"
[ "$(md5sum out/*.mkv)" = "$before" ] || fail "a skipped output changed"

# 4. Bad manifests: refused before any job, naming the line; nothing written.
mkdir -p bad
cd bad
cp ../clip.mp4 ../speech.wav .
BB=("${B[@]}" --devices cpu)
printf 'video,audio\nclip.mp4,speech.wav\n' > nocol.csv
expect_rc 2 "nocol.csv line 1: the header has no 'output' column" -- "${BB[@]}" nocol.csv
printf 'video,audio,output\nclip.mp4,speech.wav,o1.mkv\nclip.mp4,speech.wav,o2.mkv\nclip.mp4,speech.wav,./o1.mkv\n' > dup.csv
expect_rc 2 "dup.csv line 4: output o1.mkv is also the output of line 2" -- "${BB[@]}" dup.csv
printf 'video,audio,output,colour\nclip.mp4,speech.wav,o1.mkv,red\n' > unknown.csv
expect_rc 2 "unknown.csv line 1: unknown column 'colour'" -- "${BB[@]}" unknown.csv
printf 'video,audio,output,crf\nclip.mp4,speech.wav,o1.mkv,18\n\nclip.mp4,speech.wav,o2.mkv,99\n' > value.csv
expect_rc 2 "value.csv line 4: --crf" -- "${BB[@]}" value.csv
printf 'video,audio,output,loop\nclip.mp4,speech.wav,o1.mkv,bounce\n' > enum.csv
expect_rc 2 "enum.csv line 2: --loop" -- "${BB[@]}" enum.csv
printf 'video,audio,output\nclip.mp4,speech.wav,"o1.mkv\n' > quote.csv
expect_rc 2 "quote.csv line 2: a quoted value is not closed" -- "${BB[@]}" quote.csv
printf '{"video":"clip.mp4","audio":"speech.wav","output":"o1.mkv"}\n{"video":"clip.mp4","audio":"speech.wav","output":"o2.mkv","lossless":"maybe"}\n' > flag.jsonl
expect_rc 2 "flag.jsonl line 2: lossless is a switch" -- "${BB[@]}" flag.jsonl
printf '{"video":"clip.mp4","audio":"speech.wav","output":"o1.mkv","device":"cuda"}\n' > batchwide.jsonl
expect_rc 2 "batchwide.jsonl line 1: unknown option 'device'" -- "${BB[@]}" batchwide.jsonl
python3 -c 'print("{\"video\":" + "[" * 100000 + "]" * 100000 + "}")' > deep.jsonl
expect_rc 2 "deep.jsonl line 1: JSON nested deeper than 64" -- "${BB[@]}" deep.jsonl
printf 'not json\n' > text.jsonl
expect_rc 2 "text.jsonl line 1: not valid JSON" -- "${BB[@]}" text.jsonl
expect_rc 3 "manifest file not found" -- "${BB[@]}" none.csv
expect_rc 2 ".csv or .jsonl" -- "${BB[@]}" clip.mp4
printf 'video,audio,output\nclip.mp4,speech.wav,o1.mkv\n' > ok.csv
expect_rc 2 "--shard must be K/N" -- "${BB[@]}" ok.csv --shard 2/2
expect_rc 2 "evenly spaced" -- env SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_MIN=2 SLURM_ARRAY_TASK_MAX=9 \
    SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_STEP=1 "${BB[@]}" ok.csv
expect_rc 2 "--shard-count" -- env JOB_COMPLETION_INDEX=1 "${BB[@]}" ok.csv
# The summary is rewritten on every run, but never over the manifest or a job's file, under any name.
cp ok.csv kept.csv && ln -s clip.mp4 clip-link.json
expect_rc 2 "--json-summary ok.csv is the manifest" -- "${BB[@]}" ok.csv --json-summary ok.csv
expect_rc 2 "is the video of line 2" -- "${BB[@]}" ok.csv --json-summary clip-link.json
expect_rc 2 "is the output of line 2" -- "${BB[@]}" ok.csv --json-summary ./o1.mkv
mkdir -p sub && echo '{}' > track.json && printf 'video,audio,output,face-track\nclip.mp4,speech.wav,o1.mkv,track.json\n' > tracked.csv
expect_rc 2 "--json-summary sub/../ok.csv is the manifest" -- "${BB[@]}" ok.csv --json-summary sub/../ok.csv
expect_rc 2 "is the face track of line 2" -- "${BB[@]}" tracked.csv --json-summary track.json
cmp -s ok.csv kept.csv && [ -L clip-link.json ] && [ "$(cat track.json)" = '{}' ] \
    || fail "a refused --json-summary changed a file"
[ -z "$(ls ./*.mkv 2>/dev/null)" ] || fail "a refused manifest wrote outputs: $(ls ./*.mkv)"
# A shard with no jobs is fine (more shards than jobs).
"${BB[@]}" -q ok.csv --shard 1/2 > empty.json || fail "an empty shard failed"
grep -q '"jobs": 0' empty.json || fail "empty shard summary"$'\n'"$(cat empty.json)"
finish
