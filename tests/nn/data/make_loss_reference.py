#!/usr/bin/env python3
"""Reference numbers for gradgraph's classification and regression losses beyond the basic cases of
make_nn_reference.py, computed with PyTorch in float64: cross_entropy and nll_loss on [N, C, d1, ...],
[N, C] and unbatched [C] inputs with ignore_index, label_smoothing and class weights; probabilities as
targets; binary_cross_entropy at probabilities of exactly 0 and 1; mse_loss broadcasting, and with a
target that requires grad, with second derivatives.

Run with Debian's PyTorch:
    /usr/bin/python3 tests/nn/data/make_loss_reference.py > tests/nn/data/loss_reference.txt
Each line: `name dim0 ... : v0 v1 ...` (row-major, repr precision). For each case <c> and reduction
<r> (mean, sum, none): <c>.<r> the loss, <c>.<r>.grad the gradient of sum(loss * <c>.w) with respect
to the input (w = 1 for a reduced loss). tests/nn/test_losses.cpp runs the same cases.
"""
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
g = torch.Generator().manual_seed(4321)


def rnd(*shape):
    return torch.randn(*shape, generator=g)


def emit(name, t):
    t = torch.as_tensor(t).detach().to(torch.float64)
    dims = " ".join(str(d) for d in t.shape)
    vals = " ".join(repr(float(v)) for v in t.reshape(-1))
    print(f"{name} {dims} : {vals}")


def run(name, x, fn):
    """fn(input, reduction) for each reduction: the loss and the input's gradient."""
    for red in ("mean", "sum", "none"):
        t = x.clone().requires_grad_()
        loss = fn(t, red)
        emit(f"{name}.{red}", loss)
        w = torch.randn(loss.shape, generator=g) if red == "none" else torch.tensor(1.0)
        if red == "none":
            emit(f"{name}.{red}.w", w)
        (loss * w).sum().backward()
        emit(f"{name}.{red}.grad", t.grad)


# Class ids with ignore_index (the default -100, or 1) among them; inputs of every rank.
SHAPES = {"nd": (2, 3, 2, 3), "2d": (5, 4), "1d": (4,)}
weight = {C: torch.rand(C, generator=g) + 0.5 for C in (3, 4)}
for key, shape in SHAPES.items():
    C = shape[0] if len(shape) == 1 else shape[1]
    x = rnd(*shape)
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    target = torch.randint(0, C, tshape, generator=g)
    emit(f"{key}.x", x)
    emit(f"{key}.weight", weight[C])
    for ii in (-100, 1):
        target = target.clone()
        if len(shape) > 1:  # one target is ignore_index; with ignore_index 1, so are the 1s
            target.view(-1)[1] = ii
        emit(f"{key}.target.ii{ii}", target)
        for use_w in (0, 1):
            w = weight[C] if use_w else None
            for ls in (0.0, 0.2):
                run(f"{key}.ce.ii{ii}.w{use_w}.ls{ls}", x,
                    lambda t, red: F.cross_entropy(t, target, weight=w, ignore_index=ii, reduction=red,
                                                   label_smoothing=ls))
            run(f"{key}.nll.ii{ii}.w{use_w}", x,
                lambda t, red: F.nll_loss(torch.log_softmax(t, 0 if len(shape) == 1 else 1), target, weight=w,
                                          ignore_index=ii, reduction=red))

# Every target ignored: the mean is 0/0 (nan), the sum 0.
x = rnd(3, 4)
emit("all_ignored.x", x)
emit("all_ignored.ce.mean", F.cross_entropy(x, torch.full((3,), -100)))

# Probabilities as targets, [N, C, d] and [N, C], with label smoothing and weights.
for key, shape in {"pnd": (2, 3, 4), "p2d": (5, 4)}.items():
    C = shape[1]
    x = rnd(*shape)
    p = torch.softmax(rnd(*shape), 1)
    emit(f"{key}.x", x)
    emit(f"{key}.target", p)
    emit(f"{key}.weight", weight[C])
    for use_w in (0, 1):
        w = weight[C] if use_w else None
        for ls in (0.0, 0.2):
            run(f"{key}.ce.w{use_w}.ls{ls}", x,
                lambda t, red: F.cross_entropy(t, p, weight=w, reduction=red, label_smoothing=ls))

# binary_cross_entropy at probabilities 0 and 1 (the log clamped at -100; the gradient
# (p - y) / max(p (1 - p), 1e-12)), and inside.
p = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.3, 0.9, 1e-30])
y = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.25, 0.5, 0.2, 1.0, 0.0])
emit("bce.x", p)
emit("bce.target", y)
run("bce", p, lambda t, red: F.binary_cross_entropy(t, y, reduction=red))

# mse_loss broadcasting input [3, 1] against target [3] (PyTorch warns and broadcasts to [3, 3]),
# and input [4] against target [2, 4].
for key, (si, st) in {"mse_a": ((3, 1), (3,)), "mse_b": ((4,), (2, 4))}.items():
    x, t = rnd(*si), rnd(*st)
    emit(f"{key}.x", x)
    emit(f"{key}.target", t)
    run(key, x, lambda v, red: F.mse_loss(v, t, reduction=red))

# mse_loss with a target that requires grad too, broadcasting ([3, 1] against [3]) and not ([2, 3]):
# per reduction r, <c>.<r> the loss, <c>.<r>.grad.x and .grad.target the gradients of sum(loss * w)
# (w = <c>.<r>.w for none, 1 otherwise), and second derivatives through them: <c>.<r>.gg.x and
# .gg.target, the gradients of sum(grad.x * <c>.<r>.rx) + sum(grad.target * <c>.<r>.rt).
for key, (si, st) in {"mse_c": ((3, 1), (3,)), "mse_d": ((2, 3), (2, 3))}.items():
    x, t = rnd(*si), rnd(*st)
    emit(f"{key}.x", x)
    emit(f"{key}.target", t)
    for red in ("mean", "sum", "none"):
        xv, tv = x.clone().requires_grad_(), t.clone().requires_grad_()
        loss = F.mse_loss(xv, tv, reduction=red)
        emit(f"{key}.{red}", loss)
        w = torch.randn(loss.shape, generator=g) if red == "none" else torch.tensor(1.0)
        if red == "none":
            emit(f"{key}.{red}.w", w)
        gx, gt = torch.autograd.grad((loss * w).sum(), (xv, tv), create_graph=True)
        emit(f"{key}.{red}.grad.x", gx)
        emit(f"{key}.{red}.grad.target", gt)
        rx, rt = torch.randn(si, generator=g), torch.randn(st, generator=g)
        emit(f"{key}.{red}.rx", rx)
        emit(f"{key}.{red}.rt", rt)
        hx, ht = torch.autograd.grad((gx * rx).sum() + (gt * rt).sum(), (xv, tv))
        emit(f"{key}.{red}.gg.x", hx)
        emit(f"{key}.{red}.gg.target", ht)
