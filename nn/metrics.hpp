// Classification metrics: accuracy and the confusion matrix, from class ids or from [n, k] scores
// (logits, probabilities or one-hot rows, reduced by argmax along the last axis); and regression
// metrics (mean squared and absolute error, R²) as sklearn.metrics computes them.
#pragma once

#include <autodiff/tensor.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gg::metrics {

/// The largest number of classes the metrics (and gradgraph's train and eval) accept: a confusion
/// matrix is [k, k] float64 counts, 800 MB at this limit.
inline constexpr std::int64_t max_classes = 10'000;

/// Class ids from predictions: [n] ids are returned as they are, [n, k] scores give their argmax
/// along the last axis. [n, 1] scores are ambiguous (threshold them first) and refused.
Tensor class_ids(const Tensor& predictions_or_scores);

/// Class ids of a binary classifier with one output per row: 1 where the probability of class 1
/// ([n] or [n, 1], e.g. σ of a logit) is above `threshold`, else 0 (Keras' BinaryAccuracy, and
/// sklearn's predict of a logistic model: p > 0.5).
Tensor binary_class_ids(const Tensor& probabilities, double threshold = 0.5);

/// Fraction of rows whose predicted class equals the target; either argument may be [n] class ids
/// or [n, k] scores / one-hot rows.
double accuracy(const Tensor& predictions, const Tensor& targets);

/// [k, k] float64 counts: entry (i, j) counts rows of true class i predicted as class j. Class ids
/// must be integers in [0, num_classes) (ValueError naming the row otherwise).
Tensor confusion_matrix(const Tensor& predicted, const Tensor& targets, std::int64_t num_classes);

/// The matrix as an aligned text table, rows = true class, columns = predicted class, with the
/// class names as labels (default: 0, 1, 2, ...) and each row's recall.
std::string format_confusion_matrix(const Tensor& matrix, const std::vector<std::string>& class_names = {});

/// Mean of (predicted - target)² over all entries; predicted [n] or [n, k] against targets of the
/// same size ([n, 1] against [n] too). ShapeError when the sizes differ, ValueError for no rows.
double mean_squared_error(const Tensor& predicted, const Tensor& targets);
/// Mean of |predicted - target| over all entries (as mean_squared_error).
double mean_absolute_error(const Tensor& predicted, const Tensor& targets);
/// The coefficient of determination 1 - Σ(t - p)² / Σ(t - mean t)², per target column and averaged
/// (sklearn's r2_score, multioutput "uniform_average"; a constant column scores 1 when predicted
/// exactly, else 0).
double r2_score(const Tensor& predicted, const Tensor& targets);

} // namespace gg::metrics
