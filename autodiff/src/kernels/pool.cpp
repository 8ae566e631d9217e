// Max pooling over the windows of every channel, forward and backward in one pass each (no window
// columns), with a vectorised path for the usual disjoint windows (MaxPool2d(2)).
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
/// loop below.
inline void max_backward_2x2_by_eight(const float* a, const float* b, const float* m, const float* gy,
                                      float* da, float* db) {
  const __m256 one = _mm256_set1_ps(1), zero = _mm256_setzero_ps(),
               nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
  const __m256 mx = _mm256_loadu_ps(m), mlo = pairs_lo(mx), mhi = pairs_hi(mx);
  const __m256 ea0 = _mm256_cmp_ps(_mm256_loadu_ps(a), mlo, _CMP_EQ_OQ),
               ea1 = _mm256_cmp_ps(_mm256_loadu_ps(a + 8), mhi, _CMP_EQ_OQ),
               eb0 = _mm256_cmp_ps(_mm256_loadu_ps(b), mlo, _CMP_EQ_OQ),
               eb1 = _mm256_cmp_ps(_mm256_loadu_ps(b + 8), mhi, _CMP_EQ_OQ);
  const __m256 t0 = _mm256_add_ps(_mm256_and_ps(ea0, one), _mm256_and_ps(eb0, one)),
               t1 = _mm256_add_ps(_mm256_and_ps(ea1, one), _mm256_and_ps(eb1, one));
  const __m256 n = in_window_order(_mm256_hadd_ps(t0, t1)), some = _mm256_cmp_ps(n, zero, _CMP_GT_OQ);
  const __m256 share = _mm256_blendv_ps(nan, _mm256_div_ps(_mm256_loadu_ps(gy), n), some),
               other = _mm256_blendv_ps(share, zero, some);
  const __m256 slo = pairs_lo(share), shi = pairs_hi(share), olo = pairs_lo(other), ohi = pairs_hi(other);
  _mm256_storeu_ps(da, _mm256_blendv_ps(olo, slo, ea0));
  _mm256_storeu_ps(da + 8, _mm256_blendv_ps(ohi, shi, ea1));
  _mm256_storeu_ps(db, _mm256_blendv_ps(olo, slo, eb0));
  _mm256_storeu_ps(db + 8, _mm256_blendv_ps(ohi, shi, eb1));
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

/// max_pool2d's gradient over one row of 2x2 windows (input rows a and b, their gradients da and db),
/// as disjoint_max_backward_rows: g / ties where the input equals the maximum, 0 elsewhere, NaN over a
/// window without a tie; eight windows at a time with AVX2 in float.
template <class T>
void max_backward_row_2x2(const T* a, const T* b, const T* m, const T* gy, T* da, T* db, std::int64_t ow) {
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>)
    return by_eight<4, 2>(
        ow, {a, b, m, gy}, {2, 2, 1, 1}, {da, db}, {2, 2},
        [](const auto& i, const auto& o) { max_backward_2x2_by_eight(i[0], i[1], i[2], i[3], o[0], o[1]); });
#endif
  for (std::int64_t x = 0; x < ow; ++x) {
    const T mx = m[x], a0 = a[2 * x], a1 = a[2 * x + 1], b0 = b[2 * x], b1 = b[2 * x + 1];
    const T n = T(a0 == mx ? 1 : 0) + T(a1 == mx ? 1 : 0) + T(b0 == mx ? 1 : 0) + T(b1 == mx ? 1 : 0);
    const T share = n > 0 ? gy[x] / n : std::numeric_limits<T>::quiet_NaN();
    const T other = n > 0 ? T(0) : share;
    da[2 * x] = a0 == mx ? share : other;
    da[2 * x + 1] = a1 == mx ? share : other;
    db[2 * x] = b0 == mx ? share : other;
    db[2 * x + 1] = b1 == mx ? share : other;
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

/// max_pool2d's gradient for the disjoint windows of one plane, a row of windows at a time: each
/// window's maximum spread over its columns, its ties counted, then g / ties written where the
/// input equals the maximum (NaN over a window without a tie, a NaN maximum, as max()'s rule).
/// row: scratch of 3 * ow * k.
template <class T, int K>
void disjoint_max_backward_rows(const ConvGeometry& g, const T* in, const T* mo, const T* gi, T* d, T* row) {
  const std::int64_t k = K ? K : g.kh, w = g.w, ow = g.ow, cols = ow * k;
  if constexpr (K == 2) { // the usual MaxPool2d(2): each window's four elements at once, no scratch passes
    (void)row;
    for (std::int64_t y = 0; y < g.oh; ++y) {
      T *da = d + 2 * y * w, *db = da + w;
      max_backward_row_2x2(in + 2 * y * w, in + (2 * y + 1) * w, mo + y * ow, gi + y * ow, da, db, ow);
      std::fill(da + cols, da + w, T(0)); // columns no window covers
      std::fill(db + cols, db + w, T(0));
    }
    std::fill(d + g.oh * k * w, d + g.h * w, T(0)); // rows no window covers
    return;
  }
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
