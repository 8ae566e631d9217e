// The recurrent layers and cells, written with autodiff's ops: a layer and direction is one
// lstm_layer, gru_layer or rnn_layer op over the whole sequence; one cell step from the ops (linear,
// sigmoid, tanh, relu, slice, lstm_cell) serves the cells and the unrolled layers (a picture's).
#include <nn/init.hpp>
#include <nn/layers.hpp>
#include <nn/recurrent.hpp>

#include <cmath>

#include <fmt/format.h>

#include "layer_checks.hpp"

namespace gg::nn {

namespace {

using detail::CellKind;
using detail::require_positive;

std::int64_t gate_count(CellKind kind) {
  switch (kind) {
  case CellKind::lstm: return 4;
  case CellKind::gru: return 3;
  case CellKind::rnn_tanh:
  case CellKind::rnn_relu: break;
  }
  return 1;
}

const char* kind_name(CellKind kind) {
  switch (kind) {
  case CellKind::lstm: return "LSTM";
  case CellKind::gru: return "GRU";
  case CellKind::rnn_tanh:
  case CellKind::rnn_relu: break;
  }
  return "RNN";
}

CellKind rnn_kind(std::string_view nonlinearity, std::string_view layer) {
  if (nonlinearity == "tanh") return CellKind::rnn_tanh;
  if (nonlinearity == "relu") return CellKind::rnn_relu;
  throw ValueError(fmt::format("{}: unknown nonlinearity '{}' (tanh or relu)", layer, nonlinearity));
}

/// U(-1/sqrt(hidden), 1/sqrt(hidden)): PyTorch's initialisation of every recurrent parameter.
Tensor recurrent_uniform(const Shape& shape, std::int64_t hidden, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  const double bound = 1 / std::sqrt(static_cast<double>(hidden));
  init::uniform(t, -bound, bound);
  return t;
}

Var gate(const Var& gates, std::int64_t k, std::int64_t hidden) {
  return slice(gates, -1, k * hidden, (k + 1) * hidden);
}

/// One step of the recurrence: xw is the step's x W_ih^T + b_ih, s.h (and s.c for an LSTM) the
/// state. Gate order as PyTorch: LSTM i, f, g, o; GRU r, z, n with the reset gate applied to
/// W_hn h + b_hn.
LSTMState cell_step(CellKind kind, const Var& xw, const LSTMState& s, const Var& w_hh, const Var& b_hh,
                    std::int64_t hidden) {
  const Var hw = linear(s.h, w_hh, b_hh);
  switch (kind) {
  case CellKind::rnn_tanh: return {tanh(xw + hw), {}};
  case CellKind::rnn_relu: return {relu(xw + hw), {}};
  case CellKind::lstm: { // one fused op (docs/performance.md: 13 ops per step before)
    auto hc = lstm_cell(xw + hw, s.c);
    return {std::move(hc.first), std::move(hc.second)};
  }
  case CellKind::gru: {
    const Var r = sigmoid(gate(xw, 0, hidden) + gate(hw, 0, hidden));
    const Var z = sigmoid(gate(xw, 1, hidden) + gate(hw, 1, hidden));
    const Var n = tanh(gate(xw, 2, hidden) + r * gate(hw, 2, hidden));
    return {n + z * (s.h - n), {}}; // (1 - z) * n + z * h
  }
  }
  return {};
}

/// s, or zeros of shape when s is undefined.
Var or_zeros(const Var& s, const Shape& shape, DType dtype) {
  return s.defined() ? s : Var::constant(Tensor::zeros(shape, dtype));
}

void check_dtype(const Var& v, DType dtype, std::string_view what, const std::string& layer) {
  if (v.dtype() != dtype)
    throw ValueError(fmt::format("{}: {} is {} but the parameters are {}", layer, what, dtype_name(v.dtype()),
                                 dtype_name(dtype)));
}

} // namespace

// ---------------------------------------------------------------------------------------------
// RNN, LSTM, GRU

RNNBase::RNNBase(Kind kind, std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options)
    : kind_(kind), input_size_(input_size), hidden_size_(hidden_size), options_(std::move(options)),
      rng_(options_.seed) {
  const char* name = kind_name(kind);
  require_positive(input_size, "input_size", name);
  require_positive(hidden_size, "hidden_size", name);
  require_positive(options_.num_layers, "num_layers", name);
  if (!(options_.dropout >= 0 && options_.dropout <= 1))
    throw ValueError(fmt::format("{}: dropout must be in [0, 1], got {}", name, options_.dropout));
  if (kind == Kind::lstm || kind == Kind::gru) {
    if (options_.nonlinearity != "tanh")
      throw ValueError(fmt::format("{}: nonlinearity '{}' applies to RNN only", name, options_.nonlinearity));
  } else {
    rnn_kind(options_.nonlinearity, name);
  }
  // PyTorch's order: per layer, the forward direction then the reverse; w_ih, w_hh, b_ih, b_hh.
  const std::int64_t gates = gate_count(kind) * hidden_size, dirs = options_.bidirectional ? 2 : 1;
  for (std::int64_t layer = 0; layer < options_.num_layers; ++layer)
    for (std::int64_t dir = 0; dir < dirs; ++dir) {
      const std::string suffix = fmt::format("_l{}{}", layer, dir == 1 ? "_reverse" : "");
      const std::int64_t in = layer == 0 ? input_size : dirs * hidden_size;
      std::vector<Var> w;
      w.push_back(register_parameter("weight_ih" + suffix,
                                     recurrent_uniform({gates, in}, hidden_size, options_.dtype)));
      w.push_back(register_parameter("weight_hh" + suffix,
                                     recurrent_uniform({gates, hidden_size}, hidden_size, options_.dtype)));
      if (options_.bias) {
        w.push_back(
            register_parameter("bias_ih" + suffix, recurrent_uniform({gates}, hidden_size, options_.dtype)));
        w.push_back(
            register_parameter("bias_hh" + suffix, recurrent_uniform({gates}, hidden_size, options_.dtype)));
      } else {
        w.resize(4);
      }
      weights_.push_back(std::move(w));
    }
}

std::string RNNBase::describe() const {
  std::string s = fmt::format("{}({}, {}", kind_name(kind_), input_size_, hidden_size_);
  if (options_.num_layers != 1) s += fmt::format(", num_layers={}", options_.num_layers);
  if (kind_ == Kind::rnn_relu) s += ", nonlinearity=relu";
  if (!options_.bias) s += ", bias=false";
  if (options_.batch_first) s += ", batch_first=true";
  if (options_.dropout != 0) s += fmt::format(", dropout={}", options_.dropout);
  if (options_.bidirectional) s += ", bidirectional=true";
  return s + ")";
}

Var RNNBase::forward(const Var& x) {
  return run(x, {}).first;
}

std::pair<Var, LSTMState> RNNBase::run(const Var& x_in, const LSTMState& initial) {
  const std::string name = describe();
  const Shape xs = x_in.shape();
  const bool batched = xs.rank() == 3;
  if ((xs.rank() != 2 && xs.rank() != 3) || xs[xs.rank() - 1] != input_size_)
    throw ShapeError(fmt::format("{}: expected input {} (or [L, {}] unbatched), got shape {}", name,
                                 options_.batch_first ? fmt::format("[N, L, {}]", input_size_)
                                                      : fmt::format("[L, N, {}]", input_size_),
                                 input_size_, xs.str()));
  const DType dtype = options_.dtype;
  check_dtype(x_in, dtype, "the input", name);
  // Time first and batched from here on: [L, N, features].
  Var x = batched ? (options_.batch_first ? transpose(x_in, 0, 1) : x_in) : reshape(x_in, {xs[0], 1, xs[1]});
  const std::int64_t steps = x.shape()[0], batch = x.shape()[1], hidden = hidden_size_;
  if (steps == 0) // as PyTorch: a recurrence needs a first step
    throw ShapeError(fmt::format("{}: the input sequence of shape {} has no steps", name, xs.str()));
  const std::int64_t dirs = options_.bidirectional ? 2 : 1, stacked = options_.num_layers * dirs;
  const Shape state_shape = batched ? Shape{stacked, batch, hidden} : Shape{stacked, hidden};
  const bool lstm = kind_ == Kind::lstm;
  auto initial_state = [&](const Var& s, const char* what) {
    if (!s.defined()) return s;
    if (!(s.shape() == state_shape))
      throw ShapeError(fmt::format("{}: expected {} of shape {} for input of shape {}, got {}", name, what,
                                   state_shape.str(), xs.str(), s.shape().str()));
    check_dtype(s, dtype, what, name);
    return batched ? s : reshape(s, {stacked, 1, hidden});
  };
  const Var h0 = initial_state(initial.h, "h_0");
  const Var c0 = lstm ? initial_state(initial.c, "c_0") : Var();
  if (!lstm && initial.c.defined()) throw UsageError(fmt::format("{}: only an LSTM has a cell state", name));

  std::vector<Var> h_n, c_n;
  const auto initial_for = [&](const Var& s0, std::int64_t k) {
    return or_zeros(s0.defined() ? select(s0, 0, k) : Var(), {batch, hidden}, dtype);
  };
  const auto drop_after = [&](std::int64_t layer) {
    return is_training() && options_.dropout > 0 && layer + 1 < options_.num_layers;
  };
  Var y;
  if (!options_.unrolled) { // a layer and direction is one lstm_layer, gru_layer or rnn_layer node
    y = x;
    for (std::int64_t layer = 0; layer < options_.num_layers; ++layer) {
      std::vector<Var> outputs;
      for (std::int64_t dir = 0; dir < dirs; ++dir) {
        const std::int64_t k = layer * dirs + dir;
        const std::vector<Var>& w = weights_[static_cast<std::size_t>(k)];
        const Var h_k = initial_for(h0, k);
        if (lstm) {
          LSTMLayer r = lstm_layer(y, h_k, initial_for(c0, k), w[0], w[1], w[2], w[3], dir == 1);
          outputs.push_back(std::move(r.output));
          h_n.push_back(std::move(r.h));
          c_n.push_back(std::move(r.c));
        } else {
          RecurrentLayer r = kind_ == Kind::gru
                                 ? gru_layer(y, h_k, w[0], w[1], w[2], w[3], dir == 1)
                                 : rnn_layer(y, h_k, w[0], w[1], w[2], w[3],
                                             kind_ == Kind::rnn_relu ? "relu" : "tanh", dir == 1);
          outputs.push_back(std::move(r.output));
          h_n.push_back(std::move(r.h));
        }
      }
      y = dirs == 1 ? outputs[0] : concat(outputs, -1);
      if (drop_after(layer)) y = gg::dropout(y, options_.dropout, true, rng_);
    }
  } else {
    // Each step's input is its own Var, split from x once and passed from layer to layer, so that
    // backward never scatters a step's gradient into a zero tensor the size of the whole sequence (a
    // slice's adjoint): that made a sequence's backward quadratic in its length.
    std::vector<Var> inputs(static_cast<std::size_t>(steps));
    for (std::int64_t t = 0; t < steps; ++t) inputs[static_cast<std::size_t>(t)] = select(x, 0, t);
    for (std::int64_t layer = 0; layer < options_.num_layers; ++layer) {
      std::vector<std::vector<Var>> outputs(static_cast<std::size_t>(dirs), std::vector<Var>(inputs.size()));
      for (std::int64_t dir = 0; dir < dirs; ++dir) {
        const std::int64_t k = layer * dirs + dir;
        const std::vector<Var>& w = weights_[static_cast<std::size_t>(k)];
        LSTMState s{initial_for(h0, k), lstm ? initial_for(c0, k) : Var()};
        for (std::int64_t i = 0; i < steps; ++i) {
          const auto t = static_cast<std::size_t>(dir == 0 ? i : steps - 1 - i);
          s = cell_step(kind_, linear(inputs[t], w[0], w[2]), s, w[1], w[3], hidden);
          outputs[static_cast<std::size_t>(dir)][t] = s.h;
        }
        h_n.push_back(s.h);
        if (lstm) c_n.push_back(s.c);
      }
      for (std::size_t t = 0; t < inputs.size(); ++t) {
        inputs[t] = dirs == 1 ? outputs[0][t] : concat({outputs[0][t], outputs[1][t]}, -1);
        if (drop_after(layer)) inputs[t] = gg::dropout(inputs[t], options_.dropout, true, rng_);
      }
    }
    y = stack(inputs, 0);
  }
  const Var out =
      batched ? (options_.batch_first ? transpose(y, 0, 1) : y) : reshape(y, {steps, dirs * hidden});
  auto final_state = [&](const std::vector<Var>& parts) {
    const Var s = stack(parts, 0);
    return batched ? s : reshape(s, {stacked, hidden});
  };
  return {out, {final_state(h_n), lstm ? final_state(c_n) : Var()}};
}

RNN::RNN(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options)
    : RNNBase(rnn_kind(options.nonlinearity, "RNN"), input_size, hidden_size, options) {}

RNN::RNN(std::int64_t input_size, std::int64_t hidden_size, std::int64_t num_layers, std::string nonlinearity,
         bool bias, bool batch_first, double dropout, bool bidirectional, DType dtype)
    : RNN(input_size, hidden_size,
          RecurrentOptions{num_layers, std::move(nonlinearity), bias, batch_first, dropout, bidirectional,
                           dtype}) {}

std::pair<Var, Var> RNN::operator()(const Var& x, const Var& h0) {
  auto [out, state] = scoped([&] { return run(x, {h0, {}}); });
  return {out, state.h};
}

LSTM::LSTM(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options)
    : RNNBase(Kind::lstm, input_size, hidden_size, std::move(options)) {}

LSTM::LSTM(std::int64_t input_size, std::int64_t hidden_size, std::int64_t num_layers, bool bias,
           bool batch_first, double dropout, bool bidirectional, DType dtype)
    : LSTM(input_size, hidden_size,
           RecurrentOptions{num_layers, "tanh", bias, batch_first, dropout, bidirectional, dtype}) {}

std::pair<Var, LSTMState> LSTM::operator()(const Var& x, const LSTMState& initial) {
  return scoped([&] { return run(x, initial); });
}

GRU::GRU(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options)
    : RNNBase(Kind::gru, input_size, hidden_size, std::move(options)) {}

GRU::GRU(std::int64_t input_size, std::int64_t hidden_size, std::int64_t num_layers, bool bias,
         bool batch_first, double dropout, bool bidirectional, DType dtype)
    : GRU(input_size, hidden_size,
          RecurrentOptions{num_layers, "tanh", bias, batch_first, dropout, bidirectional, dtype}) {}

std::pair<Var, Var> GRU::operator()(const Var& x, const Var& h0) {
  auto [out, state] = scoped([&] { return run(x, {h0, {}}); });
  return {out, state.h};
}

// ---------------------------------------------------------------------------------------------
// The cells

RNNCellBase::RNNCellBase(Kind kind, std::int64_t input_size, std::int64_t hidden_size, bool bias, DType dtype)
    : kind_(kind), input_size_(input_size), hidden_size_(hidden_size) {
  const std::string name = std::string(kind_name(kind)) + "Cell";
  require_positive(input_size, "input_size", name);
  require_positive(hidden_size, "hidden_size", name);
  const std::int64_t gates = gate_count(kind) * hidden_size;
  weight_ih = register_parameter("weight_ih", recurrent_uniform({gates, input_size}, hidden_size, dtype));
  weight_hh = register_parameter("weight_hh", recurrent_uniform({gates, hidden_size}, hidden_size, dtype));
  if (bias) {
    bias_ih = register_parameter("bias_ih", recurrent_uniform({gates}, hidden_size, dtype));
    bias_hh = register_parameter("bias_hh", recurrent_uniform({gates}, hidden_size, dtype));
  }
}

std::string RNNCellBase::describe() const {
  return fmt::format("{}Cell({}, {}{}{})", kind_name(kind_), input_size_, hidden_size_,
                     bias_ih.defined() ? "" : ", bias=false",
                     kind_ == Kind::rnn_relu ? ", nonlinearity=relu" : "");
}

Var RNNCellBase::forward(const Var& x) {
  return step(x, {}).h;
}

LSTMState RNNCellBase::step(const Var& x, const LSTMState& state) {
  const std::string name = describe();
  const Shape xs = x.shape();
  if ((xs.rank() != 1 && xs.rank() != 2) || xs[xs.rank() - 1] != input_size_)
    throw ShapeError(fmt::format("{}: expected input [N, {}] (or [{}] unbatched), got shape {}", name,
                                 input_size_, input_size_, xs.str()));
  const DType dtype = weight_ih.dtype();
  check_dtype(x, dtype, "the input", name);
  const bool batched = xs.rank() == 2;
  const Shape state_shape = batched ? Shape{xs[0], hidden_size_} : Shape{hidden_size_};
  const bool lstm = kind_ == Kind::lstm;
  auto check_state = [&](const Var& s, const char* what) {
    if (!s.defined()) return Var::constant(Tensor::zeros(state_shape, dtype));
    if (!(s.shape() == state_shape))
      throw ShapeError(fmt::format("{}: expected {} of shape {} for input of shape {}, got {}", name, what,
                                   state_shape.str(), xs.str(), s.shape().str()));
    check_dtype(s, dtype, what, name);
    return s;
  };
  const LSTMState s{check_state(state.h, "h"), lstm ? check_state(state.c, "c") : Var()};
  return cell_step(kind_, linear(x, weight_ih, bias_ih), s, weight_hh, bias_hh, hidden_size_);
}

RNNCell::RNNCell(std::int64_t input_size, std::int64_t hidden_size, bool bias, std::string_view nonlinearity,
                 DType dtype)
    : RNNCellBase(rnn_kind(nonlinearity, "RNNCell"), input_size, hidden_size, bias, dtype) {}

Var RNNCell::operator()(const Var& x, const Var& h) {
  return scoped([&] { return step(x, {h, {}}).h; });
}

LSTMCell::LSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias, DType dtype)
    : RNNCellBase(Kind::lstm, input_size, hidden_size, bias, dtype) {}

LSTMState LSTMCell::operator()(const Var& x, const LSTMState& state) {
  return scoped([&] { return step(x, state); });
}

GRUCell::GRUCell(std::int64_t input_size, std::int64_t hidden_size, bool bias, DType dtype)
    : RNNCellBase(Kind::gru, input_size, hidden_size, bias, dtype) {}

Var GRUCell::operator()(const Var& x, const Var& h) {
  return scoped([&] { return step(x, {h, {}}).h; });
}

} // namespace gg::nn
