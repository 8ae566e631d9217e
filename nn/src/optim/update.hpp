// Internal to the optimizers: dtype dispatch and the elementwise steps of torch's in-place tensor
// ops, written so each rounds exactly as PyTorch's CPU kernels do (measured: add(alpha) and
// addcmul are fused multiply-adds; addcdiv is a + (v·b)/c; scalars are cast to the dtype first).
#pragma once

#include <cmath>
#include <type_traits>

#include <autodiff/tensor.hpp>

namespace gg::optim::detail {

/// Calls f(T{}) with T = double for float64 tensors, float for float32.
template <class F> void by_dtype(DType dtype, F&& f) {
  if (dtype == f64)
    f(double{});
  else
    f(float{});
}

/// Calls f(std::true_type{}) or f(std::false_type{}): a run-time option becomes a compile-time
/// one, so the update loops have no branches and vectorize.
template <class F> void with_flag(bool flag, F&& f) {
  if (flag)
    f(std::true_type{});
  else
    f(std::false_type{});
}

/// torch: a.add_(b, alpha=s) — one rounding.
template <class T> inline T add_scaled(T a, T s, T b) {
  return std::fma(s, b, a);
}
/// torch: a.addcmul_(b, c, value=s) = a + (s·b)·c with the last multiply-add fused.
template <class T> inline T addcmul(T a, T s, T b, T c) {
  return std::fma(s * b, c, a);
}
/// torch: a.addcdiv_(b, c, value=s) = a + (s·b)/c.
template <class T> inline T addcdiv(T a, T s, T b, T c) {
  return a + (s * b) / c;
}

} // namespace gg::optim::detail
