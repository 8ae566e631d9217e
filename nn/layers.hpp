// Layers: Linear, activations (GELU too), Flatten, Dropout, BatchNorm1d/2d, Embedding, Conv2d,
// MaxPool2d, AvgPool2d. Parameter names, shapes, defaults and initialisation rules are PyTorch's.
#pragma once

#include <cstdint>
#include <string_view>

#include <nn/module.hpp>

namespace gg::nn {

/// y = x W^T + b with weight [out, in] and bias [out]; W and b ~ U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true, DType dtype = f64);
  Var forward(const Var& x) override;
  std::string describe() const override;
  Var weight, bias; ///< bias is undefined without one
  std::int64_t in_features, out_features;
};

/// An elementwise activation as a module.
class Activation : public Module {
public:
  enum class Kind { sigmoid, tanh, relu, leaky_relu, gelu, gelu_tanh, identity };
  explicit Activation(Kind kind, double negative_slope = 0.01) : kind_(kind), slope_(negative_slope) {}
  Var forward(const Var& x) override;
  std::string describe() const override;

private:
  Kind kind_;
  double slope_;
};
struct Sigmoid : Activation {
  Sigmoid() : Activation(Kind::sigmoid) {}
};
struct Tanh : Activation {
  Tanh() : Activation(Kind::tanh) {}
};
struct ReLU : Activation {
  ReLU() : Activation(Kind::relu) {}
};
struct LeakyReLU : Activation {
  explicit LeakyReLU(double negative_slope = 0.01) : Activation(Kind::leaky_relu, negative_slope) {}
};
/// x·Φ(x) as torch.nn.GELU; approximate "tanh" is PyTorch's tanh approximation, another is refused.
struct GELU : Activation {
  explicit GELU(std::string_view approximate = "none");
};
struct Identity : Activation {
  Identity() : Activation(Kind::identity) {}
};

/// softmax along an axis (default the last).
class Softmax : public Module {
public:
  explicit Softmax(int axis = -1) : axis_(axis) {}
  Var forward(const Var& x) override { return softmax(x, axis_); }
  std::string describe() const override;

private:
  int axis_;
};

/// Collapses dimensions start_dim..end_dim into one (default: all but the batch dimension).
class Flatten : public Module {
public:
  explicit Flatten(int start_dim = 1, int end_dim = -1) : start_(start_dim), end_(end_dim) {}
  Var forward(const Var& x) override;
  std::string describe() const override { return "Flatten"; }

private:
  int start_, end_;
};

/// In training, zeroes each element with probability p and scales the rest by 1/(1-p) (gg::dropout,
/// drawing from its own generator, seeded by seed).
class Dropout : public Module {
public:
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0);
  Var forward(const Var& x) override;
  std::string describe() const override;

private:
  double p_;
  Rng rng_;
};

/// Batch normalisation over [N, C] or [N, C, L] (BatchNorm1d) and [N, C, H, W] (BatchNorm2d):
/// batch statistics in training (biased variance to normalise, unbiased for the running
/// estimate), running statistics in eval; weight (gamma) and bias (beta) of size C.
class BatchNorm : public Module {
public:
  BatchNorm(std::int64_t num_features, int spatial_dims, double eps = 1e-5, double momentum = 0.1,
            bool affine = true, DType dtype = f64);
  Var forward(const Var& x) override;
  std::string describe() const override;
  Var weight, bias;
  Tensor running_mean, running_var, num_batches_tracked;

private:
  std::int64_t c_;
  int spatial_;
  double eps_, momentum_;
};
struct BatchNorm1d : BatchNorm {
  explicit BatchNorm1d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true, DType dtype = f64)
      : BatchNorm(num_features, 1, eps, momentum, affine, dtype) {}
};
struct BatchNorm2d : BatchNorm {
  explicit BatchNorm2d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true, DType dtype = f64)
      : BatchNorm(num_features, 2, eps, momentum, affine, dtype) {}
};

/// A lookup table: integer indices (any shape, as doubles) -> rows of weight [num, dim] ~ N(0, 1).
class Embedding : public Module {
public:
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, DType dtype = f64);
  Var forward(const Var& indices) override;
  std::string describe() const override;
  Var weight;

private:
  std::int64_t num_, dim_;
};

/// 2-d convolution of [N, C, H, W] (or one image [C, H, W]) by weight [out, C / groups, kh, kw]
/// (+ bias [out]): one gg::conv2d op (im2col and a matrix product per group), with
/// torch.nn.Conv2d's arguments (a size is one number or {height, width}). Kaiming-uniform
/// initialisation as PyTorch.
class Conv2d : public Module {
public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size, Size2 stride = 1,
         Size2 padding = 0, Size2 dilation = 1, std::int64_t groups = 1, bool bias = true, DType dtype = f64);
  /// The earlier order, bias after padding: Conv2d(1, 32, 3, 1, 1, true, f32).
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size, Size2 stride, Size2 padding,
         bool bias, DType dtype = f64);
  Var forward(const Var& x) override;
  std::string describe() const override;
  Var weight, bias;

private:
  std::int64_t in_, out_;
  Size2 k_, stride_, padding_, dilation_;
  std::int64_t groups_;
};

/// 1-d convolution of sequences [N, C, L] (or one [C, L]) by weight [out, C / groups, k] (+ bias
/// [out]), as torch.nn.Conv1d: gg::conv1d, a conv2d over rows one high.
class Conv1d : public Module {
public:
  Conv1d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size,
         std::int64_t stride = 1, std::int64_t padding = 0, std::int64_t dilation = 1,
         std::int64_t groups = 1, bool bias = true, DType dtype = f64);
  Var forward(const Var& x) override;
  std::string describe() const override;
  Var weight, bias;

private:
  std::int64_t in_, out_, k_, stride_, padding_, dilation_, groups_;
};

/// Max or average over windows of [N, C, H, W] (or one image [C, H, W]); the stride defaults to the
/// kernel. As PyTorch, padding is at most half the kernel (else a ValueError at construction) and
/// ceil_mode keeps a last, partial window. Max pooling pads with -inf and is one gg::max_pool2d op
/// (a window's gradient to one element, PyTorch's: its first maximum, or its last NaN);
/// average pooling is gg::avg_pool2d, counting zero padding by default (count_include_pad).
class Pool2d : public Module {
public:
  Pool2d(bool max, Size2 kernel_size, Size2 stride = 0, Size2 padding = 0, Size2 dilation = 1,
         bool ceil_mode = false, bool count_include_pad = true);
  Var forward(const Var& x) override;
  std::string describe() const override;

private:
  bool max_;
  Size2 k_, stride_, padding_, dilation_;
  bool ceil_mode_, count_include_pad_;
};
/// torch.nn.MaxPool2d(kernel_size, stride = kernel_size, padding, dilation, ceil_mode).
struct MaxPool2d : Pool2d {
  explicit MaxPool2d(Size2 kernel_size, Size2 stride = 0, Size2 padding = 0, Size2 dilation = 1,
                     bool ceil_mode = false)
      : Pool2d(true, kernel_size, stride, padding, dilation, ceil_mode) {}
};
/// torch.nn.AvgPool2d(kernel_size, stride = kernel_size, padding, ceil_mode, count_include_pad).
struct AvgPool2d : Pool2d {
  explicit AvgPool2d(Size2 kernel_size, Size2 stride = 0, Size2 padding = 0, bool ceil_mode = false,
                     bool count_include_pad = true)
      : Pool2d(false, kernel_size, stride, padding, 1, ceil_mode, count_include_pad) {}
};

} // namespace gg::nn
