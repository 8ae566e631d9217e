// The loops every kernel runs on (internal): dtype dispatch, strided walks over broadcast shapes,
// lanes along an axis, and the split of large loops across the kernel threads. Templates, so that
// each kernel file inlines them into its own loops.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

#include "kernels.hpp"
#include "vecmath.hpp"

#include "../thread_pool.hpp"

namespace gg::kernel::detail {

using Index = std::int64_t;
using Dims = std::array<Index, Shape::max_rank>;

/// The kernel threads' count (set_num_threads).
extern std::atomic<int> g_num_threads;

/// Calls f(double{}) or f(float{}) for the dtype; f's body uses decltype(tag) as the element type.
template <class F> decltype(auto) dispatch(DType dtype, F&& f) {
  if (dtype == f64) return f(double{});
  return f(float{});
}

/// UsageError naming op when t is undefined.
void require_defined(const Tensor& t, std::string_view op);

/// The operands of a broadcasting map converted to their result dtype (result_dtype), and the
/// output of their broadcast shape; the errors name op and both shapes.
struct Broadcast {
  Tensor a, b, out;
};
Broadcast broadcast_operands(const Tensor& a, const Tensor& b, std::string_view op);

inline std::size_t bytes(Index count, DType dtype) {
  return static_cast<std::size_t>(count) * dtype_size(dtype);
}

inline std::size_t at(int i) {
  return static_cast<std::size_t>(i);
}

inline Dims contiguous_strides(const Shape& s) {
  Dims st{};
  Index acc = 1;
  for (int d = s.rank() - 1; d >= 0; --d) {
    st[at(d)] = acc;
    acc *= s[d];
  }
  return st;
}

/// Strides that read `in` (contiguous) as if it had the shape `out` it broadcasts to: 0 along
/// dimensions that broadcasting adds or stretches.
inline Dims broadcast_strides(const Shape& in, const Shape& out) {
  const Dims in_st = contiguous_strides(in);
  Dims st{};
  const int shift = out.rank() - in.rank();
  for (int d = 0; d < out.rank(); ++d) {
    const int j = d - shift;
    st[at(d)] = (j < 0 || in[j] == 1) ? 0 : in_st[at(j)];
  }
  return st;
}

/// Iteration over a shape for N operands with given element strides, with size-1 dimensions
/// dropped and adjacent dimensions merged where every operand is contiguous across them.
template <int N> struct Walk {
  int rank = 0;
  Dims size{};
  std::array<Dims, N> stride{};
  Index inner_size() const { return rank ? size[at(rank - 1)] : 1; }
  Index inner_stride(int k) const { return rank ? stride[at(k)][at(rank - 1)] : 0; }
};

template <int N> Walk<N> make_walk(const Shape& shape, const std::array<Dims, N>& strides) {
  Walk<N> w;
  for (int d = 0; d < shape.rank(); ++d) {
    if (shape[d] == 1) continue;
    if (w.rank > 0) {
      const std::size_t last = at(w.rank - 1);
      bool merge = true;
      for (std::size_t k = 0; k < N; ++k) merge = merge && w.stride[k][last] == strides[k][at(d)] * shape[d];
      if (merge) {
        w.size[last] *= shape[d];
        for (std::size_t k = 0; k < N; ++k) w.stride[k][last] = strides[k][at(d)];
        continue;
      }
    }
    w.size[at(w.rank)] = shape[d];
    for (std::size_t k = 0; k < N; ++k) w.stride[k][at(w.rank)] = strides[k][at(d)];
    ++w.rank;
  }
  return w;
}

/// Calls row(offsets) once per innermost row (inner_size() elements) with each operand's offset.
template <int N, class F> void for_each_row(const Walk<N>& w, F&& row) {
  std::array<Index, N> off{};
  for (int d = 0; d < w.rank; ++d)
    if (w.size[at(d)] == 0) return;
  Index rows = 1;
  for (int d = 0; d + 1 < w.rank; ++d) rows *= w.size[at(d)];
  Dims idx{};
  for (Index r = 0; r < rows; ++r) {
    row(off);
    for (int d = w.rank - 2; d >= 0; --d) {
      const std::size_t du = at(d);
      for (std::size_t k = 0; k < N; ++k) off[k] += w.stride[k][du];
      if (++idx[du] < w.size[du]) break;
      for (std::size_t k = 0; k < N; ++k) off[k] -= w.stride[k][du] * w.size[du];
      idx[du] = 0;
    }
  }
}

/// Work (in cheap element operations: an add, a copy, a comparison) below which a loop stays on
/// the calling thread. Measured with bench_micro on a 2-core VM: a ReLU is memory-bound and gains
/// nothing from a second thread below ~1M floats (65,536: 7.7 us on one thread, 16.9 us on two).
inline constexpr Index k_parallel_min = kernel::parallel_min_work;
/// Cost of one element of a transcendental function (exp, log, tanh, ...) in those units: exp of
/// 65,536 floats takes ~250 us on one thread, and two threads take ~40% off it.
inline constexpr Index k_transcendental_cost = 32;
/// Cost per element of the convolution and pooling loops (unfolding, moving GEMM output, window
/// maxima and their gradient): they were measured faster threaded from 2^15 elements
/// (docs/performance.md, the CNN section); max_pool2d of a [64, 16, 28, 28] batch takes ~0.4 ms
/// forward and ~0.8 ms backward on one thread.
inline constexpr Index k_window_cost = 32;

/// Runs body(lo, hi) over [0, n), split across the kernel threads (thread_pool.cpp) when the work
/// (n items of `cost` cheap element operations each) is large enough to pay for a second thread:
/// small tensors, and so small models, never touch another thread.
template <class F> void parallel_range(Index n, F&& body, Index cost = 1) {
  constexpr Index parallel_min = k_parallel_min;
  const int threads = g_num_threads.load(std::memory_order_relaxed);
  if (threads > 1 && n > 1 && n * cost >= parallel_min) {
    using Body = std::remove_reference_t<F>;
    const auto call = [](void* ctx, Index lo, Index hi) { (*static_cast<Body*>(ctx))(lo, hi); };
    if (gg::detail::run_parallel(n, static_cast<int>(std::min<Index>(threads, n)), call,
                                 const_cast<void*>(static_cast<const void*>(&body))))
      return;
  }
  body(Index{0}, n);
}

/// One row of a binary map; the stride-1 and stride-0 cases are separate loops so they vectorise.
template <class T, class F>
void binary_row(T* o, const T* a, Index sa, const T* b, Index sb, Index n, const F& f) {
  if (sa == 1 && sb == 1) {
    for (Index j = 0; j < n; ++j) o[j] = f(a[j], b[j]);
  } else if (sa == 1 && sb == 0) {
    const T y = *b;
    for (Index j = 0; j < n; ++j) o[j] = f(a[j], y);
  } else if (sa == 0 && sb == 1) {
    const T x = *a;
    for (Index j = 0; j < n; ++j) o[j] = f(x, b[j]);
  } else {
    for (Index j = 0; j < n; ++j) o[j] = f(a[j * sa], b[j * sb]);
  }
}

template <class T, class F> void map_unary(const T* x, T* o, Index n, const F& f, Index cost = 1) {
  parallel_range(
      n,
      [&](Index lo, Index hi) {
        for (Index i = lo; i < hi; ++i) o[i] = f(x[i]);
      },
      cost);
}

template <class T, class F> void map_binary(const Tensor& a, const Tensor& b, Tensor& out, const F& f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const Shape& os = out.shape();
  const Index n = os.numel();
  if (n == 0) return;
  if (a.shape() == b.shape() || (a.numel() == 1 && b.shape() == os) || (b.numel() == 1 && a.shape() == os)) {
    const Index sa = a.numel() == n ? 1 : 0, sb = b.numel() == n ? 1 : 0;
    parallel_range(
        n, [&](Index lo, Index hi) { binary_row(po + lo, pa + lo * sa, sa, pb + lo * sb, sb, hi - lo, f); });
    return;
  }
  const auto w = make_walk<3>(
      os, {contiguous_strides(os), broadcast_strides(a.shape(), os), broadcast_strides(b.shape(), os)});
  const Index len = w.inner_size(), sa = w.inner_stride(1), sb = w.inner_stride(2);
  for_each_row(w, [&](const std::array<Index, 3>& off) {
    binary_row(po + off[0], pa + off[1], sa, pb + off[2], sb, len, f);
  });
}

/// Copies src, read through src_strides, into the contiguous dst of shape out_shape.
template <class T> void strided_copy(const T* src, const Dims& src_strides, const Shape& out_shape, T* dst) {
  const auto w = make_walk<2>(out_shape, {contiguous_strides(out_shape), src_strides});
  const Index len = w.inner_size(), s = w.inner_stride(1);
  for_each_row(w, [&](const std::array<Index, 2>& off) {
    T* o = dst + off[0];
    const T* in = src + off[1];
    if (s == 1)
      std::copy(in, in + len, o);
    else if (s == 0)
      std::fill(o, o + len, *in);
    else
      for (Index j = 0; j < len; ++j) o[j] = in[j * s];
  });
}

// Reductions along an axis: x viewed as [outer, n, inner] with n the axis' size.

struct AxisView {
  Index outer = 1, n = 1, inner = 1;
  AxisView(const Shape& s, int axis) {
    for (int d = 0; d < axis; ++d) outer *= s[d];
    n = s[axis];
    for (int d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  }
};

inline Shape reduced_shape(const Shape& s, int axis, bool keepdim) {
  Shape r;
  for (int d = 0; d < s.rank(); ++d) {
    if (d != axis)
      r.push_back(s[d]);
    else if (keepdim)
      r.push_back(1);
  }
  return r;
}

/// The sum of term(i) (a double) over [0, n) by eight partial sums: independent chains the compiler
/// can vectorise without reassociating.
template <class F> double partial_sums(Index n, const F& term) {
  std::array<double, 8> acc{};
  Index i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t k = 0; k < 8; ++k) acc[k] += term(i + static_cast<Index>(k));
  double s = 0;
  for (; i < n; ++i) s += term(i);
  for (double x : acc) s += x;
  return s;
}

/// The sum of a[i] * b[i] (each product in T, as the strided loops compute it) over [0, n), in
/// double, by eight partial sums as sum_contiguous.
template <class T> double dot_contiguous(const T* a, const T* b, Index n) {
  return partial_sums(n, [&](Index j) { return static_cast<double>(a[j] * b[j]); });
}

template <class T> double sum_contiguous(const T* p, Index n) {
  return partial_sums(n, [&](Index j) { return static_cast<double>(p[j]); });
}

/// Calls lane(base, stride, out_index) for every 1-d lane along the axis (n elements at base +
/// k * stride), out_index numbering the lanes in the reduced shape's order.
template <class F> void for_each_lane(const AxisView& v, F&& lane) {
  for (Index i = 0; i < v.outer; ++i)
    for (Index j = 0; j < v.inner; ++j) lane(i * v.n * v.inner + j, v.inner, i * v.inner + j);
}

template <class T> T lane_max(const T* p, Index stride, Index n) {
  if (stride == 1) return vec_max(p, n);
  T m = p[0];
  for (Index k = 1; k < n; ++k) {
    const T y = p[k * stride];
    if (y > m || y != y) m = y;
    if (m != m) break;
  }
  return m;
}

} // namespace gg::kernel::detail
