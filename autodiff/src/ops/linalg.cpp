// The linear-algebra family: matmul (2-d, batched, 1-d operands as in NumPy) and linear (a Linear
// layer's x W^T + b in one op). Each op: its public function and its rule (table row, the
// differentiable VJP, the fast tensor backward: GEMMs with transpose flags, no transposed copies).
#include <autodiff/ops.hpp>

#include <array>

#include <fmt/format.h>

#include "../kernels/kernels.hpp"
#include "family.hpp"

namespace gg {

using detail::InputGrads;
using detail::Node;
using detail::OpRule;
using detail::ref;
using detail::value_of;

// matmul(a, b) = a @ b.
Var matmul(const Var& a, const Var& b) {
  Node* x = detail::need(a, Op::matmul);
  Node* y = detail::need(b, Op::matmul);
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
  return detail::emit(Op::matmul, x, y, kernel::matmul(value_of(x), value_of(y))).var;
}
template <> const OpRule& detail::rule<Op::matmul>() {
  static constexpr OpRule r{
      {"matmul", "a @ b", 2, "g @ b^T", "a^T @ g", "matmul(a, b)",
       "matrix product: 2-d, batched, 1-d as NumPy"},
      [](Node* n, const Var& g) -> std::vector<Var> {
        const Var a = ref(n->first), b = ref(n->in1());
        const Shape sa = a.shape(), sb = b.shape();
        if (!grad_enabled() && sa.rank() == 2 && sb.rank() == 2) { // no transposed copies
          const Tensor gv = g.value();
          return {Var::constant(kernel::gemm(gv, false, b.value(), true)),
                  Var::constant(kernel::gemm(a.value(), true, gv, false))};
        }
        return {sum_to(matmul(g, transpose(b)), sa), sum_to(matmul(transpose(a), g), sb)};
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const Tensor a = value_of(n->first), b = value_of(n->in1());
        const Shape &sa = a.shape(), &sb = b.shape();
        const bool need_a = n->first->requires_grad(), need_b = n->in1()->requires_grad();
        if (sa.rank() == 2 && sb.rank() == 2) {
          if (need_a) out[0] = kernel::gemm(g, false, b, true);
          if (need_b) out[1] = kernel::gemm(a, true, g, false);
          return true;
        }
        // [batch, ., .] with [batch, ., .] or with one matrix (a convolution's weight): per-item
        // products, summed over the batch for the 2-d operand. Other broadcasts: the VJP.
        if (sa.rank() > 3 || sb.rank() > 3 || (sa.rank() == 3 && sb.rank() == 3 && sa[0] != sb[0]))
          return false;
        if (need_a) out[0] = kernel::gemm_batched(g, false, b, true, sa.rank() == 2);
        if (need_b) out[1] = kernel::gemm_batched(a, true, g, false, sb.rank() == 2);
        return true;
      }};
  return r;
}

namespace {
/// linear's value. A layer's inputs are tensor nodes (and no bias, or a tensor one): their values by
/// reference, and no 0-d tensors made for scalar ones (three empty tensors made and destroyed, ~40
/// instructions, when kept always).
Tensor linear_value(const Node* a, const Node* w, const Node* b) {
  if (a->is_tensor() && w->is_tensor() && (!b || b->is_tensor())) [[likely]] {
    if (!b) return kernel::linear(a->ext->value, w->ext->value, Tensor());
    return kernel::linear(a->ext->value, w->ext->value, b->ext->value); // (a ?: would copy the bias)
  }
  Tensor keep_a, keep_w, keep_b;
  return kernel::linear(detail::value_ref(a, keep_a), detail::value_ref(w, keep_w),
                        b ? detail::value_ref(b, keep_b) : keep_b);
}

/// linear's gradients for the input a2 and the gradient g2 as 2-d ([rows, in] and [rows, out]), to
/// the inputs of n that require one.
void linear_grads(const Node* n, const Tensor& g2, const Tensor& a2, const Tensor& w, InputGrads& out) {
  if (n->first->requires_grad()) out[0] = kernel::gemm(g2, false, w, false);
  if (n->in1()->requires_grad()) out[1] = kernel::gemm(g2, true, a2, false);
  if (n->num_inputs() == 3 && n->input(2)->requires_grad()) out[2] = kernel::sum(g2, 0);
}
} // namespace

// linear(a, w, bias) = a @ w^T + bias, as torch.nn.functional.linear.
Var linear(const Var& x, const Var& weight, const Var& bias) {
  Node* a = detail::need(x, Op::linear);
  Node* w = detail::need(weight, Op::linear);
  Node* b = bias.defined() ? bias.node() : nullptr;
  Tensor value = linear_value(a, w, b);
  if (!b) return detail::emit(Op::linear, a, w, std::move(value)).var;
  const std::array<Node*, 3> inputs{a, w, b};
  return detail::emit_variadic(Op::linear, inputs, std::move(value)).var;
}
template <> const OpRule& detail::rule<Op::linear>() {
  static constexpr OpRule r{
      {"linear", "", -1, "g @ w", "g^T @ a (bias: sum of g over rows)", "linear(a, w, bias)",
       "a @ w^T + bias in one op (a Linear layer)"},
      [](Node* n, const Var& g) -> std::vector<Var> { // as matmul on a [rows, in] and w^T [in, out]
        const Var a = ref(n->first), w = ref(n->in1());
        const Shape sa = a.shape();
        const std::int64_t in = w.shape()[1], out = w.shape()[0], rows = detail::leading_numel(sa);
        const Var g2 = reshape(g, {rows, out});
        std::vector<Var> r = {reshape(matmul(g2, w), sa.to_vector()),
                              matmul(transpose(g2), reshape(a, {rows, in}))};
        if (n->num_inputs() == 3) r.push_back(sum(g2, 0));
        return r;
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const Node *x = n->first, *wn = n->in1();
        // A Linear layer's usual case, tensor inputs and a 2-d input: the values by reference, no
        // reshaped copies, no tensors kept (~40 instructions a node for three empty ones).
        if (x->is_tensor() && wn->is_tensor() && x->ext->value.rank() == 2) [[likely]] {
          linear_grads(n, g, x->ext->value, wn->ext->value, out);
          return true;
        }
        Tensor keep_a, keep_w;
        const Tensor& a = detail::value_ref(x, keep_a);
        const Tensor& w = detail::value_ref(wn, keep_w);
        const std::int64_t rows = detail::leading_numel(a.shape()), in = w.shape()[1],
                           out_features = w.shape()[0];
        linear_grads(n, g.reshape(Shape{rows, out_features}), a.reshape(Shape{rows, in}), w, out);
        if (out[0].defined()) out[0] = out[0].reshape(a.shape());
        return true;
      }};
  return r;
}

} // namespace gg
