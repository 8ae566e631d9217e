// The transformer's layers: LayerNorm's outputs and gradients against PyTorch
// (tests/nn/data/make_seq_reference.py -> transformer_reference.safetensors, weights loaded by name)
// in float64 and float32 and against finite differences; names, defaults and bad input.
#include "seq_reference.hpp"

#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;
using namespace gg::test;

namespace {

const gg::safetensors::File& reference() {
  return reference_file("transformer_reference.safetensors");
}

/// The reference cases of a kind.
std::vector<Case> cases_of(const std::string& kind) {
  std::vector<Case> out;
  for (const auto& [name, options] : reference().metadata) {
    Case c(reference(), name);
    if (c.text("kind") == kind) out.push_back(std::move(c));
  }
  return out;
}

std::shared_ptr<nn::LayerNorm> make_layer_norm(const Case& c, gg::DType dtype) {
  std::vector<std::int64_t> shape;
  std::istringstream in(c.text("shape"));
  for (std::string d; std::getline(in, d, ',');) shape.push_back(std::stoll(d));
  return std::make_shared<nn::LayerNorm>(shape, c.number("eps"), c.flag("affine"), dtype);
}

} // namespace

TEST_CASE("transformer: LayerNorm equals PyTorch's output and gradients in float64 and float32, and finite "
          "differences") {
  const std::vector<Case> cases = cases_of("layer_norm");
  REQUIRE(cases.size() == 4);
  for (const Case& c : cases)
    for (auto [dtype, tolerance] : {std::pair{gg::f64, 1e-10}, std::pair{gg::f32, 1e-4}}) {
      INFO("case " << c.name << " (" << c.options << ") in " << gg::dtype_name(dtype));
      auto m = make_layer_norm(c, dtype);
      m->load_state_dict(c.state_dict(dtype));
      Var x(c.tensor("x").to(dtype));
      const Var y = (*m)(x);
      CHECK(max_relative_error(y.value(), c.tensor("y")) < tolerance);
      gg::sum(y * Var::constant(c.tensor("r_y").to(dtype))).backward();
      CHECK(max_relative_error(x.grad(), c.tensor("g.x")) < tolerance);
      for (const auto& [k, p] : m->named_parameters()) {
        INFO("gradient of " << k);
        CHECK(max_relative_error(p.grad(), c.tensor("g." + k)) < tolerance);
      }
      if (dtype == gg::f64) {
        std::vector<std::pair<std::string, Var>> leaves{{"x", x}};
        for (auto& named : m->named_parameters()) leaves.push_back(named);
        check_gradients([&] { return gg::sum((*m)(x)*Var::constant(c.tensor("r_y"))); }, leaves);
      }
    }
}

TEST_CASE("transformer: LayerNorm's defaults, names and bad input") {
  nn::LayerNorm ln(4);
  const auto named = ln.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "weight");
  CHECK(named[0].second.value().to_vector() == std::vector<double>{1, 1, 1, 1});
  CHECK(named[1].first == "bias");
  CHECK(named[1].second.value().to_vector() == std::vector<double>{0, 0, 0, 0});
  CHECK(ln.describe() == "LayerNorm([4], eps=1e-05)");
  CHECK(nn::LayerNorm({2, 3}, 1e-3, false).describe() ==
        "LayerNorm([2, 3], eps=0.001, elementwise_affine=false)");
  CHECK(nn::LayerNorm({2, 3}, 1e-3, false).named_parameters().empty());
  // Each row comes out with mean 0, divided by sqrt(biased variance + eps).
  const Tensor y = ln(Var::constant(Tensor({1, 2, 3, 4, -1, 0, 0, 1}, {2, 4}))).value();
  CHECK(y.flat(0) + y.flat(1) + y.flat(2) + y.flat(3) == Approx(0).margin(1e-12));
  CHECK(y.flat(4) == Approx(-1 / std::sqrt(0.5 + 1e-5)));
  CHECK_THROWS_WITH(ln(Var::constant(Tensor::zeros({2, 3}))),
                    "LayerNorm([4], eps=1e-05): expected input [*, 4], got shape [2, 3]");
  CHECK_THROWS_WITH(nn::LayerNorm({2, 3})(Var::constant(Tensor::zeros({3}))),
                    "LayerNorm([2, 3], eps=1e-05): expected input [*, 2, 3], got shape [3]");
  CHECK_THROWS_WITH(nn::LayerNorm(0), "LayerNorm: normalized_shape [0] must be positive");
  CHECK_THROWS_WITH(nn::LayerNorm(std::vector<std::int64_t>{}),
                    "LayerNorm: normalized_shape must have 1 to 8 dimensions, got 0");
  CHECK_THROWS_WITH(nn::LayerNorm(3, -1.0), "LayerNorm: eps must be >= 0, got -1");
}
