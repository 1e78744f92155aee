#!/usr/bin/env python3
"""Writes the torch.save fixtures that tests/unit/test_torch_checkpoint.cpp reads.

Plain python3, standard library only: neither torch nor numpy is available where the fixtures are made or
where CI runs.

1. Emulated torch.save archives (tests/fixtures/checkpoints/*.pt). torch.save is a ZIP of STORED records
   "<name>/data.pkl" (a protocol-2 pickle), "<name>/data/<key>" (raw little-endian storage bytes),
   "<name>/byteorder", "<name>/version", ... The pickle is produced by the standard pickler: stand-in
   objects whose reductions name the real torch globals (torch._utils._rebuild_tensor_v2, torch.FloatStorage,
   ...) and a persistent_id hook that emits torch's ('storage', class, key, location, numel) ids, so the
   opcode stream is the one torch.save writes. Bad cases are written byte by byte where the pickler would
   refuse to produce them.

2. Reference hashes of the real golden checkpoints (tests/fixtures/checkpoints/golden_tensor_hashes.json):
   an independent reader (zipfile + a pickle.Unpickler whose find_class/persistent_load return inert
   stand-ins, so nothing is executed) computes the SHA-256 of each tensor's contiguous little-endian bytes.

Usage: scripts/make_checkpoint_fixtures.py [--golden-dir DIR] [--out DIR]
"""

import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --------------------------------------------------------------------------------------------------------
# Stand-ins that pickle exactly like the torch objects they replace. pickle looks a global up by
# __module__/__qualname__ in sys.modules and checks identity, so fake "torch" modules are registered for the
# duration of this script (there is no real torch to clash with).

_torch = types.ModuleType("torch")
_torch_utils = types.ModuleType("torch._utils")
_torch.__path__ = []  # a package, so "torch._utils" imports resolve to the fake submodule
_torch._utils = _torch_utils
sys.modules.setdefault("torch", _torch)
sys.modules.setdefault("torch._utils", _torch_utils)


def _register_function(module, name):
    def fn(*args):
        raise RuntimeError("stand-in only")

    fn.__module__ = module.__name__
    fn.__name__ = fn.__qualname__ = name
    setattr(module, name, fn)
    return fn


REBUILD_V2 = _register_function(_torch_utils, "_rebuild_tensor_v2")
REBUILD_V3 = _register_function(_torch_utils, "_rebuild_tensor_v3")
REBUILD_PARAMETER = _register_function(_torch_utils, "_rebuild_parameter")
REBUILD_PARAMETER_WITH_STATE = _register_function(_torch_utils, "_rebuild_parameter_with_state")

# storage class -> (struct format of one element, element size)
STORAGE_CLASSES = {
    "FloatStorage": ("f", 4),
    "DoubleStorage": ("d", 8),
    "HalfStorage": ("e", 2),
    "BFloat16Storage": (None, 2),
    "LongStorage": ("q", 8),
    "IntStorage": ("i", 4),
    "ShortStorage": ("h", 2),
    "CharStorage": ("b", 1),
    "ByteStorage": ("B", 1),
    "BoolStorage": ("?", 1),
    "UntypedStorage": ("B", 1),
}
STORAGE_TYPES = {}
for _name in STORAGE_CLASSES:
    STORAGE_TYPES[_name] = type(_name, (), {"__module__": "torch", "__qualname__": _name})
    setattr(_torch, _name, STORAGE_TYPES[_name])


class _DType:
    """torch.float16 & co. pickle as plain globals of the torch module."""

    __module__ = "torch"

    def __init__(self, name):
        self.name = name
        setattr(_torch, name, self)

    def __reduce__(self):
        return self.name


FLOAT16 = _DType("float16")


def bf16_bytes(values):
    # bfloat16 = the top half of the float32 bit pattern (these values are exact, so truncation is rounding).
    return b"".join(struct.pack("<f", v)[2:] for v in values)


class Storage:
    def __init__(self, cls, key, data, numel=None, location="cpu"):
        self.cls = STORAGE_TYPES[cls]
        self.key = key
        self.data = data
        self.location = location
        self.numel = numel if numel is not None else len(data) // STORAGE_CLASSES[cls][1]


def typed(cls, key, values, **kw):
    return Storage(cls, key, packed(cls, values), **kw)


def packed(cls, values):
    fmt, _ = STORAGE_CLASSES[cls]
    if cls == "BFloat16Storage":
        return bf16_bytes(values)
    return struct.pack("<%d%s" % (len(values), fmt), *values)


class Tensor:
    def __init__(self, storage, size, stride=None, offset=0, dtype=None):
        self.storage, self.size, self.offset, self.dtype = storage, tuple(size), offset, dtype
        if stride is None:
            stride, acc = [], 1
            for s in reversed(self.size):
                stride.insert(0, acc)
                acc *= s
        self.stride = tuple(stride)

    def __reduce_ex__(self, protocol):
        if self.dtype is not None:
            hooks = collections.OrderedDict()
            return (REBUILD_V3, (self.storage, self.offset, self.size, self.stride, False, hooks, self.dtype))
        hooks = collections.OrderedDict()  # torch pickles the (empty) backward hooks as OrderedDict()
        return (REBUILD_V2, (self.storage, self.offset, self.size, self.stride, False, hooks))


class Parameter:
    def __init__(self, tensor, state=None):
        self.tensor, self.state = tensor, state

    def __reduce_ex__(self, protocol):
        if self.state is not None:
            return (REBUILD_PARAMETER_WITH_STATE, (self.tensor, True, collections.OrderedDict(), self.state))
        return (REBUILD_PARAMETER, (self.tensor, True, collections.OrderedDict()))


class _Pickler(pickle.Pickler):
    def __init__(self, f, storages):
        super().__init__(f, protocol=2)
        self.storages = storages

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            self.storages[obj.key] = obj.data
            return ("storage", obj.cls, obj.key, obj.location, obj.numel)
        return None


def torch_pickle(obj):
    buf, storages = io.BytesIO(), {}
    _Pickler(buf, storages).dump(obj)
    return buf.getvalue(), storages


def state_dict(items, metadata=True):
    """An OrderedDict with the `_metadata` attribute module.state_dict() attaches (pickled via BUILD)."""
    sd = collections.OrderedDict(items)
    if metadata:
        sd._metadata = collections.OrderedDict([("", {"version": 1})])
    return sd


# --------------------------------------------------------------------------------------------------------
# A small ZIP writer: zipfile cannot misalign data on purpose, force ZIP64 end records on a tiny file, or
# mix stored and deflated entries the way a re-zipped checkpoint would.


def write_zip(path, records, align=64, misalign=0, zip64=False, deflate=()):
    out = bytearray()
    central = []
    for name, data in records:
        name_b = name.encode()
        method = 8 if name in deflate else 0
        payload = data
        if method == 8:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = c.compress(data) + c.flush()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        offset = len(out)
        extra = b""
        if zip64:
            extra += struct.pack("<HHQQ", 1, 16, len(data), len(payload))
        # torch pads the local extra field ("FB" records) so that storage data starts on a 64-byte boundary.
        base = offset + 30 + len(name_b) + len(extra)
        if align:
            pad = (misalign - (base + 4)) % align
            extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        size32 = 0xFFFFFFFF if zip64 else len(payload)
        usize32 = 0xFFFFFFFF if zip64 else len(data)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, 0, method, 0, 0x21, crc, size32,
                           usize32, len(name_b), len(extra))
        out += name_b + extra + payload
        central.append((name_b, method, crc, len(payload), len(data), offset))
    cd_offset = len(out)
    for name_b, method, crc, csize, usize, offset in central:
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, usize, csize, offset)
            fields = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        else:
            extra = b""
            fields = (csize, usize, offset)
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45 if zip64 else 20, 45 if zip64 else 20, 0,
                           method, 0, 0x21, crc, fields[0], fields[1], len(name_b), len(extra), 0, 0, 0, 0,
                           fields[2])
        out += name_b + extra
    cd_size = len(out) - cd_offset
    n = len(central)
    if zip64:
        z_off = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, z_off, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_offset, 0)
    with open(path, "wb") as f:
        f.write(out)
    return bytes(out)


def torch_records(archive, pkl, storages, byteorder=b"little"):
    records = [(archive + "/data.pkl", pkl), (archive + "/.format_version", b"1"),
               (archive + "/.storage_alignment", b"64")]
    if byteorder is not None:
        records.append((archive + "/byteorder", byteorder))
    records += [(archive + "/data/" + k, v) for k, v in sorted(storages.items(), key=lambda kv: int(kv[0]))]
    records.append((archive + "/version", b"3\n"))
    return records


def save(out_dir, file_name, obj, archive=None, extra_storages=(), **zip_options):
    archive = archive or file_name[:-3]
    pkl, storages = torch_pickle(obj)
    storages.update(extra_storages)
    return write_zip(os.path.join(out_dir, file_name), torch_records(archive, pkl, storages), **zip_options)


def save_raw_pickle(out_dir, file_name, pkl, storages=None, **zip_options):
    return write_zip(os.path.join(out_dir, file_name), torch_records(file_name[:-3], pkl, storages or {}),
                     **zip_options)


# --------------------------------------------------------------------------------------------------------
# Fixtures


def make_fixtures(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    written = []

    # 1. module.state_dict() saved directly: an OrderedDict with _metadata at the top level, every dtype
    #    family, views sharing one storage, a Parameter, a 0-d and an empty tensor.
    base = typed("FloatStorage", "2", [float(i) for i in range(12)])
    sd = state_dict([
        ("half", Tensor(typed("HalfStorage", "0", [0.5, -1.0, 2.0, 65504.0, 0.25, -0.0]), [2, 3])),
        ("bf16", Tensor(typed("BFloat16Storage", "1", [1.0, -2.5, 2.0**100, 0.0078125]), [4])),
        ("base", Tensor(base, [3, 4])),
        ("base_t", Tensor(base, [4, 3], [1, 4])),       # base.t(): a non-contiguous view of the same storage
        ("row1", Tensor(base, [4], [1], offset=4)),     # base[1]: a view with a storage offset
        ("long", Tensor(typed("LongStorage", "3", [-1, 2**40 + 5, 7]), [3])),
        ("int32", Tensor(typed("IntStorage", "4", [-2**31, 2**31 - 1]), [2])),
        ("double", Tensor(typed("DoubleStorage", "5", [3.141592653589793, -1e300]), [2])),
        ("int8", Tensor(typed("CharStorage", "6", [-128, 127, 0]), [3])),
        ("uint8", Tensor(typed("ByteStorage", "7", [0, 200, 255]), [3])),
        ("int16", Tensor(typed("ShortStorage", "8", [-300, 300]), [2])),
        ("mask", Tensor(typed("BoolStorage", "9", [True, False, True, True]), [2, 2])),
        ("param", Parameter(Tensor(typed("FloatStorage", "10", [1.5, 2.5]), [2]))),
        ("param_state", Parameter(Tensor(typed("FloatStorage", "11", [4.0]), [1]), state={"note": "attrs"})),
        ("scalar", Tensor(typed("FloatStorage", "12", [42.0]), [])),
        ("empty", Tensor(Storage("FloatStorage", "13", b""), [0, 3])),
    ])
    written.append(("state_dict_dtypes.pt", save(out_dir, "state_dict_dtypes.pt", sd)))

    # 2. OpenAI-Whisper-like container, storages saved from a GPU, ZIP64 end records and ZIP64 extra fields,
    #    data deliberately one byte off alignment (the reader must copy instead of mapping).
    w = typed("FloatStorage", "0", [1.0, 2.0, 3.0, 4.0], location="cuda:0")
    obj = {"dims": {"n_mels": 80, "name": "tiny", "ratio": 0.5, "flags": [True, None], "pair": (1, 2)},
           "model_state_dict": state_dict([("encoder.w", Tensor(w, [2, 2]))])}
    name = "cuda_zip64_unaligned.pt"
    written.append((name, save(out_dir, name, obj, archive="whisper", zip64=True, misalign=1)))

    # 3. torch 2.x spelling for dtypes without a legacy storage class: UntypedStorage (sizes in bytes) +
    #    _rebuild_tensor_v3 carrying the dtype; LatentSync's {"state_dict", "global_step"} container.
    u = Storage("UntypedStorage", "0", packed("HalfStorage", [1.0, 2.0, 3.0]))
    obj = {"state_dict": state_dict([("u", Tensor(u, [3], dtype=FLOAT16))]), "global_step": 1234}
    written.append(("untyped_v3.pt", save(out_dir, "untyped_v3.pt", obj)))

    # ---- bad files -------------------------------------------------------------------------------------
    # A REDUCE of os.system: loading this with plain pickle would run a shell command.
    written.append(("bad_global.pt", save_raw_pickle(
        out_dir, "bad_global.pt", b"\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwned\x85R.")))
    # The same with protocol 4's STACK_GLOBAL and builtins.eval.
    written.append(("bad_stack_global.pt", save_raw_pickle(
        out_dir, "bad_stack_global.pt",
        b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x0b1 + 1 == 2\x85R.")))
    # An unknown opcode byte after a valid start.
    written.append(("bad_opcode.pt", save_raw_pickle(out_dir, "bad_opcode.pt", b"\x80\x02}q\x00\xff.")))
    # A tensor of 16 floats over a storage of 8.
    short = state_dict([("w", Tensor(typed("FloatStorage", "0", [0.0] * 8), [4, 4]))])
    written.append(("short_storage.pt", save(out_dir, "short_storage.pt", short)))
    # A storage record the pickle refers to but the archive lacks.
    missing = state_dict([("w", Tensor(Storage("FloatStorage", "0", b"\0" * 8), [2]))])
    pkl, _ = torch_pickle(missing)
    written.append(("missing_storage.pt", save_raw_pickle(out_dir, "missing_storage.pt", pkl, {})))
    # Absurd shapes: a negative dimension, and a product that wraps around 64 bits.
    neg = state_dict([("w", Tensor(Storage("FloatStorage", "0", b"\0" * 16), [-1, 4], [4, 1]))])
    written.append(("negative_shape.pt", save(out_dir, "negative_shape.pt", neg)))
    huge = state_dict([("w", Tensor(Storage("FloatStorage", "0", b"\0" * 16), [2**40, 2**40], [2**40, 1]))])
    written.append(("overflow_shape.pt", save(out_dir, "overflow_shape.pt", huge)))
    # Stride 0: one stored float claiming to be 2^40 of them (convert once tried to write 4 TB of it).
    stride0 = state_dict([("w", Tensor(Storage("FloatStorage", "0", b"\0" * 4), [2**40], [0]))])
    written.append(("stride0_huge.pt", save(out_dir, "stride0_huge.pt", stride0)))
    # A global whose module name holds a NUL byte and a control character: messages must escape them.
    written.append(("nul_global.pt", save_raw_pickle(
        out_dir, "nul_global.pt", b"\x80\x02cos\x00\x1b[31mevil\nsystem\nX\x02\x00\x00\x00hi\x85R.")))
    # data.pkl deflated, as a "zip -r" of an extracted checkpoint would do.
    ok = state_dict([("w", Tensor(typed("FloatStorage", "0", [1.0, 2.0]), [2]))])
    pkl, storages = torch_pickle(ok)
    written.append(("deflated.pt", write_zip(os.path.join(out_dir, "deflated.pt"),
                                             torch_records("deflated", pkl, storages),
                                             deflate={"deflated/data.pkl"})))
    # Big-endian byte order record.
    written.append(("big_endian.pt", write_zip(os.path.join(out_dir, "big_endian.pt"),
                                               torch_records("big_endian", pkl, storages, byteorder=b"big"))))
    # Metadata that contains itself (the memo makes cycles possible): an error, not a stack overflow.
    loop = []
    loop.append(loop)
    cyclic = {"state_dict": ok, "loop": loop}
    written.append(("cyclic_metadata.pt", save(out_dir, "cyclic_metadata.pt", cyclic)))
    # Containers without a state dict.
    written.append(("not_a_dict.pt", save(out_dir, "not_a_dict.pt", [ok["w"]])))
    written.append(("no_tensors.pt", save(out_dir, "no_tensors.pt", {"epoch": 3, "lr": 0.1})))
    # A download cut short: the first 60 % of a good file (no end-of-central-directory record).
    good = written[0][1]
    cut = good[: len(good) * 6 // 10]
    with open(os.path.join(out_dir, "truncated.pt"), "wb") as f:
        f.write(cut)
    written.append(("truncated.pt", cut))
    # Not a ZIP at all.
    text = b"this is not a checkpoint, just text with a .pt name\n"
    with open(os.path.join(out_dir, "wrong_magic.pt"), "wb") as f:
        f.write(text)
    written.append(("wrong_magic.pt", text))
    # torch.save before 1.6: bare pickles, starting with PROTO 2 and torch's magic number.
    legacy = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03."
    with open(os.path.join(out_dir, "legacy.pt"), "wb") as f:
        f.write(legacy)
    written.append(("legacy.pt", legacy))

    for name, data in written:
        print("%-28s %6d bytes" % (name, len(data)))


# --------------------------------------------------------------------------------------------------------
# Independent reader for the golden files: nothing in the pickle is executed; globals become inert markers.

DTYPE_OF_STORAGE = {
    "FloatStorage": ("float32", 4), "DoubleStorage": ("float64", 8), "HalfStorage": ("float16", 2),
    "BFloat16Storage": ("bfloat16", 2), "LongStorage": ("int64", 8), "IntStorage": ("int32", 4),
    "ShortStorage": ("int16", 2), "CharStorage": ("int8", 1), "ByteStorage": ("uint8", 1),
    "BoolStorage": ("bool", 1),
}


class _Global:
    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):
        qualified = self.module + "." + self.name
        if qualified == "collections.OrderedDict":
            return collections.OrderedDict()
        if qualified == "torch._utils._rebuild_tensor_v2":
            storage, offset, size, stride = args[:4]
            return {"__tensor__": True, "storage": storage, "offset": offset, "size": tuple(size),
                    "stride": tuple(stride)}
        if qualified == "torch._utils._rebuild_parameter":
            return args[0]
        raise pickle.UnpicklingError("unexpected call of " + qualified)


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        allowed = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
                   ("torch._utils", "_rebuild_parameter")}
        if (module, name) in allowed or (module == "torch" and name in DTYPE_OF_STORAGE):
            return _Global(module, name)
        raise pickle.UnpicklingError("global %s.%s not allowed" % (module, name))

    def persistent_load(self, pid):
        tag, cls, key, location, numel = pid
        assert tag == "storage"
        return {"class": cls.name, "key": key, "numel": numel}


def contiguous_bytes(raw, item, offset, size, stride):
    numel = 1
    for s in size:
        numel *= s
    contiguous = []
    acc = 1
    for s in reversed(size):
        contiguous.insert(0, acc)
        acc *= s
    if numel == 0:
        return b""
    if list(stride) == contiguous or numel == 1:
        return raw[offset * item:(offset + numel) * item]
    out = bytearray()
    index = [0] * len(size)
    for _ in range(numel):
        pos = offset + sum(i * st for i, st in zip(index, stride))
        out += raw[pos * item:(pos + 1) * item]
        for d in reversed(range(len(size))):
            index[d] += 1
            if index[d] < size[d]:
                break
            index[d] = 0
    return bytes(out)


def golden_hashes(path):
    with zipfile.ZipFile(path) as z:
        pkl_name = [n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1][0]
        prefix = pkl_name[: -len("data.pkl")]
        root = _SafeUnpickler(io.BytesIO(z.read(pkl_name))).load()
        sd = root.get("state_dict", root.get("model_state_dict", root))
        out = collections.OrderedDict()
        for index, (name, t) in enumerate(sd.items()):
            st = t["storage"]
            dtype, item = DTYPE_OF_STORAGE[st["class"]]
            raw = z.read(prefix + "data/" + st["key"])
            data = contiguous_bytes(raw, item, t["offset"], t["size"], t["stride"])
            out[name] = {"index": index, "dtype": dtype, "shape": list(t["size"]),
                         "sha256": hashlib.sha256(data).hexdigest()}
        meta = {k: v for k, v in root.items() if v is not sd}
        return out, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "checkpoints"))
    ap.add_argument("--golden-dir", default=os.path.join(REPO, "tests", "fixtures", "golden"))
    args = ap.parse_args()
    make_fixtures(args.out)

    result = collections.OrderedDict()
    for name in ("unet_tiny_latentsync_unet.pt", "whisper_tiny_random.pt"):
        tensors, meta = golden_hashes(os.path.join(args.golden_dir, name))
        result[name] = tensors
        params = sum(_numel(t["shape"]) for t in tensors.values())
        print("%s: %d tensors, %d elements, metadata %s" % (name, len(tensors), params, json.dumps(meta)))
    # One tensor per line: small diffs when a golden file changes.
    lines = []
    for fi, (name, tensors) in enumerate(result.items()):
        rows = ["  %s: %s" % (json.dumps(t), json.dumps(v)) for t, v in tensors.items()]
        comma = "," if fi + 1 < len(result) else ""
        lines.append(" %s: {\n%s\n }%s" % (json.dumps(name), ",\n".join(rows), comma))
    with open(os.path.join(args.out, "golden_tensor_hashes.json"), "w") as f:
        f.write("{\n" + "\n".join(lines) + "\n}\n")


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


if __name__ == "__main__":
    main()
