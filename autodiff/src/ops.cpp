// Forward of every differentiable op: compute the value (scalar fast path or tensor kernel),
// check shapes, and record a node when any input requires grad and recording is on.
#include <autodiff/function.hpp>
#include <autodiff/ops.hpp>

#include <array>
#include <cmath>
#include <span>

#include <fmt/format.h>

#include "internal.hpp"
#include "kernels/kernels.hpp"
#include "scalar_math.hpp"
#include "tape.hpp"

namespace gg {
using detail::ext_of;
using detail::Node;

namespace detail {

void throw_undefined(std::string_view op) {
  throw UsageError(fmt::format("{}: an input Var is undefined (default-constructed)", op));
}

Tensor value_of(const Node* n) {
  return n->is_tensor() ? n->ext->value : Tensor::scalar(n->value);
}

namespace {
bool wants_grad(const Node* a, const Node* b = nullptr) {
  return grad_mode_flag() && (a->requires_grad() || (b && b->requires_grad()));
}
} // namespace

/// A tensor result: recorded when an input requires grad, else a constant. `n` is the recorded
/// node (null for a constant), for the caller to store attributes on.
struct Emitted {
  Var var;
  Node* n = nullptr;
};

/// Records a tensor node with inputs a, b (either may be null).
Emitted record_tensor(Op op, Node* a, Node* b, Tensor value) {
  Node* n = record(op, a, b);
  Var v = Var::adopt(n);
  ext_of(n).value = std::move(value);
  n->flags |= k_tensor;
  return {std::move(v), n};
}

Emitted emit(Op op, Node* a, Node* b, Tensor value) {
  if (!wants_grad(a, b)) return {Var::constant(value), nullptr};
  Emitted e = record_tensor(op, a, b, std::move(value));
  if (t_anomaly) [[unlikely]]
    check_forward(e.n);
  return e;
}

/// A result of several inputs: recorded when any of them requires grad (not only the first two).
Emitted emit_variadic(Op op, std::span<Node* const> xs, Tensor value) {
  bool any = false;
  for (const Node* x : xs) any = any || x->requires_grad();
  if (!grad_mode_flag() || !any) return {Var::constant(value), nullptr};
  Emitted e = record_tensor(op, xs[0], xs.size() > 1 ? xs[1] : nullptr, std::move(value));
  for (std::size_t i = 2; i < xs.size(); ++i) record_more_input(e.n, xs[i]);
  if (t_anomaly) [[unlikely]]
    check_forward(e.n);
  return e;
}

Emitted emit_variadic(Op op, const std::vector<Var>& xs, Tensor value) {
  std::vector<Node*> nodes;
  nodes.reserve(xs.size());
  for (const Var& x : xs) nodes.push_back(x.node());
  return emit_variadic(op, nodes, std::move(value));
}

} // namespace detail

using detail::emit;
using detail::emit_scalar;
using detail::need;
using detail::value_of;

namespace {

using kernel::Binary;
using kernel::Unary;

Binary binary_kind(Op op) {
  switch (op) {
  case Op::add: return Binary::add;
  case Op::sub: return Binary::sub;
  case Op::mul: return Binary::mul;
  case Op::div: return Binary::div;
  default: return Binary::pow;
  }
}

// The scalar ops' fast paths: the op kind is a template argument so that they compile to
// straight-line code, inlined into each public function; the tensor paths are separate functions,
// so a scalar op does not pay for their stack frame (callgrind: ~20 instructions per op).
Var binary_tensor(Op op, Node* x, Node* y) {
  return emit(op, x, y, kernel::binary(binary_kind(op), value_of(x), value_of(y), op_name(op))).var;
}
template <Op op> [[gnu::always_inline]] inline Var binary(const Var& a, const Var& b) {
  Node* x = need(a, op);
  Node* y = need(b, op);
  if (!x->is_tensor() && !y->is_tensor()) [[likely]]
    return emit_scalar(op, x, y, detail::scalar_binary(op, x->value, y->value));
  return binary_tensor(op, x, y);
}

Var with_constant_tensor(Op op, Node* x, double c) {
  Tensor v;
  const Tensor& t = x->ext->value;
  switch (op) {
  case Op::add_c: v = kernel::binary_scalar(Binary::add, t, c); break;
  case Op::mul_c: v = kernel::binary_scalar(Binary::mul, t, c); break;
  case Op::div_c: v = kernel::binary_scalar(Binary::div, t, c); break;
  case Op::rsub_c: v = kernel::binary_scalar(Binary::sub, t, c, true); break;
  case Op::rdiv_c: v = kernel::binary_scalar(Binary::div, t, c, true); break;
  case Op::pow_c: v = kernel::binary_scalar(Binary::pow, t, c); break;
  default: v = kernel::binary_scalar(Binary::pow, t, c, true); break; // rpow_c
  }
  auto e = emit(op, x, nullptr, std::move(v));
  if (e.n) e.n->set_constant(c);
  return e.var;
}

/// x op c with a constant c (add_c, mul_c, div_c, rsub_c, rdiv_c, pow_c, rpow_c).
template <Op op> [[gnu::always_inline]] inline Var with_constant(const Var& a, double c) {
  Node* x = need(a, op);
  if (!x->is_tensor()) [[likely]]
    return emit_scalar(op, x, nullptr, detail::scalar_const(op, x->value, c), c);
  return with_constant_tensor(op, x, c);
}

Var unary_tensor(Op op, Unary kind, Node* x) {
  return emit(op, x, nullptr, kernel::unary(kind, x->ext->value)).var;
}
template <Op op, Unary kind> [[gnu::always_inline]] inline Var unary(const Var& a) {
  Node* x = need(a, op);
  if (!x->is_tensor()) [[likely]]
    return emit_scalar(op, x, nullptr, detail::scalar_unary(op, x->value, 0));
  return unary_tensor(op, kind, x);
}

Var reduce(Op op, const Var& a, int axis, bool keepdim) {
  Node* x = need(a, op_name(op));
  const Tensor v = value_of(x);
  if (v.rank() == 0) { // as in PyTorch, a 0-d value has one implicit axis (0 or -1); the result is 0-d
    kernel::normalize_axis(axis, 1, op_name(op));
    return reshape(reduce(op, reshape(a, {1}), 0, keepdim), {});
  }
  const int ax = kernel::normalize_axis(axis, v.rank(), op_name(op));
  Tensor r;
  switch (op) {
  case Op::sum_axis: r = kernel::sum(v, ax, keepdim); break;
  case Op::mean_axis: r = kernel::mean(v, ax, keepdim); break;
  case Op::max_axis: r = kernel::max(v, ax, keepdim); break;
  case Op::logsumexp: r = kernel::logsumexp(v, ax, keepdim); break;
  case Op::softmax: r = kernel::softmax(v, ax); break;
  default: r = kernel::log_softmax(v, ax); break;
  }
  auto e = emit(op, x, nullptr, std::move(r));
  if (e.n) e.n->ext->ints = {ax, keepdim ? 1 : 0};
  return e.var;
}

/// Whole-tensor reductions of a scalar node stay scalar nodes.
Var reduce_all(Op op, const Var& a) {
  Node* x = need(a, op_name(op));
  if (!x->is_tensor()) return emit_scalar(op, x, nullptr, x->value);
  const Tensor& v = x->ext->value;
  if (op == Op::max && v.numel() == 0) throw ValueError("max: the tensor is empty");
  Tensor r = op == Op::sum ? kernel::sum(v) : op == Op::mean ? kernel::mean(v) : kernel::max(v);
  return emit(op, x, nullptr, std::move(r)).var;
}

} // namespace

Var add(const Var& a, const Var& b) {
  return binary<Op::add>(a, b);
}
Var sub(const Var& a, const Var& b) {
  return binary<Op::sub>(a, b);
}
Var mul(const Var& a, const Var& b) {
  return binary<Op::mul>(a, b);
}
Var div(const Var& a, const Var& b) {
  return binary<Op::div>(a, b);
}
Var pow(const Var& x, const Var& y) {
  return binary<Op::pow>(x, y);
}
Var pow(const Var& x, double p) {
  return with_constant<Op::pow_c>(x, p);
}
Var pow(double b, const Var& x) {
  return with_constant<Op::rpow_c>(x, b);
}
Var neg(const Var& x) {
  return unary<Op::neg, Unary::neg>(x);
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
  return with_constant<Op::add_c>(a, b);
}
Var operator+(double a, const Var& b) {
  return with_constant<Op::add_c>(b, a);
}
Var operator-(const Var& a, double b) {
  return with_constant<Op::add_c>(a, -b);
}
Var operator-(double a, const Var& b) {
  return with_constant<Op::rsub_c>(b, a);
}
Var operator*(const Var& a, double b) {
  return with_constant<Op::mul_c>(a, b);
}
Var operator*(double a, const Var& b) {
  return with_constant<Op::mul_c>(b, a);
}
Var operator/(const Var& a, double b) {
  return with_constant<Op::div_c>(a, b);
}
Var operator/(double a, const Var& b) {
  return with_constant<Op::rdiv_c>(b, a);
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
  return unary<Op::exp, Unary::exp>(x);
}
Var log(const Var& x) {
  return unary<Op::log, Unary::log>(x);
}
Var sqrt(const Var& x) {
  return unary<Op::sqrt, Unary::sqrt>(x);
}
Var abs(const Var& x) {
  return unary<Op::abs, Unary::abs>(x);
}
Var tanh(const Var& x) {
  return unary<Op::tanh, Unary::tanh>(x);
}
Var sigmoid(const Var& x) {
  return unary<Op::sigmoid, Unary::sigmoid>(x);
}
Var relu(const Var& x) {
  return unary<Op::relu, Unary::relu>(x);
}
Var sin(const Var& x) {
  return unary<Op::sin, Unary::sin>(x);
}
Var cos(const Var& x) {
  return unary<Op::cos, Unary::cos>(x);
}

Var leaky_relu(const Var& a, double slope) {
  Node* x = need(a, "leaky_relu");
  if (!x->is_tensor())
    return emit_scalar(Op::leaky_relu, x, nullptr, detail::scalar_unary(Op::leaky_relu, x->value, slope),
                       slope);
  auto e = emit(Op::leaky_relu, x, nullptr, kernel::leaky_relu(x->ext->value, slope));
  if (e.n) e.n->set_constant(slope);
  return e.var;
}

Var clamp(const Var& a, double lo, double hi) {
  Node* x = need(a, "clamp");
  if (lo > hi) throw ValueError(fmt::format("clamp: lo ({}) is greater than hi ({})", lo, hi));
  Var out = !x->is_tensor() ? emit_scalar(Op::clamp, x, nullptr, std::fmin(std::fmax(x->value, lo), hi), lo)
                            : emit(Op::clamp, x, nullptr, kernel::clamp(x->ext->value, lo, hi)).var;
  if (out.node()->op == Op::clamp) {
    out.node()->set_constant(lo);
    ext_of(out.node()).reals = {hi};
  }
  return out;
}

Var sum(const Var& x) {
  return reduce_all(Op::sum, x);
}
Var mean(const Var& x) {
  return reduce_all(Op::mean, x);
}
Var max(const Var& x) {
  return reduce_all(Op::max, x);
}
Var sum(const Var& x, int axis, bool keepdim) {
  return reduce(Op::sum_axis, x, axis, keepdim);
}
Var mean(const Var& x, int axis, bool keepdim) {
  return reduce(Op::mean_axis, x, axis, keepdim);
}
Var max(const Var& x, int axis, bool keepdim) {
  return reduce(Op::max_axis, x, axis, keepdim);
}
Var logsumexp(const Var& x, int axis, bool keepdim) {
  return reduce(Op::logsumexp, x, axis, keepdim);
}
Var softmax(const Var& x, int axis) {
  return reduce(Op::softmax, x, axis, false);
}
Var log_softmax(const Var& x, int axis) {
  return reduce(Op::log_softmax, x, axis, false);
}

Var matmul(const Var& a, const Var& b) {
  Node* x = need(a, "matmul");
  Node* y = need(b, "matmul");
  const Shape sa = a.shape(), sb = b.shape();
  if (sa.rank() == 0 || sb.rank() == 0)
    throw ShapeError(fmt::format("matmul: shapes {} and {}: both operands need at least one dimension",
                                 sa.str(), sb.str()));
  // 1-d operands become a row (left) or a column (right), and the added dimension is removed after,
  // so the recorded matmul node itself is always >= 2-d.
  const std::int64_t ka = sa[sa.rank() - 1], kb = sb.rank() == 1 ? sb[0] : sb[sb.rank() - 2];
  if (ka != kb)
    throw ShapeError(fmt::format("matmul: shapes {} and {} do not fit (inner dimensions {} and {})", sa.str(),
                                 sb.str(), ka, kb));
  if (sa.rank() == 1 || sb.rank() == 1) {
    const Var a2 = sa.rank() == 1 ? reshape(a, {1, sa[0]}) : a;
    const Var b2 = sb.rank() == 1 ? reshape(b, {sb[0], 1}) : b;
    const Var r = matmul(a2, b2);
    std::vector<std::int64_t> shape = r.shape().to_vector();
    if (sb.rank() == 1) shape.erase(shape.end() - 1);
    if (sa.rank() == 1) shape.erase(shape.end() - 1 - (sb.rank() == 1 ? 0 : 1));
    return reshape(r, shape);
  }
  return emit(Op::matmul, x, y, kernel::matmul(value_of(x), value_of(y))).var;
}

Var linear(const Var& x, const Var& weight, const Var& bias) {
  Node* a = need(x, "linear");
  Node* w = need(weight, "linear");
  Node* b = bias.defined() ? bias.node() : nullptr;
  Tensor value = kernel::linear(value_of(a), value_of(w), b ? value_of(b) : Tensor());
  if (!b) return emit(Op::linear, a, w, std::move(value)).var;
  const std::array<Node*, 3> inputs{a, w, b};
  return detail::emit_variadic(Op::linear, inputs, std::move(value)).var;
}

Var conv2d(const Var& x, const Var& weight, const Var& bias, std::int64_t stride, std::int64_t padding) {
  Node* a = need(x, "conv2d");
  Node* w = need(weight, "conv2d");
  Node* b = bias.defined() ? bias.node() : nullptr;
  Tensor value = kernel::conv2d(value_of(a), value_of(w), b ? value_of(b) : Tensor(), stride, padding);
  const std::array<Node*, 3> inputs{a, w, b};
  auto e = b ? detail::emit_variadic(Op::conv2d, inputs, std::move(value))
             : emit(Op::conv2d, a, w, std::move(value));
  if (e.n) e.n->ext->ints = {stride, padding};
  return e.var;
}

Var max_pool2d(const Var& a, std::int64_t k, std::int64_t stride, std::int64_t padding) {
  Node* x = need(a, "max_pool2d");
  auto e = emit(Op::max_pool2d, x, nullptr, kernel::max_pool2d(value_of(x), k, stride, padding));
  if (e.n) e.n->ext->ints = {k, stride, padding};
  return e.var;
}

Var transpose(const Var& a, int axis0, int axis1) {
  Node* x = need(a, "transpose");
  const Tensor v = value_of(x);
  const int a0 = kernel::normalize_axis(axis0, v.rank(), "transpose");
  const int a1 = kernel::normalize_axis(axis1, v.rank(), "transpose");
  auto e = emit(Op::transpose, x, nullptr, kernel::transpose(v, a0, a1));
  if (e.n) e.n->ext->ints = {a0, a1};
  return e.var;
}

Var reshape(const Var& a, const std::vector<std::int64_t>& shape) {
  Node* x = need(a, "reshape");
  return emit(Op::reshape, x, nullptr, value_of(x).reshape(shape)).var;
}

Var slice(const Var& a, int axis, std::int64_t start, std::int64_t stop, std::int64_t step) {
  Node* x = need(a, "slice");
  const Tensor v = value_of(x);
  const int ax = kernel::normalize_axis(axis, v.rank(), "slice");
  auto e = emit(Op::slice, x, nullptr, kernel::slice(v, ax, start, stop, step));
  if (e.n) e.n->ext->ints = {ax, start, stop, step};
  return e.var;
}

Var select(const Var& x, int axis, std::int64_t index) {
  const Shape s = x.shape();
  const int ax = kernel::normalize_axis(axis, s.rank(), "select");
  if (index < -s[ax] || index >= s[ax])
    throw ValueError(fmt::format("select: index {} is out of range for axis {} of size {} (shape {})", index,
                                 ax, s[ax], s.str()));
  if (index < 0) index += s[ax];
  std::vector<std::int64_t> shape = s.to_vector();
  shape.erase(shape.begin() + ax);
  return reshape(slice(x, ax, index, index + 1), shape);
}

Var index_select(const Var& a, int axis, const std::vector<std::int64_t>& index) {
  Node* x = need(a, "index_select");
  const Tensor v = value_of(x);
  const int ax = kernel::normalize_axis(axis, v.rank(), "index_select");
  auto e = emit(Op::index_select, x, nullptr, kernel::index_select(v, ax, index));
  if (e.n) {
    e.n->ext->ints = {ax};
    e.n->ext->ints.insert(e.n->ext->ints.end(), index.begin(), index.end());
  }
  return e.var;
}

namespace {
Var join(Op op, const std::vector<Var>& xs, int axis) {
  const std::string_view name = op_name(op);
  if (xs.empty()) throw ValueError(fmt::format("{}: needs at least one tensor", name));
  std::vector<Tensor> vs;
  vs.reserve(xs.size());
  for (const Var& x : xs) vs.push_back(value_of(need(x, name)));
  Tensor r = op == Op::concat ? kernel::concat(vs, axis) : kernel::stack(vs, axis);
  const int ax = kernel::normalize_axis(axis, r.rank(), name);
  auto e = detail::emit_variadic(op, xs, std::move(r));
  if (e.n) e.n->ext->ints = {ax};
  return e.var;
}
} // namespace

Var concat(const std::vector<Var>& xs, int axis) {
  return join(Op::concat, xs, axis);
}
Var stack(const std::vector<Var>& xs, int axis) {
  return join(Op::stack, xs, axis);
}

Var where(const Tensor& cond, const Var& a, const Var& b) {
  Node* x = need(a, "where");
  Node* y = need(b, "where");
  auto e = emit(Op::where, x, y, kernel::where(cond, value_of(x), value_of(y)));
  if (e.n) e.n->ext->aux = cond;
  return e.var;
}

Var broadcast_to(const Var& a, const Shape& shape) {
  Node* x = need(a, "broadcast_to");
  return emit(Op::broadcast_to, x, nullptr, kernel::broadcast_to(value_of(x), shape)).var;
}

Var sum_to(const Var& a, const Shape& shape) {
  Node* x = need(a, "sum_to");
  if (!x->is_tensor() && shape.rank() == 0) return a;
  Tensor v = value_of(x);
  if (v.shape() == shape) return a;
  kernel::broadcast_to(Tensor::zeros(shape, v.dtype()), v.shape(), "sum_to"); // shape must broadcast to x
  return emit(Op::sum_to, x, nullptr, kernel::sum_to(v, shape)).var;
}

Var slice_scatter(const Var& g, const Shape& shape, int axis, std::int64_t start, std::int64_t stop,
                  std::int64_t step) {
  Node* x = need(g, "slice_scatter");
  const int ax = kernel::normalize_axis(axis, shape.rank(), "slice_scatter");
  auto e =
      emit(Op::slice_scatter, x, nullptr, kernel::slice_scatter(value_of(x), shape, ax, start, stop, step));
  if (e.n) e.n->ext->ints = {ax, start, stop, step};
  return e.var;
}

Var index_add(const Var& g, const Shape& shape, int axis, const std::vector<std::int64_t>& index) {
  Node* x = need(g, "index_add");
  const int ax = kernel::normalize_axis(axis, shape.rank(), "index_add");
  auto e = emit(Op::index_add, x, nullptr, kernel::index_add(value_of(x), shape, ax, index));
  if (e.n) {
    e.n->ext->ints = {ax};
    e.n->ext->ints.insert(e.n->ext->ints.end(), index.begin(), index.end());
  }
  return e.var;
}

Var unfold(const Var& a, std::int64_t kh, std::int64_t kw, std::int64_t stride, std::int64_t padding,
           double pad_value) {
  Node* x = need(a, "unfold");
  auto e = emit(Op::unfold, x, nullptr, kernel::unfold(value_of(x), kh, kw, stride, padding, pad_value));
  if (e.n) e.n->ext->ints = {kh, kw, stride, padding};
  return e.var;
}

Var fold(const Var& a, const Shape& image_shape, std::int64_t kh, std::int64_t kw, std::int64_t stride,
         std::int64_t padding) {
  Node* x = need(a, "fold");
  auto e = emit(Op::fold, x, nullptr, kernel::fold(value_of(x), image_shape, kh, kw, stride, padding));
  if (e.n) e.n->ext->ints = {kh, kw, stride, padding};
  return e.var;
}

Var to(const Var& a, DType dtype) {
  Node* x = need(a, "to");
  if ((x->is_tensor() ? x->ext->value.dtype() : f64) == dtype) return a;
  return emit(Op::to, x, nullptr, value_of(x).to(dtype)).var;
}

Var apply(std::shared_ptr<const Function> fn, const std::vector<Var>& inputs) {
  if (!fn) throw UsageError("apply: the Function is null");
  const std::string name = fn->name();
  if (inputs.empty()) throw ValueError(fmt::format("{}: a custom op needs at least one input", name));
  std::vector<Tensor> vs;
  vs.reserve(inputs.size());
  for (const Var& x : inputs) vs.push_back(value_of(need(x, name)));
  Tensor out = fn->forward(vs);
  if (!out.defined()) throw ValueError(fmt::format("{}: forward returned an undefined tensor", name));
  auto e = detail::emit_variadic(Op::custom, inputs, std::move(out));
  if (e.n) e.n->ext->function = std::move(fn);
  return e.var;
}

} // namespace gg
