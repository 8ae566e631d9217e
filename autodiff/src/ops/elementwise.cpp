// The elementwise family: each op's public function and its rule, all generic over the rows of
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
  return emit(op, x, y, map_value2<Math<op>>(value_of(x), value_of(y))).var;
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

// The rules, generic over the rows.

template <Op op> std::vector<Var> binary_vjp(Node* n, const Var& g) {
  const Var a = ref(n->first), b = ref(n->in1()), out = ref(n);
  return {sum_to(Math<op>::vjp_a(g, a, b, out), a.shape()), sum_to(Math<op>::vjp_b(g, a, b, out), b.shape())};
}

template <Op op> bool binary_vjp_values(Node* n, const Tensor& g, InputGrads& out) {
  if constexpr (!Math<op>::tensor_vjp) {
    return false;
  } else {
    const Tensor a = value_of(n->first), b = value_of(n->in1()), o = n->ext->value;
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

} // namespace

} // namespace detail

using detail::binary_rule;
using detail::need;
using detail::OpRule;
using detail::record_binary;
using detail::record_unary;
using detail::unary_rule;

// Each op: its public function(s), and its rule from its row (Math<op>, elementwise.hpp).

Var add(const Var& a, const Var& b) {
  return record_binary<Op::add>(a, b);
}
template <> const OpRule& detail::rule<Op::add>() {
  return binary_rule<Op::add>();
}
Var sub(const Var& a, const Var& b) {
  return record_binary<Op::sub>(a, b);
}
template <> const OpRule& detail::rule<Op::sub>() {
  return binary_rule<Op::sub>();
}
Var mul(const Var& a, const Var& b) {
  return record_binary<Op::mul>(a, b);
}
template <> const OpRule& detail::rule<Op::mul>() {
  return binary_rule<Op::mul>();
}
Var div(const Var& a, const Var& b) {
  return record_binary<Op::div>(a, b);
}
template <> const OpRule& detail::rule<Op::div>() {
  return binary_rule<Op::div>();
}
Var pow(const Var& x, const Var& y) {
  return record_binary<Op::pow>(x, y);
}
template <> const OpRule& detail::rule<Op::pow>() {
  return binary_rule<Op::pow>();
}
Var pow(const Var& x, double p) {
  return record_unary<Op::pow_c>(x, {p});
}
template <> const OpRule& detail::rule<Op::pow_c>() {
  return unary_rule<Op::pow_c>();
}
Var pow(double b, const Var& x) {
  return record_unary<Op::rpow_c>(x, {b});
}
template <> const OpRule& detail::rule<Op::rpow_c>() {
  return unary_rule<Op::rpow_c>();
}
Var neg(const Var& x) {
  return record_unary<Op::neg>(x);
}
template <> const OpRule& detail::rule<Op::neg>() {
  return unary_rule<Op::neg>();
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
template <> const OpRule& detail::rule<Op::add_c>() {
  return unary_rule<Op::add_c>();
}
Var operator-(const Var& a, double b) {
  return record_unary<Op::add_c>(a, {-b});
}
Var operator-(double a, const Var& b) {
  return record_unary<Op::rsub_c>(b, {a});
}
template <> const OpRule& detail::rule<Op::rsub_c>() {
  return unary_rule<Op::rsub_c>();
}
Var operator*(const Var& a, double b) {
  return record_unary<Op::mul_c>(a, {b});
}
Var operator*(double a, const Var& b) {
  return record_unary<Op::mul_c>(b, {a});
}
template <> const OpRule& detail::rule<Op::mul_c>() {
  return unary_rule<Op::mul_c>();
}
Var operator/(const Var& a, double b) {
  return record_unary<Op::div_c>(a, {b});
}
template <> const OpRule& detail::rule<Op::div_c>() {
  return unary_rule<Op::div_c>();
}
Var operator/(double a, const Var& b) {
  return record_unary<Op::rdiv_c>(b, {a});
}
template <> const OpRule& detail::rule<Op::rdiv_c>() {
  return unary_rule<Op::rdiv_c>();
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
template <> const OpRule& detail::rule<Op::exp>() {
  return unary_rule<Op::exp>();
}
Var log(const Var& x) {
  return record_unary<Op::log>(x);
}
template <> const OpRule& detail::rule<Op::log>() {
  return unary_rule<Op::log>();
}
Var sqrt(const Var& x) {
  return record_unary<Op::sqrt>(x);
}
template <> const OpRule& detail::rule<Op::sqrt>() {
  return unary_rule<Op::sqrt>();
}
Var abs(const Var& x) {
  return record_unary<Op::abs>(x);
}
template <> const OpRule& detail::rule<Op::abs>() {
  return unary_rule<Op::abs>();
}
Var tanh(const Var& x) {
  return record_unary<Op::tanh>(x);
}
template <> const OpRule& detail::rule<Op::tanh>() {
  return unary_rule<Op::tanh>();
}
Var sigmoid(const Var& x) {
  return record_unary<Op::sigmoid>(x);
}
template <> const OpRule& detail::rule<Op::sigmoid>() {
  return unary_rule<Op::sigmoid>();
}
Var relu(const Var& x) {
  return record_unary<Op::relu>(x);
}
template <> const OpRule& detail::rule<Op::relu>() {
  return unary_rule<Op::relu>();
}
Var leaky_relu(const Var& x, double negative_slope) {
  return record_unary<Op::leaky_relu>(x, {negative_slope});
}
template <> const OpRule& detail::rule<Op::leaky_relu>() {
  return unary_rule<Op::leaky_relu>();
}
Var sin(const Var& x) {
  return record_unary<Op::sin>(x);
}
template <> const OpRule& detail::rule<Op::sin>() {
  return unary_rule<Op::sin>();
}
Var cos(const Var& x) {
  return record_unary<Op::cos>(x);
}
template <> const OpRule& detail::rule<Op::cos>() {
  return unary_rule<Op::cos>();
}
Var clamp(const Var& x, double lo, double hi) {
  need(x, Op::clamp);
  if (lo > hi) throw ValueError(fmt::format("clamp: lo ({}) is greater than hi ({})", lo, hi));
  return record_unary<Op::clamp>(x, {lo, hi});
}
template <> const OpRule& detail::rule<Op::clamp>() {
  return unary_rule<Op::clamp>();
}

} // namespace gg
