// gg::kernel: the numeric kernels behind the graph's ops — elementwise maps with NumPy broadcasting,
// reductions, the softmax family, matrix products (OpenBLAS or Eigen), and layout/indexing copies. Each
// kernel is a template over the element type (double or float), chosen by a switch on the tensor's dtype.
#include <autodiff/tensor.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <type_traits>

// GCC 12 reports false (maybe-)uninitialized warnings inside Eigen's AVX-512 packet code (the
// intrinsics' deliberately undefined registers); they surface after inlining, so the whole file needs it.
#if !defined(__clang__) // clang has no -Wmaybe-uninitialized (and warns about the unknown name)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <Eigen/Core>
#include <fmt/format.h>
#ifdef GG_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "thread_pool.hpp"

namespace gg::kernel {
namespace detail {
namespace {

using Index = std::int64_t;
using Dims = std::array<Index, Shape::max_rank>;

std::atomic<int> g_num_threads{1};

/// Calls f(double{}) or f(float{}) for the dtype; f's body uses decltype(tag) as the element type.
template <class F> decltype(auto) dispatch(DType dtype, F&& f) {
  if (dtype == f64) return f(double{});
  return f(float{});
}

void require_defined(const Tensor& t, std::string_view op) {
  if (!t.defined()) throw UsageError(fmt::format("{}: the tensor is undefined", op));
}

std::size_t bytes(Index count, DType dtype) {
  return static_cast<std::size_t>(count) * dtype_size(dtype);
}

std::size_t at(int i) {
  return static_cast<std::size_t>(i);
}

Dims contiguous_strides(const Shape& s) {
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
Dims broadcast_strides(const Shape& in, const Shape& out) {
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
inline constexpr Index k_parallel_min = Index{1} << 20;
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

// ---------------------------------------------------------------------------------------------
// Elementwise functions

template <class T, class Fn> void with_unary(Unary f, Fn&& fn) {
  switch (f) {
  case Unary::neg: return fn([](T x) { return -x; });
  case Unary::exp: return fn([](T x) { return std::exp(x); });
  case Unary::log: return fn([](T x) { return std::log(x); });
  case Unary::sqrt: return fn([](T x) { return std::sqrt(x); });
  case Unary::abs: return fn([](T x) { return std::abs(x); });
  case Unary::tanh: return fn([](T x) { return std::tanh(x); });
  case Unary::sigmoid:
    return fn([](T x) {
      const T e = std::exp(-std::abs(x)); // in (0, 1]: never overflows
      return x >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
    });
  case Unary::relu: return fn([](T x) { return x > 0 ? x : T(0); });
  case Unary::sin: return fn([](T x) { return std::sin(x); });
  case Unary::cos: return fn([](T x) { return std::cos(x); });
  case Unary::sign: return fn([](T x) { return x > 0 ? T(1) : x < 0 ? T(-1) : x; }); // 0 and NaN stay
  case Unary::square: return fn([](T x) { return x * x; });
  }
  throw ValueError("unary: unknown function");
}

template <class T, class Fn> void with_binary(Binary f, Fn&& fn) {
  switch (f) {
  case Binary::add: return fn([](T x, T y) { return x + y; });
  case Binary::sub: return fn([](T x, T y) { return x - y; });
  case Binary::mul: return fn([](T x, T y) { return x * y; });
  case Binary::div: return fn([](T x, T y) { return x / y; });
  case Binary::pow: return fn([](T x, T y) { return static_cast<T>(std::pow(x, y)); });
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

// ---------------------------------------------------------------------------------------------
// Reductions along an axis: x viewed as [outer, n, inner] with n the axis' size.

struct AxisView {
  Index outer = 1, n = 1, inner = 1;
  AxisView(const Shape& s, int axis) {
    for (int d = 0; d < axis; ++d) outer *= s[d];
    n = s[axis];
    for (int d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  }
};

Shape reduced_shape(const Shape& s, int axis, bool keepdim) {
  Shape r;
  for (int d = 0; d < s.rank(); ++d) {
    if (d != axis)
      r.push_back(s[d]);
    else if (keepdim)
      r.push_back(1);
  }
  return r;
}

template <class T> double sum_contiguous(const T* p, Index n) {
  // Eight partial sums: independent chains the compiler can vectorise without reassociating.
  std::array<double, 8> acc{};
  Index i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t k = 0; k < 8; ++k) acc[k] += static_cast<double>(p[i + static_cast<Index>(k)]);
  double s = 0;
  for (; i < n; ++i) s += static_cast<double>(p[i]);
  for (double a : acc) s += a;
  return s;
}

/// Sum along axis divided by `divisor` (1 for sum, the count for mean); accumulates in double.
Tensor sum_axis(const Tensor& x, int axis, bool keepdim, std::string_view op, bool mean) {
  require_defined(x, op);
  const int ax = normalize_axis(axis, x.rank(), op);
  const AxisView v(x.shape(), ax);
  if (v.n == 1) return x.clone().reshape(reduced_shape(x.shape(), ax, keepdim)); // nothing to add up
  Tensor out = Tensor::empty(reduced_shape(x.shape(), ax, keepdim), x.dtype());
  const double divisor = mean ? static_cast<double>(v.n) : 1.0;
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    T* o = out.data<T>();
    if (v.inner == 1) {
      for (Index i = 0; i < v.outer; ++i) o[i] = static_cast<T>(sum_contiguous(p + i * v.n, v.n) / divisor);
      return;
    }
    std::vector<double> acc(static_cast<std::size_t>(v.inner));
    for (Index i = 0; i < v.outer; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (Index k = 0; k < v.n; ++k) {
        const T* row = p + (i * v.n + k) * v.inner;
        for (Index j = 0; j < v.inner; ++j) acc[static_cast<std::size_t>(j)] += static_cast<double>(row[j]);
      }
      for (Index j = 0; j < v.inner; ++j)
        o[i * v.inner + j] = static_cast<T>(acc[static_cast<std::size_t>(j)] / divisor);
    }
  });
  return out;
}

/// Calls lane(base, stride, out_index) for every 1-d lane along the axis (n elements at base +
/// k * stride), out_index numbering the lanes in the reduced shape's order.
template <class F> void for_each_lane(const AxisView& v, F&& lane) {
  for (Index i = 0; i < v.outer; ++i)
    for (Index j = 0; j < v.inner; ++j) lane(i * v.n * v.inner + j, v.inner, i * v.inner + j);
}

template <class T> T lane_max(const T* p, Index stride, Index n) {
  T m = p[0];
  for (Index k = 1; k < n; ++k) {
    const T y = p[k * stride];
    if (y > m || y != y) m = y;
    if (m != m) break;
  }
  return m;
}

void require_nonempty_axis(const Shape& s, int ax, std::string_view op) {
  if (s[ax] == 0)
    throw ValueError(fmt::format("{}: cannot reduce axis {} of size 0 (shape {})", op, ax, s.str()));
}

template <class Pick> Tensor reduce_all_extreme(const Tensor& x, std::string_view op, Pick pick) {
  require_defined(x, op);
  if (x.numel() == 0)
    throw ValueError(fmt::format("{}: the tensor is empty (shape {})", op, x.shape().str()));
  Tensor out = Tensor::empty(Shape{}, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    T m = p[0];
    for (Index i = 1, n = x.numel(); i < n; ++i) m = pick(m, p[i]);
    *out.data<T>() = m;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Matrix products

template <class T> using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MutMap = Eigen::Map<RowMatrix<T>>;

void ensure_eigen_threads() {
  static const bool once = [] {
    Eigen::setNbThreads(g_num_threads.load());
    return true;
  }();
  (void)once;
}

/// Products with n*k*m up to this are computed by plain loops: a GEMM library's blocking, packing
/// and dispatch cost more than the arithmetic for a 2-3-2 MLP's layers.
constexpr Index k_small_gemm = 4096;

/// c[n,m] = op(a) op(b) by plain loops, op transposing when the flag is set; lda and ldb are the
/// stored row lengths of a and b.
template <class T>
void gemm_small(const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n, Index k,
                Index m, bool accumulate = false) {
  if (!accumulate) std::fill(c, c + n * m, T(0));
  for (Index i = 0; i < n; ++i)
    for (Index p = 0; p < k; ++p) {
      const T aip = ta ? a[p * lda + i] : a[i * lda + p];
      T* ci = c + i * m;
      if (tb)
        for (Index j = 0; j < m; ++j) ci[j] += aip * b[j * ldb + p];
      else
        for (Index j = 0; j < m; ++j) ci[j] += aip * b[p * ldb + j];
    }
}

/// Which library computes the large products, and why (see blas_fits_cpu).
struct GemmChoice {
  bool blas = false;
  std::string description;
};

#ifdef GG_HAVE_OPENBLAS
/// OpenBLAS picks its kernels at run time from the CPU, and can get it wrong: Debian's 0.3.21 took
/// some AVX-512 Xeons for a "Prescott" (SSE3) and ran ~5x slower, silently. Its kernels are used
/// only when they are of the widest vector family this CPU has; Eigen, compiled for this CPU, does
/// the products otherwise, and gemm_library() says so.
bool blas_fits_cpu(const std::string& core) {
  static constexpr std::array<std::string_view, 3> avx512_cores{"SkylakeX", "Cooperlake", "SapphireRapids"};
  static constexpr std::array<std::string_view, 2> avx2_cores{"Haswell", "Zen"};
  const auto in = [&](const auto& list) { return std::find(list.begin(), list.end(), core) != list.end(); };
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx512f")) return in(avx512_cores);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return in(avx2_cores) || in(avx512_cores);
#endif
  return true;
}

GemmChoice choose_gemm() {
  const std::string core = openblas_get_corename();
  if (blas_fits_cpu(core)) return {true, fmt::format("OpenBLAS ({} kernels)", core)};
  return {false,
          fmt::format("Eigen (OpenBLAS chose its {} kernels, narrower than this CPU's vectors)", core)};
}
#else
GemmChoice choose_gemm() {
  return {false, "Eigen (built without OpenBLAS)"};
}
#endif

const GemmChoice& gemm_choice() {
  static const GemmChoice c = choose_gemm();
  return c;
}
std::atomic<bool> g_blas_allowed{true};

/// Whether OpenBLAS does the large products, on more than one thread.
bool blas_threads_in_use() {
  return gemm_choice().blas && g_blas_allowed.load(std::memory_order_relaxed) &&
         g_num_threads.load(std::memory_order_relaxed) > 1;
}

/// c[n,m] = op(a) op(b) (or c += ... with accumulate) for row-major a (row length lda) and b (ldb):
/// plain loops for tiny products, OpenBLAS when it is in use, Eigen otherwise.
template <class T>
void gemm_any(const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n, Index k, Index m,
              bool accumulate = false) {
  if (n * k * m <= k_small_gemm) return gemm_small(a, ta, lda, b, tb, ldb, c, n, k, m, accumulate);
  const T beta = accumulate ? T(1) : T(0);
#ifdef GG_HAVE_OPENBLAS
  if (gemm_choice().blas && g_blas_allowed.load(std::memory_order_relaxed)) {
    const auto op = [](bool t) { return t ? CblasTrans : CblasNoTrans; };
    const auto bi = [](Index v) { return static_cast<blasint>(v); };
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasRowMajor, op(ta), op(tb), bi(n), bi(m), bi(k), 1.0f, a, bi(lda), b, bi(ldb), beta, c,
                  bi(m));
    else
      cblas_dgemm(CblasRowMajor, op(ta), op(tb), bi(n), bi(m), bi(k), 1.0, a, bi(lda), b, bi(ldb), beta, c,
                  bi(m));
    return;
  }
#endif
  ensure_eigen_threads();
  using Stride = Eigen::OuterStride<>;
  const Eigen::Map<const RowMatrix<T>, 0, Stride> A(a, ta ? k : n, ta ? n : k, Stride(lda)),
      B(b, tb ? m : k, tb ? k : m, Stride(ldb));
  MutMap<T> C(c, n, m);
  if (!accumulate) C.setZero();
  if (!ta && !tb)
    C.noalias() += A * B;
  else if (ta && !tb)
    C.noalias() += A.transpose() * B;
  else if (!ta && tb)
    C.noalias() += A * B.transpose();
  else
    C.noalias() += A.transpose() * B.transpose();
}

/// c[n,m] = a[n,k] b[k,m], all row-major and contiguous.
template <class T> void gemm_rows(const T* a, const T* b, T* c, Index n, Index k, Index m) {
  gemm_any(a, false, k, b, false, m, c, n, k, m);
}

Shape drop_last_two(const Shape& s) {
  std::vector<Index> dims(s.begin(), s.end() - 2);
  return Shape(dims);
}

// ---------------------------------------------------------------------------------------------
// Slicing helpers

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
  detail::require_defined(x, "unary");
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const bool cheap = f == Unary::neg || f == Unary::abs || f == Unary::relu || f == Unary::sign ||
                       f == Unary::square || f == Unary::sqrt;
    detail::with_unary<T>(f, [&](auto fn) {
      detail::map_unary(x.data<T>(), out.data<T>(), x.numel(), fn, cheap ? 1 : detail::k_transcendental_cost);
    });
  });
  return out;
}

Tensor unary_backward(Unary f, const Tensor& g, const Tensor& x, const Tensor& out) {
  detail::require_defined(g, "unary_backward");
  detail::require_defined(x, "unary_backward");
  if (!(g.shape() == x.shape()) || !(out.shape() == x.shape()))
    throw ShapeError(fmt::format("unary_backward: gradient {}, input {} and output {} differ in shape",
                                 g.shape().str(), x.shape().str(), out.shape().str()));
  const Tensor pg = g.to(x.dtype()), po = out.to(x.dtype());
  Tensor r = Tensor::empty(x.shape(), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *gp = pg.data<T>(), *xp = x.data<T>(), *op = po.data<T>();
    T* rp = r.data<T>();
    auto map = [&](auto fn) {
      detail::parallel_range(x.numel(), [&](Index lo, Index hi) {
        for (Index i = lo; i < hi; ++i) rp[i] = fn(gp[i], xp[i], op[i]);
      });
    };
    switch (f) {
    case Unary::neg: return map([](T gi, T, T) { return -gi; });
    case Unary::exp: return map([](T gi, T, T o) { return gi * o; });
    case Unary::log: return map([](T gi, T xi, T) { return gi / xi; });
    case Unary::sqrt: return map([](T gi, T, T o) { return gi / (T(2) * o); });
    case Unary::abs: return map([](T gi, T xi, T) { return xi > 0 ? gi : xi < 0 ? -gi : T(0); });
    case Unary::tanh: return map([](T gi, T, T o) { return gi * (T(1) - o * o); });
    case Unary::sigmoid: return map([](T gi, T, T o) { return gi * o * (T(1) - o); });
    case Unary::relu: return map([](T gi, T xi, T) { return xi > 0 ? gi : T(0); });
    case Unary::sin: return map([](T gi, T xi, T) { return gi * std::cos(xi); });
    case Unary::cos: return map([](T gi, T xi, T) { return -gi * std::sin(xi); });
    case Unary::sign: return map([](T, T, T) { return T(0); });
    case Unary::square: return map([](T gi, T xi, T) { return T(2) * xi * gi; });
    }
  });
  return r;
}

Tensor binary(Binary f, const Tensor& a, const Tensor& b, std::string_view op) {
  const std::string_view name = op.empty() ? detail::binary_name(f) : op;
  detail::require_defined(a, name);
  detail::require_defined(b, name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  const DType dtype = result_dtype(a, b);
  const Tensor pa = a.to(dtype), pb = b.to(dtype);
  Tensor out = Tensor::empty(shape, dtype);
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    detail::with_binary<T>(f, [&](auto fn) { detail::map_binary<T>(pa, pb, out, fn); });
  });
  return out;
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
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T k = static_cast<T>(slope);
    detail::map_unary(x.data<T>(), out.data<T>(), x.numel(), [k](T v) { return v > 0 ? v : v * k; });
  });
  return out;
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  detail::require_defined(x, "clamp");
  if (lo > hi) throw ValueError(fmt::format("clamp: lo {} is greater than hi {}", lo, hi));
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    detail::map_unary(x.data<T>(), out.data<T>(), x.numel(), [l, h](T v) {
      return v < l ? l : v > h ? h : v;
    });
  });
  return out;
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

// ---------------------------------------------------------------------------------------------
// Reductions

Tensor sum(const Tensor& x) {
  detail::require_defined(x, "sum");
  return detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    return Tensor::scalar(detail::sum_contiguous(x.data<T>(), x.numel()), x.dtype());
  });
}

Tensor sum(const Tensor& x, int axis, bool keepdim) {
  return detail::sum_axis(x, axis, keepdim, "sum", false);
}

Tensor mean(const Tensor& x) {
  detail::require_defined(x, "mean");
  return detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const double s = detail::sum_contiguous(x.data<T>(), x.numel());
    return Tensor::scalar(s / static_cast<double>(x.numel()), x.dtype());
  });
}

Tensor mean(const Tensor& x, int axis, bool keepdim) {
  return detail::sum_axis(x, axis, keepdim, "mean", true);
}

Tensor max(const Tensor& x) {
  return detail::reduce_all_extreme(x, "max", [](auto m, auto y) { return (y > m || y != y) ? y : m; });
}

Tensor min(const Tensor& x) {
  return detail::reduce_all_extreme(x, "min", [](auto m, auto y) { return (y < m || y != y) ? y : m; });
}

Tensor max(const Tensor& x, int axis, bool keepdim) {
  detail::require_defined(x, "max");
  const int ax = normalize_axis(axis, x.rank(), "max");
  detail::require_nonempty_axis(x.shape(), ax, "max");
  const detail::AxisView v(x.shape(), ax);
  Tensor out = Tensor::empty(detail::reduced_shape(x.shape(), ax, keepdim), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    T* o = out.data<T>();
    for (Index i = 0; i < v.outer; ++i) {
      T* orow = o + i * v.inner;
      const T* base = p + i * v.n * v.inner;
      std::copy(base, base + v.inner, orow);
      for (Index k = 1; k < v.n; ++k) {
        const T* row = base + k * v.inner;
        for (Index j = 0; j < v.inner; ++j)
          orow[j] = (row[j] > orow[j] || row[j] != row[j]) ? row[j] : orow[j];
      }
    }
  });
  return out;
}

Tensor max_backward(const Tensor& x, const Tensor& out, const Tensor& g, int axis) {
  detail::require_defined(x, "max backward");
  const int ax = normalize_axis(axis, x.rank(), "max backward");
  const detail::AxisView v(x.shape(), ax);
  if (out.numel() != v.outer * v.inner || g.numel() != out.numel())
    throw ShapeError(
        fmt::format("max backward: maximum of shape {} and gradient of shape {} do not fit input {} "
                    "reduced along axis {}",
                    out.shape().str(), g.shape().str(), x.shape().str(), ax));
  Tensor r = Tensor::empty(x.shape(), x.dtype());
  const Tensor po = out.to(x.dtype()), pg = g.to(x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *xp = x.data<T>(), *op = po.data<T>(), *gp = pg.data<T>();
    T* rp = r.data<T>();
    std::vector<T> share(static_cast<std::size_t>(v.inner));
    for (Index i = 0; i < v.outer; ++i) {
      const T* m = op + i * v.inner;
      const T* gi = gp + i * v.inner;
      std::fill(share.begin(), share.end(), T(0));
      for (Index k = 0; k < v.n; ++k) { // ties per lane
        const T* row = xp + (i * v.n + k) * v.inner;
        for (Index j = 0; j < v.inner; ++j)
          share[static_cast<std::size_t>(j)] += row[j] == m[j] ? T(1) : T(0);
      }
      for (Index j = 0; j < v.inner; ++j) { // no tie (a NaN maximum): NaN, as the differentiable rule's 0/0
        T& sj = share[static_cast<std::size_t>(j)];
        sj = sj > 0 ? gi[j] / sj : std::numeric_limits<T>::quiet_NaN();
      }
      for (Index k = 0; k < v.n; ++k) {
        const T* row = xp + (i * v.n + k) * v.inner;
        T* o = rp + (i * v.n + k) * v.inner;
        for (Index j = 0; j < v.inner; ++j) {
          const T s = share[static_cast<std::size_t>(j)];
          o[j] = row[j] == m[j] ? s : (s == s ? T(0) : s);
        }
      }
    }
  });
  return r;
}

Tensor argmax(const Tensor& x, int axis, bool keepdim) {
  detail::require_defined(x, "argmax");
  const int ax = normalize_axis(axis, x.rank(), "argmax");
  detail::require_nonempty_axis(x.shape(), ax, "argmax");
  const detail::AxisView v(x.shape(), ax);
  Tensor out = Tensor::empty(detail::reduced_shape(x.shape(), ax, keepdim), f64);
  double* o = out.data<double>();
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    detail::for_each_lane(v, [&](Index base, Index stride, Index oi) {
      Index best = 0;
      T m = p[base];
      for (Index k = 1; k < v.n && m == m; ++k) {
        const T y = p[base + k * stride];
        if (y > m || y != y) {
          m = y;
          best = k;
        }
      }
      o[oi] = static_cast<double>(best);
    });
  });
  return out;
}

Tensor logsumexp(const Tensor& x, int axis, bool keepdim) {
  detail::require_defined(x, "logsumexp");
  const int ax = normalize_axis(axis, x.rank(), "logsumexp");
  const detail::AxisView v(x.shape(), ax);
  Tensor out = Tensor::empty(detail::reduced_shape(x.shape(), ax, keepdim), x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    T* o = out.data<T>();
    detail::for_each_lane(v, [&](Index base, Index stride, Index oi) {
      if (v.n == 0) {
        o[oi] = -std::numeric_limits<T>::infinity();
        return;
      }
      const T m = detail::lane_max(p + base, stride, v.n);
      if (!std::isfinite(m)) { // NaN, +inf (the sum is infinite) or -inf (every term is zero)
        o[oi] = m;
        return;
      }
      double s = 0;
      for (Index k = 0; k < v.n; ++k) s += static_cast<double>(std::exp(p[base + k * stride] - m));
      o[oi] = static_cast<T>(static_cast<double>(m) + std::log(s));
    });
  });
  return out;
}

namespace {
/// Softmax (log_space false) or log-softmax of every lane along the axis, max subtracted first.
Tensor softmax_impl(const Tensor& x, int axis, bool log_space, std::string_view op) {
  detail::require_defined(x, op);
  const int ax = normalize_axis(axis, x.rank(), op);
  const detail::AxisView v(x.shape(), ax);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  if (v.n == 0) return out;
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    constexpr T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    const T* p = x.data<T>();
    T* o = out.data<T>();
    detail::for_each_lane(v, [&](Index base, Index stride, Index) {
      const T* in = p + base;
      T* res = o + base;
      const T m = detail::lane_max(in, stride, v.n);
      if (m != m || m == -inf) { // NaN in the lane, or every entry -inf: undefined
        for (Index k = 0; k < v.n; ++k) res[k * stride] = nan;
        return;
      }
      if (m == inf) { // the limit: the +inf entries share the mass equally
        Index count = 0;
        for (Index k = 0; k < v.n; ++k) count += in[k * stride] == inf;
        const T share = log_space ? static_cast<T>(-std::log(static_cast<double>(count)))
                                  : static_cast<T>(1.0 / static_cast<double>(count));
        const T rest = log_space ? -inf : T(0);
        for (Index k = 0; k < v.n; ++k) res[k * stride] = in[k * stride] == inf ? share : rest;
        return;
      }
      double s = 0;
      if (log_space) {
        for (Index k = 0; k < v.n; ++k) s += static_cast<double>(std::exp(in[k * stride] - m));
        const T log_s = static_cast<T>(std::log(s));
        for (Index k = 0; k < v.n; ++k) res[k * stride] = (in[k * stride] - m) - log_s;
      } else {
        for (Index k = 0; k < v.n; ++k) {
          const T e = std::exp(in[k * stride] - m);
          res[k * stride] = e;
          s += static_cast<double>(e);
        }
        const T inv = static_cast<T>(1.0 / s);
        for (Index k = 0; k < v.n; ++k) res[k * stride] *= inv;
      }
    });
  });
  return out;
}
} // namespace

Tensor softmax_backward(const Tensor& g, const Tensor& out, int axis, bool log_space) {
  const std::string_view op = log_space ? "log_softmax backward" : "softmax backward";
  detail::require_defined(g, op);
  detail::require_defined(out, op);
  if (!(g.shape() == out.shape()))
    throw ShapeError(
        fmt::format("{}: gradient {} and output {} differ in shape", op, g.shape().str(), out.shape().str()));
  const int ax = normalize_axis(axis, out.rank(), op);
  const detail::AxisView v(out.shape(), ax);
  const Tensor pg = g.to(out.dtype());
  Tensor r = Tensor::empty(out.shape(), out.dtype());
  detail::dispatch(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *gp = pg.data<T>(), *op_ = out.data<T>();
    T* rp = r.data<T>();
    detail::for_each_lane(v, [&](Index base, Index stride, Index) {
      double s = 0;
      if (log_space) { // g - exp(out) * sum(g)
        for (Index k = 0; k < v.n; ++k) s += static_cast<double>(gp[base + k * stride]);
        const T st = static_cast<T>(s);
        for (Index k = 0; k < v.n; ++k) {
          const Index i = base + k * stride;
          rp[i] = gp[i] - std::exp(op_[i]) * st;
        }
      } else { // out * (g - sum(g * out))
        for (Index k = 0; k < v.n; ++k) {
          const Index i = base + k * stride;
          s += static_cast<double>(gp[i] * op_[i]);
        }
        const T st = static_cast<T>(s);
        for (Index k = 0; k < v.n; ++k) {
          const Index i = base + k * stride;
          rp[i] = op_[i] * (gp[i] - st);
        }
      }
    });
  });
  return r;
}

Tensor softmax(const Tensor& x, int axis) {
  return softmax_impl(x, axis, false, "softmax");
}

Tensor log_softmax(const Tensor& x, int axis) {
  return softmax_impl(x, axis, true, "log_softmax");
}

// ---------------------------------------------------------------------------------------------
// Matrix products

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::require_defined(a, "matmul");
  detail::require_defined(b, "matmul");
  if (a.rank() == 0 || b.rank() == 0)
    throw ShapeError(fmt::format("matmul: shapes {} and {} do not fit (0-d operands are not matrices)",
                                 a.shape().str(), b.shape().str()));
  const bool a_vec = a.rank() == 1, b_vec = b.rank() == 1;
  const Shape sa = a_vec ? Shape{1, a.shape()[0]} : a.shape();
  const Shape sb = b_vec ? Shape{b.shape()[0], 1} : b.shape();
  const Index n = sa[sa.rank() - 2], k = sa[sa.rank() - 1], kb = sb[sb.rank() - 2], m = sb[sb.rank() - 1];
  if (k != kb)
    throw ShapeError(fmt::format("matmul: shapes {} and {} do not fit (inner dimensions {} and {})",
                                 a.shape().str(), b.shape().str(), k, kb));
  const Shape batch_a = detail::drop_last_two(sa), batch_b = detail::drop_last_two(sb);
  Shape batch;
  try {
    batch = broadcast_shapes(batch_a, batch_b, "matmul");
  } catch (const ShapeError&) {
    throw ShapeError(fmt::format("matmul: shapes {} and {} cannot be broadcast (batch dimensions {} and {})",
                                 a.shape().str(), b.shape().str(), batch_a.str(), batch_b.str()));
  }
  std::vector<Index> out_dims = batch.to_vector();
  if (!a_vec) out_dims.push_back(n);
  if (!b_vec) out_dims.push_back(m);

  const DType dtype = promote(a.dtype(), b.dtype());
  const Tensor pa = a.to(dtype), pb = b.to(dtype);
  Tensor out = Tensor::empty(Shape(out_dims), dtype);
  if (out.numel() == 0) return out;
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* A = pa.data<T>();
    const T* B = pb.data<T>();
    T* C = out.data<T>();
    const Index batches = batch.numel();
    if (batch_b.numel() == 1 && batch_a.numel() == batches) {
      // b is one matrix: fold a's batch into its rows for a single product.
      detail::gemm_rows(A, B, C, batches * n, k, m);
      return;
    }
    detail::Dims so = detail::contiguous_strides(batch), sa_b = detail::broadcast_strides(batch_a, batch),
                 sb_b = detail::broadcast_strides(batch_b, batch);
    for (int d = 0; d < batch.rank(); ++d) {
      so[detail::at(d)] *= n * m;
      sa_b[detail::at(d)] *= n * k;
      sb_b[detail::at(d)] *= k * m;
    }
    const auto w = detail::make_walk<3>(batch, {so, sa_b, sb_b});
    const Index len = w.inner_size(), io = w.inner_stride(0), ia = w.inner_stride(1), ib = w.inner_stride(2);
    detail::for_each_row(w, [&](const std::array<Index, 3>& off) {
      for (Index j = 0; j < len; ++j)
        detail::gemm_rows(A + off[1] + j * ia, B + off[2] + j * ib, C + off[0] + j * io, n, k, m);
    });
  });
  return out;
}

Tensor gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b) {
  detail::require_defined(a, "gemm");
  detail::require_defined(b, "gemm");
  const auto describe = [](const Tensor& t, bool tr) {
    return t.shape().str() + (tr ? " (transposed)" : "");
  };
  if (a.rank() != 2 || b.rank() != 2)
    throw ShapeError(
        fmt::format("gemm: shapes {} and {} are not both 2-d", describe(a, trans_a), describe(b, trans_b)));
  const Index ar = a.shape()[0], ac = a.shape()[1], br = b.shape()[0], bc = b.shape()[1];
  const Index n = trans_a ? ac : ar, k = trans_a ? ar : ac, kb = trans_b ? bc : br, m = trans_b ? br : bc;
  if (k != kb)
    throw ShapeError(fmt::format("gemm: shapes {} and {} do not fit (inner dimensions {} and {})",
                                 describe(a, trans_a), describe(b, trans_b), k, kb));
  const DType dtype = promote(a.dtype(), b.dtype());
  const Tensor pa = a.to(dtype), pb = b.to(dtype);
  Tensor out = Tensor::empty(Shape{n, m}, dtype);
  if (out.numel() == 0) return out;
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    detail::gemm_any(pa.data<T>(), trans_a, ac, pb.data<T>(), trans_b, bc, out.data<T>(), n, k, m);
  });
  return out;
}

Tensor gemm_batched(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, bool sum_batch) {
  detail::require_defined(a, "gemm_batched");
  detail::require_defined(b, "gemm_batched");
  const auto describe = [](const Tensor& t, bool tr) {
    return t.shape().str() + (tr ? " (transposed)" : "");
  };
  const bool a3 = a.rank() == 3, b3 = b.rank() == 3;
  if (a.rank() < 2 || a.rank() > 3 || b.rank() < 2 || b.rank() > 3 ||
      (a3 && b3 && a.shape()[0] != b.shape()[0]))
    throw ShapeError(
        fmt::format("gemm_batched: shapes {} and {} are not [batch, rows, cols] with equal batches "
                    "(or one 2-d)",
                    describe(a, trans_a), describe(b, trans_b)));
  const Index ar = a.shape()[a.rank() - 2], ac = a.shape()[a.rank() - 1];
  const Index br = b.shape()[b.rank() - 2], bc = b.shape()[b.rank() - 1];
  const Index n = trans_a ? ac : ar, k = trans_a ? ar : ac, kb = trans_b ? bc : br, m = trans_b ? br : bc;
  if (k != kb)
    throw ShapeError(fmt::format("gemm_batched: shapes {} and {} do not fit (inner dimensions {} and {})",
                                 describe(a, trans_a), describe(b, trans_b), k, kb));
  const Index batch = a3 ? a.shape()[0] : b3 ? b.shape()[0] : 1;
  const DType dtype = promote(a.dtype(), b.dtype());
  const Tensor pa = a.to(dtype), pb = b.to(dtype);
  Tensor out = sum_batch ? Tensor::zeros(Shape{n, m}, dtype) : Tensor::empty(Shape{batch, n, m}, dtype);
  if (n * m == 0) return out;
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* A = pa.data<T>();
    const T* B = pb.data<T>();
    T* C = out.data<T>();
    for (Index i = 0; i < batch; ++i)
      detail::gemm_any(A + (a3 ? i * ar * ac : 0), trans_a, ac, B + (b3 ? i * br * bc : 0), trans_b, bc,
                       C + (sum_batch ? 0 : i * n * m), n, k, m, sum_batch && i > 0);
  });
  return out;
}

std::string gemm_library() {
  const detail::GemmChoice& c = detail::gemm_choice();
  if (c.blas && !detail::g_blas_allowed.load()) return "Eigen (OpenBLAS turned off by use_blas(false))";
  return c.description;
}

void use_blas(bool on) {
  detail::g_blas_allowed.store(on);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::require_defined(x, "linear");
  detail::require_defined(weight, "linear");
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  if (ws.rank() != 2 || xs.rank() < 1 || xs[xs.rank() - 1] != ws[1])
    throw ShapeError(
        fmt::format("linear: input of shape {} and weight of shape {} do not fit (the weight must "
                    "be [out, in] with in the input's last dimension)",
                    xs.str(), ws.str()));
  if (bias.defined() && (bias.rank() != 1 || bias.shape()[0] != ws[0]))
    throw ShapeError(fmt::format("linear: bias of shape {} does not fit weight of shape {} (expected [{}])",
                                 bias.shape().str(), ws.str(), ws[0]));
  const Index in = ws[1], out = ws[0];
  Index rows = 1;
  for (int d = 0; d + 1 < xs.rank(); ++d) rows *= xs[d];
  DType dtype = promote(x.dtype(), weight.dtype());
  if (bias.defined()) dtype = promote(dtype, bias.dtype());
  Shape ys = xs;
  ys[xs.rank() - 1] = out;
  // As PyTorch's addmm: the output starts as the bias, rows repeated, and the GEMM adds x W^T to it
  // (no zeroing pass, no second pass for the bias).
  Tensor y = Tensor::empty(ys, dtype);
  if (y.numel() == 0) return y;
  const Tensor px = x.to(dtype), pw = weight.to(dtype), pb = bias.defined() ? bias.to(dtype) : Tensor();
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* yp = y.data<T>();
    if (pb.defined())
      for (Index r = 0; r < rows; ++r) std::copy_n(pb.data<T>(), out, yp + r * out);
    detail::gemm_any(px.data<T>(), false, in, pw.data<T>(), true, in, yp, rows, in, out, pb.defined());
  });
  return y;
}

// ---------------------------------------------------------------------------------------------
// Layout and indexing

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

// ---------------------------------------------------------------------------------------------
// Threads

void set_num_threads(int n) {
  if (n < 1) throw ValueError(fmt::format("set_num_threads: n must be at least 1, got {}", n));
  detail::ensure_eigen_threads();
  detail::g_num_threads.store(n);
  Eigen::setNbThreads(n);
#ifdef GG_HAVE_OPENBLAS
  openblas_set_num_threads(n);
#endif
}

int num_threads() {
  return detail::g_num_threads.load();
}

namespace {
struct ConvGeometry {
  std::int64_t n, c, h, w, kh, kw, stride, padding, oh, ow;
  bool threaded = true; ///< im2col and col2im may split planes across the kernel threads
};

ConvGeometry conv_geometry(const Shape& image, std::int64_t kh, std::int64_t kw, std::int64_t stride,
                           std::int64_t padding, std::string_view op) {
  if (image.rank() != 4)
    throw ShapeError(fmt::format("{}: expected an image batch [N, C, H, W], got shape {}", op, image.str()));
  if (kh < 1 || kw < 1 || stride < 1 || padding < 0)
    throw ValueError(fmt::format("{}: kernel {}x{}, stride {}, padding {}: kernel and stride must be >= 1, "
                                 "padding >= 0",
                                 op, kh, kw, stride, padding));
  ConvGeometry g{image[0], image[1], image[2], image[3], kh, kw, stride, padding, 0, 0};
  // Every size the kernels derive (padded sides, columns [N, C*kh*kw, oh*ow], windows) must fit in
  // 64 bits: hostile sizes are an error here, not an overflow later.
  std::int64_t ph = 0, pw = 0, columns = 0;
  const bool overflow = __builtin_mul_overflow(padding, 2, &ph) || __builtin_add_overflow(ph, g.h, &ph) ||
                        __builtin_mul_overflow(padding, 2, &pw) || __builtin_add_overflow(pw, g.w, &pw);
  if (!overflow && (ph < kh || pw < kw))
    throw ShapeError(fmt::format("{}: a {}x{} window does not fit an image of shape {} with padding {}", op,
                                 kh, kw, image.str(), padding));
  if (!overflow) {
    g.oh = (ph - kh) / stride + 1;
    g.ow = (pw - kw) / stride + 1;
  }
  if (overflow || __builtin_mul_overflow(g.n * g.c, kh, &columns) ||
      __builtin_mul_overflow(columns, kw, &columns) || __builtin_mul_overflow(columns, g.oh, &columns) ||
      __builtin_mul_overflow(columns, g.ow, &columns) || columns > (std::int64_t{1} << 60))
    throw ValueError(fmt::format("{}: kernel {}x{}, stride {}, padding {} on an image of shape {}: the "
                                 "windows would hold more than 2^60 elements",
                                 op, kh, kw, stride, padding, image.str()));
  return g;
}

/// Where unfold's columns go: window row r = (c*kh + i)*kw + j of image n starts at
/// n * image_step + r * row_step. unfold's [N, C*kh*kw, L] has image_step C*kh*kw*L and row_step L;
/// conv2d's one [C*kh*kw, N*L] matrix for the whole batch has image_step L and row_step N*L.
struct ColumnLayout {
  std::int64_t image_step, row_step;
};

ColumnLayout per_image_layout(const ConvGeometry& g) {
  const std::int64_t l = g.oh * g.ow;
  return {g.c * g.kh * g.kw * l, l};
}
ColumnLayout batch_layout(const ConvGeometry& g) {
  const std::int64_t l = g.oh * g.ow;
  return {l, g.n * l};
}

/// Along one axis (input length `in`, output length `out`): the output positions [lo, hi) whose
/// window offset `k` reads inside the image (the others read padding).
std::pair<std::int64_t, std::int64_t> inside_span(const ConvGeometry& g, std::int64_t in, std::int64_t out,
                                                  std::int64_t k) {
  const std::int64_t shift = k - g.padding; // input position o * stride + shift
  const std::int64_t lo = std::min(out, shift >= 0 ? 0 : (-shift + g.stride - 1) / g.stride);
  const std::int64_t hi = std::max(lo, std::min(out, in - shift <= 0 ? 0 : (in - shift - 1) / g.stride + 1));
  return {lo, hi};
}
/// The output columns [x0, x1) whose window column j lies inside the image.
std::pair<std::int64_t, std::int64_t> inside_columns(const ConvGeometry& g, std::int64_t j) {
  return inside_span(g, g.w, g.ow, j);
}
/// The output rows [y0, y1) whose window row i lies inside the image.
std::pair<std::int64_t, std::int64_t> inside_rows(const ConvGeometry& g, std::int64_t i) {
  return inside_span(g, g.h, g.oh, i);
}

/// The inside rows [y0, y1) and columns [x0, x1) of one kernel offset (i, j).
struct InsideRange {
  std::int64_t y0, y1, x0, x1;
};

/// For every image n, channel c and kernel offset (i, j), calls window(col, img, i, j, inside):
/// the L = oh*ow contiguous columns from col hold the (i, j) offset of every window of image plane
/// img (the element offset of x[n, c]), read from the image for inside's rows and columns. The
/// work is split across the kernel threads by (image, channel) plane: each plane's columns and
/// image are its own, so unfold's writes and fold's sums never collide. Planes go channel-major in
/// the batch layout, so a thread walks each row in order.
template <class F> void for_each_window(const ConvGeometry& g, ColumnLayout layout, F&& window) {
  const std::int64_t l = g.oh * g.ow;
  const bool channel_major = layout.image_step == l && g.n > 1;
  std::vector<InsideRange> inside; // once per call: the divisions are not per plane
  for (std::int64_t i = 0; i < g.kh; ++i)
    for (std::int64_t j = 0; j < g.kw; ++j) {
      const auto [y0, y1] = inside_rows(g, i);
      const auto [x0, x1] = inside_columns(g, j);
      inside.push_back({y0, y1, x0, x1});
    }
  const auto planes = [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t plane = lo; plane < hi; ++plane) {
      const std::int64_t n = channel_major ? plane % g.n : plane / g.c;
      const std::int64_t c = channel_major ? plane / g.n : plane % g.c;
      for (std::int64_t i = 0; i < g.kh; ++i)
        for (std::int64_t j = 0; j < g.kw; ++j)
          window(n * layout.image_step + ((c * g.kh + i) * g.kw + j) * layout.row_step,
                 (n * g.c + c) * g.h * g.w, i, j, inside[static_cast<std::size_t>(i * g.kw + j)]);
    }
  };
  if (g.threaded)
    detail::parallel_range(g.n * g.c, planes, detail::k_window_cost * g.kh * g.kw * l);
  else
    planes(0, g.n * g.c);
}

/// Stride 1 with the output as wide as the input ("same" padding, the usual Conv2d): the inside
/// part of a window offset's columns is the image plane shifted by one offset, so one contiguous
/// range [q0, q1) of the columns pairs with plane element q + shift.
struct ShiftedPlane {
  std::int64_t shift, q0, q1;
};
bool is_shifted_plane(const ConvGeometry& g) {
  return g.stride == 1 && g.ow == g.w;
}
ShiftedPlane shifted_plane(const ConvGeometry& g, std::int64_t i, std::int64_t j, std::int64_t y0,
                           std::int64_t y1) {
  const std::int64_t shift = (i - g.padding) * g.w + (j - g.padding);
  return {shift, std::max(y0 * g.w, -shift), std::max(y0 * g.w, std::min(y1 * g.w, g.h * g.w - shift))};
}

/// im2col of src (geometry g) into dst laid out as `layout` says.
template <class T> void unfold_into(const ConvGeometry& g, ColumnLayout layout, const T* src, T* dst, T pad) {
  const std::int64_t stride = g.stride, ow = g.ow, l = g.oh * g.ow;
  const bool shifted = is_shifted_plane(g);
  for_each_window(
      g, layout, [&](std::int64_t col, std::int64_t img, std::int64_t i, std::int64_t j, InsideRange r) {
        T* o = dst + col;
        const T* in = src + img;
        const std::int64_t x0 = r.x0, x1 = r.x1, y0 = r.y0, y1 = r.y1;
        std::fill(o, o + y0 * ow, pad);
        std::fill(o + y1 * ow, o + l, pad);
        if (shifted) { // one contiguous copy, then the columns that wrapped around to the next row
          const ShiftedPlane sp = shifted_plane(g, i, j, y0, y1);
          std::fill(o + y0 * ow, o + sp.q0, pad);
          std::copy(in + sp.q0 + sp.shift, in + sp.q1 + sp.shift, o + sp.q0);
          std::fill(o + sp.q1, o + y1 * ow, pad);
          if (x0 > 0 || x1 < ow)
            for (std::int64_t y = y0; y < y1; ++y) {
              T* row = o + y * ow;
              for (std::int64_t x = 0; x < x0; ++x) row[x] = pad;
              for (std::int64_t x = x1; x < ow; ++x) row[x] = pad;
            }
          return;
        }
        const std::int64_t shift = j - g.padding;
        for (std::int64_t y = y0; y < y1; ++y) {
          T* r = o + y * ow;
          const T* ir = in + (y * stride + i - g.padding) * g.w + shift;
          for (std::int64_t x = 0; x < x0; ++x) r[x] = pad;
          if (stride == 1)
            for (std::int64_t x = x0; x < x1; ++x) r[x] = ir[x];
          else
            for (std::int64_t x = x0; x < x1; ++x) r[x] = ir[x * stride];
          for (std::int64_t x = x1; x < ow; ++x) r[x] = pad;
        }
      });
}

/// col2im: adds the columns of src (laid out as `layout` says) into the zeroed image dst. With
/// scratch set, src may be overwritten (conv2d's own column buffer), which lets "same" convolutions
/// add each window offset as one contiguous range.
template <class T>
void fold_into(const ConvGeometry& g, ColumnLayout layout, const T* src, T* dst, T* scratch = nullptr) {
  const std::int64_t stride = g.stride, ow = g.ow;
  const bool shifted = scratch && is_shifted_plane(g);
  for_each_window(g, layout,
                  [&](std::int64_t col, std::int64_t img, std::int64_t i, std::int64_t j, InsideRange r) {
                    T* o = dst + img;
                    const T* in = src + col;
                    const std::int64_t x0 = r.x0, x1 = r.x1, y0 = r.y0, y1 = r.y1;
                    if (shifted) { // the columns that would wrap around to the next row are zeroed first
                      T* z = scratch + col;
                      if (x0 > 0 || x1 < ow)
                        for (std::int64_t y = y0; y < y1; ++y) {
                          T* row = z + y * ow;
                          for (std::int64_t x = 0; x < x0; ++x) row[x] = T(0);
                          for (std::int64_t x = x1; x < ow; ++x) row[x] = T(0);
                        }
                      const ShiftedPlane sp = shifted_plane(g, i, j, y0, y1);
                      T* op = o + sp.shift;
                      for (std::int64_t q = sp.q0; q < sp.q1; ++q) op[q] += z[q];
                      return;
                    }
                    const std::int64_t shift = j - g.padding;
                    for (std::int64_t y = y0; y < y1; ++y) {
                      T* r = o + (y * stride + i - g.padding) * g.w + shift;
                      const T* ir = in + y * ow;
                      if (stride == 1)
                        for (std::int64_t x = x0; x < x1; ++x) r[x] += ir[x];
                      else
                        for (std::int64_t x = x0; x < x1; ++x) r[x * stride] += ir[x];
                    }
                  });
}
} // namespace

Tensor unfold(const Tensor& x, std::int64_t kh, std::int64_t kw, std::int64_t stride, std::int64_t padding,
              double pad_value) {
  detail::require_defined(x, "unfold");
  const ConvGeometry g = conv_geometry(x.shape(), kh, kw, stride, padding, "unfold");
  Tensor out = Tensor::empty({g.n, g.c * kh * kw, g.oh * g.ow}, x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    unfold_into(g, per_image_layout(g), x.data<T>(), out.data<T>(), static_cast<T>(pad_value));
  });
  return out;
}

Tensor fold(const Tensor& cols, const Shape& image_shape, std::int64_t kh, std::int64_t kw,
            std::int64_t stride, std::int64_t padding) {
  detail::require_defined(cols, "fold");
  const ConvGeometry g = conv_geometry(image_shape, kh, kw, stride, padding, "fold");
  const Shape expected{g.n, g.c * kh * kw, g.oh * g.ow};
  if (!(cols.shape() == expected))
    throw ShapeError(fmt::format("fold: columns of shape {} do not fit image shape {} (expected {})",
                                 cols.shape().str(), image_shape.str(), expected.str()));
  Tensor out = Tensor::zeros(image_shape, cols.dtype());
  detail::dispatch(cols.dtype(), [&](auto tag) {
    using T = decltype(tag);
    fold_into(g, per_image_layout(g), cols.data<T>(), out.data<T>());
  });
  return out;
}

namespace {
/// The geometry of conv2d(x, weight) after checking the shapes: x [N, C, H, W], weight
/// [out, C, kh, kw], bias [out] or undefined.
ConvGeometry conv2d_geometry(const Shape& xs, const Shape& ws, const Tensor& bias, std::int64_t stride,
                             std::int64_t padding) {
  if (xs.rank() != 4 || ws.rank() != 4 || xs[1] != ws[1])
    throw ShapeError(fmt::format("conv2d: input of shape {} and weight of shape {} do not fit (expected an "
                                 "input [N, C, H, W] and a weight [out, C, kh, kw] with the same C)",
                                 xs.str(), ws.str()));
  if (bias.defined() && (bias.rank() != 1 || bias.shape()[0] != ws[0]))
    throw ShapeError(fmt::format("conv2d: bias of shape {} does not fit weight of shape {} (expected [{}])",
                                 bias.shape().str(), ws.str(), ws[0]));
  return conv_geometry(xs, ws[2], ws[3], stride, padding, "conv2d");
}
} // namespace

namespace {
/// How many images conv2d unfolds at a time: as many as keep the column block within a budget the
/// caches hold, so that the columns are written, multiplied and (backward) summed back while they
/// are still in cache, instead of a whole batch's columns (20 MB for the benchmark CNN's second
/// layer) going through memory. At least one image.
std::int64_t conv_chunk(const ConvGeometry& g, std::size_t element_size) {
  constexpr std::int64_t budget = 512 * 1024; // about an L2 cache; 256 KB - 2 MB measured alike
  const std::int64_t per_image = g.c * g.kh * g.kw * g.oh * g.ow * static_cast<std::int64_t>(element_size);
  return std::clamp<std::int64_t>(budget / std::max<std::int64_t>(per_image, 1), 1,
                                  std::max<std::int64_t>(g.n, 1));
}

/// g with only images [n0, n0 + count): the geometry of one chunk of a batch split into `parts`.
/// Its im2col, col2im and permutes split across the kernel threads only when nothing else does:
/// not when the batch is split across them (image_parts), nor when OpenBLAS runs the products on
/// several threads, whose workers spin between calls (a kernel thread next to them puts three
/// threads on two cores: measured 2-10% slower).
ConvGeometry images(ConvGeometry g, std::int64_t count, int parts) {
  g.n = count;
  g.threaded = parts == 1 && !detail::blas_threads_in_use();
  return g;
}

/// Into how many parts conv2d splits the batch: with several kernel threads and OpenBLAS, one part
/// per thread (each image chunk's products are too small to split well over OpenBLAS's threads:
/// the benchmark CNN's second layer multiplies 32x400 by 400x196), as long as there are at least
/// two chunks; otherwise one part, whose products OpenBLAS or Eigen may thread.
int image_parts(const ConvGeometry& g, std::int64_t chunk) {
  if (!detail::blas_threads_in_use()) return 1;
  const std::int64_t chunks = (g.n + chunk - 1) / chunk;
  return static_cast<int>(
      std::min<std::int64_t>(detail::g_num_threads.load(std::memory_order_relaxed), chunks));
}

/// OpenBLAS on one thread while it lives. OpenBLAS's thread count is global: when several threads
/// split batches at once, the first to enter sets it and the last to leave restores it.
class SingleThreadedBlas {
public:
  SingleThreadedBlas() {
    const std::lock_guard lock(mutex());
    if (inside()++ == 0) set(1);
  }
  ~SingleThreadedBlas() {
    const std::lock_guard lock(mutex());
    if (--inside() == 0) set(detail::g_num_threads.load());
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static int& inside() {
    static int count = 0;
    return count;
  }
  static void set([[maybe_unused]] int threads) {
#ifdef GG_HAVE_OPENBLAS
    openblas_set_num_threads(threads);
#endif
  }
};

/// Runs body(part, first, last) for images [first, last) of each of `parts` parts of a batch of n,
/// the parts at once on the kernel threads, with single-threaded products (OpenBLAS's thread count
/// is 1 meanwhile). The body must not throw (its buffers are allocated before).
template <class F> void over_image_parts(std::int64_t n, int parts, F&& body) {
  if (parts <= 1) return body(0, std::int64_t{0}, n);
  const SingleThreadedBlas single;
  detail::parallel_range(
      parts,
      [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t p = lo; p < hi; ++p) body(static_cast<int>(p), p * n / parts, (p + 1) * n / parts);
      },
      detail::k_parallel_min);
}
} // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::int64_t stride,
              std::int64_t padding) {
  detail::require_defined(x, "conv2d");
  detail::require_defined(weight, "conv2d");
  const ConvGeometry g = conv2d_geometry(x.shape(), weight.shape(), bias, stride, padding);
  DType dtype = promote(x.dtype(), weight.dtype());
  if (bias.defined()) dtype = promote(dtype, bias.dtype());
  const std::int64_t outc = weight.shape()[0], ckk = g.c * g.kh * g.kw, l = g.oh * g.ow,
                     plane = g.c * g.h * g.w;
  const Tensor px = x.to(dtype), pw = weight.to(dtype), pb = bias.defined() ? bias.to(dtype) : Tensor();
  Tensor y = Tensor::empty({g.n, outc, g.oh, g.ow}, dtype);
  if (y.numel() == 0) return y;
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t chunk = conv_chunk(g, sizeof(T));
    const int parts = image_parts(g, chunk);
    std::vector<Tensor> cols(parts), yt(parts);
    for (int p = 0; p < parts; ++p)
      cols[p] = Tensor::empty({ckk, chunk * l}, dtype), yt[p] = Tensor::empty({outc, chunk * l}, dtype);
    T* yp = y.data<T>();
    const T* bp = pb.defined() ? pb.data<T>() : nullptr;
    over_image_parts(g.n, parts, [&](int part, std::int64_t first, std::int64_t last) {
      T* cp = cols[part].data<T>();
      T* tp = yt[part].data<T>();
      for (std::int64_t n0 = first; n0 < last; n0 += chunk) {
        // The chunk's images as one [C*kh*kw, nb*L] column matrix, one GEMM, then each image's rows
        // moved into place with the bias added.
        const std::int64_t nb = std::min(chunk, last - n0), m = nb * l;
        const ConvGeometry gc = images(g, nb, parts);
        unfold_into(gc, batch_layout(gc), px.data<T>() + n0 * plane, cp, T(0));
        detail::gemm_any(pw.data<T>(), false, ckk, cp, false, m, tp, outc, ckk, m);
        detail::parallel_range(
            nb,
            [&](std::int64_t lo, std::int64_t hi) {
              for (std::int64_t n = lo; n < hi; ++n)
                for (std::int64_t o = 0; o < outc; ++o) {
                  const T* src = tp + o * m + n * l;
                  T* dst = yp + ((n0 + n) * outc + o) * l;
                  const T b = bp ? bp[o] : T(0);
                  for (std::int64_t q = 0; q < l; ++q) dst[q] = src[q] + b;
                }
            },
            gc.threaded ? detail::k_window_cost * outc * l : 0);
      }
    });
  });
  return y;
}

std::array<Tensor, 3> conv2d_backward(const Tensor& g, const Tensor& x, const Tensor& weight,
                                      std::int64_t stride, std::int64_t padding, std::array<bool, 3> needs) {
  detail::require_defined(g, "conv2d_backward");
  const Shape ws = weight.shape();
  const ConvGeometry geo = conv2d_geometry(x.shape(), ws, Tensor(), stride, padding);
  const std::int64_t outc = ws[0], ckk = geo.c * geo.kh * geo.kw, l = geo.oh * geo.ow,
                     plane = geo.c * geo.h * geo.w;
  const Shape ys{geo.n, outc, geo.oh, geo.ow};
  if (!(g.shape() == ys))
    throw ShapeError(fmt::format("conv2d_backward: gradient of shape {} does not fit the output shape {}",
                                 g.shape().str(), ys.str()));
  const DType dtype = promote(g.dtype(), promote(x.dtype(), weight.dtype()));
  const Tensor pg = g.to(dtype), pw = weight.to(dtype), px = needs[1] ? x.to(dtype) : Tensor();
  std::array<Tensor, 3> out;
  if (needs[0]) out[0] = Tensor::zeros(x.shape(), dtype);
  if (needs[1]) out[1] = Tensor::zeros(ws, dtype);
  if (needs[2]) out[2] = Tensor::zeros({outc}, dtype);
  if (g.numel() == 0 || !(needs[0] || needs[1] || needs[2])) return out;
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* gp = pg.data<T>();
    if (needs[2]) {
      T* bp = out[2].data<T>();
      for (std::int64_t o = 0; o < outc; ++o) {
        double s = 0;
        for (std::int64_t n = 0; n < geo.n; ++n)
          for (std::int64_t p = 0; p < l; ++p) s += gp[(n * outc + o) * l + p];
        bp[o] = static_cast<T>(s);
      }
    }
    if (!needs[0] && !needs[1]) return;
    const std::int64_t chunk = conv_chunk(geo, sizeof(T));
    const int parts = image_parts(geo, chunk);
    // Per part: column and g' buffers, and (after the first part, which writes the result) its own
    // weight gradient, added in part order at the end.
    std::vector<Tensor> cols(parts), gt(parts), dw(parts);
    for (int p = 0; p < parts; ++p) {
      cols[p] = Tensor::empty({ckk, chunk * l}, dtype), gt[p] = Tensor::empty({outc, chunk * l}, dtype);
      if (needs[1] && p > 0) dw[p] = Tensor::empty(ws, dtype);
    }
    over_image_parts(geo.n, parts, [&](int part, std::int64_t first, std::int64_t last) {
      T* cp = cols[part].data<T>();
      T* tp = gt[part].data<T>();
      T* wp = !needs[1] ? nullptr : part == 0 ? out[1].data<T>() : dw[part].data<T>();
      for (std::int64_t n0 = first; n0 < last; n0 += chunk) {
        const std::int64_t nb = std::min(chunk, last - n0), m = nb * l;
        const ConvGeometry gc = images(geo, nb, parts);
        // The chunk's g as one [out, nb*L] matrix, the layout of the forward GEMM's output.
        detail::parallel_range(
            nb,
            [&](std::int64_t lo, std::int64_t hi) {
              for (std::int64_t n = lo; n < hi; ++n)
                for (std::int64_t o = 0; o < outc; ++o)
                  std::copy_n(gp + ((n0 + n) * outc + o) * l, l, tp + o * m + n * l);
            },
            gc.threaded ? detail::k_window_cost * outc * l : 0);
        if (needs[1]) { // dW += g' cols^T, the columns unfolded again (in cache) rather than kept
          unfold_into(gc, batch_layout(gc), px.data<T>() + n0 * plane, cp, T(0));
          detail::gemm_any(tp, false, m, cp, true, m, wp, outc, m, ckk, n0 > first);
        }
        if (needs[0]) { // dx += fold(W^T g')
          detail::gemm_any(pw.data<T>(), true, ckk, tp, false, m, cp, ckk, outc, m);
          fold_into(gc, batch_layout(gc), cp, out[0].data<T>() + n0 * plane, cp);
        }
      }
    });
    if (needs[1]) {
      T* w = out[1].data<T>();
      for (int p = 1; p < parts; ++p) {
        const T* d = dw[p].data<T>();
        for (std::int64_t i = 0; i < outc * ckk; ++i) w[i] += d[i];
      }
    }
  });
  return out;
}

namespace {
/// Windows that neither overlap nor reach into the padding (stride == kernel, no padding; the usual
/// MaxPool2d(2)): each input element is in at most one window.
bool disjoint_windows(const ConvGeometry& g) {
  return g.stride == g.kh && g.kh == g.kw && g.padding == 0;
}

/// f(std::integral_constant<int, K>) with K = k for the usual window sizes 2 and 3 (so that the
/// loops over a row of windows vectorize), K = 0 (k at run time) otherwise.
template <class F> void with_window_size(std::int64_t k, F&& f) {
  if (k == 2) return f(std::integral_constant<int, 2>{});
  if (k == 3) return f(std::integral_constant<int, 3>{});
  f(std::integral_constant<int, 0>{});
}

/// Maxima of the disjoint windows of one plane, a row of windows at a time: first the maxima down
/// each input column of the row (contiguous, vectorized), then across each window's k columns; the
/// window size K when known at compile time (0: g.kh). A NaN in a window is its maximum, as max().
/// col: scratch of ow * k.
template <class T, int K> void disjoint_max_rows(const ConvGeometry& g, const T* in, T* o, T* col) {
  const std::int64_t k = K ? K : g.kh, w = g.w, ow = g.ow, cols = ow * k;
  const auto larger = [](T v, T c) { return (v > c || v != v) ? v : c; };
  for (std::int64_t y = 0; y < g.oh; ++y) {
    const T* r0 = in + y * k * w;
    std::copy(r0, r0 + cols, col);
    for (std::int64_t i = 1; i < k; ++i)
      for (std::int64_t c = 0; c < cols; ++c) col[c] = larger(r0[i * w + c], col[c]);
    T* m = o + y * ow;
    for (std::int64_t x = 0; x < ow; ++x) {
      T v = col[x * k];
      for (std::int64_t j = 1; j < k; ++j) v = larger(col[x * k + j], v);
      m[x] = v;
    }
  }
}

/// max_pool2d's gradient for the disjoint windows of one plane, a row of windows at a time: each
/// window's maximum spread over its columns, its ties counted, then g / ties written where the
/// input equals the maximum (NaN over a window without a tie, a NaN maximum, as max()'s rule).
/// row: scratch of 3 * ow * k.
template <class T, int K>
void disjoint_max_backward_rows(const ConvGeometry& g, const T* in, const T* mo, const T* gi, T* d, T* row) {
  const std::int64_t k = K ? K : g.kh, w = g.w, ow = g.ow, cols = ow * k;
  T* mx = row;            // each column's window maximum
  T* ties = row + cols;   // matches down each column, then each column's share
  T* other = ties + cols; // what the column's non-maxima get: 0, or NaN without a tie
  for (std::int64_t y = 0; y < g.oh; ++y) {
    const T* m = mo + y * ow;
    const T* r0 = in + y * k * w;
    T* d0 = d + y * k * w;
    for (std::int64_t x = 0; x < ow; ++x)
      for (std::int64_t j = 0; j < k; ++j) mx[x * k + j] = m[x];
    std::fill(ties, ties + cols, T(0));
    for (std::int64_t i = 0; i < k; ++i)
      for (std::int64_t c = 0; c < cols; ++c) ties[c] += r0[i * w + c] == mx[c] ? T(1) : T(0);
    for (std::int64_t x = 0; x < ow; ++x) {
      T n = 0;
      for (std::int64_t j = 0; j < k; ++j) n += ties[x * k + j];
      const T s = n > 0 ? gi[y * ow + x] / n : std::numeric_limits<T>::quiet_NaN();
      for (std::int64_t j = 0; j < k; ++j) {
        ties[x * k + j] = s;
        other[x * k + j] = n > 0 ? T(0) : s;
      }
    }
    for (std::int64_t i = 0; i < k; ++i) {
      for (std::int64_t c = 0; c < cols; ++c) d0[i * w + c] = r0[i * w + c] == mx[c] ? ties[c] : other[c];
      std::fill(d0 + i * w + cols, d0 + (i + 1) * w, T(0)); // columns no window covers
    }
  }
  std::fill(d + g.oh * k * w, d + g.h * w, T(0)); // rows no window covers
}

} // namespace

Tensor max_pool2d(const Tensor& x, std::int64_t k, std::int64_t stride, std::int64_t padding) {
  detail::require_defined(x, "max_pool2d");
  const ConvGeometry g = conv_geometry(x.shape(), k, k, stride, padding, "max_pool2d");
  const std::int64_t l = g.oh * g.ow, hw = g.h * g.w;
  Tensor out = Tensor::empty({g.n, g.c, g.oh, g.ow}, x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    detail::parallel_range(
        g.n * g.c,
        [&](std::int64_t lo, std::int64_t hi) {
          std::vector<T> col;
          for (std::int64_t plane = lo; plane < hi; ++plane) {
            const T* in = xp + plane * hw;
            T* o = op + plane * l;
            if (disjoint_windows(g)) {
              col.resize(static_cast<std::size_t>(g.ow * k));
              with_window_size(
                  k, [&](auto kc) { disjoint_max_rows<T, decltype(kc)::value>(g, in, o, col.data()); });
              continue;
            }
            // Padding reads as -inf; a NaN in a window is its maximum, as max() and unfold + max.
            std::fill(o, o + l, -std::numeric_limits<T>::infinity());
            for (std::int64_t i = 0; i < k; ++i) {
              const auto [y0, y1] = inside_rows(g, i);
              for (std::int64_t j = 0; j < k; ++j) {
                const auto [x0, x1] = inside_columns(g, j);
                for (std::int64_t y = y0; y < y1; ++y) {
                  const T* r = in + (y * stride + i - padding) * g.w + j - padding;
                  T* m = o + y * g.ow;
                  for (std::int64_t xo = x0; xo < x1; ++xo) {
                    const T v = r[xo * stride];
                    m[xo] = (v > m[xo] || v != v) ? v : m[xo];
                  }
                }
              }
            }
          }
        },
        detail::k_window_cost * l * k * k);
  });
  return out;
}

Tensor max_pool2d_backward(const Tensor& x, const Tensor& out, const Tensor& g, std::int64_t k,
                           std::int64_t stride, std::int64_t padding) {
  detail::require_defined(x, "max_pool2d backward");
  const ConvGeometry geo = conv_geometry(x.shape(), k, k, stride, padding, "max_pool2d backward");
  const Shape os{geo.n, geo.c, geo.oh, geo.ow};
  if (!(out.shape() == os) || !(g.shape() == os))
    throw ShapeError(fmt::format("max_pool2d backward: maximum of shape {} and gradient of shape {} do not "
                                 "fit input {} (expected {})",
                                 out.shape().str(), g.shape().str(), x.shape().str(), os.str()));
  const std::int64_t l = geo.oh * geo.ow, hw = geo.h * geo.w;
  Tensor r = Tensor::empty(x.shape(), x.dtype()); // every plane is written whole below
  const Tensor po = out.to(x.dtype()), pg = g.to(x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *xp = x.data<T>(), *opp = po.data<T>(), *gp = pg.data<T>();
    T* rp = r.data<T>();
    // Calls f(output index, input element index) for every window position inside the image.
    const auto each = [&](auto&& f) {
      for (std::int64_t i = 0; i < k; ++i) {
        const auto [y0, y1] = inside_rows(geo, i);
        for (std::int64_t j = 0; j < k; ++j) {
          const auto [x0, x1] = inside_columns(geo, j);
          for (std::int64_t y = y0; y < y1; ++y) {
            const std::int64_t row = (y * stride + i - padding) * geo.w + j - padding;
            for (std::int64_t xo = x0; xo < x1; ++xo) f(y * geo.ow + xo, row + xo * stride);
          }
        }
      }
    };
    detail::parallel_range(
        geo.n * geo.c,
        [&](std::int64_t lo, std::int64_t hi) {
          std::vector<T> share, inside;
          for (std::int64_t plane = lo; plane < hi; ++plane) {
            const T *in = xp + plane * hw, *m = opp + plane * l, *gi = gp + plane * l;
            T* d = rp + plane * hw;
            if (disjoint_windows(geo)) {
              share.resize(static_cast<std::size_t>(3 * geo.ow * k));
              with_window_size(k, [&](auto kc) {
                disjoint_max_backward_rows<T, decltype(kc)::value>(geo, in, m, gi, d, share.data());
              });
              continue;
            }
            std::fill(d, d + hw, T(0));
            share.resize(static_cast<std::size_t>(l));
            inside.resize(static_cast<std::size_t>(l));
            std::fill(share.begin(), share.end(), T(0));
            std::fill(inside.begin(), inside.end(), T(0));
            each([&](std::int64_t o, std::int64_t e) { // ties per window
              share[static_cast<std::size_t>(o)] += in[e] == m[o] ? T(1) : T(0);
              inside[static_cast<std::size_t>(o)] += T(1);
            });
            for (std::int64_t o = 0; o < l; ++o) {
              T& s = share[static_cast<std::size_t>(o)];
              // An all -inf window ties with its padding too (unfold pads with -inf); no tie at all
              // (a NaN maximum) gives NaN, as max()'s rule.
              if (m[o] == -std::numeric_limits<T>::infinity())
                s += static_cast<T>(k * k) - inside[static_cast<std::size_t>(o)];
              s = s > 0 ? gi[o] / s : std::numeric_limits<T>::quiet_NaN();
            }
            each([&](std::int64_t o, std::int64_t e) {
              const T s = share[static_cast<std::size_t>(o)];
              d[e] += in[e] == m[o] ? s : (s == s ? T(0) : s);
            });
          }
        },
        detail::k_window_cost * l * k * k);
  });
  return r;
}

} // namespace gg::kernel
