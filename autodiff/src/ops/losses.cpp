// The losses recorded as one node, as PyTorch records them (MseLossBackward0): mse_loss. Its public
// function and its rule (table row, the differentiable VJP, the fast tensor backward); its scalar
// nodes' local derivatives are in losses.hpp (inlined into the sweep), the kernels in
// kernels/losses.cpp. nn/losses.hpp has the losses composed of other ops.
#include <autodiff/ops.hpp>
#include <autodiff/warning.hpp>

#include <fmt/format.h>

#include "../kernels/kernels.hpp"
#include "family.hpp"

namespace gg {

using detail::InputGrads;
using detail::need;
using detail::Node;
using detail::OpRule;
using detail::ref;
using detail::value_ref;

namespace {
Reduction reduction_of(const Node* n) {
  return static_cast<Reduction>(n->ext->ints[0]);
}
/// What g is divided by for each element: the element count of the broadcast shape for the mean, else 1.
double divisor(const Node* n, const Shape& a, const Shape& b) {
  if (reduction_of(n) != Reduction::mean) return 1;
  return static_cast<double>(a == b ? a.numel() : kernel::broadcast_shapes(a, b, "mse_loss").numel());
}
Var summed_to(const Var& x, const Shape& shape) {
  return x.shape() == shape ? x : sum_to(x, shape);
}
} // namespace

// mse_loss(a, b, reduction) = (a - b)^2, its mean, sum, or each element.
Var mse_loss(const Var& input, const Var& target, Reduction reduction) {
  Node* a = need(input, Op::mse_loss);
  Node* b = need(target, Op::mse_loss);
  if (!a->is_tensor() && !b->is_tensor()) { // scalar nodes: one element, whatever the reduction
    const double d = a->value - b->value;
    return detail::emit_scalar(Op::mse_loss, a, b, d * d);
  }
  Tensor keep_a, keep_b;
  const Tensor &av = value_ref(a, keep_a), &bv = value_ref(b, keep_b);
  if (!(av.shape() == bv.shape())) {
    const Shape both = kernel::broadcast_shapes(av.shape(), bv.shape(), "mse_loss"); // throws naming it
    // PyTorch's warning (once per call site there; once here until the handler changes), with the shape
    // they broadcast to.
    warn_once("mse_loss broadcast",
              fmt::format("mse_loss: Using a target size ({}) that is different to the input size ({}). This "
                          "will likely lead to incorrect results due to broadcasting (to {}). Please ensure "
                          "they have the same size.",
                          bv.shape().str(), av.shape().str(), both.str()));
  }
  Tensor value = reduction == Reduction::none
                     ? kernel::squared_error(av, bv)
                     : kernel::squared_error_sum(av, bv, reduction == Reduction::mean);
  const detail::Emitted e = detail::emit(Op::mse_loss, a, b, std::move(value));
  if (e.n) e.n->ext->ints.assign(1, static_cast<std::int64_t>(reduction));
  return e.var;
}
template <> const OpRule& detail::rule<Op::mse_loss>() {
  static constexpr OpRule r{
      {"mse_loss", "mse_loss(a, b)", 2, "2*(a-b)/n", "-2*(a-b)/n", "mse_loss(a, b, reduction)",
       "(a-b)^2 broadcasting, its mean (n: the element count), sum or none (n = 1), in one op"},
      [](Node* n, const Var& g) -> std::vector<Var> { // u = 2 (a - b) g / n, summed to each input's shape
        const Var a = ref(n->first), b = ref(n->in1());
        const Var d = a - b;
        const double k = n->is_tensor() ? divisor(n, a.shape(), b.shape()) : 1;
        const Var t = (k == 1 ? g : g / k) * d;
        const Var u = t + t;
        return {n->first->requires_grad() ? summed_to(u, a.shape()) : Var(),
                n->in1()->requires_grad() ? summed_to(-u, b.shape()) : Var()};
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        Tensor keep_a, keep_b;
        const Tensor &a = value_ref(n->first, keep_a), &b = value_ref(n->in1(), keep_b);
        std::array<Tensor, 2> r =
            kernel::squared_error_backward(g, a, b, divisor(n, a.shape(), b.shape()),
                                           {n->first->requires_grad(), n->in1()->requires_grad()});
        out[0] = std::move(r[0]);
        out[1] = std::move(r[1]);
        return true;
      }};
  return r;
}

} // namespace gg
