#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages latentsync builds and tests with (as root, or through sudo). Only what is
# missing is installed, so a second run is quick and needs no network.
set -euo pipefail

PACKAGES=(
    build-essential cmake ninja-build pkg-config ccache git python3 curl
    libtorch-dev                                   # LibTorch (Debian 12: 1.13, CPU)
    libopenblas0-pthread                           # fast BLAS for LibTorch (else netlib reference BLAS)
    libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
    ffmpeg                                         # CLI: tests make VFR/rotated inputs with it
    libcli11-dev libspdlog-dev nlohmann-json3-dev catch2
    util-linux                                     # setpriv: the unwritable-directory test as root
    clang libclang-rt-dev                          # scripts/fuzz.sh: libFuzzer, ASan and UBSan (clang 14 on Debian 12)
    slurm-wlm munge                                # tests/e2e/slurm_array.sh starts a one-node Slurm (never as a service)
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "[install-deps] all packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "[install-deps] installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
