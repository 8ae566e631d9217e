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

/// kh x kw windows (stride, zero padding) over a batch of n images of c channels, h x w, giving
/// oh x ow outputs per channel.
struct ConvGeometry {
  std::int64_t n, c, h, w, kh, kw, stride, padding, oh, ow;
  bool threaded = true; ///< im2col and col2im may split planes across the kernel threads
};

/// The geometry of kh x kw windows (stride, zero padding) over image batches of shape `image`,
/// after checking it (ShapeError, ValueError naming op).
ConvGeometry conv_geometry(const Shape& image, std::int64_t kh, std::int64_t kw, std::int64_t stride,
                           std::int64_t padding, std::string_view op);

/// Along one axis (input length `in`, output length `out`): the output positions [lo, hi) whose
/// window offset `k` reads inside the image (the others read padding).
inline std::pair<std::int64_t, std::int64_t> inside_span(const ConvGeometry& g, std::int64_t in,
                                                         std::int64_t out, std::int64_t k) {
  const std::int64_t shift = k - g.padding; // input position o * stride + shift
  const std::int64_t lo = std::min(out, shift >= 0 ? 0 : (-shift + g.stride - 1) / g.stride);
  const std::int64_t hi = std::max(lo, std::min(out, in - shift <= 0 ? 0 : (in - shift - 1) / g.stride + 1));
  return {lo, hi};
}
/// The output columns [x0, x1) whose window column j lies inside the image.
inline std::pair<std::int64_t, std::int64_t> inside_columns(const ConvGeometry& g, std::int64_t j) {
  return inside_span(g, g.w, g.ow, j);
}
/// The output rows [y0, y1) whose window row i lies inside the image.
inline std::pair<std::int64_t, std::int64_t> inside_rows(const ConvGeometry& g, std::int64_t i) {
  return inside_span(g, g.h, g.oh, i);
}

} // namespace gg::kernel::detail
