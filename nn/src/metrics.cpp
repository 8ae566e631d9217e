// Accuracy, the confusion matrix and its text rendering; the regression metrics.
#include <nn/metrics.hpp>

#include <autodiff/kernel.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace gg::metrics {

namespace detail {
namespace {

std::string shape_of(const Tensor& t) {
  return t.defined() ? t.shape().str() : "undefined";
}

/// Class ids of both arguments, with the same number of rows.
std::pair<Tensor, Tensor> ids_pair(const Tensor& predicted, const Tensor& targets, std::string_view who) {
  Tensor p = class_ids(predicted);
  Tensor t = class_ids(targets);
  if (p.numel() != t.numel())
    throw ShapeError(fmt::format("{}: {} predictions (shape {}) but {} targets (shape {})", who, p.numel(),
                                 predicted.shape().str(), t.numel(), targets.shape().str()));
  return {p, t};
}

std::string count_text(double v) {
  return v == std::floor(v) && std::abs(v) < 1e15 ? fmt::format("{}", static_cast<std::int64_t>(v))
                                                  : fmt::format("{:.4g}", v);
}

} // namespace
} // namespace detail

Tensor class_ids(const Tensor& t) {
  if (!t.defined() || t.rank() < 1 || t.rank() > 2)
    throw ShapeError(
        fmt::format("class_ids: expected [n] class ids or [n, k] scores, got shape {}", detail::shape_of(t)));
  if (t.rank() == 1) return t;
  if (t.shape()[1] == 1)
    throw ShapeError(
        fmt::format("class_ids: scores of shape {} have one column, which is ambiguous; threshold them "
                    "into [n] class ids first (e.g. probability > 0.5)",
                    t.shape().str()));
  if (t.shape()[1] == 0)
    throw ShapeError(fmt::format("class_ids: scores of shape {} have no columns", t.shape().str()));
  return kernel::argmax(t, -1);
}

Tensor binary_class_ids(const Tensor& p, double threshold) {
  if (!p.defined() || p.rank() < 1 || p.rank() > 2 || (p.rank() == 2 && p.shape()[1] != 1))
    throw ShapeError(fmt::format("binary_class_ids: expected [n] or [n, 1] probabilities, got shape {}",
                                 detail::shape_of(p)));
  const std::int64_t n = p.shape()[0];
  Tensor ids = Tensor::zeros(Shape{n}, f64);
  for (std::int64_t i = 0; i < n; ++i) ids.set_flat(i, p.flat(i) > threshold ? 1 : 0);
  return ids;
}

double accuracy(const Tensor& predictions, const Tensor& targets) {
  const auto [p, t] = detail::ids_pair(predictions, targets, "accuracy");
  const std::int64_t n = p.numel();
  if (n == 0) throw ValueError("accuracy: no rows to score");
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < n; ++i) right += p.flat(i) == t.flat(i);
  return static_cast<double>(right) / static_cast<double>(n);
}

Tensor confusion_matrix(const Tensor& predicted, const Tensor& targets, std::int64_t num_classes) {
  if (num_classes < 1 || num_classes > max_classes)
    throw ValueError(
        fmt::format("confusion_matrix: num_classes must be in [1, {}], got {}", max_classes, num_classes));
  const auto [p, t] = detail::ids_pair(predicted, targets, "confusion_matrix");
  Tensor cm = Tensor::zeros(Shape{num_classes, num_classes}, f64);
  double* c = cm.data<double>();
  const auto k = static_cast<double>(num_classes);
  for (std::int64_t i = 0; i < p.numel(); ++i) {
    const double a = t.flat(i), b = p.flat(i);
    for (const auto& [v, what] : {std::pair{a, "targets"}, std::pair{b, "predictions"}})
      if (!(v >= 0 && v < k && v == std::floor(v)))
        throw ValueError(fmt::format("confusion_matrix: {}[{}] = {} is not a class id in [0, {})", what, i, v,
                                     num_classes));
    c[static_cast<std::int64_t>(a) * num_classes + static_cast<std::int64_t>(b)] += 1;
  }
  return cm;
}

std::string format_confusion_matrix(const Tensor& matrix, const std::vector<std::string>& class_names) {
  if (!matrix.defined() || matrix.rank() != 2 || matrix.shape()[0] != matrix.shape()[1] ||
      matrix.shape()[0] == 0)
    throw ShapeError(
        fmt::format("format_confusion_matrix: expected a non-empty square [k, k] matrix, got shape {}",
                    detail::shape_of(matrix)));
  const std::int64_t k = matrix.shape()[0];
  if (!class_names.empty() && static_cast<std::int64_t>(class_names.size()) != k)
    throw ValueError(
        fmt::format("format_confusion_matrix: {} class names for a {}x{} matrix", class_names.size(), k, k));
  std::vector<std::string> names;
  for (std::int64_t i = 0; i < k; ++i)
    names.push_back(class_names.empty() ? std::to_string(i) : class_names[static_cast<std::size_t>(i)]);

  const std::string corner = "true \\ predicted";
  std::size_t label_width = corner.size();
  for (const auto& s : names) label_width = std::max(label_width, s.size());
  std::size_t cell = 6; // wide enough for "recall"
  for (const auto& s : names) cell = std::max(cell, s.size());
  for (std::int64_t i = 0; i < k * k; ++i) cell = std::max(cell, detail::count_text(matrix.flat(i)).size());

  std::string out = fmt::format("{:<{}}", corner, label_width);
  for (const auto& s : names) out += fmt::format("  {:>{}}", s, cell);
  out += fmt::format("  {:>{}}\n", "recall", cell);
  for (std::int64_t i = 0; i < k; ++i) {
    out += fmt::format("{:<{}}", names[static_cast<std::size_t>(i)], label_width);
    double row = 0;
    for (std::int64_t j = 0; j < k; ++j) {
      const double v = matrix.flat(i * k + j);
      row += v;
      out += fmt::format("  {:>{}}", detail::count_text(v), cell);
    }
    const std::string recall = row > 0 ? fmt::format("{:.3f}", matrix.flat(i * k + i) / row) : "-";
    out += fmt::format("  {:>{}}\n", recall, cell);
  }
  return out;
}

namespace {
/// Predictions and targets as equally long float64 vectors (a [n, 1] output against [n] targets
/// too); a ShapeError naming `who` otherwise.
std::pair<std::vector<double>, std::vector<double>> value_pairs(const Tensor& predicted,
                                                                const Tensor& targets, std::string_view who) {
  if (!predicted.defined() || !targets.defined() || predicted.rank() < 1 || targets.rank() < 1 ||
      predicted.numel() != targets.numel() || predicted.shape()[0] != targets.shape()[0])
    throw ShapeError(fmt::format("{}: predictions of shape {} do not match targets of shape {}", who,
                                 detail::shape_of(predicted), detail::shape_of(targets)));
  if (predicted.numel() == 0) throw ValueError(fmt::format("{}: no rows to score", who));
  return {predicted.to_vector(), targets.to_vector()};
}
} // namespace

double mean_squared_error(const Tensor& predicted, const Tensor& targets) {
  const auto [p, t] = value_pairs(predicted, targets, "mean_squared_error");
  double sum = 0;
  for (std::size_t i = 0; i < p.size(); ++i) sum += (p[i] - t[i]) * (p[i] - t[i]);
  return sum / static_cast<double>(p.size());
}

double mean_absolute_error(const Tensor& predicted, const Tensor& targets) {
  const auto [p, t] = value_pairs(predicted, targets, "mean_absolute_error");
  double sum = 0;
  for (std::size_t i = 0; i < p.size(); ++i) sum += std::abs(p[i] - t[i]);
  return sum / static_cast<double>(p.size());
}

double r2_score(const Tensor& predicted, const Tensor& targets) {
  const auto [p, t] = value_pairs(predicted, targets, "r2_score");
  const std::size_t n = static_cast<std::size_t>(targets.shape()[0]), k = p.size() / n;
  double total = 0;
  for (std::size_t j = 0; j < k; ++j) {
    double mean = 0;
    for (std::size_t i = 0; i < n; ++i) mean += t[i * k + j];
    mean /= static_cast<double>(n);
    double residual = 0, spread = 0;
    for (std::size_t i = 0; i < n; ++i) {
      residual += (t[i * k + j] - p[i * k + j]) * (t[i * k + j] - p[i * k + j]);
      spread += (t[i * k + j] - mean) * (t[i * k + j] - mean);
    }
    // sklearn: a constant target scores 1 when predicted exactly, 0 otherwise.
    total += spread != 0 ? 1 - residual / spread : residual == 0 ? 1.0 : 0.0;
  }
  return total / static_cast<double>(k);
}

} // namespace gg::metrics
