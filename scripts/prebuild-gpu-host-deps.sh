#!/usr/bin/env bash
# Builds the GPU host's static FFmpeg + x264 (scripts/gpu-host-deps.sh) here, on the CPU machine, and strips their
# debug sections, so a device call can carry the finished prefix instead of the sources and skip that minute of
# its build (measured: the latentsync build of a fresh H100 in 112 s instead of 181-215 s). About 4 minutes on 2
# cores; needs .deps/src from scripts/fetch-gpu-host-sources.sh.
# Then carry ".deps/prefix" and ".deps/nlohmann" (about 19 MB together), not ".deps/src": gpu-host-deps.sh uses a
# carried prefix as it is when no sources came with it. The static libraries are plain x86-64 C code; the GPU host's
# newer glibc and compiler link them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/gpu-host-deps.sh"
strip --strip-debug "$ROOT"/.deps/prefix/lib/*.a  # 70 MB -> 16 MB: the carry limit is 64 MiB with the tree
du -sh "$ROOT/.deps/prefix" "$ROOT/.deps/nlohmann"
echo 'carry: [".deps/prefix", ".deps/nlohmann"] (and not ".deps/src")'
