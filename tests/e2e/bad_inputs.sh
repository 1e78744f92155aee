#!/usr/bin/env bash
# Every bad input a user will hit gets one clear error line and its own exit code (docs/cli.md), and leaves no
# partial output behind. Inputs are made with the binary itself, so no ffmpeg CLI is needed.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

"$BIN" -q debug synth good.mp4 --seconds 2 --size 160x120 || fail "synth video"
"$BIN" -q debug synth speech.wav --seconds 2 || fail "synth audio"
"$BIN" -q debug synth silent_video.mp4 --seconds 1 --size 160x120 --no-audio || fail "synth video without audio"
# Same clip without +faststart is not possible with our writer; a faststart file cut short loses its samples,
# and a file cut inside its header loses its header.
head -c 9000 good.mp4 > truncated.mp4
head -c 200 good.mp4 > header_only.mp4
echo "this is not a video" > notes.mp4
: > empty.mp4
mkdir folder.mp4 outdir

P="$BIN debug passthrough"
expect_rc 3 "not found" -- $P missing.mp4 speech.wav -o outdir/a.mp4
expect_rc 4 "is a directory" -- $P folder.mp4 speech.wav -o outdir/a.mp4
expect_rc 5 "empty" -- $P empty.mp4 speech.wav -o outdir/a.mp4
expect_rc 6 "not a media file" -- $P notes.mp4 speech.wav -o outdir/a.mp4
expect_rc 7 "truncated" -- $P truncated.mp4 speech.wav -o outdir/a.mp4
expect_rc 7 "damaged or truncated" -- $P header_only.mp4 speech.wav -o outdir/a.mp4
expect_rc 8 "no video stream" -- $P speech.wav speech.wav -o outdir/a.mp4
expect_rc 9 "no audio stream" -- $P good.mp4 silent_video.mp4 -o outdir/a.mp4
expect_rc 3 "audio file not found" -- $P good.mp4 nothere.wav -o outdir/a.mp4
expect_rc 11 "does not exist" -- $P good.mp4 speech.wav -o no/such/dir/a.mp4
expect_rc 11 "output directory is not a directory: good.mp4" -- $P good.mp4 speech.wav -o good.mp4/a.mp4
expect_rc 11 "is a directory" -- $P good.mp4 speech.wav -o outdir
expect_rc 2 "container" -- $P good.mp4 speech.wav -o outdir/a.unknownext
expect_rc 2 "crf" -- $P good.mp4 speech.wav -o outdir/a.mp4 --crf 99

# An unwritable directory: root ignores permission bits, so drop to nobody when we are root.
mkdir locked && chmod 555 locked
if [ "$(id -u)" = 0 ]; then
    if command -v setpriv >/dev/null; then
        expect_rc 11 "not writable" -- setpriv --reuid=65534 --regid=65534 --clear-groups $P good.mp4 speech.wav -o locked/a.mp4
    else
        echo "note: setpriv missing; unwritable-directory case not run as root"
    fi
else
    expect_rc 11 "not writable" -- $P good.mp4 speech.wav -o locked/a.mp4
fi

# An existing output is never replaced without --overwrite, and survives the refusal byte for byte.
echo "precious" > outdir/keep.mp4
expect_rc 10 "exists" -- $P good.mp4 speech.wav -o outdir/keep.mp4
[ "$(cat outdir/keep.mp4)" = "precious" ] || fail "existing output was modified"
# A failure *after* the output was opened (audio file broken) must also leave the existing file alone.
expect_rc 6 "not a media file" -- $P good.mp4 notes.mp4 -o outdir/keep.mp4 --overwrite
[ "$(cat outdir/keep.mp4)" = "precious" ] || fail "existing output was destroyed by a failed run"
"$BIN" -q debug passthrough good.mp4 speech.wav -o outdir/keep.mp4 --overwrite || fail "overwrite refused"
[ "$(head -c 8 outdir/keep.mp4 | tr -d '\0')" != "precious" ] || fail "--overwrite did not replace the output"

# Interrupted render: SIGINT mid-write leaves no output and no partial file. Interrupt as soon as the partial
# file exists (the render is under way), however fast this machine is.
"$BIN" -q debug synth long.mp4 --seconds 20 --size 640x360 || fail "synth long"
rc=$(stop_when INT "find outdir -name '*.partial-*' | grep -q ." \
    "$BIN" -q debug passthrough long.mp4 speech.wav -o outdir/interrupted.mp4 --preset veryslow)
[ "$rc" = 130 ] || fail "SIGINT exit code $rc (want 130)"
[ ! -e outdir/interrupted.mp4 ] || fail "interrupted render left an output"
find "$WORK" -name '*.partial-*' | grep -q . && fail "interrupted render left a partial file"

# CLI usage errors.
expect_rc 2 "audio is required" -- "$BIN" debug passthrough good.mp4
expect_rc 2 "subcommand" -- "$BIN" no-such-command
finish
