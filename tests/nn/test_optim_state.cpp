// The optimizers' typed per-parameter state (AdamParamState and its siblings): what each field holds
// after a step, and that checkpoints written before the state was typed (tests/nn/data/checkpoints,
// made by make_checkpoints.cpp there) still load, re-save byte for byte and resume bit-exactly.
#include "data/checkpoints/configs.hpp"

#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;
namespace optim = gg::optim;
using gg::test::read_file;

namespace {

const std::string checkpoints = std::string(GG_TEST_DATA) + "/checkpoints";

/// One parameter with a gradient g = [1, -2] (from f = p·[1, -2]).
Var param_with_grad(gg::DType dtype = gg::f64) {
  Var p(Tensor({0.5, -0.25}, {2}, dtype));
  gg::sum(p * Var::constant(Tensor({1, -2}, {2}, dtype))).backward();
  return p;
}

} // namespace

TEST_CASE("optim state: each optimizer's per-parameter state is a named struct") {
  // Adam with AMSGrad: no state before the first step, then step, both moments and the maximum.
  Var p = param_with_grad();
  optim::Adam adam({p}, optim::AdamOptions(0.1).amsgrad(true));
  CHECK(adam.param_state(0) == nullptr);
  adam.step();
  const optim::AdamParamState* s = adam.param_state(0);
  REQUIRE(s != nullptr);
  CHECK(s->step == 1.0f);
  CHECK_THAT(s->exp_avg.to_vector(), Catch::Matchers::Approx(std::vector<double>{0.1, -0.2}).epsilon(1e-15));
  CHECK_THAT(s->exp_avg_sq.to_vector(),
             Catch::Matchers::Approx(std::vector<double>{0.001, 0.004}).epsilon(1e-15));
  CHECK(s->max_exp_avg_sq.to_vector() == s->exp_avg_sq.to_vector());
  CHECK_THROWS_AS(adam.param_state(1), std::out_of_range);
  // Without AMSGrad there is no maximum, and no entry for it.
  Var q = param_with_grad();
  optim::Adam plain({q});
  plain.step();
  CHECK_FALSE(plain.param_state(0)->max_exp_avg_sq.defined());
  CHECK(plain.state().size() == 4); // lr, step, exp_avg, exp_avg_sq

  // SGD: the momentum buffer starts as the first gradient; without momentum there is none.
  Var r = param_with_grad(gg::f32);
  optim::SGD sgd({r}, optim::SGDOptions(0.1).momentum(0.9));
  sgd.step();
  CHECK(sgd.param_state(0)->momentum_buffer.dtype() == gg::f32);
  CHECK(sgd.param_state(0)->momentum_buffer.to_vector() == std::vector<double>{1, -2});
  Var r2 = param_with_grad();
  optim::SGD no_momentum({r2}, 0.1);
  no_momentum.step();
  CHECK_FALSE(no_momentum.param_state(0)->momentum_buffer.defined());

  // RMSprop's optional fields follow its options; NAdam's μ-product is 0-d in the parameter's dtype.
  Var t = param_with_grad();
  optim::RMSprop rms({t}, optim::RMSpropOptions(0.01).centered(true));
  rms.step();
  CHECK(rms.param_state(0)->grad_avg.defined());
  CHECK_FALSE(rms.param_state(0)->momentum_buffer.defined());
  CHECK(rms.param_state(0)->step == 1.0f);
  Var u = param_with_grad(gg::f32);
  optim::NAdam nadam({u});
  nadam.step();
  nadam.step();
  CHECK(nadam.param_state(0)->step == 2.0f);
  CHECK(nadam.param_state(0)->mu_product.rank() == 0);
  CHECK(nadam.param_state(0)->mu_product.dtype() == gg::f32);
  // Adagrad makes its state at construction, as torch.optim.Adagrad.
  optim::Adagrad adagrad({param_with_grad()}, optim::AdagradOptions(0.1).initial_accumulator_value(0.5));
  REQUIRE(adagrad.param_state(0) != nullptr);
  CHECK(adagrad.param_state(0)->step == 0.0f);
  CHECK(adagrad.param_state(0)->sum.to_vector() == std::vector<double>{0.5, 0.5});
}

TEST_CASE("optim state: checkpoints written before the typed state load, re-save identically and resume") {
  const gg::Tensor x({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2}), y({0, 1, 1, 0}, {4});
  const gg::safetensors::File expected = gg::safetensors::load(checkpoints + "/expected.safetensors");
  const gg::test::TempDir dir("test_optim_state");
  const std::string resaved = dir / "resaved.safetensors";
  for (const auto& [name, make] : gg::checkpoint_fixtures::configs()) {
    INFO("configuration " << name);
    const std::string file = checkpoints + "/" + name + ".safetensors";
    nn::manual_seed(99); // other weights than the checkpoint's: loading must replace them all
    nn::Sequential model(nn::Linear(2, 5), nn::Tanh(), nn::Linear(5, 2));
    auto opt = make(model.parameters());
    CHECK(nn::load_checkpoint(file, model, *opt).at("config") == name);
    // The same names, shapes, dtypes and bytes as the file an older gradgraph wrote.
    nn::save_checkpoint(resaved, model, *opt, {{"config", name}});
    CHECK(read_file(resaved) == read_file(file));
    // Three more steps give the weights the uninterrupted run had, up to the rounding of tanh: that
    // run used libm's, the kernels now SLEEF's (both within 1 ULP; the bits were equal before).
    for (int i = 0; i < 3; ++i) {
      opt->zero_grad();
      nn::cross_entropy(model(Var::constant(x)), y).backward();
      opt->step();
    }
    for (const auto& [key, t] : model.state_dict()) {
      INFO(key);
      const std::vector<double> got = t.to_vector(), want = expected.at(name + "." + key).to_vector();
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < got.size(); ++i)
        CHECK(got[i] == Approx(want[i]).epsilon(1e-13).margin(1e-15));
    }
  }
}
