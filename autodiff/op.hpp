// The table of operations: one enum value per op kind, with the one name used in DOT labels,
// traces and error messages, its arity, and its local-derivative formulas as a learner reads them.
#pragma once

#include <cstdint>
#include <string_view>

namespace gg {

// Scalar-constant variants (add_c: x + c, rsub_c: c - x, ...) keep a literal operand out of the
// graph's leaves, as in PyTorch where `x * 2` records one node.
enum class Op : std::uint8_t {
  leaf,
  add,
  sub,
  mul,
  div,
  pow,
  neg,
  add_c,
  mul_c,
  div_c,
  rsub_c,
  rdiv_c,
  pow_c,
  rpow_c,
  exp,
  log,
  sqrt,
  abs,
  tanh,
  sigmoid,
  relu,
  leaky_relu,
  sin,
  cos,
  clamp,
  sum,
  sum_axis,
  mean,
  mean_axis,
  max,
  max_axis,
  matmul,
  linear,
  conv2d,
  max_pool2d,
  transpose,
  reshape,
  slice,
  slice_scatter,
  index_select,
  index_add,
  concat,
  stack,
  where,
  softmax,
  log_softmax,
  logsumexp,
  broadcast_to,
  sum_to,
  unfold,
  fold,
  to,
  custom,
  count_
};

struct OpInfo {
  std::string_view name;   ///< as shown in DOT, traces and errors
  std::string_view symbol; ///< infix symbol for binary arithmetic ("+"), empty otherwise
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
