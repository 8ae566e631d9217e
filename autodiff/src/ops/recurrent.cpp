// The recurrent family: lstm_cell, an LSTM cell's update from its pre-activation gates in one op per
// output (c' and h', the node's part 0 and 1), with a fused kernel forward and backward; its
// differentiable VJP recomputes the activations with the ops, so gradients of gradients work.
#include <autodiff/ops.hpp>

#include <fmt/format.h>

#include "../kernels/kernels.hpp"
#include "family.hpp"

namespace gg {

using detail::InputGrads;
using detail::need;
using detail::Node;
using detail::OpRule;
using detail::ref;
using detail::value_of;

namespace {
/// One of the cell's two nodes: part 0 is c' (inputs: gates, the previous c), part 1 is h' (inputs:
/// gates, c').
Var record_part(Node* gates, Node* c, int part) {
  auto e = detail::emit(Op::lstm_cell, gates, c, kernel::lstm_cell(value_of(gates), value_of(c), part));
  if (e.n) e.n->ext->ints = {part};
  return e.var;
}
Var zeros_like(const Var& x) {
  return Var::constant(Tensor::zeros(x.shape(), x.dtype()));
}
} // namespace

std::pair<Var, Var> lstm_cell(const Var& gates, const Var& c) {
  Node* g = need(gates, Op::lstm_cell);
  Node* cs = need(c, Op::lstm_cell);
  const Shape gs = value_of(g).shape(), s = value_of(cs).shape();
  bool fits = s.rank() >= 1 && gs.rank() == s.rank() && gs[gs.rank() - 1] == 4 * s[s.rank() - 1];
  for (int d = 0; fits && d + 1 < s.rank(); ++d) fits = gs[d] == s[d];
  if (!fits)
    throw ShapeError(fmt::format("lstm_cell: gates of shape {} and cell state of shape {} must be [..., 4H] "
                                 "and [..., H] with the same leading dimensions",
                                 gs.str(), s.str()));
  if (gates.dtype() != c.dtype())
    throw ValueError(fmt::format("lstm_cell: the gates are {} but the cell state is {}",
                                 dtype_name(gates.dtype()), dtype_name(c.dtype())));
  const Var c_next = record_part(g, cs, 0);
  return {record_part(g, c_next.node(), 1), c_next};
}

template <> const OpRule& detail::rule<Op::lstm_cell>() {
  static constexpr OpRule r{
      {"lstm_cell", "", 2,
       "c': g·tanh(z)·σ'(i), g·b·σ'(f), g·σ(i)·tanh'(z), 0; h' (b = c'): 0, 0, 0, g·tanh(b)·σ'(o)",
       "c': g·σ(f); h': g·σ(o)·(1 - tanh(b)²)", "lstm_cell(gates, c)",
       "an LSTM cell from its gates a = (i, f, z, o) (PyTorch's i, f, g, o) and cell state b: c' = σ(f)·b + "
       "σ(i)·tanh(z), then h' = σ(o)·tanh(c'), one node each"},
      [](Node* n, const Var& g) -> std::vector<Var> { // the activations recomputed with the ops
        const Var gates = ref(n->first), c = ref(n->input(1));
        const std::int64_t h = c.shape()[c.shape().rank() - 1];
        const auto part = [&](std::int64_t k) { return slice(gates, -1, k * h, (k + 1) * h); };
        if (n->ext->ints[0] == 0) {
          const Var i = sigmoid(part(0)), f = sigmoid(part(1)), t = tanh(part(2));
          return {concat({g * t * i * (1.0 - i), g * c * f * (1.0 - f), g * i * (1.0 - t * t),
                          zeros_like(part(3))},
                         -1),
                  g * f};
        }
        const Var o = sigmoid(part(3)), t = tanh(c);
        return {concat({zeros_like(slice(gates, -1, 0, 3 * h)), g * t * o * (1.0 - o)}, -1),
                g * o * (1.0 - t * t)};
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const Tensor c = value_of(n->input(1));
        std::array<Tensor, 2> r = kernel::lstm_cell_backward(
            g.to(c.dtype()), value_of(n->first), c, static_cast<int>(n->ext->ints[0]),
            {n->first->requires_grad(), n->input(1)->requires_grad()});
        out[0] = std::move(r[0]);
        out[1] = std::move(r[1]);
        return true;
      }};
  return r;
}

} // namespace gg
