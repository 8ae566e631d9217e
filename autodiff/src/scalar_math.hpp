// Forward formulas of the scalar fast path (float64 nodes without a tensor): one switch per op
// family, matching the tensor kernels' definitions.
#pragma once

#include <cmath>

#include <autodiff/op.hpp>

namespace gg::detail {

inline double stable_sigmoid(double x) {
  if (x >= 0) return 1 / (1 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1 + e);
}

inline double scalar_binary(Op op, double a, double b) {
  switch (op) {
  case Op::add: return a + b;
  case Op::sub: return a - b;
  case Op::mul: return a * b;
  case Op::div: return a / b;
  default: return std::pow(a, b);
  }
}

/// x op c for the constant-operand ops.
inline double scalar_const(Op op, double x, double c) {
  switch (op) {
  case Op::add_c: return x + c;
  case Op::mul_c: return x * c;
  case Op::div_c: return x / c;
  case Op::rsub_c: return c - x;
  case Op::rdiv_c: return c / x;
  case Op::pow_c: return std::pow(x, c);
  default: return std::pow(c, x); // rpow_c
  }
}

/// f(x) for the unary ops; c is leaky_relu's slope.
inline double scalar_unary(Op op, double x, double c) {
  switch (op) {
  case Op::neg: return -x;
  case Op::exp: return std::exp(x);
  case Op::log: return std::log(x);
  case Op::sqrt: return std::sqrt(x);
  case Op::abs: return std::fabs(x);
  case Op::tanh: return std::tanh(x);
  case Op::sigmoid: return stable_sigmoid(x);
  case Op::relu: return x > 0 ? x : 0.0;
  case Op::leaky_relu: return x > 0 ? x : c * x;
  case Op::sin: return std::sin(x);
  case Op::cos: return std::cos(x);
  default: return x;
  }
}

} // namespace gg::detail
