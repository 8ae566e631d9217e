// The kernels of the sequence-model ops: triangular masks of matrices (tril, triu), filling where a
// mask is set (masked_fill), and running sums along an axis (cumsum, forward and reversed).
#include <fmt/format.h>

#include "loops.hpp"

namespace gg::kernel {

using detail::Index;

namespace {
/// x with the elements above (tril) or below (triu) the diagonal-th diagonal of each matrix (the
/// last two dimensions) set to 0.
Tensor triangle(const Tensor& x, std::int64_t diagonal, bool upper) {
  const std::string_view op = upper ? "triu" : "tril";
  detail::require_defined(x, op);
  if (x.rank() < 2)
    throw ShapeError(
        fmt::format("{}: needs a tensor of at least 2 dimensions (a matrix or a batch of them), got "
                    "shape {}",
                    op, x.shape().str()));
  const Index rows = x.shape()[x.rank() - 2], cols = x.shape()[x.rank() - 1];
  const Index matrices = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    T* o = out.data<T>();
    for (Index m = 0; m < matrices; ++m)
      for (Index i = 0; i < rows; ++i) {
        const Index base = (m * rows + i) * cols;
        // Kept: j - i <= diagonal (tril), j - i >= diagonal (triu).
        const Index edge = std::clamp<Index>(i + diagonal + (upper ? 0 : 1), 0, cols);
        for (Index j = 0; j < cols; ++j) o[base + j] = (j < edge) != upper ? p[base + j] : T(0);
      }
  });
  return out;
}
} // namespace

Tensor tril(const Tensor& x, std::int64_t diagonal) {
  return triangle(x, diagonal, false);
}
Tensor triu(const Tensor& x, std::int64_t diagonal) {
  return triangle(x, diagonal, true);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value, std::string_view op) {
  detail::require_defined(x, op);
  detail::require_defined(mask, op);
  const Shape shape = broadcast_shapes(x.shape(), mask.shape(), op);
  for (Index i = 0; i < mask.numel(); ++i) {
    const double m = mask.flat(i);
    if (m != 0 && m != 1)
      throw ValueError(
          fmt::format("{}: the mask must hold only 0 and 1 (a bool mask), found {} at flat index {} "
                      "(mask shape {}, input shape {})",
                      op, m, i, mask.shape().str(), x.shape().str()));
  }
  Tensor out = Tensor::empty(shape, x.dtype());
  if (out.numel() == 0) return out;
  const Tensor pm = mask.to(x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *c = pm.data<T>(), *p = x.data<T>();
    T* o = out.data<T>();
    const T v = static_cast<T>(value);
    const auto w = detail::make_walk<3>(shape, {detail::contiguous_strides(shape),
                                                detail::broadcast_strides(pm.shape(), shape),
                                                detail::broadcast_strides(x.shape(), shape)});
    const Index len = w.inner_size(), sc = w.inner_stride(1), sx = w.inner_stride(2);
    detail::for_each_row(w, [&](const std::array<Index, 3>& off) {
      for (Index j = 0; j < len; ++j) o[off[0] + j] = c[off[1] + j * sc] != 0 ? v : p[off[2] + j * sx];
    });
  });
  return out;
}

Tensor cumsum(const Tensor& x, int axis, bool reverse) {
  detail::require_defined(x, "cumsum");
  if (x.rank() == 0) {
    normalize_axis(axis, 1, "cumsum");
    return x.clone();
  }
  const int ax = normalize_axis(axis, x.rank(), "cumsum");
  const detail::AxisView v(x.shape(), ax);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    T* o = out.data<T>();
    // Accumulated in double, as PyTorch's CPU kernel does for float32 too.
    detail::for_each_lane(v, [&](Index base, Index stride, Index) {
      double acc = 0;
      for (Index k = 0; k < v.n; ++k) {
        const Index at = base + (reverse ? v.n - 1 - k : k) * stride;
        acc += static_cast<double>(p[at]);
        o[at] = static_cast<T>(acc);
      }
    });
  });
  return out;
}

} // namespace gg::kernel
