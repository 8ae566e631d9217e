// Recording, for every op family: a node when an input requires grad and recording is on, a constant
// otherwise; and the small helpers the families' backward rules share.
#include <autodiff/ops.hpp>

#include <fmt/format.h>

#include "family.hpp"

namespace gg::detail {

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

namespace {
/// Records a tensor node with inputs a, b (either may be null).
Emitted record_tensor(Op op, Node* a, Node* b, Tensor&& value) {
  Node* n = record(op, a, b);
  Var v = Var::adopt(n);
  ext_of(n).value = std::move(value);
  n->flags |= k_tensor;
  return {std::move(v), n};
}
} // namespace

Emitted emit(Op op, Node* a, Node* b, Tensor&& value) {
  if (!wants_grad(a, b)) return {Var::constant(value), nullptr};
  Emitted e = record_tensor(op, a, b, std::move(value));
  if (t_anomaly) [[unlikely]]
    check_forward(e.n);
  return e;
}

/// A result of several inputs: recorded when any of them requires grad (not only the first two).
Emitted emit_variadic(Op op, std::span<Node* const> xs, Tensor&& value) {
  bool any = false;
  for (const Node* x : xs) any = any || x->requires_grad();
  if (!grad_mode_flag() || !any) return {Var::constant(value), nullptr};
  Emitted e = record_tensor(op, xs[0], xs.size() > 1 ? xs[1] : nullptr, std::move(value));
  for (std::size_t i = 2; i < xs.size(); ++i) record_more_input(e.n, xs[i]);
  if (t_anomaly) [[unlikely]]
    check_forward(e.n);
  return e;
}

Emitted emit_variadic(Op op, const std::vector<Var>& xs, Tensor&& value) {
  std::vector<Node*> nodes;
  nodes.reserve(xs.size());
  for (const Var& x : xs) nodes.push_back(x.node());
  return emit_variadic(op, nodes, std::move(value));
}

Var constant_like(const Node* x, double v) {
  return x->is_tensor() ? Var::constant(Tensor::scalar(v, x->ext->value.dtype())) : Var::constant(v);
}

Var keep_axis(const Var& g, const Shape& in_shape, int axis, bool keepdim) {
  if (keepdim) return g;
  std::vector<std::int64_t> s = in_shape.to_vector();
  s[static_cast<std::size_t>(axis)] = 1;
  return reshape(g, s);
}

Var record_along_axis(Op op, const Var& a, int axis, bool keepdim, AxisKernel compute,
                      std::string_view called) {
  if (called.empty()) called = op_name(op);
  Node* x = need(a, called);
  const Tensor v = value_of(x);
  if (v.rank() == 0) {
    kernel::normalize_axis(axis, 1, called);
    return reshape(record_along_axis(op, reshape(a, {1}), 0, keepdim, compute, called), {});
  }
  const int ax = kernel::normalize_axis(axis, v.rank(), called);
  const bool extremum =
      op == Op::max_axis || op == Op::min_axis || op == Op::amax_axis || op == Op::amin_axis;
  if (extremum && v.shape()[ax] == 0) // checked here too, so that the error names the function called
    throw ValueError(
        fmt::format("{}: cannot reduce axis {} of size 0 (shape {})", called, ax, v.shape().str()));
  auto e = emit(op, x, nullptr, compute(v, ax, keepdim));
  if (e.n) e.n->ext->ints = {ax, keepdim ? 1 : 0};
  return e.var;
}

Tensor max_mask(const Tensor& a, const Tensor& out_broadcast, int axis) {
  using kernel::Binary;
  Tensor eq = kernel::binary(Binary::eq, a, out_broadcast);
  if (axis < 0 && !(out_broadcast.item() == out_broadcast.item())) // a NaN maximum: the NaNs tie
    eq = kernel::binary_scalar(Binary::sub, kernel::binary(Binary::eq, a, a), 1.0, true);
  const Tensor ties = axis < 0 ? kernel::sum(eq) : kernel::sum(eq, axis, true);
  return kernel::binary(kernel::Binary::div, eq, ties);
}

} // namespace gg::detail
