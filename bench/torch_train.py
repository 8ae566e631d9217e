#!/usr/bin/python3
"""The PyTorch side of bench/train.cpp: the same workloads (models, batch sizes, dtypes, losses,
optimizers, steps) timed the same way, printing the same "result ..." line.

    bench/torch_train.py WORKLOAD [--batch N] [--dtype f32|f64] [--optim sgd|adam|adamw] [--threads N]
                                  [--seconds S] [--repeats R] [--epochs E] [--data DIR] [--steps N]
                                  [--images N] [--blas-threads] [--onednn-verbose]
    bench/torch_train.py --serve   # one JSON request per input line ({"workload": ..., "threads": ...})

--serve keeps one process (and one `import torch`, ~1.5 s of CPU) for many runs: bench/run starts
one server per PyTorch configuration and alternates requests with gradgraph's runs. Each request's
peak RSS is measured from a reset high-water mark (/proc/self/clear_refs). With "blas_threads": true
the OpenBLAS thread count is set too (torch.set_num_threads does not reach Debian's OpenBLAS).
Each run prints a "kernels: ..." line (the BLAS and its core type, ATen's CPU capability, oneDNN's
version, the vector-math library loaded); with "onednn_verbose": true (and a few "steps") it also
prints the "onednn_verbose,..." lines of the primitives oneDNN ran, as bench_libtorch_train does
with DNNL_VERBOSE=1.
"""
import argparse
import ctypes
import gzip
import json
import os
import re
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def status_mib(field):
    with open("/proc/self/status") as f:
        m = re.search(field + r":\s+(\d+)", f.read())
    return int(m.group(1)) / 1024.0 if m else 0.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def blas_library():
    """The BLAS shared library torch loaded, opened with ctypes, and its file name."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f
                 if re.search(r"/lib(open)?blas[^/]*\.so[.0-9]*$", line.rstrip())}
    for p in sorted(paths):
        if os.path.exists(p):
            lib = ctypes.CDLL(p)
            return lib, os.path.realpath(p)
    return None, "none"


BLAS, BLAS_PATH = blas_library()


def blas_description():
    if BLAS is not None and hasattr(BLAS, "openblas_get_corename"):
        BLAS.openblas_get_corename.restype = ctypes.c_char_p
        return "OpenBLAS " + BLAS.openblas_get_corename().decode()
    return os.path.basename(os.path.dirname(BLAS_PATH)) + "/" + os.path.basename(BLAS_PATH)


def kernels_line():
    """Which kernels this process's torch runs, in bench_libtorch_train's words."""
    config = torch.__config__.show()
    capability = re.search(r"CPU capability usage:\s*(\S+)", config)
    onednn = re.search(r"MKL-DNN (v[0-9.]+)", config)
    with open("/proc/self/maps") as f:
        sleef = "libsleef" in f.read()
    products = blas_description()
    if products.startswith("OpenBLAS "):
        products = "OpenBLAS (%s kernels)" % products.split(" ", 1)[1]
    return "kernels: products: %s; ATen CPU capability: %s; oneDNN %s; elementwise math: %s" % (
        products, capability.group(1) if capability else "unknown", onednn.group(1) if onednn else "not built in",
        "SLEEF (vectorised)" if sleef else "no SLEEF loaded")


def with_onednn_verbose(fn):
    """fn() with oneDNN's verbose mode on; its lines (written by C to file descriptor 1) are caught
    in a file and printed after, so they cannot interleave with this process's own output."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                result = fn()
        finally:
            libc.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        lines = [l for l in tmp.read().splitlines() if l.startswith(("onednn_verbose", "dnnl_verbose"))]
    print("\n".join(lines), flush=True)
    return result


def set_threads(n, blas_threads):
    """n threads for torch (and OpenBLAS with blas_threads); n <= 0 keeps the defaults."""
    if n <= 0:
        return
    torch.set_num_threads(n)
    if blas_threads and BLAS is not None and hasattr(BLAS, "openblas_set_num_threads"):
        BLAS.openblas_set_num_threads(n)


def time_steps(step, seconds, repeats, steps=0):
    """Best and median seconds per step, as bench_util.hpp's time_steps; with steps > 0, that many
    steps timed once (as bench_train --steps)."""
    if steps > 0:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        t = (time.perf_counter() - t0) / steps
        return t, t, steps
    t0 = time.perf_counter()
    warm = 0
    while warm < 3 or time.perf_counter() - t0 < 0.05:
        step()
        warm += 1
    per_step = (time.perf_counter() - t0) / warm
    steps = max(1, int(seconds / repeats / per_step))
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        runs.append((time.perf_counter() - t0) / steps)
    runs.sort()
    return runs[0], runs[len(runs) // 2], steps


def make_optimizer(model, name):
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=1e-3)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=1e-3)
    return torch.optim.SGD(model.parameters(), lr=0.01)


def mlp(widths, dtype):
    layers = []
    for i in range(len(widths) - 1):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(widths[i], widths[i + 1]))
    return nn.Sequential(*layers).to(dtype)


def cnn(dtype):
    return nn.Sequential(nn.Conv2d(1, 16, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 10)).to(dtype)


# The sequence models' rows (issue 13): bench/train_options.hpp's SequenceSizes.
VOCAB = 65
GPT_LAYERS, GPT_EMBEDDING, GPT_HEADS, GPT_CONTEXT = 4, 128, 4, 128
LSTM_LAYERS, LSTM_EMBEDDING, LSTM_HIDDEN, LSTM_SEQUENCE = 2, 128, 256, 64


class GPT(nn.Module):
    """gradgraph's nn::lm::GPT (examples/char_lm/char_lm.py's, dropout 0): token and position
    embeddings, pre-norm nn.TransformerEncoderLayer blocks (GELU, 4E) with a causal mask, a final
    LayerNorm and the output tied to the token embedding."""

    def __init__(self, dtype):
        super().__init__()
        e = GPT_EMBEDDING
        self.token_embedding = nn.Embedding(VOCAB, e)
        self.position_embedding = nn.Embedding(GPT_CONTEXT, e)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(e, GPT_HEADS, 4 * e, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True) for _ in range(GPT_LAYERS))
        self.norm = nn.LayerNorm(e)
        self.to(dtype)
        self.mask = nn.Transformer.generate_square_subsequent_mask(GPT_CONTEXT).to(dtype)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.token_embedding(idx) + self.position_embedding(torch.arange(t))
        for b in self.blocks:
            x = b(x, src_mask=self.mask[:t, :t])
        return F.linear(self.norm(x), self.token_embedding.weight)


class LSTMModel(nn.Module):
    """gradgraph's nn::lm::Recurrent with an LSTM: embedding, nn.LSTM (batch_first), Linear head."""

    def __init__(self, dtype):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, LSTM_EMBEDDING)
        self.rnn = nn.LSTM(LSTM_EMBEDDING, LSTM_HIDDEN, LSTM_LAYERS, batch_first=True)
        self.head = nn.Linear(LSTM_HIDDEN, VOCAB)
        self.to(dtype)

    def forward(self, idx):
        return self.head(self.rnn(self.embedding(idx))[0])


class RecurrentModel(nn.Module):
    """gradgraph's nn::lm::Recurrent with a GRU or a tanh RNN (the gru and rnn workloads: the lstm
    workload's model and sizes): embedding, nn.GRU or nn.RNN (batch_first), Linear head."""

    def __init__(self, layer, dtype):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, LSTM_EMBEDDING)
        self.rnn = layer(LSTM_EMBEDDING, LSTM_HIDDEN, LSTM_LAYERS, batch_first=True)
        self.head = nn.Linear(LSTM_HIDDEN, VOCAB)
        self.to(dtype)

    def forward(self, idx):
        return self.head(self.rnn(self.embedding(idx))[0])


def language_model_step(o, model, length):
    """One training step of a character language model on random tokens, cross-entropy over every
    position (as bench/train.cpp's language_model_step)."""
    x = torch.randint(VOCAB, (o["batch"], length))
    y = torch.randint(VOCAB, (o["batch"], length))
    return run_steps(o, model, x, lambda out: F.cross_entropy(out.reshape(-1, VOCAB), y.reshape(-1)))


def run_steps(o, model, x, loss_of):
    opt = make_optimizer(model, o["optim"])

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model(x))
        loss.backward()
        opt.step()

    return time_steps(step, o["seconds"], o["repeats"], o["steps"])


def read_idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_fashion(directory, train, dtype):
    prefix = "train" if train else "t10k"
    x = read_idx(os.path.join(directory, prefix + "-images-idx3-ubyte.gz"), 16)
    y = read_idx(os.path.join(directory, prefix + "-labels-idx1-ubyte.gz"), 8)
    x = torch.from_numpy(x.reshape(-1, 784).copy()).to(dtype) / 255.0
    return x, torch.from_numpy(y.astype(np.int64))


def fashion(o, dtype):
    torch.manual_seed(0)
    model = mlp([784, 128, 10], dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    # As bench/train.cpp: the first epoch includes reading the data, later ones train on it.
    rss = []
    t0 = time.perf_counter()
    x, y = load_fashion(o["data"], True, dtype)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=128, shuffle=True)
    for e in range(o["epochs"]):
        if e > 0:
            t0 = time.perf_counter()
        for bx, by in loader:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(bx), by)
            loss.backward()
            opt.step()
        if e == 0:
            first = time.perf_counter() - t0
        rss.append(status_mib("VmRSS"))
    tx, ty = load_fashion(o["data"], False, dtype)
    with torch.no_grad():
        acc = (model(tx).argmax(1) == ty).double().mean().item()
    extra = {"test_accuracy": acc, "rss_first_epoch_mib": rss[0], "rss_last_epoch_mib": rss[-1]}
    return (first, first, 1), extra


# The Fashion-MNIST CNN's epoch (issue 16 item 2), as bench/train.cpp's fashion_cnn.
def fashion_cnn(o):
    """examples/pytorch/fashion_mnist.py's cnn model and loop (Adam 1e-3, batches of 128 in a random
    order, the test set evaluated 1000 images at a time under no_grad), timed from before loading the
    data to after the evaluation: one epoch over the first o["images"] training images, then the 10,000
    test images (with steps: that many batches and the first 1000 test images)."""
    o["batch"], o["optim"] = 128, "adam"
    t0, cpu0 = time.perf_counter(), time.process_time()
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = load_fashion(o["data"], True, torch.float32)
    tx, ty = load_fashion(o["data"], False, torch.float32)
    images = min(o["images"], o["steps"] * 128) if o["steps"] > 0 else o["images"]
    images = min(images, len(x))
    tests = 1000 if o["steps"] > 0 else len(tx)
    x, y = x[:images].reshape(-1, 1, 28, 28), y[:images]
    tx, ty = tx[:tests].reshape(-1, 1, 28, 28), ty[:tests]
    cpu_loaded = time.process_time()
    model.train()
    order = torch.randperm(images)
    for i in range(0, images, 128):
        idx = order[i:i + 128]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    cpu_trained = time.process_time()
    model.eval()
    with torch.no_grad():
        correct = sum((model(tx[i:i + 1000]).argmax(1) == ty[i:i + 1000]).sum().item()
                      for i in range(0, tests, 1000))
    seconds, cpu_end = time.perf_counter() - t0, time.process_time()
    return (seconds, seconds, 1), {
        "test_accuracy": correct / tests, "images": images, "cpu_ms": (cpu_end - cpu0) * 1e3,
        "load_cpu_ms": (cpu_loaded - cpu0) * 1e3, "train_cpu_ms": (cpu_trained - cpu_loaded) * 1e3,
        "eval_cpu_ms": (cpu_end - cpu_trained) * 1e3}


def run(o):
    torch.manual_seed(1)
    dtype = torch.float64 if o["dtype"] == "f64" else torch.float32
    set_threads(o["threads"], o.get("blas_threads", False))
    reset_peak_rss()
    print(kernels_line(), flush=True)
    if o["onednn_verbose"]:
        fields, summary = with_onednn_verbose(lambda: measure(o, dtype))
    else:
        fields, summary = measure(o, dtype)
    print(summary, file=sys.stderr)
    print("result " + " ".join("%s=%s" % (k, ("%.6f" % v) if isinstance(v, float) else v)
                               for k, v in fields.items()), flush=True)


def measure(o, dtype):
    """Runs the workload; returns the result line's fields and a readable summary."""
    w, b, extra = o["workload"], o["batch"], {}
    if w == "mlp_tiny":
        model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 2)).to(dtype)
        x = torch.tensor([[0.5, -0.3]], dtype=dtype)
        t = torch.tensor([[1.0, 0.0]], dtype=dtype)
        timing = run_steps(o, model, x, lambda out: F.mse_loss(out, t))
    elif w in ("mlp_mnist", "mlp_big"):
        widths = [784, 128, 10] if w == "mlp_mnist" else [1024, 1024, 1024, 10]
        model = mlp(widths, dtype)
        x = torch.rand(b, widths[0], dtype=dtype)
        y = torch.randint(widths[-1], (b,))
        timing = run_steps(o, model, x, lambda out: F.cross_entropy(out, y))
    elif w == "cnn":
        model = cnn(dtype)
        x = torch.rand(b, 1, 28, 28, dtype=dtype)
        y = torch.randint(10, (b,))
        timing = run_steps(o, model, x, lambda out: F.cross_entropy(out, y))
    elif w == "fashion":
        timing, extra = fashion(o, dtype)
    elif w == "fashion_cnn":
        timing, extra = fashion_cnn(o)
    elif w == "gpt":
        timing = language_model_step(o, GPT(dtype), GPT_CONTEXT)
    elif w == "lstm":
        timing = language_model_step(o, LSTMModel(dtype), LSTM_SEQUENCE)
    elif w in ("gru", "rnn"):
        timing = language_model_step(o, RecurrentModel(nn.GRU if w == "gru" else nn.RNN, dtype), LSTM_SEQUENCE)
    else:
        raise SystemExit("torch_train.py: unknown workload " + w)
    best, median, steps = timing
    fields = {"side": "pytorch", "workload": w, "step_ms": best * 1e3, "median_ms": median * 1e3,
              "peak_rss_mib": status_mib("VmHWM"), "threads": torch.get_num_threads(),
              "blas": blas_description().replace(" ", "_")}
    fields.update(extra)
    summary = "%s batch=%d %s %s threads=%d: best %.4f ms/step, median %.4f ms (%d steps x %d)" % (
        w, b, o["dtype"], o["optim"], torch.get_num_threads(), best * 1e3, median * 1e3, steps, o["repeats"])
    return fields, summary


DEFAULTS = {"batch": 64, "dtype": "f32", "optim": "sgd", "threads": 1, "seconds": 1.0, "repeats": 5,
            "epochs": 1, "data": "/usr/share/datasets/fashion-mnist", "steps": 0, "blas_threads": False,
            "onednn_verbose": False, "images": 10000}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        print("ready blas=%s" % blas_description().replace(" ", "_"), flush=True)
        for line in sys.stdin:
            if line.strip():
                run({**DEFAULTS, **json.loads(line)})
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workload")
    for k, v in DEFAULTS.items():
        if isinstance(v, bool):
            p.add_argument("--" + k.replace("_", "-"), dest=k, action="store_true")
        else:
            p.add_argument("--" + k, type=type(v), default=v)
    run(vars(p.parse_args()))


if __name__ == "__main__":
    main()
