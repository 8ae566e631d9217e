// The kernels' internal declarations: the public ones (autodiff/kernel.hpp) and the backward kernels
// only the ops' rules call (fused loops, products without transposed copies). Each is defined in the
// file of its family in this folder.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include <autodiff/kernel.hpp>

namespace gg::kernel {
/// The backward of softmax (log_space false) or log_softmax along axis, given its output `out`
/// and the gradient g: out * (g - sum(g * out)) or g - exp(out) * sum(g), fused per lane.
Tensor softmax_backward(const Tensor& g, const Tensor& out, int axis, bool log_space);
/// The backward of amax along axis: g (the reduced shape, keepdim or not) shared equally among each
/// lane's tied maxima, zero elsewhere, as torch.amax's (g / ties) * mask (so NaN elsewhere where g is
/// inf or NaN, and throughout a lane whose maximum is NaN); `out` is the forward's result. Errors name
/// "<op> backward" (op: the function called, amax or amin).
Tensor max_backward(const Tensor& x, const Tensor& out, const Tensor& g, int axis, std::string_view op);
/// The backward of max or min along axis as torch.max(dim) and torch.min(dim) route it: g to each
/// lane's first element equal to the extremum `out` (its first NaN when that is NaN), zero elsewhere;
/// errors name "<op> backward" (max or min).
Tensor max_backward_first(const Tensor& x, const Tensor& out, const Tensor& g, int axis, std::string_view op);
/// op(a[i]) op(b[i]) for every i of a batch, a and b [batch, rows, cols] or one of them 2-d (the
/// same matrix for every i); with sum_batch, their sum over i (2-d): batched products' gradients
/// without transposed copies.
Tensor gemm_batched(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, bool sum_batch = false);
/// conv2d's gradients for the output gradient g: {x's, the weight's, the bias's}, each computed
/// only when its `needs` flag is set (one GEMM each per chunk of images, the columns unfolded again).
std::array<Tensor, 3> conv2d_backward(const Tensor& g, const Tensor& x, const Tensor& weight,
                                      const Windows& windows, std::int64_t groups, std::array<bool, 3> needs);
/// max_pool2d's gradient: g [N, C, Hout, Wout], each window's whole to one element, PyTorch's index
/// (the first maximum in the window's row-major order, or for a NaN maximum the last NaN).
Tensor max_pool2d_backward(const Tensor& x, const Tensor& out, const Tensor& g, const Windows& windows);
/// That element of every window as a flat index into x, in the order of out's elements.
std::vector<std::int64_t> max_pool2d_indices(const Tensor& x, const Tensor& out, const Windows& windows);

/// Layer normalisation of each row of x viewed as [rows, m] (m the normalised elements), then times
/// weight and plus bias ([m] each, or undefined for none); stats receives [2, rows] in float64: each
/// row's mean, then 1/sqrt(variance + eps) (the biased variance, computed in two passes).
Tensor layer_norm(const Tensor& x, std::int64_t m, const Tensor& weight, const Tensor& bias, double eps,
                  Tensor& stats);
/// layer_norm's gradients for the output gradient g: {x's (x's shape), the weight's [m], the bias's
/// [m]}, each computed only when its `needs` flag is set; stats as the forward gave them.
std::array<Tensor, 3> layer_norm_backward(const Tensor& g, const Tensor& x, const Tensor& weight,
                                          const Tensor& stats, std::int64_t m, std::array<bool, 3> needs);

/// mse_loss's kernels (losses.cpp), a and b broadcasting (in their result dtype): (a - b)^2 of every
/// element; their sum in float64 as a 0-d tensor (divided by the element count for the mean); and the
/// gradients for g (of the broadcast shape, or 0-d for a reduced loss: g / divisor for each element):
/// {2 g (a - b) summed to a's shape, its negation summed to b's}, each computed only when its `needs`
/// flag is set.
Tensor squared_error(const Tensor& a, const Tensor& b);
Tensor squared_error_sum(const Tensor& a, const Tensor& b, bool mean);
std::array<Tensor, 2> squared_error_backward(const Tensor& g, const Tensor& a, const Tensor& b,
                                             double divisor, std::array<bool, 2> needs);

/// The LSTM cell (lstm_cell) from its pre-activation gates [rows, 4H] (i, f, g, o) and a cell state
/// c [rows, H], both contiguous: part 0 gives c' = sigmoid(f) c + sigmoid(i) tanh(g) (c the previous
/// state), part 1 h' = sigmoid(o) tanh(c) (c the new state).
Tensor lstm_cell(const Tensor& gates, const Tensor& c, int part);
/// lstm_cell's gradients for the output gradient g: {the gates' (zero in the gates the part does not
/// use), c's}, each computed only when its `needs` flag is set.
std::array<Tensor, 2> lstm_cell_backward(const Tensor& g, const Tensor& gates, const Tensor& c, int part,
                                         std::array<bool, 2> needs);

/// One LSTM layer over a sequence (lstm_layer): x [L, N, E], the initial state h0, c0 [N, H], the
/// weights w_ih [4H, E] and w_hh [4H, H], bias [4H] (b_ih + b_hh; undefined for none); reverse runs
/// from the last step to the first. Returns [L + 1, N, H]: each step's h, then the last c. `saved`
/// receives what the backward needs: the gates' activations [L, N, 4H], then each step's c [L, N, H].
Tensor lstm_layer(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh,
                  const Tensor& bias, bool reverse, Tensor& saved);
/// lstm_layer's gradients for the output gradient g [L + 1, N, H], out and saved as the forward gave
/// them: {x, h0, c0, w_ih, w_hh, the bias} (the bias's is b_ih's and b_hh's), those of x, w_ih, w_hh
/// and the bias only when their `needs` flag is set. The weights' gradients are one product each
/// over all steps.
std::array<Tensor, 6> lstm_layer_backward(const Tensor& g, const Tensor& out, const Tensor& saved,
                                          const Tensor& x, const Tensor& h0, const Tensor& c0,
                                          const Tensor& w_ih, const Tensor& w_hh, bool reverse,
                                          std::array<bool, 6> needs);
/// One GRU layer over a sequence (gru_layer): x [L, N, E], the initial state h0 [N, H], the weights
/// w_ih [3H, E] and w_hh [3H, H] (gates r, z, n), the biases b_ih and b_hh [3H] (undefined for none);
/// reverse runs from the last step to the first. Returns each step's h [L, N, H]; `saved` receives
/// what the backward needs: the gates' activations [L, N, 3H], then each step's W_hn h + b_hn [L, N, H].
Tensor gru_layer(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                 const Tensor& b_ih, const Tensor& b_hh, bool reverse, Tensor& saved);
/// gru_layer's gradients for the output gradient g [L, N, H], out and saved as the forward gave them:
/// {x, h0, w_ih, w_hh, b_ih, b_hh}, those of x, the weights and the biases only when their `needs`
/// flag is set; the weights' gradients are one product each over all steps.
std::array<Tensor, 6> gru_layer_backward(const Tensor& g, const Tensor& out, const Tensor& saved,
                                         const Tensor& x, const Tensor& h0, const Tensor& w_ih,
                                         const Tensor& w_hh, bool reverse, std::array<bool, 6> needs);
/// One Elman RNN layer over a sequence (rnn_layer): h_t = act(x_t w_ih^T + h_{t-1} w_hh^T + bias), act
/// relu or tanh, x [L, N, E], h0 [N, H], w_ih [H, E], w_hh [H, H], bias [H] (b_ih + b_hh; undefined for
/// none); reverse runs from the last step to the first. Returns each step's h [L, N, H] (all the
/// backward needs).
Tensor rnn_layer(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                 const Tensor& bias, bool relu, bool reverse);
/// rnn_layer's gradients for the output gradient g [L, N, H], out as the forward gave it: {x, h0, w_ih,
/// w_hh, the bias} (the bias's is b_ih's and b_hh's), each but h0's only when its `needs` flag is set.
std::array<Tensor, 5> rnn_layer_backward(const Tensor& g, const Tensor& out, const Tensor& x,
                                         const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh, bool relu,
                                         bool reverse, std::array<bool, 5> needs);

/// Scaled dot-product attention of q [batch, L, E], k [batch, S, E] and v [batch, S, Ev] (contiguous):
/// the output [batch, L, Ev], and in `weights` [batch, L, S] the softmax of the scores q k^T, each row
/// scaled, the mask added ([L, S] for every item, or [batch, L, S]; undefined for none), with causal
/// the entries right of the diagonal forbidden (0, and never computed); a row with nothing to attend
/// to becomes NaN, as PyTorch's softmax of an all -inf row. The items run on the kernel threads.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& mask,
                 bool causal, Tensor& weights);
/// attention's gradients for the output gradient g [batch, L, Ev], given its weights: {q's, k's, v's},
/// each computed only when its `needs` flag is set.
std::array<Tensor, 3> attention_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& weights, double scale, bool causal,
                                         std::array<bool, 3> needs);
/// Self-attention over a packed projection qkv [N, L, 3E] (each row: every head's q, then every head's
/// k, then v; `heads` heads of E / heads), read in place: the heads' outputs side by side [N, L, E],
/// and in `weights` [N * heads, L, L] each item's as attention's (no mask; causal as there).
Tensor attention_packed(const Tensor& qkv, std::int64_t heads, double scale, bool causal, Tensor& weights);
/// attention_packed's gradient of qkv [N, L, 3E] for the output gradient g [N, L, E], written in place.
Tensor attention_packed_backward(const Tensor& g, const Tensor& qkv, const Tensor& weights,
                                 std::int64_t heads, double scale, bool causal);

} // namespace gg::kernel
