// Vector math: exp, log, tanh and erf of whole arrays (at most 1.0 ULP from the exact result,
// denormals, infinities and NaN as libm) at the widest SIMD width this build was compiled for: on AVX2
// by gradgraph's own functions (on AVX-512 too, exp at the full width), else by SLEEF's; the C library's
// scalar functions when SLEEF is absent (a build without it, the WebAssembly engine). docs/performance.md has
// the measurements behind it.
#pragma once

#include <cstdint>
#include <numbers>
#include <string>

namespace gg::kernel::detail {

/// The functions vec_math computes.
enum class VecFn { exp, log, tanh, erf };

/// y[i] = f(x[i]) for i in [0, n); x and y may be the same array.
void vec_math(VecFn f, const float* x, float* y, std::int64_t n);
void vec_math(VecFn f, const double* x, double* y, std::int64_t n);

/// Elementwise functions made of vec_math's and arithmetic, computed in one pass (no buffer between
/// the transcendental and the arithmetic): sigmoid(x) by its stable form (exp(−|x|), a select and a
/// division), GELU x·Φ(x), GELU's derivative Φ(x) + x·φ(x), GELU's tanh form and its derivative, with
/// the same operations in the same order as the elementwise rows' scalar formulas.
enum class VecFused { sigmoid, gelu, gelu_grad, gelu_tanh, gelu_tanh_grad };

/// y[i] = f(x[i]) for i in [0, n); x and y may be the same array.
void vec_fused(VecFused f, const float* x, float* y, std::int64_t n);
void vec_fused(VecFused f, const double* x, double* y, std::int64_t n);
/// y[i] = g[i]·f(x[i]) in the same pass (a derivative row times the incoming gradient), or f(x[i]) when
/// g is null; x, g and y may be the same array.
void vec_fused_times(VecFused f, const float* g, const float* x, float* y, std::int64_t n);
void vec_fused_times(VecFused f, const double* g, const double* x, double* y, std::int64_t n);

/// GELU's tanh form: gelu(a) = a/2·(1 + tanh(β·(a + κ·a³))), β = √(2/π), κ = 0.044715 (PyTorch's).
inline constexpr double k_gelu_beta = std::numbers::sqrt2 * std::numbers::inv_sqrtpi, k_gelu_kappa = 0.044715;

/// y[i] = exp(x[i] - shift) for i in [0, n), the shift subtracted in the same pass (the softmax
/// family's exponentials); x and y may be the same array.
void vec_exp_shifted(const float* x, float shift, float* y, std::int64_t n);
void vec_exp_shifted(const double* x, double shift, double* y, std::int64_t n);

/// The sum of exp(x[i] - shift) over [0, n) in double; the exponentials are also stored into y unless
/// y is null (the softmax family's sums): summed as they are made, in one pass (in the element type
/// within blocks of k_vec_block, the blocks' sums in double).
double vec_exp_sum(const float* x, float shift, float* y, std::int64_t n);
double vec_exp_sum(const double* x, double shift, double* y, std::int64_t n);

/// log_softmax of one contiguous row of n elements into y, when the build can take it whole in one
/// vector (AVX-512: n <= 16 floats, 8 doubles) and its maximum is finite and not zero: the same
/// numbers as the maximum, vec_exp_sum and (x − max) − log(sum) (the sum's lanes in order in double).
/// False, with y untouched, otherwise.
bool vec_log_softmax_short(const float* x, float* y, std::int64_t n);
bool vec_log_softmax_short(const double* x, double* y, std::int64_t n);

/// y[i] = g[i] − exp(x[i])·s for i in [0, n), the multiply and subtract as one fused multiply-add
/// where the build has FMA (log_softmax's backward, g − exp(out)·Σg); y may be x or g.
void vec_exp_fnmadd(const float* x, const float* g, float s, float* y, std::int64_t n);
void vec_exp_fnmadd(const double* x, const double* g, double s, double* y, std::int64_t n);

/// The largest of p[0, n) (n >= 1), NaN when any is NaN; which zero when +0 and -0 tie is unspecified.
float vec_max(const float* p, std::int64_t n);
double vec_max(const double* p, std::int64_t n);

/// Which library and widths vec_math uses, for benchmark headers ("SLEEF 3.5 (u10: <= 1 ULP), AVX2: 8
/// floats; ...", and on AVX-512 builds the exp-bound loops' "AVX-512's 16 floats").
std::string vec_math_library();

/// Elements processed per block by the kernels that combine vec_math with their own arithmetic
/// (a few KB on the stack, in L1).
inline constexpr std::int64_t k_vec_block = 512;

} // namespace gg::kernel::detail
