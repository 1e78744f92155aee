#!/usr/bin/env bash
# Rules the compiler cannot see, checked over the sources (CTest runs this as `source_rules`):
# - no std::filesystem::remove_all: LibTorch exports its own copy, built against another libstdc++, and the
#   dynamic linker binds ours to it, which crashes on the GPU host. Use lsync::remove_tree (core/files.h).
# - no ';' in a TEST_CASE's name: CMake splits the discovered name there into two CTest entries whose filters
#   match no test case, so the case never ran (11 cases were lost so until 2026-12-03).
set -euo pipefail
ROOT="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
found="$(grep -rnE 'remove_all[[:space:]]*\(' "$ROOT/lib" "$ROOT/apps" "$ROOT/models" "$ROOT/tests" \
    --include='*.cpp' --include='*.h' --include='*.cu' | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)"
if [ -n "$found" ]; then
    echo "std::filesystem::remove_all crashes beside LibTorch on the GPU host; use lsync::remove_tree:"
    echo "$found"
    exit 1
fi
split="$(grep -rnE 'TEST_CASE\("[^"]*;' "$ROOT/tests" --include='*.cpp' || true)"
if [ -n "$split" ]; then
    echo "a ';' in a TEST_CASE name splits it into CTest entries that run nothing; use ',':"
    echo "$split"
    exit 1
fi
echo "source rules: ok"
