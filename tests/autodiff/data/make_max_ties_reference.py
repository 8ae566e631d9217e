#!/usr/bin/env python3
"""Reference values of the maxima's gradients at ties and NaN (issue 13, parity with PyTorch),
computed with PyTorch in float64: max_pool2d gives a window's gradient to one element (its CPU
kernel keeps `val > maxval || isnan(val)`: the first maximum, or the last NaN), torch.max(x, dim)
and torch.min(x, dim) to the index they return (the first extremum, or the first NaN), while
torch.max(x), torch.min(x), torch.amax and torch.amin share it among the ties (whole: among the
NaNs; along an axis: a lane whose extremum is NaN gets NaN throughout).

Run with Debian's PyTorch:
    /usr/bin/python3 tests/autodiff/data/make_max_ties_reference.py > tests/autodiff/data/max_ties_reference.txt
Each line: `name dim0 ... : v0 v1 ...` (row-major, repr precision; nan and inf as such). For each case
<c>: <c>.x, <c>.value, <c>.r (random, of the value's shape) and <c>.grad.x, the gradient of
sum(value * r). tests/autodiff/test_parity.cpp reads them.
"""
import torch
import torch.nn.functional as F

import reference_text

torch.set_default_dtype(torch.float64)
g = torch.Generator().manual_seed(13)
nan, inf = float("nan"), float("inf")


def case(name, fn, x):
    reference_text.case(name, fn, g, weight_name="r", x=x)


def ties(*shape):
    """Small whole numbers (many equal, as after a ReLU) in [0, 2]."""
    return torch.randint(0, 3, shape, generator=g).to(torch.float64)


def with_nan_and_inf(x):
    """x with NaNs (one window holding two) and a run of -inf, some windows all -inf."""
    x = x.clone()
    flat = x.view(-1)
    flat[1] = nan
    flat[7] = nan
    flat[8] = nan
    flat[20:34] = -inf
    return x


x = ties(2, 3, 6, 7)
case("pool2_ties", lambda x: F.max_pool2d(x, 2), x)  # disjoint 2x2 windows, a column and row left over
case("pool3_ties", lambda x: F.max_pool2d(x, 3), x)  # disjoint 3x3 windows
case("pool_overlap_ties", lambda x: F.max_pool2d(x, 3, stride=1), x)
case("pool_pad_dilate_ties", lambda x: F.max_pool2d(x, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2),
                                                    ceil_mode=True), x)
y = with_nan_and_inf(ties(2, 2, 6, 8))
case("pool2_nan", lambda x: F.max_pool2d(x, 2), y)
case("pool3_nan", lambda x: F.max_pool2d(x, 3, stride=3), y)
case("pool_overlap_nan", lambda x: F.max_pool2d(x, 2, stride=1), y)
case("pool_pad_nan", lambda x: F.max_pool2d(x, 3, stride=2, padding=1), y)  # all -inf windows with padding
case("pool2_unbatched_nan", lambda x: F.max_pool2d(x, 2), y[0])

z = ties(3, 5)
z[1, 2] = nan
z[1, 4] = nan
z[2, 0] = -inf
z[2, 1:] = -inf
for name, x in (("ties", z[0:1].clone()), ("nan", z.clone())):
    case("max_" + name, lambda x: torch.max(x), x)
    case("min_" + name, lambda x: torch.min(x), x)
case("max1", lambda x: torch.max(x, 1)[0], z)
case("max0_keepdim", lambda x: torch.max(x, 0, keepdim=True)[0], z)
case("min1", lambda x: torch.min(x, 1)[0], z)
case("amax1", lambda x: torch.amax(x, 1), z)
case("amax0_keepdim", lambda x: torch.amax(x, 0, keepdim=True), z)
case("amin1", lambda x: torch.amin(x, 1), z)
