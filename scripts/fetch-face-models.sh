#!/usr/bin/env bash
# Fetches the face detector (SSD MobileNet v1) and the 68-point landmark model in TensorFlow.js format from
# the npm package @vladmandic/face-api (MIT), which ships them in its model/ folder. npm is the one channel
# for these files that is versioned and checksummed, so the fetch is reproducible.
#
# Usage: scripts/fetch-face-models.sh [target-dir]
#   target-dir defaults to ${LATENTSYNC_MODEL_DIR:-$HOME/.cache/latentsync}/face-api (where `latentsync`
#   looks); the unit tests use tests/fixtures/face-api.
# FACE_API_VERSION picks another package version (default 1.7.15, whose files are checked against the
# sha256 sums below; other versions are taken as they come).
# Idempotent: files already present (and matching the sums) are left alone.
set -euo pipefail

VERSION="${FACE_API_VERSION:-1.7.15}"
DEST="${1:-${LATENTSYNC_MODEL_DIR:-$HOME/.cache/latentsync}/face-api}"
MANIFESTS=(ssd_mobilenetv1_model-weights_manifest.json face_landmark_68_model-weights_manifest.json)
PINNED_VERSION=1.7.15
PINNED_SUMS="888f744dffbc84f5f060d1f8427d9742341943a2dfaaf9205d10029b7e7a2955  ssd_mobilenetv1_model-weights_manifest.json
2835640602d53718aa6ae9a42896327eaa21beefed056c218d32ca7d79e1e2f8  ssd_mobilenetv1_model.bin
ca4886639f86e99b39fed0c155f81b63317225773bd9616716e887b0153389c9  face_landmark_68_model-weights_manifest.json
4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b  face_landmark_68_model.bin
9a3442b79acaf4fbc7c2e07b7e2d8f84af9bb3871bf08a69d80304ab00640e9a  LICENSE"

die() {
    echo "fetch-face-models: error: $*" >&2
    exit 1
}

# Shard files a manifest names, one per line (the "paths" arrays may span lines). Plain text tools, so the
# already-present check works without node; TF.js shard names hold no quotes or blanks.
shards_of() {
    tr '\n' ' ' <"$1" | grep -o '"paths"[[:space:]]*:[[:space:]]*\[[^]]*\]' | sed 's/^"paths"[^[]*\[//' |
        grep -o '"[^"]*"' | tr -d '"' || true
}

# True when `dir` holds both models complete: every manifest, every shard it names, the LICENSE, and for the
# pinned version the exact bytes.
complete() {
    local dir="$1" m s
    [ -s "$dir/LICENSE" ] || return 1
    for m in "${MANIFESTS[@]}"; do
        [ -s "$dir/$m" ] || return 1
        local shards
        shards="$(shards_of "$dir/$m")"
        [ -n "$shards" ] || return 1
        for s in $shards; do [ -s "$dir/$s" ] || return 1; done
    done
    if [ "$VERSION" = "$PINNED_VERSION" ]; then
        (cd "$dir" && printf '%s\n' "$PINNED_SUMS" | sha256sum --check --status) || return 1
    fi
}

if [ -d "$DEST" ] && complete "$DEST"; then
    echo "fetch-face-models: face-api $VERSION models already present in $DEST"
    exit 0
fi

command -v npm >/dev/null 2>&1 ||
    die "npm not found. Install Node.js and npm (Debian/Ubuntu: apt-get install npm), or copy these" \
        "files of @vladmandic/face-api@$VERSION (folder model/) into $DEST by hand:" \
        "${MANIFESTS[*]} and the .bin shards they name."

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fetch-face-models.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

echo "fetch-face-models: downloading @vladmandic/face-api@$VERSION with npm pack ..."
if ! (cd "$TMP" && npm pack --loglevel=error "@vladmandic/face-api@$VERSION") >"$TMP/npm.log" 2>&1; then
    cat "$TMP/npm.log" >&2
    die "npm pack @vladmandic/face-api@$VERSION failed (no network, registry unreachable, or no such" \
        "version; npm's output is above)"
fi
TARBALL="$(find "$TMP" -maxdepth 1 -name "*.tgz" | head -n 1)"
[ -n "$TARBALL" ] || die "npm pack produced no tarball (npm's output: $(cat "$TMP/npm.log"))"

mkdir -p "$TMP/x"
tar -xzf "$TARBALL" -C "$TMP/x" package/LICENSE package/model ||
    die "cannot extract LICENSE and model/ from $TARBALL"
SRC="$TMP/x/package/model"
cp "$TMP/x/package/LICENSE" "$SRC/LICENSE"

FILES=(LICENSE)
for m in "${MANIFESTS[@]}"; do
    [ -s "$SRC/$m" ] || die "the package has no model/$m"
    FILES+=("$m")
    for s in $(shards_of "$SRC/$m"); do
        [ -s "$SRC/$s" ] || die "the package has no model/$s (named by $m)"
        FILES+=("$s")
    done
done
if [ "$VERSION" = "$PINNED_VERSION" ]; then
    (cd "$SRC" && printf '%s\n' "$PINNED_SUMS" | sha256sum --check --quiet) ||
        die "the downloaded files do not match the sha256 sums recorded for $VERSION"
fi

# Copy under temporary names, then rename: an interrupted run never leaves a half-written file under a real
# name, which `complete` would otherwise have to detect by size.
mkdir -p "$DEST" || die "cannot create $DEST"
for f in "${FILES[@]}"; do
    cp "$SRC/$f" "$DEST/.$f.partial" || die "cannot write $DEST/$f"
    mv -f "$DEST/.$f.partial" "$DEST/$f"
done
complete "$DEST" || die "files in $DEST are incomplete after copying"
echo "fetch-face-models: face-api $VERSION models ($(printf '%s ' "${FILES[@]}")) are in $DEST"
