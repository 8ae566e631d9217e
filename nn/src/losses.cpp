// Loss functions built from autodiff ops, with PyTorch's definitions (mse_loss is autodiff's own op, one
// node: autodiff/src/ops/losses.cpp). nll_loss picks entries by index (never multiplies a one-hot mask
// into log-probabilities, which would turn -inf into NaN); ignored targets are masked with where. Every
// check names the loss the caller called.
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

/// The class dimension of scores [N, C, d1, ...] (1) or unbatched [C] (0).
int class_dim(const Shape& scores, std::string_view op) {
  if (scores.rank() == 0)
    throw ShapeError(fmt::format("{}: expected scores [N, C], [N, C, d1, ...] or [C], got a 0-d tensor", op));
  return scores.rank() == 1 ? 0 : 1;
}

/// The shape class ids take for scores: [N, d1, ...] (the class dimension removed), [] for [C].
Shape ids_shape(const Shape& scores) {
  std::vector<std::int64_t> s = scores.to_vector();
  s.erase(s.begin() + (scores.rank() == 1 ? 0 : 1));
  return Shape(s);
}

/// Where target position i is, for messages: "row 3" (1-d targets), "[0, 2, 1]", "" (0-d).
std::string position(const Shape& shape, std::int64_t i) {
  if (shape.rank() == 1) return fmt::format(" at row {}", i);
  if (shape.rank() == 0) return "";
  std::vector<std::int64_t> at(static_cast<std::size_t>(shape.rank()));
  for (int d = shape.rank() - 1; d >= 0; --d) {
    at[static_cast<std::size_t>(d)] = i % shape[d];
    i /= shape[d];
  }
  return fmt::format(" at [{}]", fmt::join(at, ", "));
}

/// Class-id targets, checked against the scores (ids in [0, C) or ignore_index), and what picking
/// them takes: each position's index into the flattened scores, which positions count, their weights.
struct ClassIds {
  Shape shape;                    ///< the target's, [N, d1, ...] or []
  std::vector<std::int64_t> flat; ///< index of each position's score (class 0 where ignored)
  std::vector<double> keep;       ///< 1 where the position counts, 0 where ignored
  std::vector<double> weight;     ///< the class weight of each position (0 where ignored); empty: none
  std::int64_t ignored = 0;
  double denominator = 0; ///< what the mean divides by: summed weights (or count) that count
};

ClassIds check_ids(std::string_view op, const Shape& scores, const Shape& shape,
                   const std::vector<std::int64_t>& ids, std::int64_t ignore_index, const Tensor& weight) {
  const int cd = class_dim(scores, op);
  const std::int64_t classes = scores[cd];
  if (!(shape == ids_shape(scores)))
    throw ShapeError(
        fmt::format("{}: input of shape {} takes class ids of shape {}, got a target of shape {}", op,
                    scores.str(), ids_shape(scores).str(), shape.str()));
  if (weight.defined() && !(weight.rank() == 1 && weight.shape()[0] == classes))
    throw ShapeError(fmt::format("{}: weight of shape {} for {} classes (expected [{}])", op,
                                 weight.shape().str(), classes, classes));
  ClassIds r{shape, {}, {}, {}, 0, 0};
  const std::int64_t m = shape.numel();
  // Position i is (n, s) of [N, S], S the product of d1, ...; its score is (n, t, s) of [N, C, S].
  const std::int64_t inner = scores.rank() <= 2 || scores[0] == 0 ? 1 : m / scores[0];
  r.flat.resize(static_cast<std::size_t>(m));
  r.keep.resize(static_cast<std::size_t>(m));
  if (weight.defined()) r.weight.resize(static_cast<std::size_t>(m));
  for (std::int64_t i = 0; i < m; ++i) {
    const std::int64_t t = ids[static_cast<std::size_t>(i)];
    const auto k = static_cast<std::size_t>(i);
    const bool counts = t != ignore_index;
    if (counts && !(t >= 0 && t < classes))
      throw ValueError(fmt::format("{}: target {}{} is not a class id in [0, {}) (nor ignore_index, {})", op,
                                   t, position(shape, i), classes, ignore_index));
    r.flat[k] = ((i / inner) * classes + (counts ? t : 0)) * inner + i % inner;
    r.keep[k] = counts ? 1 : 0;
    const double w = !counts ? 0 : weight.defined() ? weight.flat(t) : 1;
    if (weight.defined()) r.weight[k] = w;
    r.ignored += counts ? 0 : 1;
    r.denominator += w;
  }
  return r;
}

/// Whole-number class ids of a target tensor.
std::vector<std::int64_t> ids_of(const Tensor& target, std::string_view op) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(target.numel()));
  for (std::int64_t i = 0; i < target.numel(); ++i) {
    const double t = target.flat(i);
    if (!(std::fabs(t) <= 0x1p53) || t != std::floor(t))
      throw ValueError(fmt::format("{}: target {}{} is not a class id (a whole number)", op, t,
                                   position(target.shape(), i)));
    ids[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(t);
  }
  return ids;
}

/// The shape of class ids given as a flat list for scores of that shape.
Shape shape_of_ids(const Shape& scores, std::size_t count, std::string_view op) {
  class_dim(scores, op);
  const Shape s = ids_shape(scores);
  if (static_cast<std::int64_t>(count) != s.numel())
    throw ShapeError(fmt::format("{}: input of shape {} takes {} class ids (shape {}), got {}", op,
                                 scores.str(), s.numel(), s.str(), count));
  return s;
}

/// A constant of x's dtype holding values in shape.
Var constant_of(const Var& x, const std::vector<double>& values, const Shape& shape) {
  return Var::constant(Tensor(values, shape, x.dtype()));
}

/// where(ids.keep, v, 0) when a position is ignored, v otherwise (v of the targets' shape).
Var mask_ignored(const Var& v, const ClassIds& ids) {
  if (ids.ignored == 0) return v;
  return where(Tensor(ids.keep, ids.shape), v, Var::constant(Tensor::scalar(0, v.dtype())));
}

/// A per-position loss of class-id targets reduced as PyTorch: the mean divides by the counted
/// positions' summed weights (0/0, NaN, when every target is ignored).
Var reduce_ids(const Var& loss, const ClassIds& ids, Reduction r) {
  if (r == Reduction::mean && (ids.ignored > 0 || !ids.weight.empty())) return sum(loss) / ids.denominator;
  return reduce(loss, r);
}

/// -log_probs at the targets (times their weights; 0 where ignored), of the targets' shape.
Var picked_nll(const Var& log_probs, const ClassIds& ids) {
  Var picked = index_select(reshape(log_probs, {-1}), 0, ids.flat);
  if (ids.shape.rank() != 1) picked = reshape(picked, ids.shape.to_vector());
  picked = mask_ignored(picked, ids);
  if (!ids.weight.empty()) picked = picked * constant_of(log_probs, ids.weight, ids.shape);
  return -picked;
}

/// weight [C] shaped to broadcast along the class dimension of scores.
Var class_weights(const Tensor& weight, const Shape& scores, int cd, DType dtype) {
  std::vector<std::int64_t> s(static_cast<std::size_t>(scores.rank()), 1);
  s[static_cast<std::size_t>(cd)] = scores[cd];
  return Var::constant(weight.to(dtype).reshape(s));
}

Var cross_entropy_ids(const Var& logits, const Shape& shape, const std::vector<std::int64_t>& target,
                      const CrossEntropyOptions& o) {
  const std::string_view op = "cross_entropy";
  const Shape s = logits.shape();
  const int cd = class_dim(s, op);
  if (!(o.label_smoothing >= 0 && o.label_smoothing <= 1))
    throw ValueError(fmt::format("{}: label_smoothing must be in [0, 1], got {}", op, o.label_smoothing));
  const ClassIds ids = check_ids(op, s, shape, target, o.ignore_index, o.weight);
  const Var log_probs = log_softmax(logits, cd);
  const Var nll = reduce_ids(picked_nll(log_probs, ids), ids, o.reduction);
  if (o.label_smoothing == 0) return nll;
  // PyTorch's smoothing term: -sum over classes of (weighted) log-probabilities, reduced like the nll.
  const Var weighted =
      o.weight.defined() ? log_probs * class_weights(o.weight, s, cd, logits.dtype()) : log_probs;
  const Var smooth = reduce_ids(mask_ignored(-sum(weighted, cd), ids), ids, o.reduction);
  return nll * (1 - o.label_smoothing) + smooth * (o.label_smoothing / static_cast<double>(s[cd]));
}
} // namespace

Var nll_loss(const Var& log_probs, const Tensor& target, Reduction reduction) {
  return nll_loss(log_probs, target, NllLossOptions{.reduction = reduction});
}

Var nll_loss(const Var& log_probs, const Tensor& target, const NllLossOptions& o) {
  const ClassIds ids = check_ids("nll_loss", log_probs.shape(), target.shape(), ids_of(target, "nll_loss"),
                                 o.ignore_index, o.weight);
  return reduce_ids(picked_nll(log_probs, ids), ids, o.reduction);
}

Var nll_loss(const Var& log_probs, const std::vector<std::int64_t>& target, const NllLossOptions& o) {
  const Shape shape = shape_of_ids(log_probs.shape(), target.size(), "nll_loss");
  const ClassIds ids = check_ids("nll_loss", log_probs.shape(), shape, target, o.ignore_index, o.weight);
  return reduce_ids(picked_nll(log_probs, ids), ids, o.reduction);
}

Var cross_entropy(const Var& logits, const Tensor& target, Reduction reduction) {
  return cross_entropy(logits, target, CrossEntropyOptions{.reduction = reduction});
}

Var cross_entropy(const Var& logits, const Tensor& target, const CrossEntropyOptions& o) {
  const std::string_view op = "cross_entropy";
  const Shape s = logits.shape();
  const int cd = class_dim(s, op);
  if (!(s == target.shape())) return cross_entropy_ids(logits, target.shape(), ids_of(target, op), o);
  // Probabilities (or one-hot rows) as targets: a target of the logits' shape, as PyTorch decides.
  if (o.ignore_index >= 0)
    throw ValueError(fmt::format("{}: ignore_index ({}) is not supported with probabilities as targets "
                                 "(a target of the input's shape {})",
                                 op, o.ignore_index, s.str()));
  if (!(o.label_smoothing >= 0 && o.label_smoothing <= 1))
    throw ValueError(fmt::format("{}: label_smoothing must be in [0, 1], got {}", op, o.label_smoothing));
  if (o.weight.defined() && !(o.weight.rank() == 1 && o.weight.shape()[0] == s[cd]))
    throw ShapeError(fmt::format("{}: weight of shape {} for {} classes (expected [{}])", op,
                                 o.weight.shape().str(), s[cd], s[cd]));
  const double classes = static_cast<double>(s[cd]);
  Var p = Var::constant(target.to(logits.dtype()));
  if (o.label_smoothing > 0) p = p * (1 - o.label_smoothing) + o.label_smoothing / classes;
  if (o.weight.defined()) p = p * class_weights(o.weight, s, cd, logits.dtype());
  const Var per_position = -sum(p * log_softmax(logits, cd), cd);
  if (o.reduction == Reduction::mean) return sum(per_position) / (static_cast<double>(s.numel()) / classes);
  return reduce(per_position, o.reduction);
}

Var cross_entropy(const Var& logits, const std::vector<std::int64_t>& target, const CrossEntropyOptions& o) {
  return cross_entropy_ids(logits, shape_of_ids(logits.shape(), target.size(), "cross_entropy"), target, o);
}

Var binary_cross_entropy(const Var& probs, const Tensor& target, Reduction reduction) {
  const std::string_view op = "binary_cross_entropy";
  require_same_shape(probs.shape(), target.shape(), op);
  const Tensor p = probs.value();
  for (std::int64_t i = 0; i < p.numel(); ++i)
    if (!(p.flat(i) >= 0 && p.flat(i) <= 1))
      throw ValueError(
          fmt::format("{}: input {} at element {} is not a probability in [0, 1]", op, p.flat(i), i));
  for (std::int64_t i = 0; i < target.numel(); ++i)
    if (!(target.flat(i) >= 0 && target.flat(i) <= 1))
      throw ValueError(fmt::format("{}: target {} at element {} is outside [0, 1]", op, target.flat(i), i));
  return reduce(gg::binary_cross_entropy(probs, Var::constant(target.to(probs.dtype()))), reduction);
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
