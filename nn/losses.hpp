// Loss functions, as torch.nn.functional: mse (broadcasting), cross-entropy (from logits, with
// class-id or probability targets, ignore_index, label smoothing, class weights), negative
// log-likelihood, binary cross-entropy (on probabilities or logits). Inputs [N, C], [N, C, d1, ...]
// or unbatched [C] as PyTorch's. Reductions mean (default), sum, none. All numerically stable.
#pragma once

#include <cstdint>
#include <vector>

#include <autodiff/autodiff.hpp>

namespace gg::nn {

using gg::Reduction; // mean, sum, none (autodiff/ops.hpp)

/// nll_loss's options, torch.nn.functional.nll_loss's keyword arguments.
struct NllLossOptions {
  Reduction reduction = Reduction::mean;
  /// Targets equal to it add nothing and do not count in the mean.
  std::int64_t ignore_index = -100;
  /// Per-class weights [C] (undefined: all 1); the mean divides by the summed weights of the targets.
  Tensor weight{};
};

/// cross_entropy's options, torch.nn.functional.cross_entropy's keyword arguments.
struct CrossEntropyOptions {
  Reduction reduction = Reduction::mean;
  /// Class-id targets equal to it add nothing and do not count in the mean (probability targets
  /// take none: it must stay negative).
  std::int64_t ignore_index = -100;
  /// In [0, 1]: the target becomes (1 - label_smoothing) of itself plus label_smoothing spread
  /// evenly over the C classes.
  double label_smoothing = 0;
  /// Per-class weights [C] (undefined: all 1).
  Tensor weight{};
};

/// mean((input - target)^2), input and target broadcast together as PyTorch does (and, as PyTorch,
/// a warning the first time their shapes differ: gg::warn_once, standard error unless a
/// set_warning_handler handler takes it). One node, autodiff's op (autodiff/ops.hpp).
using gg::mse_loss;

/// -log_probs[n, target[n, d...], d...]; log_probs [N, C, d1, ...] (or [C]), target [N, d1, ...]
/// (or 0-d) of class ids as whole numbers. -log(0) is +inf, not NaN.
Var nll_loss(const Var& log_probs, const Tensor& target, Reduction reduction = Reduction::mean);
Var nll_loss(const Var& log_probs, const Tensor& target, const NllLossOptions& options);
/// The same with integer class ids, row-major over the target shape [N, d1, ...] (log_probs' shape
/// without the class dimension).
Var nll_loss(const Var& log_probs, const std::vector<std::int64_t>& target,
             const NllLossOptions& options = {});

/// nll_loss(log_softmax(logits, class dimension)) for class ids [N, d1, ...] (or 0-d); for a target
/// of the logits' shape, probabilities: -sum(target * log_softmax(logits)) over the class dimension.
Var cross_entropy(const Var& logits, const Tensor& target, Reduction reduction = Reduction::mean);
Var cross_entropy(const Var& logits, const Tensor& target, const CrossEntropyOptions& options);
/// The same with integer class ids, row-major over the target shape [N, d1, ...].
Var cross_entropy(const Var& logits, const std::vector<std::int64_t>& target,
                  const CrossEntropyOptions& options = {});

/// -(y log p + (1 - y) log(1 - p)), each log clamped at -100, with PyTorch's gradient
/// (p - y) / max(p (1 - p), 1e-12), finite at p = 0 and 1 (gg::binary_cross_entropy, one op).
Var binary_cross_entropy(const Var& probs, const Tensor& target, Reduction reduction = Reduction::mean);
/// binary_cross_entropy(sigmoid(logits)) computed stably: logsumexp(0, x) - x y.
Var binary_cross_entropy_with_logits(const Var& logits, const Tensor& target,
                                     Reduction reduction = Reduction::mean);

} // namespace gg::nn
