// Recurrent layers as torch.nn: RNN (tanh or relu), LSTM and GRU over whole sequences, and the
// single-step RNNCell, LSTMCell and GRUCell. Constructor arguments, defaults, parameter names
// (weight_ih_l0, bias_hh_l1_reverse, ...), gate order and initialisation are PyTorch's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nn/module.hpp>

namespace gg::nn {

/// The options of RNN, LSTM and GRU after input_size and hidden_size, as PyTorch's keyword
/// arguments: `nn::LSTM(8, 16, {.num_layers = 2, .bidirectional = true})`.
struct RecurrentOptions {
  std::int64_t num_layers = 1;
  std::string nonlinearity = "tanh"; ///< RNN only: "tanh" or "relu"
  bool bias = true;
  bool batch_first = false; ///< input and output [N, L, features] instead of [L, N, features]
  double dropout = 0;       ///< dropout on each layer's output but the last, in training mode
  bool bidirectional = false;
  DType dtype = f64;
  std::uint64_t seed = 0; ///< the dropout mask's generator
  /// Record each step with the cell's ops (linear, sigmoid, tanh, ...) instead of one lstm_layer,
  /// gru_layer or rnn_layer node per layer and direction: the same numbers, slower, for a picture of
  /// the unrolled graph (`gradgraph lm dot`). Not one of PyTorch's arguments.
  bool unrolled = false;
};

namespace detail {
/// The recurrences RNNBase and RNNCellBase run.
enum class CellKind { rnn_tanh, rnn_relu, lstm, gru };
} // namespace detail

/// An LSTM's hidden and cell state, each [num_layers * directions, N, hidden] (or without N for an
/// unbatched input). Undefined members stand for zeros.
struct LSTMState {
  Var h, c;
};

/// What RNN, LSTM and GRU share: the stacked, optionally bidirectional recurrence over a sequence.
/// Input [L, N, input_size] ([N, L, input_size] with batch_first, or [L, input_size] unbatched);
/// output [L, N, directions * hidden_size] (laid out as the input). Each layer and direction is one
/// lstm_layer, gru_layer or rnn_layer node over the whole sequence (with `unrolled`, each step the
/// cell's ops, so that the pictures show the unrolled graph).
class RNNBase : public Module {
public:
  using Module::operator();
  /// The output sequence, from a zero initial state.
  Var forward(const Var& x) override;
  std::string describe() const override;

  std::int64_t input_size() const { return input_size_; }
  std::int64_t hidden_size() const { return hidden_size_; }
  const RecurrentOptions& options() const { return options_; }

protected:
  using Kind = detail::CellKind;
  RNNBase(Kind kind, std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options);
  /// The output and the final states from initial states (undefined: zeros).
  std::pair<Var, LSTMState> run(const Var& x, const LSTMState& initial);

private:
  Kind kind_;
  std::int64_t input_size_, hidden_size_;
  RecurrentOptions options_;
  std::vector<std::vector<Var>> weights_; ///< per layer and direction: w_ih, w_hh, b_ih, b_hh
  Rng rng_;
};

/// Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu.
class RNN : public RNNBase {
public:
  RNN(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options = {});
  /// PyTorch's positional order: (input_size, hidden_size, num_layers, nonlinearity, bias,
  /// batch_first, dropout, bidirectional).
  RNN(std::int64_t input_size, std::int64_t hidden_size, std::int64_t num_layers,
      std::string nonlinearity = "tanh", bool bias = true, bool batch_first = false, double dropout = 0,
      bool bidirectional = false, DType dtype = f64);
  using RNNBase::operator();
  /// (output, h_n) from h_0 [num_layers * directions, N, hidden] (undefined: zeros).
  std::pair<Var, Var> operator()(const Var& x, const Var& h0);
};

/// LSTM with PyTorch's gate order i, f, g, o in weight_ih_l{k} [4 hidden, in] and weight_hh_l{k}.
class LSTM : public RNNBase {
public:
  LSTM(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options = {});
  /// PyTorch's positional order: (input_size, hidden_size, num_layers, bias, batch_first, dropout,
  /// bidirectional).
  LSTM(std::int64_t input_size, std::int64_t hidden_size, std::int64_t num_layers, bool bias = true,
       bool batch_first = false, double dropout = 0, bool bidirectional = false, DType dtype = f64);
  using RNNBase::operator();
  /// (output, (h_n, c_n)) from (h_0, c_0) (undefined members: zeros).
  std::pair<Var, LSTMState> operator()(const Var& x, const LSTMState& initial);
};

/// GRU with PyTorch's gate order r, z, n and n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
class GRU : public RNNBase {
public:
  GRU(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options = {});
  /// PyTorch's positional order: (input_size, hidden_size, num_layers, bias, batch_first, dropout,
  /// bidirectional).
  GRU(std::int64_t input_size, std::int64_t hidden_size, std::int64_t num_layers, bool bias = true,
      bool batch_first = false, double dropout = 0, bool bidirectional = false, DType dtype = f64);
  using RNNBase::operator();
  /// (output, h_n) from h_0 (undefined: zeros).
  std::pair<Var, Var> operator()(const Var& x, const Var& h0);
};

/// What the cells share: weight_ih [gates * hidden, in], weight_hh [gates * hidden, hidden],
/// bias_ih, bias_hh, all ~ U(-1/sqrt(hidden), 1/sqrt(hidden)). Input [N, in] or [in] (unbatched).
class RNNCellBase : public Module {
public:
  using Module::operator();
  /// The next hidden state from a zero state.
  Var forward(const Var& x) override;
  std::string describe() const override;
  Var weight_ih, weight_hh, bias_ih, bias_hh; ///< the biases are undefined without bias

protected:
  using Kind = detail::CellKind;
  RNNCellBase(Kind kind, std::int64_t input_size, std::int64_t hidden_size, bool bias, DType dtype);
  /// One step from a state (undefined members: zeros).
  LSTMState step(const Var& x, const LSTMState& state);

private:
  Kind kind_;
  std::int64_t input_size_, hidden_size_;
};

/// One step of an Elman RNN; nonlinearity "tanh" or "relu".
class RNNCell : public RNNCellBase {
public:
  RNNCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true,
          std::string_view nonlinearity = "tanh", DType dtype = f64);
  using RNNCellBase::operator();
  /// h' from h [N, hidden] (undefined: zeros).
  Var operator()(const Var& x, const Var& h);
};

/// One LSTM step (gates i, f, g, o).
class LSTMCell : public RNNCellBase {
public:
  LSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true, DType dtype = f64);
  using RNNCellBase::operator();
  /// (h', c') from (h, c) (undefined members: zeros).
  LSTMState operator()(const Var& x, const LSTMState& state);
};

/// One GRU step (gates r, z, n).
class GRUCell : public RNNCellBase {
public:
  GRUCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true, DType dtype = f64);
  using RNNCellBase::operator();
  /// h' from h (undefined: zeros).
  Var operator()(const Var& x, const Var& h);
};

} // namespace gg::nn
