// The elementwise ops' math, one row per op: its table row (names, display text, formulas), its value
// and its vector-Jacobian product, each written once as a template that serves every path: T =
// double on scalar nodes (the local derivative is vjp with g = 1, inlined into the reverse sweep),
// float and double in the tensor kernels (the forward map and the fused backward loop), T = Var for
// the differentiable rule (create_graph; gradcheck's reference), and for two-input arithmetic T =
// Tensor for backward()'s tensor path. A header because the sweep inlines the scalar rules:
// docs/design.md measured the scalar switch at 27 ns/op against 309 through the generic rules.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <type_traits>

#include <autodiff/ops.hpp>

#include "../kernels/kernels.hpp"
#include "../kernels/loops.hpp"
#include "../kernels/vecmath.hpp"
#include "family.hpp"
#include "losses.hpp"

namespace gg::detail {

/// The numbers a row computes with: float in float32 kernels (a double constant would promote the
/// loop), double for scalar nodes and Vars.
template <class T> using Num = std::conditional_t<std::is_same_v<T, float>, float, double>;

/// A node's constants in T's arithmetic: c (x*c's c, leaky_relu's slope, clamp's lo) and hi (clamp's).
template <class T> struct Consts { Num<T> c{}, hi{}; };

// Tensor arithmetic for the two-input rows' tensor backward (T = Tensor): plain kernels, no graph.
inline Tensor operator*(const Tensor& a, const Tensor& b) {
  return kernel::binary(kernel::Binary::mul, a, b);
}
inline Tensor operator/(const Tensor& a, const Tensor& b) {
  return kernel::binary(kernel::Binary::div, a, b);
}
inline Tensor operator-(const Tensor& a) {
  return kernel::unary(kernel::Unary::neg, a);
}

using kernel::detail::VecFn;

/// f(x) for a number (libm) or a Var (gg's ops): the one-element twin of kernel::detail::vec_math,
/// which the tensor kernels call on whole arrays for the rows that name their function (`vec`).
template <class T> T evaluate(VecFn f, const T& x) {
  using std::exp, std::log, std::tanh, std::erf;
  switch (f) {
  case VecFn::exp: return exp(x);
  case VecFn::log: return log(x);
  case VecFn::tanh: return tanh(x);
  case VecFn::erf: return erf(x);
  }
  return x;
}
template <class T, std::size_t N>
std::array<T, N> evaluate(const std::array<VecFn, N>& f, const std::array<T, N>& x) {
  std::array<T, N> r;
  for (std::size_t i = 0; i < N; ++i) r[i] = evaluate(f[i], x[i]);
  return r;
}

/// f and vjp of a row that names its transcendentals, composed once for every such row: f(a) =
/// post(a, vec(pre(a))), vjp = vjp_post(g, a, out, vjp_vec(vjp_pre(a))). A row defining its own f
/// or vjp hides the composition (erf's value is plain erf; sigmoid's derivative needs none).
template <class Row> struct ByVec {
  template <class T> static T f(T a, Consts<T>) { return Row::post(a, evaluate(Row::vec, Row::pre(a))); }
  template <class T> static T vjp(const T& g, const T& a, const T& out, Consts<T>) {
    return Row::vjp_post(g, a, out, evaluate(Row::vjp_vec, Row::vjp_pre(a)));
  }
};

/// The math of an elementwise op kind: specialised below for each one (empty for other ops). A row
/// whose value is a transcendental function names it (`vec`), and when that function is applied to
/// something other than the input, says so: f(a) = post(a, vec(pre(a))); a row whose derivative
/// needs transcendentals names them too (`vjp_vec`, with vjp_pre and vjp_post). The tensor kernels
/// then run those functions over whole arrays by SLEEF (vecmath.hpp), the rest elementwise.
template <Op op> struct Math {};

/// Defaults of a row of one input: a smooth function, costly per element (a transcendental).
struct OneInput {
  static constexpr int inputs = 1;
  static constexpr int constants = 0; ///< 1: the node's constant c; 2: clamp's lo (c) and hi
  /// The derivative is piecewise constant (relu, abs, ...): vjp is written for numbers, and the Var
  /// rule multiplies g by the constant local slopes (a kink is not differentiated again).
  static constexpr bool piecewise = false;
  static constexpr bool cheap = false; ///< a few cheap instructions per element (threading threshold)
};
/// Defaults of a row of two inputs (broadcasting).
struct TwoInputs {
  static constexpr int inputs = 2;
  static constexpr bool tensor_vjp = true; ///< vjp_a/vjp_b also run on Tensors (backward()'s fast path)
};

// ---------------------------------------------------------------------------------------------
// Arithmetic of two inputs (NumPy broadcasting): f(a, b), and the share of the gradient g each input
// gets, vjp_a and vjp_b (before broadcasting is summed away).

template <> struct Math<Op::add> : TwoInputs {
  static constexpr OpInfo info{"add", "a + b", 2, "1", "1", "a + b, add(a, b)", "a + b (broadcasting)"};
  template <class T> static T f(const T& a, const T& b) { return a + b; }
  template <class T> static T vjp_a(const T& g, const T&, const T&, const T&) { return g; }
  template <class T> static T vjp_b(const T& g, const T&, const T&, const T&) { return g; }
};

template <> struct Math<Op::sub> : TwoInputs {
  static constexpr OpInfo info{"sub", "a − b", 2, "1", "-1", "a - b, sub(a, b)", "a - b (broadcasting)"};
  template <class T> static T f(const T& a, const T& b) { return a - b; }
  template <class T> static T vjp_a(const T& g, const T&, const T&, const T&) { return g; }
  template <class T> static T vjp_b(const T& g, const T&, const T&, const T&) { return -g; }
};

template <> struct Math<Op::mul> : TwoInputs {
  static constexpr OpInfo info{"mul", "a · b", 2, "b", "a", "a * b, mul(a, b)", "a * b (broadcasting)"};
  template <class T> static T f(const T& a, const T& b) { return a * b; }
  template <class T> static T vjp_a(const T& g, const T&, const T& b, const T&) { return g * b; }
  template <class T> static T vjp_b(const T& g, const T& a, const T&, const T&) { return g * a; }
};

template <> struct Math<Op::div> : TwoInputs {
  static constexpr OpInfo info{
      "div", "a / b", 2, "1/b", "-a/b^2", "a / b, div(a, b)", "a / b (broadcasting)"};
  template <class T> static T f(const T& a, const T& b) { return a / b; }
  template <class T> static T vjp_a(const T& g, const T&, const T& b, const T&) { return g / b; }
  template <class T> static T vjp_b(const T& g, const T& a, const T& b, const T&) { return -g * a / (b * b); }
};

template <> struct Math<Op::pow> : TwoInputs {
  static constexpr OpInfo info{
      "pow", "a^b", 2, "b*a^(b-1)", "out*ln(a)", "pow(a, b)", "a ^ b (broadcasting)"};
  static constexpr bool tensor_vjp = false; // tensors take the Var rule
  template <class T> static T f(const T& a, const T& b) {
    using std::pow;
    return pow(a, b);
  }
  // d/da = b a^(b-1), taken as 0 where b = 0 (0 * a^-1 would be NaN at a = 0); d/db = out ln(a), taken
  // as 0 where a = 0 and b >= 0: PyTorch's choices.
  template <class T> static T vjp_a(const T& g, const T& a, const T& b, const T& out) {
    if constexpr (std::is_same_v<T, Var>) {
      const Tensor b0 = kernel::binary(kernel::Binary::eq, b.value(), Tensor::scalar(0));
      return g * where(b0, Var::constant(Tensor::scalar(0, out.dtype())), b * pow(a, b - 1.0));
    } else {
      return b == 0 ? T(0) : g * b * std::pow(a, b - 1);
    }
  }
  template <class T> static T vjp_b(const T& g, const T& a, const T& b, const T& out) {
    if constexpr (std::is_same_v<T, Var>) {
      using kernel::Binary;
      const Tensor a0_b_nonneg =
          kernel::binary(Binary::mul, kernel::binary(Binary::eq, a.value(), Tensor::scalar(0)),
                         kernel::binary(Binary::ge, b.value(), Tensor::scalar(0)));
      return g * where(a0_b_nonneg, Var::constant(Tensor::scalar(0, out.dtype())), out * log(a));
    } else {
      return a == 0 && b >= 0 ? T(0) : g * out * std::log(a);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Functions of one input, some with a number c (x + c, x^c, a slope, clamp's bounds): f(a, k), and
// the share of the gradient g the input gets, vjp(g, a, out, k).

template <> struct Math<Op::neg> : OneInput {
  static constexpr OpInfo info{"neg", "−a", 1, "-1", "", "-a, neg(a)", "-a"};
  static constexpr bool cheap = true;
  template <class T> static T f(T a, Consts<T>) { return -a; }
  template <class T> static T vjp(const T& g, const T&, const T&, Consts<T>) { return -g; }
};

template <> struct Math<Op::add_c> : OneInput {
  static constexpr OpInfo info{"add_c", "a + c", 1, "1", "", "a + c, a - c, c + a", "a + c for a number c"};
  static constexpr int constants = 1;
  static constexpr bool cheap = true;
  template <class T> static T f(T a, Consts<T> k) { return a + k.c; }
  template <class T> static T vjp(const T& g, const T&, const T&, Consts<T>) { return g; }
};

template <> struct Math<Op::mul_c> : OneInput {
  static constexpr OpInfo info{"mul_c", "c·a", 1, "c", "", "a * c, c * a", "a * c for a number c"};
  static constexpr int constants = 1;
  static constexpr bool cheap = true;
  template <class T> static T f(T a, Consts<T> k) { return a * k.c; }
  template <class T> static T vjp(const T& g, const T&, const T&, Consts<T> k) { return g * k.c; }
};

template <> struct Math<Op::div_c> : OneInput {
  static constexpr OpInfo info{"div_c", "a / c", 1, "1/c", "", "a / c", "a / c for a number c"};
  static constexpr int constants = 1;
  static constexpr bool cheap = true;
  template <class T> static T f(T a, Consts<T> k) { return a / k.c; }
  template <class T> static T vjp(const T& g, const T&, const T&, Consts<T> k) { return g / k.c; }
};

template <> struct Math<Op::rsub_c> : OneInput {
  static constexpr OpInfo info{"rsub_c", "c − a", 1, "-1", "", "c - a", "c - a for a number c"};
  static constexpr int constants = 1;
  static constexpr bool cheap = true;
  template <class T> static T f(T a, Consts<T> k) { return k.c - a; }
  template <class T> static T vjp(const T& g, const T&, const T&, Consts<T>) { return -g; }
};

template <> struct Math<Op::rdiv_c> : OneInput {
  static constexpr OpInfo info{"rdiv_c", "c / a", 1, "-c/a^2", "", "c / a", "c / a for a number c"};
  static constexpr int constants = 1;
  static constexpr bool cheap = true;
  template <class T> static T f(T a, Consts<T> k) { return k.c / a; }
  template <class T> static T vjp(const T& g, const T& a, const T&, Consts<T> k) {
    return -g * k.c / (a * a);
  }
};

template <> struct Math<Op::pow_c> : OneInput {
  static constexpr OpInfo info{"pow_c", "a^c", 1, "c*a^(c-1)", "", "pow(a, c)", "a ^ c for a number c"};
  static constexpr int constants = 1;
  template <class T> static T f(T a, Consts<T> k) {
    using std::pow;
    return pow(a, k.c);
  }
  template <class T> static T vjp(const T& g, const T& a, const T&, Consts<T> k) {
    using std::pow;
    return k.c == 0 ? g * 0 : g * k.c * pow(a, k.c - 1); // x^0: 0, also where a^-1 is not finite
  }
};

template <> struct Math<Op::rpow_c> : OneInput {
  static constexpr OpInfo info{"rpow_c", "c^a", 1, "out*ln(c)", "", "pow(c, a)", "c ^ a for a number c"};
  static constexpr int constants = 1;
  template <class T> static T f(T a, Consts<T> k) {
    using std::pow;
    return pow(k.c, a);
  }
  template <class T> static T vjp(const T& g, const T&, const T& out, Consts<T> k) {
    return k.c == 0 ? g * 0 : g * out * std::log(k.c); // 0^a: 0, as PyTorch
  }
};

template <> struct Math<Op::exp> : OneInput {
  static constexpr OpInfo info{"exp", "exp(a)", 1, "out", "", "exp(a)", "e ^ a"};
  static constexpr VecFn vec = VecFn::exp;
  template <class T> static T f(T a, Consts<T>) { return std::exp(a); }
  template <class T> static T vjp(const T& g, const T&, const T& out, Consts<T>) { return g * out; }
};

template <> struct Math<Op::log> : OneInput {
  static constexpr OpInfo info{"log", "log(a)", 1, "1/a", "", "log(a)", "natural logarithm of a"};
  static constexpr VecFn vec = VecFn::log;
  template <class T> static T f(T a, Consts<T>) { return std::log(a); }
  template <class T> static T vjp(const T& g, const T& a, const T&, Consts<T>) { return g / a; }
};

template <> struct Math<Op::sqrt> : OneInput {
  static constexpr OpInfo info{"sqrt", "sqrt(a)", 1, "1/(2*out)", "", "sqrt(a)", "square root of a"};
  static constexpr bool cheap = true;
  template <class T> static T f(T a, Consts<T>) { return std::sqrt(a); }
  template <class T> static T vjp(const T& g, const T&, const T& out, Consts<T>) { return g / (2 * out); }
};

template <> struct Math<Op::abs> : OneInput {
  static constexpr OpInfo info{"abs", "|a|", 1, "sign(a)", "", "abs(a)", "|a|"};
  static constexpr bool piecewise = true, cheap = true;
  template <class T> static T f(T a, Consts<T>) { return std::abs(a); }
  template <class T> static T vjp(T g, T a, T, Consts<T>) { return a > 0 ? g : a < 0 ? -g : T(0); }
};

template <> struct Math<Op::tanh> : OneInput {
  static constexpr OpInfo info{"tanh", "tanh(a)", 1, "1-out^2", "", "tanh(a)", "hyperbolic tangent"};
  static constexpr VecFn vec = VecFn::tanh;
  template <class T> static T f(T a, Consts<T>) { return std::tanh(a); }
  template <class T> static T vjp(const T& g, const T&, const T& out, Consts<T>) {
    return g * (1 - out * out);
  }
};

template <> struct Math<Op::sigmoid> : OneInput, ByVec<Math<Op::sigmoid>> {
  static constexpr OpInfo info{
      "sigmoid", "sigmoid(a)", 1, "out*(1-out)", "", "sigmoid(a)", "1 / (1 + e^-a), computed stably"};
  static constexpr VecFn vec = VecFn::exp;
  static constexpr kernel::detail::VecFused fused = kernel::detail::VecFused::sigmoid;
  template <class T> static T pre(T a) { return -std::abs(a); } // e = exp(-|a|) in (0, 1]: never overflows
  template <class T> static T post(T a, T e) {
    const T num = a >= 0 ? T(1) : e; // a select of values, no arithmetic in it: vectorised
    return num / (1 + e);
  }
  template <class T> static T vjp(const T& g, const T&, const T& out, Consts<T>) {
    return g * out * (1 - out);
  }
};

template <> struct Math<Op::relu> : OneInput {
  static constexpr OpInfo info{"relu", "relu(a)", 1, "(a>0 ? 1 : 0)", "", "relu(a)", "max(a, 0)"};
  static constexpr bool piecewise = true, cheap = true;
  template <class T> static T f(T a, Consts<T>) { return a > 0 ? a : T(0); }
  template <class T> static T vjp(T g, T a, T, Consts<T>) { return a > 0 ? g : T(0); }
};

template <> struct Math<Op::leaky_relu> : OneInput {
  static constexpr OpInfo info{"leaky_relu",       "leaky_relu(a, c)",   1, "(a>0 ? 1 : c)", "",
                               "leaky_relu(a, c)", "a if a > 0 else c*a"};
  static constexpr int constants = 1;
  static constexpr bool piecewise = true, cheap = true;
  template <class T> static T f(T a, Consts<T> k) { return a > 0 ? a : a * k.c; }
  template <class T> static T vjp(T g, T a, T, Consts<T> k) { return a > 0 ? g : g * k.c; }
};

template <> struct Math<Op::sin> : OneInput {
  static constexpr OpInfo info{"sin", "sin(a)", 1, "cos(a)", "", "sin(a)", "sine"};
  template <class T> static T f(T a, Consts<T>) { return std::sin(a); }
  template <class T> static T vjp(const T& g, const T& a, const T&, Consts<T>) {
    using std::cos;
    return g * cos(a);
  }
};

template <> struct Math<Op::cos> : OneInput {
  static constexpr OpInfo info{"cos", "cos(a)", 1, "-sin(a)", "", "cos(a)", "cosine"};
  template <class T> static T f(T a, Consts<T>) { return std::cos(a); }
  template <class T> static T vjp(const T& g, const T& a, const T&, Consts<T>) {
    using std::sin;
    return -g * sin(a);
  }
};

template <> struct Math<Op::clamp> : OneInput {
  static constexpr OpInfo info{
      "clamp", "clamp(a, lo, hi)", 1, "(lo<=a<=hi ? 1 : 0)", "", "clamp(a, lo, hi)", "min(max(a, lo), hi)"};
  static constexpr int constants = 2;
  static constexpr bool piecewise = true, cheap = true;
  template <class T> static T f(T a, Consts<T> k) { return a < k.c ? k.c : a > k.hi ? k.hi : a; }
  // The gradient passes at the bounds, as in PyTorch.
  template <class T> static T vjp(T g, T a, T, Consts<T> k) { return a >= k.c && a <= k.hi ? g : T(0); }
};

template <> struct Math<Op::erf> : OneInput, ByVec<Math<Op::erf>> {
  static constexpr OpInfo info{"erf",
                               "erf(a)",
                               1,
                               "2/sqrt(pi)*exp(-a^2)",
                               "",
                               "erf(a)",
                               "the error function, 2/sqrt(pi) times the integral of exp(-t^2) from 0 to a"};
  static constexpr VecFn vec = VecFn::erf;
  template <class T> static T f(T a, Consts<T>) { return std::erf(a); }
  static constexpr std::array vjp_vec{VecFn::exp};
  template <class T> static std::array<T, 1> vjp_pre(const T& a) { return {-(a * a)}; }
  template <class T> static T vjp_post(const T& g, const T&, const T&, const std::array<T, 1>& e) {
    return g * (Num<T>(2 * std::numbers::inv_sqrtpi) * e[0]);
  }
};

/// GELU as PyTorch computes it, a·Φ(a) with Φ the standard normal distribution function.
template <> struct Math<Op::gelu> : OneInput, ByVec<Math<Op::gelu>> {
  static constexpr OpInfo info{"gelu",
                               "gelu(a)",
                               1,
                               "Phi(a) + a*exp(-a^2/2)/sqrt(2*pi)",
                               "",
                               "gelu(a)",
                               "a*Phi(a), Phi(a) = (1 + erf(a/sqrt(2)))/2 the normal distribution function"};
  static constexpr double k_inv_sqrt2 = std::numbers::sqrt2 / 2,
                          k_inv_sqrt_2pi = std::numbers::inv_sqrtpi / std::numbers::sqrt2;
  static constexpr VecFn vec = VecFn::erf;
  static constexpr kernel::detail::VecFused fused = kernel::detail::VecFused::gelu,
                                            fused_vjp = kernel::detail::VecFused::gelu_grad;
  template <class T> static T pre(T a) { return a * Num<T>(k_inv_sqrt2); }
  template <class T> static T post(T a, T e) { return Num<T>(0.5) * a * (1 + e); }
  // Phi(a) + a phi(a): erf(a/sqrt(2)) and exp(-a^2/2).
  static constexpr std::array vjp_vec{VecFn::erf, VecFn::exp};
  template <class T> static std::array<T, 2> vjp_pre(const T& a) {
    return {a * Num<T>(k_inv_sqrt2), Num<T>(-0.5) * (a * a)};
  }
  template <class T> static T vjp_post(const T& g, const T& a, const T&, const std::array<T, 2>& v) {
    return g * (Num<T>(0.5) * (1 + v[0]) + a * (Num<T>(k_inv_sqrt_2pi) * v[1]));
  }
};

/// GELU's tanh approximation, PyTorch's gelu(a, approximate="tanh"): a/2·(1 + tanh(u)) with
/// u = sqrt(2/pi)·(a + 0.044715·a³).
template <> struct Math<Op::gelu_tanh> : OneInput, ByVec<Math<Op::gelu_tanh>> {
  static constexpr OpInfo info{
      "gelu_tanh",
      "gelu_tanh(a)",
      1,
      "(1+t)/2 + a*(1-t^2)*sqrt(2/pi)*(1+3*0.044715*a^2)/2, t = tanh(sqrt(2/pi)*(a+0.044715*a^3))",
      "",
      "gelu(a, \"tanh\")",
      "a*(1 + tanh(sqrt(2/pi)*(a + 0.044715*a^3)))/2"};
  static constexpr double k_beta = kernel::detail::k_gelu_beta, k_kappa = kernel::detail::k_gelu_kappa;
  static constexpr kernel::detail::VecFused fused = kernel::detail::VecFused::gelu_tanh,
                                            fused_vjp = kernel::detail::VecFused::gelu_tanh_grad;
  static constexpr VecFn vec = VecFn::tanh;
  template <class T> static T pre(T a) { return Num<T>(k_beta) * (a + Num<T>(k_kappa) * a * a * a); }
  template <class T> static T post(T a, T t) { return Num<T>(0.5) * a * (1 + t); }
  static constexpr std::array vjp_vec{VecFn::tanh};
  template <class T> static std::array<T, 1> vjp_pre(const T& a) {
    return {Num<T>(k_beta) * (a + Num<T>(k_kappa) * (a * a) * a)};
  }
  template <class T> static T vjp_post(const T& g, const T& a, const T&, const std::array<T, 1>& v) {
    const T& t = v[0];
    const T du = Num<T>(k_beta) * (1 + Num<T>(3 * k_kappa) * (a * a));
    return g * (Num<T>(0.5) * (1 + t) + Num<T>(0.5) * a * (1 - t * t) * du);
  }
};

// ---------------------------------------------------------------------------------------------
// Parity with PyTorch (issue 13).

/// The elementwise binary cross-entropy of probabilities a and targets b as PyTorch computes it, each
/// log at least -100, with PyTorch's gradient (a - b) / max(a (1 - a), eps), eps = 1e-12 rounded to
/// float as PyTorch's: finite at a = 0 and 1, where the clamped logs' own derivative is not.
template <> struct Math<Op::binary_cross_entropy> : TwoInputs {
  static constexpr OpInfo info{"binary_cross_entropy",
                               "bce(a, b)",
                               2,
                               "(a-b)/max(a*(1-a), 1e-12)",
                               "max(log(1-a), -100) - max(log(a), -100)",
                               "binary_cross_entropy(p, y)",
                               "-(b*log(a) + (1-b)*log(1-a)), each log at least -100"};
  static constexpr bool tensor_vjp = false; // tensors take the Var rule
  static constexpr double k_eps = static_cast<double>(1e-12f);
  template <class T> static T f(const T& a, const T& b) {
    const T lo = -100;
    return (b - 1) * std::max(T(std::log(1 - a)), lo) - b * std::max(T(std::log(a)), lo);
  }
  template <class T> static T vjp_a(const T& g, const T& a, const T& b, const T&) {
    if constexpr (std::is_same_v<T, Var>)
      return g * (a - b) / clamp(a * (1.0 - a), k_eps, INFINITY);
    else
      return g * (a - b) / std::max(a * (1 - a), T(k_eps));
  }
  template <class T> static T vjp_b(const T& g, const T& a, const T&, const T&) {
    if constexpr (std::is_same_v<T, Var>)
      return g * (clamp(log(1.0 - a), -100, INFINITY) - clamp(log(a), -100, INFINITY));
    else
      return g * (std::max(T(std::log(1 - a)), T(-100)) - std::max(T(std::log(a)), T(-100)));
  }
};

/// maximum's and minimum's split of the gradient: 1 where a wins against b (a > b for wins = gt, a < b
/// for lt), 1/2 at a tie, 0 where it loses, as PyTorch. A constant for T = Var (in g's dtype).
template <class T> T tie_split(const T& g, const T& a, const T& b, kernel::Binary wins) {
  if constexpr (std::is_same_v<T, Var>) {
    using kernel::Binary;
    const Tensor av = a.value(), bv = b.value();
    const Tensor half_ties = kernel::binary_scalar(Binary::mul, kernel::binary(Binary::eq, av, bv), 0.5);
    return Var::constant(kernel::binary(Binary::add, kernel::binary(wins, av, bv), half_ties).to(g.dtype()));
  } else {
    const bool win = wins == kernel::Binary::gt ? a > b : a < b;
    return win ? T(1) : a == b ? T(0.5) : T(0);
  }
}

/// maximum (wins = gt) and minimum (lt): a where it wins or ties or is NaN, else b; each input's
/// share of the gradient from tie_split.
template <kernel::Binary wins> struct Extremum : TwoInputs {
  static constexpr bool tensor_vjp = false; // tensors take the Var rule
  template <class T> static T f(const T& a, const T& b) {
    return (a != a || a == b || (wins == kernel::Binary::gt ? a > b : a < b)) ? a : b;
  }
  template <class T> static T vjp_a(const T& g, const T& a, const T& b, const T&) {
    return g * tie_split(g, a, b, wins);
  }
  template <class T> static T vjp_b(const T& g, const T& a, const T& b, const T&) {
    return g * tie_split(g, b, a, wins);
  }
};

/// The larger of a and b (a NaN wins), as torch.maximum; at a tie each gets half the gradient.
template <> struct Math<Op::maximum> : Extremum<kernel::Binary::gt> {
  static constexpr OpInfo info{"maximum",
                               "maximum(a, b)",
                               2,
                               "(a>b ? 1 : a==b ? 1/2 : 0)",
                               "(b>a ? 1 : a==b ? 1/2 : 0)",
                               "maximum(a, b)",
                               "the larger of a and b (broadcasting); ties split the gradient"};
};

/// The smaller of a and b (a NaN wins), as torch.minimum; at a tie each gets half the gradient.
template <> struct Math<Op::minimum> : Extremum<kernel::Binary::lt> {
  static constexpr OpInfo info{"minimum",
                               "minimum(a, b)",
                               2,
                               "(a<b ? 1 : a==b ? 1/2 : 0)",
                               "(b<a ? 1 : a==b ? 1/2 : 0)",
                               "minimum(a, b)",
                               "the smaller of a and b (broadcasting); ties split the gradient"};
};

/// log(1 + exp(c a)) / c, as torch.nn.functional.softplus(a, beta = c, threshold = hi): a itself
/// where c a > hi, and there a gradient of 1.
template <> struct Math<Op::softplus> : OneInput {
  static constexpr OpInfo info{"softplus",
                               "softplus(a, c, hi)",
                               1,
                               "(c*a > hi ? 1 : sigmoid(c*a))",
                               "",
                               "softplus(a, beta, threshold)",
                               "log(1 + exp(beta*a))/beta; a where beta*a > threshold"};
  static constexpr int constants = 2;
  template <class T> static T f(T a, Consts<T> k) {
    const T z = a * k.c;
    return z > k.hi ? a : T(std::log1p(std::exp(z))) / k.c;
  }
  template <class T> static T vjp(const T& g, const T& a, const T&, Consts<T> k) {
    if constexpr (std::is_same_v<T, Var>) {
      using kernel::Binary;
      const Tensor over =
          kernel::binary_scalar(Binary::gt, kernel::binary_scalar(Binary::mul, a.value(), k.c), k.hi);
      return where(over, g, g * sigmoid(a * k.c));
    } else {
      const T z = std::exp(a * k.c);
      return a * k.c > k.hi ? g : g * z / (z + 1);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// The generic parts: everything below serves every row.

/// Whether op has a row here.
template <Op op> constexpr bool is_elementwise = requires {
  Math<op>::inputs;
};

/// A node's constants (op of n has a row with M::constants of them).
template <class T, class M> Consts<T> consts_of(const Node* n) {
  Consts<T> k;
  if constexpr (M::constants >= 1) k.c = static_cast<Num<T>>(n->constant());
  if constexpr (M::constants == 2) k.hi = static_cast<Num<T>>(n->ext->reals[0]);
  return k;
}

/// The local derivatives d(node)/d(input 0, 1) of a scalar node of kind op: the row's vjp with
/// g = 1 (sum, mean and max of a scalar pass it through: 1; mse_loss's from its family, losses.hpp).
template <Op op> [[gnu::always_inline]] inline void scalar_local(const Node* n, double d[2]) {
  if constexpr (op == Op::mse_loss) {
    mse_loss_local(n->first->value, n->second_->value, d);
  } else if constexpr (!is_elementwise<op>) {
    d[0] = 1, d[1] = 0;
  } else if constexpr (Math<op>::inputs == 2) {
    const double a = n->first->value, b = n->second_->value, out = n->value;
    d[0] = Math<op>::vjp_a(1.0, a, b, out), d[1] = Math<op>::vjp_b(1.0, a, b, out);
  } else {
    d[0] = Math<op>::vjp(1.0, n->first->value, n->value, consts_of<double, Math<op>>(n)), d[1] = 0;
  }
}

/// The chain rule's local factors of a scalar node, whatever its kind (a switch generated from the
/// op list; inlined into the reverse sweep).
[[gnu::always_inline]] inline void scalar_derivatives(const Node* n, double d[2]) {
  switch (n->op) {
#define GG_SCALAR_CASE(name)                                                                                 \
  case Op::name: return scalar_local<Op::name>(n, d);
    GG_OP_LIST(GG_SCALAR_CASE)
#undef GG_SCALAR_CASE
  case Op::count_: break;
  }
  d[0] = d[1] = 0;
}

// The rows mapped over tensors, in the tensor's element type.

/// Rows whose value or derivative is computed by vec_math over arrays (see Math).
template <class M>
concept VecValue = requires {
  M::vec;
};
template <class M>
concept VecValueAround = requires(float a) {
  M::pre(a), M::post(a, a);
};
template <class M>
concept VecVjp = requires {
  M::vjp_vec;
};

/// Rows whose value or derivative vec_fused computes in one pass (the scalar formulas stay the rows').
template <class M>
concept FusedValue = requires {
  M::fused;
};
template <class M>
concept FusedVjp = requires {
  M::fused_vjp;
};

/// y = f(x) of n elements of a VecValue row: vec_math, with the row's pre and post around it.
template <class M, class T> void vec_value(const T* x, T* y, kernel::detail::Index n) {
  using kernel::detail::vec_math;
  if constexpr (!VecValueAround<M>) {
    vec_math(M::vec, x, y, n);
  } else {
    T buf[kernel::detail::k_vec_block];
    for (kernel::detail::Index lo = 0; lo < n; lo += kernel::detail::k_vec_block) {
      const kernel::detail::Index len = std::min(n - lo, kernel::detail::k_vec_block);
      for (kernel::detail::Index i = 0; i < len; ++i) buf[i] = M::pre(x[lo + i]);
      vec_math(M::vec, buf, buf, len);
      for (kernel::detail::Index i = 0; i < len; ++i) y[lo + i] = M::post(x[lo + i], buf[i]);
    }
  }
}

/// r = vjp(g, x, out) of n elements of a VecVjp row: the transcendentals by vec_math, in blocks.
template <class M, class T>
void vec_vjp(const T* g, const T* x, const T* out, T* r, kernel::detail::Index n) {
  using kernel::detail::Index, kernel::detail::k_vec_block;
  constexpr std::size_t k = M::vjp_vec.size();
  T buf[k][k_vec_block];
  for (Index lo = 0; lo < n; lo += k_vec_block) {
    const Index len = std::min(n - lo, k_vec_block);
    for (Index i = 0; i < len; ++i) {
      const std::array<T, k> p = M::vjp_pre(x[lo + i]);
      for (std::size_t j = 0; j < k; ++j) buf[j][i] = p[j];
    }
    for (std::size_t j = 0; j < k; ++j) kernel::detail::vec_math(M::vjp_vec[j], buf[j], buf[j], len);
    for (Index i = 0; i < len; ++i) {
      std::array<T, k> v;
      for (std::size_t j = 0; j < k; ++j) v[j] = buf[j][i];
      r[lo + i] = M::vjp_post(g[lo + i], x[lo + i], out[lo + i], v);
    }
  }
}

/// r = g·f'(x) of n elements of a FusedVjp row, in one pass.
template <class M, class T> void fused_vjp(const T* g, const T* x, T* r, kernel::detail::Index n) {
  kernel::detail::vec_fused_times(M::fused_vjp, g, x, r, n);
}

/// f of every element of x.
template <class M> Tensor map_value(const Tensor& x, Consts<double> k) {
  kernel::detail::require_defined(x, M::info.name);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  kernel::detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    if constexpr (FusedValue<M>) {
      kernel::detail::parallel_range(
          x.numel(),
          [&](kernel::detail::Index lo, kernel::detail::Index hi) {
            kernel::detail::vec_fused(M::fused, xp + lo, op + lo, hi - lo);
          },
          kernel::detail::k_transcendental_cost);
    } else if constexpr (VecValue<M>) {
      kernel::detail::parallel_range(
          x.numel(),
          [&](kernel::detail::Index lo, kernel::detail::Index hi) {
            vec_value<M>(xp + lo, op + lo, hi - lo);
          },
          kernel::detail::k_transcendental_cost);
    } else {
      const Consts<T> kt{static_cast<T>(k.c), static_cast<T>(k.hi)};
      kernel::detail::map_unary(
          xp, op, x.numel(), [kt](T a) { return M::f(a, kt); },
          M::cheap ? 1 : kernel::detail::k_transcendental_cost);
    }
  });
  return out;
}

/// f of every pair of elements of a and b broadcast together (in their result dtype).
template <class M> Tensor map_value2(const Tensor& a, const Tensor& b) {
  kernel::detail::Broadcast x = kernel::detail::broadcast_operands(a, b, M::info.name);
  kernel::detail::dispatch(x.out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    kernel::detail::map_binary<T>(x.a, x.b, x.out, [](T p, T q) { return M::f(p, q); });
  });
  return x.out;
}

/// vjp of every element: the gradient for x given g, x and out = f(x), fused in one loop (g and out
/// converted to x's dtype).
template <class M> Tensor map_vjp(const Tensor& g, const Tensor& x, const Tensor& out, Consts<double> k) {
  const Tensor pg = g.to(x.dtype()), po = out.to(x.dtype());
  Tensor r = Tensor::empty(x.shape(), x.dtype());
  kernel::detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Consts<T> kt{static_cast<T>(k.c), static_cast<T>(k.hi)};
    const T *gp = pg.data<T>(), *xp = x.data<T>(), *op = po.data<T>();
    T* rp = r.data<T>();
    kernel::detail::parallel_range(x.numel(), [&](std::int64_t lo, std::int64_t hi) {
      if constexpr (FusedVjp<M>)
        fused_vjp<M>(gp + lo, xp + lo, rp + lo, hi - lo);
      else if constexpr (VecVjp<M>)
        vec_vjp<M>(gp + lo, xp + lo, op + lo, rp + lo, hi - lo);
      else
        for (std::int64_t i = lo; i < hi; ++i) rp[i] = M::vjp(gp[i], xp[i], op[i], kt);
    });
  });
  return r;
}

// The rule of every elementwise op, generic over the rows: the differentiable VJP (T = Var), and the
// fast tensor backward (the fused loop of map_vjp; T = Tensor for two inputs).

template <Op op> std::vector<Var> binary_vjp(Node* n, const Var& g) {
  const Var a = ref(n->first), b = ref(n->in1()), out = ref(n);
  return {sum_to(Math<op>::vjp_a(g, a, b, out), a.shape()), sum_to(Math<op>::vjp_b(g, a, b, out), b.shape())};
}

template <Op op> bool binary_vjp_values(Node* n, const Tensor& g, InputGrads& out) {
  if constexpr (!Math<op>::tensor_vjp) {
    return false;
  } else {
    Tensor keep_a, keep_b; // references, not copies (each copy an atomic count up and down)
    const Tensor &a = value_ref(n->first, keep_a), &b = value_ref(n->in1(), keep_b), &o = n->ext->value;
    if (n->first->requires_grad()) out[0] = reduce_to(Math<op>::vjp_a(g, a, b, o), a.shape());
    if (n->in1()->requires_grad()) out[1] = reduce_to(Math<op>::vjp_b(g, a, b, o), b.shape());
    return true;
  }
}

template <Op op> const OpRule& binary_rule() {
  static constexpr OpRule r{Math<op>::info, &binary_vjp<op>, &binary_vjp_values<op>};
  return r;
}

template <Op op> std::vector<Var> unary_vjp(Node* n, const Var& g) {
  using M = Math<op>;
  const Consts<double> k = consts_of<double, M>(n);
  if constexpr (M::piecewise) { // g times the local slopes, a constant
    const Node* x = n->first;
    if (!x->is_tensor()) return {g * Var::constant(M::vjp(1.0, x->value, n->value, k))};
    const Tensor& t = x->ext->value;
    return {g * Var::constant(map_vjp<M>(Tensor::ones(t.shape(), t.dtype()), t, n->ext->value, k))};
  } else {
    return {M::vjp(g, ref(n->first), ref(n), Consts<Var>{k.c, k.hi})};
  }
}

template <Op op> bool unary_vjp_values(Node* n, const Tensor& g, InputGrads& out) {
  if constexpr (op == Op::add_c) // passes g on as it is
    out[0] = g;
  else
    out[0] = map_vjp<Math<op>>(g, n->first->ext->value, n->ext->value, consts_of<double, Math<op>>(n));
  return true;
}

template <Op op> const OpRule& unary_rule() {
  static constexpr OpRule r{Math<op>::info, &unary_vjp<op>, &unary_vjp_values<op>};
  return r;
}

/// The rule of an elementwise op, from its row: op.cpp's table takes it from here, so an elementwise
/// op needs no rule<op>() of its own.
template <Op op> const OpRule& elementwise_rule() {
  if constexpr (Math<op>::inputs == 2)
    return binary_rule<op>();
  else
    return unary_rule<op>();
}

} // namespace gg::detail
