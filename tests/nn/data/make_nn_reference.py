#!/usr/bin/env python3
"""Reference numbers for gradgraph's layers and losses, computed with PyTorch (float64).

Run with Debian's PyTorch:  /usr/bin/python3 tests/nn/data/make_nn_reference.py > tests/nn/data/nn_reference.txt
Each line: `name dim0 dim1 ... : v0 v1 ...` (row-major, repr precision). tests/nn/test_layers.cpp
reads the inputs from here, runs the same computation and compares outputs and gradients.
"""
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
g = torch.Generator().manual_seed(1234)


def rnd(*shape):
    return torch.randn(*shape, generator=g)


def emit(name, t):
    t = t.detach().to(torch.float64)
    dims = " ".join(str(d) for d in t.shape)
    vals = " ".join(repr(float(v)) for v in t.reshape(-1))
    print(f"{name} {dims} : {vals}")


def weighted_backward(name, y, inputs):
    """loss = sum(y * r) with a random r of y's shape; emits r and the inputs' gradients."""
    r = rnd(*y.shape)
    emit(name + ".r", r)
    (y * r).sum().backward()
    for k, v in inputs.items():
        emit(f"{name}.grad.{k}", v.grad)


# Linear
x, w, b = rnd(4, 3).requires_grad_(), rnd(2, 3).requires_grad_(), rnd(2).requires_grad_()
for k, v in dict(x=x, w=w, b=b).items():
    emit("linear." + k, v)
y = F.linear(x, w, b)
emit("linear.y", y)
weighted_backward("linear", y, dict(x=x, w=w, b=b))

# Conv2d 3 -> 4 channels, kernel 3, stride 2, padding 1
x, w, b = rnd(2, 3, 7, 7).requires_grad_(), rnd(4, 3, 3, 3).requires_grad_(), rnd(4).requires_grad_()
for k, v in dict(x=x, w=w, b=b).items():
    emit("conv." + k, v)
y = F.conv2d(x, w, b, stride=2, padding=1)
emit("conv.y", y)
weighted_backward("conv", y, dict(x=x, w=w, b=b))

# Pooling (no ties: random inputs)
for name, fn in [("maxpool2", lambda t: F.max_pool2d(t, 2)),
                 ("maxpool3s2p1", lambda t: F.max_pool2d(t, 3, stride=2, padding=1)),
                 ("avgpool3s2p1", lambda t: F.avg_pool2d(t, 3, stride=2, padding=1))]:
    x = rnd(2, 3, 7, 7).requires_grad_()
    emit(name + ".x", x)
    y = fn(x)
    emit(name + ".y", y)
    weighted_backward(name, y, dict(x=x))

# BatchNorm2d(3) and BatchNorm1d(3): one training step, then eval
for name, shape, mod in [("bn2d", (4, 3, 5, 5), torch.nn.BatchNorm2d(3)), ("bn1d", (6, 3), torch.nn.BatchNorm1d(3))]:
    with torch.no_grad():
        mod.weight.copy_(rnd(3))
        mod.bias.copy_(rnd(3))
    x = rnd(*shape).requires_grad_()
    emit(name + ".x", x)
    emit(name + ".weight", mod.weight)
    emit(name + ".bias", mod.bias)
    mod.train()
    y = mod(x)
    emit(name + ".y", y)
    weighted_backward(name, y, dict(x=x, weight=mod.weight, bias=mod.bias))
    emit(name + ".running_mean", mod.running_mean)
    emit(name + ".running_var", mod.running_var)
    mod.eval()
    emit(name + ".y_eval", mod(x))

# Losses: value (mean, sum, none) and the input's gradient of the mean
logits = rnd(5, 4)
target = torch.tensor([0, 3, 1, 1, 2])
probs_target = torch.softmax(rnd(5, 4), 1)
emit("loss.logits", logits)
emit("loss.target", target)
emit("loss.probs_target", probs_target)
p = torch.sigmoid(rnd(5, 4))
y01 = (rnd(5, 4) > 0).to(torch.float64)
emit("loss.p", p)
emit("loss.y01", y01)
mse_target = rnd(5, 4)
emit("loss.mse_target", mse_target)
cases = {
    "cross_entropy": (logits, lambda t, red: F.cross_entropy(t, target, reduction=red)),
    "cross_entropy_probs": (logits, lambda t, red: F.cross_entropy(t, probs_target, reduction=red)),
    "nll": (logits, lambda t, red: F.nll_loss(torch.log_softmax(t, 1), target, reduction=red)),
    "mse": (logits, lambda t, red: F.mse_loss(t, mse_target, reduction=red)),
    "bce": (p, lambda t, red: F.binary_cross_entropy(t, y01, reduction=red)),
    "bce_logits": (logits, lambda t, red: F.binary_cross_entropy_with_logits(t, y01, reduction=red)),
}
for name, (inp, fn) in cases.items():
    for red in ("mean", "sum", "none"):
        emit(f"loss.{name}.{red}", fn(inp, red))
    t = inp.clone().requires_grad_()
    fn(t, "mean").backward()
    emit(f"loss.{name}.grad", t.grad)

# GELU, exact and with the tanh approximation: random inputs and both tails (where erf and tanh saturate)
x = torch.cat([rnd(2, 5) * 2, torch.tensor([[-7.0, -3.0, 0.0, 3.0, 7.0]])])
for approximate in ("none", "tanh"):
    name = f"gelu_{approximate}"
    xg = x.clone().requires_grad_()
    emit(name + ".x", xg)
    y = torch.nn.GELU(approximate=approximate)(xg)
    emit(name + ".y", y)
    weighted_backward(name, y, dict(x=xg))
