// Max pooling over the windows of every channel, forward and backward in one pass each (no window
// columns), with a vectorised path for the usual disjoint windows (MaxPool2d(2)). The gradient of a
// window goes whole to one element, PyTorch's index: its CPU kernel scans the window row by row,
// keeping `val > maxval || isnan(val)`, so the first maximum, or the last NaN.
#include <algorithm>
#include <array>
#include <limits>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

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

#if defined(__AVX2__)
/// After a lane-wise shuffle or hadd of two registers holding 2x2 windows 0-3 and 4-7, positions 0..7
/// hold windows 0, 1, 4, 5, 2, 3, 6, 7: this permutation (its own inverse) puts them in order.
inline __m256 in_window_order(__m256 v) {
  return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7));
}
/// The scalar larger(v, c) lane by lane: v where v > c or v is NaN, c otherwise.
inline __m256 larger8(__m256 v, __m256 c) {
  return _mm256_blendv_ps(c, v,
                          _mm256_or_ps(_mm256_cmp_ps(v, c, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
}
/// Each of windows 0-3 (lo) or 4-7 (hi) of v repeated for its two columns.
inline __m256 pairs_lo(__m256 v) {
  return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
}
inline __m256 pairs_hi(__m256 v) {
  return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7));
}
#endif

#if defined(__AVX2__)
/// The maxima m[0..8) of eight 2x2 windows (input rows a and b, 16 columns each), in the order of the
/// scalar loop below (so the same NaN wins).
inline void max_2x2_by_eight(const float* a, const float* b, float* m) {
  const __m256 c0 = larger8(_mm256_loadu_ps(b), _mm256_loadu_ps(a));
  const __m256 c1 = larger8(_mm256_loadu_ps(b + 8), _mm256_loadu_ps(a + 8));
  const __m256 even = _mm256_shuffle_ps(c0, c1, _MM_SHUFFLE(2, 0, 2, 0));
  const __m256 odd = _mm256_shuffle_ps(c0, c1, _MM_SHUFFLE(3, 1, 3, 1));
  _mm256_storeu_ps(m, in_window_order(larger8(odd, even)));
}

/// The gradient (da, db) of eight 2x2 windows with maxima m and output gradients gy, as the scalar
/// loop below: each window's gradient to its first element equal to the maximum (a0, a1, b0, b1),
/// or, for a NaN maximum, to its last NaN.
inline void max_backward_2x2_by_eight(const float* a, const float* b, const float* m, const float* gy,
                                      float* da, float* db) {
  const __m256 odd = _mm256_castsi256_ps(_mm256_setr_epi32(0, -1, 0, -1, 0, -1, 0, -1));
  const auto swap = [](__m256 v) { return _mm256_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)); }; // column pairs
  const auto nan = [](__m256 v) { return _mm256_cmp_ps(v, v, _CMP_UNORD_Q); };
  const __m256 mx = _mm256_loadu_ps(m), mlo = pairs_lo(mx), mhi = pairs_hi(mx), g = _mm256_loadu_ps(gy),
               glo = pairs_lo(g), ghi = pairs_hi(g);
  // One half: 4 windows, a's and b's 8 columns, their maxima m and gradients gw repeated per column.
  const auto half = [&](const float* pa, const float* pb, __m256 mm, __m256 gw, float* oa, float* ob) {
    const __m256 va = _mm256_loadu_ps(pa), vb = _mm256_loadu_ps(pb);
    const __m256 ea = _mm256_cmp_ps(va, mm, _CMP_EQ_OQ), eb = _mm256_cmp_ps(vb, mm, _CMP_EQ_OQ);
    const __m256 na = nan(va), nb = nan(vb);
    // The first equal element: a's odd column only without a's even one, b's only without a's.
    const __m256 fa = _mm256_andnot_ps(_mm256_and_ps(swap(ea), odd), ea),
                 fb = _mm256_andnot_ps(_mm256_or_ps(_mm256_or_ps(ea, swap(ea)), _mm256_and_ps(swap(eb), odd)),
                                       eb);
    // The last NaN (no element equals a NaN maximum): b's even column only without b's odd one.
    const __m256 lb = _mm256_andnot_ps(_mm256_andnot_ps(odd, swap(nb)), nb),
                 la = _mm256_andnot_ps(
                     _mm256_or_ps(_mm256_or_ps(nb, swap(nb)), _mm256_andnot_ps(odd, swap(na))), na);
    _mm256_storeu_ps(oa, _mm256_and_ps(_mm256_or_ps(fa, la), gw));
    _mm256_storeu_ps(ob, _mm256_and_ps(_mm256_or_ps(fb, lb), gw));
  };
  half(a, b, mlo, glo, da, db);
  half(a + 8, b + 8, mhi, ghi, da + 8, db + 8);
}

/// Runs block(a, b, windows) over a row of ow 2x2 windows in blocks of eight; the last, shorter block
/// (a row of 7 windows, or 14 = 8 + 6) on zero-padded copies: ins are the rows read (2 columns per
/// window), outs the rows written (2 columns each) and per-window arrays (1 each) are read or
/// written through block's pointers as the arrays given, in the order listed.
template <std::size_t Ins, std::size_t Outs, class F>
void by_eight(std::int64_t ow, const std::array<const float*, Ins>& in, const std::array<int, Ins>& in_width,
              const std::array<float*, Outs>& out, const std::array<int, Outs>& out_width, F&& block) {
  std::int64_t x = 0;
  const auto at = [&](auto& ptrs, const auto& width, std::int64_t x0) {
    auto p = ptrs;
    for (std::size_t i = 0; i < p.size(); ++i) p[i] += width[i] * x0;
    return p;
  };
  for (; x + 8 <= ow; x += 8) block(at(in, in_width, x), at(out, out_width, x));
  if (x == ow) return;
  const std::int64_t left = ow - x;
  alignas(32) std::array<std::array<float, 16>, Ins> tin{};
  alignas(32) std::array<std::array<float, 16>, Outs> tout{};
  std::array<const float*, Ins> pin{};
  std::array<float*, Outs> pout{};
  for (std::size_t i = 0; i < Ins; ++i) {
    std::copy_n(in[i] + in_width[i] * x, in_width[i] * left, tin[i].data());
    pin[i] = tin[i].data();
  }
  for (std::size_t i = 0; i < Outs; ++i) pout[i] = tout[i].data();
  block(pin, pout);
  for (std::size_t i = 0; i < Outs; ++i)
    std::copy_n(tout[i].data(), out_width[i] * left, out[i] + out_width[i] * x);
}
#endif

/// The maxima of one row of 2x2 windows (input rows a and b), eight windows at a time with AVX2 in
/// float, in the order of the scalar loop (so the same NaN wins).
template <class T> void max_row_2x2(const T* a, const T* b, T* m, std::int64_t ow) {
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>)
    return by_eight<2, 1>(ow, {a, b}, {2, 2}, {m}, {1},
                          [](const auto& i, const auto& o) { max_2x2_by_eight(i[0], i[1], o[0]); });
#endif
  const auto larger = [](T v, T c) { return (v > c || v != v) ? v : c; };
  for (std::int64_t x = 0; x < ow; ++x)
    m[x] = larger(larger(b[2 * x + 1], a[2 * x + 1]), larger(b[2 * x], a[2 * x]));
}

/// max_pool2d's gradient over one row of 2x2 windows (input rows a and b, their gradients da and db):
/// each window's g to its first element equal to the maximum (a0, a1, b0, b1), or for a NaN maximum
/// to its last NaN, 0 elsewhere; eight windows at a time with AVX2 in float.
template <class T>
void max_backward_row_2x2(const T* a, const T* b, const T* m, const T* gy, T* da, T* db, std::int64_t ow) {
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>)
    return by_eight<4, 2>(
        ow, {a, b, m, gy}, {2, 2, 1, 1}, {da, db}, {2, 2},
        [](const auto& i, const auto& o) { max_backward_2x2_by_eight(i[0], i[1], i[2], i[3], o[0], o[1]); });
#endif
  for (std::int64_t x = 0; x < ow; ++x) {
    const T mx = m[x], v[4] = {a[2 * x], a[2 * x + 1], b[2 * x], b[2 * x + 1]};
    int pick = 0;
    if (mx == mx)
      while (pick < 3 && !(v[pick] == mx)) ++pick;
    else
      for (pick = 3; pick > 0 && v[pick] == v[pick];) --pick;
    T* d[4] = {da + 2 * x, da + 2 * x + 1, db + 2 * x, db + 2 * x + 1};
    for (int i = 0; i < 4; ++i) *d[i] = i == pick ? gy[x] : T(0);
  }
}

/// Maxima of the disjoint windows of one plane, a row of windows at a time: first the maxima down
/// each input column of the row (contiguous, vectorized), then across each window's k columns; the
/// window size K when known at compile time (0: g.kh). A NaN in a window is its maximum, as max().
/// col: scratch of ow * k.
template <class T, int K> void disjoint_max_rows(const ConvGeometry& g, const T* in, T* o, T* col) {
  const std::int64_t k = K ? K : g.kh, w = g.w, ow = g.ow, cols = ow * k;
  const auto larger = [](T v, T c) { return (v > c || v != v) ? v : c; };
  if constexpr (K == 2) { // the usual MaxPool2d(2): each window's four elements at once, in the order below
    (void)col, (void)cols;
    for (std::int64_t y = 0; y < g.oh; ++y) max_row_2x2(in + 2 * y * w, in + (2 * y + 1) * w, o + y * ow, ow);
    return;
  }
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

/// max_pool2d's gradient for the disjoint 2x2 windows of one plane, a row of windows at a time.
template <class T>
void disjoint_max_backward_2x2(const ConvGeometry& g, const T* in, const T* mo, const T* gi, T* d) {
  const std::int64_t w = g.w, ow = g.ow, cols = ow * 2;
  for (std::int64_t y = 0; y < g.oh; ++y) {
    T *da = d + 2 * y * w, *db = da + w;
    max_backward_row_2x2(in + 2 * y * w, in + (2 * y + 1) * w, mo + y * ow, gi + y * ow, da, db, ow);
    std::fill(da + cols, da + w, T(0)); // columns no window covers
    std::fill(db + cols, db + w, T(0));
  }
  std::fill(d + g.oh * 2 * w, d + g.h * w, T(0)); // rows no window covers
}

/// Calls f(output index, input element index) for every window of one plane with the element its
/// gradient goes to, PyTorch's index: the first element (row by row, padding skipped) equal to the
/// window's maximum m, or for a NaN maximum the last NaN.
template <class T, class F> void each_window_argmax(const ConvGeometry& g, const T* in, const T* m, F&& f) {
  for (std::int64_t oy = 0; oy < g.oh; ++oy)
    for (std::int64_t ox = 0; ox < g.ow; ++ox) {
      const std::int64_t o = oy * g.ow + ox;
      const T mx = m[o];
      const bool nan = mx != mx;
      std::int64_t pick = -1;
      for (std::int64_t i = 0; i < g.kh && (nan || pick < 0); ++i) {
        const std::int64_t iy = oy * g.sh - g.ph + i * g.dh;
        if (iy < 0 || iy >= g.h) continue;
        for (std::int64_t j = 0; j < g.kw; ++j) {
          const std::int64_t ix = ox * g.sw - g.pw + j * g.dw;
          if (ix < 0 || ix >= g.w) continue;
          const T v = in[iy * g.w + ix];
          if (nan ? v != v : v == mx) {
            pick = iy * g.w + ix;
            if (!nan) break;
          }
        }
      }
      if (pick >= 0) f(o, pick);
    }
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
    detail::parallel_range(
        geo.n * geo.c,
        [&](std::int64_t lo, std::int64_t hi) {
          for (std::int64_t plane = lo; plane < hi; ++plane) {
            const T *in = xp + plane * hw, *m = opp + plane * l, *gi = gp + plane * l;
            T* d = rp + plane * hw;
            if (disjoint_windows(geo) && geo.kh == 2) {
              disjoint_max_backward_2x2(geo, in, m, gi, d);
              continue;
            }
            std::fill(d, d + hw, T(0));
            each_window_argmax(geo, in, m, [&](std::int64_t o, std::int64_t e) { d[e] += gi[o]; });
          }
        },
        detail::k_window_cost * l * geo.kh * geo.kw);
  });
  return r;
}

std::vector<std::int64_t> max_pool2d_indices(const Tensor& x, const Tensor& out, const Windows& windows) {
  detail::require_defined(x, "max_pool2d indices");
  const ConvGeometry geo = conv_geometry(x.shape(), windows, "max_pool2d indices");
  const std::int64_t l = geo.oh * geo.ow, hw = geo.h * geo.w;
  std::vector<std::int64_t> index(static_cast<std::size_t>(geo.n * geo.c * l), 0);
  const Tensor po = out.to(x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    for (std::int64_t plane = 0; plane < geo.n * geo.c; ++plane)
      each_window_argmax(geo, x.data<T>() + plane * hw, po.data<T>() + plane * l,
                         [&](std::int64_t o, std::int64_t e) {
                           index[static_cast<std::size_t>(plane * l + o)] = plane * hw + e;
                         });
  });
  return index;
}

} // namespace gg::kernel
