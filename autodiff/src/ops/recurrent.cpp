// The recurrent family: lstm_cell, an LSTM cell's update from its pre-activation gates in one op per
// output (c' and h', the node's part 0 and 1), with a fused kernel forward and backward; and
// lstm_layer, gru_layer and rnn_layer, a whole LSTM, GRU or Elman RNN layer over a sequence in one node
// (its products over all steps at once where time allows). Their differentiable VJPs recompute the
// forward with the ops, so gradients of gradients work.
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

namespace {
/// The inputs of a whole-layer op (lstm_layer, gru_layer, rnn_layer: `op`, `gates` blocks of H in the
/// weights) in order, after checking them: x [L, N, E] with L > 0, h0 (and c0 for an LSTM, when
/// defined) [N, H], w_ih [gates H, E], w_hh [gates H, H], both biases [gates H] or neither, one dtype.
std::vector<Node*> recurrent_layer_inputs(Op op, std::int64_t gates, const Var& x, const Var& h0,
                                          const Var& c0, const Var& w_ih, const Var& w_hh, const Var& b_ih,
                                          const Var& b_hh) {
  const std::string_view name = detail::rule_of(op).info.name;
  std::vector<Node*> inputs{need(x, op), need(h0, op)};
  if (c0.defined()) inputs.push_back(need(c0, op));
  inputs.insert(inputs.end(), {need(w_ih, op), need(w_hh, op)});
  if (b_ih.defined() != b_hh.defined())
    throw UsageError(fmt::format("{}: give both biases (b_ih and b_hh) or neither", name));
  if (b_ih.defined()) inputs.insert(inputs.end(), {b_ih.node(), b_hh.node()});
  const Shape xs = x.shape(), hs = h0.shape();
  const std::int64_t h = hs.rank() == 2 ? hs[1] : 0;
  const Shape state{xs.rank() == 3 ? xs[1] : 0, h}, weights_ih{gates * h, xs.rank() == 3 ? xs[2] : 0},
      weights_hh{gates * h, h}, bias{gates * h};
  const bool fits = xs.rank() == 3 && xs[0] > 0 && h > 0 && hs == state &&
                    (!c0.defined() || c0.shape() == state) && w_ih.shape() == weights_ih &&
                    w_hh.shape() == weights_hh &&
                    (!b_ih.defined() || (b_ih.shape() == bias && b_hh.shape() == bias));
  if (!fits) {
    const std::string g = gates == 1 ? "" : std::to_string(gates);
    throw ShapeError(fmt::format(
        "{}: expected x [L, N, E] with L > 0, h0{} [N, H], w_ih [{}H, E], w_hh [{}H, H] and biases [{}H]; "
        "got x "
        "{}, h0 {}{}, w_ih {}, w_hh {}{}",
        name, c0.defined() ? " and c0" : "", g, g, g, xs.str(), hs.str(),
        c0.defined() ? fmt::format(", c0 {}", c0.shape().str()) : "", w_ih.shape().str(), w_hh.shape().str(),
        b_ih.defined() ? fmt::format(", b_ih {}, b_hh {}", b_ih.shape().str(), b_hh.shape().str()) : ""));
  }
  for (Node* in : inputs)
    if (value_of(in).dtype() != x.dtype())
      throw ValueError(fmt::format("{}: the input is {} but an initial state, weight or bias is {}", name,
                                   dtype_name(x.dtype()), dtype_name(value_of(in).dtype())));
  return inputs;
}
/// A whole-layer op's node from its inputs and value; the node keeps {reverse, more...} and aux.
Var record_recurrent_layer(Op op, const std::vector<Node*>& inputs, Tensor value,
                           std::vector<std::int64_t> ints, Tensor aux = Tensor()) {
  auto e = detail::emit_variadic(op, inputs, std::move(value));
  if (e.n) {
    e.n->ext->ints = std::move(ints);
    e.n->ext->aux = std::move(aux);
  }
  return e.var;
}
} // namespace

// lstm_layer: one node for a layer's whole sequence, its value [L + 1, N, H] (each step's h, then the
// last c) and, in aux, the gates' activations and every step's c for the backward.
LSTMLayer lstm_layer(const Var& x, const Var& h0, const Var& c0, const Var& w_ih, const Var& w_hh,
                     const Var& b_ih, const Var& b_hh, bool reverse) {
  need(c0, Op::lstm_layer);
  const std::vector<Node*> inputs =
      recurrent_layer_inputs(Op::lstm_layer, 4, x, h0, c0, w_ih, w_hh, b_ih, b_hh);
  const Tensor b =
      b_ih.defined() ? kernel::binary(kernel::Binary::add, b_ih.value(), b_hh.value()) : Tensor();
  Tensor saved;
  Tensor value =
      kernel::lstm_layer(x.value(), h0.value(), c0.value(), w_ih.value(), w_hh.value(), b, reverse, saved);
  const Var out =
      record_recurrent_layer(Op::lstm_layer, inputs, std::move(value), {reverse ? 1 : 0}, std::move(saved));
  const std::int64_t steps = x.shape()[0];
  return {slice(out, 0, 0, steps), select(out, 0, reverse ? 0 : steps - 1), select(out, 0, steps)};
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

namespace {
/// The layer's output (each step's h, the node) and its last state: the step that ran last.
RecurrentLayer recurrent_layer_parts(const Var& out, bool reverse) {
  return {out, select(out, 0, reverse ? 0 : out.shape()[0] - 1)};
}
/// The whole-layer ops' differentiable rules share this: the inputs' Vars (x, h0, w_ih, w_hh, and b_ih,
/// b_hh when the node has them) and the sizes.
struct LayerRefs {
  Var x, h0, w_ih, w_hh, b_ih, b_hh;
  bool bias, reverse;
  std::int64_t steps, batch, e, h;
  std::int64_t at(std::int64_t i) const { return reverse ? steps - 1 - i : i; }
  explicit LayerRefs(Node* n)
      : x(ref(n->first)), h0(ref(n->input(1))), w_ih(ref(n->input(2))), w_hh(ref(n->input(3))),
        b_ih(n->num_inputs() == 6 ? ref(n->input(4)) : Var()),
        b_hh(n->num_inputs() == 6 ? ref(n->input(5)) : Var()), bias(n->num_inputs() == 6),
        reverse(n->ext->ints[0] != 0), steps(x.shape()[0]), batch(x.shape()[1]), e(x.shape()[2]),
        h(h0.shape()[1]) {}
  /// The gradients of x, h0, the weights and the biases from every step's gradients of x's share
  /// (dgx, [N, gates H] each, in sequence order) and of h's (dgh), each step's previous h, and h0's.
  std::vector<Var> gradients(const std::vector<Var>& dgx, const std::vector<Var>& dgh,
                             const std::vector<Var>& h_prev, const Var& dh0) const {
    const std::int64_t g = dgx[0].shape()[1];
    const Var dx = reshape(stack(dgx, 0), {steps * batch, g}),
              dhh = reshape(stack(dgh, 0), {steps * batch, g});
    std::vector<Var> r{reshape(matmul(dx, w_ih), {steps, batch, e}), dh0,
                       matmul(transpose(dx, 0, 1), reshape(x, {steps * batch, e})),
                       matmul(transpose(dhh, 0, 1), reshape(stack(h_prev, 0), {steps * batch, h}))};
    if (bias) r.insert(r.end(), {sum(dx, 0), sum(dhh, 0)});
    return r;
  }
};
/// 1 where y > 0, else 0: relu's slope at its output y, a constant (a kink is not differentiated again).
Var relu_slope(const Var& y) {
  const Tensor v = y.value();
  Tensor m = Tensor::zeros(v.shape(), v.dtype());
  for (std::int64_t i = 0; i < v.numel(); ++i)
    if (v.flat(i) > 0) m.set_flat(i, 1);
  return Var::constant(m);
}
} // namespace

// gru_layer: one node for a layer's whole sequence, its value each step's h [L, N, H] and, in aux, the
// gates' activations and each step's W_hn h + b_hn for the backward.
RecurrentLayer gru_layer(const Var& x, const Var& h0, const Var& w_ih, const Var& w_hh, const Var& b_ih,
                         const Var& b_hh, bool reverse) {
  const std::vector<Node*> inputs =
      recurrent_layer_inputs(Op::gru_layer, 3, x, h0, Var(), w_ih, w_hh, b_ih, b_hh);
  Tensor saved;
  Tensor value = kernel::gru_layer(x.value(), h0.value(), w_ih.value(), w_hh.value(),
                                   b_ih.defined() ? b_ih.value() : Tensor(),
                                   b_hh.defined() ? b_hh.value() : Tensor(), reverse, saved);
  return recurrent_layer_parts(
      record_recurrent_layer(Op::gru_layer, inputs, std::move(value), {reverse ? 1 : 0}, std::move(saved)),
      reverse);
}

template <> const OpRule& detail::rule<Op::gru_layer>() {
  static constexpr OpRule r{
      {"gru_layer", "", -1,
       "back through time: dn = dh (1 - z) tanh'(n), dz = dh (h_prev - n) σ'(z), dr = dn hn σ'(r); h_prev's: "
       "dh z + [dr, dz, dn r] w_hh",
       "w_ih: sum over steps of [dr, dz, dn]^T x; w_hh: of [dr, dz, dn r]^T h_prev; biases: of each",
       "gru_layer(x, h0, w_ih, w_hh, b_ih, b_hh, reverse)",
       "a GRU layer over a sequence x [L, N, E] from h0 (gates r, z, n; hn = W_hn h + b_hn): "
       "each step's h, [L, N, H]"},
      [](Node* n,
         const Var& g) -> std::vector<Var> { // the forward again with the ops, then back through time
        const LayerRefs l(n);
        struct Step {
          Var h_prev, r, z, n, hn; // the state before, the gates' activations, W_hn h + b_hn
        };
        std::vector<Step> s(static_cast<std::size_t>(l.steps));
        Var hp = l.h0;
        for (std::int64_t k = 0; k < l.steps; ++k) {
          const Var xw = linear(select(l.x, 0, l.at(k)), l.w_ih, l.b_ih), hw = linear(hp, l.w_hh, l.b_hh);
          const auto part = [&](const Var& v, std::int64_t q) {
            return slice(v, -1, q * l.h, (q + 1) * l.h);
          };
          Step& st = s[static_cast<std::size_t>(l.at(k))];
          st = {hp, sigmoid(part(xw, 0) + part(hw, 0)), sigmoid(part(xw, 1) + part(hw, 1)), Var(),
                part(hw, 2)};
          st.n = tanh(part(xw, 2) + st.r * st.hn);
          hp = st.n + st.z * (hp - st.n);
        }
        Var dh;
        std::vector<Var> dgx(s.size()), dgh(s.size()), h_prev(s.size());
        for (std::int64_t k = l.steps - 1; k >= 0; --k) {
          const auto t = static_cast<std::size_t>(l.at(k));
          const Step& st = s[t];
          const Var dht = dh.defined() ? select(g, 0, l.at(k)) + dh : select(g, 0, l.at(k));
          const Var dn = dht * (1.0 - st.z) * (1.0 - st.n * st.n);
          const Var dr = dn * st.hn * st.r * (1.0 - st.r),
                    dz = dht * (st.h_prev - st.n) * st.z * (1.0 - st.z);
          dgx[t] = concat({dr, dz, dn}, -1);
          dgh[t] = concat({dr, dz, dn * st.r}, -1);
          h_prev[t] = st.h_prev;
          dh = dht * st.z + matmul(dgh[t], l.w_hh);
        }
        return l.gradients(dgx, dgh, h_prev, dh);
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const bool bias = n->num_inputs() == 6;
        const Tensor x = value_of(n->first);
        std::array<bool, 6> needs{};
        for (int i = 0; i < n->num_inputs(); ++i)
          needs[static_cast<std::size_t>(i)] = n->input(i)->requires_grad();
        std::array<Tensor, 6> r = kernel::gru_layer_backward(
            g.to(x.dtype()), value_of(n), n->ext->aux, x, value_of(n->input(1)), value_of(n->input(2)),
            value_of(n->input(3)), n->ext->ints[0] != 0, needs);
        for (std::size_t i = 0; i < (bias ? 6u : 4u); ++i)
          if (needs[i]) out[i] = std::move(r[i]);
        return true;
      }};
  return r;
}

// rnn_layer: one node for a layer's whole sequence, its value each step's h [L, N, H] (all its
// backward needs).
RecurrentLayer rnn_layer(const Var& x, const Var& h0, const Var& w_ih, const Var& w_hh, const Var& b_ih,
                         const Var& b_hh, std::string_view nonlinearity, bool reverse) {
  if (nonlinearity != "tanh" && nonlinearity != "relu")
    throw ValueError(fmt::format("rnn_layer: unknown nonlinearity '{}' (tanh or relu)", nonlinearity));
  const bool relu = nonlinearity == "relu";
  const std::vector<Node*> inputs =
      recurrent_layer_inputs(Op::rnn_layer, 1, x, h0, Var(), w_ih, w_hh, b_ih, b_hh);
  const Tensor b =
      b_ih.defined() ? kernel::binary(kernel::Binary::add, b_ih.value(), b_hh.value()) : Tensor();
  Tensor value = kernel::rnn_layer(x.value(), h0.value(), w_ih.value(), w_hh.value(), b, relu, reverse);
  return recurrent_layer_parts(
      record_recurrent_layer(Op::rnn_layer, inputs, std::move(value), {reverse ? 1 : 0, relu ? 1 : 0}),
      reverse);
}

template <> const OpRule& detail::rule<Op::rnn_layer>() {
  static constexpr OpRule r{
      {"rnn_layer", "", -1,
       "back through time: da = dh act'(a) (tanh: 1 - h², relu: h > 0), h_prev's: da w_hh",
       "w_ih: sum over steps of da^T x; w_hh: of da^T h_prev; biases: of da",
       "rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, reverse)",
       "an Elman RNN layer over a sequence x [L, N, E] from h0: h = act(x w_ih^T + b_ih + "
       "h_prev w_hh^T + b_hh), act tanh or relu; each step's h, [L, N, H]"},
      [](Node* n,
         const Var& g) -> std::vector<Var> { // the forward again with the ops, then back through time
        const LayerRefs l(n);
        const bool relu = n->ext->ints[1] != 0;
        std::vector<Var> hs(static_cast<std::size_t>(l.steps)), h_prev(hs.size()), da(hs.size());
        Var hp = l.h0;
        for (std::int64_t k = 0; k < l.steps; ++k) {
          const auto t = static_cast<std::size_t>(l.at(k));
          const Var a = linear(select(l.x, 0, l.at(k)), l.w_ih, l.b_ih) + linear(hp, l.w_hh, l.b_hh);
          h_prev[t] = hp;
          hs[t] = hp = relu ? gg::relu(a) : tanh(a);
        }
        Var dh;
        for (std::int64_t k = l.steps - 1; k >= 0; --k) {
          const auto t = static_cast<std::size_t>(l.at(k));
          const Var dht = dh.defined() ? select(g, 0, l.at(k)) + dh : select(g, 0, l.at(k));
          da[t] = relu ? dht * relu_slope(hs[t]) : dht * (1.0 - hs[t] * hs[t]);
          dh = matmul(da[t], l.w_hh);
        }
        return l.gradients(da, da, h_prev, dh);
      },
      [](Node* n, const Tensor& g, InputGrads& out) {
        const bool bias = n->num_inputs() == 6;
        const Tensor x = value_of(n->first);
        const std::array<bool, 5> needs{n->first->requires_grad(), n->input(1)->requires_grad(),
                                        n->input(2)->requires_grad(), n->input(3)->requires_grad(),
                                        bias &&
                                            (n->input(4)->requires_grad() || n->input(5)->requires_grad())};
        std::array<Tensor, 5> r = kernel::rnn_layer_backward(
            g.to(x.dtype()), value_of(n), x, value_of(n->input(1)), value_of(n->input(2)),
            value_of(n->input(3)), n->ext->ints[1] != 0, n->ext->ints[0] != 0, needs);
        for (std::size_t i = 0; i < 4; ++i)
          if (needs[i]) out[i] = std::move(r[i]);
        if (needs[4]) out[4] = out[5] = r[4];
        return true;
      }};
  return r;
}

} // namespace gg
