#!/usr/bin/env python3
"""Rewrites a safetensors file as a LatentSync-style torch.save checkpoint, streaming, in constant memory.

    scripts/safetensors_to_torch_zip.py IN.safetensors OUT.pt [--wrap state_dict] [--global-step N]

The output is what `torch.save({"state_dict": OrderedDict(...), "global_step": N}, OUT)` writes: a ZIP64
archive of STORED records (`<name>/data.pkl`, `<name>/data/<i>` one per tensor, 64-byte aligned, ...). It
exists so tests can make multi-gigabyte checkpoints of the real format (e.g. a full-size random UNet for the
load-memory measurement) without torch: standard library only, the pickle comes from the same stand-ins as
scripts/make_checkpoint_fixtures.py, and the tensor bytes are copied in 64 MiB pieces.
"""

import argparse
import collections
import json
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_checkpoint_fixtures as fx  # noqa: E402  (registers the torch stand-ins)

DTYPES = {"F32": ("FloatStorage", 4), "F16": ("HalfStorage", 2), "BF16": ("BFloat16Storage", 2),
          "F64": ("DoubleStorage", 8), "I64": ("LongStorage", 8), "I32": ("IntStorage", 4),
          "U8": ("ByteStorage", 1), "BOOL": ("BoolStorage", 1)}
PIECE = 64 << 20


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


class ZipStream:
    """ZIP64 writer for STORED records whose sizes are known before their bytes are written."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.central = []

    def add(self, name, size, chunks):
        name_b = name.encode()
        offset = self.f.tell()
        extra = struct.pack("<HHQQ", 1, 16, size, size)
        pad = (-(offset + 30 + len(name_b) + len(extra) + 4)) % 64  # torch aligns record data to 64 bytes
        extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        self.f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, 0, 0xFFFFFFFF, 0xFFFFFFFF,
                                 len(name_b), len(extra)))
        self.f.write(name_b + extra)
        crc = 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
            self.f.write(chunk)
        end = self.f.tell()
        self.f.seek(offset + 14)
        self.f.write(struct.pack("<I", crc & 0xFFFFFFFF))
        self.f.seek(end)
        self.central.append((name_b, crc & 0xFFFFFFFF, size, offset))

    def close(self):
        cd_offset = self.f.tell()
        for name_b, crc, size, offset in self.central:
            extra = struct.pack("<HHQQQ", 1, 24, size, size, offset)
            self.f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF,
                                     0xFFFFFFFF, len(name_b), len(extra), 0, 0, 0, 0, 0xFFFFFFFF))
            self.f.write(name_b + extra)
        cd_size = self.f.tell() - cd_offset
        n = len(self.central)
        z_off = self.f.tell()
        self.f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_offset))
        self.f.write(struct.pack("<IIQI", 0x07064B50, 0, z_off, 1))
        self.f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
        self.f.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--wrap", default="state_dict", help="top-level key holding the state dict ('' for none)")
    ap.add_argument("--global-step", type=int, default=0)
    args = ap.parse_args()

    header, data_start = read_header(args.src)
    items, spans = [], []
    for i, (name, e) in enumerate(header.items()):
        cls, item = DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        storage = fx.Storage(cls, str(i), b"", numel=(end - begin) // item)
        items.append((name, fx.Tensor(storage, e["shape"])))
        spans.append((str(i), data_start + begin, end - begin))
    sd = fx.state_dict(items)
    obj = collections.OrderedDict([(args.wrap, sd), ("global_step", args.global_step)]) if args.wrap else sd
    pkl, _ = fx.torch_pickle(obj)

    archive = os.path.splitext(os.path.basename(args.dst))[0]
    tmp = args.dst + ".partial"
    z = ZipStream(tmp)
    z.add(archive + "/data.pkl", len(pkl), [pkl])
    z.add(archive + "/.format_version", 1, [b"1"])
    z.add(archive + "/.storage_alignment", 2, [b"64"])
    z.add(archive + "/byteorder", 6, [b"little"])
    with open(args.src, "rb") as src:
        for key, begin, size in spans:
            def chunks(begin=begin, size=size):
                src.seek(begin)
                left = size
                while left:
                    piece = src.read(min(PIECE, left))
                    if not piece:
                        raise SystemExit("%s: truncated" % args.src)
                    left -= len(piece)
                    yield piece
            z.add(archive + "/data/" + key, size, chunks())
    z.add(archive + "/version", 2, [b"3\n"])
    z.close()
    os.replace(tmp, args.dst)


if __name__ == "__main__":
    main()
