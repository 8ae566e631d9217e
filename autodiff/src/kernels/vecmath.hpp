// Vector math: exp, log, tanh and erf of whole arrays through SLEEF's vectorised functions (at most
// 1.0 ULP from the exact result, denormals, infinities and NaN as libm), at the widest SIMD width
// this build was compiled for; the C library's scalar functions when SLEEF is absent (a build
// without it, the WebAssembly engine). docs/performance.md has the measurements behind the choice.
#pragma once

#include <cstdint>
#include <string>

namespace gg::kernel::detail {

/// The functions vec_math computes.
enum class VecFn { exp, log, tanh, erf };

/// y[i] = f(x[i]) for i in [0, n); x and y may be the same array.
void vec_math(VecFn f, const float* x, float* y, std::int64_t n);
void vec_math(VecFn f, const double* x, double* y, std::int64_t n);

/// y[i] = exp(x[i] - shift) for i in [0, n), the shift subtracted in the same pass (the softmax
/// family's exponentials); x and y may be the same array.
void vec_exp_shifted(const float* x, float shift, float* y, std::int64_t n);
void vec_exp_shifted(const double* x, double shift, double* y, std::int64_t n);

/// The largest of p[0, n) (n >= 1), NaN when any is NaN; which zero when +0 and -0 tie is unspecified.
float vec_max(const float* p, std::int64_t n);
double vec_max(const double* p, std::int64_t n);

/// Which library and width vec_math uses, for benchmark headers ("SLEEF 3.5 u10, AVX2: 8 floats").
std::string vec_math_library();

/// Elements processed per block by the kernels that combine vec_math with their own arithmetic
/// (a few KB on the stack, in L1).
inline constexpr std::int64_t k_vec_block = 512;

} // namespace gg::kernel::detail
