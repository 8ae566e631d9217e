// vec_math by SLEEF: one loop over full vectors of the build's widest ISA (AVX-512, AVX2 or SSE2),
// the tail through a padded copy; libm one element at a time without SLEEF.
#include "vecmath.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#if __has_include(<gnu/libc-version.h>)
#include <gnu/libc-version.h>
#endif

#if defined(GG_HAVE_SLEEF) && (defined(__SSE2__) || defined(__AVX2__) || defined(__AVX512F__))
#define GG_SLEEF_VECTORS 1
#include <immintrin.h>
// sleef.h declares the vector functions of the ISAs enabled when it is included: after immintrin.h.
#include <sleef.h>
#endif

namespace gg::kernel::detail {

namespace {

#ifdef GG_SLEEF_VECTORS
// One struct per element type: the vector type, its width, loads and stores and SLEEF's functions
// (the u10 variants: at most 1.0 ULP). The *_u10 names without an ISA suffix dispatch at run time
// among the variants of that width (e.g. AVX2 with or without FMA).
/// SLEEF's double exp returns inf for the last inputs below the overflow bound (709.782712893383 and
/// the next double, whose results are finite); those lanes, rare, take libm's exp.
template <class S> typename S::V exp_top(typename S::V x, typename S::V r) {
  constexpr double k_sleef_bound = 709.78;
  if (!S::any_gt(x, k_sleef_bound)) [[likely]]
    return r;
  double xs[S::width], rs[S::width];
  S::store(xs, x);
  S::store(rs, r);
  for (int i = 0; i < S::width; ++i)
    if (xs[i] > k_sleef_bound) rs[i] = std::exp(xs[i]);
  return S::load(rs);
}

#if defined(__AVX512F__)
constexpr const char* k_isa = "AVX-512";
struct F32 {
  using V = __m512;
  static constexpr int width = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V exp(V v) { return Sleef_expf16_u10(v); }
  static V log(V v) { return Sleef_logf16_u10(v); }
  static V tanh(V v) { return Sleef_tanhf16_u10(v); }
  static V erf(V v) { return Sleef_erff16_u10(v); }
};
struct F64 {
  using V = __m512d;
  static constexpr int width = 8;
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static bool any_gt(V v, double c) { return _mm512_cmp_pd_mask(v, _mm512_set1_pd(c), _CMP_GT_OQ) != 0; }
  static V exp(V v) { return exp_top<F64>(v, Sleef_expd8_u10(v)); }
  static V log(V v) { return Sleef_logd8_u10(v); }
  static V tanh(V v) { return Sleef_tanhd8_u10(v); }
  static V erf(V v) { return Sleef_erfd8_u10(v); }
};
#elif defined(__AVX2__)
constexpr const char* k_isa = "AVX2";
struct F32 {
  using V = __m256;
  static constexpr int width = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V exp(V v) { return Sleef_expf8_u10(v); }
  static V log(V v) { return Sleef_logf8_u10(v); }
  static V tanh(V v) { return Sleef_tanhf8_u10(v); }
  static V erf(V v) { return Sleef_erff8_u10(v); }
};
struct F64 {
  using V = __m256d;
  static constexpr int width = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static bool any_gt(V v, double c) {
    return _mm256_movemask_pd(_mm256_cmp_pd(v, _mm256_set1_pd(c), _CMP_GT_OQ)) != 0;
  }
  static V exp(V v) { return exp_top<F64>(v, Sleef_expd4_u10(v)); }
  static V log(V v) { return Sleef_logd4_u10(v); }
  static V tanh(V v) { return Sleef_tanhd4_u10(v); }
  static V erf(V v) { return Sleef_erfd4_u10(v); }
};
#else
constexpr const char* k_isa = "SSE2";
struct F32 {
  using V = __m128;
  static constexpr int width = 4;
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, V v) { _mm_storeu_ps(p, v); }
  static V exp(V v) { return Sleef_expf4_u10(v); }
  static V log(V v) { return Sleef_logf4_u10(v); }
  static V tanh(V v) { return Sleef_tanhf4_u10(v); }
  static V erf(V v) { return Sleef_erff4_u10(v); }
};
struct F64 {
  using V = __m128d;
  static constexpr int width = 2;
  static V load(const double* p) { return _mm_loadu_pd(p); }
  static void store(double* p, V v) { _mm_storeu_pd(p, v); }
  static bool any_gt(V v, double c) { return _mm_movemask_pd(_mm_cmpgt_pd(v, _mm_set1_pd(c))) != 0; }
  static V exp(V v) { return exp_top<F64>(v, Sleef_expd2_u10(v)); }
  static V log(V v) { return Sleef_logd2_u10(v); }
  static V tanh(V v) { return Sleef_tanhd2_u10(v); }
  static V erf(V v) { return Sleef_erfd2_u10(v); }
};
#endif

template <class S, class T, class Fn> void map(const T* x, T* y, std::int64_t n, Fn fn) {
  std::int64_t i = 0;
  for (; i + S::width <= n; i += S::width) S::store(y + i, fn(S::load(x + i)));
  if (i == n) return;
  T pad[S::width] = {}; // the tail, padded with zeros whose results are dropped
  std::memcpy(pad, x + i, sizeof(T) * static_cast<std::size_t>(n - i));
  S::store(pad, fn(S::load(pad)));
  std::memcpy(y + i, pad, sizeof(T) * static_cast<std::size_t>(n - i));
}

template <class S, class T> void vec(VecFn f, const T* x, T* y, std::int64_t n) {
  using V = typename S::V;
  switch (f) {
  case VecFn::exp: return map<S>(x, y, n, [](V v) { return S::exp(v); });
  case VecFn::log: return map<S>(x, y, n, [](V v) { return S::log(v); });
  case VecFn::tanh: return map<S>(x, y, n, [](V v) { return S::tanh(v); });
  case VecFn::erf: return map<S>(x, y, n, [](V v) { return S::erf(v); });
  }
}
#else
template <class T> void scalar(VecFn f, const T* x, T* y, std::int64_t n) {
  switch (f) {
  case VecFn::exp: std::transform(x, x + n, y, [](T a) { return std::exp(a); }); return;
  case VecFn::log: std::transform(x, x + n, y, [](T a) { return std::log(a); }); return;
  case VecFn::tanh: std::transform(x, x + n, y, [](T a) { return std::tanh(a); }); return;
  case VecFn::erf: std::transform(x, x + n, y, [](T a) { return std::erf(a); }); return;
  }
}
#endif

} // namespace

void vec_math(VecFn f, const float* x, float* y, std::int64_t n) {
#ifdef GG_SLEEF_VECTORS
  vec<F32>(f, x, y, n);
#else
  scalar(f, x, y, n);
#endif
}

void vec_math(VecFn f, const double* x, double* y, std::int64_t n) {
#ifdef GG_SLEEF_VECTORS
  vec<F64>(f, x, y, n);
#else
  scalar(f, x, y, n);
#endif
}

std::string vec_math_library() {
#ifdef GG_SLEEF_VECTORS
  return fmt::format("SLEEF {}.{} (u10: <= 1 ULP), {}: {} floats", SLEEF_VERSION_MAJOR, SLEEF_VERSION_MINOR,
                     k_isa, F32::width);
#elif __has_include(<gnu/libc-version.h>)
  return fmt::format("glibc {} libm (scalar)", gnu_get_libc_version());
#else
  return "the C library's libm (scalar)";
#endif
}

} // namespace gg::kernel::detail
