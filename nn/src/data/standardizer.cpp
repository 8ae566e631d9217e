// Standardizer: per-column mean and population standard deviation, computed in float64 with two
// passes (no catastrophic cancellation), applied in the data's own dtype.
#include <nn/data/standardizer.hpp>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

namespace gg::data {

namespace detail {
namespace {

/// Applies out = (x - shift) * factor column-wise (column = index along the last axis).
Tensor affine_columns(const Tensor& x, const std::vector<double>& shift, const std::vector<double>& factor,
                      bool inverse) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const auto d = static_cast<std::int64_t>(shift.size());
  auto run = [&](const auto* src, auto* dst) {
    using T = std::remove_cvref_t<decltype(*dst)>;
    for (std::int64_t i = 0, n = x.numel(); i < n; ++i) {
      const auto j = static_cast<std::size_t>(i % d);
      const double v = static_cast<double>(src[i]);
      dst[i] = static_cast<T>(inverse ? v * factor[j] + shift[j] : (v - shift[j]) / factor[j]);
    }
  };
  if (x.dtype() == f64)
    run(x.data<double>(), out.data<double>());
  else
    run(x.data<float>(), out.data<float>());
  return out;
}

} // namespace
} // namespace detail

Standardizer::Standardizer(const Tensor& mean, const Tensor& stddev) {
  if (!mean.defined() || !stddev.defined() || mean.rank() != 1 || !(mean.shape() == stddev.shape()))
    throw ShapeError(
        fmt::format("Standardizer: mean and std must be 1-d of the same size, got shapes {} and {}",
                    mean.defined() ? mean.shape().str() : "undefined",
                    stddev.defined() ? stddev.shape().str() : "undefined"));
  for (std::int64_t j = 0; j < stddev.numel(); ++j) {
    const double s = stddev.flat(j);
    if (!(s > 0) || !std::isfinite(s))
      throw ValueError(fmt::format("Standardizer: std[{}] = {} must be positive and finite", j, s));
  }
  mean_ = mean.to(f64).clone();
  std_ = stddev.to(f64).clone();
}

Standardizer& Standardizer::fit(const Tensor& x) {
  if (!x.defined() || x.rank() != 2)
    throw ShapeError(fmt::format("Standardizer::fit: expected [n, d] data, got shape {}",
                                 x.defined() ? x.shape().str() : "undefined"));
  const std::int64_t n = x.shape()[0], d = x.shape()[1];
  if (n == 0) throw ValueError("Standardizer::fit: no rows to fit on");
  const std::vector<double> v = x.to_vector();
  std::vector<double> mean(static_cast<std::size_t>(d), 0.0), sd(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t j = 0; j < d; ++j) {
    double sum = 0, lo = v[static_cast<std::size_t>(j)], hi = lo;
    for (std::int64_t i = 0; i < n; ++i) {
      const double e = v[static_cast<std::size_t>(i * d + j)];
      sum += e;
      lo = std::min(lo, e);
      hi = std::max(hi, e);
    }
    const double m = sum / static_cast<double>(n);
    double sq = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double e = v[static_cast<std::size_t>(i * d + j)] - m;
      sq += e * e;
    }
    const auto k = static_cast<std::size_t>(j);
    // A constant column would divide by zero: like sklearn, it is left unscaled (std 1).
    mean[k] = lo == hi ? lo : m;
    sd[k] = lo == hi ? 1.0 : std::sqrt(sq / static_cast<double>(n));
    if (!std::isfinite(mean[k]) || !std::isfinite(sd[k]) || sd[k] == 0)
      throw ValueError(fmt::format("Standardizer::fit: column {} has no finite, positive standard deviation "
                                   "(mean {}, std {})",
                                   j, mean[k], sd[k]));
  }
  mean_ = Tensor(mean, {d});
  std_ = Tensor(sd, {d});
  return *this;
}

Tensor Standardizer::transform(const Tensor& x) const {
  if (!fitted()) throw UsageError("Standardizer::transform: call fit() first");
  const std::int64_t d = mean_.numel();
  if (!x.defined() || x.rank() < 1 || x.shape()[x.rank() - 1] != d)
    throw ShapeError(fmt::format("Standardizer::transform: expected data with {} columns, got shape {}", d,
                                 x.defined() ? x.shape().str() : "undefined"));
  return detail::affine_columns(x, mean_.to_vector(), std_.to_vector(), false);
}

Tensor Standardizer::inverse_transform(const Tensor& x) const {
  if (!fitted()) throw UsageError("Standardizer::inverse_transform: call fit() first");
  const std::int64_t d = mean_.numel();
  if (!x.defined() || x.rank() < 1 || x.shape()[x.rank() - 1] != d)
    throw ShapeError(
        fmt::format("Standardizer::inverse_transform: expected data with {} columns, got shape {}", d,
                    x.defined() ? x.shape().str() : "undefined"));
  return detail::affine_columns(x, mean_.to_vector(), std_.to_vector(), true);
}

Tensor Standardizer::fit_transform(const Tensor& x) {
  return fit(x).transform(x);
}

std::map<std::string, Tensor> Standardizer::state_dict() const {
  if (!fitted()) throw UsageError("Standardizer::state_dict: call fit() first");
  return {{"mean", mean_}, {"std", std_}};
}

void Standardizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  const auto mean = state.find("mean");
  const auto sd = state.find("std");
  if (mean == state.end() || sd == state.end())
    throw ValueError(fmt::format(
        "Standardizer::load_state_dict: the state needs tensors 'mean' and 'std'{}{}",
        mean == state.end() ? "; 'mean' is missing" : "", sd == state.end() ? "; 'std' is missing" : ""));
  *this = Standardizer(mean->second, sd->second);
}

} // namespace gg::data
