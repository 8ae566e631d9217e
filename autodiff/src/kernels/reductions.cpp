// Reductions: sums, means and maxima of a whole tensor or along an axis (accumulated in double), the
// gradient of a maximum shared among ties, and argmax.
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "loops.hpp"

namespace gg::kernel {
namespace detail {
namespace {

/// Outputs per block of sum_axis's column sums: 64 doubles, eight AVX-512 registers.
constexpr Index k_cols = 64;
/// The largest slab (rows × outputs) sum_axis sums by column blocks; larger ones stream row by row.
constexpr Index k_column_block_bytes = Index{1} << 22;

/// o[j] = (Σ_k p[k·stride + j] in double, k in order) / divisor for j < cols <= Cols.
template <Index Cols, class T>
void column_sums(const T* p, Index stride, Index rows, Index cols, T* o, double divisor) {
  double acc[Cols] = {};
  if (cols == Cols) // a fixed trip count: the sums stay in registers
    for (Index k = 0; k < rows; ++k)
      for (Index j = 0; j < Cols; ++j) acc[j] += static_cast<double>(p[k * stride + j]);
  else
    for (Index k = 0; k < rows; ++k)
      for (Index j = 0; j < cols; ++j) acc[j] += static_cast<double>(p[k * stride + j]);
  for (Index j = 0; j < cols; ++j) o[j] = static_cast<T>(acc[j] / divisor);
}

/// Sum along axis divided by `divisor` (1 for sum, the count for mean); accumulates in double.
Tensor sum_axis(const Tensor& x, int axis, bool keepdim, std::string_view op, bool mean) {
  require_defined(x, op);
  const int ax = normalize_axis(axis, x.rank(), op);
  const AxisView v(x.shape(), ax);
  Tensor out = Tensor::empty(reduced_shape(x.shape(), ax, keepdim), x.dtype());
  if (v.n == 1) { // nothing to add up: a copy in the reduced shape (not a clone reshaped: one tensor made)
    if (const auto bytes = static_cast<std::size_t>(x.numel()) * dtype_size(x.dtype()))
      std::memcpy(out.raw(), x.raw(), bytes);
    return out;
  }
  const double divisor = mean ? static_cast<double>(v.n) : 1.0;
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    T* o = out.data<T>();
    if (v.inner == 1) {
      for (Index i = 0; i < v.outer; ++i) o[i] = static_cast<T>(sum_contiguous(p + i * v.n, v.n) / divisor);
      return;
    }
    // Each output's sum over k in order. A slab that the caches hold: k_cols outputs at a time in
    // registers (a bias gradient [256, 128] -> [128]: the sums were loaded and stored for every
    // row). A larger one row by row, streaming memory once: the column blocks walk it inner/k_cols
    // times at a stride (4096² floats 6.7 -> 11.6 ms; up to 4 MiB they were faster, 1024²
    // 119 -> 98 us).
    const bool in_cache = v.n * v.inner * static_cast<Index>(sizeof(T)) <= k_column_block_bytes;
    std::vector<double> acc(in_cache ? 0 : static_cast<std::size_t>(v.inner));
    for (Index i = 0; i < v.outer; ++i) {
      const T* base = p + i * v.n * v.inner;
      T* orow = o + i * v.inner;
      if (!in_cache) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (Index k = 0; k < v.n; ++k)
          for (Index j = 0; j < v.inner; ++j)
            acc[static_cast<std::size_t>(j)] += static_cast<double>(base[k * v.inner + j]);
        for (Index j = 0; j < v.inner; ++j)
          orow[j] = static_cast<T>(acc[static_cast<std::size_t>(j)] / divisor);
        continue;
      }
      Index j0 = 0;
      for (; j0 + k_cols <= v.inner; j0 += k_cols)
        column_sums<k_cols>(base + j0, v.inner, v.n, k_cols, orow + j0, divisor);
      if (j0 < v.inner) column_sums<k_cols>(base + j0, v.inner, v.n, v.inner - j0, orow + j0, divisor);
    }
  });
  return out;
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

} // namespace
} // namespace detail

using detail::Index;

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

namespace detail {
namespace {
/// The frame of the extrema's backward kernels: checks that the extremum `out` and its gradient g fit
/// the lanes of x along axis (errors name "<op> backward"), makes the result (zeroed when `zeroed`),
/// and runs body(v, xp, mp, gp, rp) on x, out, g and the result in x's dtype.
template <class Body>
Tensor extremum_backward(const Tensor& x, const Tensor& out, const Tensor& g, int axis, std::string_view op,
                         bool zeroed, Body&& body) {
  const std::string what = fmt::format("{} backward", op);
  require_defined(x, what);
  const int ax = normalize_axis(axis, x.rank(), what);
  const AxisView v(x.shape(), ax);
  if (out.numel() != v.outer * v.inner || g.numel() != out.numel())
    throw ShapeError(fmt::format("{}: extremum of shape {} and gradient of shape {} do not fit input {} "
                                 "reduced along axis {}",
                                 what, out.shape().str(), g.shape().str(), x.shape().str(), ax));
  Tensor r = zeroed ? Tensor::zeros(x.shape(), x.dtype()) : Tensor::empty(x.shape(), x.dtype());
  const Tensor po = out.to(x.dtype()), pg = g.to(x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    body(v, x.data<T>(), static_cast<const T*>(po.data<T>()), static_cast<const T*>(pg.data<T>()),
         r.data<T>());
  });
  return r;
}
} // namespace
} // namespace detail

Tensor max_backward(const Tensor& x, const Tensor& out, const Tensor& g, int axis, std::string_view op) {
  return detail::extremum_backward(
      x, out, g, axis, op, false,
      [](const detail::AxisView& v, const auto* xp, const auto* mp, const auto* gp, auto* rp) {
        using T = std::remove_cvref_t<decltype(*xp)>;
        std::vector<T> share(static_cast<std::size_t>(v.inner));
        for (Index i = 0; i < v.outer; ++i) {
          const T* m = mp + i * v.inner;
          const T* gi = gp + i * v.inner;
          std::fill(share.begin(), share.end(), T(0));
          for (Index k = 0; k < v.n; ++k) { // ties per lane
            const T* row = xp + (i * v.n + k) * v.inner;
            for (Index j = 0; j < v.inner; ++j)
              share[static_cast<std::size_t>(j)] += row[j] == m[j] ? T(1) : T(0);
          }
          for (Index j = 0; j < v.inner;
               ++j) { // no tie (a NaN maximum): NaN, as the differentiable rule's 0/0
            T& sj = share[static_cast<std::size_t>(j)];
            sj = sj > 0 ? gi[j] / sj : std::numeric_limits<T>::quiet_NaN();
          }
          for (Index k = 0; k < v.n; ++k) {
            const T* row = xp + (i * v.n + k) * v.inner;
            T* o = rp + (i * v.n + k) * v.inner;
            for (Index j = 0; j < v.inner; ++j) {
              const T s = share[static_cast<std::size_t>(j)];
              o[j] = row[j] == m[j] ? s : s * T(0); // torch.amax's (g / ties) * mask: inf g gives NaN here
            }
          }
        }
      });
}

Tensor max_backward_first(const Tensor& x, const Tensor& out, const Tensor& g, int axis,
                          std::string_view op) {
  return detail::extremum_backward(
      x, out, g, axis, op, true,
      [](const detail::AxisView& v, const auto* xp, const auto* mp, const auto* gp, auto* rp) {
        using T = std::remove_cvref_t<decltype(*xp)>;
        std::vector<char> found(static_cast<std::size_t>(v.inner));
        for (Index i = 0; i < v.outer; ++i) {
          const T* m = mp + i * v.inner;
          std::fill(found.begin(), found.end(), char(0));
          for (Index k = 0; k < v.n; ++k) { // the first match per lane, NaN matching a NaN extremum
            const T* row = xp + (i * v.n + k) * v.inner;
            T* o = rp + (i * v.n + k) * v.inner;
            for (Index j = 0; j < v.inner; ++j) {
              char& f = found[static_cast<std::size_t>(j)];
              if (!f && (row[j] == m[j] || (row[j] != row[j] && m[j] != m[j]))) {
                o[j] = gp[i * v.inner + j];
                f = 1;
              }
            }
          }
        }
      });
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
} // namespace gg::kernel
