// The differentiable operations on gg::Var. Binary ops broadcast by NumPy rules; every op checks
// shapes while recording (a gg::ShapeError names the op and both shapes), so backward never throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <autodiff/kernel.hpp>
#include <autodiff/var.hpp>

namespace gg {

Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var neg(const Var& x);
/// x ^ p for a constant exponent.
Var pow(const Var& x, double p);
/// x ^ y elementwise (broadcasting).
Var pow(const Var& x, const Var& y);
/// b ^ x for a constant base.
Var pow(double b, const Var& x);

Var operator+(const Var& a, const Var& b);
Var operator-(const Var& a, const Var& b);
Var operator*(const Var& a, const Var& b);
Var operator/(const Var& a, const Var& b);
Var operator-(const Var& x);
Var operator+(const Var& a, double b);
Var operator+(double a, const Var& b);
Var operator-(const Var& a, double b);
Var operator-(double a, const Var& b);
Var operator*(const Var& a, double b);
Var operator*(double a, const Var& b);
Var operator/(const Var& a, double b);
Var operator/(double a, const Var& b);
Var& operator+=(Var& a, const Var& b);
Var& operator-=(Var& a, const Var& b);
Var& operator*=(Var& a, const Var& b);
Var& operator/=(Var& a, const Var& b);

Var exp(const Var& x);
Var log(const Var& x);
Var sqrt(const Var& x);
Var abs(const Var& x);
Var tanh(const Var& x);
Var sigmoid(const Var& x);
Var relu(const Var& x);
Var leaky_relu(const Var& x, double negative_slope = 0.01);
Var sin(const Var& x);
Var cos(const Var& x);
/// The error function, 2/sqrt(pi) times the integral of exp(-t^2) from 0 to x.
Var erf(const Var& x);
/// x·Φ(x), Φ the standard normal distribution function, as torch.nn.functional.gelu; approximate
/// "tanh" is PyTorch's tanh approximation (op gelu_tanh). Another approximate is a ValueError.
Var gelu(const Var& x, std::string_view approximate = "none");
/// min(max(x, lo), hi); the gradient passes where lo <= x <= hi, as in PyTorch.
Var clamp(const Var& x, double lo, double hi);

/// Sum of all elements (a 0-d result).
Var sum(const Var& x);
Var sum(const Var& x, int axis, bool keepdim = false);
Var mean(const Var& x);
Var mean(const Var& x, int axis, bool keepdim = false);
/// Maximum; the gradient is shared equally among tied maxima (among the NaNs when there are any), as
/// torch.max(x).
Var max(const Var& x);
/// Largest along an axis; the gradient goes to each lane's first maximum (its first NaN when there is
/// one), the index torch.max(x, dim) returns (amax shares it among ties).
Var max(const Var& x, int axis, bool keepdim = false);

/// Matrix product: 2-d, batched (leading dimensions broadcast), 1-d operands as in NumPy.
Var matmul(const Var& a, const Var& b);
/// x @ weight^T + bias in one op, as torch.nn.functional.linear: x [..., in] (or [in]), weight
/// [out, in], bias [out] or undefined for none. No transposed copy of the weight is made, forward or
/// backward, and only the inputs that require grad get gradients computed.
Var linear(const Var& x, const Var& weight, const Var& bias = Var());
/// A size along height and width, as PyTorch's int-or-pair arguments: one number for both, or
/// {height, width}.
struct Size2 {
  std::int64_t h = 0, w = 0;
  Size2(std::int64_t both) : h(both), w(both) {} // NOLINT: implicit, as PyTorch's ints
  Size2(std::int64_t height, std::int64_t width) : h(height), w(width) {}
};
/// 2-d convolution (cross-correlation) in one op, as torch.nn.functional.conv2d: x [N, C, H, W] (or
/// one image [C, H, W]), weight [out, C / groups, kh, kw], bias [out] or undefined for none ->
/// [N, out, Hout, Wout]; stride, zero padding and dilation per axis. The batch becomes one column
/// matrix and one matrix product per group, forward and backward; only the inputs that require grad
/// get gradients computed.
Var conv2d(const Var& x, const Var& weight, const Var& bias = Var(), Size2 stride = 1, Size2 padding = 0,
           Size2 dilation = 1, std::int64_t groups = 1);
/// 1-d convolution, as torch.nn.functional.conv1d: x [N, C, L] (or [C, L]), weight [out, C / groups,
/// k], bias [out] -> [N, out, Lout]: conv2d over images one row high.
Var conv1d(const Var& x, const Var& weight, const Var& bias = Var(), std::int64_t stride = 1,
           std::int64_t padding = 0, std::int64_t dilation = 1, std::int64_t groups = 1);
/// The largest element of each window of every channel of x [N, C, H, W] (or [C, H, W]; padding
/// reads as -inf), as torch.nn.functional.max_pool2d, in one op. A window's gradient goes to one
/// element, PyTorch's index: the first maximum in row-major order within the window, or the last NaN.
/// Stride 0 is the kernel (PyTorch's None); padding at most half the kernel, as PyTorch; ceil_mode
/// keeps a last, partial window.
Var max_pool2d(const Var& x, Size2 kernel, Size2 stride = 0, Size2 padding = 0, Size2 dilation = 1,
               bool ceil_mode = false);
/// The mean of each window of every channel, as torch.nn.functional.avg_pool2d: the divisor counts
/// zero padding (count_include_pad) but not what a ceil_mode window reaches beyond it. Each plane's
/// windows unfolded, weighted and summed.
Var avg_pool2d(const Var& x, Size2 kernel, Size2 stride = 0, Size2 padding = 0, bool ceil_mode = false,
               bool count_include_pad = true);
/// Axes axis0 and axis1 swapped; a 0-d x (axes 0 or -1) is returned itself, as PyTorch.
Var transpose(const Var& x, int axis0 = -2, int axis1 = -1);
/// Same elements, new shape; one dimension may be -1.
Var reshape(const Var& x, const std::vector<std::int64_t>& shape);
/// Elements start, start+step, ... < stop along axis (Python slice rules; step >= 1).
Var slice(const Var& x, int axis, std::int64_t start, std::int64_t stop, std::int64_t step = 1);
/// Index i along axis, that dimension removed (x[i] for axis 0).
Var select(const Var& x, int axis, std::int64_t index);
/// Entries at the given indices along axis (repeated indices allowed; negative ones refused, as
/// PyTorch). A 0-d x takes index 0 (any number of times) and is returned itself, as PyTorch.
Var index_select(const Var& x, int axis, const std::vector<std::int64_t>& index);
Var concat(const std::vector<Var>& xs, int axis = 0);
Var stack(const std::vector<Var>& xs, int axis = 0);
/// cond != 0 ? a : b elementwise (cond is a constant mask); all three broadcast together.
Var where(const Tensor& cond, const Var& a, const Var& b);

Var softmax(const Var& x, int axis = -1);
Var log_softmax(const Var& x, int axis = -1);
/// log(sum(exp(x))) along axis, stable for large inputs.
Var logsumexp(const Var& x, int axis = -1, bool keepdim = false);

// Sequence models: masks, running sums, dropout, splitting, and sampling without a gradient.

/// The lower triangle of each matrix (the last two dimensions), the rest 0, as torch.tril: kept where
/// column - row <= diagonal.
Var tril(const Var& x, std::int64_t diagonal = 0);
/// The upper triangle of each matrix, the rest 0, as torch.triu: kept where column - row >= diagonal.
Var triu(const Var& x, std::int64_t diagonal = 0);
/// value where mask is 1, else x, as torch.masked_fill: mask a constant of 0 and 1 (a bool mask;
/// other values are a ValueError) broadcasting with x. No gradient flows to the filled places.
Var masked_fill(const Var& x, const Tensor& mask, double value);
/// Running sums along dim, as torch.cumsum.
Var cumsum(const Var& x, int dim);
/// In training, each element zeroed with probability p and the rest scaled by 1/(1-p) (the mask
/// drawn from generator), as torch.nn.functional.dropout; x itself when not training or p is 0.
Var dropout(const Var& x, double p, bool training, Rng& generator);
/// Layer normalisation over the trailing dimensions normalized_shape, as
/// torch.nn.functional.layer_norm, in one op: (x - mean) / sqrt(var + eps) per row (biased
/// variance), times weight and plus bias (each of normalized_shape, or undefined for none).
Var layer_norm(const Var& x, const std::vector<std::int64_t>& normalized_shape, const Var& weight = Var(),
               const Var& bias = Var(), double eps = 1e-5);
/// The attn_mask of scaled_dot_product_attention, as PyTorch's: none; boolean, 1 where a query may
/// attend to a key (PyTorch's True; nn::MultiheadAttention's masks mean the opposite, as torch.nn's);
/// or additive, added to the scores (-inf forbids). Either broadcasts to the scores [..., L, S].
struct AttentionMask {
  enum class Kind : std::uint8_t { none, boolean, additive };
  Kind kind = Kind::none;
  Tensor values;
  /// 1 (may attend) and 0 (may not) only.
  static AttentionMask boolean(const Tensor& allowed) { return {Kind::boolean, allowed}; }
  /// Added to the scores; the query's dtype.
  static AttentionMask additive(const Tensor& values) { return {Kind::additive, values}; }
};
/// softmax(query key^T * scale + mask) value, as torch.nn.functional.scaled_dot_product_attention:
/// query [..., L, E], key [..., S, E], value [..., S, Ev] with the same leading dimensions ->
/// [..., L, Ev]; scale 1/sqrt(E) unless given; is_causal lets query i attend to keys j <= i only
/// (top-left aligned; not with an attn_mask). One op (docs/performance.md has the measurement);
/// with dropout_p > 0 the weights are dropped out (mask drawn from generator, which it then needs)
/// and the call is the composition of ops.
Var scaled_dot_product_attention(const Var& query, const Var& key, const Var& value,
                                 const AttentionMask& attn_mask = {}, double dropout_p = 0,
                                 bool is_causal = false, std::optional<double> scale = std::nullopt,
                                 Rng* generator = nullptr);
/// Self-attention from a packed projection, as nn::MultiheadAttention computes it for query = key =
/// value: qkv [N, L, 3E] (the in-projection's output: q, k and v side by side, each num_heads heads of
/// E / num_heads) -> [N, L, E], the heads' outputs side by side; each head softmax(q k^T * scale) v as
/// scaled_dot_product_attention's (scale 1/sqrt(E / num_heads) unless given; is_causal likewise). One
/// op reading q, k and v in place, its gradient one [N, L, 3E] tensor: no copies to split or merge
/// the heads.
Var packed_self_attention(const Var& qkv, std::int64_t num_heads, bool is_causal = false,
                          std::optional<double> scale = std::nullopt);
/// One LSTM cell's update, as torch.nn.LSTM's: from the pre-activation gates [..., 4H] (x W_ih^T +
/// b_ih + h W_hh^T + b_hh, PyTorch's order i, f, g, o) and the cell state c [..., H], returns {h', c'}
/// with c' = sigmoid(f) c + sigmoid(i) tanh(g) and h' = sigmoid(o) tanh(c'): two lstm_cell nodes in
/// place of thirteen ops.
std::pair<Var, Var> lstm_cell(const Var& gates, const Var& c);
/// What lstm_layer gives: each step's h [L, N, H], and the state after the last step [N, H].
struct LSTMLayer {
  Var output, h, c;
};
/// One layer of torch.nn.LSTM over a whole sequence x [L, N, E] from the state (h0, c0) [N, H], with
/// weights w_ih [4H, E], w_hh [4H, H] and biases [4H] (both, or both undefined); reverse runs from
/// the last step to the first (a bidirectional LSTM's second direction). One lstm_layer node (its
/// value [L + 1, N, H]: the steps' h, then the last c) whose backward runs back through time once
/// and takes each weight's gradient as one product over all steps; output, h and c are its parts.
LSTMLayer lstm_layer(const Var& x, const Var& h0, const Var& c0, const Var& w_ih, const Var& w_hh,
                     const Var& b_ih = Var(), const Var& b_hh = Var(), bool reverse = false);
/// What gru_layer and rnn_layer give: each step's h [L, N, H] (the op's node), and the state after the
/// last step [N, H].
struct RecurrentLayer {
  Var output, h;
};
/// One layer of torch.nn.GRU over a whole sequence x [L, N, E] from the state h0 [N, H], with weights
/// w_ih [3H, E], w_hh [3H, H] and biases [3H] (both, or both undefined) in PyTorch's gate order r, z,
/// n: n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h; reverse runs from the last
/// step to the first. One gru_layer node whose backward runs back through time once and takes each
/// weight's gradient as one product over all steps.
RecurrentLayer gru_layer(const Var& x, const Var& h0, const Var& w_ih, const Var& w_hh,
                         const Var& b_ih = Var(), const Var& b_hh = Var(), bool reverse = false);
/// One layer of torch.nn.RNN over a whole sequence x [L, N, E] from the state h0 [N, H]: h_t =
/// act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act "tanh" or "relu" (its nonlinearity), weights
/// w_ih [H, E], w_hh [H, H] and biases [H] (both, or both undefined); reverse runs from the last step
/// to the first. One rnn_layer node, its backward back through time once.
RecurrentLayer rnn_layer(const Var& x, const Var& h0, const Var& w_ih, const Var& w_hh,
                         const Var& b_ih = Var(), const Var& b_hh = Var(),
                         std::string_view nonlinearity = "tanh", bool reverse = false);
/// Pieces of split_size along dim (the last one smaller), as torch.split: slices of x.
std::vector<Var> split(const Var& x, std::int64_t split_size, int dim = 0);
/// Pieces of the given sizes along dim (they must add up to its size), as torch.split.
std::vector<Var> split(const Var& x, const std::vector<std::int64_t>& split_sizes, int dim = 0);
/// At most `chunks` equal pieces along dim (the last one smaller), as torch.chunk: slices of x.
std::vector<Var> chunk(const Var& x, std::int64_t chunks, int dim = 0);
/// Index of the largest element along dim (the first one on ties; NaN counts as largest), as
/// torch.argmax: index values in float64, a constant (no gradient).
Var argmax(const Var& x, int dim, bool keepdim = false);
/// Index of the largest element of x flattened (0-d), as torch.argmax without dim.
Var argmax(const Var& x);
/// num_samples category indices drawn from each row of probs ([C] or [N, C]; weights, not
/// necessarily normalised) with generator, as torch.multinomial: float64 index values, [num_samples]
/// or [N, num_samples], a constant. Negative, NaN or infinite weights, a row adding up to 0, and
/// more samples than categories without replacement are a ValueError.
Var multinomial(const Var& probs, std::int64_t num_samples, bool replacement, Rng& generator);

/// x repeated along broadcast dimensions to shape.
Var broadcast_to(const Var& x, const Shape& shape);
/// Sums the dimensions broadcasting stretched, back to shape (the adjoint of broadcast_to).
Var sum_to(const Var& x, const Shape& shape);
/// Zeros of shape with g at the positions of slice(.., axis, start, stop, step) (adjoint of slice).
Var slice_scatter(const Var& g, const Shape& shape, int axis, std::int64_t start, std::int64_t stop,
                  std::int64_t step = 1);
/// Zeros of shape with g's entries added at index along axis (adjoint of index_select; negative
/// indices refused, as PyTorch).
Var index_add(const Var& g, const Shape& shape, int axis, const std::vector<std::int64_t>& index);

/// x converted to dtype (f32 or f64); its gradient is converted back to x's dtype. x itself when it
/// has that dtype already (scalar Vars are f64).
Var to(const Var& x, DType dtype);

/// im2col of [N, C, H, W] for kh x kw windows: [N, C*kh*kw, Hout*Wout] (pad_value outside the image).
Var unfold(const Var& x, std::int64_t kh, std::int64_t kw, std::int64_t stride = 1, std::int64_t padding = 0,
           double pad_value = 0);
/// The same for any windows (per-axis stride and padding, dilation, ceil_mode).
Var unfold(const Var& x, const kernel::Windows& windows, double pad_value = 0);
/// col2im, the adjoint of unfold: columns summed back into an image of image_shape.
Var fold(const Var& cols, const Shape& image_shape, std::int64_t kh, std::int64_t kw, std::int64_t stride = 1,
         std::int64_t padding = 0);
Var fold(const Var& cols, const Shape& image_shape, const kernel::Windows& windows);

// Parity with PyTorch (issue 13).

/// PyTorch's elementwise binary cross-entropy of probabilities p and targets y (broadcasting),
/// -(y log p + (1 - y) log(1 - p)) with each log at least -100, and PyTorch's gradient
/// (p - y) / max(p (1 - p), 1e-12), finite at p = 0 and 1. nn::binary_cross_entropy reduces it.
Var binary_cross_entropy(const Var& p, const Var& y);
/// The larger of a and b elementwise (broadcasting; a NaN wins), as torch.maximum: at a tie each
/// gets half the gradient.
Var maximum(const Var& a, const Var& b);
/// The smaller of a and b elementwise, as torch.minimum (ties split the gradient likewise).
Var minimum(const Var& a, const Var& b);
/// log(1 + exp(beta x)) / beta, and x itself where beta x > threshold, as
/// torch.nn.functional.softplus.
Var softplus(const Var& x, double beta = 1, double threshold = 20);
/// Smallest element; the gradient is shared equally among tied minima (among the NaNs when there are
/// any), as torch.min(x).
Var min(const Var& x);
/// Smallest along an axis; the gradient goes to each lane's first minimum (its first NaN when there is
/// one), the index torch.min(x, dim) returns.
Var min(const Var& x, int axis, bool keepdim = false);
/// Smallest along an axis; tied minima share the gradient, as torch.amin (a lane whose minimum is NaN
/// gets NaN throughout, as there).
Var amin(const Var& x, int axis, bool keepdim = false);
/// Largest along an axis; tied maxima share the gradient, as torch.amax (a lane whose maximum is NaN
/// gets NaN throughout, as there).
Var amax(const Var& x, int axis, bool keepdim = false);
/// out[i][j] = x[index[i][j]][j] for axis 0, x[i][index[i][j]] for axis 1 (and so on), as
/// torch.gather: index (whole numbers in [0, size of axis)) has x's rank and in every other dimension
/// a size at most x's; the result has index's shape. Its gradient adds g back at the indices.
Var gather(const Var& x, int axis, const Tensor& index);
/// x without its dimensions of size 1, as torch.squeeze.
Var squeeze(const Var& x);
/// x without dimension axis if its size is 1 (x itself otherwise), as torch.squeeze(x, dim).
Var squeeze(const Var& x, int axis);
/// x with a dimension of size 1 inserted at axis (in [-rank - 1, rank]), as torch.unsqueeze.
Var unsqueeze(const Var& x, int axis);
/// cond != 0 ? a : b elementwise with the condition's value as a constant mask.
Var where(const Var& cond, const Var& a, const Var& b);

// Losses recorded as one node, as PyTorch records them (nn/losses.hpp has the others).

/// How a loss reduces its per-element values, PyTorch's `reduction`: their mean, their sum, or none
/// (a loss per element).
enum class Reduction { mean, sum, none };
/// The mean squared error of input and target, (input - target)^2 reduced, as
/// torch.nn.functional.mse_loss: one node (mse_loss), its gradient 2 (input - target) g (divided by
/// the element count for the mean) to each input that requires one (negated for the target). Shapes
/// broadcast as PyTorch's, with its warning the first time they differ (gg::warn_once).
Var mse_loss(const Var& input, const Var& target, Reduction reduction = Reduction::mean);

} // namespace gg
