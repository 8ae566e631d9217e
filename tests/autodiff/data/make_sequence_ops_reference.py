#!/usr/bin/env python3
"""Reference values of the sequence-model ops (argmax, tril, triu, masked_fill, cumsum, split, chunk,
scaled_dot_product_attention by PyTorch 2's documented definition: Debian's PyTorch 1.13 has no such
function), computed with PyTorch.

Run with Debian's PyTorch:
    /usr/bin/python3 tests/autodiff/data/make_sequence_ops_reference.py > tests/autodiff/data/sequence_ops_reference.txt
Each line: `name dim0 ... : v0 v1 ...` (row-major, repr precision), float64 unless named _f32. A
gradient `.grad` is d sum(w * f(x)) / dx for the weights `w` of the same line family. Index results
(argmax) and piece sizes (split, chunk) are written as float64. tests/autodiff/test_sequence_ops.cpp
reads them.
"""
import torch

torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(13)


def emit(name, t):
    t = torch.as_tensor(t).detach().to(torch.float64)
    dims = " ".join(str(d) for d in t.shape)
    vals = " ".join(repr(float(v)) for v in t.reshape(-1))
    print(f"{name} {dims} : {vals}")


def rand(*shape):
    return torch.rand(*shape, generator=gen) * 2 - 1


def value_and_grad(name, f, x, dtype=torch.float64):
    """f(x) and d sum(w * f(x)) / dx for random weights w."""
    v = x.clone().to(dtype).requires_grad_()
    y = f(v)
    w = rand(*y.shape).to(dtype)
    (g,) = torch.autograd.grad((w * y).sum(), v)
    emit(f"{name}.value", y)
    emit(f"{name}.w", w)
    emit(f"{name}.grad", g)


# argmax: ties (first index wins) and NaN (counts as largest), along each dim and flattened.
a = torch.tensor([[1.0, 3.0, 3.0, -2.0], [float("nan"), 1.0, float("nan"), 7.0], [0.5, 0.5, 0.5, 0.5]])
emit("argmax.x", a)
emit("argmax.dim0", torch.argmax(a, 0))
emit("argmax.dim1", torch.argmax(a, 1))
emit("argmax.dim1_keepdim", torch.argmax(a, -1, keepdim=True))
emit("argmax.flat", torch.argmax(a))
emit("argmax.flat_no_nan", torch.argmax(a[2:]))

# tril and triu of a batch of 3 x 4 matrices, for several diagonals.
t = rand(2, 3, 4)
emit("tri.x", t)
for d in (-1, 0, 2, -5, 5):
    value_and_grad(f"tril.{d}", lambda v: torch.tril(v, d), t)
    value_and_grad(f"triu.{d}", lambda v: torch.triu(v, d), t)

# masked_fill broadcasting both ways: x [3] with a mask [2, 3], and x [2, 3] with a mask [2, 1].
x = rand(3)
m = torch.tensor([[True, False, False], [False, True, True]])
emit("masked_fill.x", x)
emit("masked_fill.mask", m)
value_and_grad("masked_fill", lambda v: v.masked_fill(m, -2.5), x)
x2 = rand(2, 3)
m2 = torch.tensor([[False], [True]])
emit("masked_fill2.x", x2)
emit("masked_fill2.mask", m2)
value_and_grad("masked_fill2", lambda v: v.masked_fill(m2, float("-inf")).exp(), x2)

# cumsum along each axis, float64 and float32.
c = rand(3, 5)
emit("cumsum.x", c)
for d in (0, 1, -1):
    value_and_grad(f"cumsum.{d}", lambda v: torch.cumsum(v, d), c)
value_and_grad("cumsum_f32.1", lambda v: torch.cumsum(v, 1), c, torch.float32)

# split and chunk: the sizes of the pieces along dim 1 of [2, n].
for n in (0, 1, 6, 7, 10):
    s = torch.zeros(2, n)
    for k in (1, 3, 4):
        emit(f"split.{n}.{k}", [p.shape[1] for p in torch.split(s, k, 1)])
        emit(f"chunk.{n}.{k}", [p.shape[1] for p in torch.chunk(s, k, 1)])

# scaled_dot_product_attention: q [2, 3, L, 4], k [2, 3, S, 4], v [2, 3, S, 5], float64.
import math


def sdpa(query, key, value, attn_mask=None, is_causal=False, scale=None):
    """torch.nn.functional.scaled_dot_product_attention (PyTorch 2) by its documented definition:
    Debian's PyTorch 1.13 has no such function."""
    L, S = query.size(-2), key.size(-2)
    scale = 1 / math.sqrt(query.size(-1)) if scale is None else scale
    bias = torch.zeros(L, S, dtype=query.dtype)
    if is_causal:
        bias.masked_fill_(~torch.ones(L, S, dtype=torch.bool).tril(0), float("-inf"))
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        bias = bias.masked_fill(~attn_mask, float("-inf"))
    elif attn_mask is not None:
        bias = bias + attn_mask
    return torch.softmax(query @ key.transpose(-2, -1) * scale + bias, dim=-1) @ value

q, k, v = rand(2, 3, 4, 4), rand(2, 3, 6, 4), rand(2, 3, 6, 5)
emit("sdpa.q", q)
emit("sdpa.k", k)
emit("sdpa.v", v)
allowed = torch.rand(4, 6, generator=gen) > 0.3
allowed[:, 0] = True  # every query attends to something
additive = rand(2, 1, 4, 6)
emit("sdpa.allowed", allowed)
emit("sdpa.additive", additive)
SDPA = {
    "plain": lambda a, b, c: sdpa(a, b, c),
    "boolean": lambda a, b, c: sdpa(a, b, c, attn_mask=allowed),
    "additive": lambda a, b, c: sdpa(a, b, c, attn_mask=additive),
    "causal": lambda a, b, c: sdpa(a, b, c, is_causal=True),
    "scaled": lambda a, b, c: sdpa(a, b, c, scale=0.3),
}
for name, f in SDPA.items():
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    y = f(*leaves)
    w = rand(*y.shape)
    grads = torch.autograd.grad((w * y).sum(), leaves)
    emit(f"sdpa.{name}.value", y)
    emit(f"sdpa.{name}.w", w)
    for what, g in zip("qkv", grads):
        emit(f"sdpa.{name}.grad_{what}", g)
