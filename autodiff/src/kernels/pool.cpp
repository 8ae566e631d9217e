// Max pooling over the windows of every channel, forward and backward in one pass each (no window
// columns), with a vectorised path for the usual disjoint windows (MaxPool2d(2)).
#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "loops.hpp"
#include "windows.hpp"

namespace gg::kernel {

using detail::conv_geometry;
using detail::ConvGeometry;
using detail::inside_columns;
using detail::inside_rows;

namespace {
/// Windows that neither overlap nor reach outside the image (stride == kernel, no padding, no
/// dilation, no window past the edge; the usual MaxPool2d(2)): each input element is in at most one.
bool disjoint_windows(const ConvGeometry& g) {
  return g.sh == g.kh && g.sw == g.kw && g.kh == g.kw && g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 &&
         g.oh * g.kh <= g.h && g.ow * g.kw <= g.w;
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

Tensor max_pool2d(const Tensor& x, const Windows& windows) {
  detail::require_defined(x, "max_pool2d");
  const ConvGeometry g = conv_geometry(x.shape(), windows, "max_pool2d");
  const std::int64_t l = g.oh * g.ow, hw = g.h * g.w, k = g.kh;
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
            for (std::int64_t i = 0; i < g.kh; ++i) {
              const auto [y0, y1] = inside_rows(g, i);
              for (std::int64_t j = 0; j < g.kw; ++j) {
                const auto [x0, x1] = inside_columns(g, j);
                for (std::int64_t y = y0; y < y1; ++y) {
                  const T* r = in + detail::window_origin(g, i, j) + y * g.sh * g.w;
                  T* m = o + y * g.ow;
                  for (std::int64_t xo = x0; xo < x1; ++xo) {
                    const T v = r[xo * g.sw];
                    m[xo] = (v > m[xo] || v != v) ? v : m[xo];
                  }
                }
              }
            }
          }
        },
        detail::k_window_cost * l * g.kh * g.kw);
  });
  return out;
}

Tensor max_pool2d_backward(const Tensor& x, const Tensor& out, const Tensor& g, const Windows& windows) {
  detail::require_defined(x, "max_pool2d backward");
  const ConvGeometry geo = conv_geometry(x.shape(), windows, "max_pool2d backward");
  const std::int64_t k = geo.kh;
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
      for (std::int64_t i = 0; i < geo.kh; ++i) {
        const auto [y0, y1] = inside_rows(geo, i);
        for (std::int64_t j = 0; j < geo.kw; ++j) {
          const auto [x0, x1] = inside_columns(geo, j);
          for (std::int64_t y = y0; y < y1; ++y) {
            const std::int64_t row = detail::window_origin(geo, i, j) + y * geo.sh * geo.w;
            for (std::int64_t xo = x0; xo < x1; ++xo) f(y * geo.ow + xo, row + xo * geo.sw);
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
                s += static_cast<T>(geo.kh * geo.kw) - inside[static_cast<std::size_t>(o)];
              s = s > 0 ? gi[o] / s : std::numeric_limits<T>::quiet_NaN();
            }
            each([&](std::int64_t o, std::int64_t e) {
              const T s = share[static_cast<std::size_t>(o)];
              d[e] += in[e] == m[o] ? s : (s == s ? T(0) : s);
            });
          }
        },
        detail::k_window_cost * l * geo.kh * geo.kw);
  });
  return r;
}

} // namespace gg::kernel
