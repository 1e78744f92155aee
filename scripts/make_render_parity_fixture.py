#!/usr/bin/env python3
"""Cuts tests/fixtures/render_tiny/ from the official end-to-end golden (shared/golden/render_tiny/).

The golden is 18 MB; the parity test needs a few hundred KB of its tensors, the inputs, the faces as a
--face-track file and the final frames. Pure Python (no numpy or torch on the CPU machines); the frames are
stored losslessly as FFV1 with the ffmpeg CLI.

usage: scripts/make_render_parity_fixture.py GOLDEN_DIR OUT_DIR
"""
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

# Tensors kept whole, and those cut to their first rows along dim 0 (bytes are row-major, so a prefix).
KEEP = ["whisper_chunks", "affine_matrices", "landmarks3", "smooth_bias", "init_noise", "mask_image", "timesteps"]
for i in range(3):
    KEEP += [f"chunk{i}.{k}" for k in ("frames", "vae_noise_masked", "vae_noise_ref", "masked_image_latents",
                                       "ref_latents", "mask_latents", "final_latents")]
PREFIX = {"aligned_faces_uint8": 8, "chunk2.decoded": 2}
SIZE = {"F32": 4, "I64": 8, "U8": 1}


def read_safetensors(path):
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"source": "shared/golden/render_tiny/render_golden.safetensors (subset)"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main(golden, out):
    golden, out = Path(golden), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t = read_safetensors(golden / "render_golden.safetensors")
    sub = {k: t[k] for k in KEEP}
    for k, rows in PREFIX.items():
        dtype, shape, raw = t[k]
        row = len(raw) // shape[0]
        sub[k] = (dtype, [rows] + shape[1:], raw[:rows * row])
    write_safetensors(out / "parity.safetensors", sub)

    for name in ("input.mkv", "input.wav"):
        shutil.copyfile(golden / name, out / name)

    # The faces the official run was handed (FixedFaceAnalysis), as a --face-track file. InsightFace
    # coordinates are pixel indices: origin "center".
    lm = json.loads((golden / "landmarks.json").read_text())
    n_out = t["affine_matrices"][1][0]
    frames = []
    for rec in lm["frames"][:n_out]:
        x1, y1, x2, y2 = rec["insightface_bbox_x1y1x2y2"]
        frames.append({"frame": int(rec["frame"]), "box": [x1, y1, x2 - x1, y2 - y1],
                       "score": rec["insightface_det_score"], "landmarks": rec["landmarks106"]})
    track = {"version": 1, "scheme": "insightface106", "origin": "center", "frames": frames}
    (out / "face_track.json").write_text(json.dumps(track, separators=(",", ":")) + "\n")

    # The final frames, RGB, losslessly.
    dtype, shape, raw = t["restored_frames_uint8"]
    n, h, w, _ = shape
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "25",
                    "-i", "-", "-c:v", "ffv1", "-level", "3", "-pix_fmt", "bgr0", str(out / "restored.mkv")],
                   input=raw, check=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
