// Layout and indexing copies: transposes, slices and their adjoint slice_scatter, gathers by index
// and their adjoint index_add, concatenation and stacking.
#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "loops.hpp"

namespace gg::kernel {
namespace detail {
namespace {

struct SliceRange {
  Index start = 0, count = 0;
};

SliceRange slice_range(Index n, Index start, Index stop, Index step, std::string_view op) {
  if (step < 1) throw ValueError(fmt::format("{}: step must be at least 1, got {}", op, step));
  // i + n cannot overflow for i < 0; the count is written so that no step (up to INT64_MAX) overflows.
  auto clamp_index = [n](Index i) { return std::clamp(i < 0 ? i + n : i, Index{0}, n); };
  const Index lo = clamp_index(start), hi = clamp_index(stop);
  return {lo, hi > lo ? (hi - lo - 1) / step + 1 : 0};
}

Shape with_dim(const Shape& s, int axis, Index size) {
  Shape r = s;
  r[axis] = size;
  return r;
}

std::vector<Index> normalized_indices(const std::vector<Index>& index, Index n, int axis,
                                      std::string_view op) {
  std::vector<Index> out;
  out.reserve(index.size());
  for (Index i : index) {
    const Index j = i < 0 ? i + n : i;
    if (j < 0 || j >= n)
      throw ValueError(fmt::format("{}: index {} is out of range for axis {} of size {}", op, i, axis, n));
    out.push_back(j);
  }
  return out;
}

} // namespace
} // namespace detail

using detail::Index;

Tensor transpose(const Tensor& x, int axis0, int axis1) {
  detail::require_defined(x, "transpose");
  const int a0 = normalize_axis(axis0, x.rank(), "transpose"),
            a1 = normalize_axis(axis1, x.rank(), "transpose");
  Shape shape = x.shape();
  std::swap(shape[a0], shape[a1]);
  detail::Dims st = detail::contiguous_strides(x.shape());
  std::swap(st[detail::at(a0)], st[detail::at(a1)]);
  Tensor out = Tensor::empty(shape, x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    detail::strided_copy(x.data<T>(), st, shape, out.data<T>());
  });
  return out;
}

Tensor slice(const Tensor& x, int axis, Index start, Index stop, Index step) {
  detail::require_defined(x, "slice");
  const int ax = normalize_axis(axis, x.rank(), "slice");
  const detail::AxisView v(x.shape(), ax);
  const auto r = detail::slice_range(v.n, start, stop, step, "slice");
  Tensor out = Tensor::empty(detail::with_dim(x.shape(), ax, r.count), x.dtype());
  const std::size_t row = detail::bytes(v.inner, x.dtype());
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(out.raw());
  for (Index i = 0; i < v.outer; ++i)
    for (Index j = 0; j < r.count; ++j)
      std::memcpy(dst + static_cast<std::size_t>(i * r.count + j) * row,
                  src + static_cast<std::size_t>(i * v.n + r.start + j * step) * row, row);
  return out;
}

Tensor slice_scatter(const Tensor& g, const Shape& shape, int axis, Index start, Index stop, Index step) {
  detail::require_defined(g, "slice_scatter");
  const int ax = normalize_axis(axis, shape.rank(), "slice_scatter");
  const detail::AxisView v(shape, ax);
  const auto r = detail::slice_range(v.n, start, stop, step, "slice_scatter");
  const Shape expected = detail::with_dim(shape, ax, r.count);
  if (!(g.shape() == expected))
    throw ShapeError(
        fmt::format("slice_scatter: shape {} does not match the slice's shape {} (of {} along axis {})",
                    g.shape().str(), expected.str(), shape.str(), ax));
  Tensor out = Tensor::zeros(shape, g.dtype());
  const std::size_t row = detail::bytes(v.inner, g.dtype());
  const auto* src = static_cast<const char*>(g.raw());
  auto* dst = static_cast<char*>(out.raw());
  for (Index i = 0; i < v.outer; ++i)
    for (Index j = 0; j < r.count; ++j)
      std::memcpy(dst + static_cast<std::size_t>(i * v.n + r.start + j * step) * row,
                  src + static_cast<std::size_t>(i * r.count + j) * row, row);
  return out;
}

Tensor index_select(const Tensor& x, int axis, const std::vector<Index>& index) {
  detail::require_defined(x, "index_select");
  const int ax = normalize_axis(axis, x.rank(), "index_select");
  const detail::AxisView v(x.shape(), ax);
  const auto idx = detail::normalized_indices(index, v.n, ax, "index_select");
  const auto count = static_cast<Index>(idx.size());
  Tensor out = Tensor::empty(detail::with_dim(x.shape(), ax, count), x.dtype());
  const std::size_t row = detail::bytes(v.inner, x.dtype());
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(out.raw());
  for (Index i = 0; i < v.outer; ++i)
    for (Index j = 0; j < count; ++j)
      std::memcpy(dst + static_cast<std::size_t>(i * count + j) * row,
                  src + static_cast<std::size_t>(i * v.n + idx[static_cast<std::size_t>(j)]) * row, row);
  return out;
}

Tensor index_add(const Tensor& g, const Shape& shape, int axis, const std::vector<Index>& index) {
  detail::require_defined(g, "index_add");
  const int ax = normalize_axis(axis, shape.rank(), "index_add");
  const detail::AxisView v(shape, ax);
  const auto idx = detail::normalized_indices(index, v.n, ax, "index_add");
  const auto count = static_cast<Index>(idx.size());
  const Shape expected = detail::with_dim(shape, ax, count);
  if (!(g.shape() == expected))
    throw ShapeError(fmt::format("index_add: shape {} does not match {} ({} indices into {} along axis {})",
                                 g.shape().str(), expected.str(), count, shape.str(), ax));
  Tensor out = Tensor::zeros(shape, g.dtype());
  detail::dispatch(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = g.data<T>();
    T* dst = out.data<T>();
    for (Index i = 0; i < v.outer; ++i)
      for (Index j = 0; j < count; ++j) {
        T* o = dst + (i * v.n + idx[static_cast<std::size_t>(j)]) * v.inner;
        const T* in = src + (i * count + j) * v.inner;
        for (Index e = 0; e < v.inner; ++e) o[e] += in[e];
      }
  });
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("concat: no tensors given");
  for (const Tensor& x : xs) detail::require_defined(x, "concat");
  const Shape& first = xs[0].shape();
  const int ax = normalize_axis(axis, first.rank(), "concat");
  DType dtype = xs[0].dtype();
  Index total = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    bool same = s.rank() == first.rank();
    for (int d = 0; same && d < s.rank(); ++d) same = d == ax || s[d] == first[d];
    if (!same)
      throw ShapeError(
          fmt::format("concat: along axis {}, shapes {} (input 0) and {} (input {}) differ outside "
                      "the axis",
                      ax, first.str(), s.str(), i));
    total += s[ax];
    dtype = promote(dtype, xs[i].dtype());
  }
  Tensor out = Tensor::empty(detail::with_dim(first, ax, total), dtype);
  const detail::AxisView vo(out.shape(), ax);
  auto* dst = static_cast<char*>(out.raw());
  Index at_axis = 0;
  for (const Tensor& x : xs) {
    const Tensor px = x.to(dtype);
    const Index n = px.shape()[ax];
    const std::size_t chunk = detail::bytes(n * vo.inner, dtype);
    const auto* src = static_cast<const char*>(px.raw());
    for (Index i = 0; i < vo.outer; ++i)
      std::memcpy(dst + detail::bytes((i * vo.n + at_axis) * vo.inner, dtype),
                  src + static_cast<std::size_t>(i) * chunk, chunk);
    at_axis += n;
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("stack: no tensors given");
  for (const Tensor& x : xs) detail::require_defined(x, "stack");
  const Shape& first = xs[0].shape();
  const int ax = normalize_axis(axis, first.rank() + 1, "stack");
  std::vector<Index> dims = first.to_vector();
  dims.insert(dims.begin() + ax, 1);
  std::vector<Tensor> parts;
  parts.reserve(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!(xs[i].shape() == first))
      throw ShapeError(fmt::format("stack: along axis {}, shapes {} (input 0) and {} (input {}) differ", ax,
                                   first.str(), xs[i].shape().str(), i));
    parts.push_back(xs[i].reshape(dims));
  }
  return concat(parts, ax);
}
} // namespace gg::kernel
