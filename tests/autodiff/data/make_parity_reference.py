#!/usr/bin/env python3
"""Reference values of the ops outside checks found missing or different from PyTorch (issue 13):
min and amin (whole and along an axis), maximum and minimum (ties split the gradient in half),
softplus with beta and threshold, gather, computed with PyTorch in float64.

Run with Debian's PyTorch:
    /usr/bin/python3 tests/autodiff/data/make_parity_reference.py > tests/autodiff/data/parity_reference.txt
Each line: `name dim0 ... : v0 v1 ...` (row-major, repr precision). For each case <c>: <c>.value, and
<c>.grad.<input> the gradient of sum(value * <c>.w) (w random, of the value's shape).
tests/autodiff/test_parity.cpp reads them.
"""
import torch
import torch.nn.functional as F

import reference_text
from reference_text import emit

torch.set_default_dtype(torch.float64)
g = torch.Generator().manual_seed(99)


def rnd(*shape):
    return torch.randn(*shape, generator=g)


def case(name, fn, **inputs):
    reference_text.case(name, fn, g, **inputs)


# Ties between a and b (every third element equal), broadcasting [2, 3] against [3].
a = rnd(2, 3)
b = rnd(3)
a[0, 1] = b[1]
a[1, 2] = b[2]
case("maximum", lambda a, b: torch.maximum(a, b), a=a, b=b)
case("minimum", lambda a, b: torch.minimum(a, b), a=a, b=b)

x = rnd(3, 4)
case("min", lambda x: torch.min(x), x=x)
case("amin1", lambda x: torch.amin(x, 1), x=x)
case("amin0_keepdim", lambda x: torch.amin(x, 0, keepdim=True), x=x)

# softplus: default beta and threshold, and beta 2, threshold 1.5 (both branches), over both tails.
x = torch.cat([rnd(8) * 3, torch.tensor([-30.0, 30.0, 0.0, 0.74, 0.76])])
case("softplus", lambda x: F.softplus(x), x=x)
case("softplus_b2_t1.5", lambda x: F.softplus(x, beta=2, threshold=1.5), x=x)

# gather along each axis (repeated indices), an index smaller than the input in the other axes.
x = rnd(3, 4)
i1 = torch.tensor([[3, 0, 3], [1, 1, 2]])
i0 = torch.tensor([[2, 0, 1, 2], [0, 0, 2, 1]])
emit("gather1.index", i1)
emit("gather0.index", i0)
case("gather1", lambda x: torch.gather(x, 1, i1), x=x)
case("gather0", lambda x: torch.gather(x, 0, i0), x=x)
