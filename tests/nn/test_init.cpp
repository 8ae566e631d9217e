// Initialisers: torch.nn.init's fans, gains, bounds and spreads; seeded reproducibility; and the
// layers' PyTorch defaults (Linear and Conv2d weights within 1/sqrt(fan_in)).
#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include <cmath>

using gg::Tensor;
namespace init = gg::nn::init;

namespace {
double mean_of(const Tensor& t) {
  return gg::kernel::mean(t).item();
}
double std_of(const Tensor& t) {
  const double m = mean_of(t);
  double s = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) s += (t.flat(i) - m) * (t.flat(i) - m);
  return std::sqrt(s / static_cast<double>(t.numel()));
}
double max_abs(const Tensor& t) {
  return gg::kernel::max(gg::kernel::unary(gg::kernel::Unary::abs, t)).item();
}
} // namespace

TEST_CASE("init: fans and gains are PyTorch's") {
  CHECK(init::fans(Tensor::zeros({3, 5})) == std::pair<std::int64_t, std::int64_t>{5, 3});
  CHECK(init::fans(Tensor::zeros({8, 4, 3, 3})) == std::pair<std::int64_t, std::int64_t>{36, 72});
  CHECK_THROWS_AS(init::fans(Tensor::zeros({3})), gg::ValueError);
  CHECK(init::calculate_gain("tanh") == Approx(5.0 / 3));
  CHECK(init::calculate_gain("relu") == Approx(std::sqrt(2.0)));
  CHECK(init::calculate_gain("leaky_relu", std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3)));
  CHECK_THROWS_WITH(init::calculate_gain("swish"), Catch::Contains("swish"));
}

TEST_CASE("init: uniform kinds stay within their bound and normal kinds have their spread") {
  gg::Rng rng(3);
  Tensor w = Tensor::zeros({200, 300});
  init::xavier_uniform(w, 1.0, rng);
  const double xb = std::sqrt(6.0 / 500);
  CHECK(max_abs(w) <= xb);
  CHECK(max_abs(w) > 0.99 * xb);
  CHECK(std_of(w) == Approx(xb / std::sqrt(3.0)).epsilon(0.02));
  init::xavier_normal(w, 2.0, rng);
  CHECK(std_of(w) == Approx(2.0 * std::sqrt(2.0 / 500)).epsilon(0.02));
  init::kaiming_uniform(w, 0, init::FanMode::fan_in, "relu", rng);
  CHECK(max_abs(w) <= std::sqrt(2.0) * std::sqrt(3.0 / 300));
  init::kaiming_normal(w, 0, init::FanMode::fan_out, "relu", rng);
  CHECK(std_of(w) == Approx(std::sqrt(2.0 / 200)).epsilon(0.02));
  CHECK(std::fabs(mean_of(w)) < 0.002);
  init::uniform(w, 2, 3, rng);
  CHECK(gg::kernel::min(w).item() >= 2);
  CHECK(gg::kernel::max(w).item() < 3);
  init::constant(w, 0.25);
  CHECK(gg::kernel::max(w).item() == 0.25);
  CHECK_THROWS_AS(init::normal(w, 0, -1, rng), gg::ValueError);
}

TEST_CASE("init: seeded initialisation reproduces, and layers use PyTorch's default bounds") {
  gg::nn::manual_seed(42);
  gg::nn::Linear a(10, 4);
  gg::nn::manual_seed(42);
  gg::nn::Linear b(10, 4);
  CHECK(a.weight.value().to_vector() == b.weight.value().to_vector());
  CHECK(max_abs(a.weight.value()) <= 1 / std::sqrt(10.0));
  CHECK(max_abs(a.bias.value()) <= 1 / std::sqrt(10.0));
  gg::nn::Conv2d c(3, 2, 5);
  CHECK(max_abs(c.weight.value()) <= 1 / std::sqrt(75.0));
  gg::nn::Linear f(3, 2, true, gg::f32);
  CHECK(f.weight.dtype() == gg::f32);
}
