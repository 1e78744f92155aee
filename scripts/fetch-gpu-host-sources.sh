#!/usr/bin/env bash
# Fetch the sources needed to build a static, minimal FFmpeg on the GPU host,
# which has no FFmpeg dev packages and no network.
#
# Runs on a Debian 12 (bookworm) machine WITH apt access. Downloads into
# <repo>/.deps/src/:
#   - ffmpeg_*.orig.tar.*   (FFmpeg 5.1 upstream release tarball)
#   - x264_*.orig.tar.*     (x264 snapshot)
#   - *.dsc                 (tiny; used to verify the tarballs' sha256)
#   - nasm_*.deb            (assembler; unpacked with dpkg -x on the GPU host)
# Then carry .deps/src to the GPU host and run scripts/gpu-host-deps.sh there.
#
# Idempotent: every step is skipped when its result is already present.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SRC_DIR="$REPO_ROOT/.deps/src"
SUITE="${DEBIAN_SUITE:-bookworm}"
# Separate file so we never edit the machine's own apt sources.
SRC_LIST="/etc/apt/sources.list.d/latentsync-deb-src.sources"

log() { printf '[fetch-sources] %s\n' "$*"; }
die() { printf '[fetch-sources] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root (or sudo) to add a deb-src entry and run apt-get update"
    SUDO="sudo"
fi
command -v apt-get >/dev/null || die "apt-get not found: run this on the Debian ($SUITE) machine, not the GPU host"

have_file() { compgen -G "$SRC_DIR/$1" >/dev/null; }

# True if any apt source (one-line .list or deb822 .sources) already has a
# deb-src entry for $SUITE.
has_deb_src() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        grep -Eq "^[[:space:]]*deb-src[[:space:]].*[[:space:]]$SUITE([[:space:]]|$)" "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: one stanza per blank-line separated paragraph.
        awk -v suite="$SUITE" 'BEGIN { RS = ""; found = 0 }
            { t = 0; s = 0; en = 1
              n = split($0, lines, "\n")
              for (i = 1; i <= n; i++) {
                  if (lines[i] ~ /^Types:/ && lines[i] ~ /deb-src/) t = 1
                  if (lines[i] ~ /^Suites:/ && lines[i] ~ ("[ \t]" suite "([ \t]|$)")) s = 1
                  if (lines[i] ~ /^Enabled:[ \t]*no/) en = 0
              }
              if (t && s && en) found = 1 }
            END { exit !found }' "$f" && return 0
    done
    return 1
}

mkdir -p "$SRC_DIR"

need_ffmpeg=1; have_file 'ffmpeg_*.orig.tar.*' && need_ffmpeg=0
need_x264=1;   have_file 'x264_*.orig.tar.*'   && need_x264=0
need_nasm=1;   have_file 'nasm_*.deb'          && need_nasm=0
need_json=1;   have_file 'nlohmann-json3-dev_*.deb' && need_json=0

if [ "$need_ffmpeg$need_x264$need_nasm$need_json" = "0000" ]; then
    log "all sources already present in $SRC_DIR; nothing to do"
else
    # 1. deb-src entry (only needed for apt-get source).
    if [ "$need_ffmpeg$need_x264" != "00" ]; then
        if has_deb_src; then
            log "a deb-src entry for $SUITE already exists"
        else
            log "adding deb-src entries for $SUITE to $SRC_LIST"
            $SUDO tee "$SRC_LIST" >/dev/null <<EOF
# Added by latentsync scripts/fetch-gpu-host-sources.sh (source packages only).
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        fi
    fi

    # 2. apt-get update. apt sometimes exits 0 on fetch failures, so also
    #    look for its "Failed to fetch"/"Could not resolve" messages.
    log "apt-get update"
    update_log="$(mktemp)"
    trap 'rm -f "$update_log"' EXIT
    if ! $SUDO apt-get update 2>&1 | tee "$update_log" \
        || grep -Eq '^(E:|W: Failed to fetch)|Could not resolve|Temporary failure resolving' "$update_log"; then
        die "apt-get update failed (no network / mirror unreachable?). This script needs apt network access; see output above."
    fi

    cd "$SRC_DIR"
    # 3. Source packages. --download-only: no unpacking, no dpkg-source needed.
    pkgs=()
    [ "$need_ffmpeg" = 1 ] && pkgs+=(ffmpeg)
    [ "$need_x264" = 1 ] && pkgs+=(x264)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        log "apt-get source --download-only ${pkgs[*]}"
        apt-get source --download-only "${pkgs[@]}" \
            || die "apt-get source failed for: ${pkgs[*]} (network down, or no deb-src for $SUITE?)"
        # Keep .deps/src small: the GPU host only uses the upstream orig
        # tarballs (plus the .dsc for checksums); drop Debian packaging.
        rm -f ./*.debian.tar.* ./*.diff.gz ./*.orig.tar.*.asc
    fi

    # 4. nasm binary package (x264/FFmpeg asm; the GPU host has no nasm).
    if [ "$need_nasm" = 1 ]; then
        log "apt-get download nasm"
        apt-get download nasm || die "apt-get download nasm failed (network down?)"
    fi
    # 5. nlohmann-json headers (header-only; the GPU host may lack them).
    if [ "$need_json" = 1 ]; then
        log "apt-get download nlohmann-json3-dev"
        apt-get download nlohmann-json3-dev || die "apt-get download nlohmann-json3-dev failed (network down?)"
    fi
fi

have_file 'ffmpeg_*.orig.tar.*' || die "no ffmpeg orig tarball in $SRC_DIR"
have_file 'x264_*.orig.tar.*'   || die "no x264 orig tarball in $SRC_DIR"
have_file 'nasm_*.deb'          || die "no nasm .deb in $SRC_DIR"
have_file 'nlohmann-json3-dev_*.deb' || die "no nlohmann-json3-dev .deb in $SRC_DIR"

log "contents of $SRC_DIR:"
ls -l "$SRC_DIR"
log "total: $(du -sh "$SRC_DIR" | cut -f1)  (carry .deps/src to the GPU host, then run scripts/gpu-host-deps.sh)"
