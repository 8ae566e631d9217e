// The layers' forward passes, written with autodiff ops so that backward comes for free, and
// their PyTorch-default initialisation.
#include <nn/init.hpp>
#include <nn/layers.hpp>

#include <autodiff/kernel.hpp>

#include <cmath>

#include <fmt/format.h>

#include "layer_checks.hpp"

namespace gg::nn {

using detail::require_positive;

namespace {
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for Linear and Conv2d weights
/// (kaiming_uniform with a = sqrt(5)) and biases.
Tensor default_uniform(const Shape& shape, std::int64_t fan_in, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  const double bound = fan_in > 0 ? 1 / std::sqrt(static_cast<double>(fan_in)) : 0;
  init::uniform(t, -bound, bound);
  return t;
}

} // namespace

Linear::Linear(std::int64_t in, std::int64_t out, bool with_bias, DType dtype)
    : in_features(in), out_features(out) {
  require_positive(in, "in_features", "Linear");
  require_positive(out, "out_features", "Linear");
  weight = register_parameter("weight", default_uniform({out, in}, in, dtype));
  if (with_bias) bias = register_parameter("bias", default_uniform({out}, in, dtype));
}

Var Linear::forward(const Var& x) {
  const Shape s = x.shape();
  if (s.rank() == 0 || s[s.rank() - 1] != in_features)
    throw ShapeError(fmt::format("{}: input of shape {} does not have {} features in its last dimension",
                                 describe(), s.str(), in_features));
  return linear(x, weight, bias); // one op: no transposed copy of the weight, fused bias
}

std::string Linear::describe() const {
  // Runs on every call (it labels the layer's scope): concatenation costs a tenth of fmt::format.
  return "Linear(in=" + std::to_string(in_features) + ", out=" + std::to_string(out_features) +
         (bias.defined() ? ")" : ", bias=false)");
}

Var Activation::forward(const Var& x) {
  switch (kind_) {
  case Kind::sigmoid: return sigmoid(x);
  case Kind::tanh: return tanh(x);
  case Kind::relu: return relu(x);
  case Kind::leaky_relu: return leaky_relu(x, slope_);
  case Kind::gelu: return gelu(x);
  case Kind::gelu_tanh: return gelu(x, "tanh");
  case Kind::identity: break;
  }
  return x;
}

std::string Activation::describe() const {
  switch (kind_) {
  case Kind::sigmoid: return "Sigmoid";
  case Kind::tanh: return "Tanh";
  case Kind::relu: return "ReLU";
  case Kind::leaky_relu: return fmt::format("LeakyReLU(negative_slope={})", slope_);
  case Kind::gelu: return "GELU(approximate='none')";
  case Kind::gelu_tanh: return "GELU(approximate='tanh')";
  case Kind::identity: break;
  }
  return "Identity";
}

namespace {
Activation::Kind gelu_kind(std::string_view approximate) {
  if (approximate == "none") return Activation::Kind::gelu;
  if (approximate == "tanh") return Activation::Kind::gelu_tanh;
  throw ValueError(fmt::format("GELU: approximate is \"none\" or \"tanh\", not \"{}\"", approximate));
}
} // namespace

// PyTorch accepts any approximate and refuses it on the first call; refusing it here names it sooner.
GELU::GELU(std::string_view approximate) : Activation(gelu_kind(approximate)) {}

std::string Softmax::describe() const {
  return fmt::format("Softmax(axis={})", axis_);
}

Var Flatten::forward(const Var& x) {
  const Shape s = x.shape();
  const int start = kernel::normalize_axis(start_, s.rank(), "Flatten");
  const int end = kernel::normalize_axis(end_, s.rank(), "Flatten");
  if (start > end) throw ValueError(fmt::format("Flatten: start_dim {} is after end_dim {}", start_, end_));
  std::vector<std::int64_t> shape(s.begin(), s.begin() + start);
  std::int64_t n = 1;
  for (int i = start; i <= end; ++i) n *= s[i];
  shape.push_back(n);
  shape.insert(shape.end(), s.begin() + end + 1, s.end());
  return reshape(x, shape);
}

Dropout::Dropout(double p, std::uint64_t seed) : p_(p), rng_(seed) {
  if (!(p >= 0 && p <= 1)) throw ValueError(fmt::format("Dropout: p must be in [0, 1], got {}", p));
}

Var Dropout::forward(const Var& x) {
  return gg::dropout(x, p_, is_training(), rng_);
}

std::string Dropout::describe() const {
  return fmt::format("Dropout(p={})", p_);
}

BatchNorm::BatchNorm(std::int64_t c, int spatial, double eps, double momentum, bool affine, DType dtype)
    : c_(c), spatial_(spatial), eps_(eps), momentum_(momentum) {
  const char* name = spatial == 2 ? "BatchNorm2d" : "BatchNorm1d";
  require_positive(c, "num_features", name);
  if (!(eps > 0)) throw ValueError(fmt::format("{}: eps must be > 0, got {}", name, eps));
  if (!(momentum >= 0 && momentum <= 1))
    throw ValueError(fmt::format("{}: momentum must be in [0, 1], got {}", name, momentum));
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({c}, dtype));
    bias = register_parameter("bias", Tensor::zeros({c}, dtype));
  }
  running_mean = register_buffer("running_mean", Tensor::zeros({c}, dtype));
  running_var = register_buffer("running_var", Tensor::ones({c}, dtype));
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::scalar(0));
}

Var BatchNorm::forward(const Var& x) {
  const Shape s = x.shape();
  const bool ok = spatial_ == 2 ? s.rank() == 4 : (s.rank() == 2 || s.rank() == 3);
  if (!ok || s[1] != c_)
    throw ShapeError(fmt::format("{}: expected input [N, {}{}], got shape {}", describe(), c_,
                                 spatial_ == 2 ? ", H, W" : "(, L)", s.str()));
  // Channels first, everything else flattened: statistics are per row of [C, M].
  const Var xt = transpose(x, 0, 1);
  const Shape st = xt.shape();
  const Var flat = reshape(xt, {c_, -1});
  const std::int64_t m = flat.shape()[1];
  Var xhat;
  if (is_training()) {
    if (m < 2)
      throw ValueError(fmt::format("{}: training needs more than 1 value per channel, got input shape {}",
                                   describe(), s.str()));
    const Var mu = mean(flat, 1, true);
    const Var xc = flat - mu;
    const Var var = mean(xc * xc, 1, true);
    xhat = xc / sqrt(var + eps_);
    NoGrad no_grad; // running estimates: unbiased variance, as PyTorch
    using kernel::Binary;
    const Tensor mv = mu.value().reshape({c_}), vv = var.value().reshape({c_});
    const double unbias = static_cast<double>(m) / static_cast<double>(m - 1);
    running_mean.assign(kernel::binary(Binary::add,
                                       kernel::binary_scalar(Binary::mul, running_mean, 1 - momentum_),
                                       kernel::binary_scalar(Binary::mul, mv, momentum_)));
    running_var.assign(kernel::binary(Binary::add,
                                      kernel::binary_scalar(Binary::mul, running_var, 1 - momentum_),
                                      kernel::binary_scalar(Binary::mul, vv, momentum_ * unbias)));
    num_batches_tracked.fill(num_batches_tracked.item() + 1);
  } else {
    const Var rm = Var::constant(running_mean.reshape({c_, 1})),
              rv = Var::constant(running_var.reshape({c_, 1}));
    xhat = (flat - rm) / sqrt(rv + eps_);
  }
  Var y = weight.defined() ? xhat * reshape(weight, {c_, 1}) + reshape(bias, {c_, 1}) : xhat;
  return transpose(reshape(y, st.to_vector()), 0, 1);
}

std::string BatchNorm::describe() const {
  return fmt::format("BatchNorm{}d({}, eps={}, momentum={})", spatial_, c_, eps_, momentum_);
}

Embedding::Embedding(std::int64_t num, std::int64_t dim, DType dtype) : num_(num), dim_(dim) {
  require_positive(num, "num_embeddings", "Embedding");
  require_positive(dim, "embedding_dim", "Embedding");
  Tensor w = Tensor::empty({num, dim}, dtype);
  init::normal(w, 0, 1);
  weight = register_parameter("weight", w);
}

Var Embedding::forward(const Var& indices) {
  const Tensor iv = indices.value();
  std::vector<std::int64_t> idx(static_cast<std::size_t>(iv.numel()));
  for (std::int64_t i = 0; i < iv.numel(); ++i) {
    const double v = iv.flat(i);
    if (!(v >= 0 && v < static_cast<double>(num_)) || v != std::floor(v))
      throw ValueError(
          fmt::format("{}: index {} at position {} is not an integer in [0, {})", describe(), v, i, num_));
    idx[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(v);
  }
  std::vector<std::int64_t> shape = iv.shape().to_vector();
  shape.push_back(dim_);
  return reshape(index_select(weight, 0, idx), shape);
}

std::string Embedding::describe() const {
  return fmt::format("Embedding({}, {})", num_, dim_);
}

namespace {
/// "3" for a square size, "(3, 5)" otherwise, as PyTorch prints them.
std::string size_text(Size2 s) {
  return s.h == s.w ? fmt::format("{}", s.h) : fmt::format("({}, {})", s.h, s.w);
}
void require_positive(Size2 s, std::string_view what, std::string_view layer) {
  if (s.h < 1 || s.w < 1)
    throw ValueError(fmt::format("{}: {} must be >= 1, got {}", layer, what, size_text(s)));
}
void require_padding(Size2 s, std::string_view layer) {
  if (s.h < 0 || s.w < 0)
    throw ValueError(fmt::format("{}: padding must be >= 0, got {}", layer, size_text(s)));
}
void require_groups(std::int64_t in, std::int64_t out, std::int64_t groups, std::string_view layer) {
  require_positive(groups, "groups", layer);
  if (in % groups != 0 || out % groups != 0)
    throw ValueError(
        fmt::format("{}: in_channels ({}) and out_channels ({}) must be divisible by groups ({})", layer, in,
                    out, groups));
}
/// The checks Conv1d and Conv2d make of their arguments (S: a length or a Size2).
template <class S>
void require_conv_arguments(std::string_view layer, std::int64_t in, std::int64_t out, S k, S stride,
                            S padding, S dilation, std::int64_t groups) {
  require_positive(in, "in_channels", layer);
  require_positive(out, "out_channels", layer);
  require_positive(k, "kernel_size", layer);
  require_positive(stride, "stride", layer);
  require_positive(dilation, "dilation", layer);
  require_padding(padding, layer);
  require_groups(in, out, groups, layer);
}
} // namespace

Conv2d::Conv2d(std::int64_t in, std::int64_t out, Size2 k, Size2 stride, Size2 padding, Size2 dilation,
               std::int64_t groups, bool with_bias, DType dtype)
    : in_(in), out_(out), k_(k), stride_(stride), padding_(padding), dilation_(dilation), groups_(groups) {
  require_conv_arguments("Conv2d", in, out, k, stride, padding, dilation, groups);
  const std::int64_t fan_in = in / groups * k.h * k.w;
  weight = register_parameter("weight", default_uniform({out, in / groups, k.h, k.w}, fan_in, dtype));
  if (with_bias) bias = register_parameter("bias", default_uniform({out}, fan_in, dtype));
}

Conv2d::Conv2d(std::int64_t in, std::int64_t out, Size2 k, Size2 stride, Size2 padding, bool with_bias,
               DType dtype)
    : Conv2d(in, out, k, stride, padding, 1, 1, with_bias, dtype) {}

Var Conv2d::forward(const Var& x) {
  const Shape s = x.shape();
  if ((s.rank() != 4 && s.rank() != 3) || s[s.rank() - 3] != in_)
    throw ShapeError(fmt::format("{}: expected input [N, {}, H, W] or [{}, H, W], got shape {}", describe(),
                                 in_, in_, s.str()));
  // One op: a GEMM per cache-sized chunk of images and group.
  return conv2d(x, weight, bias, stride_, padding_, dilation_, groups_);
}

std::string Conv2d::describe() const {
  std::string s = fmt::format("Conv2d({}, {}, kernel={}, stride={}, padding={}", in_, out_, size_text(k_),
                              size_text(stride_), size_text(padding_));
  if (dilation_.h != 1 || dilation_.w != 1) s += fmt::format(", dilation={}", size_text(dilation_));
  if (groups_ != 1) s += fmt::format(", groups={}", groups_);
  return s + (bias.defined() ? ")" : ", bias=false)");
}

Conv1d::Conv1d(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride, std::int64_t padding,
               std::int64_t dilation, std::int64_t groups, bool with_bias, DType dtype)
    : in_(in), out_(out), k_(k), stride_(stride), padding_(padding), dilation_(dilation), groups_(groups) {
  require_conv_arguments("Conv1d", in, out, k, stride, padding, dilation, groups);
  const std::int64_t fan_in = in / groups * k;
  weight = register_parameter("weight", default_uniform({out, in / groups, k}, fan_in, dtype));
  if (with_bias) bias = register_parameter("bias", default_uniform({out}, fan_in, dtype));
}

Var Conv1d::forward(const Var& x) {
  const Shape s = x.shape();
  if ((s.rank() != 3 && s.rank() != 2) || s[s.rank() - 2] != in_)
    throw ShapeError(
        fmt::format("{}: expected input [N, {}, L] or [{}, L], got shape {}", describe(), in_, in_, s.str()));
  return conv1d(x, weight, bias, stride_, padding_, dilation_, groups_);
}

std::string Conv1d::describe() const {
  std::string s =
      fmt::format("Conv1d({}, {}, kernel={}, stride={}, padding={}", in_, out_, k_, stride_, padding_);
  if (dilation_ != 1) s += fmt::format(", dilation={}", dilation_);
  if (groups_ != 1) s += fmt::format(", groups={}", groups_);
  return s + (bias.defined() ? ")" : ", bias=false)");
}

Pool2d::Pool2d(bool max, Size2 k, Size2 stride, Size2 padding, Size2 dilation, bool ceil_mode,
               bool count_include_pad)
    : max_(max), k_(k), stride_(stride.h == 0 && stride.w == 0 ? k : stride), padding_(padding),
      dilation_(dilation), ceil_mode_(ceil_mode), count_include_pad_(count_include_pad) {
  const char* name = max ? "MaxPool2d" : "AvgPool2d";
  require_positive(k, "kernel_size", name);
  require_positive(stride_, "stride", name);
  require_positive(dilation, "dilation", name);
  if (padding.h < 0 || padding.w < 0 || 2 * padding.h > k.h || 2 * padding.w > k.w)
    throw ValueError(fmt::format("{}: padding must be in [0, kernel_size/2], got {} for kernel_size {}", name,
                                 size_text(padding), size_text(k)));
}

Var Pool2d::forward(const Var& x) {
  const Shape s = x.shape();
  if (s.rank() != 4 && s.rank() != 3)
    throw ShapeError(
        fmt::format("{}: expected input [N, C, H, W] or [C, H, W], got shape {}", describe(), s.str()));
  if (max_) return max_pool2d(x, k_, stride_, padding_, dilation_, ceil_mode_); // one op, no window columns
  return avg_pool2d(x, k_, stride_, padding_, ceil_mode_, count_include_pad_);
}

std::string Pool2d::describe() const {
  std::string s = fmt::format("{}(kernel={}, stride={}, padding={}", max_ ? "MaxPool2d" : "AvgPool2d",
                              size_text(k_), size_text(stride_), size_text(padding_));
  if (dilation_.h != 1 || dilation_.w != 1) s += fmt::format(", dilation={}", size_text(dilation_));
  if (ceil_mode_) s += ", ceil_mode=true";
  if (!count_include_pad_) s += ", count_include_pad=false";
  return s + ")";
}

} // namespace gg::nn
