#!/usr/bin/env python3
"""Reference values of erf and GELU (exact and approximate="tanh"), computed with PyTorch.

Run with Debian's PyTorch:
    /usr/bin/python3 tests/autodiff/data/make_erf_gelu_reference.py > tests/autodiff/data/erf_gelu_reference.txt
Each line: `name dim0 ... : v0 v1 ...` (row-major, repr precision). For each function f of x:
f.value, f.grad (d sum(f(x)) / dx), f.grad2 (d sum(f'(x)) / dx, through create_graph), in float64,
and f.value_f32, f.grad_f32 computed in float32. tests/autodiff/test_ops.cpp reads them.
"""
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

# Both tails, around 0, and where tanh's approximation departs from the exact GELU most.
x = torch.cat([torch.linspace(-6, 6, 25), torch.tensor([-10.0, -3.7, -1e-3, 0.0, 1e-3, 0.3, 3.7, 10.0])])

FUNCTIONS = {
    "erf": torch.erf,
    "gelu": lambda t: F.gelu(t),
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
}


def emit(name, t):
    t = t.detach().to(torch.float64)
    dims = " ".join(str(d) for d in t.shape)
    vals = " ".join(repr(float(v)) for v in t.reshape(-1))
    print(f"{name} {dims} : {vals}")


emit("x", x)
for name, f in FUNCTIONS.items():
    v = x.clone().requires_grad_()
    y = f(v)
    (g,) = torch.autograd.grad(y.sum(), v, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), v)
    emit(f"{name}.value", y)
    emit(f"{name}.grad", g)
    emit(f"{name}.grad2", g2)
    v32 = x.to(torch.float32).requires_grad_()
    y32 = f(v32)
    y32.sum().backward()
    emit(f"{name}.value_f32", y32)
    emit(f"{name}.grad_f32", v32.grad)
