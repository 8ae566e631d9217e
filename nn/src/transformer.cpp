// The transformer's layers written with autodiff's ops, so that backward comes for free: LayerNorm
// as mean and variance over the trailing dimensions.
#include <nn/transformer.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace gg::nn {

LayerNorm::LayerNorm(std::vector<std::int64_t> normalized_shape, double eps, bool affine, DType dtype)
    : shape_(std::move(normalized_shape)), eps_(eps) {
  if (shape_.empty() || shape_.size() > static_cast<std::size_t>(Shape::max_rank))
    throw ValueError(fmt::format("LayerNorm: normalized_shape must have 1 to {} dimensions, got {}",
                                 Shape::max_rank, shape_.size()));
  for (std::int64_t d : shape_)
    if (d <= 0)
      throw ValueError(
          fmt::format("LayerNorm: normalized_shape [{}] must be positive", fmt::join(shape_, ", ")));
  if (!(eps >= 0)) throw ValueError(fmt::format("LayerNorm: eps must be >= 0, got {}", eps));
  if (affine) {
    weight = register_parameter("weight", Tensor::ones(Shape(shape_), dtype));
    bias = register_parameter("bias", Tensor::zeros(Shape(shape_), dtype));
  }
}

LayerNorm::LayerNorm(std::int64_t normalized_shape, double eps, bool affine, DType dtype)
    : LayerNorm(std::vector<std::int64_t>{normalized_shape}, eps, affine, dtype) {}

Var LayerNorm::forward(const Var& x) {
  const Shape s = x.shape();
  const int k = static_cast<int>(shape_.size());
  bool fits = s.rank() >= k;
  for (int i = 0; fits && i < k; ++i) fits = s[s.rank() - k + i] == shape_[static_cast<std::size_t>(i)];
  if (!fits)
    throw ShapeError(fmt::format("{}: expected input [*, {}], got shape {}", describe(),
                                 fmt::join(shape_, ", "), s.str()));
  // The normalised dimensions as one: statistics per row of [rows, M].
  std::vector<std::int64_t> rows(s.begin(), s.begin() + (s.rank() - k));
  rows.push_back(-1);
  const Var flat = reshape(x, rows);
  const Var xc = flat - mean(flat, -1, true);
  const Var var = mean(xc * xc, -1, true);
  const Var y = reshape(xc / sqrt(var + eps_), s.to_vector());
  return weight.defined() ? y * weight + bias : y;
}

std::string LayerNorm::describe() const {
  return fmt::format("LayerNorm([{}], eps={}{})", fmt::join(shape_, ", "), eps_,
                     weight.defined() ? "" : ", elementwise_affine=false");
}

} // namespace gg::nn
