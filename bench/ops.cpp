// One op's training step (forward and backward) in its fused form and as the composition of
// smaller ops it replaced, so each fusion's gain can be measured: by the clock, or by callgrind's
// instruction counts with a fixed --steps (which do not move with the load of a shared machine).
//
//   bench_ops OP fused|composed [--steps N] [--threads N] [--seconds S]
// OPs, float32, at the GPT row's sizes (batch 16, context 128, embedding 128, 4 heads):
//   layer_norm  x [2048, 128] with weight and bias
//   attention   causal self-attention's core, q, k, v [16, 4, 128, 32]: the fused
//               scaled_dot_product_attention, or MultiheadAttention's former composition
#include <autodiff/autodiff.hpp>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include "bench_util.hpp"

namespace {

using namespace gg;

/// LayerNorm as nn::LayerNorm wrote it before the fused op: mean, subtract, mean of squares, divide.
Var layer_norm_composed(const Var& x, const Var& weight, const Var& bias, double eps) {
  const Var xc = x - mean(x, -1, true);
  const Var var = mean(xc * xc, -1, true);
  return xc / sqrt(var + eps) * weight + bias;
}

/// The step of an op: forward, a loss that weighs every output, backward.
std::function<void()> layer_norm_step(bool fused) {
  Rng rng(1);
  const Var x(Tensor::randn({2048, 128}, rng, f32), true);
  const Var w(Tensor::rand({128}, rng, f32, 0.5, 1.5), true), b(Tensor::randn({128}, rng, f32), true);
  const Var r = Var::constant(Tensor::randn({2048, 128}, rng, f32));
  return [=] {
    const Var y = fused ? layer_norm(x, {128}, w, b, 1e-5) : layer_norm_composed(x, w, b, 1e-5);
    sum(y * r).backward();
  };
}

/// Causal attention as MultiheadAttention wrote it before the fused op: scaled query, transposed
/// key, product, an additive mask constant, softmax, product.
Var attention_composed(const Var& q, const Var& k, const Var& v, const Tensor& additive) {
  const double d = static_cast<double>(q.shape()[q.shape().rank() - 1]);
  return matmul(softmax(matmul(q / std::sqrt(d), transpose(k, -2, -1)) + Var::constant(additive), -1), v);
}

std::function<void()> attention_step(bool fused) {
  Rng rng(1);
  const Shape s{16, 4, 128, 32};
  const Var q(Tensor::randn(s, rng, f32), true), k(Tensor::randn(s, rng, f32), true),
      v(Tensor::randn(s, rng, f32), true);
  const Var r = Var::constant(Tensor::randn(s, rng, f32));
  Tensor additive = Tensor::zeros({128, 128}, f32);
  for (std::int64_t i = 0; i < 128; ++i)
    for (std::int64_t j = i + 1; j < 128; ++j) additive.set_flat(i * 128 + j, -INFINITY);
  return [=] {
    const Var y =
        fused ? scaled_dot_product_attention(q, k, v, {}, 0, true) : attention_composed(q, k, v, additive);
    sum(y * r).backward();
  };
}

} // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 3)
      throw std::invalid_argument(
          "usage: bench_ops OP fused|composed [--steps N] [--threads N] [--seconds S]");
    const std::string op = argv[1], variant = argv[2];
    if (variant != "fused" && variant != "composed")
      throw std::invalid_argument("variant is fused or composed, not " + variant);
    long steps = 0;
    double seconds = 1;
    for (int i = 3; i + 1 < argc; i += 2) {
      const std::string k = argv[i], v = argv[i + 1];
      if (k == "--steps")
        steps = std::stol(v);
      else if (k == "--threads")
        kernel::set_num_threads(std::stoi(v));
      else if (k == "--seconds")
        seconds = std::stod(v);
      else
        throw std::invalid_argument("unknown option " + k);
    }
    const std::map<std::string, std::function<std::function<void()>(bool)>> ops = {
        {"layer_norm", layer_norm_step}, {"attention", attention_step}};
    const auto it = ops.find(op);
    if (it == ops.end()) throw std::invalid_argument("unknown op " + op);
    const std::function<void()> step = it->second(variant == "fused");
    if (steps > 0) {
      for (long i = 0; i < steps; ++i) step();
      std::printf("%s %s: %ld steps\n", op.c_str(), variant.c_str(), steps);
      return 0;
    }
    const bench::Timing t = bench::time_steps(step, seconds, 5);
    std::printf("%s %s threads=%d: best %.4f ms/step, median %.4f ms\n", op.c_str(), variant.c_str(),
                kernel::num_threads(), t.best * 1e3, t.median * 1e3);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ops: %s\n", e.what());
    return 2;
  }
  return 0;
}
