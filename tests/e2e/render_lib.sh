# Inputs and helpers shared by the render e2e scripts (sourced after lib.sh, inside $WORK).
FIX="$(cd "$(dirname "${BASH_SOURCE[0]}")/../fixtures/face-api" && pwd)"
# The tiny model with random weights on the CPU: the whole pipeline in seconds. Fewer DDIM steps than the
# default keep the suite fast; every step runs the same code. The face detector runs on every 4th frame with
# the tracker (landmarks on every frame) between: on one CPU thread the face step of a 30-frame clip then takes
# about 4 s instead of 15 (the detector is most of a CPU render's time). R_DETECT_ALL keeps the default,
# detection on every frame (render.sh's first render).
R_DETECT_ALL=("$BIN" -q render --model test-tiny --weights random --model-dir "$FIX" --device cpu --progress none)
R=("${R_DETECT_ALL[@]}" --detect-every 4)

# Inputs are made once per CTest run by the e2e_render_media fixture (render_media.sh) into $LSYNC_RENDER_MEDIA
# and copied from there; a script run on its own makes them itself.
from_media_dir() {  # from_media_dir OUT KEY: copies KEY from the shared folder when it is there
    [ -n "${LSYNC_RENDER_MEDIA:-}" ] && [ -s "$LSYNC_RENDER_MEDIA/$2" ] && cp "$LSYNC_RENDER_MEDIA/$2" "$1"
}
# A 480x360 clip of a real face (face-api's sample1.jpg, a slow pan), $2 seconds at $3 fps, H.264.
make_face_clip() {
    from_media_dir "$1" "clip_$2_$3.mp4" && return 0
    ffmpeg -v error -y -loop 1 -i "$FIX/sample1.jpg" \
        -vf "scale=960:-2,crop=480:360:'220+20*sin(t)':120,format=yuv420p" -t "$2" -r "$3" \
        -c:v libx264 -crf 18 "$1"
}
# Speech-like audio: a gliding tone with a syllable rhythm, $2 seconds, 44.1 kHz stereo.
make_speech() {
    from_media_dir "$1" "speech_$2.wav" && return 0
    ffmpeg -v error -y -f lavfi -i "aevalsrc='0.4*sin(2*PI*(140+30*sin(2*PI*0.7*t))*t)*(0.5+0.5*sin(2*PI*4*t))|0.4*sin(2*PI*(140+30*sin(2*PI*0.7*t))*t)*(0.5+0.5*sin(2*PI*4*t))':s=44100:d=$2" \
        -c:a pcm_s16le "$1"
}
# probe FILE ENTRY STREAM: one ffprobe value, e.g. probe out.mp4 nb_read_frames v:0
probe() {
    ffprobe -v error -count_frames -select_streams "$3" -show_entries "stream=$2" -of csv=p=0 "$1" | head -1
}
# md5 of every frame of FILE (after an optional filter), one line per frame.
frame_md5() {
    ffmpeg -v error -i "$1" ${2:+-vf "$2"} -an -f framemd5 - | grep -v '^#'
}
# md5 of frame N of FILE, the region crop=W:H:X:Y only.
region_md5() {
    ffmpeg -v error -i "$1" -vf "select=eq(n\\,$2),crop=$3" -frames:v 1 -an -f framemd5 - | grep -v '^#' | awk '{print $NF}'
}
