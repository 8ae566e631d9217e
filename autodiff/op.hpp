// The op list: every op kind the graph records, in one place (GG_OP_LIST), and the table row each
// one has: the one name used in DOT labels, traces and error messages, how pictures write it, its
// arity, and its local-derivative formulas as a learner reads them. Each op's row sits with its
// rules in its family's file (autodiff/src/ops/); docs/ops.md is generated from the rows.
#pragma once

#include <cstdint>
#include <string_view>

namespace gg {

// X(name) for every op kind, grouped by family. Everything indexed by op kind (the enum, the
// table, the backward rules' dispatch) is generated from this list. Scalar-constant variants
// (add_c: x + c, rsub_c: c - x, ...) keep a literal operand out of the graph's leaves, as in
// PyTorch where `x * 2` records one node.
// clang-format off
#define GG_OP_LIST(X)                                                                                    \
  X(leaf)                                                                                                \
  /* elementwise: arithmetic (broadcasting), with a number, functions of one input */                    \
  X(add) X(sub) X(mul) X(div) X(pow) X(neg)                                                              \
  X(add_c) X(mul_c) X(div_c) X(rsub_c) X(rdiv_c) X(pow_c) X(rpow_c)                                      \
  X(exp) X(log) X(sqrt) X(abs) X(tanh) X(sigmoid) X(relu) X(leaky_relu) X(sin) X(cos) X(clamp)          \
  X(erf) X(gelu) X(gelu_tanh)                                                                            \
  /* reductions */                                                                                       \
  X(sum) X(sum_axis) X(mean) X(mean_axis) X(max) X(max_axis)                                             \
  /* linear algebra */                                                                                   \
  X(matmul) X(linear)                                                                                    \
  /* convolution and pooling */                                                                          \
  X(conv2d) X(max_pool2d)                                                                                \
  /* shape and indexing */                                                                               \
  X(transpose) X(reshape) X(slice) X(slice_scatter) X(index_select) X(index_add) X(concat) X(stack)      \
  X(where)                                                                                               \
  /* softmax family */                                                                                   \
  X(softmax) X(log_softmax) X(logsumexp)                                                                 \
  /* sequence models: masks, running sums, dropout, normalisation, attention, recurrent layers */        \
  X(tril) X(triu) X(masked_fill) X(cumsum) X(dropout) X(layer_norm) X(scaled_dot_product_attention)      \
  X(packed_self_attention) X(lstm_cell) X(lstm_layer) X(gru_layer) X(rnn_layer)                          \
  /* adjoints and conversions */                                                                         \
  X(broadcast_to) X(sum_to) X(unfold) X(fold) X(to)                                                      \
  /* parity with PyTorch (issue 13): a loss with PyTorch's gradient, extrema, softplus */               \
  X(binary_cross_entropy) X(maximum) X(minimum) X(softplus) X(min) X(min_axis) X(amax_axis) X(amin_axis) \
  /* losses as one node, as PyTorch records them */                                                      \
  X(mse_loss)                                                                                            \
  /* a gg::Function */                                                                                   \
  X(custom)
// clang-format on

enum class Op : std::uint8_t {
#define GG_OP_ENUM(name) name,
  GG_OP_LIST(GG_OP_ENUM)
#undef GG_OP_ENUM
      count_
};

/// An op kind's row of the op table.
struct OpInfo {
  std::string_view name; ///< as shown in errors, generated node names ("mul#3") and traces
  /// How pictures and traces write a node of this kind, in a, b (inputs), c (its number; lo and hi
  /// for clamp): "a · b", "a + c" (drawn "x − 3" for c = -3), "tanh(a)".
  std::string_view display;
  int arity;               ///< number of graph inputs; -1 for variadic (concat, stack, custom)
  std::string_view d0, d1; ///< local derivative w.r.t. each input, as a formula in a, b, c, out
  std::string_view api;    ///< how C++ code records it
  std::string_view value;  ///< what it computes, in a, b, c
};

/// The table entry of an op kind.
const OpInfo& op_info(Op op);
inline std::string_view op_name(Op op) {
  return op_info(op).name;
}

} // namespace gg
