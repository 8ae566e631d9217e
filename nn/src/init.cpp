// Initialisers (torch.nn.init's formulas) and the default generator layers draw from.
#include <nn/init.hpp>

#include <cmath>
#include <mutex>

#include <fmt/format.h>

namespace gg::nn {

namespace {
std::mutex g_rng_mutex;
Rng g_rng(0);

/// Runs f with the default generator, locked (layers may be built on several threads).
template <class F> void with_default_rng(F&& f) {
  std::lock_guard lock(g_rng_mutex);
  f(g_rng);
}

void fill(Tensor& t, Rng& rng, bool normal, double a, double b) {
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.set_flat(i, normal ? a + b * rng.normal() : a + (b - a) * rng.uniform());
}
} // namespace

void manual_seed(std::uint64_t seed) {
  with_default_rng([&](Rng& rng) { rng = Rng(seed); });
}

namespace init {

std::pair<std::int64_t, std::int64_t> fans(const Tensor& w) {
  if (w.rank() < 2)
    throw ValueError(fmt::format(
        "init: fan in and fan out need a tensor of at least 2 dimensions, got shape {}", w.shape().str()));
  std::int64_t receptive = 1;
  for (int i = 2; i < w.rank(); ++i) receptive *= w.shape()[i];
  return {w.shape()[1] * receptive, w.shape()[0] * receptive};
}

double calculate_gain(std::string_view nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid" || nonlinearity == "conv2d") return 1;
  if (nonlinearity == "tanh") return 5.0 / 3;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1 + param * param));
  throw ValueError(
      fmt::format("init: unknown nonlinearity '{}' (linear, sigmoid, tanh, relu, leaky_relu)", nonlinearity));
}

void uniform(Tensor& t, double a, double b, Rng& rng) {
  if (!(a <= b)) throw ValueError(fmt::format("init::uniform: a ({}) must not exceed b ({})", a, b));
  fill(t, rng, false, a, b);
}
void normal(Tensor& t, double mean, double std, Rng& rng) {
  if (!(std >= 0)) throw ValueError(fmt::format("init::normal: std must be >= 0, got {}", std));
  fill(t, rng, true, mean, std);
}
void uniform(Tensor& t, double a, double b) {
  with_default_rng([&](Rng& rng) { uniform(t, a, b, rng); });
}
void normal(Tensor& t, double mean, double std) {
  with_default_rng([&](Rng& rng) { normal(t, mean, std, rng); });
}
void constant(Tensor& t, double value) {
  t.fill(value);
}
void zeros(Tensor& t) {
  t.fill(0);
}
void ones(Tensor& t) {
  t.fill(1);
}

void xavier_uniform(Tensor& t, double gain, Rng& rng) {
  const auto [in, out] = fans(t);
  const double a = gain * std::sqrt(6.0 / static_cast<double>(in + out));
  uniform(t, -a, a, rng);
}
void xavier_normal(Tensor& t, double gain, Rng& rng) {
  const auto [in, out] = fans(t);
  normal(t, 0, gain * std::sqrt(2.0 / static_cast<double>(in + out)), rng);
}
void xavier_uniform(Tensor& t, double gain) {
  with_default_rng([&](Rng& rng) { xavier_uniform(t, gain, rng); });
}
void xavier_normal(Tensor& t, double gain) {
  with_default_rng([&](Rng& rng) { xavier_normal(t, gain, rng); });
}

namespace {
double kaiming_std(const Tensor& t, double a, FanMode mode, std::string_view nonlinearity) {
  const auto [in, out] = fans(t);
  const double fan = static_cast<double>(mode == FanMode::fan_in ? in : out);
  return calculate_gain(nonlinearity, a) / std::sqrt(fan);
}
} // namespace

void kaiming_uniform(Tensor& t, double a, FanMode mode, std::string_view nonlinearity, Rng& rng) {
  const double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity);
  uniform(t, -bound, bound, rng);
}
void kaiming_normal(Tensor& t, double a, FanMode mode, std::string_view nonlinearity, Rng& rng) {
  normal(t, 0, kaiming_std(t, a, mode, nonlinearity), rng);
}
void kaiming_uniform(Tensor& t, double a, FanMode mode, std::string_view nonlinearity) {
  with_default_rng([&](Rng& rng) { kaiming_uniform(t, a, mode, nonlinearity, rng); });
}
void kaiming_normal(Tensor& t, double a, FanMode mode, std::string_view nonlinearity) {
  with_default_rng([&](Rng& rng) { kaiming_normal(t, a, mode, nonlinearity, rng); });
}

} // namespace init
} // namespace gg::nn
