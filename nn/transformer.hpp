// The transformer's layers as torch.nn: LayerNorm. Constructor arguments, defaults, state-dict names
// and initialisation are PyTorch's.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <nn/module.hpp>

namespace gg::nn {

/// Normalisation over the trailing dimensions given by normalized_shape (biased variance, as
/// PyTorch), then weight (ones) and bias (zeros) of that shape when elementwise_affine. Written as
/// the composition mean / subtract / mean of squares / divide by sqrt(var + eps).
class LayerNorm : public Module {
public:
  LayerNorm(std::vector<std::int64_t> normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
            DType dtype = f64);
  /// LayerNorm({2, 3}): the braces pick this constructor.
  LayerNorm(std::initializer_list<std::int64_t> normalized_shape, double eps = 1e-5,
            bool elementwise_affine = true, DType dtype = f64)
      : LayerNorm(std::vector<std::int64_t>(normalized_shape), eps, elementwise_affine, dtype) {}
  /// LayerNorm({features}, ...).
  explicit LayerNorm(std::int64_t normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     DType dtype = f64);
  Var forward(const Var& x) override;
  std::string describe() const override;
  Var weight, bias; ///< undefined without elementwise_affine

private:
  std::vector<std::int64_t> shape_;
  double eps_;
};

} // namespace gg::nn
