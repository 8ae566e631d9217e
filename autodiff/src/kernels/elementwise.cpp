// Elementwise kernels: functions of one tensor, arithmetic and comparisons of two with NumPy
// broadcasting (and their dtype promotion), selection by a mask, and broadcasting's adjoint sum_to.
// The ops' math is their rows' (ops/elementwise.hpp), so a kernel computes what the graph computes.
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "../ops/elementwise.hpp"
#include "loops.hpp"

namespace gg::kernel {
namespace detail {

void require_defined(const Tensor& t, std::string_view op) {
  if (!t.defined()) throw UsageError(fmt::format("{}: the tensor is undefined", op));
}

Broadcast broadcast_operands(const Tensor& a, const Tensor& b, std::string_view op) {
  require_defined(a, op);
  require_defined(b, op);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  const DType dtype = result_dtype(a, b);
  return {a.to(dtype), b.to(dtype), Tensor::empty(shape, dtype)};
}

namespace {
using gg::detail::Math;

template <class T, class Fn> void with_binary(Binary f, Fn&& fn) {
  switch (f) {
  case Binary::add: return fn([](T x, T y) { return Math<Op::add>::f(x, y); });
  case Binary::sub: return fn([](T x, T y) { return Math<Op::sub>::f(x, y); });
  case Binary::mul: return fn([](T x, T y) { return Math<Op::mul>::f(x, y); });
  case Binary::div: return fn([](T x, T y) { return Math<Op::div>::f(x, y); });
  case Binary::pow: return fn([](T x, T y) { return Math<Op::pow>::f(x, y); });
  // maximum/minimum propagate NaN from either side.
  case Binary::maximum: return fn([](T x, T y) { return (x > y || x != x) ? x : y; });
  case Binary::minimum: return fn([](T x, T y) { return (x < y || x != x) ? x : y; });
  case Binary::gt: return fn([](T x, T y) { return x > y ? T(1) : T(0); });
  case Binary::lt: return fn([](T x, T y) { return x < y ? T(1) : T(0); });
  case Binary::ge: return fn([](T x, T y) { return x >= y ? T(1) : T(0); });
  case Binary::le: return fn([](T x, T y) { return x <= y ? T(1) : T(0); });
  case Binary::eq: return fn([](T x, T y) { return x == y ? T(1) : T(0); });
  }
  throw ValueError("binary: unknown function");
}

std::string_view binary_name(Binary f) {
  switch (f) {
  case Binary::add: return "add";
  case Binary::sub: return "sub";
  case Binary::mul: return "mul";
  case Binary::div: return "div";
  case Binary::pow: return "pow";
  case Binary::maximum: return "maximum";
  case Binary::minimum: return "minimum";
  case Binary::gt: return "gt";
  case Binary::lt: return "lt";
  case Binary::ge: return "ge";
  case Binary::le: return "le";
  case Binary::eq: return "eq";
  }
  return "binary";
}
} // namespace
} // namespace detail

using detail::Index;
using gg::detail::Math;

// ---------------------------------------------------------------------------------------------
// Shapes and axes

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  if (a == b) return a;
  const int r = std::max(a.rank(), b.rank()), pa = r - a.rank(), pb = r - b.rank();
  Shape out;
  for (int i = 0; i < r; ++i) {
    const Index da = i >= pa ? a[i - pa] : 1, db = i >= pb ? b[i - pb] : 1;
    if (da != db && da != 1 && db != 1)
      throw ShapeError(fmt::format("{}: shapes {} and {} cannot be broadcast", op, a.str(), b.str()));
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

int normalize_axis(int axis, int rank, std::string_view op) {
  if (axis < -rank || axis >= rank)
    throw ValueError(fmt::format("{}: axis {} is out of range for a tensor of rank {}", op, axis, rank));
  return axis < 0 ? axis + rank : axis;
}

// ---------------------------------------------------------------------------------------------
// Elementwise

Tensor unary(Unary f, const Tensor& x) {
  using gg::detail::map_value;
  detail::require_defined(x, "unary");
  switch (f) {
  case Unary::neg: return map_value<Math<Op::neg>>(x, {});
  case Unary::exp: return map_value<Math<Op::exp>>(x, {});
  case Unary::log: return map_value<Math<Op::log>>(x, {});
  case Unary::sqrt: return map_value<Math<Op::sqrt>>(x, {});
  case Unary::abs: return map_value<Math<Op::abs>>(x, {});
  case Unary::tanh: return map_value<Math<Op::tanh>>(x, {});
  case Unary::sigmoid: return map_value<Math<Op::sigmoid>>(x, {});
  case Unary::relu: return map_value<Math<Op::relu>>(x, {});
  case Unary::sin: return map_value<Math<Op::sin>>(x, {});
  case Unary::cos: return map_value<Math<Op::cos>>(x, {});
  case Unary::sign:
  case Unary::square: break;
  }
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (f == Unary::sign) // 0 and NaN stay
      detail::map_unary(x.data<T>(), out.data<T>(), x.numel(), [](T v) {
        return v > 0 ? T(1) : v < 0 ? T(-1) : v;
      });
    else
      detail::map_unary(x.data<T>(), out.data<T>(), x.numel(), [](T v) { return v * v; });
  });
  return out;
}

Tensor binary(Binary f, const Tensor& a, const Tensor& b, std::string_view op) {
  detail::Broadcast x = detail::broadcast_operands(a, b, op.empty() ? detail::binary_name(f) : op);
  detail::dispatch(x.out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    detail::with_binary<T>(f, [&](auto fn) { detail::map_binary<T>(x.a, x.b, x.out, fn); });
  });
  return x.out;
}

Tensor binary_scalar(Binary f, const Tensor& x, double s, bool scalar_left) {
  detail::require_defined(x, detail::binary_name(f));
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T st = static_cast<T>(s);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    detail::with_binary<T>(f, [&](auto fn) {
      detail::parallel_range(x.numel(), [&](Index lo, Index hi) {
        if (scalar_left)
          detail::binary_row(po + lo, &st, 0, px + lo, 1, hi - lo, fn);
        else
          detail::binary_row(po + lo, px + lo, 1, &st, 0, hi - lo, fn);
      });
    });
  });
  return out;
}

Tensor leaky_relu(const Tensor& x, double slope) {
  detail::require_defined(x, "leaky_relu");
  return gg::detail::map_value<Math<Op::leaky_relu>>(x, {slope});
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  detail::require_defined(x, "clamp");
  if (lo > hi) throw ValueError(fmt::format("clamp: lo {} is greater than hi {}", lo, hi));
  return gg::detail::map_value<Math<Op::clamp>>(x, {lo, hi});
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::require_defined(cond, "where");
  detail::require_defined(a, "where");
  detail::require_defined(b, "where");
  const Shape shape =
      broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  const DType dtype = result_dtype(a, b);
  const Tensor pc = cond.to(dtype), pa = a.to(dtype), pb = b.to(dtype);
  Tensor out = Tensor::empty(shape, dtype);
  if (out.numel() == 0) return out;
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T *c = pc.data<T>(), *x = pa.data<T>(), *y = pb.data<T>();
    T* o = out.data<T>();
    const auto w = detail::make_walk<4>(
        shape, {detail::contiguous_strides(shape), detail::broadcast_strides(pc.shape(), shape),
                detail::broadcast_strides(pa.shape(), shape), detail::broadcast_strides(pb.shape(), shape)});
    const Index len = w.inner_size(), sc = w.inner_stride(1), sx = w.inner_stride(2), sy = w.inner_stride(3);
    detail::for_each_row(w, [&](const std::array<Index, 4>& off) {
      for (Index j = 0; j < len; ++j)
        o[off[0] + j] = c[off[1] + j * sc] != 0 ? x[off[2] + j * sx] : y[off[3] + j * sy];
    });
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Broadcasting and its adjoint

Tensor broadcast_to(const Tensor& x, const Shape& shape, std::string_view op) {
  detail::require_defined(x, op);
  bool fits = x.rank() <= shape.rank();
  for (int i = 0; fits && i < x.rank(); ++i) {
    const Index dx = x.shape()[x.rank() - 1 - i], ds = shape[shape.rank() - 1 - i];
    fits = dx == ds || dx == 1;
  }
  for (Index d : shape) fits = fits && d >= 0;
  if (!fits)
    throw ShapeError(fmt::format("{}: shape {} cannot be broadcast to {}", op, x.shape().str(), shape.str()));
  if (x.shape() == shape) return x;
  Tensor out = Tensor::empty(shape, x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    detail::strided_copy(x.data<T>(), detail::broadcast_strides(x.shape(), shape), shape, out.data<T>());
  });
  return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  detail::require_defined(x, "sum_to");
  const Shape& xs = x.shape();
  bool fits = shape.rank() <= xs.rank();
  for (int i = 0; fits && i < shape.rank(); ++i) {
    const Index ds = shape[shape.rank() - 1 - i], dx = xs[xs.rank() - 1 - i];
    fits = ds == dx || ds == 1;
  }
  if (!fits)
    throw ShapeError(fmt::format("sum_to: shape {} does not broadcast to {}", shape.str(), xs.str()));
  if (xs == shape) return x;
  Tensor out = Tensor::empty(shape, x.dtype());
  std::vector<double> acc(static_cast<std::size_t>(shape.numel()), 0.0);
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    const auto w =
        detail::make_walk<2>(xs, {detail::broadcast_strides(shape, xs), detail::contiguous_strides(xs)});
    const Index len = w.inner_size(), so = w.inner_stride(0);
    detail::for_each_row(w, [&](const std::array<Index, 2>& off) {
      double* o = acc.data() + off[0];
      const T* in = p + off[1];
      if (so == 0)
        *o += detail::sum_contiguous(in, len);
      else
        for (Index j = 0; j < len; ++j) o[j * so] += static_cast<double>(in[j]);
    });
    T* po = out.data<T>();
    for (std::size_t i = 0; i < acc.size(); ++i) po[i] = static_cast<T>(acc[i]);
  });
  return out;
}

std::string math_library() {
  return detail::vec_math_library();
}
} // namespace gg::kernel
