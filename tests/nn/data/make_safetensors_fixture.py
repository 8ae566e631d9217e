#!/usr/bin/python3
# Makes the safetensors fixtures of tests/nn/test_safetensors.cpp with PyTorch, serialising by the
# format's specification by hand (Debian 12 has no `safetensors` package), and checks files written by
# gradgraph's gg::safetensors::save by loading them into the equivalent torch.nn.Sequential.
#
#   /usr/bin/python3 make_safetensors_fixture.py            # (re)writes the fixtures next to this script
#   /usr/bin/python3 make_safetensors_fixture.py --check F  # loads F into Sequential(Linear(2,3),
#                                                           # Sigmoid(), Linear(3,2)), strict=True
#
# Fixtures:
#   sequential_f32.safetensors  the seeded model's state_dict in float32, laid out exactly as the
#                               official writer does (entries sorted by dtype alignment then name,
#                               compact JSON, header padded with spaces to a multiple of 8)
#   sequential_f64.safetensors  the same model in float64, laid out differently but validly: pretty
#                               JSON, entries and data in other orders, "__metadata__" last, no padding
#   dtypes.safetensors          small tensors stored as F16, BF16, I64, I32, I16, I8, U8 and BOOL
#   safetensors_values.txt      every stored value, one tensor per line:
#                               <file> <tensor> <shape> <values...>, each value the exact float64
#                               (Python repr) of the stored element
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0

DTYPES = {  # safetensors name -> (torch dtype, bytes per element)
    "F64": (torch.float64, 8), "F32": (torch.float32, 4), "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2), "I64": (torch.int64, 8), "I32": (torch.int32, 4),
    "I16": (torch.int16, 2), "I8": (torch.int8, 1), "U8": (torch.uint8, 1), "BOOL": (torch.bool, 1),
}
NAME_OF = {torch_dtype: name for name, (torch_dtype, _) in DTYPES.items()}
# The official writer's order: descending alignment as its Dtype enum lists them, then by name.
ENUM_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
              "F32", "F64", "I64", "U64"]


def seeded_model(dtype=torch.float32):
    torch.manual_seed(SEED)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sigmoid(), torch.nn.Linear(3, 2))
    return model.to(dtype)


def tensor_bytes(t):
    """Little-endian, row-major bytes of t (bfloat16 has no numpy dtype: go through int16 bits)."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    data = t.numpy()
    return data.astype(data.dtype.newbyteorder("<")).tobytes()


def official_bytes(tensors, metadata=None):
    """The bytes safetensors.torch.save_file writes for tensors (a dict name -> tensor)."""
    order = sorted(tensors, key=lambda n: (-ENUM_ORDER.index(NAME_OF[tensors[n].dtype]), n))
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in order:
        data = tensor_bytes(tensors[name])
        header[name] = {"dtype": NAME_OF[tensors[name].dtype], "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        chunks.append(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def unusual_bytes(tensors, metadata, data_order, key_order):
    """A valid file with data in data_order, header keys in key_order, metadata last, pretty JSON."""
    chunks, offsets, offset = [], {}, 0
    for name in data_order:
        data = tensor_bytes(tensors[name])
        offsets[name] = [offset, offset + len(data)]
        offset += len(data)
        chunks.append(data)
    header = {}
    for name in key_order:
        header[name] = {"shape": list(tensors[name].shape), "data_offsets": offsets[name],
                        "dtype": NAME_OF[tensors[name].dtype]}
    header["__metadata__"] = metadata
    text = json.dumps(header, indent=2).encode("utf-8")
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def load_file(path):
    """Reads a safetensors file into a dict name -> torch tensor, like safetensors.torch.load_file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > 100_000_000 or 8 + n > len(raw):
        raise ValueError(f"{path}: bad header length {n}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the header is not an object")
    header.pop("__metadata__", None)
    buffer = raw[8 + n:]
    out, end = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, stop = info["data_offsets"]
        torch_dtype, size = DTYPES[info["dtype"]]
        numel = 1
        for d in info["shape"]:
            numel *= d
        if begin != end or stop - begin != numel * size or stop > len(buffer):
            raise ValueError(f"{path}: bad data_offsets of {name}")
        end = stop
        chunk = bytearray(buffer[begin:stop])
        if torch_dtype == torch.bfloat16:
            t = torch.frombuffer(chunk, dtype=torch.int16).view(torch.bfloat16) if chunk else torch.empty(0, dtype=torch_dtype)
        else:
            t = torch.frombuffer(chunk, dtype=torch_dtype) if chunk else torch.empty(0, dtype=torch_dtype)
        out[name] = t.reshape(info["shape"])
    if end != len(buffer):
        raise ValueError(f"{path}: the data buffer is not fully covered")
    return out


def values_line(file, name, t):
    shape = "[" + ",".join(str(d) for d in t.shape) + "]"
    values = [repr(float(v)) for v in t.detach().to(torch.float64).flatten().tolist()]
    return " ".join([file, name, shape] + values)


def make():
    lines = ["# <file> <tensor> <shape> <values...>: written by make_safetensors_fixture.py; do not edit"]
    metadata = {"format": "pt"}

    sd32 = dict(seeded_model(torch.float32).state_dict())
    with open(os.path.join(HERE, "sequential_f32.safetensors"), "wb") as f:
        f.write(official_bytes(sd32, metadata))
    lines += [values_line("sequential_f32.safetensors", n, t) for n, t in sd32.items()]

    sd64 = dict(seeded_model(torch.float64).state_dict())
    blob = unusual_bytes(sd64, {"format": "pt", "note": "written by hand, \"quoted\" \u00e9"},
                         data_order=["2.bias", "0.weight", "2.weight", "0.bias"],
                         key_order=["2.weight", "0.bias", "2.bias", "0.weight"])
    with open(os.path.join(HERE, "sequential_f64.safetensors"), "wb") as f:
        f.write(blob)
    lines += [values_line("sequential_f64.safetensors", n, t) for n, t in sd64.items()]

    others = {
        "half": torch.tensor([[1.0, -2.5, 65504.0], [6.1035156e-05, 5.9604645e-08, -0.0]], dtype=torch.float16),
        "brain": torch.tensor([1.0, -3.140625, 1.0e38], dtype=torch.bfloat16),
        "long": torch.tensor([[-9007199254740992, 3], [42, -1]], dtype=torch.int64),
        "int": torch.tensor([-2147483648, 2147483647, 0], dtype=torch.int32),
        "short": torch.tensor([-32768, 32767], dtype=torch.int16),
        "byte": torch.tensor([-128, 127, 5], dtype=torch.int8),
        "ubyte": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "mask": torch.tensor([[True, False], [False, True]]),
        "num_batches_tracked": torch.tensor(7, dtype=torch.int64),
        "empty": torch.zeros(0, 3, dtype=torch.float16),
    }
    with open(os.path.join(HERE, "dtypes.safetensors"), "wb") as f:
        f.write(official_bytes(others))
    lines += [values_line("dtypes.safetensors", n, t) for n, t in others.items()]

    # The fixtures must read back through this script's own reader.
    for file, expected in [("sequential_f32.safetensors", sd32), ("sequential_f64.safetensors", sd64),
                           ("dtypes.safetensors", others)]:
        got = load_file(os.path.join(HERE, file))
        assert got.keys() == expected.keys(), file
        for k in expected:
            assert got[k].dtype == expected[k].dtype and torch.equal(got[k], expected[k]), (file, k)

    with open(os.path.join(HERE, "safetensors_values.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote the fixtures in", HERE)


def check(path):
    """Loads a file written by gradgraph into the seeded Sequential with strict=True."""
    state = load_file(path)
    dtypes = {t.dtype for t in state.values()}
    if len(dtypes) != 1:
        raise SystemExit(f"{path}: expected one dtype, found {dtypes}")
    dtype = dtypes.pop()
    model = seeded_model(dtype)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(state, strict=True)
    print(f"{path}: loaded {sorted(state)} ({dtype}) into Sequential(Linear(2,3), Sigmoid(), Linear(3,2)) "
          "with strict=True")
    x = torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=dtype)
    print("forward([[0.5, -1.0], [2.0, 0.25]]) =", model(x).tolist())
    same = all(torch.equal(state[k], reference[k]) for k in reference)
    print("values equal the seeded fixture model's:", same)
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    identical = raw == official_bytes(state, header.get("__metadata__"))
    print("byte-identical to the official writer's layout:", identical)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    elif len(sys.argv) == 1:
        make()
    else:
        raise SystemExit(__doc__ if __doc__ else "usage: make_safetensors_fixture.py [--check FILE]")
