// The softmax family along an axis: softmax, log_softmax and logsumexp, each lane computed with its
// maximum subtracted (no overflow). Each op: its public function and its rule (table row, the
// differentiable VJP, the fast tensor backward).
#include <autodiff/ops.hpp>

#include "../kernels/kernels.hpp"
#include "family.hpp"

namespace gg {

using detail::InputGrads;
using detail::Node;
using detail::OpRule;
using detail::ref;

namespace {
/// softmax and log_softmax's fused backward (kernel::softmax_backward), along the node's axis.
bool softmax_values(Node* n, const Tensor& g, InputGrads& out) {
  out[0] =
      kernel::softmax_backward(g, n->ext->value, static_cast<int>(n->ext->ints[0]), n->op == Op::log_softmax);
  return true;
}
} // namespace

// softmax(a, axis) = exp(a) / sum(exp(a)).
Var softmax(const Var& x, int axis) {
  return detail::record_along_axis(Op::softmax, x, axis, false,
                                   [](const Tensor& v, int ax, bool) { return kernel::softmax(v, ax); });
}
template <> const OpRule& detail::rule<Op::softmax>() {
  static constexpr OpRule r{
      {"softmax", "", 1, "out*(g - sum(g*out))", "", "softmax(a, axis)", "exp(a) / sum(exp(a)), stable"},
      [](Node* n, const Var& g) -> std::vector<Var> {
        const Var out = ref(n);
        return {out * (g - sum(g * out, static_cast<int>(n->ext->ints[0]), true))};
      },
      &softmax_values};
  return r;
}

// log_softmax(a, axis) = a - logsumexp(a).
Var log_softmax(const Var& x, int axis) {
  return detail::record_along_axis(Op::log_softmax, x, axis, false,
                                   [](const Tensor& v, int ax, bool) { return kernel::log_softmax(v, ax); });
}
template <> const OpRule& detail::rule<Op::log_softmax>() {
  static constexpr OpRule r{
      {"log_softmax", "", 1, "g - exp(out)*sum(g)", "", "log_softmax(a, axis)", "a - logsumexp(a), stable"},
      [](Node* n, const Var& g) -> std::vector<Var> {
        return {g - exp(ref(n)) * sum(g, static_cast<int>(n->ext->ints[0]), true)};
      },
      &softmax_values};
  return r;
}

// logsumexp(a, axis, keepdim) = log(sum(exp(a))).
Var logsumexp(const Var& x, int axis, bool keepdim) {
  return detail::record_along_axis(Op::logsumexp, x, axis, keepdim, &kernel::logsumexp);
}
template <> const OpRule& detail::rule<Op::logsumexp>() {
  static constexpr OpRule r{
      {"logsumexp", "", 1, "exp(a - out)", "", "logsumexp(a, axis, keepdim)", "log(sum(exp(a))), stable"},
      [](Node* n, const Var& g) -> std::vector<Var> { // g * exp(a - out), out and g kept along the axis
        const Var a = ref(n->first), out = ref(n);
        const Shape sa = a.shape();
        const int axis = static_cast<int>(n->ext->ints[0]);
        const bool keepdim = n->ext->ints[1] != 0;
        return {broadcast_to(detail::keep_axis(g, sa, axis, keepdim), sa) *
                exp(a - detail::keep_axis(out, sa, axis, keepdim))};
      }};
  return r;
}

} // namespace gg
