// The geometry of sliding windows over image batches [N, C, H, W] (internal), shared by the
// convolution and pooling kernels: sizes checked once, and which window offsets read inside the
// image.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <utility>

#include "kernels.hpp"

namespace gg::kernel::detail {

/// kh x kw windows (strides sh, sw; zero padding ph, pw; dilations dh, dw) over a batch of n images
/// of c channels, h x w, giving oh x ow outputs per channel.
struct ConvGeometry {
  std::int64_t n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
  bool threaded = true; ///< im2col and col2im may split planes across the kernel threads
};

/// A convolution as its caller called it, for the errors of the checks: the function (conv2d, conv1d,
/// max_pool2d...), its spatial dimensions (2: images [N, C, H, W]; 1: sequences [N, C, L], which run
/// as images one row high: sizes then shown along L only) and the shapes it was given (x empty: the
/// image checked; w empty: no weight).
struct ConvCall {
  std::string_view op;
  int dims = 2;
  Shape x{}, w{};
};

/// The geometry of windows over image batches of shape `image`, after checking it (ShapeError,
/// ValueError naming the call, in its terms).
ConvGeometry conv_geometry(const Shape& image, const Windows& windows, const ConvCall& call);
inline ConvGeometry conv_geometry(const Shape& image, const Windows& windows, std::string_view op) {
  return conv_geometry(image, windows, ConvCall{op});
}
/// The geometry of conv2d(x, weight) after checking the shapes: xs [N, C, H, W], ws [out, C / groups,
/// kh, kw] (the windows' kh, kw), bias [out] or undefined, groups >= 1; errors in the call's terms
/// (conv1d checks its sequences as the images one row high it runs).
ConvGeometry conv2d_geometry(const ConvCall& call, const Shape& xs, const Shape& ws, const Tensor& bias,
                             Windows windows, std::int64_t groups);

/// Along one axis (input length `in`, output length `out`, stride s, padding p, dilation d): the output
/// positions [lo, hi) whose window offset `k` reads inside the image (the others read padding).
inline std::pair<std::int64_t, std::int64_t> inside_span(std::int64_t in, std::int64_t out, std::int64_t k,
                                                         std::int64_t s, std::int64_t p, std::int64_t d) {
  const std::int64_t shift = k * d - p; // input position o * s + shift
  const std::int64_t lo = std::min(out, shift >= 0 ? 0 : (-shift + s - 1) / s);
  const std::int64_t hi = std::max(lo, std::min(out, in - shift <= 0 ? 0 : (in - shift - 1) / s + 1));
  return {lo, hi};
}
/// The output columns [x0, x1) whose window column j lies inside the image.
inline std::pair<std::int64_t, std::int64_t> inside_columns(const ConvGeometry& g, std::int64_t j) {
  return inside_span(g.w, g.ow, j, g.sw, g.pw, g.dw);
}
/// The output rows [y0, y1) whose window row i lies inside the image.
inline std::pair<std::int64_t, std::int64_t> inside_rows(const ConvGeometry& g, std::int64_t i) {
  return inside_span(g.h, g.oh, i, g.sh, g.ph, g.dh);
}
/// The element offset, in an image plane, of window offset (i, j) of output (0, 0): the input element
/// of output (y, x) is this plus y * sh * w + x * sw.
inline std::int64_t window_origin(const ConvGeometry& g, std::int64_t i, std::int64_t j) {
  return (i * g.dh - g.ph) * g.w + j * g.dw - g.pw;
}

} // namespace gg::kernel::detail
