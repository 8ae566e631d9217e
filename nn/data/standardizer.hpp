// gg::data::Standardizer: per-column standardisation (x - mean) / std, fitted on training data with
// the population standard deviation, as sklearn's StandardScaler; its state can be saved and restored.
#pragma once

#include <autodiff/tensor.hpp>

#include <map>
#include <string>

namespace gg::data {

/// Per-column standardisation of [n, d] data. Fit on the training rows only, then transform
/// training and test rows alike:
///
///     Standardizer s;
///     Tensor xs = s.fit_transform(x_train);
///     Tensor xt = s.transform(x_test);
class Standardizer {
public:
  /// An unfitted standardizer.
  Standardizer() = default;
  /// A fitted one, from saved [d] mean and std tensors (std > 0 everywhere, ValueError otherwise).
  Standardizer(const Tensor& mean, const Tensor& stddev);

  /// Learns each column's mean and population std (ddof 0); a constant column gets std 1.
  Standardizer& fit(const Tensor& x);
  /// (x - mean) / std for each column, in x's dtype (UsageError when not fitted).
  Tensor transform(const Tensor& x) const;
  /// x * std + mean: undoes transform.
  Tensor inverse_transform(const Tensor& x) const;
  /// fit(x) then transform(x).
  Tensor fit_transform(const Tensor& x);

  bool fitted() const { return mean_.defined(); }
  /// The fitted [d] float64 column means.
  const Tensor& mean() const { return mean_; }
  /// The fitted [d] float64 column standard deviations (1 for constant columns).
  const Tensor& std() const { return std_; }

  /// The state as named tensors {"mean", "std"}, e.g. for a safetensors file.
  std::map<std::string, Tensor> state_dict() const;
  /// Restores the state saved by state_dict (ValueError when a key is missing or shapes differ).
  void load_state_dict(const std::map<std::string, Tensor>& state);

private:
  Tensor mean_, std_;
};

} // namespace gg::data
