#!/usr/bin/python3
"""PyTorch twin of examples/fashion_mnist_mlp.cpp and fashion_mnist_cnn.cpp: the same models, optimizer,
learning-rate schedule, batch size, epochs and float32, on Debian's dataset-fashion-mnist, with the
same thread count, so that accuracy and seconds per epoch can be compared on one machine.

    /usr/bin/python3 examples/pytorch/fashion_mnist.py mlp --epochs 30 --cosine --threads 1
    /usr/bin/python3 examples/pytorch/fashion_mnist.py cnn --epochs 8 --threads 1
"""
import argparse
import gzip
import time

import numpy as np
import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (gzip'd) as a numpy array of its dimensions."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(train, limit):
    """Images scaled to [0, 1] as float32 [n, 784] and labels as int64 [n], the first `limit` of them."""
    prefix = "train" if train else "t10k"
    x = read_idx(f"{DATA}/{prefix}-images-idx3-ubyte.gz").reshape(-1, 784)[:limit]
    y = read_idx(f"{DATA}/{prefix}-labels-idx1-ubyte.gz")[:limit]
    return torch.tensor(x, dtype=torch.float32) / 255, torch.tensor(y, dtype=torch.int64)


def model_for(kind):
    """The examples' models, layer for layer."""
    if kind == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=["mlp", "cnn"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=60000, help="use only the first LIMIT training and test images")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cosine", action="store_true",
                   help="anneal the learning rate to 0 over the epochs (CosineAnnealingLR, as the MLP example)")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x_train, y_train = load(True, a.limit)
    x_test, y_test = load(False, a.limit)
    if a.model == "cnn":
        x_train, x_test = x_train.reshape(-1, 1, 28, 28), x_test.reshape(-1, 1, 28, 28)
    model = model_for(a.model)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs) if a.cosine else None
    print(f"PyTorch {torch.__version__}, {a.threads} thread(s): {a.model}, Adam lr {a.lr}, batch {a.batch_size}, "
          f"{len(x_train)} training images, {len(x_test)} test images")
    times = []
    for epoch in range(1, a.epochs + 1):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(x_train))
        total = 0.0
        for i in range(0, len(x_train), a.batch_size):
            idx = order[i:i + a.batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        times.append(time.perf_counter() - start)
        if schedule:
            schedule.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum().item()
                          for i in range(0, len(x_test), 1000))
        print(f"  epoch {epoch:3d}  loss {total / len(x_train):.4f}  test accuracy {correct / len(x_test):.4f}  "
              f"{times[-1]:.1f} s", flush=True)
    print(f"test accuracy {correct / len(x_test):.4f}; seconds per epoch: median {sorted(times)[len(times) // 2]:.1f}")


if __name__ == "__main__":
    main()
