// The elementwise family's public functions, recording each op generically over the rows of
// elementwise.hpp, where each op's math (value, derivative, formula) is written once. Scalar nodes
// take a path of their own, inlined into each public function: the op kind is a template argument,
// so recording one compiles to straight-line code; the tensor paths are separate functions.
#include <autodiff/ops.hpp>

#include "elementwise.hpp"

namespace gg {
namespace detail {
namespace {

/// Records op of two inputs on tensors (a 0-d tensor counts): the row's f mapped with broadcasting.
template <Op op> [[gnu::noinline]] Var record_binary_tensor(Node* x, Node* y) {
  Tensor keep_x, keep_y;
  return emit(op, x, y, map_value2<Math<op>>(value_ref(x, keep_x), value_ref(y, keep_y))).var;
}

/// Records op of two inputs: one number for two scalar nodes, else a tensor.
template <Op op> [[gnu::always_inline]] inline Var record_binary(const Var& a, const Var& b) {
  Node* x = need(a, op);
  Node* y = need(b, op);
  if (!x->is_tensor() && !y->is_tensor()) [[likely]]
    return emit_scalar(op, x, y, Math<op>::f(x->value, y->value));
  return record_binary_tensor<op>(x, y);
}

/// Stores the constants of a recorded node of kind op.
template <Op op> void set_consts(Node* n, Consts<double> k) {
  if constexpr (Math<op>::constants >= 1) n->set_constant(k.c);
  if constexpr (Math<op>::constants == 2) ext_of(n).reals = {k.hi};
}

template <Op op> [[gnu::noinline]] Var record_unary_tensor(Node* x, Consts<double> k) {
  auto e = emit(op, x, nullptr, map_value<Math<op>>(x->ext->value, k));
  if (e.n) set_consts<op>(e.n, k);
  return e.var;
}

/// Records op of one input (with its constants k): one number for a scalar node, else a tensor.
template <Op op> [[gnu::always_inline]] inline Var record_unary(const Var& a, Consts<double> k = {}) {
  Node* x = need(a, op);
  if (!x->is_tensor()) [[likely]] {
    Var v = emit_scalar(op, x, nullptr, Math<op>::f(x->value, k), k.c);
    if constexpr (Math<op>::constants == 2)
      if (v.node()->op == op) set_consts<op>(v.node(), k); // recorded, not a constant
    return v;
  }
  return record_unary_tensor<op>(x, k);
}

} // namespace

} // namespace detail

using detail::need;
using detail::record_binary;
using detail::record_unary;

// Each op: its public function(s); its math and rule are its row, Math<op> in elementwise.hpp.

Var add(const Var& a, const Var& b) {
  return record_binary<Op::add>(a, b);
}
Var sub(const Var& a, const Var& b) {
  return record_binary<Op::sub>(a, b);
}
Var mul(const Var& a, const Var& b) {
  return record_binary<Op::mul>(a, b);
}
Var div(const Var& a, const Var& b) {
  return record_binary<Op::div>(a, b);
}
Var pow(const Var& x, const Var& y) {
  return record_binary<Op::pow>(x, y);
}
Var pow(const Var& x, double p) {
  return record_unary<Op::pow_c>(x, {p});
}
Var pow(double b, const Var& x) {
  return record_unary<Op::rpow_c>(x, {b});
}
Var neg(const Var& x) {
  return record_unary<Op::neg>(x);
}

Var operator+(const Var& a, const Var& b) {
  return add(a, b);
}
Var operator-(const Var& a, const Var& b) {
  return sub(a, b);
}
Var operator*(const Var& a, const Var& b) {
  return mul(a, b);
}
Var operator/(const Var& a, const Var& b) {
  return div(a, b);
}
Var operator-(const Var& x) {
  return neg(x);
}
Var operator+(const Var& a, double b) {
  return record_unary<Op::add_c>(a, {b});
}
Var operator+(double a, const Var& b) {
  return record_unary<Op::add_c>(b, {a});
}
Var operator-(const Var& a, double b) {
  return record_unary<Op::add_c>(a, {-b});
}
Var operator-(double a, const Var& b) {
  return record_unary<Op::rsub_c>(b, {a});
}
Var operator*(const Var& a, double b) {
  return record_unary<Op::mul_c>(a, {b});
}
Var operator*(double a, const Var& b) {
  return record_unary<Op::mul_c>(b, {a});
}
Var operator/(const Var& a, double b) {
  return record_unary<Op::div_c>(a, {b});
}
Var operator/(double a, const Var& b) {
  return record_unary<Op::rdiv_c>(b, {a});
}
Var& operator+=(Var& a, const Var& b) {
  return a = add(a, b);
}
Var& operator-=(Var& a, const Var& b) {
  return a = sub(a, b);
}
Var& operator*=(Var& a, const Var& b) {
  return a = mul(a, b);
}
Var& operator/=(Var& a, const Var& b) {
  return a = div(a, b);
}

Var exp(const Var& x) {
  return record_unary<Op::exp>(x);
}
Var log(const Var& x) {
  return record_unary<Op::log>(x);
}
Var sqrt(const Var& x) {
  return record_unary<Op::sqrt>(x);
}
Var abs(const Var& x) {
  return record_unary<Op::abs>(x);
}
Var tanh(const Var& x) {
  return record_unary<Op::tanh>(x);
}
Var sigmoid(const Var& x) {
  return record_unary<Op::sigmoid>(x);
}
Var relu(const Var& x) {
  return record_unary<Op::relu>(x);
}
Var leaky_relu(const Var& x, double negative_slope) {
  return record_unary<Op::leaky_relu>(x, {negative_slope});
}
Var sin(const Var& x) {
  return record_unary<Op::sin>(x);
}
Var cos(const Var& x) {
  return record_unary<Op::cos>(x);
}
Var erf(const Var& x) {
  return record_unary<Op::erf>(x);
}
Var gelu(const Var& x, std::string_view approximate) {
  if (approximate == "none") return record_unary<Op::gelu>(x);
  if (approximate == "tanh") return record_unary<Op::gelu_tanh>(x);
  throw ValueError(fmt::format("gelu: approximate is \"none\" or \"tanh\", not \"{}\"", approximate));
}
Var binary_cross_entropy(const Var& p, const Var& y) {
  return record_binary<Op::binary_cross_entropy>(p, y);
}
Var maximum(const Var& a, const Var& b) {
  return record_binary<Op::maximum>(a, b);
}
Var minimum(const Var& a, const Var& b) {
  return record_binary<Op::minimum>(a, b);
}
Var softplus(const Var& x, double beta, double threshold) {
  return record_unary<Op::softplus>(x, {beta, threshold});
}
Var clamp(const Var& x, double lo, double hi) {
  need(x, Op::clamp);
  if (lo > hi) throw ValueError(fmt::format("clamp: lo ({}) is greater than hi ({})", lo, hi));
  return record_unary<Op::clamp>(x, {lo, hi});
}

} // namespace gg
