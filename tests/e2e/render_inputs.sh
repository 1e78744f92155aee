#!/usr/bin/env bash
# `latentsync render` with the inputs users bring: audio longer than the video (--loop pingpong|loop|freeze),
# a video longer than the audio (cut, or --keep-video-tail), a still image, --fps native on 30 fps, very short
# audio, no face anywhere, and the bad inputs with their exit codes and nothing left behind.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/render_lib.sh"
cd "$WORK"

make_face_clip clip.mp4 0.8 25 || fail "make clip"     # 20 frames
make_speech speech.wav 1.2 || fail "make speech"       # 30 frames
make_speech short.wav 0.4 || fail "make short speech"  # 10 frames
CORNER="96:64:0:296"  # far from the face: the input's pixels exactly (lossless output)

# Loop modes: output frames 20 and 21 show source frames (19, 18) ping-pong, (0, 1) loop, (19, 19) freeze.
for mode in pingpong loop freeze; do
    "${R[@]}" clip.mp4 speech.wav -o "$mode.mkv" --crf 0 --steps 1 --loop "$mode" || fail "--loop $mode"
    [ "$(probe "$mode.mkv" nb_read_frames v:0)" = 30 ] || fail "--loop $mode: $(probe "$mode.mkv" nb_read_frames v:0) frames"
done
"$BIN" -q debug passthrough clip.mp4 speech.wav -o plain.mkv --crf 0 || fail "passthrough"
src() { region_md5 plain.mkv "$1" "$CORNER"; }
out() { region_md5 "$1.mkv" "$2" "$CORNER"; }
[ "$(out pingpong 20)" = "$(src 19)" ] && [ "$(out pingpong 21)" = "$(src 18)" ] || fail "pingpong order"
[ "$(out loop 20)" = "$(src 0)" ] && [ "$(out loop 21)" = "$(src 1)" ] || fail "loop order"
[ "$(out freeze 20)" = "$(src 19)" ] && [ "$(out freeze 29)" = "$(src 19)" ] || fail "freeze order"
[ "$(src 19)" != "$(src 18)" ] || fail "test clip does not move: the order checks prove nothing"

# A longer video is cut at the audio's end, or keeps its tail unchanged. The first render also writes
# --dump-faces and --preview: per lip-synced frame (all 10) the frame with its landmarks and three crops, the
# mask; a sheet of four rows (crop, masked, generated, pasted back) of the crop's size. A dump folder that holds
# anything is written into only with --overwrite (the second render), which keeps the user's own files.
"${R[@]}" clip.mp4 short.wav -o cut.mkv --crf 0 --steps 1 --dump-faces dump --preview look.png || fail "short audio"
[ "$(probe cut.mkv nb_read_frames v:0)" = 10 ] || fail "cut: $(probe cut.mkv nb_read_frames v:0) frames, want 10"
crop=$(probe dump/mask.png width v:0)
[ -n "$crop" ] && [ "$crop" -gt 0 ] || fail "--dump-faces: no mask.png"
for stem in landmarks crop masked generated; do
    n=$(find dump -name "${stem}_*.png" | wc -l)
    [ "$n" = 10 ] || fail "--dump-faces: $n ${stem} images, want 10"
done
[ "$(probe dump/generated_000009.png width v:0)x$(probe dump/generated_000009.png height v:0)" = "${crop}x$crop" ] \
    || fail "--dump-faces: a generated crop is not ${crop}x$crop"
[ "$(probe dump/landmarks_000000.png width v:0)" = "$(probe clip.mp4 width v:0)" ] || fail "--dump-faces: landmarks"
[ "$(probe look.png width v:0)x$(probe look.png height v:0)" = "$((4 * crop))x$((4 * crop))" ] \
    || fail "--preview: $(probe look.png width v:0)x$(probe look.png height v:0), want $((4 * crop)) square"
touch dump/mine.txt && rm dump/crop_000003.png  # the user's file stays; the dump's comes back
expect_rc 10 "the --dump-faces folder dump is not empty" -- "${R[@]}" clip.mp4 short.wav -o x.mp4 --dump-faces dump
expect_rc 10 "the --dump-faces folder dump is not empty" -- "${R[@]}" clip.mp4 short.wav -o x.mp4 --dump-faces dump \
    --resume  # nothing to resume: --resume alone does not open the folder
expect_rc 11 "--dump-faces needs a folder" -- "${R[@]}" clip.mp4 short.wav -o x.mp4 --dump-faces short.wav
"${R[@]}" clip.mp4 short.wav -o tail.mkv --crf 0 --steps 1 --keep-video-tail --dump-faces dump --overwrite \
    || fail "--keep-video-tail"
[ -e dump/mine.txt ] && [ "$(find dump -name 'crop_*.png' | wc -l)" = 10 ] || fail "--dump-faces --overwrite: folder"
[ "$(probe tail.mkv nb_read_frames v:0)" = 20 ] || fail "tail: $(probe tail.mkv nb_read_frames v:0) frames, want 20"
[ "$(frame_md5 tail.mkv "select=gte(n\\,10)")" = "$(frame_md5 plain.mkv "select=gte(n\\,10)")" ] \
    || fail "--keep-video-tail frames are not the input's"

# A still image makes a talking head at 25 fps; --fps native keeps a 30 fps input's rate.
"${R[@]}" "$FIX/sample2.jpg" short.wav -o still.mp4 --steps 1 || fail "still image"
[ "$(probe still.mp4 nb_read_frames v:0)" = 10 ] || fail "still: $(probe still.mp4 nb_read_frames v:0) frames"
make_face_clip clip30.mp4 0.5 30 || fail "make 30 fps clip"
"${R[@]}" clip30.mp4 short.wav -o native.mp4 --steps 1 --fps native || fail "--fps native"
[ "$(probe native.mp4 r_frame_rate v:0)" = 30/1 ] || fail "--fps native: $(probe native.mp4 r_frame_rate v:0)"
[ "$(probe native.mp4 nb_read_frames v:0)" = 12 ] || fail "--fps native: $(probe native.mp4 nb_read_frames v:0) frames, want 12"

# No face anywhere: the input comes out with the new audio and a warning; with --on-missing-face fail, an error
# and no output.
"$BIN" -q debug synth noface.mp4 --seconds 0.4 --size 160x120 --no-audio || fail "synth"
"$BIN" render --model test-tiny --weights random --model-dir "$FIX" --device cpu --progress none noface.mp4 \
    short.wav -o noface_out.mp4 --steps 1 2> noface.log || fail "no face: render failed"
grep -q "no usable face" noface.log || fail "no face: no warning"
[ "$(probe noface_out.mp4 nb_read_frames v:0)" = 10 ] || fail "no face: wrong length"
expect_rc 2 "frame 0: no face" -- "${R[@]}" noface.mp4 short.wav -o x.mp4 --on-missing-face fail
[ ! -e x.mp4 ] || fail "--on-missing-face fail left an output"
# The face pass runs beside the render: a face lost after the first chunks were rendered fails the same way.
ffmpeg -v error -y -loop 1 -i "$FIX/sample2.jpg" -f lavfi -i color=black:s=640x480:d=0.3 -filter_complex \
    "[0:v]scale=640:480,setsar=1,trim=duration=0.8[a];[1:v]setsar=1[b];[a][b]concat=n=2:v=1,format=yuv420p" \
    -r 25 -c:v libx264 -crf 20 lost.mp4 || fail "make lost-face clip"
make_speech speech11.wav 1.1 || fail "make speech"
LSYNC_TEST_SEGMENT_FRAMES=16 expect_rc 2 "frame 20: no face" -- "${R[@]}" lost.mp4 speech11.wav -o x.mp4 --steps 1 --on-missing-face fail
[ ! -e x.mp4 ] || fail "a face lost mid-clip with --on-missing-face fail left an output"

# Bad inputs and options: one line, their own code, nothing left behind.
mkdir ro && chmod 555 ro
: > empty.wav
expect_rc 3 "not found" -- "${R[@]}" nothere.mp4 speech.wav -o x.mp4
expect_rc 3 "not found" -- "${R[@]}" clip.mp4 nothere.wav -o x.mp4
expect_rc 5 "empty" -- "${R[@]}" clip.mp4 empty.wav -o x.mp4
# A WAV with a header but no samples, and one of 10 ms (less than one Whisper frame): the file is the problem, so
# input-empty, not usage.
ffmpeg -v error -y -f lavfi -i anullsrc=r=16000:cl=mono -t 0 nosamples.wav || fail "make no-sample wav"
ffmpeg -v error -y -f lavfi -i "sine=f=440:r=16000" -t 0.01 tenms.wav || fail "make 10 ms wav"
expect_rc 5 "the audio is empty" -- "${R[@]}" clip.mp4 nosamples.wav -o x.mp4
expect_rc 5 "too short" -- "${R[@]}" clip.mp4 tenms.wav -o x.mp4
expect_rc 9 "no audio stream" -- "${R[@]}" clip.mp4 noface.mp4 -o x.mp4
expect_rc 8 "no video stream" -- "${R[@]}" speech.wav speech.wav -o x.mp4
expect_rc 11 "does not exist" -- "${R[@]}" clip.mp4 speech.wav -o no/such/dir/x.mp4
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    expect_rc 11 "not writable" -- setpriv --reuid=65534 --regid=65534 --clear-groups "${R[@]}" clip.mp4 speech.wav -o ro/x.mp4
    # A model folder this user may not read: the models' own exit code, naming the file, not an internal error.
    mkdir -m 700 hidden && cp -r "$FIX" hidden/face-api && mkdir -m 777 rw
    expect_rc 12 "cannot be read (Permission denied)" -- setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$BIN" -q render --model test-tiny --weights random --model-dir "$WORK/hidden/face-api" --device cpu \
        --progress none clip.mp4 speech.wav -o rw/x.mp4
    [ -z "$(ls rw)" ] || fail "a render that could not read its models left an output"
else
    expect_rc 11 "not writable" -- "${R[@]}" clip.mp4 speech.wav -o ro/x.mp4
fi
# A checkpoint that is not one is named (the VAE and the Whisper random, so the UNet file is the only one read).
expect_rc 12 "sample1.jpg" -- "$BIN" -q render --model test-tiny --weights random --model-dir "$FIX" --device cpu \
    --unet "$FIX/sample1.jpg" clip.mp4 speech.wav -o x.mp4
# Every model file is looked for before any loads: a missing VAE is named before the bad UNet is read.
expect_rc 12 "sd-vae-ft-mse" -- "$BIN" -q render --model test-tiny --model-dir "$FIX" --device cpu \
    --unet "$FIX/sample1.jpg" clip.mp4 speech.wav -o x.mp4
expect_rc 12 "not found" -- "$BIN" -q render --model 1.5 --model-dir "$WORK" --device cpu clip.mp4 speech.wav -o x.mp4
expect_rc 2 "--model" -- "${R[@]}" clip.mp4 speech.wav -o x.mp4 --model 2.0
expect_rc 2 "--steps" -- "${R[@]}" clip.mp4 speech.wav -o x.mp4 --steps 0
expect_rc 2 "--loop" -- "${R[@]}" clip.mp4 speech.wav -o x.mp4 --loop bounce
expect_rc 2 "--guidance" -- "${R[@]}" clip.mp4 speech.wav -o x.mp4 --guidance nan
expect_rc 2 "frame rate" -- "${R[@]}" clip.mp4 speech.wav -o x.mp4 --fps -5
expect_rc 2 "--crf" -- "${R[@]}" clip.mp4 speech.wav -o x.mp4 --crf 60
expect_rc 2 "--weights" -- "${R[@]}" clip.mp4 speech.wav -o x.mp4 --weights zeros
# The preview is a PNG: another name is refused before anything is written.
expect_rc 2 "--preview writes a PNG" -- "${R[@]}" clip.mp4 speech.wav -o x.mp4 --preview look.mp4
[ ! -e look.mp4 ] || fail "a refused --preview left a file"
# No output may be an input, under any name (a symbolic or hard link too), --overwrite or not: the user's source
# stays as it was. Nor may --preview be the output.
mkdir -p sub && cp clip.mp4 own.mp4 && ln -s own.mp4 own-link.mp4 && ln own.mp4 own-hard.mp4 && cp "$FIX/sample2.jpg" face.png
before=$(md5sum < own.mp4)
expect_rc 2 "the output is the video" -- "${R[@]}" own.mp4 speech.wav -o own.mp4 --overwrite
expect_rc 2 "the output is the video" -- "${R[@]}" own.mp4 speech.wav -o ./sub/../own.mp4
expect_rc 2 "the output is the video" -- "${R[@]}" own-link.mp4 speech.wav -o own.mp4 --overwrite
expect_rc 2 "the output is the video" -- "${R[@]}" own.mp4 speech.wav -o own-hard.mp4 --overwrite
expect_rc 2 "the output is the audio" -- "${R[@]}" clip.mp4 own.mp4 -o own-hard.mp4 --overwrite
expect_rc 2 "the output is --audio-out's file" -- "${R[@]}" clip.mp4 speech.wav -o own.mp4 --audio-out own.mp4 --overwrite
expect_rc 2 "--preview is the video" -- "${R[@]}" face.png short.wav -o x.mp4 --preview face.png --overwrite
expect_rc 2 "--preview and the output are one file" -- "${R[@]}" clip.mp4 speech.wav -o x.png --preview x.png
[ "$(md5sum < own.mp4)" = "$before" ] && [ -L own-link.mp4 ] || fail "a refused render changed its input"
[ "$(md5sum < face.png)" = "$(md5sum < "$FIX/sample2.jpg")" ] || fail "a refused --preview changed the image"
[ ! -e x.mp4 ] && [ -z "$(ls ro)" ] || fail "a failed render left an output"
finish
