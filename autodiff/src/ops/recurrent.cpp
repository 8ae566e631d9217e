// The recurrent family: lstm_cell, an LSTM cell's update from its pre-activation gates in one op per
// output (c' and h', the node's part 0 and 1), with a fused kernel forward and backward; and
// lstm_layer, a whole LSTM layer over a sequence in one node (its products over all steps at once
// where time allows). Their differentiable VJPs recompute the forward with the ops, so gradients of
// gradients work.
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

// lstm_layer: one node for a layer's whole sequence, its value [L + 1, N, H] (each step's h, then the
// last c) and, in aux, the gates' activations and every step's c for the backward.
LSTMLayer lstm_layer(const Var& x, const Var& h0, const Var& c0, const Var& w_ih, const Var& w_hh,
                     const Var& b_ih, const Var& b_hh, bool reverse) {
  std::vector<Node*> inputs{need(x, Op::lstm_layer), need(h0, Op::lstm_layer), need(c0, Op::lstm_layer),
                            need(w_ih, Op::lstm_layer), need(w_hh, Op::lstm_layer)};
  if (b_ih.defined() != b_hh.defined())
    throw UsageError("lstm_layer: give both biases (b_ih and b_hh) or neither");
  if (b_ih.defined()) inputs.insert(inputs.end(), {b_ih.node(), b_hh.node()});
  const Shape xs = x.shape(), hs = h0.shape();
  const std::int64_t h = hs.rank() == 2 ? hs[1] : 0;
  const Shape state{xs.rank() == 3 ? xs[1] : 0, h}, gates_ih{4 * h, xs.rank() == 3 ? xs[2] : 0},
      gates_hh{4 * h, h}, bias{4 * h};
  const bool fits = xs.rank() == 3 && xs[0] > 0 && h > 0 && hs == state && c0.shape() == state &&
                    w_ih.shape() == gates_ih && w_hh.shape() == gates_hh &&
                    (!b_ih.defined() || (b_ih.shape() == bias && b_hh.shape() == bias));
  if (!fits)
    throw ShapeError(fmt::format(
        "lstm_layer: expected x [L, N, E] with L > 0, h0 and c0 [N, H], w_ih [4H, E], w_hh [4H, H] and "
        "biases [4H]; got x {}, h0 {}, c0 {}, w_ih {}, w_hh {}{}",
        xs.str(), hs.str(), c0.shape().str(), w_ih.shape().str(), w_hh.shape().str(),
        b_ih.defined() ? fmt::format(", b_ih {}, b_hh {}", b_ih.shape().str(), b_hh.shape().str()) : ""));
  for (Node* in : inputs)
    if (value_of(in).dtype() != x.dtype())
      throw ValueError(fmt::format("lstm_layer: the input is {} but an initial state, weight or bias is {}",
                                   dtype_name(x.dtype()), dtype_name(value_of(in).dtype())));
  const Tensor b =
      b_ih.defined() ? kernel::binary(kernel::Binary::add, b_ih.value(), b_hh.value()) : Tensor();
  Tensor saved;
  Tensor value =
      kernel::lstm_layer(x.value(), h0.value(), c0.value(), w_ih.value(), w_hh.value(), b, reverse, saved);
  auto e = detail::emit_variadic(Op::lstm_layer, inputs, std::move(value));
  if (e.n) {
    e.n->ext->ints = {reverse ? 1 : 0};
    e.n->ext->aux = std::move(saved);
  }
  const std::int64_t steps = xs[0];
  return {slice(e.var, 0, 0, steps), select(e.var, 0, reverse ? 0 : steps - 1), select(e.var, 0, steps)};
}

template <> const OpRule& detail::rule<Op::lstm_layer>() {
  static constexpr OpRule r{
      {"lstm_layer", "", -1,
       "back through time: each step's gates' gradient as lstm_cell's, h's through w_hh",
       "w_ih: sum over steps of dgates^T x; w_hh: of dgates^T h_prev; biases: of dgates",
       "lstm_layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)",
       "an LSTM layer over a sequence x [L, N, E] from (h0, c0): each step's h, then the last c, [L + 1, N, "
       "H]"},
      [](Node* n,
         const Var& g) -> std::vector<Var> { // the forward again with the ops, then back through time
        const Var x = ref(n->first), h0 = ref(n->input(1)), c0 = ref(n->input(2)), w_ih = ref(n->input(3)),
                  w_hh = ref(n->input(4));
        const bool bias = n->num_inputs() == 7, reverse = n->ext->ints[0] != 0;
        const Var b_ih = bias ? ref(n->input(5)) : Var(), b_hh = bias ? ref(n->input(6)) : Var();
        const std::int64_t steps = x.shape()[0], batch = x.shape()[1], e = x.shape()[2], h = h0.shape()[1];
        const auto at = [&](std::int64_t i) { return reverse ? steps - 1 - i : i; };
        struct Step {
          Var h_prev, c_prev, i, f, z, o, tc; // the state before, the gates' activations, tanh(c)
        };
        std::vector<Step> s(static_cast<std::size_t>(steps));
        Var hp = h0, cp = c0;
        for (std::int64_t k = 0; k < steps; ++k) {
          Step& st = s[static_cast<std::size_t>(at(k))];
          const Var gates = linear(select(x, 0, at(k)), w_ih, b_ih) + linear(hp, w_hh, b_hh);
          const auto part = [&](std::int64_t q) { return slice(gates, -1, q * h, (q + 1) * h); };
          st = {hp, cp, sigmoid(part(0)), sigmoid(part(1)), tanh(part(2)), sigmoid(part(3)), Var()};
          cp = st.f * cp + st.i * st.z;
          st.tc = tanh(cp);
          hp = st.o * st.tc;
        }
        Var dh, dc = select(g, 0, steps);
        std::vector<Var> dgates(static_cast<std::size_t>(steps)), h_prev(static_cast<std::size_t>(steps));
        for (std::int64_t k = steps - 1; k >= 0; --k) {
          const Step& st = s[static_cast<std::size_t>(at(k))];
          const Var dht = dh.defined() ? select(g, 0, at(k)) + dh : select(g, 0, at(k));
          const Var dct = dc + dht * st.o * (1.0 - st.tc * st.tc);
          dgates[static_cast<std::size_t>(at(k))] =
              concat({dct * st.z * st.i * (1.0 - st.i), dct * st.c_prev * st.f * (1.0 - st.f),
                      dct * st.i * (1.0 - st.z * st.z), dht * st.tc * st.o * (1.0 - st.o)},
                     -1);
          h_prev[static_cast<std::size_t>(at(k))] = st.h_prev;
          dc = dct * st.f;
          dh = matmul(dgates[static_cast<std::size_t>(at(k))], w_hh);
        }
        const Var dg = reshape(stack(dgates, 0), {steps * batch, 4 * h});
        const Var dgt = transpose(dg, 0, 1);
        std::vector<Var> r{reshape(matmul(dg, w_ih), {steps, batch, e}), dh, dc,
                           matmul(dgt, reshape(x, {steps * batch, e})),
                           matmul(dgt, reshape(stack(h_prev, 0), {steps * batch, h}))};
        if (bias) r.insert(r.end(), 2, sum(dg, 0));
        return r;
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const bool bias = n->num_inputs() == 7;
        const Tensor x = value_of(n->first);
        const std::array<bool, 6> needs{
            n->first->requires_grad(),
            n->input(1)->requires_grad(),
            n->input(2)->requires_grad(),
            n->input(3)->requires_grad(),
            n->input(4)->requires_grad(),
            bias && (n->input(5)->requires_grad() || n->input(6)->requires_grad())};
        std::array<Tensor, 6> r = kernel::lstm_layer_backward(
            g.to(x.dtype()), value_of(n), n->ext->aux, x, value_of(n->input(1)), value_of(n->input(2)),
            value_of(n->input(3)), value_of(n->input(4)), n->ext->ints[0] != 0, needs);
        for (std::size_t i = 0; i < 6; ++i)
          if (i < 5 ? needs[i] : bias) out[i] = r[i];
        if (bias) out[6] = r[5];
        return true;
      }};
  return r;
}

} // namespace gg
