#!/usr/bin/env bash
# Build a static, minimal FFmpeg 5.1 (+ static x264) into <repo>/.deps/prefix,
# fully offline, from the files scripts/fetch-gpu-host-sources.sh put into
# <repo>/.deps/src (ffmpeg/x264 orig tarballs, their .dsc, nasm .deb).
#
# Meant for the GPU host (Ubuntu 24.04, no FFmpeg dev packages, no nasm, no
# network); works on any x86_64 Linux with a C compiler, make and pkg-config.
#
# Afterwards configure the project with:
#   export PKG_CONFIG_PATH=<repo>/.deps/prefix/lib/pkgconfig
#
# Idempotent: each library is rebuilt only when its stamp file (tarball name +
# configure flags) differs. FORCE=1 rebuilds everything.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
DEPS="$REPO_ROOT/.deps"
SRC="$DEPS/src"
BUILD="$DEPS/build"
PREFIX="$DEPS/prefix"
NASM_DIR="$DEPS/nasm"
JOBS="${JOBS:-$(nproc)}"

log() { printf '[gpu-host-deps] %s\n' "$*"; }
die() { printf '[gpu-host-deps] ERROR: %s\n' "$*" >&2; exit 1; }

# Newest file in $SRC matching a glob (versions sort naturally).
pick() {
    local f
    # shellcheck disable=SC2012,SC2086  # $1 is a glob on purpose; names are plain
    f="$(cd "$SRC" 2>/dev/null && ls -1 $1 2>/dev/null | sort -V | tail -n 1)" || true
    [ -n "$f" ] || die "no $1 in $SRC; run scripts/fetch-gpu-host-sources.sh on a machine with apt and carry .deps/src here"
    printf '%s/%s\n' "$SRC" "$f"
}

# Check a tarball against the sha256 listed in any .dsc next to it (if any).
verify() {
    local file="$1" name want got dsc
    name="$(basename "$file")"
    command -v sha256sum >/dev/null || return 0
    for dsc in "$SRC"/*.dsc; do
        [ -f "$dsc" ] || continue
        want="$(awk -v n="$name" '/^Checksums-Sha256:/ {s = 1; next} /^[^ ]/ {s = 0} s && $3 == n {print $1}' "$dsc")"
        [ -n "$want" ] || continue
        got="$(sha256sum "$file" | cut -d' ' -f1)"
        [ "$got" = "$want" ] || die "$name: sha256 mismatch with $(basename "$dsc") (corrupt copy?)"
        log "$name: sha256 OK"
        return 0
    done
    log "$name: no .dsc checksum found, not verified"
}

# Unpack a tarball into a fresh directory, dropping its top-level folder.
unpack() {
    rm -rf "$2" && mkdir -p "$2"
    tar -xf "$1" -C "$2" --strip-components=1
}

# A prefix built on another machine and carried here without the sources (scripts/prebuild-gpu-host-deps.sh: a
# device call then skips this minute of building): used as it is. The .pc files locate themselves.
if ! ls "$SRC"/ffmpeg_*.orig.tar.* >/dev/null 2>&1 && [ -f "$PREFIX/.ffmpeg.stamp" ] &&
    [ -f "$PREFIX/lib/libavformat.a" ] && [ -f "$DEPS/nlohmann/usr/include/nlohmann/json.hpp" ]; then
    log "no sources in $SRC: using the carried prefix $PREFIX as built ($(cut -c1-40 "$PREFIX/.ffmpeg.stamp") ...)"
    exit 0
fi

FFMPEG_TAR="$(pick 'ffmpeg_*.orig.tar.*')"
X264_TAR="$(pick 'x264_*.orig.tar.*')"
NASM_DEB="$(pick 'nasm_*.deb')"
verify "$FFMPEG_TAR"
verify "$X264_TAR"

mkdir -p "$BUILD" "$PREFIX"

# --- nasm: x264 and FFmpeg's x86 SIMD need it; without it x264 is very slow.
if [ ! -x "$NASM_DIR/usr/bin/nasm" ]; then
    log "unpacking $(basename "$NASM_DEB") into $NASM_DIR"
    rm -rf "$NASM_DIR" && mkdir -p "$NASM_DIR"
    if command -v dpkg >/dev/null; then
        dpkg -x "$NASM_DEB" "$NASM_DIR"
    else  # no dpkg: a .deb is an ar archive holding data.tar.*
        (cd "$NASM_DIR" && ar x "$NASM_DEB" && tar -xf data.tar.* && rm -f control.tar.* data.tar.* debian-binary)
    fi
fi
export PATH="$NASM_DIR/usr/bin:$PATH"
nasm -v >/dev/null || die "unpacked nasm does not run"
log "using $(nasm -v)"

# Only our prefix is searched by pkg-config, so a system x264/FFmpeg in /usr
# can never be picked up instead of ours.
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
export PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig"

# --- x264 (static, PIC so it can end up inside shared objects / PIE).
# --disable-opencl: avoids x264's dlopen()ed OpenCL lookahead (not needed).
X264_FLAGS=(--prefix="$PREFIX" --enable-static --enable-pic --disable-cli --disable-opencl)
X264_STAMP="$PREFIX/.x264.stamp"
x264_id="$(basename "$X264_TAR") ${X264_FLAGS[*]}"
if [ "${FORCE:-0}" != 1 ] && [ -f "$PREFIX/lib/libx264.a" ] && [ "$(cat "$X264_STAMP" 2>/dev/null)" = "$x264_id" ]; then
    log "x264 up to date (stamp $X264_STAMP)"
else
    log "building x264 from $(basename "$X264_TAR")"
    rm -f "$X264_STAMP" "$PREFIX/.ffmpeg.stamp"
    unpack "$X264_TAR" "$BUILD/x264"
    (
        cd "$BUILD/x264"
        ./configure "${X264_FLAGS[@]}"
        make -j"$JOBS"
        make install
    )
    printf '%s\n' "$x264_id" > "$X264_STAMP"
fi

# --- FFmpeg: static, minimal, decode common inputs + encode H.264/AAC.
# zlib is needed by the png codecs and compressed mov/mkv headers; enable it
# only when its header is present (Ubuntu needs zlib1g-dev for that).
ZLIB_FLAG=()
if printf '#include <zlib.h>\nint main(void){return 0;}\n' | "${CC:-cc}" -x c - -o /dev/null -lz >/dev/null 2>&1; then
    ZLIB_FLAG=(--enable-zlib)
else
    log "WARNING: zlib headers/library not found: building without zlib (no png decoder/encoder, no compressed mov/mkv headers)"
fi

join() { local IFS=,; printf '%s' "$*"; }
DECODERS=(h264 hevc vp9 av1 mpeg4 mjpeg prores png ffv1 aac mp3 mp3float opus vorbis flac
          pcm_s16le pcm_s16be pcm_s24le pcm_s32le pcm_f32le pcm_f64le pcm_u8 pcm_alaw pcm_mulaw)
DEMUXERS=(mov matroska avi wav mp3 ogg flac image2 jpeg_pipe png_pipe aac)
ENCODERS=(libx264 ffv1 aac png pcm_s16le)
MUXERS=(mp4 mov matroska wav null ipod adts)
PARSERS=(h264 hevc aac vp9 av1 mpeg4video opus flac mpegaudio vorbis png mjpeg)
PROTOCOLS=(file pipe)
BSFS=(h264_mp4toannexb hevc_mp4toannexb aac_adtstoasc vp9_superframe_split)

FFMPEG_FLAGS=(
    --prefix="$PREFIX"
    --enable-static --disable-shared
    --enable-pic                       # linked into a shared-library-heavy C++ program
    # FFmpeg's x86 asm refers to C constants (ff_pw_4...) with PC-relative
    # relocations; with default visibility ld refuses them in a shared object
    # ("relocation R_X86_64_PC32 against ff_pw_4 ... recompile with -fPIC")
    # unless linked with -Bsymbolic. Hidden symbols make the archives usable in
    # any .so; static linking is unaffected (hidden != local).
    --extra-cflags=-fvisibility=hidden
    --pkg-config-flags=--static        # x264 found via pkg-config, with its static deps
    --enable-gpl --enable-libx264
    --disable-programs --disable-doc
    --disable-autodetect               # no accidental deps on host libs (vaapi, xlib, cuda...)
    --disable-everything               # then enable only what we list below
    --disable-avdevice --disable-avfilter --disable-postproc   # not used by the project
    --enable-avcodec --enable-avformat --enable-avutil --enable-swscale --enable-swresample
    "${ZLIB_FLAG[@]}"
    --enable-decoder="$(join "${DECODERS[@]}")"
    --enable-demuxer="$(join "${DEMUXERS[@]}")"
    --enable-encoder="$(join "${ENCODERS[@]}")"
    --enable-muxer="$(join "${MUXERS[@]}")"
    --enable-parser="$(join "${PARSERS[@]}")"
    --enable-protocol="$(join "${PROTOCOLS[@]}")"
    --enable-bsf="$(join "${BSFS[@]}")"
)
FFMPEG_STAMP="$PREFIX/.ffmpeg.stamp"
ffmpeg_id="$(basename "$FFMPEG_TAR") ${FFMPEG_FLAGS[*]} | $(cat "$X264_STAMP")"
if [ "${FORCE:-0}" != 1 ] && [ -f "$PREFIX/lib/libavformat.a" ] && [ "$(cat "$FFMPEG_STAMP" 2>/dev/null)" = "$ffmpeg_id" ]; then
    log "FFmpeg up to date (stamp $FFMPEG_STAMP)"
else
    log "building FFmpeg from $(basename "$FFMPEG_TAR")"
    rm -f "$FFMPEG_STAMP"
    unpack "$FFMPEG_TAR" "$BUILD/ffmpeg"
    (
        cd "$BUILD/ffmpeg"
        # Keep configure's summary (enabled decoders/encoders/...) for review.
        ./configure "${FFMPEG_FLAGS[@]}" 2>&1 | tee "$BUILD/ffmpeg-configure.log" \
            || { tail -n 30 ffbuild/config.log >&2; die "FFmpeg configure failed (see $BUILD/ffmpeg/ffbuild/config.log)"; }
        # FFmpeg silently drops components whose dependencies are missing;
        # report any requested one that did not make it.
        missing=0
        check() {  # check <type> <names...>
            local t="$1" n up; shift
            for n in "$@"; do
                up="$(printf '%s_%s' "$n" "$t" | tr '[:lower:]' '[:upper:]')"
                grep -q "^#define CONFIG_${up} 1" config_components.h || { log "WARNING: $t '$n' was NOT enabled by configure"; missing=1; }
            done
        }
        check decoder "${DECODERS[@]}"; check demuxer "${DEMUXERS[@]}"; check encoder "${ENCODERS[@]}"
        check muxer "${MUXERS[@]}";     check parser "${PARSERS[@]}";   check protocol "${PROTOCOLS[@]}"
        check bsf "${BSFS[@]}"
        [ "$missing" = 0 ] && log "all requested FFmpeg components enabled"
        make -j"$JOBS"
        make install
    )
    printf '%s\n' "$ffmpeg_id" > "$FFMPEG_STAMP"
fi

# --- Make the .pc files relocatable (no absolute build path inside), so the
# prefix keeps working if the repo is moved/copied.
# shellcheck disable=SC2016  # ${prefix}/${pcfiledir} are for pkg-config, not bash
for pc in "$PREFIX"/lib/pkgconfig/*.pc; do
    grep -q '^prefix=\${pcfiledir}' "$pc" && continue
    old="$(sed -n 's/^prefix=//p' "$pc")"
    sed -i -e "/^prefix=/!s|$old|\${prefix}|g" -e 's|^prefix=.*|prefix=${pcfiledir}/../..|' "$pc"
done
# FFmpeg copies x264's -L flag into its .pc; if x264.pc was already relocated
# that path reads ${prefix}/lib/pkgconfig/../../lib: shorten it.
sed -i 's|/lib/pkgconfig/\.\./\.\./lib|/lib|g' "$PREFIX"/lib/pkgconfig/*.pc

# --- Verify: static libs present, pkg-config resolves them, a program links.
for lib in libavformat libavcodec libavutil libswscale libswresample libx264; do
    [ -f "$PREFIX/lib/$lib.a" ] || die "missing $PREFIX/lib/$lib.a"
done
MODS=(libavformat libavcodec libavutil libswscale libswresample)
log "pkg-config --modversion: $(pkg-config --modversion "${MODS[@]}" | tr '\n' ' ')"
log "pkg-config --static --libs libavformat:"
pkg-config --static --libs libavformat

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/t.c" <<'EOF'
#include <stdio.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
int main(void) {
    const AVCodec *enc = avcodec_find_encoder_by_name("libx264");
    printf("avformat %u, libx264 encoder: %s\n", avformat_version(), enc ? "yes" : "NO");
    return enc ? 0 : 1;
}
EOF
# shellcheck disable=SC2046
"${CC:-cc}" "$tmp/t.c" -o "$tmp/t" $(pkg-config --static --cflags "${MODS[@]}") $(pkg-config --static --libs "${MODS[@]}") \
    || die "test program failed to link against $PREFIX"
"$tmp/t" || die "test program ran but libx264 encoder is missing"
# Same code inside a shared object: must need no -Bsymbolic and no text relocations.
# shellcheck disable=SC2046
"${CC:-cc}" -fPIC -shared "$tmp/t.c" -o "$tmp/t.so" -Wl,--no-undefined -Wl,-z,text \
    $(pkg-config --static --cflags "${MODS[@]}") $(pkg-config --static --libs "${MODS[@]}") \
    || die "static FFmpeg cannot be linked into a shared object"
log "link tests OK (executable + shared object)"

# --- nlohmann-json: header-only; unpack Debian's package so CMake finds it even where the host lacks it.
JSON_DEB="$(pick 'nlohmann-json3-dev_*.deb')"
if [ ! -f "$DEPS/nlohmann/usr/include/nlohmann/json.hpp" ]; then
    rm -rf "$DEPS/nlohmann" && mkdir -p "$DEPS/nlohmann"
    if command -v dpkg >/dev/null; then
        dpkg -x "$JSON_DEB" "$DEPS/nlohmann"
    else
        (cd "$DEPS/nlohmann" && ar x "$JSON_DEB" && tar -xf data.tar.* && rm -f control.tar.* data.tar.* debian-binary)
    fi
fi

log "done. Use:"
echo "export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig"
echo "cmake ... -DCMAKE_PREFIX_PATH=\"<torch cmake dir>;$DEPS/nlohmann/usr\" -DLSYNC_FFMPEG_STATIC=ON"
