// backward()'s fast path for tensor nodes: the vector-Jacobian products of the common ops computed
// on plain tensors with kernels — no graph nodes, no constant Vars, fused elementwise loops, and no
// gradient for an input that does not require one (a network's input, a frozen weight). The
// differentiable rules (vjp() in backward.cpp) stay the definition: gg::gradcheck compares the two
// paths for every op, and ops not handled here go through vjp() with recording off.
#include <autodiff/ops.hpp>

#include "internal.hpp"
#include "kernels/kernels.hpp"

namespace gg::detail {

namespace {

using kernel::Binary;

} // namespace

bool vjp_values(Node* n, const Tensor& g, std::array<Tensor, 3>& out) {
  const Tensor a = n->first ? value_of(n->first) : Tensor();
  const Shape sa = a.defined() ? a.shape() : Shape{};
  const std::vector<std::int64_t>* ints = n->ext ? &n->ext->ints : nullptr;
  auto attr = [&](std::size_t i) { return (*ints)[i]; };
  switch (n->op) {
  case Op::reshape: out[0] = g.reshape(sa); return true;
  case Op::transpose:
    out[0] = kernel::transpose(g, static_cast<int>(attr(0)), static_cast<int>(attr(1)));
    return true;
  case Op::index_select:
    out[0] = kernel::index_add(g, sa, static_cast<int>(attr(0)), {ints->begin() + 1, ints->end()});
    return true;
  case Op::broadcast_to: out[0] = kernel::sum_to(g, sa); return true;
  case Op::sum_to: out[0] = kernel::broadcast_to(g, sa); return true;
  default: return false;
  }
}

} // namespace gg::detail
