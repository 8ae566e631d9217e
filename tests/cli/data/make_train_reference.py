#!/usr/bin/env python3
"""PyTorch's per-step losses for `gradgraph train`, for tests/cli/test_train.cpp.

Run with Debian's PyTorch:  /usr/bin/python3 tests/cli/data/make_train_reference.py
Writes, next to this script:
  train_small.csv          24 examples, 3 features, 3 classes (made here, seeded)
  train_init.safetensors   initial weights of Sequential(Linear(3,5), Tanh(), Linear(5,3)), float64
  train_reference.txt      one line per optimizer configuration: "<gradgraph flags> : loss loss ..."
  train_binary.csv         24 examples, 3 features, classes 0 and 1 (made here, seeded)
  train_binary_init.safetensors  initial weights of Sequential(Linear(3,5), Tanh(), Linear(5,1))
  train_binary_reference.txt     as train_reference.txt for one output unit (--layers 3,5,1), each
                           line ending with " : ACCURACY" of the trained model (class 1 where
                           sigmoid(output) > 0.5): --loss bce is BCEWithLogitsLoss, --loss mse the
                           mean squared error of sigmoid(output) against the 0/1 targets
The runs match `gradgraph train --data train_small.csv --layers 3,5,3 --activation tanh
--init train_init.safetensors --no-shuffle --batch-size 8 --epochs 3 <flags>`: batches in file
order, cross-entropy (mean), the loss recorded before each step's update, float64 throughout.
NAdam uses the documented algorithm (the 1.13 bug fixed as in tests/nn/data/make_optim_reference.py).
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "nn", "data"))
import make_optim_reference  # noqa: E402  (importing it installs the NAdam fix)
from make_safetensors_fixture import official_bytes  # noqa: E402

torch.set_default_dtype(torch.float64)
O = torch.optim
CONFIGS = [  # gradgraph flags, optimizer, full batch?
    ("--optimizer gd --lr 0.5", lambda p: O.SGD(p, lr=0.5), True),
    ("--optimizer sgd --lr 0.1", lambda p: O.SGD(p, lr=0.1), False),
    ("--optimizer momentum --lr 0.1", lambda p: O.SGD(p, lr=0.1, momentum=0.9), False),
    ("--optimizer nesterov --lr 0.1", lambda p: O.SGD(p, lr=0.1, momentum=0.9, nesterov=True), False),
    ("--optimizer sgd --lr 0.1 --momentum 0.5 --weight-decay 0.01",
     lambda p: O.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.01), False),
    ("--optimizer rmsprop --lr 0.01", lambda p: O.RMSprop(p, lr=0.01), False),
    ("--optimizer adam --lr 0.01", lambda p: O.Adam(p, lr=0.01), False),
    ("--optimizer adam --lr 0.01 --beta1 0.8 --beta2 0.99 --eps 1e-6",
     lambda p: O.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6), False),
    ("--optimizer adamw --lr 0.01", lambda p: O.AdamW(p, lr=0.01), False),
    ("--optimizer adagrad --lr 0.1 --lr-decay 0.01", lambda p: O.Adagrad(p, lr=0.1, lr_decay=0.01), False),
    ("--optimizer adadelta", lambda p: O.Adadelta(p), False),
    ("--optimizer adadelta --rho 0.95", lambda p: O.Adadelta(p, rho=0.95), False),
    ("--optimizer nadam --lr 0.01", lambda p: O.NAdam(p, lr=0.01), False),
    ("--optimizer nadam --lr 0.01 --momentum-decay 0.01", lambda p: O.NAdam(p, lr=0.01, momentum_decay=0.01), False),
]


def write_data(csv, init_file, x, y, init_seed, outputs):
    """Writes the CSV (features a, b, c and the class) and the initial weights of
    Sequential(Linear(3, 5), Tanh(), Linear(5, outputs)) made after torch.manual_seed(init_seed)."""
    with open(os.path.join(HERE, csv), "w") as f:
        f.write("a,b,c,label\n")
        for r, t in zip(x, y):
            f.write(",".join(repr(float(v)) for v in r) + f",{int(t)}\n")
    torch.manual_seed(init_seed)
    init = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, outputs))
    with open(os.path.join(HERE, init_file), "wb") as f:
        f.write(official_bytes({k: v.detach() for k, v in init.state_dict().items()}))
    return init


def run(init, make, loss_fn, x, y, batch):
    """3 epochs in file order from the initial weights: the trained model and each step's loss."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(),
                                torch.nn.Linear(5, init[2].out_features))
    model.load_state_dict(init.state_dict())
    opt = make(model.parameters())
    losses = []
    for _ in range(3):
        for i in range(0, 24, batch):
            opt.zero_grad()
            loss = loss_fn(model(x[i:i + batch]), y[i:i + batch])
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return model, losses


def main():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(24, 3, generator=g)
    y = torch.tensor([int((r[0] + 0.5 * r[1] > 0)) + int(r[2] > 0.5) for r in x])
    init = write_data("train_small.csv", "train_init.safetensors", x, y, 3, 3)
    lines = []
    for flags, make, full in CONFIGS:
        _, losses = run(init, make, F.cross_entropy, x, y, 24 if full else 8)
        lines.append(flags + " : " + " ".join(repr(v) for v in losses))
    with open(os.path.join(HERE, "train_reference.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


BINARY_CONFIGS = [  # gradgraph flags, optimizer, loss of (output, 0/1 target column)
    ("--loss bce --optimizer adam --lr 0.05", lambda p: O.Adam(p, lr=0.05),
     F.binary_cross_entropy_with_logits),
    ("--loss bce --optimizer sgd --lr 0.5", lambda p: O.SGD(p, lr=0.5), F.binary_cross_entropy_with_logits),
    ("--loss mse --optimizer adam --lr 0.05", lambda p: O.Adam(p, lr=0.05),
     lambda out, t: F.mse_loss(torch.sigmoid(out), t)),
    ("--loss mse --optimizer momentum --lr 0.5", lambda p: O.SGD(p, lr=0.5, momentum=0.9),
     lambda out, t: F.mse_loss(torch.sigmoid(out), t)),
]


def binary():
    """One logistic output unit for two classes: the course's 2-3-1 network, on 3 features."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(24, 3, generator=g)
    y = (x[:, 0] * x[:, 1] + 0.3 * x[:, 2] > 0).to(torch.float64)
    init = write_data("train_binary.csv", "train_binary_init.safetensors", x, y, 4, 1)
    lines = []
    for flags, make, loss_fn in BINARY_CONFIGS:
        model, losses = run(init, make, lambda out, t: loss_fn(out, t[:, None]), x, y, 8)
        with torch.no_grad():
            accuracy = ((torch.sigmoid(model(x))[:, 0] > 0.5).to(torch.float64) == y).double().mean().item()
        lines.append(flags + " : " + " ".join(repr(v) for v in losses) + " : " + repr(accuracy))
    with open(os.path.join(HERE, "train_binary_reference.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
    binary()
