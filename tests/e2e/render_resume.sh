#!/usr/bin/env bash
# Crash-safe rendering: a render killed (SIGKILL) or interrupted (SIGINT) keeps its finished segments in
# <output>.lsync-work; `--resume` finishes it, and the frames equal those of an uninterrupted render. Without
# --resume the folder is refused, with other inputs or settings --resume is refused, and two renders of one
# output never share the folder.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/render_lib.sh"
cd "$WORK"

make_face_clip clip.mp4 1.2 25 || fail "make clip"
make_speech speech.wav 1.5 || fail "make speech"   # 38 frames: segments of 16, 16 and 6 frames
export LSYNC_TEST_SEGMENT_FRAMES=16
RR=("${R[@]}" clip.mp4 speech.wav --crf 0 --steps 2)

"${RR[@]}" -o ref.mkv || fail "uninterrupted render"
[ ! -e ref.mkv.lsync-work ] || fail "a finished render left its work folder"

# start_and_stop OUT SIGNAL: starts a render, sends SIGNAL once its first segment is complete; prints the
# render's exit code.
start_and_stop() {
    stop_when "$2" "[ -s '$1.lsync-work/segment-00000000-00000016.mp4' ] && [ -s '$1.lsync-work/faces.json' ]" "${RR[@]}" -o "$1" 2> "$1.log"
}

# SIGKILL: nothing under the output's name, the folder with the finished segment stays.
rc=$(start_and_stop killed.mkv KILL)
[ "$rc" = 137 ] || fail "SIGKILL: exit $rc (the render ended before the kill?)"
[ ! -e killed.mkv ] || fail "a killed render left an output"
[ -s killed.mkv.lsync-work/segment-00000000-00000016.mp4 ] || fail "the finished segment was not kept"
[ -s killed.mkv.lsync-work/faces.json ] || fail "the face plans were not kept"
# The output being joined lives in the work folder until the join's end: nothing partial beside the output.
find . -maxdepth 1 -name '*.partial-*' | grep -q . && fail "a killed render left a partial output beside it"

WORK_FOLDERS_EXPECTED=1
# Not without --resume; not with another seed, another audio, or another video.
expect_rc 10 "--resume" -- "${RR[@]}" -o killed.mkv
expect_rc 16 "seed" -- "${RR[@]}" -o killed.mkv --resume --seed 9
make_speech other.wav 1.5 && ffmpeg -v error -y -i other.wav -af volume=0.5 other2.wav
expect_rc 16 "audio" -- "${R[@]}" clip.mp4 other2.wav --crf 0 --steps 2 -o killed.mkv --resume
[ -s killed.mkv.lsync-work/segment-00000000-00000016.mp4 ] || fail "a refused resume damaged the work folder"

# A kept folder whose segment names were tampered with: one that claims more frames than it holds fails the join,
# and the message says how to start again.
cp -r killed.mkv.lsync-work bad.mkv.lsync-work
mv bad.mkv.lsync-work/segment-00000000-00000016.mp4 bad.mkv.lsync-work/segment-00000000-00000032.mp4
expect_rc 7 "holds 16 frames, not the 32 its name says (run without --resume and with --overwrite" -- \
    "${RR[@]}" -o bad.mkv --resume
rm -rf bad.mkv.lsync-work

# Two renders of one output at once: the second is refused while the first holds the folder.
exec 9> killed.mkv.lsync-work/lock && flock -n 9 || fail "cannot take the lock for the test"
expect_rc 10 "another render" -- "${RR[@]}" -o killed.mkv --resume
exec 9>&-
unset WORK_FOLDERS_EXPECTED

"${RR[@]}" -o killed.mkv --resume --json-log 2> resume.jsonl || fail "--resume after SIGKILL"
[ ! -e killed.mkv.lsync-work ] || fail "the work folder stayed after the resumed render"
grep -q '"resumed_frames":16' resume.jsonl || fail "the resumed render did not start after the kept segment"
[ "$(frame_md5 killed.mkv)" = "$(frame_md5 ref.mkv)" ] || fail "resumed after SIGKILL: frames differ"
[ "$(probe killed.mkv sample_rate a:0)" = 44100 ] || fail "resumed: the audio changed"

# A segment that ends inside a chunk (the last group's tail segments may: SegmentWriter) is made again: the
# resume starts at the chunk boundary before it.
cp -r killed.mkv.lsync-work mid.mkv.lsync-work
mv mid.mkv.lsync-work/segment-00000000-00000016.mp4 mid.mkv.lsync-work/segment-00000000-00000020.mp4
"${RR[@]}" -o mid.mkv --resume --json-log 2> mid.jsonl || fail "--resume with a segment ending inside a chunk"
grep -q '"resumed_frames":0' mid.jsonl || fail "the segment ending inside a chunk was not made again"
[ "$(frame_md5 mid.mkv)" = "$(frame_md5 ref.mkv)" ] || fail "resumed at the chunk boundary: frames differ"

# SIGINT (and SIGTERM alike): a clean stop, exit 130, the message says how to resume.
rc=$(start_and_stop stopped.mkv INT)
[ "$rc" = 130 ] || fail "SIGINT: exit $rc"
grep -q -- "--resume" stopped.mkv.log || fail "the interrupted message does not say how to resume"
[ ! -e stopped.mkv ] && [ -d stopped.mkv.lsync-work ] || fail "SIGINT: output or work folder wrong"
"${RR[@]}" -o stopped.mkv --resume || fail "--resume after SIGINT"
[ "$(frame_md5 stopped.mkv)" = "$(frame_md5 ref.mkv)" ] || fail "resumed after SIGINT: frames differ"

# The segment cut where the last group starts (SegmentWriter::cut): with 64-frame segments and one chunk per call
# on the CPU, frames 0-31 close as their own segment before chunk 2's frames come back. Killed there, the render
# resumes at frame 32 (a segment end that is not a multiple of the segment length) with the same frames.
export LSYNC_TEST_SEGMENT_FRAMES=64
rc=$(stop_when KILL "[ -s cut.mkv.lsync-work/segment-00000000-00000032.mp4 ] && [ -s cut.mkv.lsync-work/faces.json ]" \
    "${RR[@]}" -o cut.mkv)
[ "$rc" = 137 ] || fail "SIGKILL at the cut: exit $rc (the render ended before the kill?)"
"${RR[@]}" -o cut.mkv --resume --json-log 2> cut.jsonl || fail "--resume from the cut"
grep -q '"resumed_frames":32' cut.jsonl || fail "the resumed render did not start at the cut"
[ "$(frame_md5 cut.mkv)" = "$(frame_md5 ref.mkv)" ] || fail "resumed from the cut: frames differ"
export LSYNC_TEST_SEGMENT_FRAMES=16

# Stopped as its join begins (LSYNC_TEST_INTERRUPT_AT_JOIN raises SIGINT there), a render keeps every segment;
# --resume then renders nothing and joins them (it used to render the last chunk again and fail with 70).
rc=0
LSYNC_TEST_INTERRUPT_AT_JOIN=1 "${RR[@]}" -o joined.mkv 2> joined.log || rc=$?
[ "$rc" = 130 ] || fail "stopped at the join: exit $rc"
grep -q "interrupted: 38 frames are kept" joined.log || fail "stopped at the join: $(cat joined.log)"
"${RR[@]}" -o joined.mkv --resume --json-log 2> joined.jsonl || fail "--resume with every segment done"
grep -q '"resumed_frames":38' joined.jsonl || fail "the resume with every segment done rendered again"
[ "$(frame_md5 joined.mkv)" = "$(frame_md5 ref.mkv)" ] || fail "resumed at the join: frames differ"

# The last group's frames as tail segments of 4 frames, closed side by side (on by default only where the host has
# 8 threads to spare): the same frames.
LSYNC_TAIL_SEGMENTS=1 LSYNC_TAIL_SEGMENT_FRAMES=4 "${RR[@]}" -o tail.mkv || fail "render with tail segments"
[ "$(frame_md5 tail.mkv)" = "$(frame_md5 ref.mkv)" ] || fail "tail segments: frames differ"

# --resume with nothing to resume renders from the start; --overwrite discards a kept folder.
"${RR[@]}" -o fresh.mkv --resume || fail "--resume without a work folder"
[ "$(frame_md5 fresh.mkv)" = "$(frame_md5 ref.mkv)" ] || fail "--resume from nothing: frames differ"
finish
