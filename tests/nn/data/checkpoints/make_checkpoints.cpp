// Writes the checkpoints of this folder: one per optimizer configuration of configs.hpp, a 2-5-2 MLP
// trained 3 steps on XOR (float64), saved with nn::save_checkpoint; and expected.safetensors, the
// weights after 3 more steps ("<config>.<name>"). tests/nn/test_optim_state.cpp loads them into
// today's code and resumes: files of an older gradgraph must keep loading, and resume to the same
// weights (bit-exactly until the kernels took SLEEF's tanh, 1 ULP from libm's: now within 1e-13).
// Made by main at 4863a89 (before the optimizers' typed state), not by the test suite:
//   c++ -std=c++20 -O2 -I. -isystem /usr/include/eigen3 tests/nn/data/checkpoints/make_checkpoints.cpp \
//       build/nn/libgradgraph_nn.a build/autodiff/libgradgraph_autodiff.a -lfmt -lgomp -lopenblas -lz \
//       -o /tmp/make_checkpoints
//   /tmp/make_checkpoints tests/nn/data/checkpoints
#include "configs.hpp"

#include <nn/nn.hpp>

#include <string>
#include <utility>
#include <vector>

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  const gg::Tensor x({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2}), y({0, 1, 1, 0}, {4});
  std::vector<std::pair<std::string, gg::Tensor>> expected;
  for (const auto& [name, make] : gg::checkpoint_fixtures::configs()) {
    gg::nn::manual_seed(4);
    gg::nn::Sequential model(gg::nn::Linear(2, 5), gg::nn::Tanh(), gg::nn::Linear(5, 2));
    auto opt = make(model.parameters());
    auto steps = [&](int n) {
      for (int i = 0; i < n; ++i) {
        opt->zero_grad();
        gg::nn::cross_entropy(model(gg::Var::constant(x)), y).backward();
        opt->step();
      }
    };
    steps(3);
    gg::nn::save_checkpoint(dir + "/" + name + ".safetensors", model, *opt, {{"config", name}});
    steps(3);
    for (const auto& [key, t] : model.state_dict()) expected.emplace_back(name + "." + key, t);
  }
  gg::safetensors::save(dir + "/expected.safetensors", expected);
}
