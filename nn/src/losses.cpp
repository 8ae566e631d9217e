// Loss functions built from autodiff ops. nll_loss picks entries by index (never multiplies a
// one-hot mask into log-probabilities, which would turn -inf into NaN).
#include <nn/losses.hpp>

#include <cmath>

#include <fmt/format.h>

namespace gg::nn {

namespace {
Var reduce(const Var& loss, Reduction r) {
  switch (r) {
  case Reduction::mean: return mean(loss);
  case Reduction::sum: return sum(loss);
  case Reduction::none: break;
  }
  return loss;
}

void require_same_shape(const Shape& a, const Shape& b, std::string_view op) {
  if (!(a == b))
    throw ShapeError(fmt::format("{}: input of shape {} and target of shape {} must have the same shape", op,
                                 a.str(), b.str()));
}

/// Class ids of a [N] target for [N, C] scores, checked.
std::vector<std::int64_t> class_ids(const Tensor& target, const Shape& scores, std::string_view op) {
  if (scores.rank() != 2 || target.rank() != 1 || target.shape()[0] != scores[0])
    throw ShapeError(fmt::format("{}: expected scores [N, C] and class ids [N], got shapes {} and {}", op,
                                 scores.str(), target.shape().str()));
  std::vector<std::int64_t> ids(static_cast<std::size_t>(target.numel()));
  for (std::int64_t i = 0; i < target.numel(); ++i) {
    const double t = target.flat(i);
    if (!(t >= 0 && t < static_cast<double>(scores[1])) || t != std::floor(t))
      throw ValueError(
          fmt::format("{}: target {} at row {} is not a class id in [0, {})", op, t, i, scores[1]));
    ids[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(t);
  }
  return ids;
}
} // namespace

Var mse_loss(const Var& input, const Var& target, Reduction reduction) {
  require_same_shape(input.shape(), target.shape(), "mse_loss");
  const Var d = input - target;
  return reduce(d * d, reduction);
}

Var nll_loss(const Var& log_probs, const Tensor& target, Reduction reduction) {
  const Shape s = log_probs.shape();
  std::vector<std::int64_t> flat = class_ids(target, s, "nll_loss");
  for (std::size_t i = 0; i < flat.size(); ++i) flat[i] += static_cast<std::int64_t>(i) * s[1];
  return reduce(-index_select(reshape(log_probs, {-1}), 0, flat), reduction);
}

Var cross_entropy(const Var& logits, const Tensor& target, Reduction reduction) {
  const Shape s = logits.shape();
  if (target.rank() == 2) { // class probabilities or one-hot rows
    require_same_shape(s, target.shape(), "cross_entropy");
    return reduce(-sum(Var::constant(target) * log_softmax(logits, 1), 1), reduction);
  }
  if (s.rank() != 2)
    throw ShapeError(fmt::format("cross_entropy: expected logits [N, C], got shape {}", s.str()));
  return nll_loss(log_softmax(logits, 1), target, reduction);
}

Var binary_cross_entropy(const Var& probs, const Tensor& target, Reduction reduction) {
  require_same_shape(probs.shape(), target.shape(), "binary_cross_entropy");
  for (std::int64_t i = 0; i < target.numel(); ++i)
    if (!(target.flat(i) >= 0 && target.flat(i) <= 1))
      throw ValueError(
          fmt::format("binary_cross_entropy: target {} at element {} is outside [0, 1]", target.flat(i), i));
  // log clamped at -100 as PyTorch; clamping the argument (not the log) keeps the gradient finite.
  const double tiny = std::exp(-100.0);
  const Var y = Var::constant(target);
  const Var loss = -(y * log(clamp(probs, tiny, 1)) + (1.0 - y) * log(clamp(1.0 - probs, tiny, 1)));
  return reduce(loss, reduction);
}

Var binary_cross_entropy_with_logits(const Var& logits, const Tensor& target, Reduction reduction) {
  require_same_shape(logits.shape(), target.shape(), "binary_cross_entropy_with_logits");
  const Var y = Var::constant(target);
  // log(1 + e^x) - x y = logsumexp(0, x) - x y: stable, and its gradient is exactly sigmoid(x) - y
  // (relu's and abs's derivatives at 0 would make it -y there).
  const Var zeros = Var::constant(Tensor::zeros(logits.shape(), logits.dtype()));
  return reduce(logsumexp(stack({zeros, logits}, -1), -1) - logits * y, reduction);
}

} // namespace gg::nn
