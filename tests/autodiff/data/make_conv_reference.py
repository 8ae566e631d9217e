#!/usr/bin/env python3
"""Reference values of convolution and pooling with PyTorch's full arguments (issue 13): conv2d with
separate height/width stride and padding, dilation, groups and non-square kernels, 3-d (unbatched)
inputs, conv1d; max_pool2d with non-square windows, dilation and ceil_mode; avg_pool2d with ceil_mode
and count_include_pad. Computed with PyTorch in float64.

Run with Debian's PyTorch:
    /usr/bin/python3 tests/autodiff/data/make_conv_reference.py > tests/autodiff/data/conv_reference.txt
Each line: `name dim0 ... : v0 v1 ...` (row-major, repr precision). For each case <c>: its inputs
<c>.x, <c>.w, <c>.b (when it has them), <c>.value, <c>.r (random, of the value's shape) and
<c>.grad.<input>, the gradient of sum(value * r). tests/autodiff/test_conv_pool.cpp reads them.
"""
import torch
import torch.nn.functional as F

import reference_text

torch.set_default_dtype(torch.float64)
g = torch.Generator().manual_seed(7)


def rnd(*shape):
    return torch.randn(*shape, generator=g)


def case(name, fn, **inputs):
    reference_text.case(name, fn, g, weight_name="r", **inputs)


# conv2d
case("conv_groups", lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
     x=rnd(2, 4, 7, 6), w=rnd(6, 2, 3, 2), b=rnd(6))
case("conv_dilated_same", lambda x, w: F.conv2d(x, w, None, padding=2, dilation=2), x=rnd(2, 3, 6, 7),
     w=rnd(4, 3, 3, 3))
case("conv_depthwise", lambda x, w: F.conv2d(x, w, None, padding=1, groups=3), x=rnd(2, 3, 5, 5),
     w=rnd(6, 1, 3, 3))
case("conv_unbatched", lambda x, w, b: F.conv2d(x, w, b, stride=(1, 2), padding=(1, 1)), x=rnd(3, 6, 5),
     w=rnd(2, 3, 2, 3), b=rnd(2))

# conv1d
case("conv1d", lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2), x=rnd(2, 3, 10),
     w=rnd(4, 3, 3), b=rnd(4))
case("conv1d_groups_unbatched", lambda x, w: F.conv1d(x, w, None, padding=1, groups=3), x=rnd(3, 9),
     w=rnd(6, 1, 2))

# pooling
case("maxpool_full", lambda x: F.max_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2),
                                             ceil_mode=True), x=rnd(2, 3, 7, 8))
case("maxpool_ceil_unbatched", lambda x: F.max_pool2d(x, 3, stride=2, ceil_mode=True), x=rnd(3, 6, 6))
case("avgpool_ceil", lambda x: F.avg_pool2d(x, (3, 2), stride=2, padding=1, ceil_mode=True), x=rnd(2, 3, 6, 7))
case("avgpool_ceil_nopad", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                                                  count_include_pad=False), x=rnd(2, 2, 6, 6))
case("avgpool_unbatched", lambda x: F.avg_pool2d(x, 2), x=rnd(3, 5, 4))
