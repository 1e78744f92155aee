"""A small safetensors reader in plain Python (no numpy, no torch), shared by the e2e scripts that compare the
CLI's outputs with golden tensors. lib.sh puts this folder on PYTHONPATH."""
import json
import struct
from array import array

_CODES = {"F32": "f", "F64": "d", "I64": "q", "I32": "i"}


def raw(path):
    """(header without __metadata__, metadata dict, the data bytes after the header)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    return header, meta, data


def tensor_bytes(header, data, name):
    b, e = header[name]["data_offsets"]
    return data[b:e]


def numbers(path):
    """{name: (shape, array)} for every tensor of a numeric dtype this reader knows (F32, F64, I64, I32)."""
    header, _, data = raw(path)
    out = {}
    for name, e in header.items():
        code = _CODES.get(e["dtype"])
        if code is None:
            continue
        a = array(code)
        a.frombytes(tensor_bytes(header, data, name))
        out[name] = (e["shape"], a)
    return out


def check(ours, golden, names, atol, rtol, label=""):
    """Asserts |ours - golden| <= atol + rtol * |golden| element-wise for each name, shapes equal."""
    for name in names:
        (s1, a), (s2, b) = ours[name], golden[name]
        assert s1 == s2, f"{label} {name}: shape {s1} vs {s2}"
        worst = max(abs(x - y) - (atol + rtol * abs(y)) for x, y in zip(a, b))
        err = max(abs(x - y) for x, y in zip(a, b))
        print(f"{label} {name}: max abs err {err:.3g}")
        assert worst <= 0, f"{label} {name}: exceeds atol {atol} + rtol {rtol} by {worst:.3g}"
