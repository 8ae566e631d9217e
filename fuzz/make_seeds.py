#!/usr/bin/python3
"""Writes the hand-made seed inputs of fuzz/corpus/ (run from fuzz/). Inputs the fuzzer found and
regression inputs are added to the same folders by hand; this script only (re)writes its own."""
import gzip
import json
import os
import struct


def w(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(data)


# explain programs: the first byte picks text (0), --json (1) or --check (2)
programs = {
    "cs231n": (0, "q = x + y; f = q * z"),
    "micrograd": (1, "z = 2*x + 2 + x; q = relu(z) + z*x; h = relu(z*z); y = h + q + q*x"),
    "functions": (2, "a = exp(x)/(1+exp(x)); b = log(a) - sqrt(abs(y)); c = relu(b)*sigmoid(-x); "
                     "d = sin(c) + cos(c)*tanh(y)"),
    "powers": (0, "p = 2^3^2 - -x^2 + 2^-x^2; q = (p)^(1/3); r = .5e-1*q/0"),
    "lines": (1, "a = x*x;\nb = a + 1;\n\nc = b / (a - a);"),
    "errors": (0, "f = (x + * y"),
    "unicode": (0, "f = x \u00b7 y"),
}
for name, (mode, text) in programs.items():
    w("expr", name, bytes([mode]) + text.encode())

# CSV: the first byte picks the options (see fuzz_csv.cpp; 0: class ids in the last column, ',')
iris = ("sepal_length,sepal_width,petal_length,petal_width,label\n"
        "5.1,3.5,1.4,0.2,0\n7.0,3.2,4.7,1.4,1\n6.3,3.3,6.0,2.5,2\n")
w("csv", "iris", b"\x00" + iris.encode())
w("csv", "names", b"\x01" + b'a,b,species\n1,2,setosa\n3,4,"versi,color"\n5,6,"say ""hi"""\n')
w("csv", "values_crlf_bom", b"\x02" + b"\xef\xbb\xbfx;y;label\r\n 1 ; +2 ;0.5\r\n\r\n3;4e-3;-1e300\r\n")
w("csv", "tab_first", b"\x0f" + b"label\tx\n1\t2\n0\t3\n")
w("csv", "by_name", bytes([36]) + b"x,label,y\n1,1,2\n2,0,3\n")
w("csv", "bad_row", b"\x00" + b"a,b\n1,2,3\n")


# IDX: the first byte picks float64 (0) or float32 (1) output
def idx(code, dims, payload):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


u8 = idx(0x08, [2, 3], bytes(range(6)))
w("idx", "u8", b"\x00" + u8)
w("idx", "f64", b"\x01" + idx(0x0E, [2], struct.pack(">dd", 1.5, -2.25)))
w("idx", "i16_3d", b"\x00" + idx(0x0B, [1, 2, 2], struct.pack(">hhhh", -1, 2, -300, 4)))
w("idx", "f32", b"\x00" + idx(0x0D, [3], struct.pack(">fff", 0.5, float("inf"), -0.0)))
w("idx", "i32_i8", b"\x01" + idx(0x0C, [1], struct.pack(">i", -7)))
w("idx", "gzip", b"\x00" + gzip.compress(u8, mtime=0))
w("idx", "truncated", b"\x00" + idx(0x08, [4, 4], bytes(5)))

# safetensors: the test fixtures, and small files with metadata and other dtypes
for path in ["../tests/nn/data/dtypes.safetensors", "../tests/nn/data/sequential_f32.safetensors",
             "../tests/cli/data/train_init.safetensors"]:
    with open(path, "rb") as f:
        w("safetensors", os.path.basename(path).replace(".safetensors", ""), f.read())


def safetensors(entries, meta=None):
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, (dtype, shape, payload) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


w("safetensors", "small", safetensors({"w": ("F64", [2], struct.pack("<dd", 1, 2)), "b": ("BF16", [1], b"\x80\x3f"),
                                       "e": ("U8", [0], b"")}, {"format": "pt"}))
w("safetensors", "scalar_f16", safetensors({"s": ("F16", [], b"\x00\x3c")}))

# CLI: one argument a line, run in a folder holding d.csv and m.safetensors (see fuzz_cli.cpp)
cli = {
    "help": "--help",
    "summary": "summary\n--layers\n2,3,2\n--activation\ntanh",
    "dot": "dot\n--layers\n2,3,2\n-o\ng.dot\n--backward\n--render\nsvg",
    "explain": "explain\n--check\nq = x + y; f = q * z\nx=-2\ny=5\nz=-4",
    "train_csv": "train\n--data\nd.csv\n--layers\n2,4,3\n--epochs\n2\n--optimizer\nnadam\n--log\nl.jsonl\n"
                 "--save\ns.safetensors\n--split\n0.4\n--standardize",
    "train_dataset": "train\n--dataset\nspiral\n--samples\n12\n--layers\n2,3,3\n--epochs\n2\n--activation\n"
                     "leaky-relu\n--plots\np\n--dtype\nf32",
    "train_stop": "train\n--dataset\nxor\n--samples\n8\n--layers\n2,2,2\n--epochs\n3\n--stop-after\n1\n"
                  "--checkpoint\nc.safetensors\n--optimizer\nsgd\n--momentum\n0.5",
    "eval": "eval\n--model\nm.safetensors\n--data\nd.csv",
    "train_mse": "train\n--data\nd.csv\n--layers\n2,3,3\n--loss\nmse\n--epochs\n1\n--init\nm.safetensors\n"
                 "--batch-size\n2",
    "unknown": "train\n--no-such-option\n--layers\n2,2",
}
for name, args in cli.items():
    w("cli", name, args)
