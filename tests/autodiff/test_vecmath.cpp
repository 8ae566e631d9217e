// Accuracy of the vector math (kernels/vecmath.hpp: SLEEF, or libm without it) against long double
// references, in ULPs, on random inputs and the edges: ±0, denormals, ±inf, NaN and the bounds
// where exp overflows or its result becomes denormal. Also the tails (lengths that are not a
// multiple of the SIMD width), in-place use, and the rows built on it (sigmoid, GELU).
#include <autodiff/autodiff.hpp>
#include <autodiff/src/kernels/vecmath.hpp> // internal

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

using gg::kernel::detail::vec_math;
using gg::kernel::detail::VecFn;

namespace {

long double reference(VecFn f, long double x) {
  switch (f) {
  case VecFn::exp: return std::exp(x);
  case VecFn::log: return std::log(x);
  case VecFn::tanh: return std::tanh(x);
  case VecFn::erf: return std::erf(x);
  }
  return x;
}

/// |y - exact| in units of the last place of T at the exact value (rounded to T); 0 when both are
/// the same infinity or NaN, a huge number when only one is.
template <class T> double ulps(T y, long double exact) {
  if (std::isnan(exact)) return std::isnan(y) ? 0 : 1e30;
  const T rounded = static_cast<T>(exact);
  if (std::isinf(rounded)) return y == rounded ? 0 : 1e30;
  if (!std::isfinite(y)) return 1e30;
  const T a = std::abs(rounded);
  const long double ulp = a == 0 ? std::numeric_limits<T>::denorm_min()
                                 : std::nextafter(a, std::numeric_limits<T>::infinity()) - a;
  return static_cast<double>(std::abs(static_cast<long double>(y) - exact) / ulp);
}

/// The largest error over xs, computing all of them in one call (so through the vector loop and
/// its tail).
template <class T> double max_ulps(VecFn f, const std::vector<T>& xs, double bound = 1.0) {
  std::vector<T> y(xs.size());
  vec_math(f, xs.data(), y.data(), static_cast<std::int64_t>(xs.size()));
  double worst = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double e = ulps(y[i], reference(f, xs[i]));
    if (e > worst) {
      worst = e;
      INFO("x = " << xs[i] << ", got " << y[i]);
      CHECK(e <= bound);
    }
  }
  return worst;
}

template <class T> std::vector<T> inputs(VecFn f, std::uint64_t seed) {
  using L = std::numeric_limits<T>;
  std::mt19937_64 rng(seed);
  // Ranges that cover each function's interesting part and its saturation.
  const double lo = f == VecFn::log ? 0 : f == VecFn::exp ? (sizeof(T) == 4 ? -104 : -746) : -30;
  const double hi = f == VecFn::log ? 1e30 : f == VecFn::exp ? (sizeof(T) == 4 ? 89 : 710) : 30;
  std::uniform_real_distribution<double> wide(lo, hi), near(-3, 3);
  std::vector<T> xs;
  for (int i = 0; i < 20000; ++i) {
    T x = static_cast<T>(i % 2 ? wide(rng) : near(rng));
    if (f == VecFn::log) x = std::abs(x);
    xs.push_back(x);
  }
  for (T x : {T(0), T(-0.0), L::infinity(), -L::infinity(), L::quiet_NaN(), L::denorm_min(), -L::denorm_min(),
              L::min() / 3, -L::min() / 3, L::min(), L::max(), -L::max(), L::epsilon(), T(1), T(-1)})
    xs.push_back(x);
  // exp's edges: the largest finite result and the first infinite one; results near the smallest
  // normal and the denormal ones.
  const T top = std::log(L::max());
  for (T x : {top, std::nextafter(top, T(0)), std::nextafter(top, L::infinity()), std::log(L::min()),
              std::log(L::denorm_min()), T(std::log(L::denorm_min()) + 1)})
    xs.push_back(x);
  xs.push_back(T(0.5)); // an odd length: a tail after the last full vector
  return xs;
}

} // namespace

TEMPLATE_TEST_CASE("vecmath: exp, log, tanh and erf within 1 ULP on random inputs and the edges", "", float,
                   double) {
  for (VecFn f : {VecFn::exp, VecFn::log, VecFn::tanh, VecFn::erf}) {
    INFO("function " << static_cast<int>(f) << ", " << gg::kernel::math_library());
    max_ulps<TestType>(f, inputs<TestType>(f, 7));
  }
}

TEMPLATE_TEST_CASE("vecmath: erf (gradgraph's own polynomials where the build has AVX2) within 1 ULP on a "
                   "million inputs",
                   "", float, double) {
  // Dense where the polynomials meet (every 1/2 up to 4 for float, 6 for double) and where the result
  // rounds to 1 (3.92 in float, 5.92 in double), and over magnitudes from the denormals to 1, where
  // it must keep relative accuracy.
  using T = TestType;
  const bool f32 = sizeof(T) == 4;
  const T top = f32 ? T(4) : T(6), one_from = f32 ? T(3.9) : T(5.9);
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> body(-top - 0.5, top + 0.5), exponent(f32 ? -45 : -320, 0);
  std::vector<T> xs;
  for (int i = 0; i < 1000000; ++i)
    xs.push_back(i % 4 ? static_cast<T>(body(rng))
                       : static_cast<T>((i % 8 ? 1 : -1) * std::pow(10.0, exponent(rng))));
  for (T edge = T(0.5); edge <= top; edge += T(0.5))
    for (T x = std::nextafter(edge, T(0)), k = 0; k < 64; ++k, x = std::nextafter(x, top + 1))
      xs.push_back(x);
  T x = one_from;
  for (int k = 0; k < 200000; ++k, x = std::nextafter(x, top + 1)) xs.push_back(x);
  for (T y = one_from; y < one_from + T(0.04); y += T(1e-5)) xs.push_back(y);
  INFO(gg::kernel::math_library());
  CHECK(max_ulps<T>(VecFn::erf, xs) <= 1.0);
}

TEMPLATE_TEST_CASE("vecmath: exp, log and tanh (gradgraph's own where the build has AVX2) within 1 ULP on a "
                   "million inputs each",
                   "", float, double) {
  // Uniform over each function's range, log-uniform magnitudes down to the denormals, and dense where
  // the range reductions switch: exp's multiples of ln2/8 (float) and ln2/4 (double) ± half a step,
  // its fast path's bound, its overflow and denormal bounds; log's √2/2·2^k, where k changes, and the
  // neighbourhood of 1; tanh's small arguments and where it rounds to ±1.
  using T = TestType;
  using L = std::numeric_limits<T>;
  const bool f32 = sizeof(T) == 4;
  std::mt19937_64 rng(13);
  const auto around = [](std::vector<T>& xs, T at, int k) {
    T x = at;
    for (int i = 0; i < k; ++i) x = std::nextafter(x, -L::infinity());
    for (int i = 0; i < 2 * k; ++i, x = std::nextafter(x, L::infinity())) xs.push_back(x);
  };
  const auto magnitudes = [&](std::vector<T>& xs, double lo, double hi, bool both_signs) {
    std::uniform_real_distribution<double> e(lo, hi);
    for (int i = 0; i < 250000; ++i)
      xs.push_back(static_cast<T>((both_signs && i % 2 ? -1 : 1) * std::pow(10.0, e(rng))));
  };
  { // exp
    const double lo = f32 ? -104 : -746, hi = f32 ? 89 : 710, step = std::log(2.0) / (f32 ? 8 : 4);
    std::uniform_real_distribution<double> wide(lo, hi), near(-10, 10);
    std::vector<T> xs;
    for (int i = 0; i < 500000; ++i) xs.push_back(static_cast<T>(i % 2 ? wide(rng) : near(rng)));
    magnitudes(xs, f32 ? -45 : -320, 0, true);
    for (int m = -40; m <= 40; ++m) around(xs, static_cast<T>((m + 0.5) * step), 32);
    for (T at : {T(f32 ? 87 : 708), T(f32 ? -87 : -708), std::log(L::max()), std::log(L::min()),
                 std::log(L::denorm_min()), T(std::log(L::denorm_min()) + 1)})
      around(xs, at, 2000);
    CHECK(max_ulps<T>(VecFn::exp, xs) <= 1.0);
  }
  { // log
    std::uniform_real_distribution<double> body(0, 4);
    std::vector<T> xs;
    for (int i = 0; i < 500000; ++i) xs.push_back(static_cast<T>(body(rng)));
    magnitudes(xs, f32 ? -45.8 : -323.5, f32 ? 38.5 : 308.2, false);
    for (int k = -10; k <= 10; ++k) around(xs, static_cast<T>(std::ldexp(std::sqrt(0.5), k)), 256);
    around(xs, T(1), 20000);
    CHECK(max_ulps<T>(VecFn::log, xs) <= 1.0);
  }
  { // tanh
    std::uniform_real_distribution<double> body(-12, 12);
    std::vector<T> xs;
    for (int i = 0; i < 500000; ++i) xs.push_back(static_cast<T>(body(rng)));
    magnitudes(xs, f32 ? -45 : -320, 1.3, true);
    for (T at : {T(0.1733), T(0.55), T(1), T(f32 ? 9.01 : 19.06), T(-(f32 ? 9.01 : 19.06))})
      around(xs, at, 2000);
    // SLEEF's double tanh (builds without AVX2 and FMA) is 1.0005 ULP from tanh x at some |x| < 1e-15,
    // where tanh x rounds to x.
    const bool own = gg::kernel::math_library().find("tanh, erf: gradgraph's") != std::string::npos;
    const double bound = f32 || own ? 1.0 : 1.001;
    CHECK(max_ulps<T>(VecFn::tanh, xs, bound) <= bound);
  }
}

TEST_CASE("vecmath: math_library names the widths that run (exp-bound loops at AVX-512's 16 floats on "
          "AVX-512 builds)") {
  const std::string math = gg::kernel::math_library();
  INFO(math);
  const bool wide =
      math.find("exp, sigmoid and the softmax family at AVX-512's 16 floats") != std::string::npos;
#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX2__) && defined(__FMA__)
  CHECK(wide == (math.rfind("SLEEF", 0) == 0)); // the vector build runs exp512_f32 there
#else
  CHECK(!wide);
#endif
}

TEMPLATE_TEST_CASE("vecmath: signs of zero, NaN and infinities as libm, every length, in place", "", float,
                   double) {
  using L = std::numeric_limits<TestType>;
  const TestType in[] = {TestType(0), TestType(-0.0), L::infinity(), -L::infinity(), L::quiet_NaN()};
  for (VecFn f : {VecFn::exp, VecFn::log, VecFn::tanh, VecFn::erf}) {
    TestType out[5];
    vec_math(f, in, out, 5);
    for (int i = 0; i < 5; ++i) {
      const auto exact = static_cast<TestType>(reference(f, in[i]));
      INFO("function " << static_cast<int>(f) << ", x = " << in[i]);
      CHECK(std::isnan(out[i]) == std::isnan(exact));
      if (!std::isnan(exact)) {
        CHECK(out[i] == exact);
        CHECK(std::signbit(out[i]) == std::signbit(exact));
      }
    }
  }
  // Lengths 0 to 40 (every tail of every SIMD width), in place: each element as computed alone.
  for (std::int64_t n = 0; n <= 40; ++n) {
    std::vector<TestType> x(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = TestType(0.1) * TestType(i - 20);
    std::vector<TestType> y = x;
    vec_math(VecFn::tanh, y.data(), y.data(), n);
    for (std::int64_t i = 0; i < n; ++i) {
      TestType one;
      vec_math(VecFn::tanh, &x[static_cast<std::size_t>(i)], &one, 1);
      CHECK(y[static_cast<std::size_t>(i)] == one);
    }
  }
}

TEST_CASE("vecmath: sigmoid and GELU through it stay accurate where their naive forms fail") {
  // sigmoid(-100) = 3.7e-44 in double (its denormal-free stable form, exp(-|a|) / (1 + exp(-|a|))),
  // sigmoid(40) rounds to 1, NaN stays NaN; GELU as torch.nn.functional.gelu in float64 (-0 at -10,
  // where erf rounds to -1).
  const gg::Tensor x({-100.0, -30.0, 0.0, 40.0, std::nan("")}, {5});
  const std::vector<double> s = gg::sigmoid(gg::Var::constant(x)).value().to_vector();
  CHECK(s[0] == Approx(3.7200759760208356e-44).epsilon(1e-15));
  CHECK(s[1] == Approx(9.357622968839299e-14).epsilon(1e-15));
  CHECK(s[2] == 0.5);
  CHECK(s[3] == 1.0);
  CHECK(std::isnan(s[4]));
  const std::vector<double> g =
      gg::gelu(gg::Var::constant(gg::Tensor({-10.0, -1.0, 0.0, 2.0}, {4}))).value().to_vector();
  CHECK(g[0] == 0.0);
  CHECK(std::signbit(g[0]));
  CHECK(g[1] == Approx(-0.15865525393145702).epsilon(1e-15));
  CHECK(g[2] == 0.0);
  CHECK(g[3] == Approx(1.9544997361036416).epsilon(1e-15));
}

TEST_CASE("vecmath: GELU in float within 2.5 ULP (x >= 0) and 2.5·2^-24·|x| (x < 0), its derivative within "
          "4·2^-24, on a million inputs") {
  // Where the build has AVX2, GELU in float is x/2 + x²·R(x²) with a fitted rational R, not x·(1 +
  // erf(x/√2))/2: uniform over the range where Φ is neither 0 nor 1 in float (|x| < 5.5437) and beyond,
  // log-uniform magnitudes down to the denormals, dense where Φ saturates. For x < 0 the result is a
  // difference (x/2 and x²·R of opposite signs), so it is held to an error relative to |x| there, as
  // the formula with erf is; the derivative Φ(x) + x·φ(x) (within [−0.17, 1.13]) to 4·2^-24 absolute (2 ULP
  // where it is above 1).
  using gg::kernel::detail::VecFused;
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> body(-7, 7), exponent(-45, 0.8);
  std::vector<float> xs;
  for (int i = 0; i < 1000000; ++i)
    xs.push_back(i % 4 ? static_cast<float>(body(rng))
                       : static_cast<float>((i % 8 ? 1 : -1) * std::pow(10.0, exponent(rng))));
  for (float at : {5.5437164f, -5.5437164f})
    for (float x = at - 0.001f; x < at + 0.001f; x = std::nextafter(x, 10.0f)) xs.push_back(x);
  const auto n = static_cast<std::int64_t>(xs.size());
  std::vector<float> y(xs.size()), dy(xs.size());
  gg::kernel::detail::vec_fused(VecFused::gelu, xs.data(), y.data(), n);
  gg::kernel::detail::vec_fused(VecFused::gelu_grad, xs.data(), dy.data(), n);
  double worst_pos = 0, worst_neg = 0, worst_grad = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const long double x = xs[i], phi = std::erfc(-x / std::sqrt(2.0L)) / 2, exact = x * phi,
                      grad = phi + x * std::exp(-x * x / 2) / std::sqrt(2 * std::acos(-1.0L));
    // (below |x|·2^-24 the unit is the smallest denormal: the result's own rounding)
    const long double unit = std::max(std::abs(x) * 0x1p-24L, static_cast<long double>(0x1p-149f));
    const double e = x >= 0 ? ulps(y[i], exact) : static_cast<double>(std::abs(y[i] - exact) / unit);
    double& worst = x >= 0 ? worst_pos : worst_neg;
    INFO("x = " << xs[i] << ", gelu " << y[i] << ", gelu' " << dy[i]);
    if (e > worst) {
      worst = e;
      CHECK(e <= 2.5);
    }
    const double eg = static_cast<double>(std::abs(dy[i] - grad) / 0x1p-24L);
    if (eg > worst_grad) {
      worst_grad = eg;
      CHECK(eg <= 4);
    }
  }
  // ±0, ±inf, NaN as x·(1 + erf(x/√2))/2 gives them: gelu(−0) = −0, gelu(−inf) = NaN (−inf·0).
  const float in[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -10.0f};
  float out[6];
  gg::kernel::detail::vec_fused(VecFused::gelu, in, out, 6);
  CHECK((out[0] == 0 && !std::signbit(out[0])));
  CHECK((out[1] == 0 && std::signbit(out[1])));
  CHECK(out[2] == INFINITY);
  CHECK(std::isnan(out[3]));
  CHECK(std::isnan(out[4]));
  CHECK((out[5] == 0 && std::signbit(out[5])));
}

TEMPLATE_TEST_CASE("vecmath: rows shorter than a vector (a softmax over a few classes): vec_exp_sum is the "
                   "sum in order in double of vec_exp_shifted's terms, vec_max the first of tied zeros",
                   "", float, double) {
  // Up to 8 floats or 4 doubles: shorter than a vector on every build (AVX2's 8 and 4, AVX-512's 16 and
  // 8), where the kernels take the masked tail alone. Terms down to the edges of exp (a logit far
  // below the maximum), zeros and infinities.
  using T = TestType;
  constexpr T inf = std::numeric_limits<T>::infinity();
  const std::int64_t longest = std::is_same_v<T, float> ? 8 : 4;
  std::mt19937_64 rng(23);
  std::normal_distribution<double> nd(0, 30);
  for (int trial = 0; trial < 400; ++trial) {
    const std::int64_t n = 1 + trial % longest;
    std::vector<T> x(static_cast<std::size_t>(n));
    for (T& v : x) v = static_cast<T>(nd(rng));
    if (n > 1 && trial % 7 == 3) x[0] = -inf;
    if (n > 1 && trial % 11 == 5) x[static_cast<std::size_t>(n - 1)] = static_cast<T>(-200);
    const T shift = gg::kernel::detail::vec_max(x.data(), n);
    std::vector<T> each(x.size()), stored(x.size());
    gg::kernel::detail::vec_exp_shifted(x.data(), shift, each.data(), n);
    double in_order = 0;
    for (T e : each) in_order += static_cast<double>(e);
    INFO("n = " << n << ", trial " << trial);
    CHECK(gg::kernel::detail::vec_exp_sum(x.data(), shift, stored.data(), n) == in_order);
    CHECK(gg::kernel::detail::vec_exp_sum(x.data(), shift, static_cast<T*>(nullptr), n) == in_order);
    CHECK(stored == each);
    CHECK(shift == *std::max_element(x.begin(), x.end()));
  }
  const T zeros[] = {T(-1), -T(0), T(0), -T(0)},
          nan_row[] = {T(1), std::numeric_limits<T>::quiet_NaN(), T(2)}, low[] = {-inf, -inf, -inf};
  CHECK(std::signbit(gg::kernel::detail::vec_max(zeros, 4)));      // −0 comes first
  CHECK(!std::signbit(gg::kernel::detail::vec_max(zeros + 2, 1))); // +0
  CHECK(!std::signbit(gg::kernel::detail::vec_max(zeros + 2, 2))); // +0 before −0
  CHECK(std::isnan(gg::kernel::detail::vec_max(nan_row, 3)));
  CHECK(gg::kernel::detail::vec_max(low, 3) == -inf);
}

TEMPLATE_TEST_CASE("vecmath: vec_log_softmax_short gives log_softmax's numbers: the maximum, vec_exp_sum, "
                   "(x - max) - log(sum)",
                   "", float, double) {
  // Where the build takes it (AVX-512; elsewhere it declines); it declines a zero, infinite or NaN
  // maximum, which the general path handles.
  using T = TestType;
  constexpr T inf = std::numeric_limits<T>::infinity();
  std::mt19937_64 rng(31);
  std::normal_distribution<double> nd(0, 20);
  for (int trial = 0; trial < 300; ++trial) {
    const std::int64_t n = 1 + trial % 16;
    std::vector<T> x(static_cast<std::size_t>(n)), y(x.size(), T(7));
    for (T& v : x) v = static_cast<T>(nd(rng));
    if (n > 1 && trial % 5 == 2) x[1] = -inf;
    if (n > 1 && trial % 9 == 4) x[0] = x[static_cast<std::size_t>(n - 1)] - 150;
    INFO("n = " << n << ", trial " << trial);
    if (!gg::kernel::detail::vec_log_softmax_short(x.data(), y.data(), n)) {
      CHECK(y == std::vector<T>(x.size(), T(7))); // untouched
      continue;
    }
    const T m = gg::kernel::detail::vec_max(x.data(), n);
    const T log_s =
        static_cast<T>(std::log(gg::kernel::detail::vec_exp_sum(x.data(), m, static_cast<T*>(nullptr), n)));
    for (std::size_t k = 0; k < x.size(); ++k) CHECK(y[k] == (x[k] - m) - log_s);
  }
  const T zeros[] = {T(-1), -T(0), T(0)}, with_inf[] = {T(1), inf},
          with_nan[] = {std::numeric_limits<T>::quiet_NaN(), T(1)};
  T out[3] = {};
  CHECK_FALSE(gg::kernel::detail::vec_log_softmax_short(zeros, out, 3));
  CHECK_FALSE(gg::kernel::detail::vec_log_softmax_short(with_inf, out, 2));
  CHECK_FALSE(gg::kernel::detail::vec_log_softmax_short(with_nan, out, 2));
}

TEMPLATE_TEST_CASE(
    "vecmath: vec_exp_fnmadd is g - exp(x)*s with vec_math's exponentials, fused where there is FMA", "",
    float, double) {
  // log_softmax's backward: x the log-probabilities (<= 0, down to exp's edges), lengths around the
  // vector widths (the masked tail alone, full vectors and a tail).
  using T = TestType;
  std::mt19937_64 rng(29);
  std::normal_distribution<double> nd(0, 1);
  std::exponential_distribution<double> ed(0.05);
  for (std::int64_t n : {1, 3, 8, 10, 16, 17, 40, 1000}) {
    std::vector<T> x(static_cast<std::size_t>(n)), g(x.size()), e(x.size()), y(x.size());
    for (T& v : x) v = static_cast<T>(-ed(rng));
    for (T& v : g) v = static_cast<T>(nd(rng));
    const T s = static_cast<T>(nd(rng));
    gg::kernel::detail::vec_math(gg::kernel::detail::VecFn::exp, x.data(), e.data(), n);
    gg::kernel::detail::vec_exp_fnmadd(x.data(), g.data(), s, y.data(), n);
    INFO("n = " << n);
    for (std::size_t i = 0; i < x.size(); ++i) {
#ifdef __FMA__
      CHECK(y[i] == std::fma(-e[i], s, g[i]));
#else
      CHECK(y[i] == g[i] - e[i] * s);
#endif
    }
  }
}

TEMPLATE_TEST_CASE("vecmath: vec_exp_sum (one pass, sums in the element type within blocks) against long "
                   "double, with and without the exponentials stored",
                   "", float, double) {
  // Lengths around the vector width, the unrolled pair and the block of 512 (tails, a partial last
  // block, several blocks); the shift is the maximum as in softmax, so every term is in (0, 1].
  using T = TestType;
  using gg::kernel::detail::k_vec_block;
  std::mt19937_64 rng(17);
  std::normal_distribution<double> nd(0, 3);
  for (std::int64_t n :
       {std::int64_t{1}, std::int64_t{7}, std::int64_t{17}, std::int64_t{33}, k_vec_block - 1, k_vec_block,
        k_vec_block + 5, 3 * k_vec_block + 11, std::int64_t{5000}}) {
    std::vector<T> x(static_cast<std::size_t>(n));
    for (T& v : x) v = static_cast<T>(nd(rng));
    if (n > 1) x[static_cast<std::size_t>(n / 2)] = -std::numeric_limits<T>::infinity(); // a term of 0
    const T shift = gg::kernel::detail::vec_max(x.data(), n);
    long double exact = 0;
    for (T v : x) exact += std::exp(static_cast<long double>(v) - static_cast<long double>(shift));
    std::vector<T> stored(x.size()), each(x.size());
    const double with = gg::kernel::detail::vec_exp_sum(x.data(), shift, stored.data(), n);
    const double without = gg::kernel::detail::vec_exp_sum(x.data(), shift, static_cast<T*>(nullptr), n);
    gg::kernel::detail::vec_exp_shifted(x.data(), shift, each.data(), n);
    INFO("n = " << n);
    CHECK(with == without);
    CHECK(stored == each); // the exponentials stored are vec_exp_shifted's
    // each term within 1 ULP, the partial sums in T over at most 512 / (2·width) terms a lane
    const double tol = 64 * std::numeric_limits<T>::epsilon();
    CHECK(std::abs(with - static_cast<double>(exact)) <= tol * static_cast<double>(exact));
  }
}
