// The model playground's engine: one of the course's 2-D problems, an MLP with the chosen layers,
// activation and loss, any of `gradgraph train`'s optimizers, trained a few steps per call by nn/;
// decision regions on a grid, and one sample's forward and backward as an explain program.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <cli/src/json.hpp>

namespace gg::web {

/// Sizes the page refuses before allocating anything (a 10,000-unit layer would freeze it).
inline constexpr std::int64_t k_max_units = 64;        ///< units in one hidden layer
inline constexpr std::int64_t k_max_hidden_layers = 6; ///< hidden layers
inline constexpr std::int64_t k_max_samples = 2000;    ///< points of the generated dataset
inline constexpr std::int64_t k_max_steps_per_call = 1000;
inline constexpr std::int64_t k_max_grid = 200;         ///< decision-region grid side
inline constexpr std::size_t k_max_sample_nodes = 1000; ///< op nodes of one sample's graph

/// The explain program of one sample's forward pass and loss with the model's current weights:
/// statements z1_1 = w1_1_1*x1 + w1_1_2*x2 + b1_1; h1_1 = sigmoid(z1_1); ...; loss = ..., and its
/// inputs (x1, x2 and every weight and bias, written with full precision).
struct SampleProgram {
  std::string program;
  cli::json::Value inputs; ///< {"x1": "0.25", "w1_1_1": "-0.41", ...}
};

/// Runs a playground method ("options", "create", "train", "grid", "sample"; docs/web.md) on a
/// JSON request; the playground lives until the next "create". Never throws: errors are replies.
std::string playground_call(std::string_view method, std::string_view request);

} // namespace gg::web
