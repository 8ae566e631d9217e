// vec_math: one loop over full vectors of AVX2 (our own functions where FMA is there too, SLEEF's
// otherwise) or SSE2 (SLEEF's), the tail through a padded copy; libm one element at a time without
// SLEEF. AVX-512 builds run the AVX2 functions too, but for exp at the full width (exp512_*, for the
// exp-bound loops: sigmoid, the softmax family): they are within 1 ULP where SLEEF's 512-bit u10
// functions are not (its tanhf is 1.00000001 ULP off at 6.2e-8), and measured faster on Zen 4, which
// splits 512-bit operations in two (docs/performance.md, "AVX-512 builds" and "Fifth round").
#include "vecmath.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <type_traits>

#include <fmt/format.h>
#if __has_include(<gnu/libc-version.h>)
#include <gnu/libc-version.h>
#endif

#if defined(__AVX2__)
#include <immintrin.h> // vec_max
#endif
#if defined(GG_HAVE_SLEEF) && (defined(__SSE2__) || defined(__AVX2__))
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

#if defined(__AVX2__) && defined(__FMA__)
#define GG_ERF_F32 1
/// erf in float, without SLEEF (whose erff is 4x slower than PyTorch's float erf): |x| in [0, 4) is
/// cut into eight intervals of width 1/2, each with its polynomial, picked per lane by a register
/// permute. On [0, 1/2): x·(K + s·P(s)), s = x², P of degree 6 (relative accuracy near 0, denormals
/// included); on the others K + t·P(t), t = |x| − the interval's centre; K is kept as hi + lo. From
/// |x| >= 3.92 the result is ±1 (erf rounds to 1 in float from 3.9192). Coefficients: least squares on
/// Chebyshev nodes in 40-digit arithmetic (mpmath), then rounded to float. At most 1 ULP
/// (tests/autodiff/test_vecmath.cpp measures it against long double; docs/performance.md).
struct ErfF32Table {
  alignas(64) float c[10][16];
};
constexpr ErfF32Table k_erf_f32 = {{
    {0.0f, 0.75f, 1.25f, 1.75f, 2.25f, 2.75f, 3.25f, 3.75f}, // centre
    {1.128379225730896f, 0.7111556529998779f, 0.9229001402854919f, 0.9866716861724854f, 0.9985373020172119f,
     0.9998993873596191f, 0.9999957084655762f, 0.9999998807907104f}, // k_hi
    {-5.8635382771399236e-08f, -1.9346362734040667e-08f, -1.202903376906761e-08f, -1.4953302596154572e-08f,
     -1.8603893536806027e-08f, -9.281738932997996e-09f, -1.1245039566176729e-08f,
     5.482033049730717e-09f}, // k_lo
    {-0.37612637877464294f, 0.6429310441017151f, 0.23652112483978271f, 0.05277499556541443f,
     0.007142319343984127f, 0.0005862772813998163f, 2.9189011911512353e-05f, 8.814288321445929e-07f}, // p0
    {0.11283791810274124f, -0.48219820857048035f, -0.2956516444683075f, -0.09235621243715286f,
     -0.0160701721906662f, -0.001612266176380217f, -9.486808266956359e-05f, -3.3058954613807146e-06f}, // p1
    {-0.026866169646382332f, 0.02678835019469261f, 0.16753588616847992f, 0.0901573896408081f,
     0.021724512800574303f, 0.0027603802736848593f, 0.00019581262313295156f, 7.9703277151566e-06f}, // p2
    {0.005223963875323534f, 0.15067677199840546f, -0.006134762894362211f, -0.04810519888997078f,
     -0.019087769091129303f, -0.003257750067859888f, -0.0002862094552256167f, -1.37910219564219e-05f}, // p3
    {-0.0008547105826437473f, -0.0532170906662941f, -0.04718655347824097f, 0.0066184732131659985f,
     0.010660059750080109f, 0.0027562910690903664f, 0.000313628843287006f, 1.8330059901927598e-05f}, // p4
    {0.00011995510431006551f, -0.026593215763568878f, 0.020622678101062775f, 0.009046508930623531f,
     -0.002784018637612462f, -0.0016674876678735018f, -0.00027339262305758893f,
     -2.064110776700545e-05f}, // p5
    {-1.3394935194810387e-05f, 0.017885494977235794f, 0.003745110472664237f, -0.005933099426329136f,
     -0.0007215269724838436f, 0.00063581537688151f, 0.00017359649064019322f, 1.7144711819128133e-05f}, // p6
}};
#endif

#if defined(__AVX2__) && defined(__FMA__)
__m256 erf_f32(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 ax = _mm256_andnot_ps(sign, x);
  // min(NaN, 3.99) is 3.99: a NaN lane takes the last interval, and its t (NaN) gives NaN.
  const __m256i idx =
      _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_min_ps(ax, _mm256_set1_ps(3.99f)), _mm256_set1_ps(2.0f)));
  const auto tab = [&](int row) { return _mm256_permutevar8x32_ps(_mm256_load_ps(k_erf_f32.c[row]), idx); };
  const __m256 first = _mm256_castsi256_ps(_mm256_cmpeq_epi32(idx, _mm256_setzero_si256()));
  const __m256 v = _mm256_blendv_ps(_mm256_sub_ps(ax, tab(0)), _mm256_mul_ps(ax, ax), first);
  const __m256 m = _mm256_blendv_ps(_mm256_set1_ps(1.0f), ax, first);
  __m256 p = tab(9);
  for (int row = 8; row >= 3; --row) p = _mm256_fmadd_ps(p, v, tab(row));
  __m256 r = _mm256_fmadd_ps(m, tab(1), _mm256_fmadd_ps(m, tab(2), _mm256_mul_ps(m, _mm256_mul_ps(v, p))));
  r = _mm256_blendv_ps(r, _mm256_set1_ps(1.0f), _mm256_cmp_ps(ax, _mm256_set1_ps(3.92f), _CMP_GE_OQ));
  return _mm256_or_ps(r, _mm256_and_ps(sign, x)); // r >= 0: the sign is x's
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
#define GG_ERF_F64 1
/// erf in double, as erf_f32 (4-5x faster than SLEEF's erf, which is 3x slower than its exp): |x| in
/// [0, 6) in twelve intervals of 1/2, a degree-15 polynomial each (x*(K + s*P(s)), s = x^2, on the
/// first; K + t*P(t) on the others), +-1 from 5.93 (erf rounds to 1 in double from 5.9215). Rows:
/// centre, K hi, K lo, P's 14 coefficients, padding; least squares on Chebyshev nodes in 50-digit
/// arithmetic. Four lanes read four rows: each group of four coefficients is loaded per lane and
/// transposed (gathers were 2x slower). At most 1 ULP (tests/autodiff/test_vecmath.cpp).
alignas(32) constexpr double k_erf_f64[12][20] = {
    {0.0,
     1.1283791670955126,
     1.533545961316588e-17,
     -0.37612638903183754,
     0.11283791670955126,
     -0.026866170645131252,
     0.005223977625442188,
     -0.0008548327023450852,
     0.0001205533298178965,
     -1.4925650358403931e-05,
     1.646211436561131e-06,
     -1.636584466741128e-07,
     1.4807191348049489e-08,
     -1.22904907900418e-09,
     9.420783867453823e-11,
     -6.6712553889784845e-12,
     3.974617308213109e-13,
     0.0,
     0.0,
     0.0},
    {0.75,
     0.7111556336535151,
     4.69744077164289e-17,
     0.6429310691952074,
     -0.48219830189640556,
     0.026788794549785954,
     0.15068696934263984,
     -0.053242729165246916,
     -0.026872509534569034,
     0.018435234988739915,
     0.002301788421530549,
     -0.0039682530403285675,
     0.00018602814800896343,
     0.0006238282922099011,
     -0.00010610553496221148,
     -7.408267696943032e-05,
     2.1325585560479587e-05,
     0.0,
     0.0,
     0.0},
    {1.25,
     0.9229001282564583,
     -5.51775442986392e-17,
     0.23652112244729076,
     -0.29565140305911347,
     0.1675357950668438,
     -0.006159404230403601,
     -0.04718103640706467,
     0.021301272964202308,
     0.003625982778292196,
     -0.005697678106055996,
     0.0008776295639177539,
     0.0007935131945618837,
     -0.0003238179758273609,
     -5.277070081620627e-05,
     5.434266860135707e-05,
     -2.6870626151488026e-06,
     0.0,
     0.0,
     0.0},
    {1.75,
     0.9866716712191824,
     2.1431190289565338e-17,
     0.052774995930150385,
     -0.09235624287776316,
     0.09015728471400038,
     -0.04810220983216766,
     0.006624361469441281,
     0.008963045098638107,
     -0.006058751556227171,
     0.0007300512529873985,
     0.0008941851072618596,
     -0.0004427507048947244,
     -5.516073717025277e-06,
     6.867567419173436e-05,
     -1.6964123976564335e-05,
     -4.666234364580722e-06,
     0.0,
     0.0,
     0.0},
    {2.25,
     0.9985372834133188,
     2.6956405885413457e-17,
     0.007142319022017981,
     -0.016070217799540463,
     0.021724553691973052,
     -0.019083383636953628,
     0.010657679165375557,
     -0.002904357071154586,
     -0.0006704559476776925,
     0.0009994937185895084,
     -0.00036938129087001927,
     -1.1466791530222439e-05,
     6.515330197701095e-05,
     -2.2684252453584145e-05,
     -1.529394009914992e-06,
     3.380507853420473e-06,
     0.0,
     0.0,
     0.0},
    {2.75,
     0.9998993780778803,
     4.451378916214761e-17,
     0.0005862772470937923,
     -0.0016122624295079279,
     0.002760388705066617,
     -0.0032581136596310455,
     0.002755808414071774,
     -0.0016573274036058355,
     0.0006460409568095506,
     -8.901157513779562e-05,
     -7.122311958423156e-05,
     5.4997129469065184e-05,
     -1.58437204313598e-05,
     -1.0737655087657405e-06,
     2.6870311574358168e-06,
     -8.883683483395893e-07,
     0.0,
     0.0,
     0.0},
    {3.25,
     0.9999956972205363,
     5.224680575187069e-17,
     2.918902538358193e-05,
     -9.486433249664081e-05,
     0.00019580971194805714,
     -0.0002865693377501563,
     0.0003137972255145155,
     -0.000263528504230415,
     0.00016999141271213628,
     -8.164762952856544e-05,
     2.591391733278597e-05,
     -2.3289012349317857e-06,
     -2.8657709573242782e-06,
     1.9050270988987227e-06,
     -5.325745212289367e-07,
     -3.3067556358030976e-09,
     0.0,
     0.0,
     0.0},
    {3.75,
     0.9999998862727434,
     4.2276182391829615e-17,
     8.814321912317562e-07,
     -3.305370717119249e-06,
     7.96961606241608e-06,
     -1.3841239877943386e-05,
     1.837097499325894e-05,
     -1.9272721446064623e-05,
     1.6275303117062137e-05,
     -1.112822749651192e-05,
     6.108865953208328e-06,
     -2.60330691597175e-06,
     7.756569580942672e-07,
     -9.019143599610959e-08,
     -6.0634280203155e-08,
     4.3001632010100125e-08,
     0.0,
     0.0,
     0.0},
    {4.25,
     0.9999999981494259,
     9.86675034192752e-19,
     1.6143993719505824e-08,
     -6.86119733079005e-08,
     1.8901925980017783e-07,
     -3.7879526930648613e-07,
     5.872461797143794e-07,
     -7.309200160133294e-07,
     7.477252274551512e-07,
     -6.378323448634333e-07,
     4.570057010608718e-07,
     -2.750620873461012e-07,
     1.377756392652597e-07,
     -5.59222904969586e-08,
     1.7023584797880764e-08,
     -2.882937434854472e-09,
     0.0,
     0.0,
     0.0},
    {4.75,
     0.9999999999815149,
     5.461622108299497e-17,
     1.7934357034430776e-10,
     -8.518819591318369e-10,
     2.637845013266843e-09,
     -5.980921254482275e-09,
     1.0572396972150977e-08,
     -1.514471609300604e-08,
     1.8036298839008262e-08,
     -1.817281467203207e-08,
     1.5675633299443832e-08,
     -1.1660946084368232e-08,
     7.499935008050625e-09,
     -4.173695056579277e-09,
     2.0539530195218728e-09,
     -8.166526039092265e-10,
     0.0,
     0.0,
     0.0},
    {5.25,
     0.9999999999998869,
     2.859354043191264e-17,
     1.2084074716658198e-12,
     -6.344139225982744e-12,
     2.1801684761243068e-11,
     -5.511470949312066e-11,
     1.0920039127575876e-10,
     -1.7640342148526229e-10,
     2.386045232863666e-10,
     -2.753680901616797e-10,
     2.7488762053074774e-10,
     -2.396666173640079e-10,
     1.8336856925336757e-10,
     -1.2430991770223615e-10,
     7.905081670289614e-11,
     -4.1446652626800894e-11,
     0.0,
     0.0,
     0.0},
    {5.75,
     0.9999999999999996,
     2.0875548107488853e-17,
     4.93848514261247e-15,
     -2.8396289563083887e-14,
     1.0720628061837093e-13,
     -2.987526287285966e-13,
     6.549693336112879e-13,
     -1.1756903364064448e-12,
     1.7755330994774888e-12,
     -2.3004046423166974e-12,
     2.594675324877429e-12,
     -2.5746533029682157e-12,
     2.2563768456329475e-12,
     -1.7762824621355478e-12,
     1.3674941810903033e-12,
     -8.573262248349325e-13,
     0.0,
     0.0,
     0.0},
};

__m256d erf_f64(__m256d x) {
  const __m256d sign = _mm256_set1_pd(-0.0);
  const __m256d ax = _mm256_andnot_pd(sign, x);
  // min(NaN, 5.99) is 5.99: a NaN lane takes the last row, and its t (NaN) gives NaN.
  const __m128i idx =
      _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_min_pd(ax, _mm256_set1_pd(5.99)), _mm256_set1_pd(2.0)));
  const double* r0 = k_erf_f64[_mm_cvtsi128_si32(idx)];
  const double* r1 = k_erf_f64[_mm_extract_epi32(idx, 1)];
  const double* r2 = k_erf_f64[_mm_extract_epi32(idx, 2)];
  const double* r3 = k_erf_f64[_mm_extract_epi32(idx, 3)];
  // c[j] = coefficient 4g + j of each lane's row
  const auto group = [&](int g, __m256d(&c)[4]) {
    const __m256d a = _mm256_load_pd(r0 + 4 * g), b = _mm256_load_pd(r1 + 4 * g),
                  e = _mm256_load_pd(r2 + 4 * g), d = _mm256_load_pd(r3 + 4 * g);
    const __m256d t0 = _mm256_unpacklo_pd(a, b), t1 = _mm256_unpackhi_pd(a, b), t2 = _mm256_unpacklo_pd(e, d),
                  t3 = _mm256_unpackhi_pd(e, d);
    c[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    c[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    c[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    c[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
  };
  __m256d head[4], c[4];
  group(0, head); // centre, K hi, K lo, P's first coefficient
  const __m256d first = _mm256_cmp_pd(ax, _mm256_set1_pd(0.5), _CMP_LT_OQ);
  const __m256d v = _mm256_blendv_pd(_mm256_sub_pd(ax, head[0]), _mm256_mul_pd(ax, ax), first);
  const __m256d m = _mm256_blendv_pd(_mm256_set1_pd(1.0), ax, first);
  group(4, c);
  __m256d p = c[0];
  for (int g = 3; g >= 1; --g) {
    group(g, c);
    for (int j = 3; j >= 0; --j) p = _mm256_fmadd_pd(p, v, c[j]);
  }
  p = _mm256_fmadd_pd(p, v, head[3]);
  __m256d r = _mm256_fmadd_pd(m, head[1], _mm256_fmadd_pd(m, head[2], _mm256_mul_pd(m, _mm256_mul_pd(v, p))));
  r = _mm256_blendv_pd(r, _mm256_set1_pd(1.0), _mm256_cmp_pd(ax, _mm256_set1_pd(5.93), _CMP_GE_OQ));
  return _mm256_or_pd(r, _mm256_and_pd(sign, x)); // r >= 0: the sign is x's
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
#define GG_OWN_EXP_LOG 1
// exp, log and tanh of our own (AVX2 + FMA), 1.6-2.5x SLEEF's u10 functions and within 1 ULP
// (tests/autodiff/test_vecmath.cpp; docs/performance.md, "Third round"). Each has a fast path for the
// common inputs and an out-of-line path, taken when any lane of the vector needs it, for the edges:
// denormal, overflowing or underflowing results, ±0, ±inf and NaN, as libm.

/// exp's table: 2^(j/8) (float) and 2^(j/4) (double) as hi + lo, picked per lane by a register permute.
struct ExpTables {
  alignas(32) float f_hi[8];
  alignas(32) float f_lo[8];
  alignas(32) double d_hi[4];
  alignas(32) double d_lo[4];
};
constexpr ExpTables k_exp = {
    {1.0f, 1.0905077457427979f, 1.1892070770263672f, 1.2968395948410034f, 1.4142135381698608f,
     1.5422108173370361f, 1.6817928552627563f, 1.8340080976486206f},
    {0.0f, -1.3077539939843064e-08f, 3.797635272917432e-08f, -4.018999533172973e-08f, 2.4203234971764687e-08f,
     8.070904833346049e-09f, -2.4755326677450284e-08f, -1.1239277952768134e-08f},
    {1.0, 1.189207115002721, 1.4142135623730951, 1.681792830507429},
    {0.0, 3.982015231465646e-17, -9.667293313452913e-17, 8.199010020581497e-17}};

/// exp's reduction constants, shared by the AVX2 and AVX-512 functions: 8/ln2 and ln2/8 as hi + lo (float),
/// 4/ln2 and ln2/4 as hi + lo (double), and the double polynomial P's coefficients c0..c6 (q = r + r²·P(r)).
namespace exp_c {
constexpr float f_inv = 11.541560173034668f, f_ln2_hi = 0.08664339780807495f,
                f_ln2_lo = -2.380817765157417e-10f;
constexpr double d_inv = 5.7707801635558535, d_ln2_hi = 0.17328679513998632, d_ln2_lo = 5.797617034615749e-18;
constexpr double d_p[7] = {0.49999999999999994,   0.1666666666669858,    0.04166666666675176,
                           0.008333333119028967,  0.0013888888555529334, 0.0001984562283751771,
                           2.4806746375826045e-05};
} // namespace exp_c

/// exp(x) = 2^k · 2^(j/8) · e^r in float: n = 8k + j = round(x·8/ln2) by the 1.5·2^23 trick (n in t's low
/// bits), r = x − n·ln2/8 (ln2/8 as hi + lo, |r| <= 0.0434), e^r − 1 = q = r + r²(1/2 + r/6 + r²/24)
/// (Taylor: 1.3e-9 relative). 2^(j/8)·(1 + q) = hi + c, c = hi·q + lo (|c| < 0.09·hi).
struct ExpPartsF32 {
  __m256 hi, c;
  __m256i t;
};
inline ExpPartsF32 exp_parts_f32(__m256 x) {
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256 tf = _mm256_fmadd_ps(x, _mm256_set1_ps(exp_c::f_inv), magic);
  const __m256 n = _mm256_sub_ps(tf, magic);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(exp_c::f_ln2_hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(exp_c::f_ln2_lo), r);
  const __m256i t = _mm256_castps_si256(tf);
  // the permute reads the index's low 3 bits: j
  const __m256 hi = _mm256_permutevar8x32_ps(_mm256_load_ps(k_exp.f_hi), t);
  const __m256 lo = _mm256_permutevar8x32_ps(_mm256_load_ps(k_exp.f_lo), t);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 24), r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  const __m256 q = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
  return {hi, _mm256_fmadd_ps(hi, q, lo), t};
}

/// 2^(j/8)·(1 + q) in [0.95, 1.91], unscaled, and t.
inline __m256 exp_unscaled_f32(__m256 x, __m256i& t) {
  const ExpPartsF32 e = exp_parts_f32(x);
  t = e.t;
  return _mm256_add_ps(e.hi, e.c);
}

/// k << 23 from exp_parts_f32's t (its low 12 bits are n mod 4096: shifted to the top, j's 3 bits cleared).
inline __m256i exp_scale_f32(__m256i t) {
  return _mm256_and_si256(_mm256_slli_epi32(t, 20), _mm256_set1_epi32(static_cast<int>(0xFF800000u)));
}

/// exp's edges in float: x clamped to [-104, 89] (beyond, the results are 0 and inf), the scale 2^k
/// applied in two factors 2^k1·2^k2 so that each is a normal float and the only rounding is the
/// last product (denormal results rounded once); NaN stays NaN.
[[gnu::noinline]] __m256 exp_edges_f32(__m256 x) {
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
  __m256i t;
  const __m256 y = exp_unscaled_f32(xc, t);
  const __m256i n = _mm256_sub_epi32(t, _mm256_castps_si256(_mm256_set1_ps(12582912.0f)));
  const __m256i k = _mm256_srai_epi32(n, 3), k1 = _mm256_srai_epi32(k, 1), k2 = _mm256_sub_epi32(k, k1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
  const __m256 r = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
  return _mm256_blendv_ps(r, _mm256_add_ps(x, x), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/// exp in float: for |x| < 87 (every lane) the scale 2^k is added to the exponent bits.
inline __m256 exp_f32(__m256 x) {
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  if (_mm256_movemask_ps(_mm256_cmp_ps(ax, _mm256_set1_ps(87.0f), _CMP_LT_OQ)) != 0xFF) [[unlikely]]
    return exp_edges_f32(x);
  __m256i t;
  const __m256 y = exp_unscaled_f32(x, t);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(y), exp_scale_f32(t)));
}

/// The parts of exp(x) = 2^k · 2^(j/4) · (1 + q) in double: n = 4k + j = round(x·4/ln2) by the 1.5·2^52
/// trick (n in t's low dwords), r = x − n·ln2/4 (hi + lo, |r| <= 0.0867), q = r + r²·P(r), P of degree 6
/// fitted by least squares on Chebyshev nodes in 50-digit arithmetic (mpmath; 0.05 ULP); 2^(j/4) as
/// hi + lo.
struct ExpPartsF64 {
  __m256d hi, lo, q;
  __m256i t;
};
inline ExpPartsF64 exp_parts_f64(__m256d x) {
  const __m256d magic = _mm256_set1_pd(6755399441055744.0);
  const __m256d tf = _mm256_fmadd_pd(x, _mm256_set1_pd(exp_c::d_inv), magic);
  const __m256d n = _mm256_sub_pd(tf, magic);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(exp_c::d_ln2_hi), x);
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(exp_c::d_ln2_lo), r);
  const __m256i t = _mm256_castpd_si256(tf);
  // dword indices 2j, 2j + 1 of each double lane (the permute reads their low 3 bits)
  const __m256i idx = _mm256_add_epi32(_mm256_shuffle_epi32(_mm256_slli_epi32(t, 1), 0xA0),
                                       _mm256_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1));
  const auto table = [&](const double* row) {
    return _mm256_castsi256_pd(
        _mm256_permutevar8x32_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(row)), idx));
  };
  // P by Estrin's scheme: its chain is three multiply-adds after r², not six (the loops that call exp
  // are bound by latency: docs/performance.md, "Fourth round")
  const auto c = [](double v) { return _mm256_set1_pd(v); };
  const __m256d r2 = _mm256_mul_pd(r, r);
  const __m256d p01 = _mm256_fmadd_pd(c(exp_c::d_p[1]), r, c(exp_c::d_p[0]));
  const __m256d p23 = _mm256_fmadd_pd(c(exp_c::d_p[3]), r, c(exp_c::d_p[2]));
  const __m256d p45 = _mm256_fmadd_pd(c(exp_c::d_p[5]), r, c(exp_c::d_p[4]));
  const __m256d p46 = _mm256_fmadd_pd(c(exp_c::d_p[6]), r2, p45);
  const __m256d p = _mm256_fmadd_pd(_mm256_fmadd_pd(p46, r2, p23), r2, p01);
  return {table(k_exp.d_hi), table(k_exp.d_lo), _mm256_fmadd_pd(p, r2, r), t};
}

/// exp's edges in double, as exp_edges_f32: x clamped to [-746, 710], 2^k in two normal factors (k from
/// the low dwords: AVX2 has no 64-bit arithmetic shift).
[[gnu::noinline]] __m256d exp_edges_f64(__m256d x) {
  const __m256d xc = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-746.0)), _mm256_set1_pd(710.0));
  const ExpPartsF64 e = exp_parts_f64(xc);
  const __m256d y = _mm256_add_pd(e.hi, _mm256_fmadd_pd(e.hi, e.q, e.lo));
  const __m256i k = _mm256_srai_epi32(e.t, 2), k1 = _mm256_srai_epi32(k, 1), k2 = _mm256_sub_epi32(k, k1);
  const __m256i bias = _mm256_set1_epi32(1023);
  const __m256d s1 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi32(k1, bias), 52));
  const __m256d s2 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi32(k2, bias), 52));
  const __m256d r = _mm256_mul_pd(_mm256_mul_pd(y, s1), s2);
  return _mm256_blendv_pd(r, _mm256_add_pd(x, x), _mm256_cmp_pd(x, x, _CMP_UNORD_Q));
}

/// k << 52 from exp_parts_f64's t (its low 12 bits are n mod 4096; j's 2 bits cleared).
inline __m256i exp_scale_f64(__m256i t) {
  return _mm256_and_si256(_mm256_slli_epi64(t, 50),
                          _mm256_set1_epi64x(static_cast<long long>(0xFFF0000000000000ull)));
}

/// exp in double: for |x| < 708 (every lane) the scale is added to the exponent bits.
inline __m256d exp_f64(__m256d x) {
  const __m256d ax = _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
  if (_mm256_movemask_pd(_mm256_cmp_pd(ax, _mm256_set1_pd(708.0), _CMP_LT_OQ)) != 0xF) [[unlikely]]
    return exp_edges_f64(x);
  const ExpPartsF64 e = exp_parts_f64(x);
  const __m256d y = _mm256_add_pd(e.hi, _mm256_fmadd_pd(e.hi, e.q, e.lo));
  return _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(y), exp_scale_f64(e.t)));
}

/// tanh in float: |x| < 0.55 by x + x³·P(x²), P of degree 4 fitted by least squares on Chebyshev nodes
/// (mpmath; 0.07 ULP); beyond, 1 − 2/(E + 1) with E = e^(2|x|) kept as hi + lo and E + 1 as an exact
/// sum, the quotient corrected by its residual (the plain formula is 2 ULP off near 0.55); 2|x|
/// clamped to 20 (tanh rounds to 1 from 9.01); the sign is x's, NaN kept by the first form.
inline __m256 tanh_f32(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
  const __m256 ax = _mm256_andnot_ps(sign, x), z = _mm256_mul_ps(x, x);
  __m256 p =
      _mm256_fmadd_ps(_mm256_set1_ps(-0.0061971647664904594f), z, _mm256_set1_ps(0.02101912721991539f));
  for (const float c : {-0.05384005233645439f, 0.1333247423171997f, -0.3333331346511841f})
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(c));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(ax, z), p, ax);
  const ExpPartsF32 e = exp_parts_f32(_mm256_min_ps(_mm256_set1_ps(20.0f), _mm256_add_ps(ax, ax)));
  const __m256 s = _mm256_castsi256_ps(_mm256_add_epi32(exp_scale_f32(e.t), _mm256_castps_si256(one))); // 2^k
  const __m256 eu = _mm256_add_ps(e.hi, e.c), eh = _mm256_mul_ps(eu, s);
  const __m256 el = _mm256_mul_ps(_mm256_add_ps(_mm256_sub_ps(e.hi, eu), e.c), s); // E − eh
  const __m256 dh = _mm256_add_ps(eh, one), dl = _mm256_add_ps(_mm256_add_ps(_mm256_sub_ps(eh, dh), one), el);
  const __m256 y0 = _mm256_div_ps(two, dh);
  const __m256 res = _mm256_fnmadd_ps(y0, dl, _mm256_fnmadd_ps(y0, dh, two)); // 2 − y0·(dh + dl)
  const __m256 y = _mm256_fmadd_ps(res, _mm256_mul_ps(y0, _mm256_set1_ps(0.5f)), y0);
  const __m256 r =
      _mm256_blendv_ps(_mm256_sub_ps(one, y), small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.55f), _CMP_NGE_UQ));
  return _mm256_or_ps(r, _mm256_and_ps(sign, x));
}

/// tanh in double, as tanh_f32: |x| < 0.55 by x + x³·P(x²), P of degree 10 (0.015 ULP); beyond,
/// 1 − 2/(E + 1) with E = e^(2|x|) = 2^k·(hi + c) as eh + el, E + 1 summed exactly, the quotient
/// corrected by its residual; 2|x| clamped to 40 (tanh rounds to 1 from 19.06).
inline __m256d tanh_f64(__m256d x) {
  const __m256d sign = _mm256_set1_pd(-0.0), one = _mm256_set1_pd(1.0), two = _mm256_set1_pd(2.0);
  const __m256d ax = _mm256_andnot_pd(sign, x), z = _mm256_mul_pd(x, x);
  __m256d p =
      _mm256_fmadd_pd(_mm256_set1_pd(-1.9022758760792422e-05), z, _mm256_set1_pd(8.255606379066146e-05));
  for (const double c : {-0.0002328540637401297, 0.0005882383987394583, -0.0014554930580321522,
                         0.003592084343889774, -0.008863231844538647, 0.021869488339845276,
                         -0.05396825396215518, 0.13333333333323844, -0.3333333333333328})
    p = _mm256_fmadd_pd(p, z, _mm256_set1_pd(c));
  const __m256d small = _mm256_fmadd_pd(_mm256_mul_pd(ax, z), p, ax);
  const ExpPartsF64 e = exp_parts_f64(_mm256_min_pd(_mm256_set1_pd(40.0), _mm256_add_pd(ax, ax)));
  const __m256d s =
      _mm256_castsi256_pd(_mm256_add_epi64(exp_scale_f64(e.t), _mm256_castpd_si256(one))); // 2^k
  const __m256d c = _mm256_fmadd_pd(e.hi, e.q, e.lo);
  const __m256d eu = _mm256_add_pd(e.hi, c), eh = _mm256_mul_pd(eu, s);
  const __m256d el = _mm256_mul_pd(_mm256_add_pd(_mm256_sub_pd(e.hi, eu), c), s); // E − eh
  const __m256d dh = _mm256_add_pd(eh, one),
                dl = _mm256_add_pd(_mm256_add_pd(_mm256_sub_pd(eh, dh), one), el);
  const __m256d y0 = _mm256_div_pd(two, dh);
  const __m256d res = _mm256_fnmadd_pd(y0, dl, _mm256_fnmadd_pd(y0, dh, two)); // 2 − y0·(dh + dl)
  const __m256d y = _mm256_fmadd_pd(res, _mm256_mul_pd(y0, _mm256_set1_pd(0.5)), y0);
  const __m256d r =
      _mm256_blendv_pd(_mm256_sub_pd(one, y), small, _mm256_cmp_pd(ax, _mm256_set1_pd(0.55), _CMP_NGE_UQ));
  return _mm256_or_pd(r, _mm256_and_pd(sign, x));
}

// log by fdlibm's formula (e_logf.c, e_log.c, with its coefficients): x = 2^k·m, m in [√2/2, √2),
// f = m − 1, s = f/(2 + f), log x = k·ln2_hi − ((f²/2 − (s·(f²/2 + R(s²)) + k·ln2_lo)) − f).

/// log of positive normal floats given their bits; kadj is subtracted from k (denormals pre-scaled).
inline __m256 log_normal_f32(__m256i bits, __m256 kadj) {
  const __m256i k = _mm256_srai_epi32(_mm256_sub_epi32(bits, _mm256_set1_epi32(0x3f3504f3)), 23);
  const __m256 m = _mm256_castsi256_ps(_mm256_sub_epi32(bits, _mm256_slli_epi32(k, 23)));
  const __m256 f = _mm256_sub_ps(m, _mm256_set1_ps(1.0f));
  const __m256 s = _mm256_div_ps(f, _mm256_add_ps(f, _mm256_set1_ps(2.0f)));
  const __m256 z = _mm256_mul_ps(s, s);
  __m256 r = _mm256_fmadd_ps(_mm256_set1_ps(0.24279078841f), z, _mm256_set1_ps(0.28498786688f));
  r = _mm256_fmadd_ps(r, z, _mm256_set1_ps(0.40000972152f));
  r = _mm256_mul_ps(_mm256_fmadd_ps(r, z, _mm256_set1_ps(0.66666662693f)), z);
  const __m256 hfsq = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_mul_ps(f, f));
  const __m256 kf = _mm256_sub_ps(_mm256_cvtepi32_ps(k), kadj);
  const __m256 inner =
      _mm256_fmadd_ps(s, _mm256_add_ps(hfsq, r), _mm256_mul_ps(kf, _mm256_set1_ps(9.0580006145e-06f)));
  return _mm256_fmadd_ps(kf, _mm256_set1_ps(6.9313812256e-01f), _mm256_sub_ps(f, _mm256_sub_ps(hfsq, inner)));
}

/// log of four positive normal doubles given their bits, as log_normal_f32 (k by 64-bit bit operations).
inline __m256d log_normal_f64(__m256i bits, __m256d kadj) {
  // u = bits − bits(√2/2) + (1023 << 52) >= 0: k + 1023 = u >> 52
  const __m256i u = _mm256_sub_epi64(bits, _mm256_set1_epi64x(0x3fe6a09e667f3bcdll - 0x3ff0000000000000ll));
  const __m256i ke = _mm256_and_si256(u, _mm256_set1_epi64x(static_cast<long long>(0xFFF0000000000000ull)));
  const __m256d m = _mm256_castsi256_pd(
      _mm256_add_epi64(_mm256_sub_epi64(bits, ke), _mm256_set1_epi64x(0x3ff0000000000000ll)));
  // k as a double: the bits of 2^52 + (k + 1023), minus 2^52 + 1023
  const __m256d two52 = _mm256_set1_pd(4503599627370496.0);
  const __m256d kd = _mm256_sub_pd(
      _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(u, 52), _mm256_castpd_si256(two52))),
      _mm256_add_pd(_mm256_set1_pd(4503599627370496.0 + 1023), kadj));
  const __m256d f = _mm256_sub_pd(m, _mm256_set1_pd(1.0));
  const __m256d s = _mm256_div_pd(f, _mm256_add_pd(f, _mm256_set1_pd(2.0)));
  const __m256d z = _mm256_mul_pd(s, s);
  __m256d r =
      _mm256_fmadd_pd(_mm256_set1_pd(1.479819860511658591e-01), z, _mm256_set1_pd(1.531383769920937332e-01));
  for (const double c : {1.818357216161805012e-01, 2.222219843214978396e-01, 2.857142874366239149e-01,
                         3.999999999940941908e-01, 6.666666666666735130e-01})
    r = _mm256_fmadd_pd(r, z, _mm256_set1_pd(c));
  r = _mm256_mul_pd(r, z);
  const __m256d hfsq = _mm256_mul_pd(_mm256_set1_pd(0.5), _mm256_mul_pd(f, f));
  const __m256d inner = _mm256_fmadd_pd(s, _mm256_add_pd(hfsq, r),
                                        _mm256_mul_pd(kd, _mm256_set1_pd(1.90821492927058770002e-10)));
  return _mm256_fmadd_pd(kd, _mm256_set1_pd(6.93147180369123816490e-01),
                         _mm256_sub_pd(f, _mm256_sub_pd(hfsq, inner)));
}

/// log's edges, per element type: denormals scaled by 2^23 (2^52) with k corrected; log 0 = −inf,
/// log of a negative number NaN, log inf = inf, NaN kept.
template <class V, class Ops> [[gnu::noinline]] V log_edges(V x) {
  const V tiny = Ops::lt(x, Ops::set(Ops::min_normal));
  const V xs = Ops::blend(x, Ops::mul(x, Ops::set(Ops::denormal_scale)), tiny);
  V y = Ops::normal(xs, Ops::and_(tiny, Ops::set(Ops::denormal_bits)));
  y = Ops::blend(y, Ops::set(-std::numeric_limits<typename Ops::T>::infinity()), Ops::eq(x, Ops::set(0)));
  y = Ops::blend(y, Ops::set(std::numeric_limits<typename Ops::T>::quiet_NaN()), Ops::lt(x, Ops::set(0)));
  y = Ops::blend(y, x, Ops::eq(x, Ops::set(std::numeric_limits<typename Ops::T>::infinity())));
  return Ops::blend(y, Ops::add(x, x), Ops::unordered(x, x));
}
struct LogOpsF32 {
  using T = float;
  static constexpr float min_normal = std::numeric_limits<float>::min(), denormal_scale = 8388608.0f,
                         denormal_bits = 23;
  static __m256 set(float c) { return _mm256_set1_ps(c); }
  static __m256 lt(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static __m256 eq(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static __m256 unordered(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_UNORD_Q); }
  static __m256 blend(__m256 a, __m256 b, __m256 m) { return _mm256_blendv_ps(a, b, m); }
  static __m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
  static __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
  static __m256 and_(__m256 a, __m256 b) { return _mm256_and_ps(a, b); }
  static __m256 normal(__m256 x, __m256 kadj) { return log_normal_f32(_mm256_castps_si256(x), kadj); }
};
struct LogOpsF64 {
  using T = double;
  static constexpr double min_normal = std::numeric_limits<double>::min(),
                          denormal_scale = 4503599627370496.0, denormal_bits = 52;
  static __m256d set(double c) { return _mm256_set1_pd(c); }
  static __m256d lt(__m256d a, __m256d b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
  static __m256d eq(__m256d a, __m256d b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
  static __m256d unordered(__m256d a, __m256d b) { return _mm256_cmp_pd(a, b, _CMP_UNORD_Q); }
  static __m256d blend(__m256d a, __m256d b, __m256d m) { return _mm256_blendv_pd(a, b, m); }
  static __m256d mul(__m256d a, __m256d b) { return _mm256_mul_pd(a, b); }
  static __m256d add(__m256d a, __m256d b) { return _mm256_add_pd(a, b); }
  static __m256d and_(__m256d a, __m256d b) { return _mm256_and_pd(a, b); }
  static __m256d normal(__m256d x, __m256d kadj) { return log_normal_f64(_mm256_castpd_si256(x), kadj); }
};

/// log in float and double: every lane positive, normal and finite (by its bits) takes the fast path.
inline __m256 log_f32(__m256 x) {
  const __m256i b = _mm256_castps_si256(x);
  const __m256i normal = _mm256_and_si256(_mm256_cmpgt_epi32(b, _mm256_set1_epi32(0x007fffff)),
                                          _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7f800000), b));
  if (_mm256_movemask_epi8(normal) != -1) [[unlikely]]
    return log_edges<__m256, LogOpsF32>(x);
  return log_normal_f32(b, _mm256_setzero_ps());
}
inline __m256d log_f64(__m256d x) {
  const __m256i b = _mm256_castpd_si256(x);
  const __m256i normal = _mm256_and_si256(_mm256_cmpgt_epi64(b, _mm256_set1_epi64x(0x000fffffffffffffll)),
                                          _mm256_cmpgt_epi64(_mm256_set1_epi64x(0x7ff0000000000000ll), b));
  if (_mm256_movemask_epi8(normal) != -1) [[unlikely]]
    return log_edges<__m256d, LogOpsF64>(x);
  return log_normal_f64(b, _mm256_setzero_pd());
}

// GELU in float without erf: Φ(x) = 1/2 + x·R(x²), R = P/Q a rational of degrees 6 and 5 fitted to
// (Φ(x) − 1/2)/x on |x| <= 5.5437 (3.92·√2, from where erf(x/√2) rounds to ±1 in float and Φ to 1 or 0)
// by linearised least squares with Lawson's weights in 40-digit arithmetic (mpmath; 1.8e-9 relative,
// 0.03 ULP), P and Q by Estrin's scheme (the loop is bound by its latency: Horner's ran at 2/3 of the
// speed). One division and eleven multiply-adds, no table: 2x the speed of x·(1 + erf(x/√2))/2 with
// the ten-row erf_f32. Accuracy (tests/autodiff/test_vecmath.cpp): within 2.5 ULP of x·Φ(x) for x >= 0,
// and 2.5·2^-24·|x| absolute for x < 0, where x·Φ(x) is a difference, as for the formula with erf.

inline __m256 fma_v(__m256 a, __m256 b, __m256 c) {
  return _mm256_fmadd_ps(a, b, c);
}
#if defined(__AVX512F__) && defined(__AVX512DQ__)
inline __m512 fma_v(__m512 a, __m512 b, __m512 c) {
  return _mm512_fmadd_ps(a, b, c);
}
#endif

/// R(s) = P(s)/Q(s), s = x², on 8 floats (AVX2) or 16 (AVX-512, gelu512_f32): the same operations.
template <class V> inline V gelu_ratio_f32(V s) {
  const auto c = [](float v) { return V{} + v; };
  const V s2 = s * s;
  const V p01 = fma_v(c(0.03272771375422939f), s, c(0.3989422811218142f));
  const V p23 = fma_v(c(0.00016964599688500484f), s, c(0.004794545141406845f));
  const V p45 = fma_v(c(5.092558140000496e-08f), s, c(8.325307189010727e-06f));
  const V p = fma_v(fma_v(fma_v(c(-7.071050713996684e-11f), s2, p45), s2, p23), s2, p01);
  const V q01 = fma_v(c(0.24870291573821673f), s, c(1.0f));
  const V q23 = fma_v(c(0.001928763580285018f), s, c(0.028468508512372332f));
  const V q45 = fma_v(c(1.9499812838050107e-06f), s, c(8.13457863443508e-05f));
  const V q = fma_v(fma_v(q45, s2, q23), s2, q01);
  return p / q;
}

/// Lanes with |x| >= 5.5437, where Φ(x) is 1 (x > 0) or 0 (x < 0) in float, and that Φ.
struct GeluSaturation {
  __m256 mask, phi;
};
inline GeluSaturation gelu_saturation_f32(__m256 x) {
  return {_mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), _mm256_set1_ps(5.5437164f), _CMP_GE_OQ),
          _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(1.0f))};
}

/// gelu(x) = x/2 + x²·R(x²) (one rounding fewer than x·Φ); x·Φ where Φ saturates (x·0 is −0, and NaN
/// at −inf, as x·(1 + erf(x/√2))/2); x's sign on the result (gelu(−0) = −0).
inline __m256 gelu_f32(__m256 x) {
  const __m256 s = _mm256_mul_ps(x, x);
  const __m256 g = _mm256_fmadd_ps(s, gelu_ratio_f32(s), _mm256_mul_ps(x, _mm256_set1_ps(0.5f)));
  const GeluSaturation sat = gelu_saturation_f32(x);
  const __m256 r = _mm256_blendv_ps(g, _mm256_mul_ps(x, sat.phi), sat.mask);
  return _mm256_or_ps(r, _mm256_and_ps(_mm256_set1_ps(-0.0f), x));
}

/// gelu'(x) = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π) (exp as in fused_of's formula).
inline __m256 gelu_grad_f32(__m256 x) {
  const __m256 s = _mm256_mul_ps(x, x);
  const GeluSaturation sat = gelu_saturation_f32(x);
  const __m256 phi =
      _mm256_blendv_ps(_mm256_fmadd_ps(x, gelu_ratio_f32(s), _mm256_set1_ps(0.5f)), sat.phi, sat.mask);
  const __m256 density =
      _mm256_mul_ps(_mm256_set1_ps(static_cast<float>(std::numbers::inv_sqrtpi / std::numbers::sqrt2)),
                    exp_f32(_mm256_mul_ps(_mm256_set1_ps(-0.5f), s)));
  return _mm256_fmadd_ps(x, density, phi);
}

#endif

#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(GG_OWN_EXP_LOG)
#define GG_OWN_EXP_512 1
// exp of our own on AVX-512 (16 floats, 8 doubles): the AVX2 functions' reduction, table and polynomials
// (exp_parts_f32 and exp_parts_f64 above, so the same results and the same ≤ 1 ULP), the table of eight
// (four) entries repeated across the register for vpermps's 4-bit (vpermpd's 3-bit) index. The edges
// (a lane with |x| >= 87 or 708, or NaN) scale by vscalefps/pd, which rounds once (denormal results) and
// overflows and underflows where libm does; it replaces the 8-lane AVX2 exp in those loops
// (docs/performance.md, "Fifth round").

/// 2^(j/8)·(1 + q) in [0.95, 1.91] and n = 8k + j (as a float and in t's low bits), as exp_parts_f32.
struct Exp512F32 {
  __m512 y, n;
  __m512i t;
};
inline Exp512F32 exp512_parts_f32(__m512 x) {
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  const __m512 tf = _mm512_fmadd_ps(x, _mm512_set1_ps(exp_c::f_inv), magic);
  const __m512 n = _mm512_sub_ps(tf, magic);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(exp_c::f_ln2_hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(exp_c::f_ln2_lo), r);
  const __m512i t = _mm512_castps_si512(tf);
  const __m512 hi = _mm512_permutexvar_ps(t, _mm512_broadcast_f32x8(_mm256_load_ps(k_exp.f_hi)));
  const __m512 lo = _mm512_permutexvar_ps(t, _mm512_broadcast_f32x8(_mm256_load_ps(k_exp.f_lo)));
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 24), r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  const __m512 q = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
  return {_mm512_add_ps(hi, _mm512_fmadd_ps(hi, q, lo)), n, t};
}

/// exp's edges in float: x clamped to [-104, 89], y·2^k by vscalefps (k = floor(n/8)); NaN stays NaN.
[[gnu::noinline]] __m512 exp512_edges_f32(__m512 x) {
  const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
  const Exp512F32 e = exp512_parts_f32(xc);
  const __m512 r = _mm512_scalef_ps(e.y, _mm512_mul_ps(e.n, _mm512_set1_ps(0.125f)));
  return _mm512_mask_add_ps(r, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x, x);
}

/// exp in float: for |x| < 87 (every lane) k is added to the exponent bits.
inline __m512 exp512_f32(__m512 x) {
  if (_mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(87.0f), _CMP_LT_OQ) != 0xFFFF) [[unlikely]]
    return exp512_edges_f32(x);
  const Exp512F32 e = exp512_parts_f32(x);
  const __m512i scale =
      _mm512_and_si512(_mm512_slli_epi32(e.t, 20), _mm512_set1_epi32(static_cast<int>(0xFF800000u)));
  return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(e.y), scale));
}

/// 2^(j/4)·(1 + q) and n = 4k + j in double, as exp_parts_f64 (P by Estrin's scheme).
struct Exp512F64 {
  __m512d y, n;
  __m512i t;
};
inline Exp512F64 exp512_parts_f64(__m512d x) {
  const auto c = [](double v) { return _mm512_set1_pd(v); };
  const __m512d magic = c(6755399441055744.0);
  const __m512d tf = _mm512_fmadd_pd(x, c(exp_c::d_inv), magic);
  const __m512d n = _mm512_sub_pd(tf, magic);
  __m512d r = _mm512_fnmadd_pd(n, c(exp_c::d_ln2_hi), x);
  r = _mm512_fnmadd_pd(n, c(exp_c::d_ln2_lo), r);
  const __m512i t = _mm512_castpd_si512(tf);
  const __m512d hi = _mm512_permutexvar_pd(t, _mm512_broadcast_f64x4(_mm256_load_pd(k_exp.d_hi)));
  const __m512d lo = _mm512_permutexvar_pd(t, _mm512_broadcast_f64x4(_mm256_load_pd(k_exp.d_lo)));
  const __m512d r2 = _mm512_mul_pd(r, r);
  const __m512d p01 = _mm512_fmadd_pd(c(exp_c::d_p[1]), r, c(exp_c::d_p[0]));
  const __m512d p23 = _mm512_fmadd_pd(c(exp_c::d_p[3]), r, c(exp_c::d_p[2]));
  const __m512d p45 = _mm512_fmadd_pd(c(exp_c::d_p[5]), r, c(exp_c::d_p[4]));
  const __m512d p46 = _mm512_fmadd_pd(c(exp_c::d_p[6]), r2, p45);
  const __m512d p = _mm512_fmadd_pd(_mm512_fmadd_pd(p46, r2, p23), r2, p01);
  const __m512d q = _mm512_fmadd_pd(p, r2, r);
  return {_mm512_add_pd(hi, _mm512_fmadd_pd(hi, q, lo)), n, t};
}

/// exp's edges in double: x clamped to [-746, 710], y·2^k by vscalefpd (k = floor(n/4)); NaN stays NaN.
[[gnu::noinline]] __m512d exp512_edges_f64(__m512d x) {
  const __m512d xc = _mm512_min_pd(_mm512_max_pd(x, _mm512_set1_pd(-746.0)), _mm512_set1_pd(710.0));
  const Exp512F64 e = exp512_parts_f64(xc);
  const __m512d r = _mm512_scalef_pd(e.y, _mm512_mul_pd(e.n, _mm512_set1_pd(0.25)));
  return _mm512_mask_add_pd(r, _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q), x, x);
}

/// exp in double: for |x| < 708 (every lane) k is added to the exponent bits.
inline __m512d exp512_f64(__m512d x) {
  if (_mm512_cmp_pd_mask(_mm512_abs_pd(x), _mm512_set1_pd(708.0), _CMP_LT_OQ) != 0xFF) [[unlikely]]
    return exp512_edges_f64(x);
  const Exp512F64 e = exp512_parts_f64(x);
  const __m512i scale = _mm512_and_si512(_mm512_slli_epi64(e.t, 50),
                                         _mm512_set1_epi64(static_cast<long long>(0xFFF0000000000000ull)));
  return _mm512_castsi512_pd(_mm512_add_epi64(_mm512_castpd_si512(e.y), scale));
}
#endif

#if defined(__AVX2__)
constexpr const char* k_isa = "AVX2";
struct F32 {
  using V = __m256;
  static constexpr int width = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
#ifdef GG_OWN_EXP_LOG
  static V exp(V v) {
    return exp_f32(v);
  }
  static V log(V v) {
    return log_f32(v);
  }
  static V tanh(V v) {
    return tanh_f32(v);
  }
#else
  static V exp(V v) {
    return Sleef_expf8_u10(v);
  }
  static V log(V v) {
    return Sleef_logf8_u10(v);
  }
  static V tanh(V v) {
    return Sleef_tanhf8_u10(v);
  }
#endif
#ifdef GG_ERF_F32
  static V erf(V v) {
    return erf_f32(v);
  }
#else
  static V erf(V v) {
    return Sleef_erff8_u10(v);
  }
#endif
};
struct F64 {
  using V = __m256d;
  static constexpr int width = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static bool any_gt(V v, double c) {
    return _mm256_movemask_pd(_mm256_cmp_pd(v, _mm256_set1_pd(c), _CMP_GT_OQ)) != 0;
  }
#ifdef GG_OWN_EXP_LOG
  static V exp(V v) {
    return exp_f64(v);
  }
  static V log(V v) {
    return log_f64(v);
  }
  static V tanh(V v) {
    return tanh_f64(v);
  }
#else
  static V exp(V v) {
    return exp_top<F64>(v, Sleef_expd4_u10(v));
  }
  static V log(V v) {
    return Sleef_logd4_u10(v);
  }
  static V tanh(V v) {
    return Sleef_tanhd4_u10(v);
  }
#endif
#ifdef GG_ERF_F64
  static V erf(V v) {
    return erf_f64(v);
  }
#else
  static V erf(V v) {
    return Sleef_erfd4_u10(v);
  }
#endif
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

#if defined(GG_OWN_EXP_512) && defined(__AVX2__) && defined(__FMA__)
#define GG_GELU_512 1
// GELU in float on AVX-512's 16 lanes: gelu_f32 and gelu_grad_f32's operations, lane for lane (the same
// rational, the same roundings, exp512_f32 for exp_f32: the same results, tests/autodiff/test_vecmath.cpp).
// On an Intel CPU with two 512-bit FMA units (family 6 model 207) the 8-lane loop ran PyTorch's GELU at
// 1.27x, under issue 16's 1.5x; Zen 4 splits 512-bit operations in two, so there it changes little.

/// The lanes where Φ saturates, and that Φ, as gelu_saturation_f32.
struct Gelu512Saturation {
  __mmask16 mask;
  __m512 phi;
};
inline Gelu512Saturation gelu512_saturation_f32(__m512 x) {
  const __mmask16 positive = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
  return {_mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(5.5437164f), _CMP_GE_OQ),
          _mm512_maskz_mov_ps(positive, _mm512_set1_ps(1.0f))};
}

/// gelu_f32 on 16 lanes.
inline __m512 gelu512_f32(__m512 x) {
  const __m512 s = _mm512_mul_ps(x, x);
  const __m512 g = _mm512_fmadd_ps(s, gelu_ratio_f32(s), _mm512_mul_ps(x, _mm512_set1_ps(0.5f)));
  const Gelu512Saturation sat = gelu512_saturation_f32(x);
  const __m512 r = _mm512_mask_blend_ps(sat.mask, g, _mm512_mul_ps(x, sat.phi));
  return _mm512_or_ps(r, _mm512_and_ps(_mm512_set1_ps(-0.0f), x));
}

/// gelu_grad_f32 on 16 lanes.
inline __m512 gelu512_grad_f32(__m512 x) {
  const __m512 s = _mm512_mul_ps(x, x);
  const Gelu512Saturation sat = gelu512_saturation_f32(x);
  const __m512 phi =
      _mm512_mask_blend_ps(sat.mask, _mm512_fmadd_ps(x, gelu_ratio_f32(s), _mm512_set1_ps(0.5f)), sat.phi);
  const __m512 density =
      _mm512_mul_ps(_mm512_set1_ps(static_cast<float>(std::numbers::inv_sqrtpi / std::numbers::sqrt2)),
                    exp512_f32(_mm512_mul_ps(_mm512_set1_ps(-0.5f), s)));
  return _mm512_fmadd_ps(x, density, phi);
}
#endif

#ifdef GG_OWN_EXP_512
/// exp on AVX-512's full width (exp512_f32/f64) for the loops whose cost is exp: vec_math's exp, the
/// softmax family's exponentials and sums, sigmoid (docs/performance.md, "Fifth round"); the other
/// functions run the AVX2 kernels.
/// The first count (<= width) lanes: masked loads (the others set to fill), stores and adds, for the
/// tails of rows shorter than a vector (the softmax family's rows of a few classes), where a copy to a
/// padded buffer and a vector load of it stalled on the store forwarding.
inline __mmask16 first_lanes(std::int64_t count) {
  return static_cast<__mmask16>((1u << count) - 1);
}
struct F32Wide {
  using V = __m512;
  static constexpr int width = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V exp(V v) { return exp512_f32(v); }
  static V load_part(const float* p, std::int64_t count, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), first_lanes(count), p);
  }
  static void store_part(float* p, std::int64_t count, V v) {
    _mm512_mask_storeu_ps(p, first_lanes(count), v);
  }
  static V add_part(V a, std::int64_t count, V b) { return _mm512_mask_add_ps(a, first_lanes(count), a, b); }
  static bool any_nan(V v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) != 0; }
  static float reduce_max(V v) { return _mm512_reduce_max_ps(v); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
};
struct F64Wide {
  using V = __m512d;
  static constexpr int width = 8;
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V exp(V v) { return exp512_f64(v); }
  static V load_part(const double* p, std::int64_t count, double fill) {
    return _mm512_mask_loadu_pd(_mm512_set1_pd(fill), static_cast<__mmask8>(first_lanes(count)), p);
  }
  static void store_part(double* p, std::int64_t count, V v) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>(first_lanes(count)), v);
  }
  static V add_part(V a, std::int64_t count, V b) {
    return _mm512_mask_add_pd(a, static_cast<__mmask8>(first_lanes(count)), a, b);
  }
  static bool any_nan(V v) { return _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q) != 0; }
  static double reduce_max(V v) { return _mm512_reduce_max_pd(v); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_pd(a, b, c); }
};
/// Whether S has the masked operations above (the AVX-512 widths).
template <class S>
concept PartLanes = requires(const typename S::V v, typename S::V* p) {
  S::add_part(v, 1, v);
};
template <class S> using Wide = std::conditional_t<std::is_same_v<S, F32>, F32Wide, F64Wide>;
/// The AVX-512 operations for element type T.
template <class T> using WideOf = std::conditional_t<std::is_same_v<T, float>, F32Wide, F64Wide>;
#else
template <class S> using Wide = S;
#endif

template <class S, class T, class Fn> void map(const T* x, T* y, std::int64_t n, Fn fn) {
  std::int64_t i = 0;
  for (; i + S::width <= n; i += S::width) S::store(y + i, fn(S::load(x + i)));
  if (i == n) return;
#ifdef GG_OWN_EXP_512
  if constexpr (PartLanes<S>) { // the tail's lanes alone, the others zeros whose results are dropped
    S::store_part(y + i, n - i, fn(S::load_part(x + i, n - i, T(0))));
    return;
  }
#endif
  T pad[S::width] = {}; // the tail, padded with zeros whose results are dropped
  std::memcpy(pad, x + i, sizeof(T) * static_cast<std::size_t>(n - i));
  S::store(pad, fn(S::load(pad)));
  std::memcpy(y + i, pad, sizeof(T) * static_cast<std::size_t>(n - i));
}

/// y[i] = g[i]·fn(x[i]), as map.
template <class S, class T, class Fn> void map_times(const T* g, const T* x, T* y, std::int64_t n, Fn fn) {
  std::int64_t i = 0;
  for (; i + S::width <= n; i += S::width) S::store(y + i, S::load(g + i) * fn(S::load(x + i)));
  if (i == n) return;
  T pad[S::width] = {}, gpad[S::width] = {};
  const auto bytes = sizeof(T) * static_cast<std::size_t>(n - i);
  std::memcpy(pad, x + i, bytes);
  std::memcpy(gpad, g + i, bytes);
  S::store(pad, S::load(gpad) * fn(S::load(pad)));
  std::memcpy(y + i, pad, bytes);
}

template <class S, class T> void vec(VecFn f, const T* x, T* y, std::int64_t n) {
  using V = typename S::V;
  switch (f) {
  case VecFn::exp: return map<Wide<S>>(x, y, n, [](typename Wide<S>::V v) { return Wide<S>::exp(v); });
  case VecFn::log: return map<S>(x, y, n, [](V v) { return S::log(v); });
  case VecFn::tanh: return map<S>(x, y, n, [](V v) { return S::tanh(v); });
  case VecFn::erf: return map<S>(x, y, n, [](V v) { return S::erf(v); });
  }
}

template <class S, class T> void exp_shifted(const T* x, T shift, T* y, std::int64_t n) {
  using W = Wide<S>;
  map<W>(x, y, n, [shift](typename W::V v) { return W::exp(v - shift); });
}
#endif

/// The VecFused formulas, one for a vector (GCC's vector extensions) and a scalar of element type T;
/// exp, erf and tanh are the vector or the scalar functions.
template <VecFused f, class T, class V, class Exp, class Erf, class Tanh>
[[gnu::always_inline]] inline V fused_of(V x, Exp exp, Erf erf, Tanh tanh) {
  constexpr T k_inv_sqrt2 = T(std::numbers::sqrt2 / 2),
              k_inv_sqrt_2pi = T(std::numbers::inv_sqrtpi / std::numbers::sqrt2), beta = T(k_gelu_beta),
              kappa = T(k_gelu_kappa);
  const V zero{}, one = zero + T(1), half = zero + T(0.5);
  if constexpr (f == VecFused::sigmoid) {
    const V e = exp(x < -x ? x : -x); // exp(−|x|) in (0, 1]: never overflows
    return (x >= zero ? one : e) / (one + e);
  } else if constexpr (f == VecFused::gelu) {
    return half * x * (one + erf(x * k_inv_sqrt2));
  } else if constexpr (f == VecFused::gelu_grad) { // Φ(x) + x·φ(x)
    return half * (one + erf(x * k_inv_sqrt2)) + x * (k_inv_sqrt_2pi * exp(T(-0.5) * (x * x)));
  } else if constexpr (f == VecFused::gelu_tanh) {
    return half * x * (one + tanh(beta * (x + kappa * x * x * x)));
  } else {
    const V t = tanh(beta * (x + kappa * (x * x) * x)), du = beta * (one + T(3 * k_gelu_kappa) * (x * x));
    return half * (one + t) + half * x * (one - t * t) * du;
  }
}

/// y[i] = fused_of<f>(x[i]), times g[i] unless g is null, for the vectors of S (the SLEEF build) or
/// the scalars of T (libm).
template <VecFused f, class S, class T> void fused_pass(const T* g, const T* x, T* y, std::int64_t n) {
#ifdef GG_SLEEF_VECTORS
  using V = typename S::V;
  const auto run = [&](auto fn) { return g ? map_times<S>(g, x, y, n, fn) : map<S>(x, y, n, fn); };
#ifdef GG_GELU_512
  if constexpr (std::is_same_v<T, float> && (f == VecFused::gelu || f == VecFused::gelu_grad)) {
    const auto fn = [](__m512 v) {
      if constexpr (f == VecFused::gelu)
        return gelu512_f32(v);
      else
        return gelu512_grad_f32(v);
    };
    return g ? map_times<F32Wide>(g, x, y, n, fn) : map<F32Wide>(x, y, n, fn);
  }
#endif
#ifdef GG_OWN_EXP_LOG
  if constexpr (std::is_same_v<T, float> && f == VecFused::gelu) return run([](V v) { return gelu_f32(v); });
  if constexpr (std::is_same_v<T, float> && f == VecFused::gelu_grad)
    return run([](V v) { return gelu_grad_f32(v); });
#endif
  if constexpr (f == VecFused::sigmoid) { // exp alone: on the full width (Wide)
    using W = Wide<S>;
    const auto fn = [](typename W::V v) {
      const auto exp = [](typename W::V a) { return W::exp(a); };
      return fused_of<f, T>(v, exp, exp, exp); // erf and tanh unused
    };
    return g ? map_times<W>(g, x, y, n, fn) : map<W>(x, y, n, fn);
  }
  run([](V v) {
    return fused_of<f, T>(
        v, [](V a) { return S::exp(a); }, [](V a) { return S::erf(a); }, [](V a) { return S::tanh(a); });
  });
#else
  for (std::int64_t i = 0; i < n; ++i) {
    const T r = fused_of<f, T>(
        x[i], [](T a) { return std::exp(a); }, [](T a) { return std::erf(a); },
        [](T a) { return std::tanh(a); });
    y[i] = g ? g[i] * r : r;
  }
#endif
}

template <class S, class T> void fused(VecFused f, const T* g, const T* x, T* y, std::int64_t n) {
  switch (f) {
  case VecFused::sigmoid: return fused_pass<VecFused::sigmoid, S>(g, x, y, n);
  case VecFused::gelu: return fused_pass<VecFused::gelu, S>(g, x, y, n);
  case VecFused::gelu_grad: return fused_pass<VecFused::gelu_grad, S>(g, x, y, n);
  case VecFused::gelu_tanh: return fused_pass<VecFused::gelu_tanh, S>(g, x, y, n);
  case VecFused::gelu_tanh_grad: return fused_pass<VecFused::gelu_tanh_grad, S>(g, x, y, n);
  }
}

#ifndef GG_SLEEF_VECTORS
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

void vec_fused(VecFused f, const float* x, float* y, std::int64_t n) {
  vec_fused_times(f, nullptr, x, y, n);
}
void vec_fused(VecFused f, const double* x, double* y, std::int64_t n) {
  vec_fused_times(f, nullptr, x, y, n);
}

void vec_fused_times(VecFused f, const float* g, const float* x, float* y, std::int64_t n) {
#ifdef GG_SLEEF_VECTORS
  fused<F32>(f, g, x, y, n);
#else
  fused<float>(f, g, x, y, n);
#endif
}
void vec_fused_times(VecFused f, const double* g, const double* x, double* y, std::int64_t n) {
#ifdef GG_SLEEF_VECTORS
  fused<F64>(f, g, x, y, n);
#else
  fused<double>(f, g, x, y, n);
#endif
}

void vec_math(VecFn f, const double* x, double* y, std::int64_t n) {
#ifdef GG_SLEEF_VECTORS
  vec<F64>(f, x, y, n);
#else
  scalar(f, x, y, n);
#endif
}

namespace {
/// The scalar part of vec_max: the tail, or all of it without AVX2; a NaN stays once met.
template <class T> T max_tail(const T* p, std::int64_t n, T m) {
  for (std::int64_t i = 0; i < n; ++i) m = p[i] > m || p[i] != p[i] ? p[i] : m;
  return m;
}

#if defined(__AVX2__)
// The AVX2 operations of vec_max, per element type.
template <class T> struct MaxOps;
template <> struct MaxOps<float> {
  using V = __m256;
  static constexpr int width = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V unordered(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_UNORD_Q); }
  static V either(V a, V b) { return _mm256_or_ps(a, b); }
};
template <> struct MaxOps<double> {
  using V = __m256d;
  static constexpr int width = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static V unordered(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_UNORD_Q); }
  static V either(V a, V b) { return _mm256_or_pd(a, b); }
};

// Two vector maxima and an unordered (NaN) mask: GCC does not vectorise the scalar form with its NaN
// test (it was 30-55% of softmax's time).
template <class T> T max_vectors(const T* p, std::int64_t n) {
  using O = MaxOps<T>;
  constexpr int w = O::width;
  std::int64_t i = 0;
  T m = p[0];
  if (n >= 2 * w) {
    typename O::V m0 = O::load(p), m1 = O::load(p + w), nan = O::unordered(m0, m1);
    for (i = 2 * w; i + 2 * w <= n; i += 2 * w) {
      const typename O::V a = O::load(p + i), b = O::load(p + i + w);
      m0 = O::max(m0, a);
      m1 = O::max(m1, b);
      nan = O::either(nan, O::unordered(a, b));
    }
    T lanes[w], flags[w];
    O::store(lanes, O::max(m0, m1));
    O::store(flags, nan);
    for (int k = 0; k < w; ++k) {
      if (flags[k] != T(0)) return std::numeric_limits<T>::quiet_NaN(); // all-ones bits: a NaN
      m = lanes[k] > m ? lanes[k] : m;
    }
  }
  m = max_tail(p + i, n - i, m);
  return m != m ? std::numeric_limits<T>::quiet_NaN() : m;
}
#endif

#ifdef GG_OWN_EXP_512
/// vec_max of a row of at most one AVX-512 vector (n <= 16 floats, 8 doubles): a masked load and one
/// reduction; a maximum of zero goes to the scalar loop, which picks the first of +0 and −0 as before.
template <class W, class T> bool max_short(const T* p, std::int64_t n, T& m) {
  if (n > W::width) return false;
  const typename W::V v = W::load_part(p, n, -std::numeric_limits<T>::infinity());
  if (W::any_nan(v)) {
    m = std::numeric_limits<T>::quiet_NaN();
    return true;
  }
  m = W::reduce_max(v);
  return m != 0;
}
#endif

/// vec_max and vec_exp_shifted for either element type.
template <class T> T max_of(const T* p, std::int64_t n) {
#ifdef GG_OWN_EXP_512
  if (T m; max_short<WideOf<T>>(p, n, m)) return m;
#endif
#if defined(__AVX2__)
  return max_vectors(p, n);
#else
  return max_tail(p + 1, n - 1, p[0]);
#endif
}
template <class T> void exp_shifted_of(const T* x, T shift, T* y, std::int64_t n) {
#ifdef GG_SLEEF_VECTORS
  exp_shifted<std::conditional_t<std::is_same_v<T, float>, F32, F64>>(x, shift, y, n);
#else
  std::transform(x, x + n, y, [shift](T a) { return std::exp(a - shift); });
#endif
}
} // namespace

float vec_max(const float* p, std::int64_t n) {
  return max_of(p, n);
}
double vec_max(const double* p, std::int64_t n) {
  return max_of(p, n);
}
namespace {
/// vec_exp_fnmadd for either element type: on AVX-512 in one pass (the exponentials of vec_math, the
/// tail by masked loads and stores), else vec_math's exp into y, then the arithmetic, which GCC fuses
/// into one multiply-add where there is FMA (as the fused pass does).
template <class T> void exp_fnmadd_of(const T* x, const T* g, T s, T* y, std::int64_t n) {
#ifdef GG_OWN_EXP_512
  using W = WideOf<T>;
  using V = typename W::V;
  const V sv = V{} + s;
  std::int64_t i = 0;
  for (; i + W::width <= n; i += W::width)
    W::store(y + i, W::fnmadd(W::exp(W::load(x + i)), sv, W::load(g + i)));
  if (i < n)
    W::store_part(y + i, n - i,
                  W::fnmadd(W::exp(W::load_part(x + i, n - i, T(0))), sv, W::load_part(g + i, n - i, T(0))));
#else
  vec_math(VecFn::exp, x, y, n);
  for (std::int64_t i = 0; i < n; ++i) y[i] = g[i] - y[i] * s;
#endif
}

template <class T>
bool log_softmax_short_of([[maybe_unused]] const T* x, [[maybe_unused]] T* y,
                          [[maybe_unused]] std::int64_t n) {
#ifdef GG_OWN_EXP_512
  using W = WideOf<T>;
  using V = typename W::V;
  T m; // vec_max's; a zero (which one), infinite or NaN maximum: the general path
  if (!max_short<W>(x, n, m) || !std::isfinite(m)) return false;
  const V shifted = W::load_part(x, n, m) - m; // the lanes past the row 0, left out below
  // exp_sum_vectors' one partial vector: the terms, +0 past the row, summed in order in double
  T lanes[W::width];
  W::store(lanes, W::add_part(V{}, n, W::exp(shifted)));
  double s = 0;
  for (std::int64_t k = 0; k < n; ++k) s += static_cast<double>(lanes[k]);
  const T log_s = static_cast<T>(std::log(s));
  W::store_part(y, n, shifted - log_s);
  return true;
#else
  return false;
#endif
}
} // namespace

bool vec_log_softmax_short(const float* x, float* y, std::int64_t n) {
  return log_softmax_short_of(x, y, n);
}
bool vec_log_softmax_short(const double* x, double* y, std::int64_t n) {
  return log_softmax_short_of(x, y, n);
}

void vec_exp_fnmadd(const float* x, const float* g, float s, float* y, std::int64_t n) {
  exp_fnmadd_of(x, g, s, y, n);
}
void vec_exp_fnmadd(const double* x, const double* g, double s, double* y, std::int64_t n) {
  exp_fnmadd_of(x, g, s, y, n);
}

void vec_exp_shifted(const float* x, float shift, float* y, std::int64_t n) {
  exp_shifted_of(x, shift, y, n);
}
void vec_exp_shifted(const double* x, double shift, double* y, std::int64_t n) {
  exp_shifted_of(x, shift, y, n);
}

namespace {
#ifdef GG_SLEEF_VECTORS
/// Σ exp(x[i] − shift) over [0, n), the exponentials also stored into y unless y is null, in one pass: summed
/// in two vectors of the element type as they are made (a block of k_vec_block elements at a time, the
/// blocks' sums added in double), the tail padded with −inf (whose exponential is 0). Float sums within a
/// block, as PyTorch's: converting to double in the loop cost more than a second pass over the block
/// (docs/performance.md, "Third round" and "Fifth round").
template <class S, bool store, class T> double exp_sum_vectors(const T* x, T shift, T* y, std::int64_t n) {
  using V = typename S::V;
  constexpr int w = S::width;
  double s = 0;
  for (std::int64_t lo = 0; lo < n; lo += k_vec_block) {
    const std::int64_t len = std::min(n - lo, k_vec_block);
    V a0{}, a1{};
    std::int64_t i = lo;
    for (; i + 2 * w <= lo + len; i += 2 * w) {
      const V e0 = S::exp(S::load(x + i) - shift), e1 = S::exp(S::load(x + i + w) - shift);
      if constexpr (store) {
        S::store(y + i, e0);
        S::store(y + i + w, e1);
      }
      a0 += e0;
      a1 += e1;
    }
    for (; i < lo + len; i += w) {
      const std::int64_t count = std::min<std::int64_t>(w, lo + len - i);
#ifdef GG_OWN_EXP_512
      if constexpr (PartLanes<S>) { // the other lanes exp(0) = 1, not added: as exp(−inf) = 0 added
        const V e = S::exp(S::load_part(x + i, count, shift) - shift);
        if constexpr (store) S::store_part(y + i, count, e);
        a0 = S::add_part(a0, count, e);
        continue;
      }
#endif
      T pad[w];
      std::fill(pad, pad + w, -std::numeric_limits<T>::infinity());
      const auto bytes = sizeof(T) * static_cast<std::size_t>(count);
      std::memcpy(pad, x + i, bytes);
      const V e = S::exp(S::load(pad) - shift);
      S::store(pad, e);
      if constexpr (store) std::memcpy(y + i, pad, bytes);
      a0 += e;
    }
    T lanes[w];
    S::store(lanes, a0 + a1);
    // A block shorter than a vector leaves +0 in the lanes from len on: adding them changes nothing.
    const std::int64_t used = std::min<std::int64_t>(w, len);
    double block = 0;
    for (std::int64_t k = 0; k < used; ++k) block += static_cast<double>(lanes[k]);
    s += block;
  }
  return s;
}
#endif

/// vec_exp_sum for either element type: in one pass with SLEEF's vectors (or ours), else libm a block at
/// a time.
template <class T> double exp_sum_of(const T* x, T shift, T* y, std::int64_t n) {
#ifdef GG_SLEEF_VECTORS
  using W = Wide<std::conditional_t<std::is_same_v<T, float>, F32, F64>>;
  return y ? exp_sum_vectors<W, true>(x, shift, y, n) : exp_sum_vectors<W, false>(x, shift, y, n);
#else
  T buf[k_vec_block];
  double s = 0;
  for (std::int64_t lo = 0; lo < n; lo += k_vec_block) {
    const std::int64_t len = std::min(n - lo, k_vec_block);
    T* e = y ? y + lo : buf;
    exp_shifted_of(x + lo, shift, e, len);
    for (std::int64_t i = 0; i < len; ++i) s += static_cast<double>(e[i]);
  }
  return s;
#endif
}
} // namespace

double vec_exp_sum(const float* x, float shift, float* y, std::int64_t n) {
  return exp_sum_of(x, shift, y, n);
}
double vec_exp_sum(const double* x, double shift, double* y, std::int64_t n) {
  return exp_sum_of(x, shift, y, n);
}

std::string vec_math_library() {
#ifdef GG_SLEEF_VECTORS
#if defined(GG_OWN_EXP_LOG) && defined(GG_ERF_F64)
  constexpr const char* erf_f32_by = "; exp, log, tanh, erf: gradgraph's (<= 1 ULP)";
#elif defined(GG_ERF_F32)
  constexpr const char* erf_f32_by = "; float erf: gradgraph's polynomials (<= 1 ULP)";
#else
  constexpr const char* erf_f32_by = "";
#endif
#ifdef GG_OWN_EXP_512
  const std::string wide =
      fmt::format("; exp, sigmoid and the softmax family at AVX-512's {} floats", F32Wide::width);
#else
  const std::string wide;
#endif
  return fmt::format("SLEEF {}.{} (u10: <= 1 ULP), {}: {} floats{}{}", SLEEF_VERSION_MAJOR,
                     SLEEF_VERSION_MINOR, k_isa, F32::width, erf_f32_by, wide);
#elif __has_include(<gnu/libc-version.h>)
  return fmt::format("glibc {} libm (scalar)", gnu_get_libc_version());
#else
  return "the C library's libm (scalar)";
#endif
}

} // namespace gg::kernel::detail
