// Internal functions shared by the autodiff sources: value access, the derivative rules, and the
// reverse sweep. Not installed.
#pragma once

#include <vector>

#include <autodiff/var.hpp>

namespace gg::detail {

/// v's node; UsageError naming op when v is undefined.
Node* need(const Var& v, std::string_view op);
/// A node's value as a tensor (0-d float64 for scalar nodes).
Tensor value_of(const Node* n);
/// A new handle to n.
inline Var ref(Node* n) {
  retain(n);
  return Var::adopt(n);
}
/// d(out)/d(input i) of a scalar node, for each of its (at most two) inputs.
void local_derivatives(const Node* n, double d[2]);
/// The vector-Jacobian product of n's op: d(loss)/d(input i) given g = d(loss)/d(n), one Var per
/// input (undefined where no gradient flows), written with differentiable ops.
std::vector<Var> vjp(Node* n, const Var& g);

} // namespace gg::detail
