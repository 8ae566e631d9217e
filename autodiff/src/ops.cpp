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
#include "ops/family.hpp"
#include "tape.hpp"

namespace gg {
using detail::ext_of;
using detail::Node;

using detail::emit;
using detail::emit_scalar;
using detail::need;
using detail::value_of;

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
