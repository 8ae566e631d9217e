// Internal functions shared by the autodiff sources: value access, the derivative rules, and the
// reverse sweep. Not installed.
#pragma once

#include <array>
#include <functional>
#include <mutex>
#include <vector>

#include <autodiff/var.hpp>

#include "tape.hpp"

namespace gg::detail {

[[noreturn]] void throw_undefined(std::string_view op);
/// v's node; UsageError naming op when v is undefined.
inline Node* need(const Var& v, std::string_view op) {
  if (!v.defined()) [[unlikely]]
    throw_undefined(op);
  return v.node();
}
inline Node* need(const Var& v, Op op) {
  if (!v.defined()) [[unlikely]]
    throw_undefined(op_name(op));
  return v.node();
}
/// A node's value as a tensor (0-d float64 for scalar nodes).
Tensor value_of(const Node* n);

// Anomaly detection (anomaly.cpp): the checks run only while gg::DetectAnomaly is on.
/// Throws an AnomalyError when the value of n, just recorded, is not finite.
void check_forward(const Node* n);
/// Whether every element is finite.
bool all_finite(const Tensor& t);
/// Throws the AnomalyError of a backward step: n passes `gradient` (not finite) to its input `input`,
/// from `upstream`; path: n, then the nodes that passed gradient to it, up to the output.
[[noreturn]] void throw_backward_anomaly(const Node* n, int input, const Tensor& gradient,
                                         const Tensor& upstream, const std::vector<const Node*>& path);
/// Throws the AnomalyError of a seed gradient that is not finite.
[[noreturn]] void throw_seed_anomaly(const Node* n, const Tensor& seed);
/// A scalar result: recorded when an input requires grad and recording is on, else a constant.
inline Var emit_scalar(Op op, Node* a, Node* b, double value, double c = 0) {
  if (grad_mode_flag() && (a->requires_grad() || (b && b->requires_grad()))) {
    Var v = Var::adopt(record_scalar(op, a, b, value, c));
    if (t_anomaly) [[unlikely]]
      check_forward(v.node());
    return v;
  }
  return Var::constant(value);
}
/// The lock under which leaves' gradients change (threads share parameters).
std::mutex& leaf_grad_mutex();
/// Set on the thread running update_leaves' update, which holds leaf_grad_mutex.
extern thread_local constinit bool t_updating_leaves;
/// Throws the UsageError of `call` made from inside update_leaves' update.
[[noreturn]] void throw_inside_update(const char* call);
/// leaf_grad_mutex for `call` (zero_grad, set_grad, backward, update_leaves): a UsageError instead of
/// locking it twice on a thread inside update_leaves' update (the mutex is not recursive).
inline std::mutex& leaf_grad_mutex(const char* call) {
  if (t_updating_leaves) [[unlikely]]
    throw_inside_update(call);
  return leaf_grad_mutex();
}
/// A new handle to n.
inline Var ref(Node* n) {
  retain(n);
  return Var::adopt(n);
}
/// d(out)/d(input i) of a scalar node, for each of its (at most two) inputs.
void local_derivatives(const Node* n, double d[2]);
/// One application of the chain rule: node passes product = upstream × local to its input `slot`
/// (input), whose gradient is then accumulated.
struct ChainStep {
  const Node* node;
  const Node* input;
  int slot;
  double local, upstream, product;
  double previous, accumulated; ///< the input's gradient before and after adding product
};
/// The chain rule's steps from root (a scalar graph), handed to visit in backward's order (the
/// step is reused), computed from the recorded values by the same sweep as backward (backward.cpp);
/// nothing is written into the nodes, and nothing kept per step: a trace of 10^6 steps streams.
void trace_chain_rule(Node* root, const std::function<void(const ChainStep&)>& visit);
/// Product of all dimensions but the last (the rows of a [..., features] tensor).
inline std::int64_t leading_numel(const Shape& s) {
  std::int64_t rows = 1;
  for (int d = 0; d + 1 < s.rank(); ++d) rows *= s[d];
  return rows;
}

} // namespace gg::detail
