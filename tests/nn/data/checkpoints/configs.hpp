// The optimizer configurations of the checkpoints in this folder, shared by make_checkpoints.cpp
// (which wrote them) and tests/nn/test_optim_state.cpp (which loads them): one per kind of state.
#pragma once

#include <nn/optim/optim.hpp>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gg::checkpoint_fixtures {

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Var>)>;

/// Name (the file's stem) and how to build the optimizer.
inline std::vector<std::pair<std::string, MakeOptimizer>> configs() {
  using namespace optim;
  return {
      {"sgd_nesterov",
       [](auto p) { return std::make_unique<SGD>(p, SGDOptions(0.1).momentum(0.9).nesterov(true)); }},
      {"adam_amsgrad", [](auto p) { return std::make_unique<Adam>(p, AdamOptions(0.05).amsgrad(true)); }},
      {"adamw", [](auto p) { return std::make_unique<AdamW>(p, AdamWOptions(0.05)); }},
      {"rmsprop_centered_momentum",
       [](auto p) {
         return std::make_unique<RMSprop>(p, RMSpropOptions(0.01).momentum(0.5).centered(true));
       }},
      {"adagrad", [](auto p) { return std::make_unique<Adagrad>(p, AdagradOptions(0.1)); }},
      {"adadelta", [](auto p) { return std::make_unique<Adadelta>(p, AdadeltaOptions(1.0)); }},
      {"nadam", [](auto p) { return std::make_unique<NAdam>(p, NAdamOptions(0.05)); }},
  };
}

} // namespace gg::checkpoint_fixtures
