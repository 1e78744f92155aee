#!/usr/bin/env bash
# Idempotent batch reruns: a batch killed midway (SIGKILL) and one stopped cleanly (SIGTERM), each run again with
# the same command: finished outputs are skipped, the half-finished job resumes from its work folder, the rest
# render, and every output equals (framemd5) the one of an uninterrupted batch.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/render_lib.sh"
cd "$WORK"

make_face_clip clip.mp4 1.2 25 || fail "make clip"
make_speech long.wav 1.5 || fail "make speech"    # 38 frames: segments of 16, 16 and 6
make_speech short.wav 0.4 || fail "make speech"   # 10 frames
export LSYNC_TEST_SEGMENT_FRAMES=16
B=("$BIN" -q batch --model test-tiny --weights random --model-dir "$FIX" --steps 2 --crf 0 --devices cpu --detect-every 4)  # as render_lib.sh's R
for d in ref killed stopped; do
    mkdir -p "$d"
    printf 'video,audio,output,seed\n../clip.mp4,../short.wav,o0.mkv,1\n../clip.mp4,../long.wav,o1.mkv,2\n../clip.mp4,../short.wav,o2.mkv,3\n' > "$d/jobs.csv"
done
"${B[@]}" ref/jobs.csv > ref/summary.json || fail "uninterrupted batch"

same_as_ref() {  # same_as_ref DIR LABEL
    for i in 0 1 2; do
        [ -s "$1/o$i.mkv" ] || { fail "$2: o$i.mkv missing"; continue; }
        [ "$(frame_md5 "$1/o$i.mkv")" = "$(frame_md5 "ref/o$i.mkv")" ] || fail "$2: o$i.mkv differs from the uninterrupted batch"
        [ ! -e "$1/o$i.mkv.lsync-work" ] || fail "$2: o$i.mkv's work folder is left"
    done
}
# statuses DIR/summary.json WANT: WANT is "status:resumed ..." per job, e.g. "skipped:False ok:True ok:False"
statuses() {
    python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(" ".join("%s:%s" % (j["status"], j["resumed"]) for j in s["jobs"]))' "$1"
}

# 1. SIGKILL once job 0 is finished and job 1 has its first segment: o0 stays, o1's work folder stays.
rc=$(stop_when KILL "[ -s killed/o0.mkv ] && [ -s killed/o1.mkv.lsync-work/segment-00000000-00000016.mp4 ]" "${B[@]}" killed/jobs.csv)
[ "$rc" = 137 ] || fail "SIGKILL: exit $rc (the batch ended before the kill?)"
[ -s killed/o0.mkv ] && [ ! -e killed/o1.mkv ] && [ -d killed/o1.mkv.lsync-work ] && [ ! -e killed/o2.mkv ] ||
    fail "after SIGKILL: $(ls killed)"
WORK_FOLDERS_EXPECTED=1
"${B[@]}" killed/jobs.csv --json-summary killed/summary.json || fail "rerun after SIGKILL: exit $?"
got=$(statuses killed/summary.json)
[ "$got" = "skipped:False ok:True ok:False" ] || fail "rerun after SIGKILL: $got"
same_as_ref killed "after SIGKILL"

# 2. SIGTERM while job 1 renders: a clean stop (exit 130), the summary says which job stopped and which never
#    ran; the rerun resumes job 1 and renders job 2.
rc=$(stop_when TERM "[ -s stopped/o1.mkv.lsync-work/segment-00000000-00000016.mp4 ]" "${B[@]}" stopped/jobs.csv \
    --json-summary stopped/summary.json 2> stopped/log.txt)
[ "$rc" = 130 ] || fail "SIGTERM: exit $rc"
grep -q "run the same command again" stopped/log.txt || fail "the interrupted message does not say how to finish"
got=$(statuses stopped/summary.json)
[ "$got" = "ok:False interrupted:False not-run:False" ] || fail "summary after SIGTERM: $got"
[ -d stopped/o1.mkv.lsync-work ] || fail "SIGTERM: the work folder was not kept"
grep -q "the next run of the batch resumes it" stopped/summary.json || fail "the stopped job's message"
"${B[@]}" stopped/jobs.csv --json-summary stopped/summary2.json || fail "rerun after SIGTERM: exit $?"
got=$(statuses stopped/summary2.json)
[ "$got" = "skipped:False ok:True ok:False" ] || fail "rerun after SIGTERM: $got"
same_as_ref stopped "after SIGTERM"

# 3. Once more: nothing to do.
"${B[@]}" killed/jobs.csv --json-summary killed/summary3.json || fail "third run: exit $?"
got=$(statuses killed/summary3.json)
[ "$got" = "skipped:False skipped:False skipped:False" ] || fail "third run: $got"
finish
