// Loss functions, as torch.nn.functional: mse, cross-entropy (from logits, with class-index or
// probability targets), negative log-likelihood, binary cross-entropy (on probabilities or
// logits). Reductions mean (default), sum, none. All numerically stable.
#pragma once

#include <autodiff/autodiff.hpp>

namespace gg::nn {

enum class Reduction { mean, sum, none };

/// mean((input - target)^2); shapes must match.
Var mse_loss(const Var& input, const Var& target, Reduction reduction = Reduction::mean);
/// -log_probs[i, target[i]]; log_probs [N, C], target [N] of class ids. -log(0) is +inf, not NaN.
Var nll_loss(const Var& log_probs, const Tensor& target, Reduction reduction = Reduction::mean);
/// nll_loss(log_softmax(logits)) for class ids [N]; for probabilities / one-hot rows [N, C]:
/// -sum(target * log_softmax(logits)) per row.
Var cross_entropy(const Var& logits, const Tensor& target, Reduction reduction = Reduction::mean);
/// -(y log p + (1 - y) log(1 - p)), each log clamped at -100 as PyTorch does.
Var binary_cross_entropy(const Var& probs, const Tensor& target, Reduction reduction = Reduction::mean);
/// binary_cross_entropy(sigmoid(logits)) computed stably: logsumexp(0, x) - x y.
Var binary_cross_entropy_with_logits(const Var& logits, const Tensor& target,
                                     Reduction reduction = Reduction::mean);

} // namespace gg::nn
