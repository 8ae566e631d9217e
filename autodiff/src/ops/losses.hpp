// The losses family's scalar rule, inlined into the reverse sweep's switch over scalar nodes
// (scalar_local, elementwise.hpp); the rest of the family is in losses.cpp.
#pragma once

namespace gg::detail {

/// d(node)/d(a) and d(node)/d(b) of a scalar mse_loss node, (a - b)^2 whatever the reduction (one
/// element): 2 (a - b) and its negation.
inline void mse_loss_local(double a, double b, double d[2]) {
  d[0] = 2 * (a - b);
  d[1] = -d[0];
}

} // namespace gg::detail
