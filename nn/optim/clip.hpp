// Gradient clipping, as torch.nn.utils: by the norm of all gradients together (clip_grad_norm) and
// elementwise by value (clip_grad_value). Call between backward() and the optimizer's step().
#pragma once

#include <vector>

#include <autodiff/var.hpp>

namespace gg::optim {

/// Scales the gradients of params (those that have one) so their total norm_type-norm — as if all
/// were one vector — is at most max_norm: multiplied by max_norm / (total + 1e-6) when that is
/// below 1. Returns the total norm before clipping (0 when no parameter has a gradient).
/// norm_type is any p > 0 or INFINITY (the largest magnitude); ValueError otherwise, or when
/// max_norm is negative or NaN.
double clip_grad_norm(const std::vector<Var>& params, double max_norm, double norm_type = 2);

/// Clamps every gradient entry into [-clip, clip] (NaN stays NaN); ValueError if clip < 0.
void clip_grad_value(const std::vector<Var>& params, double clip);

} // namespace gg::optim
