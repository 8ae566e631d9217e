// What an op family's file (autodiff/src/ops/<family>.cpp) works with: recording a node, and the
// rule every op kind of GG_OP_LIST gives the engine — its table row and its backward rules, defined
// in its family's file next to the function that records it. The tables over op kinds are generated
// from the list, so an op without a rule is a link error naming it.
#pragma once

#include <array>
#include <span>
#include <vector>

#include <autodiff/kernel.hpp>
#include <autodiff/op.hpp>
#include <autodiff/var.hpp>

#include "../internal.hpp"
#include "../tape.hpp"

namespace gg::detail {

/// The gradient a tensor node's fast backward gives each of its inputs (undefined: none flows there,
/// or the input does not require one); ops with more inputs (lstm_layer: 7) fill the first ones.
using InputGrads = std::array<Tensor, 7>;

/// What the engine knows of an op kind, beyond recording it.
struct OpRule {
  OpInfo info; ///< its row of the op table (names, display text, formulas: docs/ops.md)
  /// The vector-Jacobian product written with differentiable ops: d(loss)/d(input i) given g =
  /// d(loss)/d(node), one Var per input (undefined where none flows). The definition of the op's
  /// gradient: create_graph runs it, and gradcheck holds the other paths to it.
  std::vector<Var> (*vjp)(Node* n, const Var& g);
  /// backward()'s fast path for tensor nodes: the same products on plain tensors with kernels, for
  /// the inputs that require grad only. Null, or false for a case it leaves out: backward() runs
  /// vjp with recording off.
  bool (*vjp_values)(Node* n, const Tensor& g, InputGrads& out) = nullptr;
};

/// The rule of an op kind, defined in its family's file (elementwise ops: their rows instead).
template <Op op> const OpRule& rule();
#define GG_DECLARE_RULE(name) template <> const OpRule& rule<Op::name>();
GG_OP_LIST(GG_DECLARE_RULE)
#undef GG_DECLARE_RULE

/// The rule of op (a table generated from the op list).
const OpRule& rule_of(Op op);

// Recording: ops record a node when an input requires grad and recording is on; otherwise the
// result is a constant.

/// A tensor result and its recorded node (null for a constant), for the caller to store attributes.
struct Emitted {
  Var var;
  Node* n = nullptr;
};
/// Records a tensor node with inputs a, b (b may be null), or makes a constant. The value is moved
/// into the node: taken by reference, not by value, so that it is not moved twice on the way (a
/// tensor's move copies its shape and dtype and destroys the moved-from one).
Emitted emit(Op op, Node* a, Node* b, Tensor&& value);
/// The same for several inputs: recorded when any of them requires grad.
Emitted emit_variadic(Op op, std::span<Node* const> xs, Tensor&& value);
Emitted emit_variadic(Op op, const std::vector<Var>& xs, Tensor&& value);

/// Node n's value without copying a tensor node's (a copy counts a reference: an atomic add and
/// subtract); a scalar node's 0-d tensor is made in `keep`, which must outlive the reference.
inline const Tensor& value_ref(const Node* n, Tensor& keep) {
  if (n->is_tensor()) return n->ext->value;
  return keep = Tensor::scalar(n->value);
}

/// The shape of node n's input i.
inline Shape input_shape(const Node* n, int i = 0) {
  return value_of(n->input(i)).shape();
}

/// g summed back to shape when broadcasting stretched it (g itself otherwise).
inline Tensor reduce_to(const Tensor& g, const Shape& shape) {
  return g.shape() == shape ? g : kernel::sum_to(g, shape);
}
/// A kernel computing a reduction (or softmax) along an axis: (value, axis, keepdim).
using AxisKernel = Tensor (*)(const Tensor&, int, bool);
/// Records op along axis of a (negative axes count from the end) with compute; the node keeps
/// {axis, keepdim}. As in PyTorch, a 0-d value has one implicit axis (0 or -1), the result 0-d.
/// Errors name `called` (the function the user called: "sum" records sum_axis), or else the op.
Var record_along_axis(Op op, const Var& a, int axis, bool keepdim, AxisKernel compute,
                      std::string_view called = {});
/// Where the maxima of a are (out_broadcast: the maxima, broadcast against a; axis < 0: all of a),
/// each tie getting an equal share: 1/ties at the maxima, 0 elsewhere. Along an axis a NaN maximum
/// gives NaN throughout (torch.amax's 0 / 0); over all of a, the NaNs share (torch.max's).
Tensor max_mask(const Tensor& a, const Tensor& out_broadcast, int axis);
/// A constant scalar or 0-d tensor of x's dtype with value v.
Var constant_like(const Node* x, double v);
/// g reshaped so that it broadcasts against the input of an axis reduction (keepdim false).
Var keep_axis(const Var& g, const Shape& in_shape, int axis, bool keepdim);

} // namespace gg::detail
