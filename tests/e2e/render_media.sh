#!/usr/bin/env bash
# CTest fixture (e2e_render_media): makes the render scripts' face clips and speech once per run into the
# folder $2, which they copy from (render_lib.sh).
BIN=${1:?usage: render_media.sh BIN DIR}
DIR=${2:?usage: render_media.sh BIN DIR}
source "$(dirname "$0")/render_lib.sh"
set -e
mkdir -p "$DIR"
LSYNC_RENDER_MEDIA=""  # make, do not copy
for spec in "1.2 25" "0.8 25" "0.5 30"; do
    set -- $spec
    make_face_clip "$DIR/clip_$1_$2.mp4" "$1" "$2"
done
for seconds in 1.5 1.2 0.4; do make_speech "$DIR/speech_$seconds.wav" "$seconds"; done
ls "$DIR"
